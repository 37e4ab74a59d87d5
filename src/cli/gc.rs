//! `logstore gc`: retention, by whole days.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{CmdResult, Out};

/// Arguments of `gc`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep today and the N days before it; delete older days.
    #[arg(long, value_name = "N")]
    keep_days: u32,
    /// Delete old days even if a retention hold keeps them (DIR/holds/: a `logstore ship`
    /// target, ClickHouse or OTLP, that has not shipped them yet, or any other consumer's hold).
    #[arg(long)]
    force: bool,
}

/// Deletes old days of the store at `dir` and prints them.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    let store = super::open_for_writing(dir)?;
    let deleted = if args.force {
        store.gc_force(args.keep_days)?
    } else {
        store.gc(args.keep_days)?
    };
    drop(store);
    let mut out = Out::stdout();
    if deleted.is_empty() {
        writeln!(out, "no day older than {} days to delete", args.keep_days)?;
    }
    for day in deleted {
        writeln!(out, "deleted {day}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
