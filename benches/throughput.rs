//! Throughput benches: append, finishing executions with fsync, and querying one execution.
//!
//! ```text
//! cargo bench --bench throughput                          # default set, a few minutes
//! LOGSTORE_BENCH_LARGE=1 cargo bench --bench throughput   # adds the 10 M-entry store (~3 GB
//!                                                         # in $TMPDIR, ~1 min to build)
//! cargo bench --bench throughput -- query                 # one group
//! ```
//!
//! The workload is `benches/support/workload.rs` (shared with `examples/compare.rs`): 150-byte
//! messages, 1,000 executions interleaved round-robin, realistic ids, sources and levels.
//! `docs/PERFORMANCE.md` holds the figures and what limits each.

// criterion_group! defines an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logstore::format::{decode, encode, IndexEntry, SortedIndex};
use logstore::{
    Config, Durability, Engine, ExecutionId, ExecutionLog, Filter, FinalState, Level, LogEntry,
    LogStore, ManualClock, SystemClock,
};

#[path = "support/workload.rs"]
mod workload;

use workload::Workload;

/// Executions interleaved in the append and query workloads.
const EXECUTIONS: usize = 1_000;
/// Entries appended per measured iteration of the append benches (one round of executions).
const APPEND_PER_ITER: u64 = 1_000;
/// Entries of the execution the query benches read.
const QUERY_ENTRIES: u64 = 10_000;
/// Entries each caller appends before its terminal entry in the finish benches.
const ENTRIES_BEFORE_FINISH: u64 = 4;
/// The 10 M store is built only when this is set to `1`.
const LARGE_ENV: &str = "LOGSTORE_BENCH_LARGE";

/// Append throughput with the default group commit (a `write` per 100 entries, no fsync), in
/// entries/s and in MB/s of encoded frames.
fn bench_append(c: &mut Criterion) {
    let mut frame_bytes = 0u64;
    {
        let mut wl = Workload::new(EXECUTIONS);
        let mut buf = Vec::new();
        for seq in 0..APPEND_PER_ITER {
            buf.clear();
            encode(wl.entry(seq), &mut buf).expect("encodes");
            frame_bytes += buf.len() as u64;
        }
    }
    let mut group = c.benchmark_group("append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, throughput) in [
        ("entries", Throughput::Elements(APPEND_PER_ITER)),
        ("bytes", Throughput::Bytes(frame_bytes)),
    ] {
        // A fresh store per variant, so that neither measures a file the other grew.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LogStore::open(dir.path()).expect("open");
        let mut wl = Workload::new(EXECUTIONS);
        let mut seq = 0u64;
        group.throughput(throughput);
        group.bench_function(BenchmarkId::new(name, "1000_executions_150B"), |b| {
            b.iter(|| {
                for _ in 0..APPEND_PER_ITER {
                    store.append(wl.entry(seq)).expect("append");
                    seq += 1;
                }
            });
        });
        drop(store);
    }
    group.finish();
}

/// Entries appended per measured call of `append_threads`, split evenly between the threads.
const THREADED_PER_CALL: u64 = 64_000;

/// `append` from 1, 2, 8 and 64 threads at once (each its own executions, default group
/// commit), in entries/s of all threads together: how the append path scales with callers.
fn bench_append_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_threads");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(THREADED_PER_CALL));
    for threads in [1u64, 2, 8, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LogStore::open(dir.path()).expect("open");
        let per_thread = THREADED_PER_CALL / threads;
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                let start = Barrier::new(usize::try_from(threads).expect("fits") + 1);
                let elapsed = std::thread::scope(|scope| {
                    for t in 0..threads {
                        let (store, start) = (&store, &start);
                        scope.spawn(move || {
                            let mut wl = Workload::new(EXECUTIONS);
                            start.wait();
                            for i in 0..iters * per_thread {
                                // Thread t's entries: its own slice of the workload's executions.
                                store.append(wl.entry(i * threads + t)).expect("append");
                            }
                        });
                    }
                    start.wait();
                    Instant::now()
                });
                elapsed.elapsed()
            });
        });
        drop(store);
    }
    group.finish();
}

/// One finishing execution: a few entries, the terminal entry, then `finish_execution` (which
/// flushes and fsyncs, sharing the fsync with concurrent callers).
struct Finisher {
    id: ExecutionId,
    entry: LogEntry,
    seq: u64,
}

impl Finisher {
    fn new(caller: usize) -> Finisher {
        let id = ExecutionId::new(format!("finish-{caller:03}")).expect("valid id");
        let entry = LogEntry::new(
            id.clone(),
            workload::BASE_TS,
            Level::Info,
            "plugin:ns/plugin.action",
            "x".repeat(workload::MESSAGE_LEN),
        );
        Finisher { id, entry, seq: 0 }
    }

    fn append_run(&mut self, store: &LogStore) {
        for _ in 0..ENTRIES_BEFORE_FINISH {
            self.seq += 1;
            self.entry.timestamp = workload::BASE_TS + i64::try_from(self.seq).expect("fits");
            store.append(&self.entry).expect("append");
        }
        self.seq += 1;
        let ts = workload::BASE_TS + i64::try_from(self.seq).expect("fits");
        store
            .append(&workload::terminal_entry(&self.id, ts))
            .expect("append terminal");
    }

    fn finish(&mut self, store: &LogStore) {
        self.append_run(store);
        store.finish_execution(&self.id).expect("finish");
    }
}

/// `callers` threads each finishing one execution at the same moment, `iters` times; the time
/// from the start signal until the last of them returned, summed. With `serialize`, a lock
/// around each caller's appends and finish makes every finish run alone and so pay its own
/// fsync: the same threads and wake-ups, without the sharing (the group commit's baseline).
fn finish_concurrently(store: &LogStore, callers: usize, iters: u64, serialize: bool) -> Duration {
    let one_at_a_time = parking_lot::Mutex::new(());
    let start = Barrier::new(callers + 1);
    let done = Barrier::new(callers + 1);
    std::thread::scope(|s| {
        for caller in 0..callers {
            let (start, done, one_at_a_time) = (&start, &done, &one_at_a_time);
            s.spawn(move || {
                let mut f = Finisher::new(caller);
                for _ in 0..iters {
                    start.wait();
                    let guard = serialize.then(|| one_at_a_time.lock());
                    f.finish(store);
                    drop(guard);
                    done.wait();
                }
            });
        }
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let t = Instant::now();
            start.wait();
            done.wait();
            total += t.elapsed();
        }
        total
    })
}

/// Finishing executions with fsync from 1, 8 and 64 concurrent callers (throughput: finishes
/// per second), and the baseline without group commit: 64 executions finished one after the
/// other, each with its own `flush(Synced)` and so its own fsync.
fn bench_finish(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::open(dir.path()).expect("open");
    let mut group = c.benchmark_group("finish");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for callers in [1usize, 8, 64] {
        group.throughput(Throughput::Elements(callers as u64));
        group.bench_function(BenchmarkId::new("concurrent", callers), |b| {
            b.iter_custom(|iters| finish_concurrently(&store, callers, iters, false));
        });
    }
    let before = store.fsyncs();
    finish_concurrently(&store, 64, 20, false);
    eprintln!(
        "finish: 64 concurrent finishes made {:.1} fsyncs on average (20 rounds)",
        (store.fsyncs() - before) as f64 / 20.0
    );
    group.throughput(Throughput::Elements(64));
    group.bench_function(BenchmarkId::new("serialized", 64), |b| {
        b.iter_custom(|iters| finish_concurrently(&store, 64, iters, true));
    });
    let mut finishers: Vec<Finisher> = (0..64).map(Finisher::new).collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function(BenchmarkId::new("sequential_synced_flushes", 64), |b| {
        b.iter(|| {
            for f in &mut finishers {
                f.append_run(&store);
                store.flush(Durability::Synced).expect("flush");
            }
        });
    });
    group.finish();
}

/// 64 executions finished from 64 tasks of a two-worker Tokio runtime (an async engine on the
/// two-core CI machine), `iters` times: with `finish_async`, or with the blocking `finish` called
/// in the tasks (which holds a worker for each fsync). Returns the time of the finishes only.
fn finish_from_tasks(
    engine: &Arc<Engine>,
    rt: &tokio::runtime::Runtime,
    iters: u64,
    asynchronously: bool,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let logs: Vec<ExecutionLog> = (0..64)
            .map(|i| {
                let log = engine
                    .start_execution(ExecutionId::new(format!("async-{i:02}")).expect("id"), "wf")
                    .expect("start");
                for n in 0..ENTRIES_BEFORE_FINISH {
                    log.emit(Level::Info, "worker", None, format!("line {n}"), None)
                        .expect("emit");
                }
                log
            })
            .collect();
        let t = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = logs
                .into_iter()
                .map(|log| {
                    tokio::spawn(async move {
                        if asynchronously {
                            log.finish_async(FinalState::Success, "done").await
                        } else {
                            log.finish(FinalState::Success, "done")
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("task").expect("finish");
            }
        });
        total += t.elapsed();
    }
    total
}

/// `ExecutionLog::finish_async` against the blocking `finish` in async tasks: 64 finishes on a
/// two-worker runtime, and the fsyncs each makes.
fn bench_finish_async(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(LogStore::open(dir.path()).expect("open"));
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("finish_async");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(64));
    for (name, asynchronously) in [("finish_async", true), ("blocking_finish_in_tasks", false)] {
        let before = store.fsyncs();
        finish_from_tasks(&engine, &rt, 20, asynchronously);
        eprintln!(
            "finish_async: 64 finishes from tasks with {name} made {:.1} fsyncs on average (20 rounds)",
            (store.fsyncs() - before) as f64 / 20.0
        );
        group.bench_function(BenchmarkId::new(name, 64), |b| {
            b.iter_custom(|iters| finish_from_tasks(&engine, &rt, iters, asynchronously));
        });
    }
    group.finish();
}

/// A store of `entries` entries: 1,000 executions interleaved round-robin, plus the target
/// execution (`exec-001000`) whose [`QUERY_ENTRIES`] entries are spread evenly through it, so
/// that each of them is a run of its own, in a 1 M store as in a 10 M one. Also writes the
/// target's frames, back to back, to `same_bytes_path`: the sequential-read baseline.
fn build_store(dir: &Path, entries: u64, clock: &ManualClock, same_bytes_path: &Path) -> LogStore {
    let store = open_at(dir, clock);
    let mut wl = Workload::new(EXECUTIONS + 1);
    let stride = entries / QUERY_ENTRIES;
    let mut same_bytes = Vec::new();
    let started = Instant::now();
    for seq in 0..entries {
        let entry = if seq % stride == stride - 1 {
            let e = wl.entry_of(EXECUTIONS, seq);
            encode(e, &mut same_bytes).expect("encodes");
            e
        } else {
            let exec = usize::try_from(seq % EXECUTIONS as u64).expect("fits");
            wl.entry_of(exec, seq)
        };
        store.append(entry).expect("append");
    }
    store.flush(Durability::Synced).expect("flush");
    std::fs::write(same_bytes_path, &same_bytes).expect("write baseline file");
    eprintln!(
        "built a store of {entries} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    store
}

/// Opens the store with the time taken from `clock`.
fn open_at(dir: &Path, clock: &ManualClock) -> LogStore {
    let config = Config {
        clock: Arc::new(clock.clone()),
        ..Config::default()
    };
    LogStore::open_with(dir, config).expect("open")
}

/// Writes the sorted index of the store's one day from its live index, as a version-1 writer
/// did when it sealed a day.
fn write_sorted_index(store_dir: &Path) {
    let segments = store_dir.join("segments");
    let idx = std::fs::read_dir(&segments)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .expect("a live index");
    let bytes = std::fs::read(&idx).expect("read index");
    let entries: Vec<IndexEntry> = bytes[16..]
        .chunks_exact(56)
        .filter_map(IndexEntry::from_bytes)
        .collect();
    SortedIndex::write(&idx.with_extension("sidx"), &entries).expect("write sorted index");
}

/// Reads a file of frames sequentially and builds every entry: the floor of a query that
/// returns the same entries.
fn read_sequentially(path: &Path) -> Vec<LogEntry> {
    let bytes = std::fs::read(path).expect("read");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (p, n) = decode(&bytes[pos..]).expect("valid frame");
        out.push(p.to_entry().expect("valid entry"));
        pos += n;
    }
    out
}

/// Query of one 10,000-entry execution in stores of 1 M (and, with `LOGSTORE_BENCH_LARGE=1`,
/// 10 M) entries: from the live day (the writer's own chain walk), from the same day as a
/// version-1 writer sealed it (sorted index) and once sealed (format 2: compressed blocks),
/// against reading the same frames from a file of their own.
fn bench_query(c: &mut Criterion) {
    let mut sizes = vec![1_000_000u64];
    if std::env::var(LARGE_ENV).is_ok_and(|v| v == "1") {
        sizes.push(10_000_000);
    }
    let target = workload::execution_id(EXECUTIONS);
    let filter = Filter::default();
    let mut group = c.benchmark_group("query");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(QUERY_ENTRIES));
    for entries in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_dir = dir.path().join("store");
        let same_bytes = dir.path().join("same-bytes.log");
        let now = workload::BASE_TS;
        let clock = ManualClock::new(now);
        let store = build_store(&store_dir, entries, &clock, &same_bytes);
        let label = format!("{}M", entries / 1_000_000);
        let check = |got: Vec<LogEntry>| assert_eq!(got.len() as u64, QUERY_ENTRIES);

        check(store.query(&target, &filter).expect("query"));
        group.bench_function(BenchmarkId::new("live_day", &label), |b| {
            b.iter(|| store.query(&target, &filter).expect("query"));
        });
        drop(store);

        // The same day as a version-1 writer sealed it (sorted index), read by a reader.
        write_sorted_index(&store_dir);
        let reader = LogStore::open_read_only(&store_dir).expect("open read-only");
        check(reader.query(&target, &filter).expect("query"));
        group.bench_function(BenchmarkId::new("sealed_v1_day", &label), |b| {
            b.iter(|| reader.query(&target, &filter).expect("query"));
        });
        drop(reader);

        // Reopening a day later seals the day into its compressed file (format 2).
        clock.set(now + 86_400_000);
        let store = open_at(&store_dir, &clock);
        store.seal().expect("seal");
        check(store.query(&target, &filter).expect("query"));
        group.bench_function(BenchmarkId::new("sealed_day", &label), |b| {
            b.iter(|| store.query(&target, &filter).expect("query"));
        });
        drop(store);

        check(read_sequentially(&same_bytes));
        group.bench_function(BenchmarkId::new("same_bytes_sequential", &label), |b| {
            b.iter(|| read_sequentially(&same_bytes));
        });
    }
    group.finish();
}

/// Sealing one interleaved day of 1 M entries (one entry per run, the rewrite's worst case)
/// into its compressed file, in MB/s of the day's segment: the rewrite alone, on one thread
/// (`format::seal_closed_day`), each iteration on a fresh copy of the live files. The text is
/// the shared template workload; `examples/sealed.rs` measures the same on real log text.
fn bench_seal(c: &mut Criterion) {
    use logstore::format::{seal_closed_day, SealOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("store");
    let clock = ManualClock::new(workload::BASE_TS);
    // One segment for the whole day: parts are not sealed under the benchmark.
    let config = Config {
        clock: Arc::new(clock.clone()),
        part_bytes: 1 << 30,
        ..Config::default()
    };
    let store = LogStore::open_with(&store_dir, config).expect("open");
    let mut wl = Workload::new(EXECUTIONS);
    for seq in 0..1_000_000u64 {
        let exec = usize::try_from(seq % EXECUTIONS as u64).expect("fits");
        store.append(wl.entry_of(exec, seq)).expect("append");
    }
    drop(store);
    let day = logstore::Day::from_unix_ms(workload::BASE_TS);
    // The day's live files: its segment, index and heads checkpoint.
    let mut live: Vec<std::path::PathBuf> = std::fs::read_dir(store_dir.join("segments"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    live.sort();
    assert!(
        live.iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .count()
            == 1,
        "one segment: {live:?}"
    );
    let segment_bytes = live
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::metadata(p).expect("segment").len())
        .sum();
    let mut group = c.benchmark_group("seal");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(segment_bytes));
    group.bench_function(BenchmarkId::new("interleaved_day", "1M"), |b| {
        b.iter_batched(
            || {
                let copy = tempfile::tempdir().expect("tempdir");
                let segments = copy.path().join("segments");
                std::fs::create_dir(&segments).expect("mkdir");
                for f in &live {
                    std::fs::copy(f, segments.join(f.file_name().expect("name"))).expect("copy");
                }
                copy
            },
            |copy| {
                let done = seal_closed_day(copy.path(), day, SealOptions::default())
                    .expect("seal")
                    .expect("sealed");
                assert_eq!(done.entries, 1_000_000);
                copy
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// Capture of a child process's output: a Node.js plugin printing `CAPTURE_LINES` lines with
/// `console.log`, every line stored as an entry (the 10 MB cap raised so nothing is dropped),
/// against the same plugin with stdout on `/dev/null` in the same group. The 1 M-line ratio is
/// `examples/capture.rs`.
fn bench_capture(c: &mut Criterion) {
    use logstore::capture::{
        run_plugin, CancelSignal, CaptureConfig, CaptureContext, PluginCommand, PluginId,
    };
    const CAPTURE_LINES: u64 = 100_000;
    let script = format!("for (let i = 0; i < {CAPTURE_LINES}; i++) console.log('line ' + i + ' of the capture benchmark, a typical plugin log line');");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("capture");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(CAPTURE_LINES));
    group.bench_function("node_console_log/devnull", |b| {
        b.iter(|| {
            let status = std::process::Command::new("node")
                .args(["-e", &script])
                .stdout(std::process::Stdio::null())
                .status()
                .expect("node runs");
            assert!(status.success());
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::open(dir.path()).expect("store");
    let cfg = CaptureConfig {
        max_output_bytes: u64::MAX,
        ..CaptureConfig::default()
    };
    let cmd = PluginCommand::trusted("node", ["-e".to_owned(), script.clone()]);
    let mut n = 0u64;
    group.bench_function("node_console_log/captured", |b| {
        b.iter(|| {
            n += 1;
            let ctx = CaptureContext::new(
                ExecutionId::new(format!("cap-{n}")).expect("id"),
                logstore::TaskId::new("t").expect("id"),
                PluginId::parse("bench/node.print").expect("plugin id"),
            );
            let outcome = rt
                .block_on(run_plugin(&ctx, &cmd, &cfg, &store, CancelSignal::never()))
                .expect("capture");
            assert!(outcome.succeeded());
            store.flush(Durability::Written).expect("flush");
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_append,
    bench_append_threads,
    bench_finish,
    bench_finish_async,
    bench_query,
    bench_seal,
    bench_capture
);
criterion_main!(benches);
