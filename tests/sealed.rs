//! Sealed days (format v2): a past day is rewritten into one compressed file that answers
//! exactly what the live layout answered; the rewrite is crash-safe; damage stays local.
//!
//! Helpers live in this file (not tests/common) so that this file stands alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logstore::{
    CommitPolicy, Config, Durability, ExecutionId, Filter, Level, LogEntry, LogStore, ManualClock,
    TaskId,
};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// 2026-01-10T12:00:00Z.
const NOON: i64 = 1_768_046_400_000;

fn config(clock: &ManualClock, batch: usize) -> Config {
    Config {
        commit: CommitPolicy {
            max_batch_entries: batch,
            max_batch_delay: std::time::Duration::from_secs(3600),
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
    }
}

fn id(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Real-looking text: lines of this crate's own sources, so words repeat as in real logs.
fn lines() -> Vec<String> {
    include_str!("../src/store/sealed/seal.rs")
        .lines()
        .chain(include_str!("../docs/FORMAT.md").lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Writes `per_day` entries on each of `days` days, executions interleaved, some with tasks,
/// metadata and terminal entries; returns what was written per execution.
fn write_days(
    dir: &Path,
    clock: &ManualClock,
    days: usize,
    per_day: usize,
) -> BTreeMap<String, Vec<LogEntry>> {
    let text = lines();
    let store = LogStore::open_with(dir, config(clock, 50)).unwrap();
    let mut written: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    for d in 0..days {
        for i in 0..per_day {
            let exec = format!("exec-{d}-{}", i % 13);
            let mut e = LogEntry::new(
                id(&exec),
                clock_now(clock) + (i as i64 % 17),
                Level::ALL[i % 4],
                if i % 5 == 0 {
                    "scheduler"
                } else {
                    "plugin:http.get"
                },
                text[(i * 7 + d) % text.len()].clone(),
            );
            if i % 3 == 0 {
                e = e.with_task(TaskId::new(format!("task-{}", i % 4)).unwrap());
            }
            if i % 11 == 0 {
                let meta = serde_json::json!({"n": i, "why": "because"});
                e = e.with_metadata(meta.as_object().unwrap().clone());
            }
            store.append(&e).unwrap();
            written.entry(exec).or_default().push(e);
            clock.advance(1);
        }
        for k in 0..13 {
            let exec = format!("exec-{d}-{k}");
            let mut meta = serde_json::Map::new();
            meta.insert("state".into(), "SUCCESS".into());
            let e = LogEntry::new(
                id(&exec),
                clock_now(clock),
                Level::Info,
                "scheduler",
                "done",
            )
            .with_metadata(meta);
            store.append(&e).unwrap();
            store.finish_execution(&id(&exec)).unwrap();
            written.entry(exec).or_default().push(e);
        }
        store.flush(Durability::Synced).unwrap();
        clock.advance(DAY_MS);
    }
    // The next day's first write rolls the last day too.
    let e = LogEntry::new(id("today"), clock_now(clock), Level::Info, "s", "today");
    store.append(&e).unwrap();
    store.flush(Durability::Synced).unwrap();
    written.entry("today".into()).or_default().push(e);
    store.seal().unwrap();
    written
}

fn clock_now(clock: &ManualClock) -> i64 {
    logstore::Clock::now_ms(clock)
}

fn all(store: &LogStore, exec: &str) -> Vec<LogEntry> {
    store.query(&id(exec), &Filter::default()).unwrap()
}

#[test]
fn sealed_days_return_exactly_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let written = write_days(dir.path(), &clock, 3, 2000);
    assert_eq!(files_with_ext(dir.path(), "sealed").len(), 3);
    assert_eq!(
        files_with_ext(dir.path(), "log").len(),
        1,
        "only the live day stays v1"
    );
    assert!(files_with_ext(dir.path(), "sidx").is_empty());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    for (exec, want) in &written {
        assert_eq!(&all(&store, exec), want, "{exec}");
    }
    let list = store.list().unwrap();
    assert_eq!(list.len(), written.len());
    for s in &list {
        let want = &written[s.execution_id.as_str()];
        assert_eq!(s.entries, want.len() as u64);
        let errors = want.iter().filter(|e| e.level == Level::Error).count() as u64;
        assert_eq!(s.errors, errors);
        if s.execution_id.as_str() != "today" {
            assert_eq!(s.final_state.as_deref(), Some("SUCCESS"));
        }
    }
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        report.records,
        written.values().map(|v| v.len() as u64).sum::<u64>()
    );
}
