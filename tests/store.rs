//! The store through its public API: write paths, group commit triggers, readers, days, gc.

mod common;

use common::*;
use logstore::{Durability, Filter, Level, LogStore, ManualClock, StoreError};

#[test]
fn entries_round_trip_in_append_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let meta = serde_json::json!({"k": [1, 2], "s": "x"})
        .as_object()
        .cloned()
        .unwrap();
    let mut written = Vec::new();
    for i in 0..250 {
        let mut e = task_entry(
            "exec-1",
            "t1",
            NOON + i,
            Level::ALL[usize::try_from(i % 4).unwrap()],
            &format!("line {i}"),
        );
        if i % 7 == 0 {
            e = e.with_metadata(meta.clone());
        }
        store.append(&e).unwrap();
        written.push(e);
    }
    store.flush(Durability::Written).unwrap();
    assert_eq!(
        store.query(&id("exec-1"), &Filter::default()).unwrap(),
        written
    );
}

#[test]
fn many_executions_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let n_exec = 37;
    for i in 0..3000 {
        store
            .append(&entry(
                &format!("e{}", i % n_exec),
                NOON + i,
                &format!("m{i}"),
            ))
            .unwrap();
    }
    store.flush(Durability::Written).unwrap();
    for e in 0..n_exec {
        let got = store
            .query(&id(&format!("e{e}")), &Filter::default())
            .unwrap();
        let want: Vec<String> = (0..3000)
            .filter(|i| i % n_exec == e)
            .map(|i| format!("m{i}"))
            .collect();
        assert_eq!(
            got.iter().map(|x| x.message.clone()).collect::<Vec<_>>(),
            want
        );
    }
    // Compact index: fewer runs than entries when executions write several entries per batch.
    let stats = store.stats().unwrap();
    assert_eq!(stats[0].entries, 3000);
    assert!(stats[0].runs < 3000, "runs {}", stats[0].runs);
}

#[test]
fn filters_level_task_source_time_limit_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    for i in 0..40 {
        let mut e = task_entry(
            "x",
            if i % 2 == 0 { "even" } else { "odd" },
            NOON + i,
            Level::ALL[usize::try_from(i % 4).unwrap()],
            &i.to_string(),
        );
        e.source = if i < 20 {
            "plugin:ns/p.a".into()
        } else {
            "worker".into()
        };
        store.append(&e).unwrap();
    }
    store.flush(Durability::Written).unwrap();
    let q = |f: Filter| -> Vec<i64> {
        store
            .query(&id("x"), &f)
            .unwrap()
            .iter()
            .map(|e| e.timestamp - NOON)
            .collect()
    };
    assert_eq!(
        q(Filter {
            min_level: Some(Level::Error),
            ..Filter::default()
        }),
        (0..40).filter(|i| i % 4 == 3).collect::<Vec<_>>()
    );
    assert_eq!(
        q(Filter {
            task_id: Some("odd".parse().unwrap()),
            ..Filter::default()
        })
        .len(),
        20
    );
    assert_eq!(
        q(Filter {
            source_prefix: Some("plugin:".into()),
            ..Filter::default()
        }),
        (0..20).collect::<Vec<_>>()
    );
    assert_eq!(
        q(Filter {
            since_ms: Some(NOON + 5),
            until_ms: Some(NOON + 8),
            ..Filter::default()
        }),
        vec![5, 6, 7]
    );
    assert_eq!(
        q(Filter {
            limit: Some(3),
            ..Filter::default()
        }),
        vec![0, 1, 2]
    );
    assert_eq!(
        q(Filter {
            tail: Some(2),
            ..Filter::default()
        }),
        vec![38, 39]
    );
}

#[test]
fn unknown_execution_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append(&entry("a", NOON, "x")).unwrap();
    store.flush(Durability::Written).unwrap();
    let err = store.query(&id("nope"), &Filter::default()).unwrap_err();
    assert!(matches!(err, StoreError::UnknownExecution(_)), "{err}");
    assert!(err.to_string().contains("nope"));
}

#[test]
fn hundred_entries_trigger_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    for i in 0..99 {
        store.append(&entry("e", NOON, &i.to_string())).unwrap();
    }
    assert_eq!(store.buffered(), 99);
    assert!(
        reader.query(&id("e"), &Filter::default()).is_err(),
        "nothing on disk before the 100th"
    );
    store.append(&entry("e", NOON, "99")).unwrap();
    assert_eq!(store.buffered(), 0);
    assert_eq!(
        reader.query(&id("e"), &Filter::default()).unwrap().len(),
        100
    );
}

#[test]
fn one_second_triggers_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    store.append(&entry("e", NOON, "first")).unwrap();
    clock.advance(600);
    store.append(&entry("e", NOON, "second")).unwrap();
    clock.advance(399);
    store.tick().unwrap();
    assert_eq!(
        store.buffered(),
        2,
        "999 ms after the oldest entry: not yet"
    );
    assert!(reader.query(&id("e"), &Filter::default()).is_err());
    clock.advance(1);
    store.tick().unwrap();
    assert_eq!(store.buffered(), 0);
    assert_eq!(reader.query(&id("e"), &Filter::default()).unwrap().len(), 2);
}

#[test]
fn the_flush_thread_applies_the_time_trigger_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    store.append(&entry("e", NOON, "x")).unwrap();
    clock.advance(1000);
    // The thread polls the injected clock at least every 100 ms of real time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.buffered() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "flush thread never flushed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn finishing_an_execution_flushes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    store.append(&entry("e", NOON, "work")).unwrap();
    store.append(&terminal("e", NOON, "SUCCESS")).unwrap();
    store.finish_execution(&id("e")).unwrap();
    assert_eq!(store.buffered(), 0);
    let got = reader.query(&id("e"), &Filter::default()).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].terminal_state(), Some("SUCCESS"));
    let list = reader.list().unwrap();
    assert_eq!(list[0].final_state.as_deref(), Some("SUCCESS"));
}

#[test]
fn concurrent_finishes_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LogStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let exec = format!("c{t}");
                for i in 0..50 {
                    store.append(&entry(&exec, NOON + i, "x")).unwrap();
                }
                store.append(&terminal(&exec, NOON + 50, "FAILED")).unwrap();
                store.finish_execution(&id(&exec)).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    for t in 0..16 {
        assert_eq!(
            reader
                .query(&id(&format!("c{t}")), &Filter::default())
                .unwrap()
                .len(),
            51
        );
    }
}

#[test]
fn second_writer_is_refused_with_the_holder_pid() {
    let dir = tempfile::tempdir().unwrap();
    let _first = LogStore::open(dir.path()).unwrap();
    let err = LogStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Locked { holder: Some(pid), .. } if pid == std::process::id()),
        "{err}"
    );
    assert!(err.to_string().contains(&std::process::id().to_string()));
    // Readers are never refused.
    LogStore::open_read_only(dir.path()).unwrap();
}

#[test]
fn midnight_crossing_is_found_in_both_days() {
    let dir = tempfile::tempdir().unwrap();
    let midnight = NOON + 12 * 3_600_000;
    let clock = ManualClock::new(midnight - 500);
    {
        let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
        store
            .append(&entry("night", midnight - 500, "before"))
            .unwrap();
        store.append(&entry("other", midnight - 500, "o")).unwrap();
        store.flush(Durability::Written).unwrap();
        clock.set(midnight + 10);
        store
            .append(&entry("night", midnight + 10, "after"))
            .unwrap();
        store.flush(Durability::Written).unwrap();
        let got = store.query(&id("night"), &Filter::default()).unwrap();
        assert_eq!(
            got.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["before", "after"]
        );
        // The roll queued the old day for sealing in the background; wait for it.
        store.seal().unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(stats.len(), 2);
        assert!(stats[0].sealed && !stats[1].sealed);
        assert_eq!((stats[0].version, stats[1].version), (2, 1));
    }
    let files: Vec<String> = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(files.contains(&"2026-11-25.sealed".to_owned()), "{files:?}");
    assert!(!files.contains(&"2026-11-25.log".to_owned()), "{files:?}");
    assert!(
        files.contains(&"2026-11-26.000001.log".to_owned()),
        "{files:?}"
    );
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader
            .query(&id("night"), &Filter::default())
            .unwrap()
            .len(),
        2
    );
    // Reopening the writer keeps both days readable.
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    assert_eq!(
        store.query(&id("night"), &Filter::default()).unwrap().len(),
        2
    );
}

#[test]
fn gc_deletes_whole_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let clock = ManualClock::new(NOON - 5 * day);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    for d in 0..6 {
        clock.set(NOON - (5 - d) * day);
        store
            .append(&entry(&format!("d{d}"), clock_now(&clock), "x"))
            .unwrap();
        store.flush(Durability::Written).unwrap();
    }
    // Past days are sealed in the background; wait, so the file count below is exact.
    assert_eq!(store.seal().unwrap().len(), 5);
    let deleted = store.gc(2).unwrap();
    assert_eq!(deleted.len(), 3, "{deleted:?}");
    for d in 0..3 {
        assert!(store
            .query(&id(&format!("d{d}")), &Filter::default())
            .is_err());
    }
    for d in 3..6 {
        assert_eq!(
            store
                .query(&id(&format!("d{d}")), &Filter::default())
                .unwrap()
                .len(),
            1
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .count(),
        // Two sealed days (one file each) and the live day (segment and live index).
        2 + 2
    );
}

fn clock_now(c: &ManualClock) -> i64 {
    use logstore::Clock;
    c.now_ms()
}

#[test]
fn follow_returns_new_entries_and_stops_at_the_terminal_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let mut f = reader.follow(&id("f"), Filter::default());
    assert!(f.poll().unwrap().is_empty());
    store.append(&entry("f", NOON, "1")).unwrap();
    store.flush(Durability::Written).unwrap();
    assert_eq!(f.poll().unwrap().len(), 1);
    assert!(f.poll().unwrap().is_empty());
    store.append(&entry("f", NOON, "2")).unwrap();
    store.append(&terminal("f", NOON, "CANCELLED")).unwrap();
    store.finish_execution(&id("f")).unwrap();
    let got = f.poll().unwrap();
    assert_eq!(got.len(), 2);
    assert!(f.is_finished());
}

#[test]
fn invalid_entries_are_refused_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append(&entry("v", NOON, "ok")).unwrap();
    let mut bad = entry("v", NOON, "x");
    bad.source = String::new();
    assert!(matches!(store.append(&bad), Err(StoreError::Entry(_))));
    store.flush(Durability::Written).unwrap();
    assert_eq!(store.query(&id("v"), &Filter::default()).unwrap().len(), 1);
}

#[test]
fn gc_honours_every_retention_hold() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000;
    let clock = ManualClock::new(NOON - 4 * day);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let days: Vec<logstore::Day> = (0..5)
        .map(|d| {
            clock.set(NOON - (4 - d) * day);
            store
                .append(&entry(&format!("d{d}"), clock_now(&clock), "x"))
                .unwrap();
            store.flush(Durability::Written).unwrap();
            logstore::Day::from_unix_ms(clock_now(&clock))
        })
        .collect();
    store.seal().unwrap();
    // Two holders: one done through the second day, one through the third.
    logstore::set_hold(
        dir.path(),
        "audit",
        Some(days[1]),
        "the auditor has not read it",
    )
    .unwrap();
    logstore::set_hold(dir.path(), "backup", Some(days[2]), "no backup has it").unwrap();
    let err = store.gc(0).unwrap_err();
    assert!(
        matches!(&err, StoreError::Held { day, hold, .. } if *day == days[2] && hold == "audit"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the auditor has not read it"),
        "{err}"
    );
    assert_eq!(store.list().unwrap().len(), 5, "nothing deleted");
    // What every hold is done with goes; then the holders release the rest.
    assert_eq!(store.gc(2).unwrap(), days[..2].to_vec());
    logstore::set_hold(
        dir.path(),
        "audit",
        Some(days[3]),
        "the auditor has not read it",
    )
    .unwrap();
    logstore::remove_hold(dir.path(), "backup").unwrap();
    assert_eq!(store.gc(0).unwrap(), days[2..4].to_vec());
    assert_eq!(store.list().unwrap().len(), 1, "today is never deleted");
    let holds = logstore::holds(dir.path()).unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(
        (holds[0].name.as_str(), holds[0].through),
        ("audit", Some(days[3]))
    );
}

/// A reader that opens a segment the instant after the writer created it, before its header
/// is written, must not keep its guess of the segment's format: once the header and records
/// are there, the reader sees them (it once took such a segment for the old format forever
/// and skipped every record in it as damaged).
#[test]
fn a_reader_that_saw_a_segment_before_its_header_reads_it_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    for i in 0..10 {
        store.append(&entry("early", NOON + i, "line")).unwrap();
    }
    store.flush(Durability::Written).unwrap();
    let seg = last_segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    // The reader opens while the segment is still empty...
    std::fs::write(&seg, b"").unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    assert!(all_of(&reader, "early").is_empty());
    // ... then the header and the records land.
    std::fs::write(&seg, &bytes).unwrap();
    assert_eq!(all_of(&reader, "early").len(), 10);
    drop(store);
}

/// The first page of the executions listing, named only for the page (`executions` with a
/// limit), equals the whole listing filtered, sorted and cut (`executions` without one), for
/// every filter and through every page, on a store of a sealed day, today's parts and live
/// segments, with executions that span days and first timestamps that tie.
#[test]
fn a_page_of_executions_equals_the_whole_listing_cut_to_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let clock = logstore::ManualClock::new(NOON - 86_400_000);
    let config = || logstore::Config {
        part_bytes: 2048,
        ..common::manual(&clock)
    };
    let mut t = 0;
    for day in 0..2 {
        let store = LogStore::open_with(dir.path(), config()).unwrap();
        for i in 0..60i64 {
            let exec = format!("x{:02}", (i * 7 + day * 13) % 45);
            // Many first timestamps tie (i / 3), to check the order by id within a tie.
            store
                .append(&entry(&exec, NOON + (i / 3) * 100 + day * 50_000, "line"))
                .unwrap();
            if i % 11 == 0 {
                store
                    .append(&terminal(
                        &exec,
                        NOON + day * 50_000 + 9_000,
                        if i % 2 == 0 { "SUCCESS" } else { "FAILED" },
                    ))
                    .unwrap();
            }
            t += 1;
        }
        store.flush(Durability::Written).unwrap();
        store.seal().unwrap();
        drop(store);
        clock.advance(86_400_000);
    }
    assert!(t > 0);
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    for state in [None, Some("RUNNING"), Some("SUCCESS"), Some("FAILED")] {
        for (since, until) in [
            (None, None),
            (Some(NOON + 500), None),
            (None, Some(NOON + 50_300)),
            (Some(NOON + 200), Some(NOON + 50_100)),
        ] {
            let base = logstore::ListFilter {
                state: state.map(str::to_owned),
                since_ms: since,
                until_ms: until,
                ..Default::default()
            };
            let all = reader.executions(&base).unwrap().executions;
            for limit in [1, 4, 7, 100] {
                let mut paged = Vec::new();
                let mut after = None;
                loop {
                    let page = reader
                        .executions(&logstore::ListFilter {
                            limit: Some(limit),
                            after: after.clone(),
                            ..base.clone()
                        })
                        .unwrap();
                    assert!(page.executions.len() <= limit);
                    paged.extend(page.executions);
                    match page.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
                assert_eq!(
                    paged, all,
                    "state {state:?} since {since:?} until {until:?} limit {limit}"
                );
            }
        }
    }
}

/// Pages of the listing, every filter, through the catalogs of a sealed day of thousands of
/// executions (several catalog pages, many fence windows) and of today's parts, with
/// executions that continue from one day into the next: equal to the whole listing. Then with
/// the sealed day's catalog page and fence damaged: the same listing (from the execution
/// table), and every execution still found.
#[test]
fn pages_through_catalogs_equal_the_whole_listing_and_survive_a_damaged_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let clock = logstore::ManualClock::new(NOON - 86_400_000);
    let config = || logstore::Config {
        part_bytes: 4 << 10,
        ..common::manual(&clock)
    };
    let n = 2_500i64;
    {
        let store = LogStore::open_with(dir.path(), config()).unwrap();
        for i in 0..n {
            // First entries in an order unrelated to the ids' hashes, some tied.
            let ts = NOON - 80_000_000 + (i * 7919 % n) * 10 + i % 3;
            let id = format!("a{i:04}");
            store.append(&entry(&id, ts, "first")).unwrap();
            if i % 7 == 0 {
                let state = ["SUCCESS", "FAILED", "CANCELLED"][usize::try_from(i % 3).unwrap()];
                store.append(&terminal(&id, ts + 5, state)).unwrap();
            } else {
                store.append(&entry(&id, ts + 5, "second")).unwrap();
            }
        }
        store.flush(Durability::Written).unwrap();
    }
    clock.advance(86_400_000);
    {
        let store = LogStore::open_with(dir.path(), config()).unwrap();
        store.seal().unwrap();
        for i in 0..600i64 {
            let id = format!("b{i:03}");
            store.append(&entry(&id, NOON + i * 3, "today")).unwrap();
            // Some of yesterday's go on today.
            if i % 20 == 0 {
                store
                    .append(&entry(&format!("a{:04}", i * 4), NOON + i * 3 + 1, "again"))
                    .unwrap();
            }
            if i % 50 == 0 {
                store
                    .append(&terminal(&id, NOON + i * 3 + 2, "FAILED"))
                    .unwrap();
            }
        }
        store.flush(Durability::Written).unwrap();
        store.seal().unwrap();
        // And a live tail after the parts.
        for i in 0..30i64 {
            store
                .append(&entry(&format!("c{i:02}"), NOON + 5_000 + i, "live"))
                .unwrap();
        }
        store.flush(Durability::Written).unwrap();
    }
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let parts = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".part")
        })
        .count();
    assert!(parts >= 2, "today should be in parts: {parts}");
    let check = |reader: &LogStore, what: &str| {
        for (state, since, until) in [
            (None, None, None),
            (Some("FAILED"), None, None),
            (Some("RUNNING"), Some(NOON - 79_990_000), None),
            (None, None, Some(NOON - 79_980_000)),
            (None, Some(NOON + 100), Some(NOON + 1_000)),
        ] {
            let base = logstore::ListFilter {
                state: state.map(str::to_owned),
                since_ms: since,
                until_ms: until,
                ..Default::default()
            };
            let all = reader.executions(&base).unwrap().executions;
            assert!(!all.is_empty(), "{what}: {state:?} {since:?} {until:?}");
            for limit in [50, 700] {
                let mut paged = Vec::new();
                let mut after = None;
                loop {
                    let page = reader
                        .executions(&logstore::ListFilter {
                            limit: Some(limit),
                            after: after.clone(),
                            ..base.clone()
                        })
                        .unwrap();
                    assert!(page.executions.len() <= limit);
                    paged.extend(page.executions);
                    match page.next {
                        Some(n) => after = Some(n),
                        None => break,
                    }
                }
                assert!(
                    paged == all,
                    "{what}: state {state:?} since {since:?} until {until:?} limit {limit}"
                );
            }
        }
    };
    check(&reader, "intact");
    let whole = reader.list().unwrap();
    assert_eq!(whole.len(), 2_500 + 600 + 30);
    let again = whole
        .iter()
        .find(|s| s.execution_id.as_str() == "a0080")
        .unwrap();
    assert_eq!(again.entries, 3, "a0080 continues today");
    drop(reader);

    // Damage the sealed day's catalog: a byte of its first page by first entry, and one of
    // its fence.
    let sealed = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sealed"))
        .unwrap();
    let mut bytes = std::fs::read(&sealed).unwrap();
    let t = bytes.len() - 72;
    let exec_table = u64::from_le_bytes(bytes[t + 16..t + 24].try_into().unwrap());
    let execs = u32::from_le_bytes(bytes[t + 60..t + 64].try_into().unwrap());
    assert_eq!(execs, 2_500);
    assert_eq!(
        bytes[t + 64],
        1,
        "the trailer says a catalog follows the table"
    );
    let catalog = usize::try_from(exec_table).unwrap() + 56 * execs as usize;
    let by_time_len = 4 * execs as usize + 4 * (execs as usize).div_ceil(1024);
    bytes[catalog + 10] ^= 0x40;
    bytes[catalog + by_time_len + 3] ^= 0x01;
    std::fs::write(&sealed, &bytes).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    check(&reader, "damaged catalog");
    assert_eq!(reader.list().unwrap(), whole);
    for i in (0..n).step_by(97) {
        let got = all_of(&reader, &format!("a{i:04}"));
        assert!(got.len() >= 2, "a{i:04}: {}", got.len());
    }
    let report = reader.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .filter(|p| p.reason.contains("catalog"))
            .count()
            == 2,
        "verify reports both damaged catalog parts: {:?}",
        report.problems
    );
}
