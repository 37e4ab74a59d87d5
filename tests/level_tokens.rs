//! Level tokens at the start of plain lines, with the real output of real programs: a Node.js
//! script (`console.error`, `console.warn`, an uncaught `Error`), Python's `logging` module and a
//! Rust program logging through `env_logger` (this test binary, re-run as the plugin).
//! The grammar itself is unit-tested in `crates/capture/src/level_token.rs`.

mod common;

use logstore::capture::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, PluginCommand, PluginId,
};
use logstore::{ExecutionId, Level, LogEntry, TaskId};
use parking_lot::Mutex;

/// Set in the environment of this binary when it runs as the env_logger plugin.
const CHILD_ENV: &str = "LOGSTORE_TEST_ENV_LOGGER_CHILD";

fn ctx() -> CaptureContext {
    CaptureContext::new(
        ExecutionId::new("exec-levels").unwrap(),
        TaskId::new("t").unwrap(),
        PluginId::parse("acme/levels.run").unwrap(),
    )
}

async fn capture(cmd: PluginCommand, cfg: CaptureConfig) -> Vec<LogEntry> {
    let sink = Mutex::new(Vec::new());
    let outcome = run_plugin(&ctx(), &cmd, &cfg, &sink, CancelSignal::never())
        .await
        .expect("plugin runs");
    assert_eq!(outcome.end, logstore::capture::PluginEnd::Exited(0));
    sink.into_inner()
}

/// `(level, message)` of every entry whose message passes `keep`, in capture order per pipe
/// (the test scripts write each kind of line to one pipe only, so the order is defined).
fn levels(entries: &[LogEntry], keep: impl Fn(&str) -> bool) -> Vec<(Level, String)> {
    entries
        .iter()
        .filter(|e| keep(&e.message))
        .map(|e| (e.level, e.message.clone()))
        .collect()
}

/// Every entry is one of `want` and every `want` is there (lines of the two pipes interleave in
/// no defined order).
fn assert_same_lines(got: &[LogEntry], want: &[(Level, &str)]) {
    let all = levels(got, |_| true);
    for &(level, message) in want {
        assert!(
            all.contains(&(level, message.to_owned())),
            "{message:?} should be {level:?}: {all:#?}"
        );
    }
    assert_eq!(all.len(), want.len(), "{all:#?}");
}

const NODE_SCRIPT: &str = r#"
console.error("ERROR could not reach the database");
console.error("[WARN] retrying in 5 s");
console.error("warning: the cache is cold");
console.error("level=error msg=\"upload failed\" attempt=2");
console.error("time=2026-11-25T12:00:00Z level=info msg=\"connected\"");
console.error("W1125 12:00:00.123456 1234 main.go:42] slow disk");
console.error("Errors found: 0");
console.error("plain stderr text, with WARNING inside");
console.warn("INFO: stderr says this is only information");
console.log("DEBUG cache state dumped");
console.log("plain stdout text");
console.log("error handling is done");
try { throw new Error("boom"); } catch (e) { console.error(String(e)); }
"#;

#[tokio::test]
async fn node_console_lines_get_the_level_of_their_token() {
    let got = capture(
        PluginCommand::trusted("node", ["-e", NODE_SCRIPT]),
        CaptureConfig::default(),
    )
    .await;
    let want = [
        (Level::Error, "ERROR could not reach the database"),
        (Level::Warn, "[WARN] retrying in 5 s"),
        (Level::Warn, "warning: the cache is cold"),
        (Level::Error, "level=error msg=\"upload failed\" attempt=2"),
        (
            Level::Info,
            "time=2026-11-25T12:00:00Z level=info msg=\"connected\"",
        ),
        (
            Level::Warn,
            "W1125 12:00:00.123456 1234 main.go:42] slow disk",
        ),
        // No token: stderr's default level.
        (Level::Warn, "Errors found: 0"),
        (Level::Warn, "plain stderr text, with WARNING inside"),
        (Level::Info, "INFO: stderr says this is only information"),
        (Level::Debug, "DEBUG cache state dumped"),
        // No token: stdout's default level.
        (Level::Info, "plain stdout text"),
        (Level::Info, "error handling is done"),
        (Level::Error, "Error: boom"),
    ];
    assert_same_lines(&got, &want);
}

#[tokio::test]
async fn the_switch_off_keeps_the_pipe_levels() {
    let cfg = CaptureConfig {
        level_tokens: false,
        ..CaptureConfig::default()
    };
    let got = capture(PluginCommand::trusted("node", ["-e", NODE_SCRIPT]), cfg).await;
    for e in &got {
        let pipe_level = if e.message.starts_with("DEBUG")
            || e.message.starts_with("plain stdout")
            || e.message.starts_with("error handling")
        {
            Level::Info
        } else {
            Level::Warn
        };
        assert_eq!(e.level, pipe_level, "{:?}", e.message);
    }
}

const PYTHON_SCRIPT: &str = r#"
import logging, sys
logging.basicConfig(level=logging.DEBUG)
logging.debug("cache primed")
logging.info("connected to %s", "db-1")
logging.warning("disk at %d%%", 91)
logging.error("upload failed")
logging.critical("giving up")
logging.getLogger("etl.extract").warning("slow source")
print("the word WARNING inside a line is no token", flush=True)
"#;

#[tokio::test]
async fn python_logging_lines_get_their_level() {
    let got = capture(
        PluginCommand::trusted("python3", ["-c", PYTHON_SCRIPT]),
        CaptureConfig::default(),
    )
    .await;
    let want = [
        (Level::Debug, "DEBUG:root:cache primed"),
        (Level::Info, "INFO:root:connected to db-1"),
        (Level::Warn, "WARNING:root:disk at 91%"),
        (Level::Error, "ERROR:root:upload failed"),
        (Level::Error, "CRITICAL:root:giving up"),
        (Level::Warn, "WARNING:etl.extract:slow source"),
        // stdout, no token at the start.
        (Level::Info, "the word WARNING inside a line is no token"),
    ];
    assert_same_lines(&got, &want);
}

/// Not a test of its own: when [`CHILD_ENV`] is set, this binary is the plugin, and this
/// function logs through env_logger (its default format, timestamps included) then exits before
/// the test harness prints its result.
#[test]
fn env_logger_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Trace)
        .init();
    log::error!("upload failed");
    log::warn!("disk at 91%");
    log::info!("connected");
    log::debug!("cache primed");
    log::trace!("polling");
    std::process::exit(0);
}

#[tokio::test]
async fn rust_env_logger_lines_get_their_level() {
    let me = std::env::current_exe().unwrap();
    let mut cmd = PluginCommand::trusted(
        me.to_string_lossy(),
        [
            "--exact",
            "env_logger_child",
            "--nocapture",
            "--test-threads=1",
        ],
    );
    cmd.env.push((CHILD_ENV.into(), "1".into()));
    let got = capture(cmd, CaptureConfig::default()).await;
    // The harness's own stdout lines ("running 1 test") are left out.
    let logged = levels(&got, |m| m.starts_with("[20"));
    let want = [
        (Level::Error, "ERROR level_tokens] upload failed"),
        (Level::Warn, "WARN  level_tokens] disk at 91%"),
        (Level::Info, "INFO  level_tokens] connected"),
        (Level::Debug, "DEBUG level_tokens] cache primed"),
        (Level::Debug, "TRACE level_tokens] polling"),
    ];
    assert_eq!(logged.len(), want.len(), "{got:#?}");
    for ((level, message), (want_level, want_tail)) in logged.iter().zip(want) {
        // `[2026-11-25T12:00:00Z ERROR level_tokens] upload failed`: env_logger's exact format.
        let (stamp, tail) = message[1..].split_once(' ').unwrap();
        assert!(
            stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{message}"
        );
        assert_eq!((*level, tail), (want_level, want_tail), "{message}");
    }
}

#[tokio::test]
async fn every_part_of_a_split_line_keeps_the_token_level() {
    // 150 000 bytes on stdout: three entries of at most 64 KiB, all at the level of the token
    // that only the first part holds.
    let script = r#"console.log("[ERROR] " + "x".repeat(150000))"#;
    let got = capture(
        PluginCommand::trusted("node", ["-e", script]),
        CaptureConfig::default(),
    )
    .await;
    assert_eq!(
        got.len(),
        3,
        "{:?}",
        got.iter().map(|e| e.message.len()).collect::<Vec<_>>()
    );
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.level, Level::Error, "part {}", i + 1);
        assert_eq!(e.metadata.as_ref().unwrap()["part"], i + 1);
    }
}

#[test]
fn logstore_run_switches_tokens_off_per_task() {
    let dir = tempfile::tempdir().unwrap();
    let script = "echo 'ERROR on stdout'; echo 'INFO: on stderr' >&2";
    for (id, flag, want) in [
        (
            "on",
            None,
            [("ERROR", "ERROR on stdout"), ("INFO", "INFO: on stderr")],
        ),
        (
            "off",
            Some("--no-level-tokens"),
            [("INFO", "ERROR on stdout"), ("WARN", "INFO: on stderr")],
        ),
    ] {
        let mut args = vec!["run", "--execution", id, "--plugin", "acme/levels.run"];
        args.extend(flag);
        args.extend(["--", "sh", "-c", script]);
        let out = common::logstore_output(dir.path(), &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut got: Vec<(String, String)> = common::dump_json(dir.path(), id)
            .iter()
            .filter(|e| e["source"] == "plugin:acme/levels.run")
            .map(|e| {
                (
                    e["level"].as_str().unwrap().to_owned(),
                    e["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(l, m)| ((*l).to_owned(), (*m).to_owned()))
            .collect();
        assert_eq!(got, want, "{id}");
    }
}
