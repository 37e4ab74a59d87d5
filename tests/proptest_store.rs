//! Property tests of the store against a model (a `Vec` of what was appended):
//! - any sequence of entries and flushes round-trips, per execution, in append order, before
//!   and after a reopen;
//! - any truncation, bit flip or overwrite of a closed store's files (segments, live and sorted
//!   indexes) never makes open, query, verify or list panic, and never makes a query return an
//!   entry that was not written (returned entries are a subsequence of the written ones).
//!
//! `PROPTEST_CASES=N` runs more cases.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use common::*;
use logstore::format::SealOptions;
use logstore::StoreSearch;
use logstore::{
    Config, Day, Durability, ExecutionId, Level, LogEntry, LogStore, ManualClock, StoreError,
    TaskId,
};
use proptest::prelude::*;

const EXECS: [&str; 5] = ["a", "b", "c", "d.1", "ns:x-y_z"];

fn arb_entry() -> impl Strategy<Value = LogEntry> {
    (
        0..EXECS.len(),
        0..4usize,
        // Random text, or words from a small vocabulary (so that sealing with small blocks
        // finds words most blocks hold: version 7's common words).
        prop_oneof![
            "(\\PC|\n|\r|\t){0,60}",
            "((alpha|Beta|GAMMA|delta|ünï|k_9|\\PC{1,4}) ){1,8}",
        ],
        proptest::option::of(prop_oneof![Just("t1"), Just("task.2"), Just("T:3")]),
        proptest::option::of(("[a-z]{1,8}", "\\PC{0,20}")),
        -1_000_000i64..1_000_000,
    )
        .prop_map(|(e, level, message, task, meta, dt)| {
            let mut entry = LogEntry::new(
                ExecutionId::new(EXECS[e]).unwrap(),
                NOON + dt,
                Level::ALL[level],
                "worker",
                message,
            );
            if let Some(t) = task {
                entry = entry.with_task(TaskId::new(t).unwrap());
            }
            if let Some((k, v)) = meta {
                let mut m = serde_json::Map::new();
                m.insert(k, serde_json::Value::String(v));
                entry = entry.with_metadata(m);
            }
            entry
        })
}

#[derive(Debug, Clone)]
enum Op {
    Append(LogEntry),
    Flush,
    Sync,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => arb_entry().prop_map(Op::Append),
        1 => Just(Op::Flush),
        1 => Just(Op::Sync),
    ]
}

fn model(ops: &[Op]) -> BTreeMap<&'static str, Vec<LogEntry>> {
    let mut m: BTreeMap<&'static str, Vec<LogEntry>> = BTreeMap::new();
    for op in ops {
        if let Op::Append(e) = op {
            let key = EXECS
                .iter()
                .find(|x| **x == e.execution_id.as_str())
                .unwrap();
            m.entry(key).or_default().push(e.clone());
        }
    }
    m
}

fn config(clock: &ManualClock, batch: usize) -> Config {
    Config {
        commit: logstore::CommitPolicy {
            max_batch_entries: batch,
            ..logstore::CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
        // Half the cases with tiny segments: the day rolls into parts and merges under the
        // ops, and every check holds the same as without parts.
        part_bytes: if batch.is_multiple_of(2) {
            1024
        } else {
            logstore::DEFAULT_PART_BYTES
        },
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
    }
}

fn check_round_trip(store: &LogStore, want: &BTreeMap<&'static str, Vec<LogEntry>>) {
    for exec in EXECS {
        let got = all_of(store, exec);
        let expect = want.get(exec).cloned().unwrap_or_default();
        assert_eq!(got, expect, "execution {exec}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_round_trips(ops in proptest::collection::vec(arb_op(), 0..300), batch in 1usize..120) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let want = model(&ops);
        {
            let store = LogStore::open_with(dir.path(), config(&clock, batch)).unwrap();
            for op in &ops {
                match op {
                    Op::Append(e) => store.append(e).unwrap(),
                    Op::Flush => store.flush(Durability::Written).unwrap(),
                    Op::Sync => store.flush(Durability::Synced).unwrap(),
                }
            }
            store.flush(Durability::Written).unwrap();
            check_round_trip(&store, &want);
            prop_assert!(store.verify().unwrap().is_ok());
        }
        let store = LogStore::open_with(dir.path(), config(&clock, batch)).unwrap();
        check_round_trip(&store, &want);
        let listed = store.list().unwrap();
        prop_assert_eq!(listed.len(), want.len());
    }
}

/// A closed store spread over two days (the first sealed into its `.sealed` file; the second
/// live), and what was written to it.
struct Base {
    dir: tempfile::TempDir,
    written: BTreeMap<&'static str, Vec<LogEntry>>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let mut written: BTreeMap<&'static str, Vec<LogEntry>> = BTreeMap::new();
        let store = LogStore::open_with(dir.path(), config(&clock, 7)).unwrap();
        for i in 0..300u32 {
            if i == 150 {
                store.flush(Durability::Written).unwrap();
                clock.advance(24 * 3600 * 1000);
            }
            let exec = EXECS[(i as usize * 7 + i as usize / 3) % EXECS.len()];
            let e = LogEntry::new(
                ExecutionId::new(exec).unwrap(),
                NOON + i64::from(i),
                Level::ALL[(i % 4) as usize],
                "worker",
                format!("entry {i} of {exec} ✓\nmore"),
            );
            store.append(&e).unwrap();
            written.entry(exec).or_default().push(e);
        }
        store.seal().unwrap();
        drop(store);
        assert_eq!(files_with_ext(dir.path(), "sealed").len(), 1);
        assert_eq!(files_with_ext(dir.path(), "log").len(), 1);
        Base { dir, written }
    })
}

#[derive(Debug, Clone)]
enum Damage {
    Flip {
        file: usize,
        at: f64,
        bit: u8,
    },
    Overwrite {
        file: usize,
        at: f64,
        bytes: Vec<u8>,
    },
    Truncate {
        file: usize,
        at: f64,
    },
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (0..8usize, 0.0..1.0f64, 0..8u8).prop_map(|(file, at, bit)| Damage::Flip { file, at, bit }),
        2 => (0..8usize, 0.0..1.0f64, proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(file, at, bytes)| Damage::Overwrite { file, at, bytes }),
        1 => (0..8usize, 0.0..1.0f64).prop_map(|(file, at)| Damage::Truncate { file, at }),
    ]
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for ext in ["log", "idx", "sealed"] {
        files.extend(files_with_ext(dir, ext));
    }
    files
}

fn apply(dir: &Path, d: &Damage) {
    let files = data_files(dir);
    let pick = |i: usize| &files[i % files.len()];
    let pos = |path: &Path, at: f64| {
        let len = std::fs::metadata(path).unwrap().len();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let p = (at * len as f64) as u64;
        (p.min(len.saturating_sub(1)), len)
    };
    match d {
        Damage::Flip { file, at, bit } => {
            let path = pick(*file);
            let (p, len) = pos(path, *at);
            if len > 0 {
                flip_bit(path, p, *bit);
            }
        }
        Damage::Overwrite { file, at, bytes } => {
            let path = pick(*file);
            let (p, _) = pos(path, *at);
            let mut content = std::fs::read(path).unwrap();
            let start = usize::try_from(p).unwrap();
            for (i, b) in bytes.iter().enumerate() {
                if let Some(slot) = content.get_mut(start + i) {
                    *slot = *b;
                }
            }
            std::fs::write(path, content).unwrap();
        }
        Damage::Truncate { file, at } => {
            let path = pick(*file);
            let (p, _) = pos(path, *at);
            truncate(path, p);
        }
    }
}

/// Every entry returned was written, in relative order (a subsequence of `written`).
fn assert_subsequence(exec: &str, got: &[LogEntry], written: &[LogEntry]) {
    let mut rest = written.iter();
    for e in got {
        assert!(
            rest.any(|w| w == e),
            "{exec}: returned an entry that was not written (or out of order): {e:?}"
        );
    }
}

/// What a read of a damaged store may give: entries that were written, in order; an error
/// that names the damaged file; or, when the damage took every record of the execution, that
/// nothing is stored for it. Never an I/O error of another kind, never a panic.
fn check_read(exec: &str, got: Result<Vec<LogEntry>, StoreError>, written: &[LogEntry]) {
    match got {
        Ok(got) => assert_subsequence(exec, &got, written),
        Err(StoreError::Corrupt { file, reason, .. }) => {
            assert!(
                file.exists() || file.parent().is_some_and(Path::exists),
                "{exec}: damage names {file:?}: {reason}"
            )
        }
        Err(StoreError::UnknownExecution(id)) => assert_eq!(id.as_str(), exec),
        Err(e) => {
            panic!("{exec}: a read of a damaged store failed with something other than damage: {e}")
        }
    }
}

fn exercise(store: &LogStore, written: &BTreeMap<&'static str, Vec<LogEntry>>) {
    for exec in EXECS {
        let got = store.query(
            &ExecutionId::new(exec).unwrap(),
            &logstore::Filter::default(),
        );
        check_read(exec, got, &written[exec]);
        let mut f = store.follow(
            &ExecutionId::new(exec).unwrap(),
            logstore::Filter::default(),
        );
        check_read(exec, f.poll(), &written[exec]);
    }
    // verify, list and stats report damage or skip it; a header they cannot read at all (a
    // flipped version byte, say) is an error naming the file, never another kind of failure.
    let named = |what: &str, e: StoreError| match e {
        StoreError::Corrupt { file, .. } => assert!(
            file.parent().is_some_and(Path::exists),
            "{what}: damage names {file:?}"
        ),
        e => panic!("{what} of a damaged store failed with something other than damage: {e}"),
    };
    if let Err(e) = store.verify() {
        named("verify", e);
    }
    if let Err(e) = store.list() {
        named("list", e);
    }
    if let Err(e) = store.stats() {
        named("stats", e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic_nor_invent_entries(damage in proptest::collection::vec(arb_damage(), 1..6)) {
        let base = base();
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.dir.path(), dir.path());
        for d in &damage {
            apply(dir.path(), d);
        }
        // A reader first (no recovery), on its own copy since the writer will repair files.
        let ro_dir = tempfile::tempdir().unwrap();
        copy_store(dir.path(), ro_dir.path());
        // Damage to a closed store never keeps a reader or the writer from opening it: a
        // damaged day is skipped and reported, a torn live tail recovered.
        let ro = LogStore::open_read_only(ro_dir.path()).expect("a reader opens a damaged store");
        exercise(&ro, &base.written);
        let clock = ManualClock::new(NOON + 24 * 3600 * 1000);
        let store = LogStore::open_with(dir.path(), config(&clock, 7)).expect("the writer opens a damaged store");
        exercise(&store, &base.written);
        // The writer goes on.
        let e = LogEntry::new(ExecutionId::new("a").unwrap(), NOON, Level::Info, "worker", "after damage");
        store.append(&e).unwrap();
        store.flush(Durability::Written).unwrap();
        // Whatever damage the sealed day took, the new entry is read back, last.
        let got = store.query(&ExecutionId::new("a").unwrap(), &logstore::Filter::default());
        match got {
            Ok(got) => prop_assert_eq!(got.last(), Some(&e)),
            Err(err) => prop_assert!(false, "the query after the writer went on failed: {}", err),
        }
    }
}

#[test]
fn query_survives_a_sealed_file_cut_short() {
    // Disk damage, not a crash: the sealed file was fsynced before it was renamed into place,
    // but a bad disk or an operator can still shorten it. Its tables are at the end, so the
    // day is lost; the store still opens and the live day's entries all come back.
    let base = base();
    let dir = tempfile::tempdir().unwrap();
    copy_store(base.dir.path(), dir.path());
    let sealed = files_with_ext(dir.path(), "sealed").remove(0);
    let len = std::fs::metadata(&sealed).unwrap().len();
    truncate(&sealed, len / 2);
    let clock = ManualClock::new(NOON + 24 * 3600 * 1000);
    let store = LogStore::open_with(dir.path(), config(&clock, 7)).unwrap();
    let got = store
        .query(
            &ExecutionId::new("a").unwrap(),
            &logstore::Filter::default(),
        )
        .unwrap();
    assert_subsequence("a", &got, &base.written["a"]);
    assert!(got.ends_with(&base.written["a"][base.written["a"].len() - 5..]));
    assert!(
        !store.verify().unwrap().is_ok(),
        "verify must report the cut file"
    );
}

#[test]
fn flipped_bit_in_a_sealed_file_never_fails_a_query_nor_invents_entries() {
    // Every 5th byte of the sealed file, one at a time: queries of every execution succeed and
    // return only written entries, and verify names the damage.
    let base = base();
    let sealed_len = std::fs::metadata(&files_with_ext(base.dir.path(), "sealed")[0])
        .unwrap()
        .len();
    let mut failures = Vec::new();
    let mut unreported = Vec::new();
    for at in (0..sealed_len).step_by(5) {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.dir.path(), dir.path());
        flip_bit(&files_with_ext(dir.path(), "sealed")[0], at, 3);
        let store = LogStore::open_read_only(dir.path()).unwrap();
        for exec in EXECS {
            match store.query(
                &ExecutionId::new(exec).unwrap(),
                &logstore::Filter::default(),
            ) {
                Ok(got) => assert_subsequence(exec, &got, &base.written[exec]),
                Err(e) => failures.push(format!("flip at {at}: {exec}: {e}")),
            }
        }
        if store.verify().unwrap().is_ok() {
            unreported.push(at);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed queries, first: {}",
        failures.len(),
        failures[0]
    );
    // Every byte is under a CRC or checked: no flip goes unreported.
    assert!(
        unreported.is_empty(),
        "flips not reported by verify at {unreported:?}"
    );
}

fn arb_filter() -> impl Strategy<Value = logstore::Filter> {
    (
        proptest::option::of(0..4usize),
        proptest::option::of(prop_oneof![Just("t1"), Just("task.2"), Just("T:3")]),
        proptest::option::of(prop_oneof![Just("w"), Just("work"), Just("x")]),
        proptest::option::of(-1_000_000i64..1_000_000),
        proptest::option::of(0i64..1_000_000),
        proptest::option::of(0usize..20),
        proptest::option::of(0usize..20),
    )
        .prop_map(
            |(level, task, source, since, span, limit, tail)| logstore::Filter {
                min_level: level.map(|l| Level::ALL[l]),
                task_id: task.map(|t| TaskId::new(t).unwrap()),
                source_prefix: source.map(str::to_owned),
                since_ms: since.map(|s| NOON + s),
                until_ms: since.zip(span).map(|(s, w)| NOON + s + w),
                limit,
                tail,
            },
        )
}

/// Every query answer (and the listing) of the store, to compare two layouts of the same days.
fn answers(
    store: &LogStore,
    filters: &[logstore::Filter],
) -> (Vec<Vec<Vec<LogEntry>>>, Vec<logstore::ExecutionSummary>) {
    let per_exec = EXECS
        .iter()
        .map(|exec| {
            let id = ExecutionId::new(*exec).unwrap();
            std::iter::once(logstore::Filter::default())
                .chain(filters.iter().cloned())
                .map(|f| store.query(&id, &f).unwrap_or_default())
                .collect()
        })
        .collect();
    (per_exec, store.list().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_sealed_day_answers_exactly_what_the_live_day_answered(
        ops in proptest::collection::vec(arb_op(), 1..300),
        batch in 1usize..120,
        filters in proptest::collection::vec(arb_filter(), 0..6),
        partition_bytes in proptest::option::of(1u64..8192),
        small_blocks in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let want = model(&ops);
        let live = {
            let store = LogStore::open_with(dir.path(), config(&clock, batch)).unwrap();
            for op in &ops {
                match op {
                    Op::Append(e) => store.append(e).unwrap(),
                    Op::Flush => store.flush(Durability::Written).unwrap(),
                    Op::Sync => store.flush(Durability::Synced).unwrap(),
                }
            }
            store.flush(Durability::Synced).unwrap();
            answers(&store, &filters)
        };
        let day = Day::from_unix_ms(NOON);
        // The day's segment (numbered: `YYYY-MM-DD.NNNNNN.log`).
        let has_day = std::fs::read_dir(dir.path().join("segments")).unwrap().any(|f| {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with(&day.to_string()) && name.ends_with(".log")
        });
        if let Some(partition_bytes) = partition_bytes.filter(|_| has_day) {
            // Sealed with small partitions, so that the spill sort cuts even a small day.
            // Small blocks, and a small sample: common words and (maybe) a dictionary.
            let options = if small_blocks {
                SealOptions {
                    partition_bytes,
                    block_target: 256,
                    train_bytes: 4 << 10,
                    ..SealOptions::default()
                }
            } else {
                SealOptions { partition_bytes, ..SealOptions::default() }
            };
            match logstore::format::seal_closed_day(dir.path(), day, options) {
                Ok(done) => prop_assert!(done.is_some()),
                // A day that rolled into several segments (tiny `part_bytes`) is refused:
                // sealing one of them would hide the others.
                Err(logstore::StoreError::NotOneSegment { segments, parts, .. }) => {
                    prop_assert!(segments > 1 || parts > 0);
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
        }
        // The next day: the writer's open seals the day (if not sealed yet).
        clock.advance(24 * 3600 * 1000);
        let store = LogStore::open_with(dir.path(), config(&clock, batch)).unwrap();
        store.seal().unwrap();
        // A day with no entry (only flushes) has no file at all, so nothing to seal.
        let appended = ops.iter().any(|op| matches!(op, Op::Append(_)));
        prop_assert_eq!(files_with_ext(dir.path(), "sealed").len(), usize::from(appended));
        prop_assert!(files_with_ext(dir.path(), "log").is_empty());
        check_round_trip(&store, &want);
        prop_assert_eq!(&answers(&store, &filters), &live);
        prop_assert!(store.verify().unwrap().is_ok());
        let ro = LogStore::open_read_only(dir.path()).unwrap();
        prop_assert_eq!(&answers(&ro, &filters), &live);
        // Search, through the block filters (and common words): each word finds exactly the
        // entries whose message holds it.
        let all: Vec<&LogEntry> = want.values().flatten().collect();
        for w in ["alpha", "beta", "gamma", "delta", "ünï", "k_9", "zeta"] {
            let naive = all
                .iter()
                .filter(|e| logstore::words(&e.message).any(|x| x == w))
                .count() as u64;
            let search = logstore::Search {
                terms: vec![w.to_owned()],
                ..logstore::Search::default()
            };
            let got = ro.search_count(&search).unwrap();
            prop_assert_eq!(got.matches, naive, "{}", w);
        }
    }
}
