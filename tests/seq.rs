//! Sequence numbers (`docs/FORMAT.md`, segment version 2): unique store-wide, increasing in
//! append order, kept by every layout (segments, parts, merges, sealed days), never reused
//! after a power cut took back entries that a reader had seen.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use logstore::{Config, Durability, Filter, LogEntry, LogStore, ManualClock};
use proptest::prelude::*;

const EXECS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Flush,
    /// Close the writer and open a new one.
    Reopen,
    /// Midnight: the day rolls, and the past day is sealed.
    NextDay,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0..EXECS.len()).prop_map(Op::Append),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::NextDay),
    ]
}

fn config(clock: &ManualClock, part_bytes: u64) -> Config {
    Config {
        clock: Arc::new(clock.clone()),
        part_bytes,
        ..manual(clock)
    }
}

/// Every stored entry of every execution with its number, keyed by message (which is unique:
/// it holds the entry's append index).
fn numbers(store: &LogStore) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for exec in EXECS {
        let r = store.query_each_stored(&id(exec), &Filter::default(), |s| {
            let seq = s.seq.expect("every entry of this store is numbered");
            assert!(
                out.insert(s.entry.message.clone(), seq).is_none(),
                "{} twice",
                s.entry.message
            );
            true
        });
        match r {
            Ok(()) | Err(logstore::StoreError::UnknownExecution(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    out
}

/// Numbers are unique and order the entries exactly as they were appended.
fn check(numbers: &HashMap<String, u64>, appended: &[String]) {
    assert_eq!(numbers.len(), appended.len());
    let seqs: Vec<u64> = appended.iter().map(|m| numbers[m]).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "not increasing in append order: {seqs:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sequence_numbers_are_unique_increasing_and_survive_every_layout(
        ops in proptest::collection::vec(arb_op(), 1..400),
        part_bytes in 1_500u64..6_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let mut store = LogStore::open_with(dir.path(), config(&clock, part_bytes)).unwrap();
        let mut appended = Vec::new();
        for op in &ops {
            match op {
                Op::Append(k) => {
                    let msg = format!("entry {} of {}", appended.len(), EXECS[*k]);
                    store.append(&entry(EXECS[*k], logstore::Clock::now_ms(&clock), &msg)).unwrap();
                    appended.push(msg);
                    clock.advance(1);
                }
                Op::Flush => store.flush(Durability::Written).unwrap(),
                Op::Reopen => {
                    drop(store);
                    store = LogStore::open_with(dir.path(), config(&clock, part_bytes)).unwrap();
                }
                Op::NextDay => {
                    clock.advance(86_400_000);
                    store.flush(Durability::Written).unwrap();
                    store.seal().unwrap();
                }
            }
        }
        store.flush(Durability::Synced).unwrap();
        check(&numbers(&store), &appended);
        // Today's closed segments into parts, merged; then every day sealed whole.
        store.seal().unwrap();
        check(&numbers(&store), &appended);
        check(&numbers(&LogStore::open_read_only(dir.path()).unwrap()), &appended);
        clock.advance(86_400_000);
        drop(store);
        let store = LogStore::open_with(dir.path(), config(&clock, part_bytes)).unwrap();
        store.seal().unwrap();
        let sealed = numbers(&store);
        check(&sealed, &appended);
        prop_assert!(store.verify().unwrap().is_ok());
        // A new entry gets a number above every number given before.
        let max = sealed.values().copied().max().unwrap_or(0);
        store.append(&entry("a", logstore::Clock::now_ms(&clock), "after")).unwrap();
        store.flush(Durability::Synced).unwrap();
        let after = numbers(&store)["after"];
        prop_assert!(after > max, "{after} <= {max}");
    }
}

/// A power cut takes back records that were flushed (a reader saw them) but not fsynced: their
/// numbers are never given to other entries, because the writer never hands out a number the
/// durable reservation does not cover, and a new writer starts above it.
#[test]
fn a_power_cut_after_a_reader_saw_entries_never_reuses_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let mut kept = Vec::new();
    for i in 0..50 {
        let e = entry("a", NOON + i, &format!("synced {i}"));
        store.append(&e).unwrap();
        kept.push(e);
    }
    store.flush(Durability::Synced).unwrap();
    let seg = last_segment(dir.path());
    let synced_len = std::fs::metadata(&seg).unwrap().len();
    for i in 0..30 {
        store
            .append(&entry("a", NOON + 100 + i, &format!("lost {i}")))
            .unwrap();
    }
    store.flush(Durability::Written).unwrap();
    // A reader in another process sees the unsynced entries and their numbers.
    let seen: Vec<u64> = {
        let reader = LogStore::open_read_only(dir.path()).unwrap();
        let mut s = Vec::new();
        reader
            .query_each_stored(&id("a"), &Filter::default(), |x| {
                s.push(x.seq.unwrap());
                true
            })
            .unwrap();
        s
    };
    assert_eq!(seen.len(), 80);
    drop(store);
    // The power cut: the unsynced records never reached the disk.
    truncate(&seg, synced_len);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    assert_eq!(all_of(&store, "a"), kept);
    let mut fresh = Vec::new();
    for i in 0..30 {
        let e = entry("a", NOON + 200 + i, &format!("new {i}"));
        store.append(&e).unwrap();
        fresh.push(e.message.clone());
    }
    store.flush(Durability::Synced).unwrap();
    let mut now: HashMap<String, u64> = HashMap::new();
    store
        .query_each_stored(&id("a"), &Filter::default(), |x| {
            now.insert(x.entry.message.clone(), x.seq.unwrap());
            true
        })
        .unwrap();
    let max_seen = seen.iter().copied().max().unwrap();
    for m in &fresh {
        assert!(
            now[m] > max_seen,
            "{m}: {} reuses a number seen before",
            now[m]
        );
    }
    // The kept entries keep theirs.
    assert_eq!(
        kept.iter().map(|e| now[&e.message]).collect::<Vec<_>>(),
        seen[..50]
    );
    // Losing the reservation file too: the writer continues far above what is on disk.
    drop(store);
    std::fs::remove_file(dir.path().join("seq")).unwrap();
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    store
        .append(&entry("a", NOON + 300, "after the loss"))
        .unwrap();
    store.flush(Durability::Synced).unwrap();
    let mut last = 0;
    store
        .query_each_stored(&id("a"), &Filter::default(), |x| {
            last = x.seq.unwrap();
            true
        })
        .unwrap();
    let before = now.values().copied().max().unwrap();
    assert!(
        last >= before + logstore::format::LOST_GAP,
        "{last} vs {before}"
    );
}

/// `dump --json --seq` adds `"seq"` and nothing else; plain `--json` is unchanged.
#[test]
fn dump_json_seq_adds_the_number_and_plain_json_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let written: Vec<LogEntry> = (0..5)
        .map(|i| entry("x", NOON + i, &format!("line {i}")))
        .collect();
    for e in &written {
        store.append(e).unwrap();
        store
            .append(&entry("y", NOON + i64::from(7), "other"))
            .unwrap();
    }
    store.flush(Durability::Synced).unwrap();
    drop(store);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logstore"))
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = run(&["dump", "--json", "x"]);
    let expected: String = written
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    assert_eq!(plain, expected);
    let with = run(&["dump", "--json", "--seq", "x"]);
    assert_eq!(
        with.lines().count(),
        written.len(),
        "--seq prints one line per entry"
    );
    let mut last = 0;
    for (line, e) in with.lines().zip(&written) {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        // Every other number went to "y": x's are 1, 3, 5, ...
        assert!(
            seq > last && (last == 0 || seq == last + 2),
            "{seq} after {last}"
        );
        last = seq;
        v.as_object_mut().unwrap().remove("seq");
        assert_eq!(v, serde_json::to_value(e).unwrap());
    }
    let hits = run(&["search", "--json", "--seq", "line"]);
    let seqs: Vec<u64> = hits
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs.len(), 5);
    assert_eq!(seqs.last(), Some(&last));
}

/// A store written by a version before numbers, opened on the day its writer stopped: the old
/// open segment is closed (it becomes a part), today goes on in a new numbered segment of the
/// same day, and every entry, old and new, reads back in order.
#[test]
fn an_upgraded_store_goes_on_writing_today_after_its_old_segment() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let day = logstore::Day::from_unix_ms(NOON);
    let segs = dir.path().join("segments");
    std::fs::create_dir_all(&segs).unwrap();
    let mut seg = b"LOGSTSEG\x01\0\0\0\0\0\0\0".to_vec();
    let mut want = Vec::new();
    for i in 0..40 {
        let e = entry("u", NOON + i, &format!("old {i}"));
        logstore::format::encode(&e, &mut seg).unwrap();
        want.push(e);
    }
    std::fs::write(segs.join(format!("{day}.000001.log")), &seg).unwrap();
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    for i in 0..40 {
        let e = entry("u", NOON + 100 + i, &format!("new {i}"));
        store.append(&e).unwrap();
        want.push(e);
    }
    store.flush(Durability::Synced).unwrap();
    store.seal().unwrap();
    assert_eq!(all_of(&store, "u"), want);
    let mut seqs = Vec::new();
    store
        .query_each_stored(&id("u"), &Filter::default(), |s| {
            seqs.push(s.seq);
            true
        })
        .unwrap();
    assert!(seqs[..40].iter().all(Option::is_none));
    assert!(seqs[40..].iter().all(Option::is_some));
    // One day, today: the old segment as a part, the new one open.
    let stats = store.stats().unwrap();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].day, day);
    assert_eq!((stats[0].parts, stats[0].segments), (1, 1));
    drop(store);
    assert_eq!(
        all_of(&LogStore::open_read_only(dir.path()).unwrap(), "u"),
        want
    );
}

/// `dump -f --json --seq` follows with the numbers, and ends at the terminal entry.
#[test]
fn dump_follow_json_seq_prints_the_numbers_until_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    for i in 0..3 {
        store
            .append(&entry("z", NOON + i, &format!("z {i}")))
            .unwrap();
    }
    store.append(&terminal("z", NOON + 5, "SUCCESS")).unwrap();
    store.flush(Durability::Synced).unwrap();
    drop(store);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logstore"))
        .arg("--dir")
        .arg(dir.path())
        .args(["dump", "-f", "--json", "--seq", "z"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seqs: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}
