//! logstore against its peers on one workload: the physical floor and SQLite.
//!
//! ```text
//! cargo run --release --example compare -- [--entries N] [--executions E] [--runs R]
//!                                          [--systems logstore,floor,sqlite] [--json]
//! ```
//!
//! The workload (`benches/support/workload.rs`): N entries (default 1,000,000) with 150-byte
//! messages, E executions (default 1,000) interleaved round-robin. Each system, in turn:
//!
//! - **logstore**: `LogStore::open` with the default config. Ingest = `append` every entry, then
//!   `flush(Durability::Synced)`. Then `seal()` waits for the sealer to turn the day's closed
//!   segments into parts (background work, timed apart from ingest), so that bytes and queries
//!   see the layout a day rests in: parts plus the open segment. Query =
//!   `query(exec, &Filter::default())`.
//! - **floor**: the same frames (`logstore::format::encode`), 100 per `write` call to one file,
//!   one `fsync` at the end. Query = read the whole file sequentially in 1 MiB `read` calls,
//!   check every frame's CRC and decode its payload, and build the entries of the queried
//!   execution. It is the floor of ingest (no index, no batching logic) and of a query without
//!   an index.
//! - **sqlite** (rusqlite, bundled): WAL, `synchronous=NORMAL`, one transaction per 100
//!   entries through a prepared `INSERT`, table `logs(seq INTEGER PRIMARY KEY, execution_id,
//!   timestamp, level, source, message, task_id, metadata)` with an index on
//!   `(execution_id, seq)`. Ingest ends with `PRAGMA wal_checkpoint(FULL)`, which fsyncs, so
//!   that every system ends with its data durable. Query = `SELECT ... WHERE execution_id = ?
//!   ORDER BY seq` into `LogEntry`s.
//!
//! Every query returns the same `Vec<LogEntry>` (checked: count and first message), of execution
//! `E / 2`. The query time is the median of R runs (default 9) on a warm page cache.
//!
//! Each system runs in its own child process (this binary re-executed with the hidden flag
//! `--system X`), which reports its peak RSS (`VmHWM` of `/proc/self/status`) at its end, so the
//! figures of one system never include another's memory. Bytes on disk: the sum of the file
//! sizes in the system's directory after ingest (segments and indexes; database, WAL and shm).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use logstore::format::{decode, encode, FrameError};
use logstore::{Durability, ExecutionId, Filter, Level, LogEntry, LogStore, TaskId};
use serde::{Deserialize, Serialize};

#[path = "../benches/support/workload.rs"]
mod workload;

use workload::Workload;

type Error = Box<dyn std::error::Error>;

const SYSTEMS: [&str; 3] = ["logstore", "floor", "sqlite"];
/// Entries per `write` call (floor) and per transaction (SQLite): the store's batch size.
const BATCH: u64 = 100;

/// What one system's child process reports: exactly the `--json` line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    system: String,
    ingest_entries_per_s: f64,
    query_ms: f64,
    bytes_on_disk: u64,
    peak_rss_bytes: u64,
}

/// CPU time and where memory went: printed under the table, not part of `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Detail {
    /// User + system CPU seconds of the whole process (all threads) during ingest: less
    /// sensitive than wall time to other load on a shared machine.
    ingest_cpu_s: f64,
    /// Wall seconds of the background work left after ingest (logstore: sealing today's closed
    /// segments into parts), waited for before bytes and queries are measured.
    #[serde(default)]
    settle_s: f64,
    /// `VmHWM` when ingest ended, before any query.
    ingest_peak_rss_bytes: u64,
    /// Anonymous (heap) RSS at the end.
    rss_anon_bytes: u64,
    /// File-backed RSS at the end: pages of mapped files, shared with the page cache.
    rss_file_bytes: u64,
}

#[derive(Debug, Clone)]
struct Args {
    entries: u64,
    executions: usize,
    runs: usize,
    systems: Vec<String>,
    json: bool,
    /// Set in the child processes only.
    system: Option<String>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        entries: 1_000_000,
        executions: 1_000,
        runs: 9,
        systems: SYSTEMS.iter().map(|s| (*s).to_owned()).collect(),
        json: false,
        system: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--entries" => args.entries = value()?.parse()?,
            "--executions" => args.executions = value()?.parse()?,
            "--runs" => args.runs = value()?.parse()?,
            "--systems" => {
                args.systems = value()?.split(',').map(str::to_owned).collect();
            }
            "--json" => args.json = true,
            "--system" => args.system = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "usage: compare [--entries N] [--executions E] [--runs R] \
                     [--systems logstore,floor,sqlite] [--json]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if let Some(bad) = args.systems.iter().find(|s| !SYSTEMS.contains(&s.as_str())) {
        return Err(format!("unknown system {bad:?}: expected one of {SYSTEMS:?}").into());
    }
    if args.executions == 0 || args.entries < args.executions as u64 || args.runs == 0 {
        return Err("need --executions >= 1, --entries >= --executions, --runs >= 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| match &args.system {
        Some(system) => run_child(&args, system),
        None => run_parent(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs each system in a child process and prints the table (or JSON lines).
fn run_parent(args: &Args) -> Result<(), Error> {
    let exe = std::env::current_exe()?;
    let mut reports = Vec::new();
    for system in &args.systems {
        eprintln!("compare: running {system} ({} entries)...", args.entries);
        let out = Command::new(&exe)
            .args(["--system", system])
            .args(["--entries", &args.entries.to_string()])
            .args(["--executions", &args.executions.to_string()])
            .args(["--runs", &args.runs.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(format!("{system} failed: {}", out.status).into());
        }
        let text = String::from_utf8(out.stdout)?;
        let mut lines = text.lines();
        let report: Report = serde_json::from_str(lines.next().ok_or("no report")?)?;
        let memory: Detail = serde_json::from_str(lines.next().ok_or("no detail report")?)?;
        reports.push((report, memory));
    }
    if args.json {
        for (r, _) in &reports {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print_table(args, &reports);
    }
    Ok(())
}

fn print_table(args: &Args, reports: &[(Report, Detail)]) {
    let base = reports
        .iter()
        .map(|(r, _)| r)
        .find(|r| r.system == "logstore");
    let ratio = |v: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!("{:.2}x", v / b),
        _ => "-".to_owned(),
    };
    println!(
        "{} entries, {} executions interleaved, {}-byte messages; query: one execution of {} \
         entries, median of {} runs (ratio columns: system / logstore)",
        args.entries,
        args.executions,
        workload::MESSAGE_LEN,
        args.entries / args.executions as u64,
        args.runs
    );
    println!(
        "| {:<8} | {:>16} | {:>7} | {:>9} | {:>7} | {:>13} | {:>7} | {:>13} | {:>7} |",
        "system",
        "ingest entries/s",
        "ratio",
        "query ms",
        "ratio",
        "bytes on disk",
        "ratio",
        "peak RSS",
        "ratio"
    );
    println!(
        "|{:-<10}|{:->18}|{:->9}|{:->11}|{:->9}|{:->15}|{:->9}|{:->15}|{:->9}|",
        "", "", "", "", "", "", "", "", ""
    );
    for (r, _) in reports {
        println!(
            "| {:<8} | {:>16.0} | {:>7} | {:>9.3} | {:>7} | {:>13} | {:>7} | {:>13} | {:>7} |",
            r.system,
            r.ingest_entries_per_s,
            ratio(r.ingest_entries_per_s, base.map(|b| b.ingest_entries_per_s)),
            r.query_ms,
            ratio(r.query_ms, base.map(|b| b.query_ms)),
            r.bytes_on_disk,
            ratio(r.bytes_on_disk as f64, base.map(|b| b.bytes_on_disk as f64)),
            r.peak_rss_bytes,
            ratio(
                r.peak_rss_bytes as f64,
                base.map(|b| b.peak_rss_bytes as f64)
            ),
        );
    }
    println!();
    println!("CPU time of ingest (user + system, all threads; 10 ms resolution):");
    for (r, d) in reports {
        println!(
            "  {:<8} {:>7.2} s = {:>6.0} ns/entry; then {:.2} s of background work waited for",
            r.system,
            d.ingest_cpu_s,
            d.ingest_cpu_s * 1e9 / args.entries as f64,
            d.settle_s
        );
    }
    println!("peak RSS is VmHWM at the end of the run (ingest + queries); broken down:");
    for (r, m) in reports {
        println!(
            "  {:<8} peak during ingest {:>11} B; at the end: anonymous {:>11} B, file-backed (mapped files) {:>11} B",
            r.system, m.ingest_peak_rss_bytes, m.rss_anon_bytes, m.rss_file_bytes
        );
    }
}

/// One system, in this (child) process: prints its [`Report`] as one JSON line.
fn run_child(args: &Args, system: &str) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let target = args.executions / 2;
    let id = workload::execution_id(target);
    let expected = (0..args.entries)
        .filter(|s| *s % args.executions as u64 == target as u64)
        .count();
    let mut workload = Workload::new(args.executions);
    let mut sys: Box<dyn System> = match system {
        "logstore" => Box::new(LogstoreSystem::open(dir.path())?),
        "floor" => Box::new(FloorSystem::open(dir.path())?),
        "sqlite" => Box::new(SqliteSystem::open(dir.path())?),
        other => return Err(format!("unknown system {other:?}").into()),
    };

    let cpu_before = cpu_time()?;
    let start = Instant::now();
    for seq in 0..args.entries {
        sys.append(workload.entry(seq))?;
    }
    sys.finish_ingest()?;
    let ingest = start.elapsed();
    let ingest_cpu = cpu_time()?.saturating_sub(cpu_before);
    let ingest_peak_rss = status_bytes("VmHWM")?;
    // Background work the ingest left (logstore: today's closed segments into parts) is
    // finished before bytes and queries are measured, so they see the resting layout.
    let settle_start = Instant::now();
    sys.settle()?;
    let settle = settle_start.elapsed();
    let bytes_on_disk = dir_bytes(dir.path())?;

    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        let entries = sys.query(&id)?;
        times.push(start.elapsed());
        check_result(system, &entries, &id, expected)?;
    }
    times.sort();
    let query = times[times.len() / 2];
    drop(sys);

    let report = Report {
        system: system.to_owned(),
        ingest_entries_per_s: args.entries as f64 / ingest.as_secs_f64(),
        query_ms: query.as_secs_f64() * 1e3,
        bytes_on_disk,
        peak_rss_bytes: status_bytes("VmHWM")?,
    };
    let memory = Detail {
        ingest_cpu_s: ingest_cpu.as_secs_f64(),
        settle_s: settle.as_secs_f64(),
        ingest_peak_rss_bytes: ingest_peak_rss,
        rss_anon_bytes: status_bytes("RssAnon")?,
        rss_file_bytes: status_bytes("RssFile")?,
    };
    eprintln!(
        "compare: {system}: ingest {:.2} s, query median {:.3} ms (min {:.3}, max {:.3})",
        ingest.as_secs_f64(),
        report.query_ms,
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    println!("{}", serde_json::to_string(&report)?);
    println!("{}", serde_json::to_string(&memory)?);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn check_result(
    system: &str,
    entries: &[LogEntry],
    id: &ExecutionId,
    expected: usize,
) -> Result<(), Error> {
    if entries.len() != expected || entries.iter().any(|e| &e.execution_id != id) {
        return Err(format!(
            "{system}: query returned {} entries, {expected} expected",
            entries.len()
        )
        .into());
    }
    if entries.windows(2).any(|w| w[0].timestamp >= w[1].timestamp) {
        return Err(format!("{system}: query result is not in append order").into());
    }
    Ok(())
}

/// Sum of the sizes of the files under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64, Error> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// User + system CPU time of this process so far (`/proc/self/stat` fields 14 and 15).
fn cpu_time() -> Result<Duration, Error> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = stat.rsplit_once(')').ok_or("malformed /proc/self/stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on every Linux configuration that matters here.
    Ok(Duration::from_millis(ticks * 10))
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, the peak RSS; `RssAnon`; `RssFile`), in bytes.
fn status_bytes(field: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|l| l.strip_prefix(':')))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// One system under test.
trait System {
    fn append(&mut self, entry: &LogEntry) -> Result<(), Error>;
    /// Makes everything appended durable.
    fn finish_ingest(&mut self) -> Result<(), Error>;
    /// Waits for the background work that ingest left behind; nothing by default.
    fn settle(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// One execution's entries in append order.
    fn query(&mut self, id: &ExecutionId) -> Result<Vec<LogEntry>, Error>;
}

struct LogstoreSystem {
    store: LogStore,
}

impl LogstoreSystem {
    fn open(dir: &Path) -> Result<LogstoreSystem, Error> {
        Ok(LogstoreSystem {
            store: LogStore::open(dir)?,
        })
    }
}

impl System for LogstoreSystem {
    fn append(&mut self, entry: &LogEntry) -> Result<(), Error> {
        Ok(self.store.append(entry)?)
    }

    fn finish_ingest(&mut self) -> Result<(), Error> {
        Ok(self.store.flush(Durability::Synced)?)
    }

    fn settle(&mut self) -> Result<(), Error> {
        self.store.seal()?;
        Ok(())
    }

    fn query(&mut self, id: &ExecutionId) -> Result<Vec<LogEntry>, Error> {
        Ok(self.store.query(id, &Filter::default())?)
    }
}

struct FloorSystem {
    file: File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
    pending: u64,
}

impl FloorSystem {
    fn open(dir: &Path) -> Result<FloorSystem, Error> {
        let path = dir.join("floor.log");
        Ok(FloorSystem {
            file: File::create(&path)?,
            path,
            buf: Vec::new(),
            pending: 0,
        })
    }
}

impl System for FloorSystem {
    fn append(&mut self, entry: &LogEntry) -> Result<(), Error> {
        encode(entry, &mut self.buf)?;
        self.pending += 1;
        if self.pending == BATCH {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
            self.pending = 0;
        }
        Ok(())
    }

    fn finish_ingest(&mut self) -> Result<(), Error> {
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        self.pending = 0;
        self.file.sync_all()?;
        Ok(())
    }

    fn query(&mut self, id: &ExecutionId) -> Result<Vec<LogEntry>, Error> {
        let mut file = File::open(&self.path)?;
        let mut chunk = vec![0u8; 1 << 20];
        let mut buf: Vec<u8> = Vec::with_capacity(2 << 20);
        let mut out = Vec::new();
        loop {
            let n = file.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut pos = 0;
            loop {
                match decode(&buf[pos..]) {
                    Ok((p, used)) => {
                        if p.execution_id == id.as_str() {
                            out.push(p.to_entry()?);
                        }
                        pos += used;
                    }
                    Err(FrameError::Truncated { .. }) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            buf.drain(..pos);
        }
        if !buf.is_empty() {
            return Err(format!("{} bytes of a torn frame at the end", buf.len()).into());
        }
        Ok(out)
    }
}

struct SqliteSystem {
    conn: rusqlite::Connection,
    pending: u64,
}

const SQL_INSERT: &str = "INSERT INTO logs \
    (seq, execution_id, timestamp, level, source, message, task_id, metadata) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const SQL_QUERY: &str = "SELECT timestamp, level, source, message, task_id, metadata \
    FROM logs WHERE execution_id = ?1 ORDER BY seq";

impl SqliteSystem {
    fn open(dir: &Path) -> Result<SqliteSystem, Error> {
        let conn = rusqlite::Connection::open(dir.join("logs.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE logs (
                 seq INTEGER PRIMARY KEY,
                 execution_id TEXT NOT NULL,
                 timestamp INTEGER NOT NULL,
                 level INTEGER NOT NULL,
                 source TEXT NOT NULL,
                 message TEXT NOT NULL,
                 task_id TEXT,
                 metadata TEXT
             );
             CREATE INDEX logs_execution_seq ON logs (execution_id, seq);
             BEGIN;",
        )?;
        Ok(SqliteSystem { conn, pending: 0 })
    }
}

impl System for SqliteSystem {
    fn append(&mut self, entry: &LogEntry) -> Result<(), Error> {
        let metadata = entry
            .metadata
            .as_ref()
            .map(logstore::metadata_to_json)
            .transpose()?;
        let seq = entry.timestamp - workload::BASE_TS;
        self.conn.prepare_cached(SQL_INSERT)?.execute((
            seq,
            entry.execution_id.as_str(),
            entry.timestamp,
            entry.level.to_byte(),
            entry.source.as_str(),
            entry.message.as_str(),
            entry.task_id.as_ref().map(TaskId::as_str),
            metadata,
        ))?;
        self.pending += 1;
        if self.pending == BATCH {
            self.conn.execute_batch("COMMIT; BEGIN;")?;
            self.pending = 0;
        }
        Ok(())
    }

    fn finish_ingest(&mut self) -> Result<(), Error> {
        self.conn.execute_batch("COMMIT;")?;
        // With synchronous=NORMAL a WAL commit is not fsynced; a checkpoint is.
        self.conn
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
        Ok(())
    }

    fn query(&mut self, id: &ExecutionId) -> Result<Vec<LogEntry>, Error> {
        let mut stmt = self.conn.prepare_cached(SQL_QUERY)?;
        let mut rows = stmt.query([id.as_str()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let level: u8 = row.get(1)?;
            let task: Option<String> = row.get(4)?;
            let metadata: Option<String> = row.get(5)?;
            out.push(LogEntry {
                execution_id: id.clone(),
                timestamp: row.get(0)?,
                level: Level::from_byte(level).ok_or("bad level")?,
                source: row.get(2)?,
                message: row.get(3)?,
                task_id: task.map(TaskId::new).transpose()?,
                metadata: metadata
                    .as_deref()
                    .map(logstore::metadata_from_json)
                    .transpose()?,
            });
        }
        Ok(out)
    }
}
