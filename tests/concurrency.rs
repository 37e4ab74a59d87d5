//! Readers while the writer appends and the day rolls over: queries from many threads (on the
//! writer's handle and on a read-only handle), and followers polling. Every read must be a
//! whole prefix of what the writer appended for that execution, in order, and never shrink.
//!
//! The clock is a `ManualClock` the writer moves across midnight during the run, so the first
//! day is sealed (sorted index) while readers are reading it.
//!
//! `LOGSTORE_CONCURRENCY_ITERS=N` repeats the whole scenario N times (default 3).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use logstore::{
    CommitPolicy, Config, Durability, ExecutionId, Filter, LogEntry, LogStore, ManualClock,
};

const EXECS: u64 = 6;
const PER_EXEC: u64 = 1500;

fn exec_name(i: u64) -> String {
    format!("conc-{i}")
}

/// Checks that `got` is the first `got.len()` entries of `exec`, and not shorter than before.
fn assert_prefix(exec: &str, got: &[LogEntry], seen_before: usize, who: &str) {
    assert!(
        got.len() >= seen_before,
        "{who}: {exec} shrank from {seen_before} to {}",
        got.len()
    );
    for (seq, e) in got.iter().enumerate() {
        let want = generated_entry(exec, seq as u64, PER_EXEC);
        if e != &want {
            let around: Vec<_> = got[seq.saturating_sub(2)..(seq + 8).min(got.len())]
                .iter()
                .map(generated_seq)
                .collect();
            panic!("{who}: {exec} entry {seq} is not the one appended at that place (numbers around it: {around:?})\n got {e:?}\nwant {want:?}");
        }
    }
}

fn scenario(iteration: u64) {
    let dir = tempfile::tempdir().unwrap();
    // Ten seconds before midnight UTC; the writer moves the clock 10 ms per step.
    let midnight = NOON + 12 * 3600 * 1000;
    let clock = ManualClock::new(midnight - 10_000);
    let config = Config {
        commit: CommitPolicy {
            max_batch_entries: 16,
            ..CommitPolicy::default()
        },
        clock: Arc::new(clock.clone()),
        // Small segments: followers must survive segments turning into parts and merging.
        part_bytes: 4096,
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
    };
    let store = Arc::new(LogStore::open_with(dir.path(), config).unwrap());
    let reader_store = Arc::new(LogStore::open_read_only(dir.path()).unwrap());
    let done = Arc::new(AtomicBool::new(false));

    let mut readers = Vec::new();
    for r in 0..3u64 {
        let handle = if r == 2 {
            Arc::clone(&reader_store)
        } else {
            Arc::clone(&store)
        };
        let done = Arc::clone(&done);
        readers.push(std::thread::spawn(move || {
            let who = format!("query reader {r}");
            let mut seen = vec![0usize; usize::try_from(EXECS).unwrap()];
            let mut reads = 0u64;
            let mut rng = fastrand::Rng::with_seed(iteration * 10 + r);
            while !done.load(Ordering::Acquire) || reads < 20 {
                let i = rng.u64(0..EXECS);
                let exec = exec_name(i);
                let got = all_of(&handle, &exec);
                let slot = &mut seen[usize::try_from(i).unwrap()];
                assert_prefix(&exec, &got, *slot, &who);
                *slot = got.len();
                reads += 1;
            }
            reads
        }));
    }
    let mut followers = Vec::new();
    for i in [0, EXECS - 1] {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        followers.push(std::thread::spawn(move || {
            let exec = exec_name(i);
            let id = ExecutionId::new(exec.as_str()).unwrap();
            let mut follower = store.follow(&id, Filter::default());
            let mut got = Vec::new();
            loop {
                let finished_writer = done.load(Ordering::Acquire);
                got.extend(follower.poll().unwrap());
                assert_prefix(&exec, &got, 0, "follower");
                if finished_writer && follower.is_finished() {
                    break;
                }
                std::thread::yield_now();
            }
            assert_eq!(got.len() as u64, PER_EXEC + 1, "follower missed entries");
            got.len()
        }));
    }

    // The writer: executions interleaved, the clock crossing midnight halfway.
    for seq in 0..=PER_EXEC {
        for i in 0..EXECS {
            store
                .append(&generated_entry(&exec_name(i), seq, PER_EXEC))
                .unwrap();
        }
        clock.advance(10);
        if seq % 7 == 0 {
            store.tick().unwrap();
        }
    }
    for i in 0..EXECS {
        store
            .finish_execution(&ExecutionId::new(exec_name(i).as_str()).unwrap())
            .unwrap();
    }
    store.flush(Durability::Written).unwrap();
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    for f in followers {
        f.join().unwrap();
    }
    assert!(
        logstore::Clock::now_ms(&clock) > midnight,
        "the run did not cross midnight"
    );
    // The first day is sealed in the background after the roll; wait for it.
    store.seal().unwrap();
    assert_eq!(
        files_with_ext(dir.path(), "sealed").len(),
        1,
        "the first day was not sealed"
    );
    assert!(
        files_with_ext(dir.path(), "log").len() == 1,
        "live-layout files of the sealed day remain"
    );
    for i in 0..EXECS {
        let exec = exec_name(i);
        assert_eq!(all_of(&store, &exec).len() as u64, PER_EXEC + 1);
        assert_eq!(all_of(&reader_store, &exec).len() as u64, PER_EXEC + 1);
    }
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn readers_see_growing_prefixes_across_a_day_roll() {
    let iters: u64 = std::env::var("LOGSTORE_CONCURRENCY_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for i in 0..iters {
        scenario(i);
    }
}
