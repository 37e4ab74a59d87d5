//! Sealed days (format v2) on real log text: bytes, query, memory, sealing speed, ingest
//! while sealing, and the block-size / column-layout choices.
//!
//! ```text
//! cargo run --release --example sealed -- [--entries N] [--executions E] [--corpus FILE]...
//! ```
//!
//! **Text.** Messages are lines of real logs: by default whatever of `/var/log/dpkg.log`,
//! `/var/log/apt/term.log`, `/var/log/apt/history.log`, `/var/log/alternatives.log` and
//! `/var/log/dockerd.log` exists, plus every `--corpus FILE` (for instance the output of
//! `cargo build -vv` and `cargo test`). Execution `k` prints the corpus's lines from a random
//! starting line on, in order, as a program's output would; levels come from the words in
//! the line (error, warn), sources and task ids from a few fixed ones.
//!
//! `--no-variants` skips the 64 KiB and 1 MiB seals (two copies of the day).
//!
//! **Workload.** N entries (default 10,000,000), E executions (default 1,000, so 10,000 entries
//! each) interleaved round-robin, all on one day, written through `LogStore::append` and closed
//! (the v1 layout). Then, each in its own child process so that its peak RSS is its own:
//! 1. `query-v1`: the day's sorted index is written (the day as a version-1 writer sealed it);
//!    open read-only, query execution E/2 nine times (median), then 100 queries of different
//!    executions; peak RSS.
//! 2. `seal`: `format::seal_closed_day` (the rewrite alone, one thread) of the day as today's
//!    writer leaves it (segment and live index; the sorted index of step 1 is deleted first);
//!    time, CPU seconds, MB/s of segment per CPU-second, peak RSS.
//! 3. `query-sealed`: as 1, on the sealed day.
//! 4. `ingest-while-sealing`: ingest with the background sealer running against ingest alone,
//!    alternately, five rounds (see `ingest_while_sealing`).
//! 5. bytes: NDJSON (`dump --json` of every execution), `zstd -3` of that whole file (the
//!    `zstd` crate at level 3, as the `zstd` command), v1 files, the sealed file; and the same
//!    day sealed with 64 KiB, 1 MiB blocks, and "rows" (the v1 records of each 256 KiB of an
//!    execution-grouped day compressed as they are, without columns).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::format::{seal_closed_day, IndexEntry, SealOptions, SortedIndex};
use logstore::{
    CommitPolicy, Config, Day, Durability, ExecutionId, Filter, Level, LogEntry, LogStore,
    ManualClock, TaskId,
};

type Error = Box<dyn std::error::Error>;

/// 2026-01-10T00:00:00Z.
const DAY0: i64 = 1_768_003_200_000;
const DAY_MS: i64 = 86_400_000;

struct Args {
    entries: u64,
    executions: u64,
    corpus: Vec<PathBuf>,
    phase: Option<(String, PathBuf)>,
    variants: bool,
    partition_mb: Option<u64>,
    zstd_level: Option<i32>,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        entries: 10_000_000,
        executions: 1_000,
        corpus: Vec::new(),
        phase: None,
        variants: true,
        partition_mb: None,
        zstd_level: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--entries" => a.entries = value()?.parse()?,
            "--executions" => a.executions = value()?.parse()?,
            "--corpus" => a.corpus.push(value()?.into()),
            "--phase" => {
                let p = value()?;
                a.phase = Some((p, value()?.into()));
            }
            "--no-variants" => a.variants = false,
            "--partition-mb" => a.partition_mb = Some(value()?.parse()?),
            "--zstd-level" => a.zstd_level = Some(value()?.parse()?),
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// The lines of the real logs.
fn corpus(args: &Args) -> Result<Vec<String>, Error> {
    let mut files: Vec<PathBuf> = [
        "/var/log/dpkg.log",
        "/var/log/apt/term.log",
        "/var/log/apt/history.log",
        "/var/log/alternatives.log",
        "/var/log/dockerd.log",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|p| p.exists())
    .collect();
    files.extend(args.corpus.iter().cloned());
    let mut lines = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f)?;
        let text = String::from_utf8_lossy(&bytes);
        lines.extend(
            text.lines()
                .map(|l| {
                    l.trim_end()
                        .chars()
                        .filter(|c| !c.is_control() || *c == '\t')
                        .collect::<String>()
                })
                .filter(|l| !l.is_empty())
                .map(|l| l.chars().take(4000).collect::<String>()),
        );
    }
    if lines.is_empty() {
        return Err("no corpus: give --corpus FILE".into());
    }
    Ok(lines)
}

/// The workload: entry `i` of the day (executions round-robin), from the corpus.
struct Workload {
    lines: Vec<String>,
    executions: u64,
    starts: Vec<usize>,
}

const SOURCES: [&str; 4] = ["plugin:shell", "plugin:http.get", "scheduler", "worker"];

impl Workload {
    fn new(lines: Vec<String>, executions: u64) -> Workload {
        let mut rng = fastrand::Rng::with_seed(7);
        let starts = (0..executions).map(|_| rng.usize(0..lines.len())).collect();
        Workload {
            lines,
            executions,
            starts,
        }
    }

    fn exec_id(k: u64) -> ExecutionId {
        ExecutionId::new(format!("exec-{k:06}")).unwrap_or_else(|_| unreachable!())
    }

    fn entry(&self, day_start: i64, i: u64) -> LogEntry {
        let (k, j) = (i % self.executions, i / self.executions);
        let ku = usize::try_from(k).unwrap_or(0);
        let ju = usize::try_from(j).unwrap_or(0);
        let line = &self.lines[(self.starts[ku] + ju) % self.lines.len()];
        let lower = line.to_lowercase();
        let level = if lower.contains("error") || lower.contains("fail") {
            Level::Error
        } else if lower.contains("warn") {
            Level::Warn
        } else if ju % 10 == 0 {
            Level::Debug
        } else {
            Level::Info
        };
        let source = SOURCES[(ku + ju / 1000) % SOURCES.len()];
        let ts = day_start + i64::try_from(i / 20).unwrap_or(0);
        let mut e = LogEntry::new(Self::exec_id(k), ts, level, source, line.clone());
        if source.starts_with("plugin") {
            if let Ok(t) = TaskId::new(format!("task-{}", ju / 500)) {
                e = e.with_task(t);
            }
        }
        e
    }
}

fn config(clock: &ManualClock) -> Config {
    Config {
        commit: CommitPolicy::default(),
        clock: Arc::new(clock.clone()),
        part_bytes: logstore::DEFAULT_PART_BYTES,
    }
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mb(b: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let f = b as f64 / 1e6;
    f
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("segments"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn ingest(
    store: &LogStore,
    w: &Workload,
    day_start: i64,
    from: u64,
    to: u64,
) -> Result<f64, Error> {
    let t = Instant::now();
    for i in from..to {
        store.append(&w.entry(day_start, i))?;
    }
    store.flush(Durability::Synced)?;
    #[allow(clippy::cast_precision_loss)]
    Ok((to - from) as f64 / t.elapsed().as_secs_f64())
}

/// Query phase: (median ms of one 10k-entry query, ms of 100 queries, peak RSS).
fn query_phase(dir: &Path, args: &Args) -> Result<String, Error> {
    let store = LogStore::open_read_only(dir)?;
    let id = Workload::exec_id(args.executions / 2);
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..9 {
        let t = Instant::now();
        n = store.query(&id, &Filter::default())?.len();
        times.push(t.elapsed());
    }
    times.sort();
    let t = Instant::now();
    for k in 0..100 {
        let got = store.query(
            &Workload::exec_id(k * args.executions / 100),
            &Filter::default(),
        )?;
        assert_eq!(got.len(), n);
    }
    let hundred = t.elapsed();
    Ok(format!(
        "{n} entries: median {:.2} ms; 100 queries {:.0} ms; peak RSS {:.1} MB",
        times[4].as_secs_f64() * 1e3,
        hundred.as_secs_f64() * 1e3,
        mb(peak_rss())
    ))
}

fn seal_phase(dir: &Path, opts: SealOptions) -> Result<String, Error> {
    let day = Day::from_unix_ms(DAY0);
    let segment = std::fs::metadata(dir.join("segments").join(format!("{day}.log")))?.len();
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let done = seal_closed_day(dir, day, opts)?.ok_or("nothing to seal")?;
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    Ok(format!(
        "sealed {} entries, {} executions: segment {:.1} MB (v1 files {:.1} MB) -> {:.2} MB ({:.1}x the v1 files) in {s:.2} s; CPU {cpu:.2} s = {:.0} MB/s of segment per CPU-second ({:.0} of v1 files); peak RSS {:.1} MB",
        done.entries,
        done.executions,
        mb(segment),
        mb(done.v1_bytes),
        mb(done.sealed_bytes),
        mb(done.v1_bytes) / mb(done.sealed_bytes),
        mb(segment) / cpu,
        mb(done.v1_bytes) / cpu,
        mb(peak_rss())
    ))
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Ingest rate while the background sealer rewrites the previous day, against the rate of the
/// same store with no seal running, measured alternately so that drifts of a shared machine
/// hit both: per round, a 4 M-entry day 1 is written, the clock moves to day 2 (the roll
/// starts the seal of day 1), 1,000,000 entries are written while it runs ("during"; the seal
/// must still be running when they are done), then, once the seal is over, 1,000,000 more on
/// day 2 ("alone"). Five rounds in fresh stores; the median of the ratios.
fn ingest_while_sealing(dir: &Path, w: &Workload) -> Result<String, Error> {
    let (day1, n) = (4_000_000, 1_000_000);
    let mut ratios = Vec::new();
    let mut lines = Vec::new();
    for round in 0..5 {
        let dir = dir.join(format!("round-{round}"));
        let clock = ManualClock::new(DAY0);
        let store = LogStore::open_with(&dir, config(&clock))?;
        ingest(&store, w, DAY0, 0, day1)?;
        clock.advance(DAY_MS);
        let t = Instant::now();
        let during = ingest(&store, w, DAY0 + DAY_MS, 0, n)?;
        let ingest_s = t.elapsed();
        let sealed = store.seal()?;
        let seal_s = sealed.first().map_or(Duration::ZERO, |s| s.elapsed);
        let alone = ingest(&store, w, DAY0 + DAY_MS, n, 2 * n)?;
        drop(store);
        std::fs::remove_dir_all(&dir)?;
        if seal_s < ingest_s {
            lines.push(format!(
                "round {round}: the seal ({:.2} s) ended before the ingest ({:.2} s): not counted",
                seal_s.as_secs_f64(),
                ingest_s.as_secs_f64()
            ));
            continue;
        }
        ratios.push(during / alone);
        lines.push(format!(
            "round {round}: while sealing {during:.0}/s, alone {alone:.0}/s ({:.0} %); seal {:.2} s, ingest {:.2} s",
            100.0 * during / alone,
            seal_s.as_secs_f64(),
            ingest_s.as_secs_f64()
        ));
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios
        .get(ratios.len() / 2)
        .map_or("n/a".to_owned(), |r| format!("{:.0} %", 100.0 * r));
    Ok(format!(
        "median {median} of the rate alone\n    {}",
        lines.join("\n    ")
    ))
}

fn child(phase: &str, dir: &Path, args: &Args) -> Result<String, Error> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "--entries",
        &args.entries.to_string(),
        "--executions",
        &args.executions.to_string(),
    ]);
    for c in &args.corpus {
        cmd.arg("--corpus").arg(c);
    }
    if let Some(m) = args.partition_mb {
        cmd.arg("--partition-mb").arg(m.to_string());
    }
    if let Some(l) = args.zstd_level {
        cmd.arg("--zstd-level").arg(l.to_string());
    }
    let out = cmd.arg("--phase").arg(phase).arg(dir).output()?;
    if !out.status.success() {
        return Err(format!("{phase}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn run_phase(phase: &str, dir: &Path, args: &Args) -> Result<String, Error> {
    let w = || -> Result<Workload, Error> { Ok(Workload::new(corpus(args)?, args.executions)) };
    let opts = |block_target| SealOptions {
        block_target,
        ..SealOptions::default()
    };
    match phase {
        "ingest" => {
            let w = w()?;
            let clock = ManualClock::new(DAY0);
            let store = LogStore::open_with(dir, config(&clock))?;
            let rate = ingest(&store, &w, DAY0, 0, args.entries)?;
            drop(store);
            Ok(format!(
                "{rate:.0} entries/s; v1 files {:.1} MB",
                mb(dir_bytes(dir))
            ))
        }
        "query" => query_phase(dir, args),
        "seal" => seal_phase(
            dir,
            SealOptions {
                partition_bytes: args
                    .partition_mb
                    .map_or(SealOptions::default().partition_bytes, |m| m << 20),
                level: args.zstd_level.unwrap_or(SealOptions::default().level),
                ..SealOptions::default()
            },
        ),
        "seal-64k" => seal_phase(dir, opts(64 << 10)),
        "seal-1m" => seal_phase(dir, opts(1 << 20)),
        "ingest-while-sealing" => ingest_while_sealing(dir, &w()?),
        "ndjson" => ndjson(dir, args, &w()?),
        other => Err(format!("unknown phase {other}").into()),
    }
}

/// NDJSON of every execution (`dump --json`, execution after execution), its `zstd -3`, and
/// "rows": the day's v1 records grouped by execution, compressed per 256 KiB as they are.
fn ndjson(dir: &Path, args: &Args, w: &Workload) -> Result<String, Error> {
    let store = LogStore::open_read_only(dir)?;
    let (mut json_bytes, mut rows_bytes) = (0u64, 0u64);
    let mut zstd3 = zstd::stream::Encoder::new(CountingSink(0), 3)?;
    let mut line = Vec::new();
    let mut block = Vec::new();
    let mut frame = Vec::new();
    for k in 0..args.executions {
        for e in store.query(&Workload::exec_id(k), &Filter::default())? {
            line.clear();
            serde_json::to_writer(&mut line, &e)?;
            line.push(b'\n');
            json_bytes += line.len() as u64;
            zstd3.write_all(&line)?;
            frame.clear();
            logstore::format::encode(&e, &mut frame)?;
            block.extend_from_slice(&frame);
            if block.len() >= 256 << 10 {
                rows_bytes += zstd::bulk::compress(&block, 3)?.len() as u64;
                block.clear();
            }
        }
    }
    rows_bytes += zstd::bulk::compress(&block, 3)?.len() as u64;
    let zstd_bytes = zstd3.finish()?.0;
    let _ = w;
    Ok(format!(
        "NDJSON {:.1} MB; zstd -3 of it {:.2} MB ({:.1}x); rows (v1 records, grouped, zstd -3 per 256 KiB) {:.2} MB ({:.1}x of NDJSON)",
        mb(json_bytes),
        mb(zstd_bytes),
        mb(json_bytes) / mb(zstd_bytes),
        mb(rows_bytes),
        mb(json_bytes) / mb(rows_bytes)
    ))
}

struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the sorted index of the day from its live index, as a version-1 writer did.
fn write_sorted_index(dir: &Path) -> Result<(), Error> {
    let idx = dir
        .join("segments")
        .join(format!("{}.idx", Day::from_unix_ms(DAY0)));
    let bytes = std::fs::read(&idx)?;
    let entries: Vec<IndexEntry> = bytes[16..]
        .chunks_exact(56)
        .filter_map(IndexEntry::from_bytes)
        .collect();
    SortedIndex::write(&idx.with_extension("sidx"), &entries)?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to.join("segments"))?;
    for e in std::fs::read_dir(from.join("segments"))? {
        let e = e?;
        std::fs::copy(e.path(), to.join("segments").join(e.file_name()))?;
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    if let Some((phase, dir)) = &args.phase {
        println!("{}", run_phase(phase, dir, &args)?);
        return Ok(());
    }
    let lines = corpus(&args)?;
    let bytes: usize = lines.iter().map(String::len).sum();
    println!(
        "corpus: {} lines, {:.1} MB of real log text; {} entries, {} executions",
        lines.len(),
        mb(bytes as u64),
        args.entries,
        args.executions
    );
    drop(lines);
    let root = tempfile::tempdir()?;
    let v1 = root.path().join("v1");
    let say = |what: &str, r: Result<String, Error>| -> Result<(), Error> {
        println!("{what:>24}: {}", r?);
        std::io::stdout().flush()?;
        Ok(())
    };
    say("ingest", child("ingest", &v1, &args))?;
    // The day as a version-1 writer sealed it: with its sorted index (the old query path).
    write_sorted_index(&v1)?;
    say("query v1 (sorted index)", child("query", &v1, &args))?;
    say("bytes", child("ndjson", &v1, &args))?;
    // From here on, the day as today's writer leaves it: segment and live index only.
    std::fs::remove_file(
        v1.join("segments")
            .join(format!("{}.sidx", Day::from_unix_ms(DAY0))),
    )?;
    let variants: &[(&str, &str)] = if args.variants {
        &[("seal-64k", "64k"), ("seal-1m", "1m")]
    } else {
        &[]
    };
    for &(phase, name) in variants {
        let copy = root.path().join(name);
        copy_dir(&v1, &copy)?;
        say(phase, child(phase, &copy, &args))?;
        std::fs::remove_dir_all(&copy)?;
    }
    say("seal (256 KiB)", child("seal", &v1, &args))?;
    say("query sealed", child("query", &v1, &args))?;
    std::fs::remove_dir_all(&v1)?;
    say(
        "ingest while sealing",
        child("ingest-while-sealing", &root.path().join("iws"), &args),
    )?;
    Ok(())
}
