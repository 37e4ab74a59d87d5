//! Sealed days (format v2): a past day is rewritten into one compressed file that answers
//! exactly what the live layout answered; the rewrite is crash-safe; damage stays local.
//!
//! Helpers live in this file (not tests/common) so that this file stands alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logstore::{
    CommitPolicy, Config, Durability, ExecutionId, Filter, Level, LogEntry, LogStore, ManualClock,
    TaskId,
};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// 2026-01-10T12:00:00Z.
const NOON: i64 = 1_768_046_400_000;

fn config(clock: &ManualClock, batch: usize) -> Config {
    Config {
        commit: CommitPolicy {
            max_batch_entries: batch,
            max_batch_delay: std::time::Duration::from_secs(3600),
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
        part_bytes: logstore::DEFAULT_PART_BYTES,
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
    }
}

fn id(s: &str) -> ExecutionId {
    ExecutionId::new(s).unwrap()
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Real-looking text: lines of this crate's own sources, so words repeat as in real logs.
fn lines() -> Vec<String> {
    include_str!("../crates/store/src/sealed/seal.rs")
        .lines()
        .chain(include_str!("../docs/FORMAT.md").lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Writes `per_day` entries on each of `days` days, executions interleaved, some with tasks,
/// metadata and terminal entries; returns what was written per execution.
fn write_days(
    dir: &Path,
    clock: &ManualClock,
    days: usize,
    per_day: usize,
) -> BTreeMap<String, Vec<LogEntry>> {
    let text = lines();
    let store = LogStore::open_with(dir, config(clock, 50)).unwrap();
    let mut written: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    for d in 0..days {
        for i in 0..per_day {
            let exec = format!("exec-{d}-{}", i % 13);
            let mut e = LogEntry::new(
                id(&exec),
                clock_now(clock) + (i as i64 % 17),
                Level::ALL[i % 4],
                if i % 5 == 0 {
                    "scheduler"
                } else {
                    "plugin:http.get"
                },
                text[(i * 7 + d) % text.len()].clone(),
            );
            if i % 3 == 0 {
                e = e.with_task(TaskId::new(format!("task-{}", i % 4)).unwrap());
            }
            if i % 11 == 0 {
                let meta = serde_json::json!({"n": i, "why": "because"});
                e = e.with_metadata(meta.as_object().unwrap().clone());
            }
            store.append(&e).unwrap();
            written.entry(exec).or_default().push(e);
            clock.advance(1);
        }
        for k in 0..13 {
            let exec = format!("exec-{d}-{k}");
            let mut meta = serde_json::Map::new();
            meta.insert("state".into(), "SUCCESS".into());
            let e = LogEntry::new(
                id(&exec),
                clock_now(clock),
                Level::Info,
                "scheduler",
                "done",
            )
            .with_metadata(meta);
            store.append(&e).unwrap();
            store.finish_execution(&id(&exec)).unwrap();
            written.entry(exec).or_default().push(e);
        }
        store.flush(Durability::Synced).unwrap();
        clock.advance(DAY_MS);
    }
    // The next day's first write rolls the last day too.
    let e = LogEntry::new(id("today"), clock_now(clock), Level::Info, "s", "today");
    store.append(&e).unwrap();
    store.flush(Durability::Synced).unwrap();
    written.entry("today".into()).or_default().push(e);
    store.seal().unwrap();
    written
}

fn clock_now(clock: &ManualClock) -> i64 {
    logstore::Clock::now_ms(clock)
}

fn all(store: &LogStore, exec: &str) -> Vec<LogEntry> {
    store.query(&id(exec), &Filter::default()).unwrap()
}

#[test]
fn sealed_days_return_exactly_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let written = write_days(dir.path(), &clock, 3, 2000);
    assert_eq!(files_with_ext(dir.path(), "sealed").len(), 3);
    assert_eq!(
        files_with_ext(dir.path(), "log").len(),
        1,
        "only the live day stays v1"
    );
    assert!(files_with_ext(dir.path(), "sidx").is_empty());
    let store = LogStore::open_read_only(dir.path()).unwrap();
    for (exec, want) in &written {
        assert_eq!(&all(&store, exec), want, "{exec}");
    }
    let list = store.list().unwrap();
    assert_eq!(list.len(), written.len());
    for s in &list {
        let want = &written[s.execution_id.as_str()];
        assert_eq!(s.entries, want.len() as u64);
        let errors = want.iter().filter(|e| e.level == Level::Error).count() as u64;
        assert_eq!(s.errors, errors);
        if s.execution_id.as_str() != "today" {
            assert_eq!(s.final_state.as_deref(), Some("SUCCESS"));
        }
    }
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        report.records,
        written.values().map(|v| v.len() as u64).sum::<u64>()
    );
}

/// Writes one day of entries with a store closed before its day rolls: the day stays in the
/// live layout (segment and live index), as today's version and older ones leave it.
fn v1_day(dir: &Path, clock: &ManualClock, n: usize) -> BTreeMap<String, Vec<LogEntry>> {
    let text = lines();
    let store = LogStore::open_with(dir, config(clock, 20)).unwrap();
    let mut written: BTreeMap<String, Vec<LogEntry>> = BTreeMap::new();
    for i in 0..n {
        let exec = format!("v1-{}", i % 5);
        let e = LogEntry::new(
            id(&exec),
            NOON + i as i64,
            Level::Info,
            "w",
            text[i % text.len()].clone(),
        );
        store.append(&e).unwrap();
        written.entry(exec).or_default().push(e);
    }
    store.flush(Durability::Synced).unwrap();
    written
}

fn segments(dir: &Path) -> PathBuf {
    dir.join("segments")
}

fn copy_files(from: &[PathBuf], to: &Path) -> Vec<PathBuf> {
    from.iter()
        .map(|p| {
            let dest = to.join(p.file_name().unwrap());
            std::fs::copy(p, &dest).unwrap();
            dest
        })
        .collect()
}

#[test]
fn a_v1_store_with_sorted_indexes_opens_is_queried_and_gets_sealed() {
    // A store as the previous version left it: a past day with its .sidx.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let written = v1_day(dir.path(), &clock, 500);
    let idx = files_with_ext(dir.path(), "idx").remove(0);
    let bytes = std::fs::read(&idx).unwrap();
    let entries: Vec<logstore::format::IndexEntry> = bytes[16..]
        .chunks_exact(56)
        .map(|c| logstore::format::IndexEntry::from_bytes(c).unwrap())
        .collect();
    logstore::format::SortedIndex::write(&idx.with_extension("sidx"), &entries).unwrap();
    // Readers of the old layout work as before.
    let ro = LogStore::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.stats().unwrap()[0].version, 1);
    for (exec, want) in &written {
        assert_eq!(&all(&ro, exec), want);
    }
    // The next writer seals it; the same reader handle switches to the sealed file.
    clock.advance(DAY_MS);
    let store = LogStore::open_with(dir.path(), config(&clock, 20)).unwrap();
    let sealed = store.seal().unwrap();
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0].entries, 500);
    assert!(
        sealed[0].sealed_bytes < sealed[0].segment_bytes / 3,
        "{sealed:?}"
    );
    assert!(files_with_ext(dir.path(), "sidx").is_empty());
    assert!(files_with_ext(dir.path(), "idx").is_empty());
    for (exec, want) in &written {
        assert_eq!(&all(&store, exec), want);
        assert_eq!(&all(&ro, exec), want);
    }
    assert_eq!(ro.stats().unwrap()[0].version, 2);
}

#[test]
fn a_seal_interrupted_at_any_step_leaves_each_entry_exactly_once() {
    let base = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let written = v1_day(base.path(), &clock, 300);
    let v1_files: Vec<PathBuf> = ["log", "idx"]
        .iter()
        .flat_map(|e| files_with_ext(base.path(), e))
        .collect();
    let saved = tempfile::tempdir().unwrap();
    let saved_v1 = copy_files(&v1_files, saved.path());
    clock.advance(DAY_MS);
    {
        let store = LogStore::open_with(base.path(), config(&clock, 20)).unwrap();
        store.seal().unwrap();
    }
    let sealed = files_with_ext(base.path(), "sealed").remove(0);
    let stem = sealed.file_stem().unwrap().to_str().unwrap().to_owned();
    // Step by step, what a SIGKILL can leave: (a) the temp file half-written beside the v1
    // files and the spill files, (b) the sealed file renamed but the live-layout files not yet deleted, (c) done.
    let half = std::fs::read(&sealed).unwrap();
    let states: [(&str, bool, bool); 3] = [
        ("temp", true, false),
        ("renamed", false, true),
        ("done", false, false),
    ];
    for (what, temp, both) in states {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(segments(dir.path())).unwrap();
        if temp {
            copy_files(&saved_v1, &segments(dir.path()));
            let tmp = segments(dir.path()).join(format!("{stem}.sealed.tmp"));
            std::fs::write(&tmp, &half[..half.len() / 2]).unwrap();
            // The spill files of the partition sort, one of them cut mid-run.
            for spill in ["execs", "part0", "part1"] {
                std::fs::write(
                    segments(dir.path()).join(format!("{stem}.sealed.tmp-{spill}")),
                    b"\x01\x02\x03",
                )
                .unwrap();
            }
        } else {
            copy_files(std::slice::from_ref(&sealed), &segments(dir.path()));
            if both {
                copy_files(&saved_v1, &segments(dir.path()));
            }
        }
        // A reader in another process (before any writer cleans up) sees one layout.
        let ro = LogStore::open_read_only(dir.path()).unwrap();
        for (exec, want) in &written {
            assert_eq!(&all(&ro, exec), want, "{what}: reader, {exec}");
        }
        assert!(ro.verify().unwrap().is_ok(), "{what}");
        // The writer's open finishes the job, and the entries are there exactly once.
        let store = writer_finishes_the_seal(dir.path(), &clock, &written, what);
        assert_eq!(file_names(dir.path()), [format!("{stem}.sealed")], "{what}");
        let list = store.list().unwrap();
        assert_eq!(list.iter().map(|s| s.entries).sum::<u64>(), 300, "{what}");
    }
}

#[test]
fn a_follower_reads_on_across_the_seal_of_its_day() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let store = LogStore::open_with(dir.path(), config(&clock, 10)).unwrap();
    let exec = id("followed");
    let mut follower = store.follow(&exec, Filter::default());
    let reader = LogStore::open_read_only(dir.path()).unwrap();
    let mut remote = reader.follow(&exec, Filter::default());
    let mut want = Vec::new();
    let (mut got, mut got_remote) = (Vec::new(), Vec::new());
    for i in 0..120 {
        let e = LogEntry::new(
            exec.clone(),
            NOON + i,
            Level::Info,
            "s",
            format!("line {i}"),
        );
        store.append(&e).unwrap();
        want.push(e);
        if i == 55 {
            store.flush(Durability::Written).unwrap();
            got.extend(follower.poll().unwrap());
            got_remote.extend(remote.poll().unwrap());
        }
    }
    store.flush(Durability::Written).unwrap();
    // The day rolls and is sealed under both followers, with entries they have not read yet.
    clock.advance(DAY_MS);
    let e = LogEntry::new(exec.clone(), NOON + DAY_MS, Level::Info, "s", "next day");
    store.append(&e).unwrap();
    want.push(e);
    store.flush(Durability::Written).unwrap();
    store.seal().unwrap();
    got.extend(follower.poll().unwrap());
    got_remote.extend(remote.poll().unwrap());
    assert_eq!(got, want);
    assert_eq!(got_remote, want);
    assert!(follower.poll().unwrap().is_empty());
}

#[test]
fn gc_deletes_sealed_days_and_stats_report_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    write_days(dir.path(), &clock, 3, 3000);
    let store = LogStore::open_with(dir.path(), config(&clock, 50)).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.len(), 4);
    for d in &stats[..3] {
        assert!(d.sealed && d.version == 2 && d.blocks > 0);
        assert_eq!(d.disk_bytes, d.segment_bytes);
        assert!(d.raw_bytes > 4 * d.disk_bytes, "{d:?}");
        assert_eq!(d.entries, 3013);
        assert_eq!(d.executions, 13);
    }
    assert_eq!(stats[3].version, 1);
    assert_eq!(store.gc(1).unwrap().len(), 2);
    assert_eq!(files_with_ext(dir.path(), "sealed").len(), 1);
    assert!(store.query(&id("exec-0-1"), &Filter::default()).is_err());
    assert_eq!(all(&store, "exec-2-1").len(), 3000 / 13 + 2);
}

#[test]
fn filters_skip_nothing_they_should_return() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let written = write_days(dir.path(), &clock, 1, 4000);
    let store = LogStore::open_read_only(dir.path()).unwrap();
    let exec = "exec-0-3";
    let mid = written[exec][written[exec].len() / 2].timestamp;
    for f in [
        Filter {
            min_level: Some(Level::Error),
            ..Filter::default()
        },
        Filter {
            since_ms: Some(mid),
            ..Filter::default()
        },
        Filter {
            until_ms: Some(mid),
            ..Filter::default()
        },
        Filter {
            task_id: Some(TaskId::new("task-0").unwrap()),
            ..Filter::default()
        },
        Filter {
            source_prefix: Some("plugin".into()),
            tail: Some(7),
            ..Filter::default()
        },
        Filter {
            limit: Some(3),
            since_ms: Some(mid),
            ..Filter::default()
        },
    ] {
        let mut want: Vec<LogEntry> = written[exec]
            .iter()
            .filter(|e| {
                f.min_level.is_none_or(|l| e.level >= l)
                    && f.since_ms.is_none_or(|s| e.timestamp >= s)
                    && f.until_ms.is_none_or(|u| e.timestamp < u)
                    && f.task_id
                        .as_ref()
                        .is_none_or(|t| e.task_id.as_ref() == Some(t))
                    && f.source_prefix
                        .as_ref()
                        .is_none_or(|p| e.source.starts_with(p.as_str()))
            })
            .cloned()
            .collect();
        let matching = want.len();
        if let Some(t) = f.tail {
            want.drain(..want.len().saturating_sub(t));
        }
        if let Some(l) = f.limit {
            want.truncate(l);
        }
        assert_eq!(store.query(&id(exec), &f).unwrap(), want, "{f:?}");
        let counted = store.count(
            &id(exec),
            &Filter {
                limit: None,
                tail: None,
                ..f.clone()
            },
        );
        assert_eq!(counted.unwrap(), matching as u64, "{f:?}");
    }
}

fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logstore"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    (out.status.success(), text)
}

#[test]
fn every_command_works_on_sealed_days() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    // Past days left in the live layout: `seal` seals them and says so.
    let written = v1_day(dir.path(), &clock, 400);
    let (ok, text) = cli(dir.path(), &["seal"]);
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("DAY") && lines[0].contains("BYTES_BEFORE"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("2026-01-10") && lines[1].contains("x "),
        "{text}"
    );
    assert!(lines[1].contains(" 400 "), "{text}");
    let (ok, text) = cli(dir.path(), &["seal"]);
    assert!(ok && text.contains("nothing left to seal"), "{text}");
    let (ok, text) = cli(dir.path(), &["stats"]);
    assert!(
        ok && text.lines().nth(1).unwrap().contains("sealed"),
        "{text}"
    );
    let (ok, text) = cli(dir.path(), &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(ok);
    assert_eq!(v["days"][0]["state"], "sealed");
    assert_eq!(v["days"][0]["entries"], 400);
    let (ok, text) = cli(dir.path(), &["list"]);
    assert!(ok && text.contains("v1-3"), "{text}");
    let (ok, text) = cli(dir.path(), &["dump", "v1-3", "--json"]);
    assert!(ok);
    assert_eq!(text.lines().count(), written["v1-3"].len());
    let (ok, text) = cli(dir.path(), &["verify"]);
    assert!(ok && text.ends_with("ok\n"), "{text}");
    // Damage in a block: verify names the sealed file and the block, exit code 2.
    let sealed = files_with_ext(dir.path(), "sealed").remove(0);
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&sealed, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logstore"))
        .arg("--dir")
        .arg(dir.path())
        .arg("verify")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(".sealed at offset 88: block 0"), "{text}");
}

/// The names in the store's `segments/`.
fn file_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(segments(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Opens the writer on what an interrupted seal left, lets it seal, and checks that every
/// execution reads back exactly as written.
fn writer_finishes_the_seal(
    dir: &Path,
    clock: &ManualClock,
    written: &BTreeMap<String, Vec<LogEntry>>,
    what: &str,
) -> LogStore {
    let store = LogStore::open_with(dir, config(clock, 20)).unwrap();
    store.seal().unwrap();
    for (exec, want) in written {
        assert_eq!(&all(&store, exec), want, "{what}: writer, {exec}");
    }
    store
}

/// The child of [`sigkills_during_a_partitioned_seal_leave_one_layout`]: seals the past day of
/// the store at `LOGSTORE_SEAL_CHILD` with tiny partitions and blocks, so that the spill sort
/// runs with hundreds of partition files.
#[test]
fn partitioned_seal_child() {
    let Ok(dir) = std::env::var("LOGSTORE_SEAL_CHILD") else {
        return;
    };
    let options = logstore::format::SealOptions {
        partition_bytes: 4096,
        block_target: 4096,
        ..logstore::format::SealOptions::default()
    };
    let day = logstore::Day::from_unix_ms(NOON);
    logstore::format::seal_closed_day(Path::new(&dir), day, options).unwrap();
}

#[test]
fn sigkills_during_a_partitioned_seal_leave_one_layout() {
    let base = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOON);
    let written = v1_day(base.path(), &clock, 30_000);
    clock.advance(DAY_MS);
    let v1: Vec<PathBuf> = ["log", "idx"]
        .iter()
        .flat_map(|e| files_with_ext(base.path(), e))
        .collect();
    let child = |dir: &Path| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["partitioned_seal_child", "--exact", "--nocapture"])
            .env("LOGSTORE_SEAL_CHILD", dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(segments(dir.path())).unwrap();
        copy_files(&v1, &segments(dir.path()));
        dir
    };
    // How long an uninterrupted child takes: kills land uniformly over twice that.
    let dir = fresh();
    let t = std::time::Instant::now();
    assert!(child(dir.path()).wait().unwrap().success());
    let whole = t.elapsed();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut mid_seal = 0;
    for round in 0..40 {
        let dir = fresh();
        let mut c = child(dir.path());
        std::thread::sleep(whole.mul_f64(2.0 * rng.f64()));
        let _ = c.kill();
        c.wait().unwrap();
        let names = file_names(dir.path());
        if names.iter().any(|n| n.contains(".sealed.tmp-part")) {
            mid_seal += 1;
        }
        let ro = LogStore::open_read_only(dir.path()).unwrap();
        for (exec, want) in &written {
            assert_eq!(
                &all(&ro, exec),
                want,
                "round {round} ({names:?}): reader, {exec}"
            );
        }
        drop(writer_finishes_the_seal(
            dir.path(),
            &clock,
            &written,
            &format!("round {round}"),
        ));
        let left = file_names(dir.path());
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
        assert!(left[0].ends_with(".sealed"), "round {round}: {left:?}");
    }
    eprintln!("{mid_seal} of 40 kills left spill files (the seal took {whole:?} uninterrupted)");
    assert!(mid_seal > 0, "no kill landed during the spill sort");
}
