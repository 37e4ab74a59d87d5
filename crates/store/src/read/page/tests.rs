//! Lines on live days (scanned and own) and sealed days, line cursors, the run cache.

use super::*;
use crate::{Durability, Level, LogEntry};

fn entry(exec: &str, i: usize) -> LogEntry {
    LogEntry::new(
        ExecutionId::new(exec).unwrap(),
        1_795_608_000_000 + i as i64,
        Level::Info,
        "worker",
        format!("{exec} {i}"),
    )
}

fn lines(store: &LogStore, exec: &str, from: u64, cache: &mut RunCache) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let id = ExecutionId::new(exec).unwrap();
    store
        .scan_lines(&id, from, &Filter::default(), cache, |line, p| {
            out.push((line, p.message.to_owned()));
            true
        })
        .unwrap();
    out
}

#[test]
fn lines_seek_by_run_counts_and_a_cache_sees_new_runs() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LogStore::open(dir.path()).unwrap();
    let mut n = 0;
    let mut write = |count: usize| {
        for _ in 0..count {
            writer.append(&entry("a", n)).unwrap();
            writer.append(&entry("b", n)).unwrap();
            n += 1;
            if n % 7 == 0 {
                writer.flush(Durability::Written).unwrap(); // runs of several sizes
            }
        }
        writer.flush(Durability::Written).unwrap();
    };
    write(250);
    // Another handle reads the live day by scanning its index, as another process does.
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let mut cache = RunCache::default();
    let all = lines(&reader, "a", 0, &mut cache);
    let expect = |from: usize, to: usize| -> Vec<(u64, String)> {
        (from..to).map(|i| (i as u64, format!("a {i}"))).collect()
    };
    assert_eq!(all, expect(0, 250));
    assert_eq!(lines(&reader, "a", 123, &mut cache), expect(123, 250));
    write(100);
    // The cache scans only the new index entries, and misses none.
    assert_eq!(lines(&reader, "a", 240, &mut cache), expect(240, 350));
    assert_eq!(
        lines(&reader, "a", 0, &mut RunCache::default()),
        expect(0, 350)
    );
    assert_eq!(lines(&reader, "a", 350, &mut cache), []);
    let summary = reader
        .execution_summary(&ExecutionId::new("a").unwrap(), &mut cache)
        .unwrap();
    assert_eq!(summary.entries, 350);
    assert_eq!(
        Some(&summary),
        reader
            .list()
            .unwrap()
            .iter()
            .find(|s| s.execution_id.as_str() == "a")
    );
    let unknown = reader.scan_lines(
        &ExecutionId::new("zz").unwrap(),
        0,
        &Filter::default(),
        &mut cache,
        |_, _| true,
    );
    assert!(matches!(unknown, Err(StoreError::UnknownExecution(_))));
}

#[test]
fn a_line_cursor_resumes_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let writer = LogStore::open(dir.path()).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let id = ExecutionId::new("a").unwrap();
    let mut cursor = LineCursor::default();
    let mut seen = Vec::new();
    let mut poll = |cursor: &mut LineCursor, from: u64| {
        reader
            .read_new_lines(&id, cursor, from, |line, p| {
                seen.push((line, p.message.to_owned()));
                true
            })
            .unwrap()
    };
    assert!(!poll(&mut cursor, 0)); // nothing stored yet
    for i in 0..30 {
        writer.append(&entry("a", i)).unwrap();
        if i % 10 == 9 {
            writer.flush(Durability::Written).unwrap();
            assert!(poll(&mut cursor, 0));
        }
    }
    // A new cursor from line 25 (a resumed follower) skips the runs before it unread.
    let mut resumed = LineCursor::default();
    poll(&mut resumed, 25);
    assert_eq!(cursor.lines(), 30);
    let got: Vec<u64> = seen.iter().map(|(l, _)| *l).collect();
    let mut want: Vec<u64> = (0..30).collect();
    want.extend(25..30);
    assert_eq!(got, want);
    assert!(!cursor.is_finished());
}

/// Entries of `a` (with `b` interleaved, so the blocks at the ends of `a`'s range are shared)
/// read through lines before and after their day is sealed: the same lines, and a follower
/// that started on the live day goes on in the sealed file without loss or repeat.
#[test]
fn sealed_days_keep_their_lines_and_a_follower_crosses_the_sealing() {
    use crate::{CommitPolicy, Config, ManualClock};
    let dir = tempfile::tempdir().unwrap();
    let now = crate::Clock::now_ms(&crate::SystemClock);
    let clock = ManualClock::new(now - 86_400_000);
    let config = Config {
        commit: CommitPolicy::default(),
        clock: std::sync::Arc::new(clock),
        part_bytes: crate::DEFAULT_PART_BYTES,
        ..Config::default()
    };
    let long = |exec: &str, i: usize| {
        let mut e = entry(exec, i);
        e.message = format!("{exec} {i} {}", "payload of a long line ".repeat(8));
        e
    };
    let writer = LogStore::open_with(dir.path(), config).unwrap();
    for i in 0..3000 {
        writer.append(&long("a", i)).unwrap();
        if i % 3 == 0 {
            writer.append(&long("b", i)).unwrap();
        }
    }
    writer.flush(Durability::Written).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let a = ExecutionId::new("a").unwrap();
    let mut cursor = LineCursor::default();
    let mut followed = Vec::new();
    let mut follow = |cursor: &mut LineCursor| {
        reader
            .read_new_lines(&a, cursor, 0, |line, p| {
                followed.push((line, p.message.split(' ').nth(1).unwrap().to_owned()));
                true
            })
            .unwrap();
    };
    follow(&mut cursor);
    for i in 3000..6000 {
        writer.append(&long("a", i)).unwrap();
    }
    let mut end = entry("a", 6000);
    end.source = crate::SCHEDULER_SOURCE.to_owned();
    end.metadata = crate::metadata_from_json(r#"{"state":"FAILED"}"#).ok();
    writer.append(&end).unwrap();
    drop(writer);
    // The next writer, on the real clock, seals yesterday.
    let writer = LogStore::open(dir.path()).unwrap();
    writer.seal().unwrap();
    follow(&mut cursor);
    assert!(cursor.is_finished());
    let want: Vec<(u64, String)> = (0..=6000u64).map(|i| (i, i.to_string())).collect();
    assert_eq!(followed, want);
    // Several blocks, so that lines inside `a`'s range are reached by block counts.
    let blocks: usize = reader
        .days()
        .iter()
        .filter_map(|d| d.sealed().map(|s| s.block_count()))
        .sum();
    assert!(blocks >= 4, "{blocks} blocks");

    let mut cache = RunCache::default();
    for from in [0, 1, 2999, 3000, 4321, 5999, 6000, 6001] {
        let got: Vec<u64> = lines(&reader, "a", from, &mut cache)
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(got, (from..=6000).collect::<Vec<u64>>(), "from {from}");
    }
    let s = reader.execution_summary(&a, &mut cache).unwrap();
    assert_eq!(
        (s.entries, s.final_state.as_deref()),
        (6001, Some("FAILED"))
    );
}
