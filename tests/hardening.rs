//! The faults of issue 9 ("Hardening"), one test each, against real processes and real files:
//! timeouts that panicked, a terminal entry that could be refused, an index entry whose end
//! overflowed, a secret cut in two by the 64 KiB line split, a long `context.log` record that
//! lost its level, and a file truncated under a reader in another process (SIGBUS).
//! (Restricted-mode faults are in `tests/docker.rs`; the resync cost is in
//! `tests/fuzz_decoders.rs`.)

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::capture::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, PluginCommand, PluginId,
};
use logstore::format::IndexEntry;
use logstore::{
    Config, Engine, ExecutionId, Filter, FinalState, Level, LogEntry, LogStore, ManualClock,
    SystemClock, TaskId, TaskOutcome, MAX_MESSAGE_LEN,
};
use parking_lot::Mutex;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_logstore");
const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk/context.js");
/// 2026-11-20T12:00:00Z: a day in the past, so that reopening a day later seals it.
const PAST_NOON: i64 = 1_795_176_000_000;

fn id(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

fn logstore(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("logstore runs")
}

fn ctx(exec: &str) -> CaptureContext {
    CaptureContext::new(
        id(exec),
        TaskId::new("t").unwrap(),
        PluginId::parse("acme/hard.run").unwrap(),
    )
}

fn node(script: &str) -> PluginCommand {
    let mut cmd = PluginCommand::trusted("node", ["-e", script]);
    cmd.env.push(("SDK".into(), SDK.into()));
    cmd
}

fn meta(e: &LogEntry) -> Value {
    Value::Object(e.metadata.clone().unwrap_or_default())
}

// ---- 1. Timeouts that panic ----------------------------------------------------------------

/// `--timeout` values that overflowed `Duration::from_secs_f64` (1e20) or `Instant + d` (1e19)
/// are refused with an error naming the flag, before anything runs.
#[test]
fn huge_cli_timeouts_are_an_error_naming_the_flag() {
    for value in ["1e20", "1e19", "1e12"] {
        let dir = tempfile::tempdir().unwrap();
        let out = logstore(
            dir.path(),
            &[
                "run",
                "--execution",
                "t1",
                "--plugin",
                "ns/p.a",
                "--timeout",
                value,
                "--",
                "true",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "--timeout {value} panicked: {stderr}"
        );
        assert_eq!(out.status.code(), Some(1), "--timeout {value}: {stderr}");
        assert!(
            stderr.contains("--timeout") && stderr.contains(value),
            "the error names the flag and the value: {stderr}"
        );
    }
}

/// The library refuses a `CaptureConfig` whose timeouts cannot be added to a clock, with an
/// error naming the field, instead of panicking mid-run.
#[tokio::test]
async fn huge_library_timeouts_are_an_error_naming_the_field() {
    let huge = Duration::from_secs(u64::MAX);
    let configs = [
        (
            "timeout",
            CaptureConfig {
                timeout: Some(huge),
                ..CaptureConfig::default()
            },
        ),
        (
            "drain_timeout",
            CaptureConfig {
                drain_timeout: huge,
                ..CaptureConfig::default()
            },
        ),
    ];
    for (field, cfg) in configs {
        let sink = Mutex::new(Vec::new());
        let cmd = PluginCommand::trusted("true", Vec::<String>::new());
        // A panic inside run_plugin would fail this test; it must be an error.
        let result = run_plugin(&ctx("e1"), &cmd, &cfg, &sink, CancelSignal::never()).await;
        let err = result.expect_err("a timeout past the bound is refused");
        let text = err.to_string();
        assert!(
            text.contains(&format!("CaptureConfig::{field}")),
            "the error names the field: {text}"
        );
        assert!(sink.lock().is_empty(), "nothing ran, nothing was logged");
    }
    // The bound itself is accepted and the plugin runs.
    let cfg = CaptureConfig {
        timeout: Some(logstore::capture::MAX_TIMEOUT),
        ..CaptureConfig::default()
    };
    let sink = Mutex::new(Vec::new());
    let cmd = PluginCommand::trusted("true", Vec::<String>::new());
    let outcome = run_plugin(&ctx("e2"), &cmd, &cfg, &sink, CancelSignal::never())
        .await
        .unwrap();
    assert!(outcome.succeeded());
}

// ---- 3. A terminal entry can be refused ----------------------------------------------------

/// A 1 MB reason (and a 1 MB task error and stack) no longer make the terminal entry or the
/// task completion fail validation: the values are shortened, their full size is in the
/// metadata, and `finish` writes the terminal entry.
#[test]
fn a_1mb_reason_still_writes_the_terminal_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path()).unwrap());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    let exec = engine.start_execution(id("big-reason"), "wf").unwrap();
    let task = TaskId::new("t").unwrap();
    let mb = 1 << 20;
    let error = format!("first line\n{}", "e".repeat(mb));
    let stack = "s".repeat(mb);
    exec.task_started(&task, "x", &Value::Null).unwrap();
    exec.task_completed(
        &task,
        &TaskOutcome::Failure {
            error: error.clone(),
            stack: Some(stack.clone()),
        },
    )
    .expect("the completion is written");
    exec.task_retry(&task, 2, &"r".repeat(mb))
        .expect("the retry is written");
    let reason = "é".repeat(mb / 2); // 1 MB of two-byte characters: cuts must respect them
    exec.finish(FinalState::Failed, &reason)
        .expect("finish writes the terminal entry");

    let entries = store.query(&id("big-reason"), &Filter::default()).unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.terminal_state(), Some("FAILED"));
    let m = meta(last);
    assert_eq!(m["reason_bytes"], Value::from(reason.len()));
    let kept = m["reason"].as_str().unwrap();
    assert!(kept.len() < 64 * 1024 && reason.starts_with(kept.trim_end_matches("...")));
    assert!(last.message.len() <= MAX_MESSAGE_LEN);

    let done = entries
        .iter()
        .find(|e| meta(e)["event"] == "task_completed")
        .expect("the completion entry");
    let m = meta(done);
    assert_eq!(m["error_bytes"], Value::from(error.len()));
    assert_eq!(m["stack_bytes"], Value::from(stack.len()));
    assert!(m["error"].as_str().unwrap().starts_with("first line\neee"));
    let retry = entries
        .iter()
        .find(|e| meta(e)["event"] == "task_retry")
        .expect("the retry entry");
    assert_eq!(meta(retry)["reason_bytes"], Value::from(mb));
}

// ---- 5. Index arithmetic -------------------------------------------------------------------

fn live_index_of(dir: &Path) -> std::path::PathBuf {
    let segments = dir.join("segments");
    std::fs::read_dir(&segments)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .expect("a live index")
}

/// A CRC-valid index entry whose `offset + length` overflows u64 is damage: recovery drops it
/// and keeps every record, instead of panicking on the addition.
#[test]
fn an_index_entry_whose_end_overflows_is_damage() {
    let crafted = IndexEntry {
        hash: 7,
        offset: u64::MAX - 10,
        length: 100,
        count: 1,
        ..IndexEntry::default()
    };
    assert_eq!(
        IndexEntry::from_bytes(&crafted.to_bytes()),
        None,
        "decoding refuses it"
    );
    assert_eq!(crafted.end(), u64::MAX, "a hand-built one saturates");

    let dir = tempfile::tempdir().unwrap();
    let now = logstore::Clock::now_ms(&SystemClock);
    {
        let store = LogStore::open(dir.path()).unwrap();
        for i in 0..5 {
            let e = LogEntry::new(id("ix"), now + i, Level::Info, "worker", format!("m{i}"));
            store.append(&e).unwrap();
        }
        store.finish_execution(&id("ix")).unwrap();
    }
    let idx = live_index_of(dir.path());
    let mut bytes = std::fs::read(&idx).unwrap();
    bytes.extend_from_slice(&crafted.to_bytes());
    std::fs::write(&idx, bytes).unwrap();

    let reader = LogStore::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader.query(&id("ix"), &Filter::default()).unwrap().len(),
        5
    );
    drop(reader);
    let store = LogStore::open(dir.path()).unwrap();
    let got = store.query(&id("ix"), &Filter::default()).unwrap();
    assert_eq!(got.len(), 5);
}

// ---- 7. and 8. The 64 KiB line split ---------------------------------------------------------

async fn capture_into_store(exec: &str, script: &str, secret: Option<&str>) -> Vec<LogEntry> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path()).unwrap());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    if let Some(s) = secret {
        engine.register_secret(&id(exec), s);
    }
    let outcome = run_plugin(
        &ctx(exec),
        &node(script),
        &CaptureConfig::default(),
        &*engine,
        CancelSignal::never(),
    )
    .await
    .unwrap();
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.entries_lost, 0, "{:?}", outcome.sink_error);
    store.finish_execution(&id(exec)).unwrap();
    store.query(&id(exec), &Filter::default()).unwrap()
}

/// A secret that straddles the 64 KiB split point of a long line is masked: no part holds a
/// piece of it, on stdout and on stderr.
#[tokio::test]
async fn a_secret_straddling_the_line_split_is_masked() {
    let secret = "s3cr3t-T0KEN-value";
    for (stream, offset) in [("stdout", 6), ("stderr", 6), ("stdout", 1), ("stdout", 17)] {
        // The line's 65536th byte falls `offset` bytes into the secret.
        let script = format!(
            "process.{stream}.write('x'.repeat({}) + {secret:?} + 'y'.repeat(100) + '\\n')",
            MAX_MESSAGE_LEN - offset
        );
        let entries = capture_into_store("sec", &script, Some(secret)).await;
        let parts: Vec<&LogEntry> = entries
            .iter()
            .filter(|e| e.source.starts_with("plugin:"))
            .collect();
        assert!(parts.len() >= 2, "the line was split");
        let joined: String = parts.iter().map(|e| e.message.as_str()).collect();
        assert!(
            !joined.contains(secret),
            "{stream}, cut {offset} bytes in: the secret leaked across the parts"
        );
        assert!(joined.contains("x***y"), "{stream}: the mask is in place");
        for p in &parts {
            for k in 3..secret.len() {
                assert!(
                    !p.message.ends_with(&secret[..k]) && !p.message.starts_with(&secret[k..]),
                    "a part ends or starts with a piece of the secret"
                );
            }
        }
    }
}

/// A `context.log` record longer than one entry keeps its level (and metadata) on every part,
/// and its message is stored whole across the parts.
#[tokio::test]
async fn a_long_context_log_record_keeps_its_level_on_every_part() {
    let script = r#"const { context } = require(process.env.SDK);
        context.error('z'.repeat(200000) + 'END', { code: 42 });
        context.info('after');"#;
    let entries = capture_into_store("rec", script, None).await;
    let parts: Vec<&LogEntry> = entries
        .iter()
        .filter(|e| e.source.starts_with("plugin:") && e.message != "after")
        .collect();
    assert_eq!(parts.len(), 4, "200 kB in parts of at most 64 KiB");
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.level, Level::Error, "part {} keeps ERROR", i + 1);
        let m = meta(p);
        assert_eq!(m["part"], Value::from(i + 1));
        assert_eq!(m["continued"], Value::from(i + 1 < parts.len()));
        assert_eq!(m["code"], Value::from(42), "the record's metadata");
        assert!(m.get("protocol_error").is_none(), "{m}");
    }
    let joined: String = parts.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(joined, format!("{}END", "z".repeat(200_000)));
    let after = entries.iter().find(|e| e.message == "after").unwrap();
    assert_eq!(after.level, Level::Info);
}

// ---- 4. Mapped files that shrink -----------------------------------------------------------

/// A store whose only day is sealed with a sorted index (the first sealed layout) (segment, live index and sorted index, as
/// stores written before the sealed format have them, and which readers of this version map
/// no more), holding one execution without a terminal entry, so that `dump -f` keeps
/// following it and looks its runs up in the sorted index at every poll.
fn sealed_store(dir: &Path) {
    let clock = ManualClock::new(PAST_NOON);
    let config = Config {
        clock: Arc::new(clock.clone()),
        ..Config::default()
    };
    let store = LogStore::open_with(dir, config).unwrap();
    for i in 0..2000 {
        store
            .append(&LogEntry::new(
                id("shrink"),
                PAST_NOON + i,
                Level::Info,
                "worker",
                format!("line {i} {}", "p".repeat(200)),
            ))
            .unwrap();
    }
    store.finish_execution(&id("shrink")).unwrap();
    drop(store);
    let idx = live_index_of(dir);
    let bytes = std::fs::read(&idx).unwrap();
    let entries: Vec<IndexEntry> = bytes[16..]
        .chunks_exact(logstore::format::ENTRY_LEN)
        .map(|c| IndexEntry::from_bytes(c).unwrap())
        .collect();
    logstore::format::SortedIndex::write(&idx.with_extension("sidx"), &entries).unwrap();
}

/// `dump -f` in another process follows an execution of a (v1) sealed day; the test
/// truncates every file of that day to nothing under it. The reader must end with an error (or keep
/// going), never die of SIGBUS.
#[test]
fn a_reader_in_another_process_survives_files_truncated_under_it() {
    let dir = tempfile::tempdir().unwrap();
    sealed_store(dir.path());
    let mut child = Command::new(BIN)
        .arg("--dir")
        .arg(dir.path())
        .args(["dump", "shrink", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first line is out, the reader has its views of the day's files open.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("line 0"), "{first}");
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));

    for f in std::fs::read_dir(dir.path().join("segments")).unwrap() {
        let path = f.unwrap().path();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    // The follower polls every few hundred ms; give it several polls.
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let still_following = status.is_none();
    if still_following {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    drain.join().unwrap().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_ne!(
        status.signal(),
        Some(libc_sigbus()),
        "the reader died of SIGBUS: {stderr}"
    );
    assert!(
        !still_following,
        "the reader neither failed nor stopped: it should report the truncated file"
    );
    assert_eq!(status.code(), Some(1), "an error exit: {stderr}");
    assert!(
        stderr.contains("segments/") && stderr.contains("bytes"),
        "the error names the file and the sizes: {stderr}"
    );
}

fn libc_sigbus() -> i32 {
    7 // SIGBUS on Linux (x86_64 and aarch64)
}

// ---- 2. `--image` without `--restricted` -----------------------------------------------------

/// `--image` alone used to be ignored, running the plugin on the host; it is a usage error now.
#[test]
fn image_without_restricted_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("require('fs').writeFileSync({:?}, 'x')", marker);
    let out = logstore(
        dir.path(),
        &[
            "run",
            "--plugin",
            "ns/p.a",
            "--image",
            "some-image",
            "--",
            "node",
            "-e",
            &script,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--restricted"), "{stderr}");
    assert!(!marker.exists(), "the plugin ran on the host");
}
