//! One test per scenario of `../shared/spec/log-capture.md`, named after it, each running the
//! real engine handle against a real store and checking the stored entries field by field.
//! (The plugin runtime scenarios live in `tests/capture.rs`, which runs real processes.)

mod common;

use std::sync::Arc;

use common::*;
use logstore::{
    Durability, Engine, ExecutionLog, Filter, FinalState, Level, LogEntry, LogStore, LogstoreLayer,
    ManualClock, TaskId, TaskOutcome,
};
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    clock: ManualClock,
    engine: Arc<Engine>,
    store: Arc<LogStore>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = Arc::new(LogStore::open_with(dir.path(), manual(&clock)).unwrap());
    let engine = Engine::new(store.clone(), Arc::new(clock.clone()));
    Fixture {
        _dir: dir,
        clock,
        engine,
        store,
    }
}

impl Fixture {
    fn start(&self, exec: &str) -> ExecutionLog {
        self.engine
            .start_execution(id(exec), "nightly-etl")
            .unwrap()
    }

    fn stored(&self, exec: &str) -> Vec<LogEntry> {
        self.store.flush(Durability::Written).unwrap();
        self.store.query(&id(exec), &Filter::default()).unwrap()
    }
}

fn task(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

#[test]
fn execution_start_logged() {
    let f = fixture();
    let _log = f.start("exec-1");
    let got = f.stored("exec-1");
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!(e.execution_id.as_str(), "exec-1");
    assert_eq!(e.timestamp, NOON);
    assert_eq!(e.level, Level::Info);
    assert_eq!(e.source, "scheduler");
    assert!(
        e.message.contains("exec-1") && e.message.contains("started"),
        "{}",
        e.message
    );
    assert_eq!(e.metadata.as_ref().unwrap()["state"], "RUNNING");
    assert_eq!(e.task_id, None);
}

#[test]
fn execution_completion_logged() {
    for (state, level) in [
        (FinalState::Success, Level::Info),
        (FinalState::Failed, Level::Error),
        (FinalState::Cancelled, Level::Warn),
    ] {
        let f = fixture();
        let log = f.start("exec-2");
        f.clock.advance(1234);
        log.finish(state, "task t3 exhausted its retries").unwrap();
        // finish() flushed and fsynced: a reader in another handle sees it without any flush.
        let reader = LogStore::open_read_only(f.store.dir()).unwrap();
        let got = reader.query(&id("exec-2"), &Filter::default()).unwrap();
        let e = got.last().unwrap();
        assert_eq!(e.level, level);
        assert_eq!(e.source, "scheduler");
        assert_eq!(e.timestamp, NOON + 1234);
        let meta = e.metadata.as_ref().unwrap();
        assert_eq!(meta["state"], state.as_str());
        assert_eq!(meta["duration_ms"], 1234);
        assert_eq!(meta["reason"], "task t3 exhausted its retries");
        assert!(
            e.message.contains(state.as_str()) && e.message.contains("1234 ms"),
            "{}",
            e.message
        );
        assert_eq!(e.terminal_state(), Some(state.as_str()));
        assert_eq!(
            reader.list().unwrap()[0].final_state.as_deref(),
            Some(state.as_str())
        );
    }
}

#[test]
fn correlation_id_propagates_through_execution() {
    use tracing_subscriber::prelude::*;
    let f = fixture();
    let log = f.start("exec-3");
    let subscriber = tracing_subscriber::registry().with(LogstoreLayer::new(f.engine.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let exec_span = tracing::info_span!("execution", execution_id = "exec-3");
        let _e = exec_span.enter();
        tracing::info!(target: "engine::scheduler", "planning 3 tasks");
        {
            let task_span = tracing::info_span!("task", task_id = "t1");
            let _t = task_span.enter();
            tracing::debug!(target: "engine::worker", bytes = 42u64, "fetched input");
            // An unrelated span in between does not hide the ids.
            let inner = tracing::info_span!("http");
            let _i = inner.enter();
            tracing::error!(target: "engine::http", status = 503, "upstream failed");
        }
        drop(_e);
        tracing::warn!(target: "engine::other", "outside any execution: not stored");
    });
    log.task_started(&task("t1"), "http", &json!({})).unwrap();
    let got = f.stored("exec-3");
    let traced: Vec<&LogEntry> = got
        .iter()
        .filter(|e| e.source.starts_with("engine::"))
        .collect();
    assert_eq!(traced.len(), 3, "{got:#?}");
    assert!(got.iter().all(|e| e.execution_id.as_str() == "exec-3"));
    assert_eq!(
        (traced[0].source.as_str(), traced[0].task_id.as_ref()),
        ("engine::scheduler", None)
    );
    assert_eq!(traced[1].task_id.as_ref().map(TaskId::as_str), Some("t1"));
    assert_eq!(traced[1].level, Level::Debug);
    assert_eq!(traced[1].metadata.as_ref().unwrap()["bytes"], 42);
    assert_eq!(traced[2].task_id.as_ref().map(TaskId::as_str), Some("t1"));
    assert_eq!(
        (traced[2].level, traced[2].message.as_str()),
        (Level::Error, "upstream failed")
    );
    assert!(!got.iter().any(|e| e.message.contains("outside")));
}

#[test]
fn task_start_logged() {
    let f = fixture();
    let log = f.start("exec-4");
    log.task_started(
        &task("fetch"),
        "http.get",
        &json!({"url": "https://x.test", "retries": 2}),
    )
    .unwrap();
    let e = f.stored("exec-4").pop().unwrap();
    assert_eq!(e.execution_id.as_str(), "exec-4");
    assert_eq!(e.task_id.as_ref().map(TaskId::as_str), Some("fetch"));
    assert_eq!(e.timestamp, NOON);
    assert_eq!(e.level, Level::Info);
    assert_eq!(e.source, "worker");
    assert!(
        e.message.contains("http.get") && e.message.contains("https://x.test"),
        "{}",
        e.message
    );
    let meta = e.metadata.unwrap();
    assert_eq!(meta["task_type"], "http.get");
    assert_eq!(
        meta["inputs"],
        json!({"url": "https://x.test", "retries": 2})
    );
}

#[test]
fn task_completion_logged() {
    let f = fixture();
    let log = f.start("exec-5");
    log.task_started(&task("ok"), "calc", &json!(1)).unwrap();
    f.clock.advance(250);
    log.task_completed(
        &task("ok"),
        &TaskOutcome::Success {
            outputs: json!({"sum": 3}),
        },
    )
    .unwrap();
    log.task_started(&task("bad"), "calc", &json!(2)).unwrap();
    f.clock.advance(40);
    let failure = TaskOutcome::Failure {
        error: "division by zero".into(),
        stack: Some("at div (calc.js:3)\nat main (calc.js:9)".into()),
    };
    log.task_completed(&task("bad"), &failure).unwrap();
    let got = f.stored("exec-5");
    let ok = &got[2];
    assert_eq!((ok.level, ok.source.as_str()), (Level::Info, "worker"));
    assert_eq!(ok.task_id.as_ref().map(TaskId::as_str), Some("ok"));
    let meta = ok.metadata.as_ref().unwrap();
    assert_eq!(
        (meta["status"].as_str(), meta["duration_ms"].as_i64()),
        (Some("SUCCESS"), Some(250))
    );
    assert_eq!(meta["outputs"], json!({"sum": 3}));
    assert!(
        ok.message.contains("250 ms") && ok.message.contains("\"sum\":3"),
        "{}",
        ok.message
    );
    let bad = &got[4];
    assert_eq!(bad.level, Level::Error);
    let meta = bad.metadata.as_ref().unwrap();
    assert_eq!(
        (meta["status"].as_str(), meta["duration_ms"].as_i64()),
        (Some("FAILED"), Some(40))
    );
    assert_eq!(meta["error"], "division by zero");
    assert!(meta["stack"].as_str().unwrap().contains("calc.js:9"));
}

#[test]
fn task_retry_logged() {
    let f = fixture();
    let log = f.start("exec-6");
    log.task_retry(&task("flaky"), 2, "exit code 1").unwrap();
    let e = f.stored("exec-6").pop().unwrap();
    assert_eq!((e.level, e.source.as_str()), (Level::Warn, "worker"));
    assert_eq!(e.task_id.as_ref().map(TaskId::as_str), Some("flaky"));
    assert_eq!(e.execution_id.as_str(), "exec-6");
    let meta = e.metadata.unwrap();
    assert_eq!(
        (meta["attempt"].as_u64(), meta["reason"].as_str()),
        (Some(2), Some("exit code 1"))
    );
    assert!(e.message.contains("attempt 2") && e.message.contains("exit code 1"));
}

#[test]
fn log_entry_contains_required_fields() {
    let f = fixture();
    let log = f.start("exec-7");
    f.clock.advance(5);
    log.task_retry(&task("t"), 2, "r").unwrap();
    f.clock.advance(7);
    log.finish(FinalState::Success, "done").unwrap();
    // Read back as the JSON an operator gets: every required key holds what was logged, with
    // its JSON type (timestamp an integer of Unix ms, level one of the four names).
    let got: Vec<Vec<serde_json::Value>> = f
        .stored("exec-7")
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).unwrap();
            ["execution_id", "timestamp", "level", "source", "message"]
                .iter()
                .map(|key| {
                    v.get(key)
                        .cloned()
                        .unwrap_or_else(|| panic!("{key} missing in {v}"))
                })
                .collect()
        })
        .collect();
    let want = [
        json!([
            "exec-7",
            NOON,
            "INFO",
            "scheduler",
            "execution exec-7 started (workflow nightly-etl)"
        ]),
        json!([
            "exec-7",
            NOON + 5,
            "WARN",
            "worker",
            "task t retrying: attempt 2, reason: r"
        ]),
        json!([
            "exec-7",
            NOON + 12,
            "INFO",
            "scheduler",
            "execution exec-7 SUCCESS after 12 ms: done"
        ]),
    ];
    let want: Vec<Vec<serde_json::Value>> =
        want.iter().map(|w| w.as_array().unwrap().clone()).collect();
    assert_eq!(got, want);
    // And the store refuses an entry without a source.
    let mut e = entry("exec-7", NOON, "x");
    e.source.clear();
    assert!(f.store.append(&e).is_err());
}

#[test]
fn log_entry_contains_optional_fields() {
    let f = fixture();
    let log = f.start("exec-8");
    let failure = TaskOutcome::Failure {
        error: "boom".into(),
        stack: Some("Error: boom\n    at x".into()),
    };
    log.task_started(&task("t9"), "k", &json!(null)).unwrap();
    log.task_completed(&task("t9"), &failure).unwrap();
    let got = f.stored("exec-8");
    assert_eq!(got[0].task_id, None, "execution-level entries have no task");
    let e = &got[2];
    assert_eq!(e.task_id.as_ref().map(TaskId::as_str), Some("t9"));
    assert!(e.metadata.as_ref().unwrap()["stack"]
        .as_str()
        .unwrap()
        .contains("at x"));
    let v = serde_json::to_value(&got[0]).unwrap();
    assert!(
        v.get("task_id").is_none(),
        "absent optional fields are left out: {v}"
    );
}

#[test]
fn log_levels_used_appropriately() {
    let f = fixture();
    let log = f.start("exec-9");
    log.task_started(&task("a"), "k", &json!({})).unwrap();
    log.task_retry(&task("a"), 2, "timeout").unwrap();
    log.task_completed(
        &task("a"),
        &TaskOutcome::Failure {
            error: "x".into(),
            stack: None,
        },
    )
    .unwrap();
    log.emit(
        Level::Debug,
        "engine",
        None,
        "scheduling detail".into(),
        None,
    )
    .unwrap();
    log.finish(FinalState::Failed, "task a failed").unwrap();
    let levels: Vec<(Level, String)> = f
        .stored("exec-9")
        .into_iter()
        .map(|e| (e.level, e.message))
        .collect();
    let l: Vec<Level> = levels.iter().map(|x| x.0).collect();
    assert_eq!(
        l,
        [
            Level::Info,
            Level::Info,
            Level::Warn,
            Level::Error,
            Level::Debug,
            Level::Error
        ],
        "{levels:?}"
    );
}

#[test]
fn logs_batched_for_writes() {
    let f = fixture();
    let reader = LogStore::open_read_only(f.store.dir()).unwrap();
    let log = f.start("exec-10");
    for i in 0..98 {
        log.emit(Level::Info, "worker", None, format!("line {i}"), None)
            .unwrap();
    }
    assert_eq!(f.store.buffered(), 99, "99 entries wait in the buffer");
    assert!(
        reader.query(&id("exec-10"), &Filter::default()).is_err(),
        "nothing written yet"
    );
    log.emit(Level::Info, "worker", None, "line 98".into(), None)
        .unwrap();
    assert_eq!(
        reader
            .query(&id("exec-10"), &Filter::default())
            .unwrap()
            .len(),
        100,
        "the 100th entry flushes"
    );
    log.emit(Level::Info, "worker", None, "late".into(), None)
        .unwrap();
    f.clock.advance(999);
    f.store.tick().unwrap();
    assert_eq!(
        reader
            .query(&id("exec-10"), &Filter::default())
            .unwrap()
            .len(),
        100
    );
    f.clock.advance(1);
    f.store.tick().unwrap();
    assert_eq!(
        reader
            .query(&id("exec-10"), &Filter::default())
            .unwrap()
            .len(),
        101,
        "1 s flushes"
    );
}

#[test]
fn logs_flushed_on_execution_completion() {
    let f = fixture();
    let reader = LogStore::open_read_only(f.store.dir()).unwrap();
    let other = f.start("exec-other");
    let log = f.start("exec-11");
    for i in 0..10 {
        log.emit(Level::Info, "worker", None, format!("line {i}"), None)
            .unwrap();
        other
            .emit(Level::Info, "worker", None, format!("o{i}"), None)
            .unwrap();
    }
    assert!(reader.query(&id("exec-11"), &Filter::default()).is_err());
    log.finish(FinalState::Success, "ok").unwrap();
    assert_eq!(f.store.buffered(), 0);
    // No clock movement, no 100 entries: finish() alone put everything on disk.
    let got = reader.query(&id("exec-11"), &Filter::default()).unwrap();
    assert_eq!(got.len(), 12);
    assert_eq!(got.last().unwrap().terminal_state(), Some("SUCCESS"));
}

#[test]
fn secrets_are_masked_in_every_source() {
    use tracing_subscriber::prelude::*;
    let f = fixture();
    let log = f.start("exec-12");
    log.register_secret("s3cr3t-token");
    log.task_started(
        &task("t"),
        "http",
        &json!({"headers": {"auth": "Bearer s3cr3t-token"}}),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(LogstoreLayer::new(f.engine.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let s = tracing::info_span!("x", execution_id = "exec-12");
        let _g = s.enter();
        tracing::info!(token = "s3cr3t-token", "using s3cr3t-token");
    });
    logstore::EntrySink::append(
        &*f.engine,
        LogEntry::new(
            id("exec-12"),
            NOON,
            Level::Info,
            "plugin:ns/p.a",
            "echo s3cr3t-token",
        ),
    )
    .unwrap();
    log.finish(FinalState::Success, "ok").unwrap();
    let got = f.stored("exec-12");
    let text = serde_json::to_string(&got).unwrap();
    assert!(!text.contains("s3cr3t-token"), "{text}");
    assert_eq!(text.matches("***").count(), 5, "{text}");
}

// --- Plugin runtime: real `node` plugins through the task runner, the engine and the store. ---

const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk/context.js");

fn node_plugin(script: &str) -> logstore::capture::PluginCommand {
    let mut cmd = logstore::capture::PluginCommand::trusted("node", ["-e", script]);
    cmd.env.push(("SDK".into(), SDK.into()));
    cmd
}

/// Runs `script` as task `t1` of a fresh execution with plugin `acme/files.copy`, finishes the
/// execution, and returns what the store holds for it.
fn run_node_task(script: &str) -> (logstore::TaskResult, Vec<LogEntry>) {
    run_node_task_with(script, &logstore::capture::CaptureConfig::default(), 0)
}

/// [`run_node_task`] with a capture config and retries.
fn run_node_task_with(
    script: &str,
    cfg: &logstore::capture::CaptureConfig,
    retries: u32,
) -> (logstore::TaskResult, Vec<LogEntry>) {
    let f = fixture();
    let log = f.start("exec-plugin");
    let plugin = logstore::capture::PluginId::parse("acme/files.copy").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt
        .block_on(logstore::run_plugin_task(
            &log,
            &task("t1"),
            &plugin,
            &node_plugin(script),
            cfg,
            retries,
            logstore::capture::CancelSignal::never(),
        ))
        .unwrap();
    log.finish(result.final_state(), &result.reason(&task("t1")))
        .unwrap();
    let reader = LogStore::open_read_only(f.store.dir()).unwrap();
    let got = reader
        .query(&id("exec-plugin"), &Filter::default())
        .unwrap();
    (result, got)
}

fn plugin_entries(all: &[LogEntry]) -> Vec<&LogEntry> {
    all.iter()
        .filter(|e| e.source.starts_with("plugin:"))
        .collect()
}

fn messages_and_levels<'a>(entries: &[&'a LogEntry]) -> Vec<(&'a str, Level)> {
    entries
        .iter()
        .map(|e| (e.message.as_str(), e.level))
        .collect()
}

fn assert_plugin_identity(e: &LogEntry) {
    assert_eq!(e.execution_id.as_str(), "exec-plugin");
    assert_eq!(e.task_id.as_ref().map(TaskId::as_str), Some("t1"));
    assert_eq!(e.source, "plugin:acme/files.copy");
}

#[test]
fn plugin_stdout_captured() {
    let (result, got) = run_node_task(
        r#"console.log("copying 3 files"); console.log("a.txt\nb.txt\r\nc.txt"); process.stdout.write("done, no newline");"#,
    );
    assert_eq!(result.end, logstore::capture::PluginEnd::Exited(0));
    let plugin = plugin_entries(&got);
    let msgs = messages_and_levels(&plugin);
    assert_eq!(
        msgs,
        [
            ("copying 3 files", Level::Info),
            ("a.txt", Level::Info),
            ("b.txt", Level::Info),
            ("c.txt", Level::Info),
            ("done, no newline", Level::Info),
        ]
    );
    plugin.iter().for_each(|e| assert_plugin_identity(e));
    // In the execution's order: task start, plugin lines, task completion, terminal.
    assert_eq!(got[1].source, "worker");
    assert_eq!(got[got.len() - 2].source, "worker");
    assert_eq!(got.last().unwrap().terminal_state(), Some("SUCCESS"));
}

#[test]
fn plugin_stderr_captured() {
    let (_, got) = run_node_task(
        r#"const { context } = require(process.env.SDK);
           context.debug("resolving paths", { n: 3 });
           context.info("copied", { bytes: 1024 });
           console.error("deprecated flag --fast");
           context.warn("slow disk");
           context.error("checksum mismatch", { file: "b.txt", stack: "Error\n at copy" });
           process.stderr.write('\x1e{"level":"ERROR","message":"spoof","execution_id":"other","source":"scheduler","task_id":"x"}\n');"#,
    );
    let plugin = plugin_entries(&got);
    let msgs = messages_and_levels(&plugin);
    assert_eq!(
        msgs,
        [
            ("resolving paths", Level::Debug),
            ("copied", Level::Info),
            ("deprecated flag --fast", Level::Warn),
            ("slow disk", Level::Warn),
            ("checksum mismatch", Level::Error),
            ("spoof", Level::Error),
        ]
    );
    plugin.iter().for_each(|e| assert_plugin_identity(e));
    assert_eq!(plugin[0].metadata.as_ref().unwrap()["n"], 3);
    assert_eq!(
        plugin[4].metadata.as_ref().unwrap()["stack"],
        "Error\n at copy"
    );
    assert_eq!(
        plugin[5].metadata,
        Some(json!({"attempt": 1}).as_object().unwrap().clone()),
        "fields beyond level/message/metadata are ignored; the engine adds the attempt"
    );
}

#[test]
fn plugin_log_truncation() {
    // 11 MiB of 1 KiB lines: 1 MiB past the 10 MiB cap.
    let (result, got) = run_node_task(
        r#"const line = Buffer.alloc(1024, "x"); line[1023] = 10;
           const block = Buffer.concat(Array(1024).fill(line));
           for (let i = 0; i < 11; i++) process.stdout.write(block);"#,
    );
    assert_eq!(result.end, logstore::capture::PluginEnd::Exited(0));
    let plugin = plugin_entries(&got);
    let warnings: Vec<&&LogEntry> = plugin.iter().filter(|e| e.level == Level::Warn).collect();
    assert_eq!(warnings.len(), 1, "exactly one truncation warning");
    let w = warnings[0];
    assert_plugin_identity(w);
    assert!(w.message.contains("truncated"), "{}", w.message);
    let meta = w.metadata.as_ref().unwrap();
    assert_eq!(meta["captured_bytes"], 10 * 1024 * 1024);
    assert_eq!(meta["dropped_bytes"], 1024 * 1024);
    assert_eq!(
        plugin.len(),
        10 * 1024 + 1,
        "10 MiB of lines stored, then the warning"
    );
    assert!(std::ptr::eq(*plugin.last().unwrap(), *w));
}

#[test]
fn attempt_number_on_every_entry_of_an_attempt() {
    // Attempt 1 prints past a 64-byte budget (on one pipe, so the order is defined) and fails;
    // attempt 2 does the same with a budget of its own, and succeeds.
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("tried");
    let script = format!(
        r#"const fs = require("fs"); const m = {marker:?};
           if (!fs.existsSync(m)) {{
             fs.writeFileSync(m, "");
             console.error("first try"); console.error("x".repeat(200)); process.exit(3);
           }}
           console.error("second try"); console.error("x".repeat(200));"#,
        marker = marker.to_str().unwrap()
    );
    let cfg = logstore::capture::CaptureConfig {
        max_output_bytes: 64,
        ..logstore::capture::CaptureConfig::default()
    };
    let (result, got) = run_node_task_with(&script, &cfg, 1);
    assert_eq!(result.attempts, 2);
    let tagged: Vec<(u64, &str, &str)> = got
        .iter()
        .filter(|e| e.task_id.is_some())
        .map(|e| {
            let meta = e.metadata.as_ref().expect("every task entry has metadata");
            let kind = meta
                .get("event")
                .or_else(|| meta.get("capture"))
                .and_then(|v| v.as_str())
                .unwrap_or(e.message.as_str());
            let attempt = meta.get("attempt").and_then(|a| a.as_u64());
            (
                attempt.unwrap_or_else(|| panic!("no attempt on {e:?}")),
                e.source.as_str(),
                kind,
            )
        })
        .collect();
    // What fits in 64 bytes after "first try\n" (after "second try\n": one x less).
    let x64 = "x".repeat(64 - "first try\n".len());
    let want = [
        (1, "worker", "task_started"),
        (1, "plugin:acme/files.copy", "first try"),
        (1, "plugin:acme/files.copy", x64.as_str()),
        (1, "plugin:acme/files.copy", "truncated"),
        (1, "worker", "task_completed"),
        (2, "worker", "task_retry"),
        (2, "worker", "task_started"),
        (2, "plugin:acme/files.copy", "second try"),
        (2, "plugin:acme/files.copy", x64[1..].as_ref()),
        (2, "plugin:acme/files.copy", "truncated"),
        (2, "worker", "task_completed"),
    ];
    assert_eq!(tagged, want);
    let warning = got
        .iter()
        .find(|e| e.metadata.as_ref().unwrap().get("capture").is_some())
        .unwrap();
    assert!(
        warning
            .message
            .starts_with("plugin output truncated: the limit of 64 bytes per attempt (stdout and stderr together) was reached"),
        "{}",
        warning.message
    );
}
