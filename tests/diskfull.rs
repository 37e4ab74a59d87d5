//! A full disk: the store on a 2 MiB tmpfs is written until writes fail. Flushes and
//! `finish_execution` return errors (no panic, no abort), `append` refuses with `BufferFull` once
//! `max_pending_entries` are waiting, acknowledged entries stay readable, and once space is freed
//! the buffered entries reach disk and writing goes on.
//!
//! Needs root (or CAP_SYS_ADMIN) for `mount -t tmpfs`; otherwise prints
//! `SKIPPED: cannot mount tmpfs: <reason>` to stderr and passes, or fails under `CI=true`
//! (`common::skip_or_fail`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use logstore::{
    CommitPolicy, Config, Durability, ExecutionId, Level, LogEntry, LogStore, ManualClock,
    StoreError,
};

/// Unmounts the tmpfs when dropped, also when the test panics.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Mount(at.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open: detach so the mount never outlives the test.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn entry(exec: &str, i: u64) -> LogEntry {
    LogEntry::new(
        ExecutionId::new(exec).unwrap(),
        NOON + i64::try_from(i).unwrap(),
        Level::Info,
        "worker",
        format!("{exec} entry {i} {}", "x".repeat(900)),
    )
}

#[test]
fn full_disk_errors_then_resumes() {
    let mnt = tempfile::tempdir().unwrap();
    let _mount = match Mount::tmpfs(mnt.path(), "2m") {
        Ok(m) => m,
        Err(reason) => {
            skip_or_fail(&format!("cannot mount tmpfs: {reason}"));
            return;
        }
    };
    let filler = mnt.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let store_dir = mnt.path().join("store");
    let clock = ManualClock::new(NOON);
    let max_pending = 300;
    let config = Config {
        commit: CommitPolicy {
            max_batch_entries: 40,
            max_pending_entries: max_pending,
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
        part_bytes: logstore::DEFAULT_PART_BYTES,
    };
    let store = LogStore::open_with(&store_dir, config.clone()).unwrap();

    // Phase 1: finished executions until finishing fails.
    let mut acked: Vec<(String, Vec<LogEntry>)> = Vec::new();
    let mut appended: Vec<LogEntry> = Vec::new();
    let mut finish_error = None;
    'fill: for k in 0.. {
        let exec = format!("fill-{k}");
        let mut entries = Vec::new();
        for i in 0..20 {
            let e = entry(&exec, i);
            store.append(&e).unwrap();
            appended.push(e.clone());
            entries.push(e);
        }
        match store.finish_execution(&ExecutionId::new(exec.as_str()).unwrap()) {
            Ok(()) => acked.push((exec, entries)),
            Err(e) => {
                finish_error = Some(e);
                break 'fill;
            }
        }
        assert!(k < 10_000, "the 2 MiB disk never filled up");
    }
    let finish_error = finish_error.unwrap();
    eprintln!(
        "disk full after {} finished executions: {finish_error}",
        acked.len()
    );
    assert!(
        matches!(finish_error, StoreError::Io { .. }),
        "{finish_error:?}"
    );
    assert!(store.flush(Durability::Written).is_err());

    // Phase 2: appends are buffered until the bound, then refused.
    let mut refused = None;
    for i in 0..(max_pending as u64 * 2) {
        let e = entry("pending", i);
        match store.append(&e) {
            Ok(()) => appended.push(e),
            Err(err) => {
                refused = Some(err);
                break;
            }
        }
    }
    let refused = refused.expect("append never refused");
    assert!(
        matches!(refused, StoreError::BufferFull { pending, .. } if pending == max_pending),
        "{refused:?}"
    );
    assert_eq!(store.buffered(), max_pending);

    // Acknowledged executions stay readable, by the writer and by a reader.
    let ro = LogStore::open_read_only(&store_dir).unwrap();
    for (exec, entries) in &acked {
        assert_eq!(&all_of(&ro, exec), entries, "{exec} (read-only)");
        assert_eq!(&all_of(&store, exec), entries, "{exec} (writer)");
    }
    drop(ro);

    // Phase 3: space comes back; the buffer drains and writing resumes.
    std::fs::remove_file(&filler).unwrap();
    store.flush(Durability::Synced).unwrap();
    assert_eq!(store.buffered(), 0);
    let after = entry("after", 0);
    store.append(&after).unwrap();
    store
        .finish_execution(&ExecutionId::new("after").unwrap())
        .unwrap();
    appended.push(after);
    let check = |store: &LogStore| {
        let mut by_exec: std::collections::BTreeMap<&str, Vec<LogEntry>> = Default::default();
        for e in &appended {
            by_exec
                .entry(e.execution_id.as_str())
                .or_default()
                .push(e.clone());
        }
        for (exec, want) in by_exec {
            assert_eq!(all_of(store, exec), want, "{exec}");
        }
        assert!(store.verify().unwrap().is_ok());
    };
    check(&store);
    drop(store);
    let store = LogStore::open_with(&store_dir, config).unwrap();
    check(&store);
}
