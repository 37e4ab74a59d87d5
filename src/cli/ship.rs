//! `logstore ship`: send the store's entries to ClickHouse, exactly once as readers see them
//! (see `docs/FLEET.md`), or print how far shipping has got.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logstore::ship::{default_node, Position};
use logstore::{format_rfc3339_ms, ShipConfig, Shipper};

use super::{escape, CmdResult, Out};

/// Arguments of `ship`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs next to the engine, in its own process; it only reads the store. \
The cursor (DIR/ship.cursor) moves only after ClickHouse acknowledged a batch, so a crash at any \
moment loses nothing, and what is sent twice collapses in reads with FINAL."
)]
pub struct Args {
    /// ClickHouse's HTTP interface: http://[user[:password]@]host[:port] (port 8123 by default).
    #[arg(long, value_name = "URL", required_unless_present = "status")]
    clickhouse: Option<String>,
    /// The database holding the `logs` table.
    #[arg(long, value_name = "NAME", default_value = "logstore")]
    database: String,
    /// This node's name, stored in every row [default: the host name].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Ship everything stored now, then exit.
    #[arg(long)]
    once: bool,
    /// Create the database and table if they are missing (and migrate a table of the key from
    /// before sequence numbers: docs/FLEET.md), then ship.
    #[arg(long)]
    init: bool,
    /// Print how far shipping has got and the lag (entries, seconds), then exit.
    #[arg(long, conflicts_with_all = ["once", "init"])]
    status: bool,
    /// Give up when ClickHouse stays unreachable this long [default: 30s with --once, never
    /// without].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    retry_for: Option<Duration>,
    /// Most entries per insert.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    batch_entries: usize,
    /// Longest wait for a batch to fill once it has an entry.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "500ms")]
    batch_delay: Duration,
}

/// Ships the store at `dir`, or prints its shipping status.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    if args.status {
        return status(dir);
    }
    // Required by clap unless --status.
    let url = args.clickhouse.clone().unwrap_or_default();
    let mut config = ShipConfig::new(&url);
    config.database = args.database.clone();
    config.node = args.node.clone().unwrap_or_else(default_node);
    config.max_batch_entries = args.batch_entries.max(1);
    config.max_batch_delay = args.batch_delay;
    config.retry_for = args
        .retry_for
        .or(args.once.then_some(Duration::from_secs(30)));
    // Retries and skipped damage are reported on stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let stop = Arc::new(AtomicBool::new(false));
    if !args.once {
        stop_on_signals(&stop)?;
    }
    let mut shipper = Shipper::open(dir, config)?;
    let mut out = Out::stdout();
    if args.init {
        let f = shipper.init()?;
        writeln!(
            out,
            "table {}.logs is ready on {} (ClickHouse {}{}{})",
            args.database,
            shipper.clickhouse().url(),
            f.version,
            if f.modern_types {
                ", LowCardinality, skip indexes"
            } else {
                ""
            },
            if f.insert_dedup {
                ", insert deduplication"
            } else {
                ""
            },
        )?;
        out.flush()?;
    }
    // Fail fast on configuration errors (credentials, missing table) before reading anything.
    shipper.check(Some(&stop))?;
    let shipped = if args.once {
        shipper.ship_available()?
    } else {
        shipper.run(&stop)?
    };
    let c = shipper.cursor();
    writeln!(
        out,
        "shipped {} entries in {} batches to {}.logs on {} as node {}; {}",
        shipped.entries,
        shipped.batches,
        args.database,
        shipper.clickhouse().url(),
        escape(&c.node),
        describe(c)
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn status(dir: &Path) -> CmdResult {
    let s = Shipper::status(dir)?;
    let mut out = Out::stdout();
    if s.started {
        let c = &s.cursor;
        writeln!(
            out,
            "node {} to database {}: {} entries acknowledged; {}",
            escape(&c.node),
            escape(&c.database),
            c.shipped,
            describe(c)
        )?;
        writeln!(
            out,
            "last acknowledged at {}",
            format_rfc3339_ms(c.updated_ms)
        )?;
    } else {
        writeln!(
            out,
            "nothing shipped yet (no {})",
            Path::new("ship.cursor").display()
        )?;
    }
    writeln!(
        out,
        "lag: {} entries, {:.1} s",
        s.lag_entries, s.lag_seconds
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `days through 2026-11-24 whole, 2026-11-25 up to v1 offset 1234`.
fn describe(c: &logstore::ship::Cursor) -> String {
    let done = c.done_through.as_deref().map_or_else(
        || "no day whole yet".to_owned(),
        |d| format!("days through {d} whole"),
    );
    let at = match (&c.day, &c.position) {
        (Some(day), Position::V1 { offset, .. }) => format!(", {day} up to v1 offset {offset}"),
        (Some(day), Position::Sealed { block, .. }) => {
            format!(", {day} (sealed) up to block {block}")
        }
        _ => String::new(),
    };
    format!("{done}{at}")
}

/// SIGINT and SIGTERM set `stop`: the shipper finishes the batch in flight (so its cursor is
/// saved) and exits 0. The signals are blocked in every thread and taken by one waiting thread,
/// which needs no signal handler.
fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<(), Box<dyn std::error::Error>> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("ship-signals".to_owned())
        .spawn(move || {
            if set.wait().is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        })?;
    Ok(())
}
