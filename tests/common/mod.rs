//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use logstore::{CommitPolicy, Config, ExecutionId, Level, LogEntry, ManualClock, TaskId};

/// 2026-11-25T12:00:00Z
pub const NOON: i64 = 1_795_608_000_000;

pub fn id(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

pub fn entry(exec: &str, ts: i64, msg: &str) -> LogEntry {
    LogEntry::new(id(exec), ts, Level::Info, "worker", msg)
}

pub fn task_entry(exec: &str, task: &str, ts: i64, level: Level, msg: &str) -> LogEntry {
    LogEntry::new(id(exec), ts, level, "worker", msg).with_task(TaskId::new(task).unwrap())
}

pub fn terminal(exec: &str, ts: i64, state: &str) -> LogEntry {
    let meta = serde_json::json!({"state": state})
        .as_object()
        .cloned()
        .unwrap();
    LogEntry::new(
        id(exec),
        ts,
        Level::Info,
        "scheduler",
        format!("execution {state}"),
    )
    .with_metadata(meta)
}

/// A config on a manual clock, with a flush thread that can only flush when the test moves it.
pub fn manual(clock: &ManualClock) -> Config {
    Config {
        commit: CommitPolicy::default(),
        clock: Arc::new(clock.clone()),
    }
}

pub fn manual_with(clock: &ManualClock, batch: usize, delay_ms: u64) -> Config {
    Config {
        commit: CommitPolicy {
            max_batch_entries: batch,
            max_batch_delay: Duration::from_millis(delay_ms),
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
    }
}

/// The `logstore` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_logstore");

/// `logstore --dir DIR dump --json ID`, parsed: one JSON object per entry.
pub fn dump_json(dir: &std::path::Path, id: &str) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .args(["dump", "--json", id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Peak resident memory of the largest child this test process has waited for, in bytes. (A
/// child forked from a large parent counts the parent's pages until it execs: measure before
/// holding anything big.)
pub fn children_max_rss() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    u64::try_from(usage.max_rss()).unwrap() * 1024 // Linux reports KiB
}
