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
