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
//! (the live layout). Then, each in its own child process so that its peak RSS is its own:
//! 1. `query-v1`: the day's sorted index is written (the day as a version-1 writer sealed it);
//!    open read-only, query execution E/2 nine times (median), then 100 queries of different
//!    executions; peak RSS.
//! 2. `seal`: `format::seal_closed_day` (the rewrite alone, one thread) of the day as today's
//!    writer leaves it (segment and live index; the sorted index of step 1 is deleted first);
//!    time, CPU seconds, MB/s of segment per CPU-second, peak RSS. Twice: on a copy with
//!    `SealOptions::default()`, the zstd level parts are sealed at while ingest goes on, then
//!    with `SealOptions::finished_day()` (or `--zstd-level`), the level the store keeps a
//!    finished day at, which the later steps and the ClickHouse peer read.
//! 3. `query-sealed`: as 1, on the sealed day.
//! 4. `ingest-while-sealing`: ingest with the background sealer running against ingest alone,
//!    alternately, five rounds (see `ingest_while_sealing`).
//! 5. bytes: NDJSON (`dump --json` of every execution), `zstd -3` of that whole file (the
//!    `zstd` crate at level 3, as the `zstd` command), live-layout files, the sealed file; and the same
//!    day sealed with 64 KiB, 1 MiB blocks, and "rows" (the frames of each 256 KiB of an
//!    execution-grouped day compressed as they are, without columns).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::format::{recompress_sealed, seal_closed_day, IndexEntry, SealOptions, SortedIndex};
use logstore::StoreSearch;

#[path = "../tests/ship_support/clickhouse_server.rs"]
mod clickhouse_server;
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
    /// `--today`: today in parts against the same day sealed (see `today`).
    today: bool,
    part_mb: u64,
    /// Load the same entries into a ClickHouse MergeTree and set it beside the sealed day.
    clickhouse: bool,
    /// ClickHouse's zstd level (default: its own default, 1).
    clickhouse_level: Option<i32>,
    /// `--dict-kb N`: the sealer's zstd dictionary size (0: none).
    dict_kb: Option<usize>,
    /// `--train-mb N`: raw block bytes it trains on.
    train_mb: Option<usize>,
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
        today: false,
        part_mb: 64,
        clickhouse: true,
        clickhouse_level: None,
        dict_kb: None,
        train_mb: None,
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
            "--no-clickhouse" => a.clickhouse = false,
            "--clickhouse-level" => a.clickhouse_level = Some(value()?.parse()?),
            "--dict-kb" => a.dict_kb = Some(value()?.parse()?),
            "--train-mb" => a.train_mb = Some(value()?.parse()?),
            "--today" => a.today = true,
            "--part-mb" => a.part_mb = value()?.parse()?,
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
        // One segment for the whole day, as the day this example measures was written before
        // segments rolled (`examples/today.rs` measures today in parts).
        part_bytes: u64::MAX,
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
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
    let segment = std::fs::metadata(dir.join("segments").join(format!("{day}.000001.log")))?.len();
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let done = seal_closed_day(dir, day, opts)?.ok_or("nothing to seal")?;
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    Ok(format!(
        "sealed {} entries, {} executions: segment {:.1} MB (live-layout files {:.1} MB) -> {:.2} MB ({:.1}x the live-layout files) in {s:.2} s; CPU {cpu:.2} s = {:.0} MB/s of segment per CPU-second ({:.0} of live-layout files); peak RSS {:.1} MB",
        done.entries,
        done.executions,
        mb(segment),
        mb(done.segment_bytes),
        mb(done.sealed_bytes),
        mb(done.segment_bytes) / mb(done.sealed_bytes),
        mb(segment) / cpu,
        mb(done.segment_bytes) / cpu,
        mb(peak_rss())
    ))
}

/// The day sealed at the parts' level compressed again at the finished day's, as the store
/// does when a day of parts ends: bytes, CPU seconds (beside the seal's, on the line above).
fn recompress_phase(dir: &Path) -> Result<String, Error> {
    let day = Day::from_unix_ms(DAY0);
    let path = logstore::format::sealed_path(&dir.join("segments"), day);
    let out = dir.join("recompressed.sealed");
    let level = SealOptions::finished_day().level;
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let done = recompress_sealed(&path, &out, level)?;
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    std::fs::remove_file(&out)?;
    Ok(format!(
        "at level {level}: {:.2} MB -> {:.2} MB ({:+.1} %) in {s:.2} s; CPU {cpu:.2} s; peak RSS {:.1} MB",
        mb(done.bytes_in),
        mb(done.bytes_out),
        100.0 * (done.bytes_out as f64 / done.bytes_in as f64 - 1.0),
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
    cmd.arg("--part-mb").arg(args.part_mb.to_string());
    if let Some(k) = args.dict_kb {
        cmd.arg("--dict-kb").arg(k.to_string());
    }
    if let Some(m) = args.train_mb {
        cmd.arg("--train-mb").arg(m.to_string());
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
                "{rate:.0} entries/s; live-layout files {:.1} MB",
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
                level: args.zstd_level.unwrap_or(SealOptions::finished_day().level),
                dict_bytes: args
                    .dict_kb
                    .map_or(SealOptions::default().dict_bytes, |k| k << 10),
                train_bytes: args
                    .train_mb
                    .map_or(SealOptions::default().train_bytes, |m| m << 20),
                ..SealOptions::default()
            },
        ),
        "seal-part" => seal_phase(dir, SealOptions::default()),
        "recompress" => recompress_phase(dir),
        "seal-64k" => seal_phase(dir, opts(64 << 10)),
        "seal-1m" => seal_phase(dir, opts(1 << 20)),
        "ingest-while-sealing" => ingest_while_sealing(dir, &w()?),
        "ndjson" => ndjson(dir, args, &w()?),
        "ingest-today" => ingest_today(dir, args, &w()?),
        "open-query" => open_query(dir, args),
        "list" => list_phase(dir),
        "search" => search_phase(dir),
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
        .join(format!("{}.000001.idx", Day::from_unix_ms(DAY0)));
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
    if args.today {
        return today(&args);
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
            .join(format!("{}.000001.sidx", Day::from_unix_ms(DAY0))),
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
    // The day sealed as its parts are, at the level that keeps up with ingest (a copy), then
    // as the store keeps a finished day: at `SealOptions::finished_day`'s level.
    let part = root.path().join("part");
    copy_dir(&v1, &part)?;
    say("seal at parts' level", child("seal-part", &part, &args))?;
    say("  then compressed again", child("recompress", &part, &args))?;
    std::fs::remove_dir_all(&part)?;
    say("seal (finished day)", child("seal", &v1, &args))?;
    say("query sealed", child("query", &v1, &args))?;
    print_breakdown(&v1)?;
    if args.clickhouse {
        clickhouse_peer(&v1, &args)?;
    }
    std::fs::remove_dir_all(&v1)?;
    say(
        "ingest while sealing",
        child("ingest-while-sealing", &root.path().join("iws"), &args),
    )?;
    Ok(())
}

/// The words both systems count: common in the changelogs, and rare.
const WORDS: [&str; 2] = ["installed", "kerberos"];

/// The peer: Debian's `clickhouse-server` (started here, as the shipping tests do) with zstd
/// as its `<compression>` method, a `MergeTree` table `ORDER BY (execution_id, timestamp)`
/// holding the same entries (and the same sequence numbers, since the sealed day stores them),
/// merged with `OPTIMIZE ... FINAL`. Bytes (the table's active parts, and per column), one
/// execution's query over HTTP, and the words counted with a word-boundary regex, beside the
/// sealed day's.
fn clickhouse_peer(dir: &Path, args: &Args) -> Result<(), Error> {
    // ClickHouse's zstd level is its own default (1) unless `--clickhouse-level` says.
    let level = args
        .clickhouse_level
        .map_or(String::new(), |l| format!("<level>{l}</level>"));
    let server = match clickhouse_server::Server::start_with(&format!(
        "<compression><case><method>zstd</method>{level}</case></compression>"
    )) {
        Ok(s) => s,
        Err(e) => {
            println!(
                "{:>24}: skipped ({e}; `apt-get install clickhouse-server`)",
                "clickhouse"
            );
            return Ok(());
        }
    };
    let ch = logstore::ship::ClickHouse::new(&server.url())?;
    let version = ch.execute("SELECT version()")?;
    ch.execute("CREATE DATABASE bench")?;
    ch.execute(
        "CREATE TABLE bench.logs (execution_id String, timestamp Int64, level UInt8, \
         source String, task_id String, message String, metadata String, seq UInt64) \
         ENGINE = MergeTree ORDER BY (execution_id, timestamp)",
    )?;
    let w = Workload::new(corpus(args)?, args.executions);
    let t = Instant::now();
    let mut rows = Vec::with_capacity(64 << 20);
    for i in 0..args.entries {
        let e = w.entry(DAY0, i);
        serde_json::to_writer(
            &mut rows,
            &serde_json::json!({
                "execution_id": e.execution_id.as_str(),
                "timestamp": e.timestamp,
                "level": e.level as u8,
                "source": e.source,
                "task_id": e.task_id.as_ref().map_or("", |t| t.as_str()),
                "message": e.message,
                "metadata": "",
                "seq": i + 1,
            }),
        )?;
        rows.push(b'\n');
        if rows.len() > 32 << 20 || i + 1 == args.entries {
            ch.insert(
                "INSERT INTO bench.logs FORMAT JSONEachRow",
                &[],
                &rows,
                &|| "rows".to_owned(),
            )?;
            rows.clear();
        }
    }
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ch.execute("OPTIMIZE TABLE bench.logs FINAL")?;
    let optimize = t.elapsed().as_secs_f64();
    let bytes: u64 = ch
        .execute("SELECT sum(bytes) FROM system.parts WHERE database = 'bench' AND active")?
        .trim()
        .parse()?;
    let sealed = std::fs::metadata(logstore::format::sealed_path(
        &dir.join("segments"),
        Day::from_unix_ms(DAY0),
    ))?
    .len();
    println!(
        "{:>24}: clickhouse {} (zstd level {}), loaded in {load:.1} s, OPTIMIZE FINAL {optimize:.1} s",
        "clickhouse peer",
        version.trim(),
        args.clickhouse_level
            .map_or("1, its default".to_owned(), |l| l.to_string())
    );
    #[allow(clippy::cast_precision_loss)]
    let ratio = sealed as f64 / bytes as f64;
    println!(
        "{:>24}: sealed day {:.2} MB, ClickHouse MergeTree {:.2} MB: sealed / ClickHouse = {ratio:.3}",
        "bytes",
        mb(sealed),
        mb(bytes)
    );
    for line in ch
        .execute(
            "SELECT name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns \
             WHERE database = 'bench' AND table = 'logs' ORDER BY data_compressed_bytes DESC",
        )?
        .lines()
    {
        let f: Vec<&str> = line.split('\t').collect();
        if let [name, z, raw] = f[..] {
            println!(
                "{:>24}  {:<28} {:>9.3} MB stored, {:>9.3} MB raw",
                "",
                format!("column: {name}"),
                mb(z.parse()?),
                mb(raw.parse()?)
            );
        }
    }
    let marks = ch.execute(
        "SELECT sum(marks_size), sum(primary_key_bytes_in_memory) FROM system.parts \
         WHERE database = 'bench' AND active",
    );
    if let Ok(m) = marks {
        println!(
            "{:>24}  marks and primary key: {}",
            "",
            m.trim().replace('\t', " B, ") + " B"
        );
    }
    // One execution: its rows in order, over HTTP, median of 9.
    let id = Workload::exec_id(args.executions / 2);
    let sql = format!(
        "SELECT * FROM bench.logs WHERE execution_id = '{}' ORDER BY timestamp, seq FORMAT JSONEachRow",
        id.as_str()
    );
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..9 {
        let t = Instant::now();
        n = ch.execute(&sql)?.lines().count();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let ours = fresh_process_ms("open-query", dir, args)?;
    println!(
        "{:>24}: {n} entries: ClickHouse over HTTP {:.1} ms; sealed day in a fresh process (open, query, JSON) {ours:.1} ms",
        "one execution",
        times[4]
    );
    // Words: ClickHouse's word-boundary regex count (all its threads) against `search --count`,
    // ours before and after ClickHouse's (its server works in the background after a load, so
    // a single run of ours beside it can be the one that pays for that).
    let ours = child("search", dir, args)?;
    for word in WORDS {
        // `lower(message)`, not `(?i)`: 18.16's `match` gets `(?i)` wrong (its required-
        // substring prefilter is case-sensitive; see search_bench.rs).
        let sql = format!(
            "SELECT count() FROM bench.logs WHERE match(lower(message), '\\\\b{word}\\\\b')"
        );
        let mut times = Vec::new();
        let mut count = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            count = ch.execute(&sql)?.trim().to_owned();
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:>24}: ClickHouse {count} lines in {:.3} s (median of 3)",
            format!("count {word}"),
            times[1]
        );
    }
    println!("{:>24}: {ours}", "logstore search --count");
    println!(
        "{:>24}: {}",
        "and after ClickHouse's",
        child("search", dir, args)?
    );
    drop(server);
    Ok(())
}

/// Where the sealed day's bytes go, column by column (`format::sealed_breakdown`).
fn print_breakdown(dir: &Path) -> Result<(), Error> {
    let path = logstore::format::sealed_path(&dir.join("segments"), Day::from_unix_ms(DAY0));
    let rows = logstore::format::sealed_breakdown(&path)?;
    let total: u64 = rows.iter().map(|r| r.stored).sum();
    println!(
        "{:>24}: {:.2} MB, by section (columns: their share of the zstd blocks)",
        "sealed bytes",
        mb(total)
    );
    for r in &rows {
        #[allow(clippy::cast_precision_loss)]
        let pct = 100.0 * r.stored as f64 / total.max(1) as f64;
        println!(
            "{:>24}  {:<28} {:>9.3} MB stored ({pct:4.1} %), {:>9.3} MB raw",
            "",
            r.name,
            mb(r.stored),
            mb(r.raw)
        );
    }
    Ok(())
}

/// Writes the day with segments rolling at `--part-mb` and the sealer turning them into parts
/// as it goes, then waits for the sealer (`seal`: the closed segments are parts, merged down to
/// at most 8). Ingest rate, the writer's peak RSS, the wait, and the files.
fn ingest_today(dir: &Path, args: &Args, w: &Workload) -> Result<String, Error> {
    // The workload (its corpus) is loaded before the store opens: what the store adds is the
    // peak past this.
    let workload_rss = peak_rss();
    let clock = ManualClock::new(DAY0);
    let config = Config {
        part_bytes: args.part_mb << 20,
        ..config(&clock)
    };
    let store = LogStore::open_with(dir, config)?;
    let rate = ingest(&store, w, DAY0, 0, args.entries)?;
    let t = Instant::now();
    let steps = store.seal()?;
    let settle = t.elapsed();
    // Before `stats`, which reads the open segment's whole index: the writer's own peak.
    let writer_rss = peak_rss();
    let stats = store.stats()?;
    drop(store);
    let (parts, segs) = stats.first().map_or((0, 0), |d| (d.parts, d.segments));
    // What the sealer did while the day was written: segments sealed into parts, and merges.
    let sum = |merge: bool| {
        let of = steps
            .iter()
            .filter(|s| matches!(s.step, logstore::SealStep::Merge { .. }) == merge);
        let (n, secs, bytes_in, bytes_out) = of.fold((0, 0.0, 0, 0), |(n, t, i, o), s| {
            (
                n + 1,
                t + s.elapsed.as_secs_f64(),
                i + s.segment_bytes,
                o + s.sealed_bytes,
            )
        });
        format!(
            "{n} in {secs:.2} s, {:.1} MB -> {:.1} MB ({:.0} MB/s of input)",
            mb(bytes_in),
            mb(bytes_out),
            mb(bytes_in) / secs.max(1e-9)
        )
    };
    Ok(format!(
        "{rate:.0} entries/s; writer peak RSS {:.1} MB ({:.1} MB over the {:.1} MB the workload held before the store opened); then waited {:.2} s for the sealer; {parts} parts + {segs} open segment: {} bytes\n    parts sealed: {}\n    merges: {}",
        mb(writer_rss),
        mb(writer_rss.saturating_sub(workload_rss)),
        mb(workload_rss),
        settle.as_secs_f64(),
        dir_bytes(dir),
        sum(false),
        sum(true)
    ))
}

/// A fresh process's one query of execution E/2, as `logstore dump` does it (open read-only,
/// query, write JSON lines): the parent times the whole process.
fn open_query(dir: &Path, args: &Args) -> Result<String, Error> {
    let store = LogStore::open_read_only(dir)?;
    let mut out = CountingSink(0);
    for e in store.query(&Workload::exec_id(args.executions / 2), &Filter::default())? {
        serde_json::to_writer(&mut out, &e)?;
        out.write_all(b"\n")?;
    }
    Ok(out.0.to_string())
}

/// `logstore list` of the store: time and peak RSS.
fn list_phase(dir: &Path) -> Result<String, Error> {
    let t = Instant::now();
    let store = LogStore::open_read_only(dir)?;
    let n = store.list()?.len();
    Ok(format!(
        "{n} executions in {:.1} ms, peak RSS {:.1} MB",
        t.elapsed().as_secs_f64() * 1e3,
        mb(peak_rss())
    ))
}

/// `search --count` of a common word and a rare one, on a store handle opened for them: the
/// median of 3 in seconds (the handle warm, as ClickHouse's server is), and the first run.
fn search_phase(dir: &Path) -> Result<String, Error> {
    let store = LogStore::open_read_only(dir)?;
    let mut out = Vec::new();
    for word in WORDS {
        let search = logstore::Search {
            terms: vec![word.to_owned()],
            ..logstore::Search::default()
        };
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..3 {
            let t = Instant::now();
            n = store.search_count(&search)?.matches;
            times.push(t.elapsed().as_secs_f64());
        }
        let first = times[0];
        times.sort_by(f64::total_cmp);
        out.push(format!(
            "{word} {n} in {:.3} s (median of 3; first {first:.3} s)",
            times[1]
        ));
    }
    Ok(out.join(", "))
}

/// The wall time of `phase` in a fresh process: median of 9 runs, in ms.
fn fresh_process_ms(phase: &str, dir: &Path, args: &Args) -> Result<f64, Error> {
    let mut times = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        child(phase, dir, args)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[4])
}

/// `--today`: the same day written today (segments rolling at `--part-mb`, parts sealed and
/// merged in the background while it is written) and sealed (one segment sealed whole, as a
/// past day is), side by side: files against the NDJSON, a query in process and in a fresh
/// process, `list`, `search`, and the ingest rate with the sealer at work against without it.
fn today(args: &Args) -> Result<(), Error> {
    let root = tempfile::tempdir()?;
    // `LOGSTORE_BENCH_KEEP=DIR` keeps both stores there (to time `logstore dump` on them).
    let base = std::env::var_os("LOGSTORE_BENCH_KEEP")
        .map_or_else(|| root.path().to_owned(), PathBuf::from);
    let (today, sealed) = (base.join("today"), base.join("sealed"));
    let say = |what: &str, r: String| {
        println!("{what:>28}: {r}");
        let _ = std::io::stdout().flush();
    };
    say("today: ingest", child("ingest-today", &today, args)?);
    say("sealed: ingest (no roll)", child("ingest", &sealed, args)?);
    say("sealed: seal", child("seal", &sealed, args)?);
    say("bytes", child("ndjson", &sealed, args)?);
    for (name, dir) in [("today", &today), ("sealed", &sealed)] {
        say(
            &format!("{name}: files"),
            format!("{:.1} MB", mb(dir_bytes(dir))),
        );
        say(
            &format!("{name}: query in process"),
            child("query", dir, args)?,
        );
        // The process start alone, to subtract: a phase that does nothing.
        say(
            &format!("{name}: query, fresh process"),
            format!(
                "{:.1} ms (median of 9, whole process)",
                fresh_process_ms("open-query", dir, args)?
            ),
        );
        say(&format!("{name}: list"), child("list", dir, args)?);
        say(
            &format!("{name}: search --count"),
            child("search", dir, args)?,
        );
    }
    Ok(())
}
