//! Shipping to ClickHouse, measured: throughput against the insert floor, steady-state lag
//! under a 50 k entries/s engine, and the shipper's memory.
//!
//! ```text
//! cargo run --release --example ship -- [--entries N] [--seconds S] [--rate R]
//! ```
//!
//! It starts its own `clickhouse-server` (Debian's package; the same launcher as
//! `tests/ship.rs`). The entries carry real log text: the lines of `/var/log/dpkg.log` and
//! `/var/log/apt/term.log` (Debian's own files as a fallback), cycled, over 1,000 executions.
//!
//! 1. **Throughput.** A store of N entries (default 1,000,000) is shipped by `Shipper` in a
//!    child process (this binary re-executed), which reports its time and peak RSS. Peers, in
//!    the same run and on the same server: the **floor**, the very same RowBinary rows
//!    pre-encoded in memory and POSTed in the same 100,000-row inserts (ClickHouse's own
//!    ingest, without reading the store or saving a cursor), and **JSONEachRow**, the same
//!    rows as JSON (what a shipper that skipped RowBinary would send).
//! 2. **Lag.** A shipper child runs as a daemon (`Shipper::run`, default batching) while this
//!    process appends R entries/s (default 50,000) for S seconds (default 20) with `timestamp`
//!    = now. Every 200 ms, lag = now - `max(timestamp_ms)` in ClickHouse; the first 3 s are
//!    warm-up. The shipper's peak RSS is read from its `/proc/PID/status` (`VmHWM`).

#[path = "../tests/ship_support/clickhouse_server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::ship::schema::{encode_row, RowFields, RowKey, INSERT_COLUMNS};
use logstore::ship::ClickHouse;
use logstore::{Durability, ExecutionId, Level, LogEntry, LogStore, ShipConfig, Shipper};

type Error = Box<dyn std::error::Error>;

const EXECUTIONS: usize = 1_000;
const INSERT_ROWS: usize = 100_000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run() -> Result<(), Error> {
    // Child modes: `--ship-once DIR URL` and `--ship-daemon DIR URL`.
    if let Some(dir) = arg("--ship-once") {
        return child(&dir, true);
    }
    if let Some(dir) = arg("--ship-daemon") {
        return child(&dir, false);
    }
    let entries: usize = arg("--entries").map_or(Ok(1_000_000), |v| v.parse())?;
    let seconds: u64 = arg("--seconds").map_or(Ok(20), |v| v.parse())?;
    let rate: u64 = arg("--rate").map_or(Ok(50_000), |v| v.parse())?;
    let server = server::Server::start().map_err(|e| format!("cannot start ClickHouse: {e}"))?;
    let url = server.url();
    let text = real_lines();
    println!(
        "clickhouse {} on {url}; {} lines of real log text",
        server.query("SELECT version()").trim(),
        text.len()
    );

    // 1. Throughput.
    let dir = tempfile::tempdir()?;
    let entries_built = build_store(dir.path(), entries, &text)?;
    let (secs, rss) = ship_child(dir.path(), &url)?;
    let count = server.query("SELECT count() FROM logstore.logs FINAL");
    if count.trim() != entries_built.len().to_string() {
        return Err(format!(
            "ClickHouse holds {} rows, {} expected",
            count.trim(),
            entries_built.len()
        )
        .into());
    }
    let shipper_rate = entries as f64 / secs;
    let floor = insert_floor(&url, &entries_built, false)?;
    let json = insert_floor(&url, &entries_built, true)?;
    println!("throughput: {entries} entries");
    println!(
        "  shipper (ship --once)  {:>10.0} entries/s  peak RSS {:.1} MB",
        shipper_rate,
        mb(rss)
    );
    println!(
        "  floor (RowBinary POST) {:>10.0} entries/s  shipper = {:.2}x floor",
        floor,
        shipper_rate / floor
    );
    println!(
        "  JSONEachRow POST       {:>10.0} entries/s  RowBinary floor = {:.2}x JSON",
        json,
        floor / json
    );
    drop(entries_built);

    // 2. Lag under a steady engine.
    lag(&server, &text, rate, seconds)?;
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Lines of real log text from this machine.
fn real_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for path in [
        "/var/log/dpkg.log",
        "/var/log/apt/term.log",
        "/var/log/apt/history.log",
    ] {
        if let Ok(t) = std::fs::read_to_string(path) {
            lines.extend(
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    if lines.len() < 1000 {
        // Debian's own text files: present on every Debian machine.
        for path in [
            "/usr/share/common-licenses/GPL-3",
            "/usr/share/common-licenses/Apache-2.0",
        ] {
            if let Ok(t) = std::fs::read_to_string(path) {
                lines.extend(
                    t.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_owned),
                );
            }
        }
    }
    lines
}

fn entry(i: usize, ts: i64, text: &[String]) -> LogEntry {
    let exec =
        ExecutionId::new(format!("exec-{:04}", i % EXECUTIONS)).unwrap_or_else(|_| unreachable!());
    let level = if i.is_multiple_of(50) {
        Level::Error
    } else {
        Level::Info
    };
    LogEntry::new(
        exec,
        ts,
        level,
        "plugin:acme/apt.install",
        text[i % text.len()].clone(),
    )
}

/// A store of `n` entries; returns them (for the floor).
fn build_store(dir: &Path, n: usize, text: &[String]) -> Result<Vec<LogEntry>, Error> {
    let store = LogStore::open(dir)?;
    let base = 1_795_608_000_000;
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        let e = entry(i, base + i64::try_from(i)?, text);
        store.append(&e)?;
        all.push(e);
    }
    store.flush(Durability::Synced)?;
    Ok(all)
}

/// Runs a shipper child (`--ship-once`); returns its seconds and peak RSS.
fn ship_child(dir: &Path, url: &str) -> Result<(f64, u64), Error> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--ship-once")
        .arg(dir)
        .arg("--url")
        .arg(url)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err("the shipper child failed".into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut it = text.split_whitespace();
    let secs: f64 = it.next().ok_or("no time")?.parse()?;
    let rss: u64 = it.next().ok_or("no rss")?.parse()?;
    Ok((secs, rss))
}

fn child(dir: &str, once: bool) -> Result<(), Error> {
    let url = arg("--url").ok_or("--url")?;
    let mut config = ShipConfig::new(&url);
    config.node = "bench".to_owned();
    let mut shipper = Shipper::open(Path::new(dir), config)?;
    shipper.init()?;
    if once {
        let started = Instant::now();
        shipper.ship_available()?;
        println!("{} {}", started.elapsed().as_secs_f64(), peak_rss("self")?);
    } else {
        shipper.run(&AtomicBool::new(false))?;
    }
    Ok(())
}

/// `VmHWM` of a process, in bytes.
fn peak_rss(pid: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or("no VmHWM")?;
    Ok(kb * 1024)
}

/// The same rows POSTed straight from memory, in the same inserts; entries/s.
fn insert_floor(url: &str, entries: &[LogEntry], json: bool) -> Result<f64, Error> {
    let ch = ClickHouse::new(url)?;
    let table = if json {
        "floor_json"
    } else {
        "floor_rowbinary"
    };
    ch.execute(&format!("DROP TABLE IF EXISTS logstore.{table}"))?;
    ch.execute(&format!("CREATE TABLE logstore.{table} AS logstore.logs"))?;
    // Encoding is outside the timed part: the floor is the server's ingest.
    let mut bodies = Vec::new();
    for (b, chunk) in entries.chunks(INSERT_ROWS).enumerate() {
        let mut body = Vec::new();
        for (i, e) in chunk.iter().enumerate() {
            if json {
                body.extend_from_slice(
                    serde_json::json!({
                        "node": "floor", "day": "2026-11-25", "execution_id": e.execution_id.as_str(),
                        "ordinal": b * INSERT_ROWS + i, "timestamp_ms": e.timestamp,
                        "SeverityText": e.level.as_str(), "SeverityNumber": 9, "source": e.source,
                        "task_id": "", "Body": e.message, "Attributes": "",
                    })
                    .to_string()
                    .as_bytes(),
                );
                body.push(b'\n');
            } else {
                encode_row(
                    &mut body,
                    RowKey {
                        node: "floor",
                        day: 20_782,
                        ordinal: u32::try_from(b * INSERT_ROWS + i)?,
                        seq: 0,
                    },
                    RowFields {
                        execution_id: e.execution_id.as_str(),
                        timestamp: e.timestamp,
                        level: e.level,
                        source: &e.source,
                        message: &e.message,
                        task_id: None,
                        metadata: None,
                    },
                );
            }
        }
        bodies.push(body);
    }
    let format = if json { "JSONEachRow" } else { "RowBinary" };
    let insert = format!("INSERT INTO logstore.{table} ({INSERT_COLUMNS}) FORMAT {format}");
    let started = Instant::now();
    for body in &bodies {
        ch.insert(&insert, body, &|| "floor insert".to_owned())?;
    }
    let secs = started.elapsed().as_secs_f64();
    ch.execute(&format!("DROP TABLE logstore.{table}"))?;
    Ok(entries.len() as f64 / secs)
}

fn lag(server: &server::Server, text: &[String], rate: u64, seconds: u64) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(LogStore::open(dir.path())?);
    // The shipper needs a store to open: one entry first.
    let now = || logstore::Clock::now_ms(&logstore::SystemClock);
    store.append(&entry(0, now(), text))?;
    store.flush(Durability::Written)?;
    let mut shipper = Command::new(std::env::current_exe()?)
        .arg("--ship-daemon")
        .arg(dir.path())
        .arg("--url")
        .arg(server.url())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stop = Arc::new(AtomicBool::new(false));
    let engine = {
        let (store, stop, text) = (Arc::clone(&store), Arc::clone(&stop), text.to_vec());
        std::thread::spawn(move || -> Result<u64, String> {
            let started = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = u64::try_from(started.elapsed().as_millis()).unwrap_or(0) * rate / 1000;
                while n < due {
                    let i = usize::try_from(n).unwrap_or(0);
                    store
                        .append(&entry(i, now(), &text))
                        .map_err(|e| e.to_string())?;
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(n)
        })
    };
    let ch = ClickHouse::new(&server.url())?;
    let started = Instant::now();
    let mut lags = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(200));
        let newest: i64 = ch
            .execute("SELECT max(timestamp_ms) FROM logstore.logs")?
            .trim()
            .parse()
            .unwrap_or(0);
        if started.elapsed() > Duration::from_secs(3) {
            lags.push((now() - newest).max(0));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let written = engine.join().map_err(|_| "engine panicked")??;
    let rss = peak_rss(&shipper.id().to_string())?;
    let _ = shipper.kill();
    let _ = shipper.wait();
    lags.sort_unstable();
    // Percentile p (in %) by rank.
    let pct = |p: usize| {
        lags.get(lags.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "lag while the engine appends {:.0} entries/s for {seconds} s ({written} entries):",
        written as f64 / started.elapsed().as_secs_f64()
    );
    println!(
        "  p50 {} ms, p99 {} ms, max {} ms ({} samples); shipper peak RSS {:.1} MB",
        pct(50),
        pct(99),
        lags.last().copied().unwrap_or(0),
        lags.len(),
        mb(rss)
    );
    Ok(())
}
