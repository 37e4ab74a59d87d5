//! `ExecutionLog::finish_async`: finishing executions from async code without blocking a
//! runtime worker, on a real store with real fsyncs.
//!
//! The runtime here has ONE worker thread. Calling the blocking `finish` from 64 tasks on it
//! runs the finishes one after the other, each paying its own fsync (64); `finish_async` lets
//! them wait together, so the group commit shares fsyncs among them (fewer than 64). The
//! figures go to stderr (`--nocapture`); `benches/throughput.rs` measures the time.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::{Engine, ExecutionLog, FinalState, Level, LogStore, SystemClock};

const EXECUTIONS: usize = 64;

/// 64 started executions with 4 entries each.
fn started(engine: &Arc<Engine>, prefix: &str) -> Vec<ExecutionLog> {
    (0..EXECUTIONS)
        .map(|i| {
            let log = engine
                .start_execution(common::id(&format!("{prefix}-{i:02}")), "wf")
                .unwrap();
            for n in 0..4 {
                log.emit(Level::Info, "worker", None, format!("line {n}"), None)
                    .unwrap();
            }
            log
        })
        .collect()
}

/// Finishes every execution from its own task on a one-worker runtime; returns the fsyncs made
/// and the time taken.
fn finish_all(store: &LogStore, logs: Vec<ExecutionLog>, asynchronously: bool) -> (u64, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = store.fsyncs();
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = logs
            .into_iter()
            .map(|log| {
                tokio::spawn(async move {
                    if asynchronously {
                        log.finish_async(FinalState::Success, "done").await
                    } else {
                        log.finish(FinalState::Success, "done")
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
    (store.fsyncs() - before, started.elapsed())
}

#[test]
fn concurrent_async_finishes_share_fsyncs_and_every_execution_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path()).unwrap());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));

    let (blocking, blocking_took) = finish_all(&store, started(&engine, "sync"), false);
    let (shared, async_took) = finish_all(&store, started(&engine, "async"), true);
    eprintln!(
        "64 finishes on a one-worker runtime: blocking finish {blocking} fsyncs in {blocking_took:?}, \
         finish_async {shared} fsyncs in {async_took:?}"
    );
    assert_eq!(
        blocking, EXECUTIONS as u64,
        "blocking finishes on one worker run one at a time"
    );
    assert!(shared < EXECUTIONS as u64, "{shared} fsyncs: none shared");

    // Every execution is whole and finished, as a reader in another process sees it.
    drop(engine);
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let listed = reader.list().unwrap();
    assert_eq!(listed.len(), 2 * EXECUTIONS);
    for s in &listed {
        assert_eq!(s.entries, 6, "{}", s.execution_id);
        assert_eq!(s.final_state.as_deref(), Some("SUCCESS"));
    }
}

#[test]
fn finish_async_reports_like_finish() {
    // The same terminal entry as `finish`: state, level, the reason with secrets masked.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LogStore::open(dir.path()).unwrap());
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    let log = engine.start_execution(common::id("one"), "wf").unwrap();
    log.register_secret("hunter2");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(log.finish_async(FinalState::Failed, "password hunter2 rejected"))
        .unwrap();
    let entries = store
        .query(&common::id("one"), &logstore::Filter::default())
        .unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.terminal_state(), Some("FAILED"));
    assert_eq!(last.level, Level::Error);
    assert_eq!(
        last.metadata.as_ref().unwrap()["reason"],
        "password *** rejected"
    );
}
