//! Today in parts: the writer rolls its segment at `part_bytes`, closed segments become parts,
//! parts merge, and the day ends as one sealed file; every reader gets the same entries at
//! every stage, damage stays local, and half-written files are never read.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use logstore::StoreSearch;
use logstore::{Config, Durability, Filter, LogEntry, LogStore, ManualClock};

/// A config with tiny segments on a manual clock.
fn tiny(clock: &ManualClock, part_bytes: u64) -> Config {
    Config {
        clock: Arc::new(clock.clone()),
        part_bytes,
        ..manual(clock)
    }
}

/// Writes `n` entries of `execs` interleaved executions, flushing every 10, and finishes each.
fn write(store: &LogStore, execs: usize, n: usize, ts: i64) -> Vec<Vec<LogEntry>> {
    let mut want = vec![Vec::new(); execs];
    for i in 0..n {
        let k = i % execs;
        let e = entry(
            &format!("x{k}"),
            ts + i as i64,
            &format!(
                "line {i} of x{k}: connection from 10.0.{}.{} accepted",
                i % 7,
                i % 250
            ),
        );
        store.append(&e).unwrap();
        want[k].push(e);
        if i % 10 == 9 {
            store.flush(Durability::Written).unwrap();
        }
    }
    store.flush(Durability::Synced).unwrap();
    want
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    n.sort();
    n
}

fn check(store: &LogStore, want: &[Vec<LogEntry>]) {
    for (k, w) in want.iter().enumerate() {
        assert_eq!(&all_of(store, &format!("x{k}")), w, "x{k}");
    }
}

#[test]
fn segments_roll_into_parts_that_merge_and_the_day_ends_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    let want = write(&store, 5, 3000, NOON);
    let segs = names(dir.path())
        .iter()
        .filter(|n| n.ends_with(".log"))
        .count();
    assert!(
        segs > 1,
        "the segment never rolled: {:?}",
        names(dir.path())
    );
    check(&store, &want);
    // `seal` turns today's closed segments into parts and merges them down to at most 8.
    let steps = store.seal().unwrap();
    assert!(
        steps.iter().any(|s| s.step.to_string().contains("-> part")),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.step.to_string().starts_with("merged")),
        "{steps:?}"
    );
    let files = names(dir.path());
    let parts = files.iter().filter(|n| n.ends_with(".part")).count();
    assert!((1..=8).contains(&parts), "{files:?}");
    assert_eq!(
        files.iter().filter(|n| n.ends_with(".log")).count(),
        1,
        "only the open segment stays live: {files:?}"
    );
    check(&store, &want);
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    check(&reader, &want);
    let stats = reader.stats().unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].parts, parts as u64);
    assert_eq!(stats[0].entries, 3000);
    assert!(reader.verify().unwrap().is_ok());
    // The day ends: its parts and its last segment become one sealed file.
    clock.advance(86_400_000);
    let more = write(&store, 1, 10, NOON + 86_400_000);
    store.seal().unwrap();
    let files = names(dir.path());
    assert!(files.iter().any(|n| n.ends_with(".sealed")), "{files:?}");
    assert!(
        !files
            .iter()
            .any(|n| n.starts_with(&stats[0].day.to_string()) && !n.ends_with(".sealed")),
        "{files:?}"
    );
    let mut want0 = want.clone();
    want0[0].extend(more[0].iter().cloned());
    check(&store, &want0);
    check(&reader, &want0);
    assert!(reader.verify().unwrap().is_ok());
    drop(store);
    // And a new writer reads the same.
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    check(&store, &want0);
}

#[test]
fn a_follower_reads_each_entry_once_while_segments_become_parts_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 2048)).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let mut follower = reader.follow(&id("x0"), Filter::default());
    let mut got = Vec::new();
    let mut want = Vec::new();
    for round in 0..12 {
        let w = write(&store, 3, 300, NOON + round * 1000);
        want.extend(w[0].iter().cloned());
        if round % 3 == 2 {
            store.seal().unwrap();
        }
        got.extend(follower.poll().unwrap());
        assert_eq!(got, want, "round {round}");
    }
    assert!(names(dir.path()).iter().any(|n| n.ends_with(".part")));
}

#[test]
fn a_damaged_part_loses_its_block_not_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 8192)).unwrap();
    let want = write(&store, 4, 4000, NOON);
    store.seal().unwrap();
    drop(store);
    let part = files_with_ext(dir.path(), "part")
        .into_iter()
        .next()
        .expect("a part");
    // A byte inside the first block (blocks start at offset 88).
    flip_bit(&part, 120, 3);
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let report = reader.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file == part && p.reason.contains("block 0")),
        "{:?}",
        report.problems
    );
    let mut lost = 0;
    for (k, w) in want.iter().enumerate() {
        let got = all_of(&reader, &format!("x{k}"));
        // What is left is the written entries minus some: never an entry not written.
        let mut it = w.iter();
        for e in &got {
            assert!(it.any(|x| x == e), "x{k}: an entry that was not written");
        }
        lost += w.len() - got.len();
    }
    // One block of at most 256 KiB raw: a few hundred of these entries, never the day.
    assert!(lost > 0 && lost < 1000, "lost {lost} of 4000");
}

#[test]
fn a_half_written_part_is_never_read_and_the_next_writer_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    let want = write(&store, 3, 1500, NOON);
    store.seal().unwrap();
    drop(store);
    // A part being written when the writer died: a copy of a real part, cut short, under the
    // temporary name; and a merged part's temporary file covering everything.
    let part = files_with_ext(dir.path(), "part").pop().unwrap();
    let bytes = std::fs::read(&part).unwrap();
    let day = names(dir.path())[0][..10].to_owned();
    let segs = dir.path().join("segments");
    std::fs::write(
        segs.join(format!("{day}.000001-000099.part.tmp")),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    std::fs::write(
        segs.join(format!("{day}.000001-000099.part.tmp-filters")),
        b"junk",
    )
    .unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    check(&reader, &want);
    assert!(reader.verify().unwrap().is_ok());
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    check(&store, &want);
    drop(store);
    assert!(
        !names(dir.path()).iter().any(|n| n.contains(".tmp")),
        "{:?}",
        names(dir.path())
    );
}

#[test]
fn a_part_beside_the_segment_it_replaced_counts_once() {
    // A crash between a part's rename and the deletion of its segment leaves both.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    let want = write(&store, 3, 1500, NOON);
    drop(store);
    let saved = tempfile::tempdir().unwrap();
    let first = files_with_ext(dir.path(), "log").remove(0);
    let idx = index_of(&first);
    for f in [&first, &idx] {
        std::fs::copy(f, saved.path().join(f.file_name().unwrap())).unwrap();
    }
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    store.seal().unwrap();
    drop(store);
    assert!(!first.exists(), "the segment became a part");
    for f in [&first, &idx] {
        std::fs::copy(saved.path().join(f.file_name().unwrap()), f).unwrap();
    }
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    check(&reader, &want);
    assert_eq!(reader.stats().unwrap()[0].entries, 1500);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    check(&store, &want);
    drop(store);
    assert!(!first.exists(), "the next writer deleted the leftover");
}

#[test]
fn search_and_list_see_today_in_parts_as_without_parts() {
    let parts = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    for (dir, part_bytes) in [
        (parts.path(), 2048),
        (plain.path(), logstore::DEFAULT_PART_BYTES),
    ] {
        let clock = ManualClock::new(NOON);
        let store = LogStore::open_with(dir, tiny(&clock, part_bytes)).unwrap();
        write(&store, 6, 2000, NOON);
        store.seal().unwrap();
    }
    let (a, b) = (
        LogStore::open_read_only(parts.path()).unwrap(),
        LogStore::open_read_only(plain.path()).unwrap(),
    );
    let search = logstore::Search {
        terms: vec!["accepted".to_owned(), "10.0.3.17".to_owned()],
        ..logstore::Search::default()
    };
    let hits = |s: &LogStore| -> Vec<LogEntry> {
        s.search(&search)
            .unwrap()
            .map(|h| h.unwrap().entry)
            .collect()
    };
    let got = hits(&a);
    assert!(!got.is_empty());
    assert_eq!(got, hits(&b));
    let list = |s: &LogStore| -> Vec<(String, u64)> {
        s.list()
            .unwrap()
            .into_iter()
            .map(|e| (e.execution_id.to_string(), e.entries))
            .collect()
    };
    assert_eq!(list(&a), list(&b));
}

/// What `serve`'s SSE stream and pages stand on: a line cursor (`read_new_lines`) gives every
/// line once, numbered 0, 1, 2 ... in order, while segments become parts and parts merge; a
/// page from any line (`scan_lines`, a `Last-Event-ID` resume) gives the same lines.
#[test]
fn line_cursors_and_pages_hold_while_segments_become_parts_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 2048)).unwrap();
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let mut cursor = logstore::LineCursor::default();
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut want = Vec::new();
    for round in 0..10 {
        let w = write(&store, 3, 300, NOON + round * 1000);
        want.extend(w[0].iter().map(|e| e.message.clone()));
        if round % 2 == 1 {
            store.seal().unwrap();
        }
        reader
            .read_new_lines(&id("x0"), &mut cursor, 0, |n, p| {
                lines.push((n, p.message.to_owned()));
                true
            })
            .unwrap();
        let numbers: Vec<u64> = lines.iter().map(|l| l.0).collect();
        assert_eq!(
            numbers,
            (0..lines.len() as u64).collect::<Vec<_>>(),
            "round {round}"
        );
        let got: Vec<&String> = lines.iter().map(|l| &l.1).collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "round {round}");
    }
    // A resume from any line gives the rest, with the same numbers.
    for from in [0u64, 1, 99, 567, 999] {
        let mut page = Vec::new();
        reader
            .scan_lines(
                &id("x0"),
                from,
                &Filter::default(),
                &mut logstore::RunCache::default(),
                |n, p| {
                    page.push((n, p.message.to_owned()));
                    true
                },
            )
            .unwrap();
        assert_eq!(
            page,
            lines[usize::try_from(from).unwrap()..].to_vec(),
            "from {from}"
        );
    }
}

/// From the shell: `--part-mb` rolls the writer's segments, `seal` prints each step, `stats`
/// shows the parts, and `dump` reads the day through them.
#[test]
fn the_cli_rolls_at_part_mb_and_seal_and_stats_show_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut ndjson = String::new();
    for i in 0..12_000 {
        let e = entry(
            &format!("x{}", i % 4),
            NOON + i,
            &format!("line {i} {}", "payload of a log line ".repeat(10)),
        );
        ndjson.push_str(&serde_json::to_string(&e).unwrap());
        ndjson.push('\n');
    }
    let out = logstore_with_stdin(dir.path(), &["--part-mb", "1", "import"], &ndjson);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = logstore_output(dir.path(), &["--part-mb", "1", "seal"]);
    let text = String::from_utf8_lossy(&out.stdout);
    // The importing writer's sealer may have sealed its closed segments already.
    assert!(
        out.status.success()
            && ((text.contains("STEP") && text.contains("-> part"))
                || text.contains("nothing left to seal")),
        "{text}"
    );
    let out = logstore_output(dir.path(), &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let day = &stats["days"][0];
    assert_eq!(day["state"], "parts", "{stats}");
    assert!(day["parts"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(day["entries"], 12_000, "{stats}");
    assert_eq!(dump_json(dir.path(), "x3").len(), 3000);
}

/// The sealer races every roll: with a segment per flush, it must never take the writer's new
/// (open) segment for a closed one; every entry is read back after the day is sealed.
#[test]
fn a_writer_rolling_at_every_flush_loses_nothing_to_the_sealer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let config = Config {
        part_bytes: 1,
        ..common::manual_with(&clock, 5, 1000)
    };
    let store = LogStore::open_with(dir.path(), config).unwrap();
    let mut want = vec![Vec::new(); 3];
    for i in 0..6000 {
        let k = i % 3;
        let e = entry(&format!("x{k}"), NOON + i as i64, &format!("line {i}"));
        store.append(&e).unwrap();
        want[k].push(e);
    }
    store.flush(Durability::Written).unwrap();
    check(&store, &want);
    clock.advance(86_400_000);
    store
        .append(&entry("y", NOON + 86_400_000, "next day"))
        .unwrap();
    store.flush(Durability::Written).unwrap();
    store.seal().unwrap();
    check(&store, &want);
    drop(store);
    let store = LogStore::open_with(dir.path(), tiny(&clock, 4096)).unwrap();
    check(&store, &want);
    assert!(store.verify().unwrap().is_ok());
}

/// A heads checkpoint of `pairs` (hash, head) covering `covered` index entries, byte for byte
/// as `docs/FORMAT.md` lays it out.
fn checkpoint_bytes(covered: u32, pairs: &[(u64, u32)]) -> Vec<u8> {
    let mut b = b"LOGSTHDS".to_vec();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&covered.to_le_bytes());
    b.extend_from_slice(&u32::try_from(pairs.len()).unwrap().to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    for (h, n) in pairs {
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[16..24]);
    crc.update(&b[32..]);
    let crc = crc.finalize();
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn another_process_finds_an_execution_through_the_heads_checkpoint_and_no_bad_one_loses_entries() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), manual(&clock)).unwrap();
    // 3,000 flushes of 10 runs each: checkpoints every 4,096 index entries, and a tail after.
    let mut want = write(&store, 50, 30_000, NOON);
    let heads: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".heads"))
        .collect();
    assert_eq!(heads.len(), 1, "{:?}", names(dir.path()));
    let path = dir.path().join("segments").join(&heads[0]);
    let good = std::fs::read(&path).unwrap();
    let cp = logstore::format::HeadsCheckpoint::parse(&good).unwrap();
    assert_eq!(cp.heads().len(), 50);
    assert!(
        cp.covered >= 24_000 && cp.covered < 30_000,
        "covered {}",
        cp.covered
    );
    check(&LogStore::open_read_only(dir.path()).unwrap(), &want);

    // A follower that starts through the checkpoint goes on reading the tail.
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let id = logstore::ExecutionId::new("x7").unwrap();
    let mut f = reader.follow(&id, Filter::default());
    assert_eq!(f.poll().unwrap(), want[7]);
    let more = write(&store, 50, 500, NOON + 40_000);
    for (w, m) in want.iter_mut().zip(more) {
        w.extend(m);
    }
    assert_eq!(f.poll().unwrap(), want[7][600..]);

    // Damaged or stale checkpoints (their CRC made to match): heads on another execution's
    // run (entry 1 is x0's), a covered count beyond the valid index (a power cut took the
    // index's tail), a flipped byte. Each sends the reader back to the scan: nothing lost.
    let cur = logstore::format::HeadsCheckpoint::parse(&std::fs::read(&path).unwrap()).unwrap();
    let x0 = logstore::format::exec_hash("x0");
    let elsewhere: Vec<(u64, u32)> = cur
        .heads()
        .iter()
        .map(|&(h, n)| (h, if h == x0 { n } else { 1 }))
        .collect();
    let lies = [
        checkpoint_bytes(cur.covered, &elsewhere),
        checkpoint_bytes(u32::MAX, cur.heads()),
        {
            let mut b = checkpoint_bytes(cur.covered, cur.heads());
            b[40] ^= 1;
            b
        },
    ];
    for lie in lies {
        std::fs::write(&path, &lie).unwrap();
        check(&LogStore::open_read_only(dir.path()).unwrap(), &want);
    }
    std::fs::remove_file(&path).unwrap();
    check(&LogStore::open_read_only(dir.path()).unwrap(), &want);
}

/// The writer keeps its open segment's newest bytes in memory for its own readers
/// (`Config::tail_bytes`). With a mirror far smaller than the segment, an execution's runs are
/// read partly from memory and partly from the file, and the chain walk likewise: every
/// query, follower and count must equal what the files alone give (another process), before
/// and after the writer reopens (which warms the mirror from the files).
#[test]
fn the_writers_readers_get_from_memory_exactly_what_the_files_hold() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    for tail_bytes in [1usize, 0, 64 << 20] {
        let dir = dir.path().join(tail_bytes.to_string());
        let config = || Config {
            tail_bytes,
            ..tiny(&clock, 64 << 20)
        };
        let store = LogStore::open_with(&dir, config()).unwrap();
        let mut follower = store.follow(
            &logstore::ExecutionId::new("x3").unwrap(),
            Filter::default(),
        );
        // About 3 MB in the open segment: three times the mirror's smallest size.
        let want = write(&store, 7, 30_000, NOON);
        let seen = follower.poll().unwrap();
        assert_eq!(seen, want[3], "tail_bytes {tail_bytes}: follower");
        check(&store, &want);
        let reader = LogStore::open_read_only(&dir).unwrap();
        check(&reader, &want);
        let filter = Filter {
            tail: Some(5),
            ..Filter::default()
        };
        let id = logstore::ExecutionId::new("x5").unwrap();
        assert_eq!(
            store.query(&id, &filter).unwrap(),
            reader.query(&id, &filter).unwrap()
        );
        drop(store);
        let store = LogStore::open_with(&dir, config()).unwrap();
        check(&store, &want);
        // And what the reopened writer appends after the warmed bytes.
        let more = write(&store, 7, 700, NOON + 40_000);
        for (k, w) in want.iter().enumerate() {
            let mut all = w.clone();
            all.extend(more[k].iter().cloned());
            assert_eq!(all_of(&store, &format!("x{k}")), all, "x{k} after reopen");
        }
    }
}

/// A finished day is kept at `Config::day_level`: the day-end merge compresses its parts'
/// blocks again (fewer bytes, the same raw columns, the same entries for every reader), and at
/// the parts' own level it copies them as they are.
#[test]
fn a_finished_day_is_compressed_again_at_its_level_and_answers_the_same() {
    let sealed_day = |level: i32| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let config = Config {
            day_level: level,
            ..tiny(&clock, 16 << 10)
        };
        let store = LogStore::open_with(dir.path(), config).unwrap();
        let mut want = write(&store, 5, 4000, NOON);
        store.seal().unwrap();
        let parts = names(dir.path())
            .iter()
            .filter(|n| n.ends_with(".part"))
            .count();
        assert!(parts > 1, "{:?}", names(dir.path()));
        clock.advance(86_400_000);
        let more = write(&store, 1, 10, NOON + 86_400_000);
        want[0].extend(more[0].iter().cloned());
        let steps = store.seal().unwrap();
        assert!(
            steps
                .iter()
                .any(|s| s.step.to_string().contains("sealed day")),
            "{steps:?}"
        );
        check(&store, &want);
        check(&LogStore::open_read_only(dir.path()).unwrap(), &want);
        let path = logstore::format::sealed_path(
            &dir.path().join("segments"),
            logstore::Day::from_unix_ms(NOON),
        );
        let rows = logstore::format::sealed_breakdown(&path).unwrap();
        (dir, std::fs::metadata(&path).unwrap().len(), rows)
    };
    let (_a, copied, rows3) = sealed_day(3);
    let (_b, again, rows6) = sealed_day(logstore::DEFAULT_DAY_LEVEL);
    assert!(again < copied, "level 6: {again} bytes, level 3: {copied}");
    // The same blocks: every column's raw bytes, the filters, the tables.
    let raw = |rows: &[logstore::format::Section]| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = rows.iter().map(|r| (r.name.clone(), r.raw)).collect();
        v.sort();
        v
    };
    assert_eq!(raw(&rows3), raw(&rows6));
}

/// `--day-level` reaches the writer: the same past day, written in parts, sealed by `logstore
/// seal` at 3 and at the default, takes fewer bytes at the default and dumps the same.
#[test]
fn the_cli_keeps_a_finished_day_at_day_level() {
    let sealed = |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(NOON);
        let store = LogStore::open_with(dir.path(), tiny(&clock, 16 << 10)).unwrap();
        write(&store, 4, 4000, NOON);
        drop(store);
        // The CLI's writer runs on the real clock, for which that day is long over.
        let seal: Vec<&str> = args.iter().copied().chain(["seal"]).collect();
        let out = logstore_output(dir.path(), &seal);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = logstore_output(dir.path(), &["stats", "--json"]);
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let day = stats["days"][0].clone();
        assert_eq!(day["state"], "sealed", "{stats}");
        (
            day["disk_bytes"].as_u64().unwrap(),
            dump_json(dir.path(), "x3"),
        )
    };
    let (at3, dump3) = sealed(&["--day-level", "3"]);
    let (at6, dump6) = sealed(&[]);
    assert!(at6 < at3, "default: {at6} bytes, --day-level 3: {at3}");
    assert_eq!(dump3, dump6);
    assert_eq!(dump6.len(), 1000);
    let out = logstore_output(Path::new("."), &["--day-level", "23", "stats"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--day-level"));
}
