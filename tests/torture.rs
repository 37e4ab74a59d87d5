//! Crash torture: a writer process runs many executions at once through the real API and is
//! killed with SIGKILL at random moments; after each kill the store is reopened and checked
//! against what the writer acknowledged. Then a power-cut simulation damages the files the way
//! a lost page cache and a bad disk would.
//!
//! The writer is this test binary itself: `crash_torture` spawns `current_exe()` running only
//! `torture_writer_child` with `LOGSTORE_TORTURE_WRITER=<dir>` set; without that variable the
//! child test returns at once (it shows up as a passing no-op test in normal runs).
//!
//! Writer protocol on stdout, one line each, flushed:
//! - `READY` once the store is open (recovery done);
//! - `FLUSHED <exec> <seq>` after `flush(Durability::Written)` returned with entries 0..=seq
//!   appended: they must survive the crash of the process;
//! - `ACK <exec> <total>` after `finish_execution` returned: all `total + 1` entries (the last
//!   one terminal) must survive.
//!
//! The writer's clock runs fast (a day every 25 ms of real time), so its day rolls every few
//! milliseconds and the background sealer is rewriting days while the kills land: the store
//! after a kill may hold a seal's temporary files, or a sealed file beside the live files it
//! replaced, and must still give every acknowledged entry exactly once.
//!
//! Rounds: 200 by default, `LOGSTORE_TORTURE_ROUNDS=N` for more.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use logstore::format::exec_hash;
use logstore::{Clock, Config, Durability, ExecutionId, LogEntry, LogStore};

const WRITER_THREADS: u64 = 4;

/// Entries (before the terminal one) of execution `exec`: 1..=80, derived from the id.
fn total_of(exec: &str) -> u64 {
    1 + exec_hash(exec) % 80
}

#[test]
fn torture_writer_child() {
    let Ok(dir) = std::env::var("LOGSTORE_TORTURE_WRITER") else {
        return;
    };
    let round: u64 = std::env::var("LOGSTORE_TORTURE_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let config = Config {
        clock: Arc::new(FastClock::new(round)),
        // Tiny segments: every day rolls into many segments, sealed into parts and merged
        // while the kills land.
        part_bytes: 2048,
        ..Config::default()
    };
    let store = Arc::new(LogStore::open_with(&dir, config).unwrap());
    say("READY".to_owned());
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for k in 0.. {
                    let exec = format!("r{round}-t{t}-{k}");
                    let total = total_of(&exec);
                    for seq in 0..=total {
                        store.append(&generated_entry(&exec, seq, total)).unwrap();
                        if seq % 25 == 24 && seq < total {
                            store.flush(Durability::Written).unwrap();
                            say(format!("FLUSHED {exec} {seq}"));
                        }
                    }
                    store
                        .finish_execution(&ExecutionId::new(exec.as_str()).unwrap())
                        .unwrap();
                    say(format!("ACK {exec} {total}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A clock on which a day passes every 25 ms, starting in 2030 plus ten days per round (so
/// every round starts after the days the previous ones wrote).
struct FastClock {
    start: std::time::Instant,
    base_ms: i64,
}

impl FastClock {
    const DAY_MS: i64 = 86_400_000;
    const REAL_MS_PER_DAY: i64 = 25;

    fn new(round: u64) -> FastClock {
        FastClock {
            start: std::time::Instant::now(),
            base_ms: 1_893_456_000_000 + i64::try_from(round).unwrap() * 10 * Self::DAY_MS,
        }
    }
}

impl Clock for FastClock {
    fn now_ms(&self) -> i64 {
        let real = i64::try_from(self.start.elapsed().as_micros()).unwrap();
        self.base_ms + real * (Self::DAY_MS / Self::REAL_MS_PER_DAY) / 1000
    }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[derive(Default)]
struct Figures {
    rounds: u64,
    kills: u64,
    killed_before_ready: u64,
    acked: u64,
    flushed_checked: u64,
    executions_checked: u64,
    entries_checked: u64,
    lost: u64,
    /// Kills that left a seal's temporary file (killed while writing a sealed file).
    killed_writing_seal: u64,
    /// Kills that left a sealed file beside the live files it replaced (killed between the
    /// rename and the deletion).
    killed_committing_seal: u64,
}

/// What one writer run acknowledged: minimum entry count per execution.
fn run_writer(dir: &Path, round: u64, rng: &mut fastrand::Rng) -> (HashMap<String, u64>, bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "torture_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOGSTORE_TORTURE_WRITER", dir)
        .env("LOGSTORE_TORTURE_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut must_have: HashMap<String, u64> = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints "test torture_writer_child ... " without a newline before the
            // child's first line.
            let line = line.trim_start_matches("test torture_writer_child ... ");
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("READY"), _, _) => {
                    let _ = ready_tx.send(());
                }
                (Some("FLUSHED"), Some(exec), Some(seq)) => {
                    let n = seq.parse::<u64>().unwrap() + 1;
                    let slot = must_have.entry(exec.to_owned()).or_default();
                    *slot = (*slot).max(n);
                }
                (Some("ACK"), Some(exec), Some(total)) => {
                    must_have.insert(exec.to_owned(), total.parse::<u64>().unwrap() + 1);
                }
                _ => {}
            }
        }
        must_have
    });
    // Every fifth round counts from the spawn, so some kills land during open and recovery.
    let from_spawn = round % 5 == 4;
    let mut ready = true;
    if !from_spawn {
        ready = ready_rx.recv_timeout(Duration::from_secs(30)).is_ok();
    }
    // Kills timed from the spawn are short, to land while the writer is still opening the
    // store (recovery of the previous crash); the others 5-100 ms into writing.
    let delay = if from_spawn {
        rng.u64(0..=8)
    } else {
        rng.u64(5..=100)
    };
    std::thread::sleep(Duration::from_millis(delay));
    child.kill().unwrap();
    child.wait().unwrap();
    let must_have = reader.join().unwrap();
    if from_spawn {
        ready = ready_rx.try_recv().is_ok();
    }
    (must_have, ready)
}

/// Checks every execution of `prefix` in the store: its entries are exactly the first entries
/// of the generator, and at least as many as acknowledged.
fn check_executions(
    store: &LogStore,
    prefix: &str,
    must_have: &HashMap<String, u64>,
    figures: &mut Figures,
) {
    let listed = store.list().unwrap();
    let mut seen = std::collections::HashSet::new();
    // Sequence numbers across every execution of the store, through kills, rolls, parts and
    // merges: unique, and increasing in each execution's append order (one thread appends an
    // execution, so its order is its append order).
    let mut numbers = std::collections::HashSet::new();
    for summary in listed {
        let exec = summary.execution_id.as_str();
        if !exec.starts_with(prefix) {
            continue;
        }
        seen.insert(exec.to_owned());
        let mut got = Vec::new();
        let mut last = 0u64;
        store
            .query_each_stored(&summary.execution_id, &logstore::Filter::default(), |s| {
                let n = s.seq.expect("every entry is numbered");
                assert!(n > last, "{exec}: number {n} after {last}");
                assert!(numbers.insert(n), "{exec}: number {n} given twice");
                last = n;
                got.push(s.entry);
                true
            })
            .unwrap();
        let total = total_of(exec);
        assert!(got.len() as u64 <= total + 1, "{exec}: too many entries");
        for (seq, e) in got.iter().enumerate() {
            assert_eq!(
                e,
                &generated_entry(exec, seq as u64, total),
                "{exec}: entry {seq} is not what was written"
            );
        }
        figures.executions_checked += 1;
        figures.entries_checked += got.len() as u64;
        if let Some(&n) = must_have.get(exec) {
            if (got.len() as u64) < n {
                figures.lost += n - got.len() as u64;
                panic!("{exec}: {n} entries acknowledged, {} survived", got.len());
            }
        }
    }
    for (exec, n) in must_have {
        if exec.starts_with(prefix) && !seen.contains(exec) {
            figures.lost += n;
            panic!("{exec}: acknowledged ({n} entries) but not listed");
        }
    }
}

#[test]
fn crash_torture() {
    let rounds: u64 = std::env::var("LOGSTORE_TORTURE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let seed = std::env::var("LOGSTORE_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("crash_torture: seed {seed} (LOGSTORE_TORTURE_SEED={seed} to replay the delays)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut figures = Figures::default();
    let mut final_figures = Figures::default();
    // A fresh store every EPOCH rounds keeps each round's checks (verify reads everything)
    // bounded; within an epoch every crash lands on a store that earlier crashes left behind.
    const EPOCH: u64 = 10;
    let mut dir = tempfile::tempdir().unwrap();
    let mut epoch_acked: HashMap<String, u64> = HashMap::new();
    for round in 0..rounds {
        let (must_have, ready) = run_writer(dir.path(), round, &mut rng);
        figures.rounds += 1;
        figures.kills += 1;
        figures.killed_before_ready += u64::from(!ready);
        figures.flushed_checked += must_have.len() as u64;
        note_seal_leftovers(dir.path(), &mut figures);
        let store = LogStore::open(dir.path()).unwrap();
        check_executions(&store, &format!("r{round}-"), &must_have, &mut figures);
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        figures.acked += must_have
            .iter()
            .filter(|(e, &n)| n == total_of(e) + 1)
            .count() as u64;
        epoch_acked.extend(must_have);
        drop(store);
        // The writer deleted the killed one's temporary files when it opened, and a closed
        // writer leaves none of its own.
        let left: Vec<String> = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(
            left.is_empty(),
            "round {round}: temporary files left: {left:?}"
        );
        if round % EPOCH == EPOCH - 1 || round == rounds - 1 {
            end_epoch(dir.path(), &epoch_acked, &mut final_figures);
            epoch_acked.clear();
            if round != rounds - 1 {
                dir = tempfile::tempdir().unwrap();
            }
        }
    }
    eprintln!(
        "crash_torture summary: rounds {} kills {} (before ready {}) executions acknowledged {} \
         flush/ack promises checked {} executions checked {} entries checked {} \
         (end-of-epoch passes: {} executions, {} entries) lost {}; kills while writing a \
         sealed file or part {}, between its rename and the deletion of the files it replaces {}",
        figures.rounds,
        figures.kills,
        figures.killed_before_ready,
        figures.acked,
        figures.flushed_checked,
        figures.executions_checked,
        figures.entries_checked,
        final_figures.executions_checked,
        final_figures.entries_checked,
        figures.lost + final_figures.lost,
        figures.killed_writing_seal,
        figures.killed_committing_seal
    );
    if rounds >= 100 {
        assert!(
            figures.killed_writing_seal + figures.killed_committing_seal > 0,
            "no kill landed during sealing: the torture no longer tests it"
        );
    }
    power_cut_simulation(dir.path(), &mut rng);
}

/// Counts what a kill left of a seal in progress.
fn note_seal_leftovers(dir: &Path, figures: &mut Figures) {
    let names: Vec<String> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    if names
        .iter()
        .any(|n| n.contains(".sealed.tmp") || n.contains(".part.tmp"))
    {
        figures.killed_writing_seal += 1;
    }
    // A wider file beside what it replaces: a sealed day beside any other file of its day, or
    // a part beside a segment (or a narrower part) its range holds.
    let seq = |s: &str| s.parse::<u32>().ok();
    let covered = names.iter().any(|n| {
        let (day, rest) = n.split_at(n.len().min(10));
        if rest == ".sealed" {
            return names
                .iter()
                .any(|m| m != n && m.starts_with(day) && !m.contains(".tmp"));
        }
        let Some((a, b)) = rest
            .strip_prefix('.')
            .and_then(|r| r.strip_suffix(".part"))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((seq(a)?, seq(b)?)))
        else {
            return false;
        };
        names.iter().any(|m| {
            let Some(r) = m.strip_prefix(day).and_then(|r| r.strip_prefix('.')) else {
                return false;
            };
            let inside = |x: u32| a <= x && x <= b;
            match r.strip_suffix(".log").and_then(seq) {
                Some(x) => inside(x),
                None => r
                    .strip_suffix(".part")
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(x, y)| Some((seq(x)?, seq(y)?)))
                    .is_some_and(|(x, y)| (x, y) != (a, b) && inside(x) && inside(y)),
            }
        })
    });
    if covered {
        figures.killed_committing_seal += 1;
    }
}

/// Every acknowledgement of the epoch still holds after all the later crashes and recoveries,
/// and the writer can go on.
fn end_epoch(dir: &Path, acked: &HashMap<String, u64>, figures: &mut Figures) {
    let store = LogStore::open(dir).unwrap();
    check_executions(&store, "r", acked, figures);
    let probe = generated_entry("after-torture", 0, 1);
    store.append(&probe).unwrap();
    store.flush(Durability::Synced).unwrap();
    assert_eq!(all_of(&store, "after-torture"), vec![probe]);
    assert!(store.verify().unwrap().is_ok());
}

/// Writes 40 whole executions into the live day. With the writer's fast clock the live day may
/// hold a record or two, and a flip there is likely to fall in the torn tail that recovery cuts
/// without naming it; the simulation needs a segment of some size to damage.
fn fill_live_day(dir: &Path) {
    let store = LogStore::open(dir).unwrap();
    for k in 0..40 {
        let exec = format!("r-fill-{k}");
        let total = total_of(&exec);
        for seq in 0..=total {
            store.append(&generated_entry(&exec, seq, total)).unwrap();
        }
        store
            .finish_execution(&ExecutionId::new(exec.as_str()).unwrap())
            .unwrap();
    }
}

/// Damages copies of the tortured store: the last segment and its index cut at random offsets
/// (what a power cut leaves of unsynced pages) and random bits flipped (a bad disk). Opening,
/// verifying and querying never panic, never return an entry that was not written, and every
/// record whose bytes were not touched and that lies before the cut is returned: damage costs
/// the damaged records only.
fn power_cut_simulation(src: &Path, rng: &mut fastrand::Rng) {
    fill_live_day(src);
    let rounds = 8;
    let (mut flips_named, mut flips, mut checked, mut tail_flips) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        copy_store(src, dir.path());
        let seg = last_segment(dir.path());
        let idx = index_of(&seg);
        let before = frames(&seg);
        let seg_len = std::fs::metadata(&seg).unwrap().len();
        let cut = rng.u64(seg_len / 2..=seg_len);
        truncate(&seg, cut);
        if idx.exists() {
            let idx_len = std::fs::metadata(&idx).unwrap().len();
            truncate(&idx, rng.u64(0..=idx_len));
        }
        let mut flipped_frames = Vec::new();
        for _ in 0..rng.usize(1..=4) {
            let at = rng.u64(16..cut.max(17));
            if at >= cut {
                continue;
            }
            flip_bit(&seg, at, rng.u8(0..8));
            if let Some(f) = before.iter().find(|f| f.0 <= at && at < f.0 + f.1 as u64) {
                flipped_frames.push(f.0);
            }
        }
        if idx.exists() && rng.bool() {
            let idx_len = std::fs::metadata(&idx).unwrap().len();
            if idx_len > 0 {
                flip_bit(&idx, rng.u64(0..idx_len), rng.u8(0..8));
            }
        }
        flipped_frames.sort_unstable();
        flipped_frames.dedup();

        let store = LogStore::open(dir.path()).unwrap();
        let report = store.verify().unwrap();
        let mut named: Vec<u64> = report.problems.iter().map(|p| p.offset).collect();
        named.extend(store.recovered_damage().iter().map(|d| d.offset));
        // Expected survivors: frames entirely before the cut and not flipped.
        let mut expect: HashMap<String, Vec<(usize, String)>> = HashMap::new();
        for (i, (off, len, exec, message)) in before.iter().enumerate() {
            if off + *len as u64 <= cut && !flipped_frames.contains(off) {
                expect
                    .entry(exec.clone())
                    .or_default()
                    .push((i, message.clone()));
            }
        }
        for (i, &f) in flipped_frames.iter().enumerate() {
            // Adjacent damaged frames merge into one region named at its start.
            let merged = i > 0
                && before
                    .iter()
                    .any(|b| b.0 + b.1 as u64 == f && flipped_frames[i - 1] == b.0);
            flips += 1;
            // A flipped frame with no intact whole frame after it before the cut is part of the
            // torn tail: recovery cannot tell it from a half-written record and cuts it unnamed
            // (docs/DURABILITY.md). Its entries are not expected back either way.
            let in_tail = !before
                .iter()
                .any(|b| b.0 > f && b.0 + b.1 as u64 <= cut && !flipped_frames.contains(&b.0));
            if in_tail {
                flips -= 1;
                tail_flips += 1;
            } else if named.contains(&f) || merged {
                flips_named += 1;
            }
        }
        for (exec, want) in &expect {
            let got: Vec<LogEntry> = all_of(&store, exec);
            let total = if exec.starts_with('r') {
                total_of(exec)
            } else {
                1
            };
            // Every entry returned was written, in relative order.
            let mut last_seq = None;
            for e in &got {
                let seq = generated_seq(e).unwrap_or(total);
                assert_eq!(
                    e,
                    &generated_entry(exec, seq, total),
                    "{exec}: an entry never written came back"
                );
                assert!(last_seq < Some(seq), "{exec}: out of order");
                last_seq = Some(seq);
            }
            let got_msgs: Vec<&str> = got.iter().map(|e| e.message.as_str()).collect();
            for (i, m) in want {
                checked += 1;
                if !got_msgs.contains(&m.as_str()) {
                    panic!("{exec}: intact record at {} lost: {m:?}", before[*i].0);
                }
            }
        }
        let _ = store.list().unwrap();
        drop(store);
    }
    eprintln!(
        "power_cut_simulation summary: rounds {rounds} flipped records {flips} named by verify/recovery {flips_named} \
         (and {tail_flips} in the torn tail, cut unnamed) \
         intact records checked {checked} intact records lost 0"
    );
    assert_eq!(
        flips, flips_named,
        "some damage was not reported at its offset"
    );
}
