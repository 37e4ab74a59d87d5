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
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
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

/// Log text that zstd cannot shrink much (so parts take real space): hex of an LCG.
fn noisy(exec: &str, i: u64) -> LogEntry {
    let mut x = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut text = String::with_capacity(600);
    while text.len() < 600 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        text.push_str(&format!("{:016x}", x >> 1));
    }
    LogEntry::new(
        ExecutionId::new(exec).unwrap(),
        NOON + i64::try_from(i).unwrap(),
        Level::Info,
        "worker",
        format!("{exec} entry {i} {text}"),
    )
}

/// Fills the file system of `path` with `path` until a write fails; returns its size.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    let mut n = 0u64;
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {
        n += chunk.len() as u64;
    }
    n
}

#[test]
fn full_disk_during_a_merge_keeps_the_parts_and_retries() {
    let mnt = tempfile::tempdir().unwrap();
    let _mount = match Mount::tmpfs(mnt.path(), "8m") {
        Ok(m) => m,
        Err(reason) => {
            skip_or_fail(&format!("cannot mount tmpfs: {reason}"));
            return;
        }
    };
    let store_dir = mnt.path().join("store");
    let clock = ManualClock::new(NOON);
    let config = Config {
        part_bytes: 64 << 10,
        ..manual(&clock)
    };
    let store = LogStore::open_with(&store_dir, config).unwrap();
    let mut written: Vec<LogEntry> = Vec::new();
    for i in 0..1200 {
        let e = noisy(&format!("e{}", i % 3), i);
        store.append(&e).unwrap();
        written.push(e);
    }
    store
        .finish_execution(&ExecutionId::new("e0").unwrap())
        .unwrap();
    store.seal().unwrap();
    let parts = files_with_ext(&store_dir, "part");
    assert!(parts.len() > 1, "{parts:?}");
    // Full disk, then room for a few entries of the next day but not for the merge of the
    // parts into the sealed day.
    let filler = mnt.path().join("filler");
    fill(&filler);
    let size = std::fs::metadata(&filler).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap();
    f.set_len(size - (64 << 10)).unwrap();
    f.sync_all().unwrap();
    drop(f);
    clock.advance(86_400_000);
    let late = LogEntry::new(
        ExecutionId::new("e1").unwrap(),
        NOON + 86_400_000,
        Level::Info,
        "worker",
        "the next day".to_owned(),
    );
    store.append(&late).unwrap();
    store.flush(Durability::Synced).unwrap();
    let err = store.seal().expect_err("the merge cannot fit");
    assert!(err.to_string().contains("No space left"), "{err}");
    // The parts stay (the day's last segment may have become one more part before the merge
    // failed), nothing is sealed, and every entry reads back; no temporary file holds on to
    // space.
    let after = files_with_ext(&store_dir, "part");
    assert!(
        parts.iter().all(|p| after.contains(p)),
        "{parts:?} -> {after:?}"
    );
    assert!(files_with_ext(&store_dir, "sealed").is_empty());
    let names: Vec<String> = std::fs::read_dir(store_dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    let mut want = written.clone();
    want.push(late.clone());
    let check = |s: &LogStore| {
        for exec in ["e0", "e1", "e2"] {
            let w: Vec<LogEntry> = want
                .iter()
                .filter(|e| e.execution_id.as_str() == exec)
                .cloned()
                .collect();
            assert_eq!(all_of(s, exec), w, "{exec}");
        }
    };
    check(&store);
    check(&LogStore::open_read_only(&store_dir).unwrap());
    // Space comes back: the retry merges the day into its sealed file.
    std::fs::remove_file(&filler).unwrap();
    store.seal().unwrap();
    assert!(files_with_ext(&store_dir, "part").is_empty());
    assert_eq!(files_with_ext(&store_dir, "sealed").len(), 1);
    check(&store);
    assert!(store.verify().unwrap().is_ok());
}
