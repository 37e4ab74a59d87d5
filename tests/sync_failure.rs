//! A failed fsync is never forgotten (issue 31; "Can Applications Recover from fsync
//! Failures?", USENIX ATC '20). When `fdatasync` of the live segment fails, Linux may already
//! have dropped the dirty pages it was writing and clears the error once reported, so a later
//! fsync that succeeds proves nothing about the bytes written before. The store stops
//! (fail-stop): nothing more is accepted or acknowledged until it is reopened, and recovery
//! then reads exactly what reached the disk.
//!
//! The disk's side is simulated: the failpoint `segment-fdatasync` makes the fsync fail, and
//! the bytes it was making durable are zeroed in the segment, as a power cut after the kernel
//! dropped them would leave them.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{id, NOON};
use logstore::{
    CommitPolicy, Config, Durability, Filter, Level, LogEntry, LogStore, ManualClock, StoreError,
};

fn newest_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

fn entry(exec: &str, i: i64) -> LogEntry {
    LogEntry::new(
        id(exec),
        NOON + i,
        Level::Info,
        "worker",
        format!("{exec} line {i}"),
    )
}

fn config(clock: &ManualClock) -> Config {
    Config {
        clock: std::sync::Arc::new(clock.clone()),
        // Big batches and no timer: the test decides when bytes are written.
        commit: CommitPolicy {
            max_batch_entries: 100_000,
            max_batch_delay: std::time::Duration::from_secs(3600),
            ..CommitPolicy::default()
        },
        ..Config::default()
    }
}

#[test]
fn no_entry_acknowledged_as_synced_is_lost_after_a_failed_fsync() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), config(&clock)).unwrap();

    // An execution finished before the fault: acknowledged, and must stay.
    for i in 0..100 {
        store.append(&entry("early", i)).unwrap();
    }
    store.finish_execution(&id("early")).unwrap();
    let segment = newest_segment(dir.path());
    let durable = std::fs::metadata(&segment).unwrap().len();

    // 2,000 entries written to the segment, then the fsync that should make them durable fails.
    for i in 0..2000 {
        store.append(&entry("victim", i)).unwrap();
    }
    store.flush(Durability::Written).unwrap();
    let written = std::fs::metadata(&segment).unwrap().len();
    assert!(written > durable);
    fail::cfg("segment-fdatasync", "return").unwrap();
    let failed = store.flush(Durability::Synced);
    fail::remove("segment-fdatasync");
    let err = failed.expect_err("the failed fsync is reported");
    assert!(
        err.to_string().contains("fsync") && err.to_string().contains("segments"),
        "the error names the operation and where: {err}"
    );
    // The kernel dropped the dirty pages: what the disk holds after a power cut.
    let zeros = vec![0u8; usize::try_from(written - durable).unwrap()];
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .write_all_at(&zeros, durable)
        .unwrap();

    // The execution goes on and finishes: the next fsync would succeed, but it must not
    // acknowledge entries whose bytes may be gone.
    let appended = store.append(&entry("victim", 2000));
    let finished = appended.and_then(|()| store.finish_execution(&id("victim")));
    let acknowledged = finished.is_ok();
    match &finished {
        Ok(()) => {}
        Err(StoreError::SyncFailed { reason }) => {
            assert!(
                reason.contains("fsync"),
                "the stop names the failed fsync: {reason}"
            )
        }
        Err(e) => panic!("a write after a failed fsync fails with SyncFailed, not: {e}"),
    }
    // Reads keep working while the writer is stopped.
    assert_eq!(
        store.query(&id("early"), &Filter::default()).unwrap().len(),
        100
    );
    drop(store);

    // Reopening recovers what reached the disk.
    let store = LogStore::open_with(dir.path(), config(&clock)).unwrap();
    let early = store.query(&id("early"), &Filter::default()).unwrap();
    assert_eq!(
        early.len(),
        100,
        "entries acknowledged before the fault are all there"
    );
    let victim = store
        .query(&id("victim"), &Filter::default())
        .map(|v| v.len())
        .unwrap_or(0);
    if acknowledged {
        assert_eq!(
            victim, 2001,
            "finish_execution acknowledged 2,001 entries as synced; {victim} are left after a reopen"
        );
    }
    assert!(
        !acknowledged,
        "after a failed fsync, nothing is acknowledged until the store is reopened"
    );
    // The reopened writer accepts and acknowledges again.
    store.append(&entry("after", 0)).unwrap();
    store.finish_execution(&id("after")).unwrap();
    assert_eq!(
        store.query(&id("after"), &Filter::default()).unwrap().len(),
        1
    );
    scenario.teardown();
}
