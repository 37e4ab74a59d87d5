//! Property test of `LogStore::search` against a naive scan: `query` of every execution that
//! `list` knows, filtered by an independent implementation of the matching rules.
//!
//! Random stores span several days, with entries whose timestamps cross midnight. Each is
//! searched: by the writer while past days seal in the background; after every past day is
//! sealed (format v2, blocks and filters); by a reader in another process's role with a
//! half-written sealed file beside the live day; and after damaged bytes in segments and
//! sealed files. For every random query:
//! - per execution, search returns exactly the naive scan's entries, in the same order
//!   (with damage in sealed files, where `query` and search read different parts of the file:
//!   a subsequence of the undamaged result);
//! - `reverse` gives exactly the reverse, and `limit` a prefix;
//! - when damage lost a match, search reported damage (never silent).
//!
//! `PROPTEST_CASES=N` runs more cases.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::NOON;
use logstore::StoreSearch;
use logstore::{
    Clock, CommitPolicy, Config, Durability, ExecutionId, Filter, Level, LogEntry, LogStore,
    ManualClock, Search, TaskId,
};
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;
const EXECS: [&str; 5] = ["a1", "a2", "b", "ns:x-y_z", "c.9"];
const SOURCES: [&str; 3] = ["worker", "plugin:acme/x.y", "scheduler"];
/// Words of the messages, with the case-folding corner cases.
const VOCAB: [&str; 14] = [
    "error",
    "ERROR",
    "Connection",
    "refused",
    "timeout",
    "db_1",
    "KEY",
    "\u{212A}ey",
    "key",
    "straße",
    "STRASSE",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "42ms",
];
const SEPARATORS: [&str; 5] = [" ", "-", ", ", "\n", "::"];
const REGEXES: [&str; 5] = [
    "refused",
    "(?i)connection\\s+refused",
    "^ERROR",
    "[0-9]+ms$",
    "db_\\d",
];

#[derive(Debug, Clone)]
enum Op {
    Append {
        exec: usize,
        dt: i64,
        level: usize,
        source: usize,
        task: Option<usize>,
        words: Vec<(usize, usize)>,
    },
    Flush,
    /// Moves the clock on by this many hours: the day may roll (and the old day be sealed).
    Later(i64),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let append = (
        0..EXECS.len(),
        -2 * HOUR..2 * HOUR,
        0..4usize,
        0..SOURCES.len(),
        proptest::option::of(0..3usize),
        proptest::collection::vec((0..VOCAB.len(), 0..SEPARATORS.len()), 1..7),
    )
        .prop_map(|(exec, dt, level, source, task, words)| Op::Append {
            exec,
            dt,
            level,
            source,
            task,
            words,
        });
    prop_oneof![
        20 => append,
        2 => Just(Op::Flush),
        1 => (1..30i64).prop_map(Op::Later),
    ]
}

fn entry_of(op: &Op, now: i64) -> Option<LogEntry> {
    let Op::Append {
        exec,
        dt,
        level,
        source,
        task,
        words,
    } = op
    else {
        return None;
    };
    let mut message = String::new();
    for (w, s) in words {
        message.push_str(VOCAB[*w]);
        message.push_str(SEPARATORS[*s]);
    }
    let mut e = LogEntry::new(
        ExecutionId::new(EXECS[*exec]).unwrap(),
        now + dt,
        Level::ALL[*level],
        SOURCES[*source],
        message.trim_end(),
    );
    if let Some(t) = task {
        e = e.with_task(TaskId::new(format!("t{t}")).unwrap());
    }
    Some(e)
}

fn arb_search() -> impl Strategy<Value = Search> {
    let term = prop_oneof![
        3 => (0..VOCAB.len()).prop_map(|w| VOCAB[w].to_owned()),
        1 => (0..VOCAB.len(), 0..VOCAB.len()).prop_map(|(a, b)| format!("{} {}", VOCAB[a], VOCAB[b])),
    ];
    // Each filter is rare, so that most searches find something.
    (
        proptest::collection::vec(term, 0..3),
        proptest::option::weighted(0.25, 0..REGEXES.len()),
        proptest::option::weighted(0.2, 0..4usize),
        proptest::option::weighted(0.15, prop_oneof![Just("plugin:"), Just("sched"), Just("w")]),
        proptest::option::weighted(0.15, 0..3usize),
        proptest::option::weighted(0.15, prop_oneof![Just("a"), Just("b"), Just("ns:")]),
        proptest::option::weighted(0.2, -3 * HOUR..30 * HOUR),
        proptest::option::weighted(0.2, 0..30 * HOUR),
    )
        .prop_map(
            |(terms, re, level, source, task, exec, since, until)| Search {
                terms,
                regex: re.map(|i| REGEXES[i].to_owned()),
                filter: Filter {
                    min_level: level.map(|l| Level::ALL[l]),
                    task_id: task.map(|t| TaskId::new(format!("t{t}")).unwrap()),
                    source_prefix: source.map(str::to_owned),
                    since_ms: since.map(|s| NOON + 11 * HOUR + s),
                    until_ms: until.map(|u| NOON + 11 * HOUR + u),
                    limit: None,
                    tail: None,
                },
                execution_prefix: exec.map(str::to_owned),
                reverse: false,
            },
        )
}

/// The matching rules, written again independently of `crates/search`.
fn naive_matches(s: &Search, e: &LogEntry) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let have = words(&e.message);
    let terms_ok = s.terms.iter().all(|t| {
        let want = words(t);
        have.windows(want.len()).any(|w| w == want.as_slice())
    });
    terms_ok
        && s.regex
            .as_ref()
            .is_none_or(|r| regex::Regex::new(r).unwrap().is_match(&e.message))
        && s.filter.min_level.is_none_or(|l| e.level >= l)
        && s.filter
            .source_prefix
            .as_ref()
            .is_none_or(|p| e.source.starts_with(p.as_str()))
        && s.filter
            .task_id
            .as_ref()
            .is_none_or(|t| e.task_id.as_ref() == Some(t))
        && s.execution_prefix
            .as_ref()
            .is_none_or(|p| e.execution_id.as_str().starts_with(p.as_str()))
        && s.filter.since_ms.is_none_or(|t| e.timestamp >= t)
        && s.filter.until_ms.is_none_or(|t| e.timestamp < t)
}

/// Per execution, the matching entries in append order, by `query`.
fn naive(store: &LogStore, s: &Search) -> BTreeMap<String, Vec<LogEntry>> {
    let mut out = BTreeMap::new();
    for summary in store.list().unwrap() {
        let id = summary.execution_id;
        let entries = store.query(&id, &logstore::Filter::default()).unwrap();
        let hits: Vec<LogEntry> = entries
            .into_iter()
            .filter(|e| naive_matches(s, e))
            .collect();
        if !hits.is_empty() {
            out.insert(id.as_str().to_owned(), hits);
        }
    }
    out
}

/// Per execution, the entries of a search, in its order; and whether it reported damage.
fn searched(store: &LogStore, s: &Search) -> (Vec<LogEntry>, bool) {
    let mut matches = store.search(s).unwrap();
    let forward: Vec<LogEntry> = (&mut matches).map(|h| h.unwrap().entry).collect();
    (forward, !matches.damage().is_empty())
}

fn by_execution(entries: &[LogEntry]) -> BTreeMap<String, Vec<LogEntry>> {
    let mut got: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    for e in entries {
        got.entry(e.execution_id.as_str().to_owned())
            .or_default()
            .push(e.clone());
    }
    got
}

/// `reverse` gives exactly the reverse of `forward`, and `limit` a prefix of it.
fn check_order(store: &LogStore, s: &Search, forward: &[LogEntry]) -> Result<(), TestCaseError> {
    let reverse = searched(
        store,
        &Search {
            reverse: true,
            ..s.clone()
        },
    )
    .0;
    let mut backwards = forward.to_vec();
    backwards.reverse();
    prop_assert_eq!(reverse, backwards, "reverse of {:?}", s);
    let k = forward.len() / 2 + 1;
    let mut limited = s.clone();
    limited.filter.limit = Some(k);
    let limited = searched(store, &limited).0;
    prop_assert_eq!(&limited[..], &forward[..k.min(forward.len())]);
    Ok(())
}

/// Search against the naive scan, exactly, and its order.
fn check(store: &LogStore, s: &Search) -> Result<(), TestCaseError> {
    let (forward, _) = searched(store, s);
    prop_assert_eq!(by_execution(&forward), naive(store, s), "search {:?}", s);
    // The count-only path (no entries built) counts the same matches.
    let counted = store.search_count(s).unwrap().matches;
    prop_assert_eq!(counted, forward.len() as u64, "count of {:?}", s);
    check_order(store, s, &forward)
}

/// After damage: per execution, search returns a subsequence of what it returned before (in
/// order, nothing invented), and if it lost anything it reported damage.
fn check_damaged(
    store: &LogStore,
    s: &Search,
    before: &BTreeMap<String, Vec<LogEntry>>,
) -> Result<(), TestCaseError> {
    let (forward, reported) = searched(store, s);
    let got = by_execution(&forward);
    let mut lost = false;
    for (id, hits) in &got {
        let was = before.get(id).map_or(&[][..], Vec::as_slice);
        let mut rest = was.iter();
        for h in hits {
            prop_assert!(
                rest.any(|w| w == h),
                "{}: {:?} was not a match before",
                id,
                h
            );
        }
    }
    for (id, was) in before {
        lost |= got.get(id).map_or(0, Vec::len) < was.len();
    }
    prop_assert!(
        !lost || reported,
        "damage lost matches of {:?} without a report",
        s
    );
    check_order(store, s, &forward)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    common::files_with_ext(dir, ext)
}

/// Damage to a day file: flipped bits over a stretch of a segment, or of a sealed file.
#[derive(Debug, Clone)]
struct Hurt {
    file: usize,
    /// Some: a sealed file rather than a segment (when there is one).
    sealed: Option<()>,
    at: f64,
    bytes: Vec<u8>,
}

fn hurt(dir: &Path, h: &Hurt) {
    let mut pool = files(dir, "log");
    if h.sealed.is_some() {
        let sealed = files(dir, "sealed");
        if !sealed.is_empty() {
            pool = sealed;
        }
    }
    // A store that never wrote an entry has no day file to hurt.
    let Some(path) = pool.get(h.file % pool.len().max(1)) else {
        return;
    };
    let mut content = std::fs::read(path).unwrap();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let start = 16 + ((content.len().saturating_sub(16)) as f64 * h.at) as usize;
    for (i, b) in h.bytes.iter().enumerate() {
        if let Some(slot) = content.get_mut(start + i) {
            *slot ^= b | 1;
        }
    }
    std::fs::write(path, content).unwrap();
}

fn arb_hurt() -> impl Strategy<Value = Hurt> {
    (
        0..8usize,
        proptest::option::of(Just(())),
        0.0..1.0f64,
        proptest::collection::vec(any::<u8>(), 1..24),
    )
        .prop_map(|(file, sealed, at, bytes)| Hurt {
            file,
            sealed,
            at,
            bytes,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn search_equals_a_naive_scan_of_every_execution(
        ops in proptest::collection::vec(arb_op(), 1..250),
        batch in 1usize..40,
        searches in proptest::collection::vec(arb_search(), 1..6),
        damage in proptest::collection::vec(arb_hurt(), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        // 23:00, so that the first hours already cross midnight.
        let clock = ManualClock::new(NOON + 11 * HOUR);
        let config = Config {
            commit: CommitPolicy { max_batch_entries: batch, ..CommitPolicy::default() },
            clock: Arc::new(clock.clone()),
            // Tiny segments: the day rolls into parts (and merges) under the ops, and every
            // search must still see exactly the model.
            part_bytes: 2048,
            tail_bytes: logstore::DEFAULT_TAIL_BYTES,
            day_level: logstore::DEFAULT_DAY_LEVEL,
        };
        let store = LogStore::open_with(dir.path(), config).unwrap();
        for op in &ops {
            match op {
                Op::Flush => store.flush(Durability::Written).unwrap(),
                Op::Later(h) => {
                    store.flush(Durability::Written).unwrap();
                    clock.advance(h * HOUR);
                }
                op => store.append(&entry_of(op, clock.now_ms()).unwrap()).unwrap(),
            }
        }
        store.flush(Durability::Written).unwrap();
        // The writer's own live day, while past days may be sealing in the background. (A day
        // sealed between two searches changes the order within it, so only the contents are
        // compared here.)
        for s in &searches {
            let (forward, _) = searched(&store, s);
            prop_assert_eq!(by_execution(&forward), naive(&store, s), "search {:?}", s);
        }
        // Every past day sealed (format v2), the newest still live.
        store.seal().unwrap();
        let mut before = Vec::new();
        for s in &searches {
            check(&store, s)?;
            before.push(by_execution(&searched(&store, s).0));
        }
        drop(store);
        // A day in the middle of sealing, as another process sees it: a half-written sealed
        // file under the temporary name that readers ignore.
        if let Some(seg) = files(dir.path(), "log").last() {
            std::fs::write(seg.with_extension("sealed.tmp"), b"LOGSTSLD\x02\x00\x00\x00half").unwrap();
        }
        let reader = LogStore::open_read_only(dir.path()).unwrap();
        for s in &searches {
            check(&reader, s)?;
        }
        drop(reader);
        for h in &damage {
            hurt(dir.path(), h);
        }
        // Damage anywhere in the day files (segments and sealed files).
        let Ok(reader) = LogStore::open_read_only(dir.path()) else {
            return Ok(());
        };
        for (s, was) in searches.iter().zip(&before) {
            check_damaged(&reader, s, was)?;
            if damage.iter().all(|h| h.sealed.is_none()) {
                // Damage in segments only: `query` reads the same frames, so search still
                // equals the naive scan exactly.
                check(&reader, s)?;
            }
        }
    }
}
