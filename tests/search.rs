//! `LogStore::search` and `logstore search`: every flag, every exit code, damage reported,
//! order, positions, and the case-folding rules the docs promise.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::*;
use logstore::StoreSearch;
use logstore::{
    Durability, Filter, Level, LogEntry, LogStore, ManualClock, Place, Search, SearchError,
};

const DAY: i64 = 86_400_000;

/// Three days (two sealed in format v2, one live), four executions:
/// - day 1: `run-a` connection refused (ERROR, task fetch), `run-a` retry ok, `run-b` disk full
/// - day 2: `run-b` Connection  REFUSED again (WARN, plugin source), `run-b` FAILED terminal
/// - day 3: `run-c` timeout after 42ms, `other-1` straße, `run-a` SUCCESS terminal
fn sample(dir: &Path) -> Vec<LogEntry> {
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir, manual(&clock)).unwrap();
    let mut all = Vec::new();
    let mut put = |e: LogEntry| {
        store.append(&e).unwrap();
        all.push(e);
    };
    put(task_entry(
        "run-a",
        "fetch",
        NOON,
        Level::Error,
        "db: connection refused (os error 111)",
    ));
    put(task_entry(
        "run-a",
        "fetch",
        NOON + 1,
        Level::Info,
        "retry ok",
    ));
    put(LogEntry::new(
        id("run-b"),
        NOON + 2,
        Level::Warn,
        "worker",
        "disk full",
    ));
    store.flush(Durability::Written).unwrap();
    clock.advance(DAY);
    put(LogEntry::new(
        id("run-b"),
        NOON + DAY,
        Level::Warn,
        "plugin:acme/db.q",
        "Connection  REFUSED again",
    ));
    put(terminal("run-b", NOON + DAY + 1, "FAILED"));
    store.flush(Durability::Written).unwrap();
    clock.advance(DAY);
    put(entry("run-c", NOON + 2 * DAY, "timeout after 42ms"));
    put(entry("other-1", NOON + 2 * DAY + 1, "STRASSE oder straße"));
    put(terminal("run-a", NOON + 2 * DAY + 2, "SUCCESS"));
    store.flush(Durability::Synced).unwrap();
    assert_eq!(store.seal().unwrap().len(), 2);
    all
}

fn messages(store: &LogStore, s: &Search) -> Vec<String> {
    store
        .search(s)
        .unwrap()
        .map(|h| h.unwrap().entry.message)
        .collect()
}

fn words(w: &[&str]) -> Search {
    Search {
        terms: w.iter().map(|s| (*s).to_owned()).collect(),
        ..Search::default()
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn words_phrases_and_regexes_find_entries_across_days() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    assert_eq!(
        messages(&store, &words(&["refused"])),
        [
            "db: connection refused (os error 111)",
            "Connection  REFUSED again"
        ]
    );
    assert_eq!(
        messages(&store, &words(&["refused connection"])),
        Vec::<String>::new()
    );
    assert_eq!(
        messages(&store, &words(&["connection refused", "again"])),
        ["Connection  REFUSED again"]
    );
    assert_eq!(messages(&store, &words(&["refuse"])), Vec::<String>::new());
    let re = Search {
        regex: Some(r"after \d+ms$".to_owned()),
        ..Search::default()
    };
    assert_eq!(messages(&store, &re), ["timeout after 42ms"]);
}

#[test]
fn case_folding_is_lowercase_not_full_folding() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    // "straße" lowercases to itself and "STRASSE" to "strasse": different words.
    assert_eq!(
        messages(&store, &words(&["strasse"])),
        ["STRASSE oder straße"]
    );
    assert_eq!(
        messages(&store, &words(&["STRAßE"])),
        ["STRASSE oder straße"]
    );
    let hits: Vec<_> = store.search(&words(&["straße"])).unwrap().collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(messages(&store, &words(&["ss"])), Vec::<String>::new());
}

#[test]
fn filters_narrow_by_level_source_task_execution_and_time() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let with = |f: &dyn Fn(&mut Search)| {
        let mut s = words(&["refused"]);
        f(&mut s);
        messages(&store, &s)
    };
    let first = "db: connection refused (os error 111)";
    let second = "Connection  REFUSED again";
    assert_eq!(with(&|s| s.filter.min_level = Some(Level::Error)), [first]);
    assert_eq!(
        with(&|s| s.filter.source_prefix = Some("plugin:".into())),
        [second]
    );
    assert_eq!(
        with(&|s| s.filter.task_id = Some("fetch".parse().unwrap())),
        [first]
    );
    assert_eq!(
        with(&|s| s.execution_prefix = Some("run-b".into())),
        [second]
    );
    assert_eq!(with(&|s| s.filter.since_ms = Some(NOON + 1)), [second]);
    assert_eq!(with(&|s| s.filter.until_ms = Some(NOON + 1)), [first]);
    assert_eq!(with(&|s| s.filter.limit = Some(1)), [first]);
    assert_eq!(with(&|s| s.reverse = true), [second, first]);
}

#[test]
fn positions_name_the_day_and_frame_of_each_hit() {
    let dir = tempfile::tempdir().unwrap();
    let written = sample(dir.path());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let hits: Vec<_> = store
        .search(&Search::default())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hits.len(), written.len());
    let days: Vec<i64> = hits.iter().map(|h| h.position.day.0).collect();
    let first = logstore::Day::from_unix_ms(NOON).0;
    assert_eq!(
        days,
        [
            first,
            first,
            first,
            first + 1,
            first + 1,
            first + 2,
            first + 2,
            first + 2
        ]
    );
    // Within a day, places in increasing order: (block, entry) in a sealed day, frame offsets
    // in a live one.
    for pair in hits.windows(2) {
        if pair[0].position.day == pair[1].position.day {
            assert!(pair[0].position < pair[1].position, "{pair:?}");
        }
    }
    assert!(
        matches!(hits[0].position.place, Place::Block { block: 0, entry: 0 }),
        "{:?}",
        hits[0]
    );
    assert_eq!(
        hits[5].position.place,
        Place::Segment {
            segment: 1,
            offset: 16
        },
        "the live day's first frame follows the segment header"
    );
    let json = serde_json::to_value(&hits[5]).unwrap();
    assert_eq!(json["position"]["day"], "2026-11-27");
    assert_eq!(json["position"]["place"]["segment"]["offset"], 16);
    let json = serde_json::to_value(&hits[0]).unwrap();
    assert_eq!(json["position"]["place"]["block"]["block"], 0);
}

#[test]
fn the_writers_live_day_is_searched_while_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    for i in 0..250 {
        store
            .append(&entry(
                "live",
                NOON + i,
                &format!("line {i} needle{}", i % 50),
            ))
            .unwrap();
    }
    store.flush(Durability::Written).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    for s in [&store, &reader] {
        assert_eq!(messages(s, &words(&["needle7"])).len(), 5);
    }
}

#[test]
fn damaged_records_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    {
        let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
        for i in 0..20 {
            store
                .append(&entry("d", NOON + i, &format!("record {i} marker")))
                .unwrap();
        }
    }
    let seg = last_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.windows(9).position(|w| w == b"record 7 ").unwrap();
    bytes[at + 3] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let mut m = store.search(&words(&["marker"])).unwrap();
    let got: Vec<String> = (&mut m).map(|h| h.unwrap().entry.message).collect();
    assert_eq!(got.len(), 19);
    assert!(!got.contains(&"record 7 marker".to_owned()));
    assert_eq!(m.damage().len(), 1, "{:?}", m.damage());
    assert_eq!(m.damage()[0].file, seg);
    assert!(m.damage()[0].offset < at as u64);
    // The damaged frame holds no "other" word, but its damage is reported all the same.
    let mut m = store.search(&words(&["record", "19"])).unwrap();
    assert_eq!((&mut m).count(), 1);
    assert_eq!(m.damage().len(), 1);
    let counted = store.search_count(&words(&["marker"])).unwrap();
    assert_eq!((counted.matches, counted.damage.len()), (19, 1));

    let out = logstore_output(dir.path(), &["search", "marker", "--count"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "19\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: skipped damaged data") && err.contains(".log at offset"),
        "{err}"
    );
}

#[test]
fn a_bad_query_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let bad = Search {
        regex: Some("(unclosed".to_owned()),
        ..Search::default()
    };
    match store.search(&bad) {
        Err(SearchError::BadRegex { pattern, reason }) => {
            assert_eq!(pattern, "(unclosed");
            assert!(reason.contains("unclosed group"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.search(&words(&["--"])),
        Err(SearchError::NoWords { .. })
    ));
}

// ---- the command line ----

#[test]
fn cli_prints_dump_lines_with_the_execution_in_front() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let out = logstore_output(dir.path(), &["search", "refused"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "run-a 2026-11-25T12:00:00.000Z ERROR worker [fetch] db: connection refused (os error 111)\n\
         run-b 2026-11-26T12:00:00.000Z WARN  plugin:acme/db.q Connection  REFUSED again\n"
    );
}

#[test]
fn cli_exit_codes_follow_grep() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let code = |args: &[&str]| logstore_output(dir.path(), args).status.code();
    assert_eq!(code(&["search", "timeout"]), Some(0));
    assert_eq!(code(&["search", "nothing-like-this"]), Some(1));
    let out = logstore_output(dir.path(), &["search", "--regex", "a(b"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, "error: bad regex \"a(b\": unclosed group at byte 1\n");
    assert_eq!(code(&["search", "--level", "LOUD", "x"]), Some(2));
    assert_eq!(code(&["search", "--bogus"]), Some(2));
    let missing = dir.path().join("nope");
    let out = logstore_output(&missing, &["search", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a logstore directory"));
}

#[test]
fn cli_filters_each_flag() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let count = |args: &[&str]| {
        let mut all = vec!["search", "--count"];
        all.extend_from_slice(args);
        stdout(&logstore_output(dir.path(), &all))
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(count(&["refused"]), 2);
    assert_eq!(count(&["connection refused"]), 2);
    assert_eq!(count(&["connection", "again"]), 1);
    assert_eq!(count(&["--regex", "(?i)^connection"]), 1);
    assert_eq!(count(&["--level", "warn"]), 3);
    assert_eq!(count(&["--source", "sched"]), 2);
    assert_eq!(count(&["--task", "fetch"]), 2);
    assert_eq!(count(&["--execution", "run-"]), 7);
    assert_eq!(count(&["--since", "2026-11-26T00:00:00Z"]), 5);
    assert_eq!(count(&["--until", "2026-11-26T00:00:00Z"]), 3);
    assert_eq!(count(&["-n", "2"]), 2);
    assert_eq!(count(&["--limit", "4", "--execution", "run-a"]), 3);
}

#[test]
fn cli_reverse_is_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let out = logstore_output(dir.path(), &["search", "--reverse", "-n", "2", "--json"]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["execution_id"], "run-a");
    assert_eq!(lines[0]["metadata"]["state"], "SUCCESS");
    assert_eq!(lines[1]["execution_id"], "other-1");
}

#[test]
fn cli_json_is_what_dump_json_prints() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let out = logstore_output(dir.path(), &["search", "--json", "--execution", "run-b"]);
    let found: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(found, dump_json(dir.path(), "run-b"));
    // Byte for byte too.
    let dumped = logstore_output(dir.path(), &["dump", "--json", "run-b"]);
    assert_eq!(out.stdout, dumped.stdout);
}

#[test]
fn cli_executions_lists_matches_times_and_final_state() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let out = logstore_output(dir.path(), &["search", "--executions", "--regex", "."]);
    assert_eq!(
        stdout(&out),
        "EXECUTION  MATCHES  FIRST MATCH               LAST MATCH                STATE\n\
         run-a            3  2026-11-25T12:00:00.000Z  2026-11-27T12:00:00.002Z  SUCCESS\n\
         run-b            3  2026-11-25T12:00:00.002Z  2026-11-26T12:00:00.001Z  FAILED\n\
         run-c            1  2026-11-27T12:00:00.000Z  2026-11-27T12:00:00.000Z  -\n\
         other-1          1  2026-11-27T12:00:00.001Z  2026-11-27T12:00:00.001Z  -\n"
    );
    let out = logstore_output(dir.path(), &["search", "--executions", "--json", "refused"]);
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["execution_id"], "run-b");
    assert_eq!(rows[1]["matches"], 1);
    assert_eq!(rows[1]["first_match"], NOON + DAY);
    assert_eq!(rows[1]["final_state"], "FAILED");
}

#[test]
fn cli_count_prints_zero_and_exits_one_without_matches() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let out = logstore_output(dir.path(), &["search", "--count", "zebra"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "0\n");
}

#[test]
fn cli_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path()).unwrap();
        for i in 0..30_000 {
            store
                .append(&entry(
                    "big",
                    NOON + i,
                    "the same common line, over and over",
                ))
                .unwrap();
        }
    }
    let mut child = logstore(dir.path())
        .args(["search", "common"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("big "), "{first}");
    // stdout is dropped here: the search meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn cli_highlights_matches_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let piped = logstore_output(dir.path(), &["search", "refused"]);
    assert!(!stdout(&piped).contains('\x1b'));
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_or_fail("`script` (util-linux) is not installed: no terminal to test colours on");
        return;
    }
    // `script` runs the command on a pseudo-terminal.
    let cmd = format!(
        "{BIN} --dir '{}' search --execution run-a refused",
        dir.path().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("connection \x1b[1;31mrefused\x1b[0m (os error 111)"),
        "{text:?}"
    );
}

/// A sealed day of many blocks, one entry of which holds a rare word.
fn many_blocks(dir: &Path) -> LogStore {
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir, manual(&clock)).unwrap();
    for i in 0..40_000i64 {
        let msg = if i == 31_337 {
            "a zanzibar rarity".to_owned()
        } else {
            format!(
                "step {i} of the usual work: fetched {} rows from db-{}",
                i * 7,
                i % 13
            )
        };
        store
            .append(&entry(&format!("e{}", i % 50), NOON + i, &msg))
            .unwrap();
    }
    store.flush(Durability::Written).unwrap();
    clock.advance(DAY);
    store.append(&entry("today", NOON + DAY, "live")).unwrap();
    store.flush(Durability::Written).unwrap();
    assert_eq!(store.seal().unwrap().len(), 1);
    store
}

#[test]
fn a_rare_word_reads_almost_no_sealed_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = many_blocks(dir.path());
    let mut m = store.search(&words(&["ZANZIBAR"])).unwrap();
    let got: Vec<String> = (&mut m).map(|h| h.unwrap().entry.message).collect();
    assert_eq!(got, ["a zanzibar rarity"]);
    let stats = m.stats();
    assert!(stats.blocks >= 10, "{stats:?}");
    // The block that has it, plus the filter's rare false positives.
    assert!(stats.blocks_read <= 2, "{stats:?}");
    // A common word reads them all, and a regex (no word to ask the filter) too.
    let mut m = store.search(&words(&["usual"])).unwrap();
    assert_eq!((&mut m).count(), 39_999);
    assert_eq!(m.stats().blocks_read, m.stats().blocks);
    // Filters skip blocks as well: one execution's blocks only.
    let mut m = store
        .search(&Search {
            execution_prefix: Some("e7".into()),
            ..Search::default()
        })
        .unwrap();
    assert_eq!((&mut m).count(), 800);
    assert!(m.stats().blocks_read <= 2, "{:?}", m.stats());
}

#[test]
fn a_damaged_sealed_block_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    drop(many_blocks(dir.path()));
    let sealed = files_with_ext(dir.path(), "sealed").pop().unwrap();
    let mut bytes = std::fs::read(&sealed).unwrap();
    // Inside the first block (blocks start after the 88-byte head).
    bytes[200] ^= 0x55;
    std::fs::write(&sealed, &bytes).unwrap();
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let mut m = store.search(&words(&["usual"])).unwrap();
    let n = (&mut m).count();
    assert!(n < 39_999 && n > 30_000, "{n}");
    assert_eq!(m.damage().len(), 1, "{:?}", m.damage());
    assert_eq!(m.damage()[0].file, sealed);
    assert!(m.damage()[0].reason.contains("block 0"), "{:?}", m.damage());
    let out = logstore_output(dir.path(), &["search", "--count", "usual"]);
    assert_eq!(stdout(&out), format!("{n}\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("block 0"));
}

#[test]
fn many_units_come_back_in_store_order_on_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let filler = "x".repeat(200);
    // About 10 MiB on each of two days: several units of work per day, so both workers run.
    for day in 0..2i64 {
        if day == 1 {
            clock.advance(DAY);
        }
        for i in 0..40_000i64 {
            let msg = format!("{} {i} {filler}", if i % 3 == 0 { "tick" } else { "tock" });
            store
                .append(&entry(&format!("x{}", i % 7), NOON + day * DAY + i, &msg))
                .unwrap();
        }
        store.flush(Durability::Written).unwrap();
    }
    // Day 1 sealed, day 2 the writer's own live day.
    assert_eq!(store.seal().unwrap().len(), 1);
    let s = words(&["tick"]);
    let hits: Vec<_> = store.search(&s).unwrap().map(Result::unwrap).collect();
    assert_eq!(hits.len(), 2 * 13_334);
    for pair in hits.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "{:?} then {:?}",
            pair[0].position,
            pair[1].position
        );
    }
    // Per execution, the order of `query`.
    for x in 0..7 {
        let exec = format!("x{x}");
        let mine: Vec<&LogEntry> = hits
            .iter()
            .map(|h| &h.entry)
            .filter(|e| e.execution_id.as_str() == exec)
            .collect();
        let all = store
            .query(&id(&exec), &logstore::Filter::default())
            .unwrap();
        let want: Vec<&LogEntry> = all
            .iter()
            .filter(|e| e.message.starts_with("tick"))
            .collect();
        assert_eq!(mine, want, "{exec}");
    }
    let reverse: Vec<_> = store
        .search(&Search {
            reverse: true,
            ..s.clone()
        })
        .unwrap()
        .map(|h| h.unwrap().position)
        .collect();
    let mut forward: Vec<_> = hits.iter().map(|h| h.position).collect();
    forward.reverse();
    assert_eq!(reverse, forward);
    let mut m = store.search(&s).unwrap();
    assert!(m.stats().blocks > 8, "{:?}", m.stats());
    assert_eq!((&mut m).take(5).count(), 5);
    // Counting without building entries gives the same number, and honours the limit.
    assert_eq!(store.search_count(&s).unwrap().matches, hits.len() as u64);
    let mut limited = s.clone();
    limited.filter.limit = Some(1000);
    assert_eq!(store.search_count(&limited).unwrap().matches, 1000);
}

/// Days whose entries are all outside `--since/--until` are not read at all, and the results
/// are those of the naive filter. The day of a file is the day of the write: an entry written
/// on day 2 with a day-1 timestamp keeps day 2 in a search that ends with day 1.
#[test]
fn days_outside_the_time_range_are_skipped_without_changing_results() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    let mut all = Vec::new();
    let mut put = |e: LogEntry| {
        store.append(&e).unwrap();
        all.push(e);
    };
    put(entry("run-a", NOON, "alpha one"));
    store.flush(Durability::Written).unwrap();
    clock.advance(DAY);
    put(entry("run-a", NOON + DAY, "alpha two"));
    put(entry("run-b", NOON + 5, "alpha late")); // written on day 2, stamped day 1
    store.flush(Durability::Written).unwrap();
    clock.advance(DAY);
    put(entry("run-c", NOON + 2 * DAY, "alpha three"));
    store.flush(Durability::Synced).unwrap();
    assert_eq!(store.seal().unwrap().len(), 2);
    let naive = |s: &Search| -> Vec<String> {
        all.iter()
            .filter(|e| s.filter.since_ms.is_none_or(|t| e.timestamp >= t))
            .filter(|e| s.filter.until_ms.is_none_or(|t| e.timestamp < t))
            .map(|e| e.message.clone())
            .collect()
    };
    let check = |store: &LogStore, s: &Search, skipped: u64| {
        let mut got = messages(store, s);
        got.sort();
        let mut want = naive(s);
        want.sort();
        assert_eq!(got, want, "{s:?}");
        let count = store.search_count(s).unwrap();
        assert_eq!(count.matches, want.len() as u64);
        assert_eq!(count.stats.days_skipped, skipped, "{s:?}");
    };
    let within = |since_ms, until_ms| Search {
        filter: Filter {
            since_ms,
            until_ms,
            ..Filter::default()
        },
        ..words(&["alpha"])
    };
    let since_day2 = within(Some(NOON + DAY), None);
    let until_day2 = within(None, Some(NOON + DAY));
    let day2_only = within(Some(NOON + DAY), Some(NOON + DAY + 1));
    // Day 1 (sealed) is before `since`.
    check(&store, &since_day2, 1);
    // Day 3 (the writer's live day) is after `until`; day 2 holds the late entry, so it is read.
    check(&store, &until_day2, 1);
    check(&store, &day2_only, 2);
    check(&store, &words(&["alpha"]), 0);
    drop(store);
    // The same through a reader's view of the live day (its index scanned, not the writer's).
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    check(&reader, &until_day2, 1);
    check(&reader, &day2_only, 2);
}

/// A sealed file whose trailer and its copy are both damaged cannot be opened: its day is
/// skipped, and search says so instead of returning fewer matches in silence.
#[test]
fn an_unreadable_day_is_reported_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let sealed = files_with_ext(dir.path(), "sealed").remove(0);
    let mut bytes = std::fs::read(&sealed).unwrap();
    let len = bytes.len();
    // The trailer's copy right after the 16-byte header, and the trailer at the end.
    bytes[20] ^= 0x55;
    bytes[len - 4] ^= 0x55;
    std::fs::write(&sealed, &bytes).unwrap();
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let count = store.search_count(&words(&["refused"])).unwrap();
    assert_eq!(count.matches, 1, "day 2's match only");
    assert_eq!(count.damage.len(), 1, "{:?}", count.damage);
    assert_eq!(count.damage[0].file, sealed);
    assert!(
        count.damage[0].reason.contains("unreadable"),
        "{:?}",
        count.damage
    );
}
