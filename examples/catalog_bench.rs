//! The first page of the executions list over many executions, measured: what `logstore list
//! -n 50` does, in a fresh process (this binary re-executed with `--list DIR`), and
//! `LogStore::executions` (what `/api/executions` runs) on a read-only
//! handle, against reading the whole listing (`LogStore::list`).
//!
//! ```text
//! cargo run --release --example catalog_bench -- [--executions N] [--live L]
//! ```
//!
//! The store: N executions (default 100,000) of 3 entries each on a past day, sealed, and L
//! (default 1,000) running executions of 20 entries each on today's live day, written by this
//! process with an injected clock. `LOGSTORE_BENCH_KEEP=1` keeps the store and prints where.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use logstore::{
    Config, Durability, ExecutionId, Level, ListFilter, LogEntry, LogStore, ManualClock,
};

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg(name: &str, default: usize) -> Result<usize, Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or("missing value")?.parse()?),
        None => Ok(default),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run() -> Result<(), Error> {
    // Child: what `logstore list -n 50` does, in a fresh process.
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--list") {
        let store = LogStore::open_read_only(args.get(i + 1).ok_or("--list DIR")?)?;
        let page = store.executions(&ListFilter {
            limit: Some(50),
            ..ListFilter::default()
        })?;
        for s in page.executions {
            println!("{}", s.execution_id.as_str());
        }
        return Ok(());
    }
    let executions = arg("--executions", 100_000)?;
    let live = arg("--live", 1_000)?;
    let dir = tempfile::tempdir()?;
    if std::env::var_os("LOGSTORE_BENCH_KEEP").is_some() {
        println!("store kept in {}", dir.path().display());
    }
    let day_ms = 86_400_000i64;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let clock = ManualClock::new(now - day_ms);
    let config = || Config {
        clock: Arc::new(clock.clone()),
        ..Config::default()
    };
    let started = Instant::now();
    {
        let store = LogStore::open_with(dir.path(), config())?;
        let base = now - day_ms;
        for i in 0..executions {
            let id = ExecutionId::new(format!("batch-{i:07}"))?;
            for k in 0..3i64 {
                store.append(&LogEntry::new(
                    id.clone(),
                    base + i as i64 * 10 + k,
                    if k == 1 { Level::Error } else { Level::Info },
                    "worker",
                    "step done",
                ))?;
            }
        }
        store.flush(Durability::Synced)?;
    }
    clock.advance(day_ms);
    {
        let store = LogStore::open_with(dir.path(), config())?;
        store.seal()?;
        for k in 0..20i64 {
            for i in 0..live {
                let id = ExecutionId::new(format!("live-{i:05}"))?;
                store.append(&LogEntry::new(
                    id,
                    now + k * 1000 + i as i64,
                    Level::Info,
                    "worker",
                    "tick",
                ))?;
            }
        }
        store.flush(Durability::Synced)?;
    }
    println!(
        "{executions} sealed executions + {live} live ones, written and sealed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut cli = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let out = Command::new(std::env::current_exe()?)
            .arg("--list")
            .arg(dir.path())
            .output()?;
        if !out.status.success() {
            return Err(format!("list failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        cli.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let ro = LogStore::open_read_only(dir.path())?;
    let filter = ListFilter {
        limit: Some(50),
        ..ListFilter::default()
    };
    // The pages first, then the whole listings: freeing a million summaries leaves glibc's
    // allocator a consolidation to do on the next large allocation (80 ms), which would be
    // charged to whatever runs next.
    let mut page = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let p = ro.executions(&filter)?;
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        if p.executions.len() != 50 {
            return Err("not 50 executions".into());
        }
    }
    let mut whole = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let all = ro.list()?;
        whole.push(t.elapsed().as_secs_f64() * 1000.0);
        if all.len() != executions + live {
            return Err(format!("list gave {}", all.len()).into());
        }
    }
    if std::env::var_os("LOGSTORE_BENCH_KEEP").is_some() {
        std::mem::forget(dir);
    }
    println!("first page of 50, median of 7:");
    println!(
        "  list -n 50 in a fresh process             {:8.1} ms",
        median(cli)
    );
    println!(
        "  LogStore::executions (read-only handle)   {:8.1} ms",
        median(page)
    );
    println!(
        "  peer: LogStore::list, every execution     {:8.1} ms",
        median(whole)
    );
    Ok(())
}
