//! `logstore ship`: send the store's entries to ClickHouse (one server or a cluster), exactly
//! once as readers see them, or to an OpenTelemetry receiver (OTLP/HTTP), at least once (see
//! `docs/FLEET.md`); or print how far shipping has got.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logstore::ship::{cursor, default_node, DayPosition, OtlpConfig};
use logstore::{format_rfc3339_ms, ShipConfig, Shipper};

use super::{escape, CmdResult, Out};

/// Arguments of `ship`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs next to the engine, in its own process; it only reads the store. \
Each target keeps a cursor (DIR/ship.cursor for ClickHouse, DIR/ship-NAME.cursor for a named \
target) that moves only after the target acknowledged a batch, so a crash at any moment loses \
nothing. What ClickHouse is sent twice collapses in reads with FINAL; an OTLP receiver may see \
the last batch before a crash twice."
)]
pub struct Args {
    /// ClickHouse's HTTP interface: http://[user[:password]@]host[:port] (port 8123 by default).
    #[arg(long, value_name = "URL", required_unless_present_any = ["status", "otlp"], conflicts_with = "otlp")]
    clickhouse: Option<String>,
    /// An OTLP/HTTP receiver (an OpenTelemetry collector or backend): http://host[:port][/path]
    /// (a URL without a path gets /v1/logs).
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// With --clickhouse: the database holding the `logs` table.
    #[arg(long, value_name = "NAME", default_value = "logstore")]
    database: String,
    /// With --clickhouse: `logs` is a Distributed table over this cluster of the servers'
    /// remote_servers (--init creates it, with this server's shard table logs_local).
    #[arg(long, value_name = "NAME", requires = "clickhouse")]
    cluster: Option<String>,
    /// With --otlp: a request header, such as an API key (repeatable).
    #[arg(long = "header", value_name = "K=V", requires = "otlp", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// With --otlp: the resource's service.name.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "logstore",
        requires = "otlp"
    )]
    service_name: String,
    /// The target's name, which names its cursor (DIR/ship-NAME.cursor) and retention hold
    /// [default: none for ClickHouse (DIR/ship.cursor), `otlp` for --otlp].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// This node's name, stored in every row [default: the host name].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Ship everything stored now, then exit.
    #[arg(long)]
    once: bool,
    /// Create the database and table if they are missing (and migrate a table of the key from
    /// before sequence numbers: docs/FLEET.md), then ship. With --cluster, run it against
    /// every server of the cluster.
    #[arg(long, requires = "clickhouse")]
    init: bool,
    /// Print how far shipping has got and the lag (entries, seconds) of every target (or of
    /// --name), then exit.
    #[arg(long, conflicts_with_all = ["once", "init"])]
    status: bool,
    /// Give up when the target stays unreachable this long [default: 30s with --once, never
    /// without].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    retry_for: Option<Duration>,
    /// Most entries per request [default: 100000 for ClickHouse, 8192 for OTLP].
    #[arg(long, value_name = "N")]
    batch_entries: Option<usize>,
    /// Longest wait for a batch to fill once it has an entry.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "500ms")]
    batch_delay: Duration,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not K=V"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

/// Ships the store at `dir`, or prints its shipping status.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    if args.status {
        return status(dir, args.name.as_deref());
    }
    let mut config = match &args.otlp {
        Some(url) => ShipConfig::otlp(OtlpConfig {
            url: url.clone(),
            headers: args.headers.clone(),
            service_name: args.service_name.clone(),
        }),
        // Required by clap unless --status or --otlp.
        None => {
            let mut c = ShipConfig::new(args.clickhouse.as_deref().unwrap_or_default());
            c.database = args.database.clone();
            c.cluster = args.cluster.clone();
            c
        }
    };
    if args.name.is_some() {
        config.target = args.name.clone();
    }
    config.node = args.node.clone().unwrap_or_else(default_node);
    if let Some(n) = args.batch_entries {
        config.max_batch_entries = n.max(1);
    }
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
        if let Some(f) = shipper.init()? {
            let what = match &args.cluster {
                Some(c) => format!(
                    "tables {0}.logs_local (this shard) and {0}.logs (Distributed over cluster {c})",
                    args.database
                ),
                None => format!("table {}.logs", args.database),
            };
            writeln!(
                out,
                "{what} ready on {} (ClickHouse {}{}{})",
                shipper.url(),
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
    }
    // Fail fast on configuration errors (credentials, missing table) before reading anything.
    shipper.check(Some(&stop))?;
    let shipped = if args.once {
        shipper.ship_available()?
    } else {
        shipper.run(&stop)?
    };
    let c = shipper.cursor();
    let to = match &args.otlp {
        Some(_) => "the OTLP receiver at".to_owned(),
        None => format!("{}.logs on", args.database),
    };
    writeln!(
        out,
        "shipped {} entries in {} batches to {to} {} as node {}; {}",
        shipped.entries,
        shipped.batches,
        shipper.url(),
        escape(&c.node),
        describe(c)
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the status of `name`, or of every target with a cursor.
fn status(dir: &Path, name: Option<&str>) -> CmdResult {
    let mut targets = match name {
        Some(n) => vec![Some(n.to_owned())],
        None => cursor::targets(dir)?,
    };
    if targets.is_empty() {
        targets.push(None);
    }
    let mut out = Out::stdout();
    for (i, target) in targets.iter().enumerate() {
        let s = Shipper::status_of(dir, target.as_deref())?;
        let label = match target {
            Some(t) => format!("target {} ", escape(t)),
            None => String::new(),
        };
        if i > 0 {
            writeln!(out)?;
        }
        if s.started {
            let c = &s.cursor;
            let to = if c.database.is_empty() {
                String::new()
            } else {
                format!(" to database {}", escape(&c.database))
            };
            let rejected = if c.rejected > 0 {
                format!(" ({} rejected by the receiver)", c.rejected)
            } else {
                String::new()
            };
            writeln!(
                out,
                "{label}node {}{to}: {} entries acknowledged{rejected}; {}",
                escape(&c.node),
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
                "{label}nothing shipped yet (no {})",
                logstore::ship::Cursor::path_of(Path::new(""), target.as_deref()).display()
            )?;
        }
        writeln!(
            out,
            "lag: {} entries, {:.1} s",
            s.lag_entries, s.lag_seconds
        )?;
    }
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
        (Some(day), DayPosition::V1 { offset, .. }) => format!(", {day} up to v1 offset {offset}"),
        (Some(day), DayPosition::Sealed { block, .. }) => {
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
