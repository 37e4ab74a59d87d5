//! `logstore search` against grep, zstdcat | grep and SQLite FTS5, on a store of real log text.
//!
//! ```text
//! cargo run --release --example search_bench -- [--entries N] [--days D] [--live L]
//!     [--executions E] [--runs R] [--fts-entries F] [--corpus FILE]... [--dir DIR] [--keep]
//!     [--no-clickhouse] [--part-bytes B] [--day-level L]
//! ```
//!
//! **Text.** Real lines written by programs on this machine: `/var/log/dpkg.log`,
//! `/var/log/apt/{history,term}.log`, `/var/log/alternatives.log`, `/var/log/dockerd.log`,
//! every `/usr/share/doc/*/changelog.Debian.gz`, and any `--corpus FILE` (the output of
//! `cargo build -vv` and `cargo test`, for example). Each execution reads the corpus from its
//! own random starting line, so executions look like programs printing their logs.
//!
//! **Store.** N entries (default 10,000,000): D sealed days (default 4, format v2) and a live
//! day of L entries (default 100,000: "today so far"), E executions per day (default 1,000)
//! interleaved round-robin, written through a store that seals them as it would (parts of
//! `--part-bytes`, default 64 MiB, merged when the day ends and kept at zstd level
//! `--day-level`, default 6). Level: ERROR for lines with "error", WARN with "warn", else INFO.
//! The rare word is a token found nowhere in the corpus, put into 7 entries on different days.
//! The common word is the corpus word that the most lines hold among those held by 10-40 %
//! of them. The regex is `--regex` (default below).
//!
//! **Peers**, all on a warm page cache, all counting matches (median of R runs, default 5):
//! - `logstore search --count` (the CLI: process start included);
//! - `grep -F -c WORD` / `grep -E -c RE` over the NDJSON export (`dump --json` lines);
//! - `zstdcat export.ndjson.zst | grep -F -c WORD` (`zstd -3`);
//! - SQLite FTS5 (rusqlite, bundled): `SELECT count(*) ... MATCH '"word"'`, with its build
//!   time and size (of F entries, default all: FTS5 has no regex);
//! - ClickHouse (Debian's `clickhouse-server`, started here as the shipping tests do, zstd as
//!   its `<compression>` method): the NDJSON export loaded into a `MergeTree`
//!   `ORDER BY (execution_id, timestamp)` and merged (`OPTIMIZE ... FINAL`); `SELECT count()
//!   ... WHERE match(lower(message), '\\bword\\b')` (a word-boundary regex, all its threads;
//!   not `(?i)`, which 18.16 gets wrong) or `match(message, RE)`, over HTTP, with its bytes.
//!   `--no-clickhouse` leaves it out.
//!
//! The counts differ in meaning and are printed beside the times: grep -F counts lines holding
//! the bytes anywhere, case-sensitively; search and FTS5 count whole words, case-insensitively.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::StoreSearch;
use logstore::{
    CommitPolicy, Config, Durability, ExecutionId, Level, LogEntry, LogStore, ManualClock, TaskId,
};

#[path = "../tests/ship_support/clickhouse_server.rs"]
mod clickhouse_server;

type Error = Box<dyn std::error::Error>;

const DAY_MS: i64 = 86_400_000;
/// 2026-11-20T00:00:00Z: the first day.
const START: i64 = 1_795_132_800_000;
const RARE: &str = "quokkazyme";
const RARE_HITS: u64 = 7;
const DEFAULT_REGEX: &str = r"CVE-[0-9]{4}-[0-9]{4,}";

struct Args {
    entries: u64,
    days: u64,
    live: u64,
    executions: u64,
    runs: usize,
    fts_entries: Option<u64>,
    corpus: Vec<PathBuf>,
    dir: Option<PathBuf>,
    keep: bool,
    regex: String,
    clickhouse: bool,
    part_bytes: u64,
    day_level: i32,
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        entries: 10_000_000,
        days: 4,
        live: 100_000,
        executions: 1_000,
        runs: 5,
        fts_entries: None,
        corpus: Vec::new(),
        dir: None,
        keep: false,
        regex: DEFAULT_REGEX.to_owned(),
        clickhouse: true,
        part_bytes: logstore::DEFAULT_PART_BYTES,
        day_level: logstore::DEFAULT_DAY_LEVEL,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--entries" => a.entries = value()?.parse()?,
            "--days" => a.days = value()?.parse()?,
            "--live" => a.live = value()?.parse()?,
            "--executions" => a.executions = value()?.parse()?,
            "--runs" => a.runs = value()?.parse()?,
            "--fts-entries" => a.fts_entries = Some(value()?.parse()?),
            "--corpus" => a.corpus.push(value()?.into()),
            "--dir" => a.dir = Some(value()?.into()),
            "--regex" => a.regex = value()?,
            "--keep" => a.keep = true,
            "--no-clickhouse" => a.clickhouse = false,
            "--part-bytes" => a.part_bytes = value()?.parse()?,
            "--day-level" => a.day_level = value()?.parse()?,
            "-h" | "--help" => {
                println!("see the doc comment of examples/search_bench.rs");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if a.days == 0 || a.executions == 0 || a.runs == 0 || a.entries <= a.live {
        return Err("need --days >= 1, --executions >= 1, --runs >= 1, --entries > --live".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Real log lines, in file order.
fn corpus(extra: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    let mut add = |text: &str| {
        for l in text.lines() {
            let l = l.trim_end();
            if !l.is_empty() && !l.contains(RARE) {
                // Entries hold one line each; very long lines (progress bars) are cut.
                let mut end = l.len().min(2000);
                while !l.is_char_boundary(end) {
                    end -= 1;
                }
                lines.push(l[..end].to_owned());
            }
        }
    };
    let mut files: Vec<PathBuf> = [
        "/var/log/dpkg.log",
        "/var/log/apt/history.log",
        "/var/log/apt/term.log",
        "/var/log/alternatives.log",
        "/var/log/dockerd.log",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    files.extend(extra.iter().cloned());
    for f in &files {
        match std::fs::read(f) {
            Ok(b) => add(&String::from_utf8_lossy(&b)),
            Err(e) => eprintln!("skipping {}: {e}", f.display()),
        }
    }
    let mut changelogs: Vec<PathBuf> = std::fs::read_dir("/usr/share/doc")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("changelog.Debian.gz"))
        .filter(|p| p.exists())
        .collect();
    changelogs.sort();
    for chunk in changelogs.chunks(200) {
        let out = Command::new("zcat").args(chunk).output()?;
        add(&String::from_utf8_lossy(&out.stdout));
    }
    Ok(lines)
}

/// The most-held word among those held by 10-40 % of the lines.
fn common_word(lines: &[String]) -> String {
    let mut held: HashMap<String, u64> = HashMap::new();
    for l in lines {
        let mut seen: Vec<String> = logstore::words(l).collect();
        seen.sort();
        seen.dedup();
        for w in seen {
            *held.entry(w).or_default() += 1;
        }
    }
    let n = lines.len() as f64;
    let mut best: Vec<(u64, String)> = held
        .into_iter()
        .filter(|(w, c)| w.is_ascii() && (0.10..=0.40).contains(&(*c as f64 / n)))
        .map(|(w, c)| (c, w))
        .collect();
    best.sort();
    best.pop().map_or_else(|| "the".to_owned(), |(_, w)| w)
}

fn level_of(line: &str) -> Level {
    let l = line.to_ascii_lowercase();
    if l.contains("error") {
        Level::Error
    } else if l.contains("warn") {
        Level::Warn
    } else {
        Level::Info
    }
}

/// Builds the store and the NDJSON export of the same entries; returns the store's directory.
fn build(a: &Args, lines: &[String], dir: &Path) -> Result<(), Error> {
    let clock = ManualClock::new(START + DAY_MS / 2);
    let config = Config {
        commit: CommitPolicy::default(),
        clock: Arc::new(clock.clone()),
        part_bytes: a.part_bytes,
        tail_bytes: logstore::DEFAULT_TAIL_BYTES,
        day_level: a.day_level,
    };
    let store = LogStore::open_with(dir.join("store"), config)?;
    let mut ndjson =
        BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("export.ndjson"))?);
    let sealed_entries = a.entries - a.live;
    let per_day = sealed_entries.div_ceil(a.days);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut written = 0u64;
    let days = a.days + 1;
    for d in 0..days {
        let n = if d == a.days {
            a.live
        } else {
            per_day.min(sealed_entries - written)
        };
        let starts: Vec<usize> = (0..a.executions)
            .map(|_| rng.usize(..lines.len()))
            .collect();
        let ids: Vec<ExecutionId> = (0..a.executions)
            .map(|e| ExecutionId::new(format!("run-{d}-{e:05}")))
            .collect::<Result<_, _>>()?;
        let day_start = START + i64::try_from(d)? * DAY_MS;
        // The rare word: entry k of RARE_HITS goes to day k mod days, around the middle.
        let rare_here =
            |i: u64| (0..RARE_HITS).any(|k| k % days == d && i == (n / 2 + k * 1013) % n);
        for i in 0..n {
            let e = usize::try_from(i % a.executions)?;
            let line = &lines[(starts[e] + usize::try_from(i / a.executions)?) % lines.len()];
            let message = if rare_here(i) {
                format!("{line} {RARE}")
            } else {
                line.clone()
            };
            let ts = day_start + i64::try_from(i * (DAY_MS as u64 - 1) / n.max(1))?;
            let entry = LogEntry::new(
                ids[e].clone(),
                ts,
                level_of(line),
                "plugin:acme/build.run",
                message,
            )
            .with_task(TaskId::new(format!("task-{}", i / a.executions / 500))?);
            store.append(&entry)?;
            serde_json::to_writer(&mut ndjson, &entry)?;
            ndjson.write_all(b"\n")?;
        }
        written += n;
        store.flush(Durability::Written)?;
        if d + 1 < days {
            clock.advance(DAY_MS);
        }
    }
    ndjson.flush()?;
    let t = Instant::now();
    let steps = store.seal()?;
    let secs = |day: bool| -> f64 {
        steps
            .iter()
            .filter(|s| matches!(s.step, logstore::SealStep::Day { .. }) == day)
            .map(|s| s.elapsed.as_secs_f64())
            .sum()
    };
    eprintln!(
        "sealed in {:.1} s: {} steps; segments into parts and their merges {:.2} s, parts into the sealed days (blocks compressed again) {:.2} s",
        t.elapsed().as_secs_f64(),
        steps.len(),
        secs(false),
        secs(true),
    );
    Ok(())
}

/// Builds the FTS5 index of the first `n` entries of the export; returns (seconds, bytes).
fn build_fts(dir: &Path, n: u64) -> Result<(f64, u64), Error> {
    let db = dir.join("fts.sqlite");
    let _ = std::fs::remove_file(&db);
    let t = Instant::now();
    let mut conn = rusqlite::Connection::open(&db)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE VIRTUAL TABLE logs USING fts5(execution_id UNINDEXED, timestamp UNINDEXED, level UNINDEXED, source UNINDEXED, message);",
    )?;
    let file = std::io::BufReader::new(std::fs::File::open(dir.join("export.ndjson"))?);
    let mut lines = file.lines();
    let mut done = 0u64;
    let mut exhausted = false;
    while done < n && !exhausted {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached("INSERT INTO logs VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for _ in 0..10_000 {
                let Some(line) = lines.next() else {
                    exhausted = true;
                    break;
                };
                let e: LogEntry = serde_json::from_str(&line?)?;
                ins.execute(rusqlite::params![
                    e.execution_id.as_str(),
                    e.timestamp,
                    e.level.as_str(),
                    e.source,
                    e.message
                ])?;
                done += 1;
                if done == n {
                    break;
                }
            }
        }
        tx.commit()?;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let secs = t.elapsed().as_secs_f64();
    drop(conn);
    Ok((secs, dir_bytes(dir, "fts.sqlite")?))
}

fn dir_bytes(dir: &Path, prefix: &str) -> Result<u64, Error> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(prefix) {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

/// Runs `cmd` R times; median wall time and the count it printed.
fn time_cmd(runs: usize, make: &dyn Fn() -> Command) -> Result<(Duration, String), Error> {
    let mut times = Vec::with_capacity(runs);
    let mut out = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let o = make().stderr(Stdio::inherit()).output()?;
        times.push(t.elapsed());
        out = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    }
    times.sort();
    Ok((times[times.len() / 2], out))
}

fn time_fts(runs: usize, dir: &Path, word: &str) -> Result<(Duration, String), Error> {
    let conn = rusqlite::Connection::open(dir.join("fts.sqlite"))?;
    let mut times = Vec::with_capacity(runs);
    let mut n = 0i64;
    for _ in 0..runs {
        let t = Instant::now();
        n = conn.query_row(
            "SELECT count(*) FROM logs WHERE logs MATCH ?1",
            [format!("\"{word}\"")],
            |r| r.get(0),
        )?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], n.to_string()))
}

/// One query and how each peer runs it.
struct Peers {
    name: &'static str,
    /// `logstore search --count` arguments.
    args: Vec<String>,
    grep: String,
    zgrep: String,
    /// The word for FTS5 (it has no regex).
    word: Option<String>,
}

/// ClickHouse holding the export (see the module doc).
struct ClickHousePeer {
    _server: clickhouse_server::Server,
    ch: logstore::ship::ClickHouse,
    version: String,
    bytes: u64,
    load_s: f64,
    optimize_s: f64,
}

impl ClickHousePeer {
    /// Median of `runs` counts: of `word` with a case-insensitive word-boundary regex, else of
    /// the regex `re`.
    fn count(
        &self,
        runs: usize,
        word: Option<&str>,
        re: &str,
    ) -> Result<(Duration, String), Error> {
        let pattern = match word {
            // `lower(message)`: 18.16's `match` gets `(?i)` wrong (its required-substring
            // prefilter is case-sensitive: 18,116 lines for `(?i)\bfix\b` where there are
            // 39,654); `[Ff][Ii][Xx]` is right too, and 1.6x slower.
            Some(w) => format!("\\\\b{}\\\\b", w.to_lowercase()),
            None => re.replace('\\', "\\\\").replace('\'', "\\'"),
        };
        let hay = if word.is_some() {
            "lower(message)"
        } else {
            "message"
        };
        let sql = format!("SELECT count() FROM bench.logs WHERE match({hay}, '{pattern}')");
        let mut times = Vec::new();
        let mut n = String::new();
        for _ in 0..runs {
            let t = Instant::now();
            n = self.ch.execute(&sql)?.trim().to_owned();
            times.push(t.elapsed());
        }
        times.sort();
        Ok((times[times.len() / 2], n))
    }
}

/// Starts ClickHouse and loads the NDJSON export into it; `None` (said on stderr) if the server
/// is not installed.
fn clickhouse_peer(ndjson: &Path) -> Result<Option<ClickHousePeer>, Error> {
    let server = match clickhouse_server::Server::start_with(
        "<compression><case><method>zstd</method></case></compression>",
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ClickHouse peer skipped: {e} (`apt-get install clickhouse-server`)");
            return Ok(None);
        }
    };
    let ch = logstore::ship::ClickHouse::new(&server.url())?;
    let version = ch.execute("SELECT version()")?.trim().to_owned();
    ch.execute("CREATE DATABASE bench")?;
    ch.execute(
        "CREATE TABLE bench.logs (execution_id String, timestamp Int64, level String, \
         source String, task_id String, message String) \
         ENGINE = MergeTree ORDER BY (execution_id, timestamp)",
    )?;
    let t = Instant::now();
    let mut rows = Vec::with_capacity(40 << 20);
    let mut lines = std::io::BufReader::new(std::fs::File::open(ndjson)?);
    loop {
        let before = rows.len();
        let n = lines.read_until(b'\n', &mut rows)?;
        let end = n == 0;
        if end {
            rows.truncate(before);
        }
        if (end || rows.len() > 32 << 20) && !rows.is_empty() {
            ch.insert(
                "INSERT INTO bench.logs FORMAT JSONEachRow",
                &[("input_format_skip_unknown_fields", "1")],
                &rows,
                &|| "the export".to_owned(),
            )?;
            rows.clear();
        }
        if end {
            break;
        }
    }
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ch.execute("OPTIMIZE TABLE bench.logs FINAL")?;
    let optimize_s = t.elapsed().as_secs_f64();
    let bytes = ch
        .execute("SELECT sum(bytes) FROM system.parts WHERE database = 'bench' AND active")?
        .trim()
        .parse()?;
    Ok(Some(ClickHousePeer {
        _server: server,
        ch,
        version,
        bytes,
        load_s,
        optimize_s,
    }))
}

/// Where the bytes go: each row of `format::sealed_breakdown` summed over the sealed days,
/// beside ClickHouse's columns.
fn print_where_bytes_go(dir: &Path, ch: Option<&ClickHousePeer>) -> Result<(), Error> {
    let mb = |b: u64| b as f64 / 1e6;
    let mut rows: Vec<(String, u64, u64)> = Vec::new();
    for e in std::fs::read_dir(dir.join("store").join("segments"))? {
        let path = e?.path();
        if path.extension().is_none_or(|x| x != "sealed") {
            continue;
        }
        for r in logstore::format::sealed_breakdown(&path)? {
            match rows.iter_mut().find(|(n, _, _)| *n == r.name) {
                Some(row) => {
                    row.1 += r.stored;
                    row.2 += r.raw;
                }
                None => rows.push((r.name, r.stored, r.raw)),
            }
        }
    }
    println!("  where the sealed days' bytes go (columns: their share of the zstd blocks):");
    for (name, stored, raw) in &rows {
        println!(
            "    {name:<28} {:>9.3} MB stored, {:>9.3} MB raw",
            mb(*stored),
            mb(*raw)
        );
    }
    if let Some(peer) = ch {
        println!("  ClickHouse's columns:");
        let cols = peer.ch.execute(
            "SELECT name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns \
             WHERE database = 'bench' AND table = 'logs' ORDER BY data_compressed_bytes DESC",
        )?;
        for line in cols.lines() {
            if let [name, z, raw] = line.split('\t').collect::<Vec<_>>()[..] {
                println!(
                    "    {:<28} {:>9.3} MB stored, {:>9.3} MB raw",
                    format!("column: {name}"),
                    mb(z.parse()?),
                    mb(raw.parse()?)
                );
            }
        }
    }
    Ok(())
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

fn run(a: &Args) -> Result<(), Error> {
    let tmp = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            None
        }
        None => Some(
            tempfile::Builder::new()
                .prefix("logstore-search-bench")
                .tempdir()?,
        ),
    };
    let dir = match (&a.dir, &tmp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => return Err("no directory".into()),
    };
    let lines = corpus(&a.corpus)?;
    let bytes: usize = lines.iter().map(String::len).sum();
    eprintln!("corpus: {} real lines, {} bytes", lines.len(), bytes);
    let common = common_word(&lines);
    let t = Instant::now();
    build(a, &lines, &dir)?;
    let build_s = t.elapsed().as_secs_f64();
    let store_dir = dir.join("store");
    let ndjson = dir.join("export.ndjson");
    let zst = dir.join("export.ndjson.zst");
    let t = Instant::now();
    let ok = Command::new("zstd")
        .args(["-3", "-q", "-f", "-T1", "-o"])
        .arg(&zst)
        .arg(&ndjson)
        .status()?;
    if !ok.success() {
        return Err("zstd failed".into());
    }
    let zstd_s = t.elapsed().as_secs_f64();
    let (fts_s, fts_bytes) = build_fts(&dir, a.fts_entries.unwrap_or(a.entries))?;
    let ch = if a.clickhouse {
        clickhouse_peer(&ndjson)?
    } else {
        None
    };
    let overhead = LogStore::open_read_only(&store_dir)?.search_overhead()?;
    // Warm the page cache: every peer reads its files once before the timed runs.
    for f in [&ndjson, &zst] {
        std::io::copy(&mut std::fs::File::open(f)?, &mut std::io::sink())?;
    }
    let bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("logstore"))
        .ok_or("cannot find the logstore binary next to the example")?;
    let search = |args: Vec<String>| {
        let (bin, store_dir) = (bin.clone(), store_dir.clone());
        move || {
            let mut c = Command::new(&bin);
            c.arg("--dir")
                .arg(&store_dir)
                .args(["search", "--count"])
                .args(&args);
            c
        }
    };
    let nd = ndjson.display().to_string();
    let zs = zst.display().to_string();
    let spec = |name: &'static str,
                args: Vec<String>,
                grep: String,
                zgrep: String,
                word: Option<String>| Peers {
        name,
        args,
        grep,
        zgrep,
        word,
    };
    let queries = [
        spec(
            "rare word",
            vec![RARE.to_owned()],
            format!("grep -F -c {RARE} {nd}"),
            format!("zstdcat {zs} | grep -F -c {RARE}"),
            Some(RARE.to_owned()),
        ),
        spec(
            "common word",
            vec![common.clone()],
            format!("grep -F -c {common} {nd}"),
            format!("zstdcat {zs} | grep -F -c {common}"),
            Some(common.clone()),
        ),
        spec(
            "regex",
            vec!["--regex".to_owned(), a.regex.clone()],
            format!("grep -E -c '{}' {nd}", a.regex),
            format!("zstdcat {zs} | grep -E -c '{}'", a.regex),
            None,
        ),
    ];
    println!("{} entries ({} sealed days + a live day of {}), {} executions per day; corpus {} real lines; runs {}", a.entries, a.days, a.live, a.executions, lines.len(), a.runs);
    println!("| query | search ms (hits) | grep ms (hits) | ratio | zstdcat\\|grep ms | ratio | FTS5 ms (hits) | ratio | ClickHouse ms (hits) | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for Peers {
        name,
        args,
        grep,
        zgrep,
        word,
    } in &queries
    {
        let (s_t, s_n) = time_cmd(a.runs, &search(args.clone()))?;
        let (g_t, g_n) = time_cmd(a.runs, &|| sh(grep))?;
        let (z_t, _) = time_cmd(a.runs, &|| sh(zgrep))?;
        let fts = match word {
            Some(w) => Some(time_fts(a.runs, &dir, w)?),
            None => None,
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ratio = |d: Duration| ms(d) / ms(s_t);
        let fts_cell = fts.as_ref().map_or_else(
            || "n/a (no regex) | - ".to_owned(),
            |(t, n)| format!("{:.1} ({n}) | {:.2}x", ms(*t), ratio(*t)),
        );
        let ch_cell = match &ch {
            Some(peer) => {
                let (t, n) = peer.count(
                    a.runs,
                    word.as_deref(),
                    args.last().map_or("", String::as_str),
                )?;
                format!("{:.1} ({n}) | {:.2}x", ms(t), ratio(t))
            }
            None => "- | -".to_owned(),
        };
        println!(
            "| {name} `{}` | {:.1} ({s_n}) | {:.1} ({g_n}) | {:.2}x | {:.1} | {:.2}x | {fts_cell} | {ch_cell} |",
            args.last().map_or("", String::as_str),
            ms(s_t),
            ms(g_t),
            ratio(g_t),
            ms(z_t),
            ratio(z_t),
        );
    }
    let mb = |b: u64| b as f64 / 1e6;
    let nd_bytes = std::fs::metadata(&ndjson)?.len();
    println!();
    println!("build: store + export {build_s:.1} s; zstd -3 {zstd_s:.1} s; FTS5 {fts_s:.1} s");
    println!("NDJSON export        {:>10.1} MB", mb(nd_bytes));
    println!(
        "zstd -3 of it        {:>10.1} MB",
        mb(std::fs::metadata(&zst)?.len())
    );
    println!(
        "sealed days          {:>10.1} MB ({} days), of which search filters {:.1} MB + block metadata {:.1} MB = {:.1} % of the sealed bytes",
        mb(overhead.sealed_bytes),
        overhead.sealed_days,
        mb(overhead.filter_bytes),
        mb(overhead.block_meta_bytes),
        100.0 * (overhead.filter_bytes + overhead.block_meta_bytes) as f64 / overhead.sealed_bytes.max(1) as f64
    );
    if let Some(peer) = &ch {
        println!(
            "ClickHouse MergeTree {:>10.1} MB ({}, zstd level 1, its default; loaded in {:.1} s + OPTIMIZE FINAL {:.1} s); sealed days / ClickHouse = {:.3} (ClickHouse also holds the live day's entries)",
            mb(peer.bytes),
            peer.version,
            peer.load_s,
            peer.optimize_s,
            overhead.sealed_bytes as f64 / peer.bytes.max(1) as f64
        );
    }
    print_where_bytes_go(&dir, ch.as_ref())?;
    println!(
        "FTS5 database        {:>10.1} MB for {} entries ({:.2}x the NDJSON of those entries)",
        mb(fts_bytes),
        a.fts_entries.unwrap_or(a.entries),
        fts_bytes as f64
            / (nd_bytes as f64 * a.fts_entries.unwrap_or(a.entries) as f64 / a.entries as f64)
    );
    println!(
        "common word: {common:?}; rare word: {RARE:?} in {RARE_HITS} entries; regex: {:?}",
        a.regex
    );
    if a.keep {
        eprintln!("kept {}", dir.display());
        std::mem::forget(tmp);
    }
    Ok(())
}
