//! Plugin runtime capture against real processes (trusted mode): `node` and `sh` plugins, the
//! real `sdk/context.js`, entries checked field by field.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::capture::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, CaptureError, PluginCommand,
    PluginEnd, PluginId, PluginOutcome,
};
use logstore::{Clock, ExecutionId, Level, LogEntry, TaskId, MAX_MESSAGE_LEN};
use parking_lot::Mutex;
use serde_json::{json, Value};

const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk/context.js");
const SOURCE: &str = "plugin:acme/demo.run";
const MIB: u64 = 1024 * 1024;

fn ctx() -> CaptureContext {
    CaptureContext::new(
        ExecutionId::new("exec-1").unwrap(),
        TaskId::new("task-1").unwrap(),
        PluginId::parse("acme/demo.run").unwrap(),
    )
}

/// A `node -e` plugin with the SDK's path in `$SDK`.
fn node(script: &str) -> PluginCommand {
    let mut cmd = PluginCommand::trusted("node", ["-e", script]);
    cmd.env.push(("SDK".into(), SDK.into()));
    cmd
}

fn sh(script: &str) -> PluginCommand {
    PluginCommand::trusted("sh", ["-c", script])
}

/// Now, by the same clock capture stamps entries with.
fn now_ms() -> i64 {
    logstore::Clock::now_ms(&logstore::SystemClock)
}

async fn run_with(
    ctx: &CaptureContext,
    cmd: PluginCommand,
    cfg: CaptureConfig,
) -> (PluginOutcome, Vec<LogEntry>) {
    let sink = Mutex::new(Vec::new());
    let outcome = run_plugin(ctx, &cmd, &cfg, &sink, CancelSignal::never())
        .await
        .expect("plugin runs");
    (outcome, sink.into_inner())
}

async fn run(cmd: PluginCommand) -> (PluginOutcome, Vec<LogEntry>) {
    run_with(&ctx(), cmd, CaptureConfig::default()).await
}

/// Asserts the engine-owned fields of every entry.
fn assert_engine_fields(entries: &[LogEntry], from: i64, to: i64) {
    for e in entries {
        assert_eq!(e.execution_id.as_str(), "exec-1");
        assert_eq!(e.task_id.as_ref().map(TaskId::as_str), Some("task-1"));
        assert_eq!(e.source, SOURCE);
        assert!(
            (from..=to).contains(&e.timestamp),
            "timestamp {} outside {from}..={to}",
            e.timestamp
        );
        assert!(e.message.len() <= MAX_MESSAGE_LEN);
        e.validate().expect("every captured entry is storable");
    }
}

fn messages(entries: &[LogEntry]) -> Vec<(Level, &str)> {
    entries
        .iter()
        .map(|e| (e.level, e.message.as_str()))
        .collect()
}

/// The capture layer's own WARN entries of one kind (`metadata.capture == event`).
fn capture_warnings<'a>(entries: &'a [LogEntry], event: &str) -> Vec<&'a LogEntry> {
    entries
        .iter()
        .filter(|e| {
            e.metadata
                .as_ref()
                .and_then(|m| m.get("capture"))
                .and_then(Value::as_str)
                == Some(event)
        })
        .collect()
}

fn meta(e: &LogEntry) -> Value {
    Value::Object(e.metadata.clone().unwrap_or_default())
}

#[tokio::test]
async fn stdout_lines_become_info_entries() {
    let from = now_ms();
    let (outcome, entries) = run(node(
        r#"console.log("first line"); console.log("two\nlines"); process.stdout.write("direct\n");"#,
    ))
    .await;
    let to = now_ms();
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert!(outcome.succeeded());
    assert_eq!(
        messages(&entries),
        [
            (Level::Info, "first line"),
            (Level::Info, "two"),
            (Level::Info, "lines"),
            (Level::Info, "direct"),
        ]
    );
    assert!(entries.iter().all(|e| e.metadata.is_none()));
    assert_engine_fields(&entries, from, to);
    assert_eq!(outcome.bytes_captured, 28, "raw bytes, newlines included");
    assert_eq!(outcome.bytes_dropped, 0);
}

#[tokio::test]
async fn stderr_records_and_plain_lines_become_entries() {
    let from = now_ms();
    let (outcome, entries) = run(node(
        r#"const { context } = require(process.env.SDK);
           context.debug("d", { step: 1 });
           context.info("i");
           console.error("plain error output");
           context.warn("w", { retry: true });
           context.error("e", { stack: "at x\nat y" });"#,
    ))
    .await;
    let to = now_ms();
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert_eq!(
        messages(&entries),
        [
            (Level::Debug, "d"),
            (Level::Info, "i"),
            (Level::Warn, "plain error output"),
            (Level::Warn, "w"),
            (Level::Error, "e"),
        ]
    );
    assert_eq!(meta(&entries[0]), json!({"step": 1}));
    assert_eq!(entries[1].metadata, None);
    assert_eq!(entries[2].metadata, None, "plain stderr has no metadata");
    assert_eq!(meta(&entries[3]), json!({"retry": true}));
    assert_eq!(meta(&entries[4]), json!({"stack": "at x\nat y"}));
    assert_engine_fields(&entries, from, to);
}

#[tokio::test]
async fn plain_stderr_level_is_configurable() {
    let cfg = CaptureConfig {
        stderr_plain_level: Level::Error,
        ..CaptureConfig::default()
    };
    let (_, entries) = run_with(&ctx(), sh("echo oops >&2"), cfg).await;
    assert_eq!(messages(&entries), [(Level::Error, "oops")]);
}

#[tokio::test]
async fn output_past_the_cap_is_dropped_with_one_warning() {
    // 12 MiB of 1 KiB lines (1023 digits + "\n"): 2 MiB over the default 10 MiB limit.
    let from = now_ms();
    let (outcome, entries) = run(node(
        r#"const line = Buffer.alloc(1024, "7"); line[1023] = 10;
           const block = Buffer.concat(Array(1024).fill(line));
           for (let i = 0; i < 12; i++) process.stdout.write(block);"#,
    ))
    .await;
    let to = now_ms();
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert_eq!(outcome.bytes_captured, 10 * MIB);
    assert_eq!(outcome.bytes_dropped, 2 * MIB);

    let warnings = capture_warnings(&entries, "truncated");
    assert_eq!(warnings.len(), 1, "exactly one truncation warning");
    let w = warnings[0];
    assert_eq!(w.level, Level::Warn);
    assert_eq!(
        meta(w),
        json!({"capture": "truncated", "limit_bytes": 10 * MIB, "captured_bytes": 10 * MIB, "dropped_bytes": 2 * MIB})
    );
    assert!(w.message.contains("truncated"), "{}", w.message);
    assert!(w.message.contains(&(10 * MIB).to_string()), "{}", w.message);
    assert!(w.message.contains(&(2 * MIB).to_string()), "{}", w.message);
    assert!(
        std::ptr::eq(w, entries.last().unwrap()),
        "the warning comes last"
    );

    let lines = &entries[..entries.len() - 1];
    assert_eq!(lines.len(), 10 * 1024, "10 MiB of 1 KiB lines");
    assert!(lines
        .iter()
        .all(|e| e.level == Level::Info && e.message.len() == 1023 && e.metadata.is_none()));
    assert_engine_fields(&entries, from, to);
}

#[tokio::test]
async fn spoofed_ids_in_records_are_ignored() {
    let (_, entries) = run(node(
        r#"process.stderr.write("\x1e" + JSON.stringify({level: "ERROR", message: "spoof",
             execution_id: "someone-else", task_id: "t-other", source: "scheduler",
             timestamp: 1, metadata: {k: "v"}}) + "\n");"#,
    ))
    .await;
    assert_eq!(messages(&entries), [(Level::Error, "spoof")]);
    let e = &entries[0];
    assert_eq!(e.execution_id.as_str(), "exec-1");
    assert_eq!(e.task_id.as_ref().unwrap().as_str(), "task-1");
    assert_eq!(e.source, SOURCE);
    assert_ne!(e.timestamp, 1);
    assert_eq!(meta(e), json!({"k": "v"}));
}

#[tokio::test]
async fn malformed_records_are_kept_as_plain_text() {
    let (_, entries) =
        run(sh(r#"printf '\036{"level":"LOUD","message":"m"}\n\036not json\n'"#).tap_stderr())
            .await;
    assert_eq!(
        messages(&entries),
        [
            (Level::Warn, r#"{"level":"LOUD","message":"m"}"#),
            (Level::Warn, "not json"),
        ]
    );
    assert_eq!(
        meta(&entries[0]),
        json!({"protocol_error": "`level` must be one of DEBUG, INFO, WARN, ERROR"})
    );
    assert!(meta(&entries[1])["protocol_error"]
        .as_str()
        .unwrap()
        .starts_with("not valid JSON"));
}

/// Redirects a `sh -c` script's stdout to stderr.
trait TapStderr {
    fn tap_stderr(self) -> Self;
}

impl TapStderr for PluginCommand {
    fn tap_stderr(mut self) -> Self {
        let script = self.args.pop().unwrap();
        self.args.push(format!("{{ {script} ; }} 1>&2"));
        self
    }
}

#[tokio::test]
async fn invalid_utf8_and_nul_bytes_are_kept() {
    let (outcome, entries) = run(sh(r"printf 'a\377b\n\000x\000\nok\n'")).await;
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert_eq!(
        messages(&entries),
        [
            (Level::Info, "a\u{FFFD}b"),
            (Level::Info, "\0x\0"),
            (Level::Info, "ok")
        ]
    );
    // The same on stderr, where the bytes also go past the record parser.
    let (_, entries) = run(sh(r"printf '\036\377\n\000\n'").tap_stderr()).await;
    assert_eq!(entries[0].message, "\u{FFFD}");
    assert!(entries[0].metadata.as_ref().unwrap()["protocol_error"]
        .as_str()
        .unwrap()
        .starts_with("not valid JSON"));
    assert_eq!(entries[1].message, "\0");
}

#[tokio::test]
async fn crlf_and_last_line_without_newline() {
    let (_, entries) = run(sh(r"printf 'one\r\ntwo\r\n\r\nlast'")).await;
    assert_eq!(
        messages(&entries),
        [
            (Level::Info, "one"),
            (Level::Info, "two"),
            (Level::Info, ""),
            (Level::Info, "last")
        ]
    );
}

#[tokio::test]
async fn long_line_is_split_into_64k_entries_up_to_the_cap() {
    // One 50 MB line, no newline at all.
    let (outcome, entries) = run(node(
        r#"process.stdout.write(Buffer.alloc(50 * 1024 * 1024, "x"));"#,
    ))
    .await;
    assert_eq!(outcome.bytes_captured, 10 * MIB);
    assert_eq!(outcome.bytes_dropped, 40 * MIB);
    let (warning, parts) = entries.split_last().unwrap();
    assert_eq!(capture_warnings(&entries, "truncated"), [warning]);
    assert_eq!(parts.len(), 160, "10 MiB in 64 KiB parts");
    for (i, e) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        assert_eq!(e.level, Level::Info);
        assert_eq!(e.message.len(), MAX_MESSAGE_LEN);
        assert!(e.message.bytes().all(|b| b == b'x'));
        assert_eq!(meta(e), json!({"part": i + 1, "continued": !last}));
    }
}

#[tokio::test]
async fn long_line_split_never_cuts_a_character() {
    // 70 000 "é" (2 bytes each) then a newline: 140 000 bytes, three parts.
    let (_, entries) = run(node(r#"console.log("é".repeat(70000));"#)).await;
    assert_eq!(entries.len(), 3);
    let joined: String = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(joined, "é".repeat(70000));
    assert_eq!(entries[0].message.len(), MAX_MESSAGE_LEN);
    assert_eq!(meta(&entries[2]), json!({"part": 3, "continued": false}));
}

#[tokio::test]
async fn flood_of_100mb_is_drained_and_truncated_once() {
    let started = Instant::now();
    let (outcome, entries) = run(sh(
        "yes 'flood line of forty characters .......' | head -c 104857600",
    ))
    .await;
    let took = started.elapsed();
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert_eq!(outcome.bytes_captured, 10 * MIB);
    assert_eq!(outcome.bytes_dropped, 90 * MIB);
    let warnings = capture_warnings(&entries, "truncated");
    assert_eq!(warnings.len(), 1);
    assert_eq!(meta(warnings[0])["dropped_bytes"], json!(90 * MIB));
    let kept: u64 = entries[..entries.len() - 1]
        .iter()
        .map(|e| e.message.len() as u64 + 1)
        .sum();
    assert!(kept <= 10 * MIB + 1, "kept {kept} bytes of lines");
    assert!(kept > 10 * MIB - 64, "kept {kept} bytes of lines");
    assert!(took < Duration::from_secs(30), "took {took:?}: blocked?");
}

#[tokio::test]
async fn grandchild_holding_the_pipe_does_not_hang_the_task() {
    let cfg = CaptureConfig {
        drain_timeout: Duration::from_millis(500),
        ..CaptureConfig::default()
    };
    let started = Instant::now();
    let (outcome, entries) = run_with(&ctx(), sh("sleep 30 & echo $!; echo hi"), cfg).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        took >= Duration::from_millis(500),
        "waited the drain timeout"
    );
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    assert!(outcome.pipes_held_open);
    assert_eq!(entries[1].message, "hi");
    let warnings = capture_warnings(&entries, "pipes_held_open");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].level, Level::Warn);
    assert_eq!(
        meta(warnings[0]),
        json!({"capture": "pipes_held_open", "drain_timeout_ms": 500})
    );
    // The background `sleep` was killed with its group.
    let pid: i32 = entries[0].message.parse().unwrap();
    assert!(process_gone(pid).await, "sleep {pid} still runs");
}

/// True once `pid` no longer runs (gone, or a zombie waiting for its reaper).
async fn process_gone(pid: i32) -> bool {
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .unwrap()
                    .trim_start()
                    .starts_with('Z') =>
            {
                return true
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

#[tokio::test]
async fn timeout_kills_the_process_group() {
    let cfg = CaptureConfig {
        timeout: Some(Duration::from_millis(300)),
        ..CaptureConfig::default()
    };
    let started = Instant::now();
    let (outcome, entries) = run_with(
        &ctx(),
        sh("sleep 30 & echo $!; echo started; sleep 30"),
        cfg,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.end, PluginEnd::TimedOut);
    assert!(!outcome.succeeded());
    assert_eq!(entries[1].message, "started");
    let warnings = capture_warnings(&entries, "timeout");
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        meta(warnings[0]),
        json!({"capture": "timeout", "timeout_ms": 300})
    );
    let pid: i32 = entries[0].message.parse().unwrap();
    assert!(process_gone(pid).await, "background sleep {pid} still runs");
}

#[tokio::test]
async fn cancel_kills_the_process() {
    let (handle, signal) = CancelSignal::new();
    let sink = Mutex::new(Vec::new());
    let cmd = sh("echo started; sleep 30");
    let cfg = CaptureConfig::default();
    let c = ctx();
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(run_plugin(&c, &cmd, &cfg, &sink, signal), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.cancel();
    });
    let outcome = outcome.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.end, PluginEnd::Cancelled);
    let entries = sink.into_inner();
    assert_eq!(entries[0].message, "started");
    assert_eq!(capture_warnings(&entries, "cancelled").len(), 1);
}

#[tokio::test]
async fn js_helper_all_levels_metadata_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugin.js");
    std::fs::write(
        &plugin,
        format!(
            r#"const {{ context }} = require({SDK:?});
               context.log("debug", "low", {{ a: 1 }});
               console.error("between");
               context.info("multi\nline message");
               context.warn("careful", {{ nested: {{ list: [1, "two", null] }} }});
               context.error(new Error("boom"));
               try {{ context.log("fatal", "x"); }} catch (e) {{ console.log(e.message); }}
               process.exitCode = 3;"#
        ),
    )
    .unwrap();
    let cmd = PluginCommand::trusted("node", [plugin.to_str().unwrap()]);
    let (outcome, entries) = run(cmd).await;
    assert_eq!(outcome.end, PluginEnd::Exited(3));
    const REFUSED: &str =
        "context.log: unknown level \"fatal\"; use one of DEBUG, INFO, WARN, ERROR";
    // stdout and stderr are ordered within a pipe only: set aside the one stdout line.
    let (stdout, stderr): (Vec<&LogEntry>, Vec<&LogEntry>) =
        entries.iter().partition(|e| e.message == REFUSED);
    assert_eq!(stdout.len(), 1, "an unknown level is refused in the plugin");
    assert_eq!(stdout[0].level, Level::Info);
    assert_eq!(stderr.len(), 5);
    assert_eq!(
        (stderr[0].level, stderr[0].message.as_str()),
        (Level::Debug, "low")
    );
    assert_eq!(meta(stderr[0]), json!({"a": 1}));
    assert_eq!(
        (stderr[1].level, stderr[1].message.as_str()),
        (Level::Warn, "between")
    );
    assert_eq!(stderr[1].metadata, None);
    assert_eq!(
        (stderr[2].level, stderr[2].message.as_str()),
        (Level::Info, "multi\nline message")
    );
    assert_eq!(
        (stderr[3].level, stderr[3].message.as_str()),
        (Level::Warn, "careful")
    );
    assert_eq!(
        meta(stderr[3]),
        json!({"nested": {"list": [1, "two", null]}})
    );
    assert_eq!(stderr[4].level, Level::Error);
    assert!(
        stderr[4].message.starts_with("Error: boom\n"),
        "{}",
        stderr[4].message
    );
}

#[tokio::test]
async fn bad_plugin_id_is_refused_before_running() {
    let err = PluginId::parse("acme/demo").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid plugin id \"acme/demo\": it has no `.` before the action (expected <namespace>/<plugin>.<action>, each part made of [A-Za-z0-9_-])"
    );
    for bad in [
        "", "acme", "a b/c.d", "a/b.c d", "a/b/c.d", "../x.y", "a/b.c;rm",
    ] {
        assert!(PluginId::parse(bad).is_err(), "{bad:?} accepted");
    }
    // A bad command is refused before anything starts, too.
    let marker = tempfile::tempdir().unwrap();
    let mut cmd = sh(&format!("touch {}/ran", marker.path().display()));
    cmd.program.clear();
    let sink = Mutex::new(Vec::new());
    let err = run_plugin(
        &ctx(),
        &cmd,
        &CaptureConfig::default(),
        &sink,
        CancelSignal::never(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CaptureError::InvalidCommand(_)), "{err}");
    assert!(!marker.path().join("ran").exists());
    assert!(sink.lock().is_empty());
}

#[tokio::test]
async fn missing_program_is_a_spawn_error() {
    let sink = Mutex::new(Vec::new());
    let cmd = PluginCommand::trusted("/nonexistent/plugin-binary", Vec::<String>::new());
    let err = run_plugin(
        &ctx(),
        &cmd,
        &CaptureConfig::default(),
        &sink,
        CancelSignal::never(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CaptureError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/plugin-binary"));
}

#[tokio::test]
async fn exit_code_signal_and_environment() {
    let (outcome, entries) = run(sh("echo \"[$CARGO_PKG_NAME]\"; exit 7")).await;
    assert_eq!(outcome.end, PluginEnd::Exited(7));
    assert_eq!(
        entries[0].message, "[]",
        "the engine's environment does not leak"
    );
    let (outcome, _) = run(sh("kill -TERM $$")).await;
    assert_eq!(outcome.end, PluginEnd::Signaled(15));
    let mut cmd = sh("echo \"$GREETING\"; pwd");
    cmd.env.push(("GREETING".into(), "hello".into()));
    cmd.cwd = Some("/".into());
    let (_, entries) = run(cmd).await;
    assert_eq!(
        messages(&entries),
        [(Level::Info, "hello"), (Level::Info, "/")]
    );
}

struct FixedClock(i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

#[tokio::test]
async fn timestamps_come_from_the_injected_clock() {
    let c = ctx().with_clock(Arc::new(FixedClock(1_700_000_000_123)));
    let (_, entries) = run_with(&c, sh("echo a; echo b >&2"), CaptureConfig::default()).await;
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.timestamp == 1_700_000_000_123));
}

#[tokio::test]
async fn record_longer_than_an_entry_is_parsed_whole_and_split_at_its_level() {
    let (_, entries) = run(node(
        r#"const { context } = require(process.env.SDK);
           context.error("y".repeat(70000), { k: 1 });"#,
    ))
    .await;
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.level == Level::Error));
    assert_eq!(
        meta(&entries[0]),
        json!({"part": 1, "continued": true, "k": 1})
    );
    assert_eq!(
        meta(&entries[1]),
        json!({"part": 2, "continued": false, "k": 1})
    );
    let joined: String = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(joined, "y".repeat(70000));
}

#[tokio::test]
async fn record_longer_than_the_record_limit_is_kept_as_plain_parts_at_its_level() {
    let (_, entries) = run(node(
        r#"const { context } = require(process.env.SDK);
           context.error("y".repeat(1100000));"#,
    ))
    .await;
    let len = 1_100_000 + r#"{"level":"ERROR","message":""}"#.len();
    assert_eq!(entries.len(), len.div_ceil(MAX_MESSAGE_LEN));
    assert!(entries.iter().all(|e| e.level == Level::Error));
    assert!(entries[0]
        .message
        .starts_with(r#"{"level":"ERROR","message":"yyy"#));
    assert_eq!(
        meta(&entries[0]),
        json!({"part": 1, "continued": true,
               "protocol_error": "the record is longer than 1048576 bytes; it was stored as plain text"})
    );
    assert_eq!(meta(&entries[1]), json!({"part": 2, "continued": true}));
    let joined: String = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        joined,
        format!(
            r#"{{"level":"ERROR","message":"{}"}}"#,
            "y".repeat(1_100_000)
        )
    );
}
