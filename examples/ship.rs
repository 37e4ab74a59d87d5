//! Shipping, measured: throughput against the target's own ingest floor, steady-state lag
//! under a 50 k entries/s engine, and the shipper's memory; to one ClickHouse server, to a
//! two-shard ClickHouse cluster, and to an OTLP/HTTP receiver.
//!
//! ```text
//! cargo run --release --example ship -- [--entries N] [--seconds S] [--rate R]
//!     [--targets clickhouse,cluster,otlp]
//! ```
//!
//! It starts its own `clickhouse-server`s (Debian's package; the same launcher as
//! `tests/ship.rs`; the cluster is two processes, one shard each, as in
//! `tests/ship_cluster.rs`) and, for OTLP, `tests/otlp_support/receiver.py --decode-only`
//! (the official Python `opentelemetry-proto` decoding every request, storing nothing). The entries carry real log text: the lines of `/var/log/dpkg.log` and
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
//!
//! On the cluster, the floor is the same rows inserted through the Distributed table with
//! synchronous inserts (what the shipper does); for OTLP, it is the very same encoded requests
//! POSTed from memory to the same receiver, and lag is not measured (the receiver keeps no
//! rows to ask).

#[path = "../tests/ship_support/clickhouse_server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logstore::format::PayloadRef;
use logstore::ship::otlp::Records;
use logstore::ship::schema::{encode_row, RowKey, INSERT_COLUMNS};
use logstore::ship::{ClickHouse, Otlp, OtlpConfig};
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
    let targets = arg("--targets").unwrap_or_else(|| "clickhouse,cluster,otlp".to_owned());
    let text = real_lines();
    println!("{} lines of real log text", text.len());
    let dir = tempfile::tempdir()?;
    let entries_built = build_store(dir.path(), entries, &text)?;
    for target in targets.split(',') {
        match target {
            "clickhouse" => {
                let server =
                    server::Server::start().map_err(|e| format!("cannot start ClickHouse: {e}"))?;
                let url = server.url();
                println!(
                    "\n== one server: clickhouse {} on {url}",
                    server.query("SELECT version()").trim()
                );
                clickhouse(&[&server], None, dir.path(), &entries_built)?;
                lag(&[&server], None, &text, rate, seconds)?;
            }
            "cluster" => {
                let servers = server::Server::start_cluster(CLUSTER, 2)
                    .map_err(|e| format!("cannot start a ClickHouse cluster: {e}"))?;
                let urls: Vec<String> = servers.iter().map(server::Server::url).collect();
                println!("\n== a cluster of two shards, {}", urls.join(" and "));
                let refs: Vec<&server::Server> = servers.iter().collect();
                clickhouse(&refs, Some(CLUSTER), dir.path(), &entries_built)?;
                lag(&refs, Some(CLUSTER), &text, rate, seconds)?;
            }
            "otlp" => otlp(dir.path(), &entries_built)?,
            other => return Err(format!("unknown target {other:?}").into()),
        }
    }
    Ok(())
}

const CLUSTER: &str = "bench2";

/// Throughput to one server or a cluster (`servers[0]` is the entry point): the shipper, the
/// RowBinary floor and JSONEachRow.
fn clickhouse(
    servers: &[&server::Server],
    cluster: Option<&str>,
    dir: &Path,
    entries_built: &[LogEntry],
) -> Result<(), Error> {
    let url = servers[0].url();
    init(servers, cluster)?;
    let entries = entries_built.len();
    let (secs, rss) = ship_child(dir, &url, cluster, false)?;
    let count = servers[0].query("SELECT count() FROM logstore.logs FINAL");
    if count.trim() != entries.to_string() {
        return Err(format!("ClickHouse holds {} rows, {entries} expected", count.trim()).into());
    }
    if cluster.is_some() {
        let shards: Vec<String> = servers
            .iter()
            .map(|s| {
                s.query("SELECT count() FROM logstore.logs_local")
                    .trim()
                    .to_owned()
            })
            .collect();
        println!("rows per shard: {}", shards.join(", "));
    }
    let shipper_rate = entries as f64 / secs;
    let floor = insert_floor(servers, cluster, entries_built, false)?;
    let json = insert_floor(servers, cluster, entries_built, true)?;
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
    Ok(())
}

/// Creates the tables on every server (with a cluster: each shard's and the Distributed one).
fn init(servers: &[&server::Server], cluster: Option<&str>) -> Result<(), Error> {
    let scratch = tempfile::tempdir()?;
    drop(LogStore::open(scratch.path())?);
    for s in servers {
        let mut config = ShipConfig::new(&s.url());
        config.cluster = cluster.map(str::to_owned);
        Shipper::open(scratch.path(), config)?.init()?;
    }
    Ok(())
}

/// Throughput to an OTLP receiver that only decodes, against the same requests from memory.
fn otlp(dir: &Path, entries_built: &[LogEntry]) -> Result<(), Error> {
    let out = tempfile::tempdir()?;
    let mut receiver = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp_support/receiver.py"))
        .arg(out.path())
        .arg("--decode-only")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(receiver.stdout.take().ok_or("no stdout")?),
        &mut line,
    )?;
    let port: u16 = line
        .strip_prefix("port ")
        .ok_or("the receiver did not start (pip install opentelemetry-proto)")?
        .trim()
        .parse()?;
    let url = format!("http://127.0.0.1:{port}");
    println!("\n== OTLP/HTTP to {url} (Python opentelemetry-proto, decode only)");
    let entries = entries_built.len();
    let (secs, rss) = ship_child(dir, &url, None, true)?;
    let decoded: usize = std::fs::read_to_string(out.path().join("count"))?
        .trim()
        .parse()?;
    if decoded != entries {
        return Err(format!("the receiver decoded {decoded} records, {entries} expected").into());
    }
    // The floor: the same batches (8,192 records), encoded beforehand, POSTed in turn.
    let client = Otlp::new(&OtlpConfig::new(&url), "floor")?;
    let mut bodies = Vec::new();
    for (b, chunk) in entries_built.chunks(8192).enumerate() {
        let mut records = Records::default();
        for (i, e) in chunk.iter().enumerate() {
            records.push(
                RowKey::of("floor", 20_782, 0, u64::try_from(b * 8192 + i + 1)?),
                &fields(e),
                e.level,
            );
        }
        bodies.push(client.encode(&mut records));
    }
    let started = Instant::now();
    for body in &bodies {
        client.export(body, &|| "floor export".to_owned())?;
    }
    let floor = entries as f64 / started.elapsed().as_secs_f64();
    let _ = receiver.kill();
    let _ = receiver.wait();
    let shipper_rate = entries as f64 / secs;
    println!("throughput: {entries} entries");
    println!(
        "  shipper (ship --once --otlp) {:>10.0} entries/s  peak RSS {:.1} MB",
        shipper_rate,
        mb(rss)
    );
    println!(
        "  floor (same requests POSTed) {:>10.0} entries/s  shipper = {:.2}x floor",
        floor,
        shipper_rate / floor
    );
    Ok(())
}

/// The stored view of `e` (no task, no metadata: the floor's rows carry neither).
fn fields(e: &LogEntry) -> PayloadRef<'_> {
    PayloadRef {
        seq: 0,
        execution_id: e.execution_id.as_str(),
        timestamp: e.timestamp,
        level: e.level.to_byte(),
        source: &e.source,
        message: &e.message,
        task_id: None,
        metadata: None,
    }
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
fn ship_child(
    dir: &Path,
    url: &str,
    cluster: Option<&str>,
    otlp: bool,
) -> Result<(f64, u64), Error> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--ship-once").arg(dir).arg("--url").arg(url);
    if let Some(c) = cluster {
        cmd.arg("--cluster").arg(c);
    }
    if otlp {
        cmd.arg("--otlp").arg("yes");
    }
    let out = cmd.stderr(Stdio::inherit()).output()?;
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
    let mut config = if arg("--otlp").is_some() {
        ShipConfig::otlp(OtlpConfig::new(&url))
    } else {
        ShipConfig::new(&url)
    };
    config.cluster = arg("--cluster");
    if config.cluster.is_some() {
        // Its own cursor: the store was shipped to the single server before.
        config.target = Some("cluster".to_owned());
    }
    config.node = "bench".to_owned();
    let mut shipper = Shipper::open(Path::new(dir), config)?;
    shipper.check(None)?;
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
fn insert_floor(
    servers: &[&server::Server],
    cluster: Option<&str>,
    entries: &[LogEntry],
    json: bool,
) -> Result<f64, Error> {
    let ch = ClickHouse::new(&servers[0].url())?;
    let table = if json {
        "floor_json"
    } else {
        "floor_rowbinary"
    };
    let mut settings: Vec<(&str, &str)> = Vec::new();
    match cluster {
        None => {
            ch.execute(&format!("DROP TABLE IF EXISTS logstore.{table}"))?;
            ch.execute(&format!("CREATE TABLE logstore.{table} AS logstore.logs"))?;
        }
        Some(c) => {
            // A shard table on every server and a Distributed table over them, as the shipper's.
            for s in servers {
                let each = ClickHouse::new(&s.url())?;
                each.execute(&format!("DROP TABLE IF EXISTS logstore.{table}"))?;
                each.execute(&format!("DROP TABLE IF EXISTS logstore.{table}_local"))?;
                each.execute(&format!(
                    "CREATE TABLE logstore.{table}_local AS logstore.logs_local"
                ))?;
                each.execute(&format!(
                    "CREATE TABLE logstore.{table} AS logstore.logs ENGINE = Distributed({c}, logstore, {table}_local, sipHash64(execution_id))"
                ))?;
            }
            settings.push(("insert_distributed_sync", "1"));
        }
    }
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
                    &fields(e),
                    e.level,
                );
            }
        }
        bodies.push(body);
    }
    let format = if json { "JSONEachRow" } else { "RowBinary" };
    let insert = format!("INSERT INTO logstore.{table} ({INSERT_COLUMNS}) FORMAT {format}");
    let started = Instant::now();
    for body in &bodies {
        ch.insert(&insert, &settings, body, &|| "floor insert".to_owned())?;
    }
    let secs = started.elapsed().as_secs_f64();
    ch.execute(&format!("DROP TABLE logstore.{table}"))?;
    Ok(entries.len() as f64 / secs)
}

fn lag(
    servers: &[&server::Server],
    cluster: Option<&str>,
    text: &[String],
    rate: u64,
    seconds: u64,
) -> Result<(), Error> {
    let server = servers[0];
    let dir = tempfile::tempdir()?;
    let store = Arc::new(LogStore::open(dir.path())?);
    // The shipper needs a store to open: one entry first.
    let now = || logstore::Clock::now_ms(&logstore::SystemClock);
    store.append(&entry(0, now(), text))?;
    store.flush(Durability::Written)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--ship-daemon")
        .arg(dir.path())
        .arg("--url")
        .arg(server.url());
    if let Some(c) = cluster {
        cmd.arg("--cluster").arg(c);
    }
    let mut shipper = cmd.stderr(Stdio::inherit()).spawn()?;
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
