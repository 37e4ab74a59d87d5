//! `logstore search`: entries of any execution, on any day, by words, phrase or regex.
//!
//! Exit codes follow grep, not the other commands: 0 when something matched, 1 when nothing
//! did, 2 on any error (a bad regex, a missing store, I/O). A closed stdout ends quietly with 0.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use logstore::{
    format_rfc3339_ms, Filter, Hit, Level, LogStore, Query, Search, SearchDamage, StoreSearch,
    TaskId,
};
use serde::Serialize;

use super::output::{write_entry, write_entry_with_seq, write_human_marked};
use super::{error_chain, escape, is_broken_pipe, parse_time, write_table, CmdResult, Out};

/// Exit code when nothing matched.
const EXIT_NO_MATCH: u8 = 1;
/// Exit code of any error (grep's).
pub const EXIT_SEARCH_ERROR: u8 = 2;

/// Arguments of `search`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A WORD matches a whole word of the message, case-insensitively (ERROR finds error, not \
errors). Several WORDS must all match. A quoted argument with several words (\"connection \
refused\") is a phrase: those words in a row. --regex uses the regex crate's syntax and is \
case-sensitive unless it starts with (?i). Case: lowercase by str::to_lowercase (KEY finds key \
and the Kelvin-sign Key; STRASSE does not find straße).

Order: days oldest first; within a day as stored (a live day in write order, a sealed day \
execution by execution). --reverse is the exact reverse.

Times (--since, --until) are RFC 3339 (2026-11-25T12:00:00Z), Unix milliseconds, or a duration \
before now (10m, 2h, 1day).

Exit codes: 0 matches, 1 no match, 2 error (bad regex, no store, I/O).")]
pub struct Args {
    /// Words that must all appear in the message; a quoted argument of several words is a
    /// phrase.
    #[arg(value_name = "WORDS")]
    words: Vec<String>,
    /// A regex the message must match.
    #[arg(long, value_name = "RE")]
    regex: Option<String>,
    /// Only entries at this level or above (DEBUG, INFO, WARN, ERROR).
    #[arg(long, value_name = "LEVEL")]
    level: Option<Level>,
    /// Only entries whose source starts with this.
    #[arg(long, value_name = "PREFIX")]
    source: Option<String>,
    /// Only entries of this task.
    #[arg(long, value_name = "TASK_ID")]
    task: Option<TaskId>,
    /// Only executions whose id starts with this.
    #[arg(long, value_name = "PREFIX")]
    execution: Option<String>,
    /// Only entries at or after this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<i64>,
    /// Only entries before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<i64>,
    /// Stop after N matches.
    #[arg(
        short = 'n',
        long = "max-count",
        visible_alias = "limit",
        value_name = "N"
    )]
    limit: Option<usize>,
    /// Newest first.
    #[arg(long)]
    reverse: bool,
    /// Print NDJSON: entries as `dump --json` prints them (with --executions, one object per
    /// execution).
    #[arg(long, conflicts_with = "count")]
    json: bool,
    /// With --json: add each hit's sequence number, `"seq"`, as `dump --json --seq` does.
    #[arg(long, requires = "json", conflicts_with = "executions")]
    seq: bool,
    /// Print only the number of matches.
    #[arg(long, conflicts_with = "executions")]
    count: bool,
    /// Print one line per matching execution: id, matches, first and last match, final state.
    #[arg(long)]
    executions: bool,
}

impl Args {
    fn search(&self) -> Search {
        Search {
            terms: self.words.clone(),
            regex: self.regex.clone(),
            filter: Filter {
                min_level: self.level,
                task_id: self.task.clone(),
                source_prefix: self.source.clone(),
                since_ms: self.since,
                until_ms: self.until,
                limit: self.limit,
                tail: None,
            },
            execution_prefix: self.execution.clone(),
            reverse: self.reverse,
        }
    }
}

/// Searches the store at `dir`. Prints its own errors, to exit with 2 rather than 1.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    match search(dir, &args) {
        Ok(matched) => Ok(ExitCode::from(if matched { 0 } else { EXIT_NO_MATCH })),
        Err(e) if is_broken_pipe(e.as_ref()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{}", error_chain(e.as_ref()));
            Ok(ExitCode::from(EXIT_SEARCH_ERROR))
        }
    }
}

/// Whether anything matched.
fn search(dir: &Path, args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let search = args.search();
    // Compiled first: a bad regex is reported even when the directory is wrong too.
    let query = search.compile()?;
    let store = super::open_for_reading(dir)?;
    if args.count {
        // Counted in the workers: no entry is built.
        let counted = store.search_count(&search)?;
        report_damage(&counted.damage);
        let mut out = Out::stdout();
        writeln!(out, "{}", counted.matches)?;
        out.flush()?;
        return Ok(counted.matches > 0);
    }
    let mut matches = store.search(&search)?;
    let mut out = Out::stdout();
    let mut found = 0u64;
    let mut by_exec = Executions::default();
    for hit in &mut matches {
        let hit = hit?;
        found += 1;
        if args.executions {
            by_exec.add(&hit);
        } else {
            if args.seq {
                write_entry_with_seq(&mut out, &hit.entry, hit.seq)?;
            } else {
                write_hit(&mut out, &hit, &query, args.json)?;
            }
        }
    }
    report_damage(matches.damage());
    if args.executions {
        by_exec.write(&mut out, &store, args.json)?;
    }
    out.flush()?;
    Ok(found > 0)
}

fn write_hit(out: &mut Out, hit: &Hit, query: &Query, json: bool) -> std::io::Result<()> {
    if json {
        return write_entry(out, &hit.entry, true);
    }
    let color = out.color;
    write!(out, "{} ", escape(hit.entry.execution_id.as_str()))?;
    let marks = if color {
        query.highlights(&hit.entry.message)
    } else {
        Vec::new()
    };
    write_human_marked(out, &hit.entry, color, &marks)
}

/// Damage goes to stderr (after the results, which it does not interrupt).
fn report_damage(damage: &[SearchDamage]) {
    let mut err = std::io::stderr();
    for d in damage {
        let _ = writeln!(
            err,
            "warning: skipped damaged data: {} (run `logstore verify`)",
            escape(&d.to_string())
        );
    }
}

/// Matches per execution, for `--executions`.
#[derive(Default)]
struct Executions {
    order: Vec<String>,
    seen: HashMap<String, (u64, i64, i64)>,
}

/// One execution in `search --executions --json`.
#[derive(Serialize)]
struct JsonExecution<'a> {
    execution_id: &'a str,
    matches: u64,
    first_match: i64,
    last_match: i64,
    /// SUCCESS, FAILED, CANCELLED, or null when no terminal entry is stored.
    final_state: Option<&'a str>,
}

impl Executions {
    fn add(&mut self, hit: &Hit) {
        let ts = hit.entry.timestamp;
        let id = hit.entry.execution_id.as_str();
        match self.seen.get_mut(id) {
            Some((n, first, last)) => {
                *n += 1;
                *first = (*first).min(ts);
                *last = (*last).max(ts);
            }
            None => {
                self.order.push(id.to_owned());
                self.seen.insert(id.to_owned(), (1, ts, ts));
            }
        }
    }

    /// In the order the executions were first met (the search's order).
    fn write(&self, out: &mut Out, store: &LogStore, json: bool) -> CmdResult {
        if self.order.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        // The final state comes from `list`, which reads the runs' terminal flags.
        let states: HashMap<String, Option<String>> = store
            .list()?
            .into_iter()
            .map(|s| (s.execution_id.as_str().to_owned(), s.final_state))
            .collect();
        let mut rows = Vec::with_capacity(self.order.len());
        for id in &self.order {
            let Some(&(n, first, last)) = self.seen.get(id) else {
                continue;
            };
            let state = states.get(id).cloned().flatten();
            if json {
                serde_json::to_writer(
                    &mut *out,
                    &JsonExecution {
                        execution_id: id,
                        matches: n,
                        first_match: first,
                        last_match: last,
                        final_state: state.as_deref(),
                    },
                )?;
                writeln!(out)?;
            } else {
                rows.push(vec![
                    escape(id).into_owned(),
                    n.to_string(),
                    format_rfc3339_ms(first),
                    format_rfc3339_ms(last),
                    state.map_or_else(|| "-".to_owned(), |s| escape(&s).into_owned()),
                ]);
            }
        }
        if !json {
            write_table(
                out,
                &["EXECUTION", "MATCHES", "FIRST MATCH", "LAST MATCH", "STATE"],
                &rows,
                &[1],
            )?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
