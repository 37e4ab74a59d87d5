//! The `logstore` command line: parses the arguments and hands each subcommand to
//! `cli::<name>::run`. Everything else lives in `cli/`.

mod cli;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Read, import, check and clean up a logstore directory.
#[derive(Debug, Parser)]
#[command(name = "logstore", version, about, after_help = EXIT_CODES)]
struct Args {
    /// The store directory [default: ./logstore-data]
    // Not `default_value`: clap would then show a global `--dir <DIR>` as required in every
    // usage line.
    #[arg(long, global = true, env = "LOGSTORE_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Size at which a writer closes its segment and seals it into a part in the background,
    /// in MiB [default: 64]
    #[arg(long, global = true, env = "LOGSTORE_PART_MB", value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    part_mb: Option<u64>,

    /// zstd level a writer keeps a finished day at, 3 to 22: its parts' blocks are compressed
    /// again at it when the day ends (3, the parts' level, copies them as they are) [default: 6]
    #[arg(long, global = true, env = "LOGSTORE_DAY_LEVEL", value_name = "N", value_parser = clap::value_parser!(i32).range(3..=22))]
    day_level: Option<i32>,

    #[command(subcommand)]
    command: Command,
}

/// The store directory when neither `--dir` nor `LOGSTORE_DIR` names one.
const DEFAULT_DIR: &str = "logstore-data";

const EXIT_CODES: &str = "Exit codes: 0 success, 1 error, 2 `verify` found damage. \
`search` exits as grep: 0 matches, 1 no match, 2 error.";

/// The exit code of a command line that does not parse: 1, but 2 for `search`, whose 1 means
/// "no match".
fn usage_error_code() -> u8 {
    use clap::CommandFactory;
    let search = Args::command()
        .ignore_errors(true)
        .try_get_matches()
        .is_ok_and(|m| m.subcommand_name() == Some("search"));
    if search {
        cli::search::EXIT_SEARCH_ERROR
    } else {
        cli::EXIT_ERROR
    }
}

/// One variant per file in `src/cli/`. To add a command: a variant here, a `cli/<name>.rs`
/// with `Args` and `run(dir, args)`, and a line in `main`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run sample executions with real plugin processes (and a container), then dump one.
    Demo(cli::demo::Args),
    /// Run COMMAND as a one-task execution, capturing its output as the plugin's logs.
    Run(cli::run::Args),
    /// Store NDJSON log entries read from stdin.
    Import(cli::import::Args),
    /// Print one execution's entries, optionally following new ones.
    Dump(cli::dump::Args),
    /// List the executions in the store.
    List(cli::list::Args),
    /// Check every record and index entry; exit code 2 if anything is damaged.
    Verify(cli::verify::Args),
    /// Sizes and counts per day.
    Stats(cli::stats::Args),
    /// Seal every past day now (compress it into one file) and print what was done.
    Seal(cli::seal::Args),
    /// Delete days older than --keep-days.
    Gc(cli::gc::Args),
    /// Find entries of any execution by words, phrase or regex (exit codes as grep's).
    Search(cli::search::Args),
    /// Ship the entries to ClickHouse (exactly once, as readers see it) or to an OpenTelemetry
    /// receiver (OTLP/HTTP), or print the lag.
    Ship(cli::ship::Args),
    /// Serve the HTTP API and the log viewer (read-only) on 127.0.0.1:7411.
    Serve(cli::serve::Args),
    /// Print the shell completion script for bash, zsh, fish, elvish or PowerShell.
    Completions(cli::completions::Args),
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version land here too, on stdout with exit code 0.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(usage_error_code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Some(mb) = args.part_mb {
        let _ = cli::PART_BYTES.set(mb << 20);
    }
    if let Some(level) = args.day_level {
        let _ = cli::DAY_LEVEL.set(level);
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let dir = dir.as_path();
    let result = match args.command {
        Command::Demo(a) => cli::demo::run(dir, a),
        Command::Run(a) => cli::run::run(dir, a),
        Command::Import(a) => cli::import::run(dir, a),
        Command::Dump(a) => cli::dump::run(dir, a),
        Command::List(a) => cli::list::run(dir, a),
        Command::Verify(a) => cli::verify::run(dir, a),
        Command::Stats(a) => cli::stats::run(dir, a),
        Command::Seal(a) => cli::seal::run(dir, a),
        Command::Gc(a) => cli::gc::run(dir, a),
        Command::Search(a) => cli::search::run(dir, a),
        Command::Ship(a) => cli::ship::run(dir, a),
        Command::Serve(a) => cli::serve::run(dir, a),
        Command::Completions(a) => {
            use clap::CommandFactory;
            cli::completions::run(Args::command(), a)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) if cli::is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "{}", cli::error_chain(e.as_ref()));
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
