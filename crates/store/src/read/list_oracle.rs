//! The oracle of the one lister (`listing.rs`): the listing as it was before, every record and
//! run summed by hash, oldest first. Tests compare [`LogStore::list`] with it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::error::Result;
use crate::read::summary::{final_state, first_id, ExecutionSummary, Terminal};
use crate::sealed::layout::state_name;
use crate::{ExecutionId, LogStore};

/// One execution's totals as one day holds them.
struct Piece {
    hash: u64,
    min_ts: i64,
    max_ts: i64,
    entries: u64,
    errors: u64,
    terminal: Option<Terminal>,
}

impl LogStore {
    /// The listing as it was before there was one lister: every record and run summed by
    /// hash, oldest first. Kept as the oracle of [`LogStore::list`].
    pub(crate) fn list_oracle(&self) -> Result<Vec<ExecutionSummary>> {
        self.refresh_days()?;
        let mut by_hash: HashMap<u64, (ExecutionSummary, Option<Terminal>)> = HashMap::new();
        let days = self.days();
        for (di, day) in days.iter().enumerate() {
            let mut add =
                |piece: Piece, id: &mut dyn FnMut() -> Result<Option<ExecutionId>>| -> Result<()> {
                    let slot = match by_hash.entry(piece.hash) {
                        Entry::Occupied(o) => o.into_mut(),
                        Entry::Vacant(v) => {
                            // A run whose first record is damaged names no execution; a later run
                            // of the same hash will.
                            let Some(id) = id()? else { return Ok(()) };
                            v.insert((
                                ExecutionSummary {
                                    execution_id: id,
                                    first_ts: piece.min_ts,
                                    last_ts: piece.max_ts,
                                    entries: 0,
                                    errors: 0,
                                    final_state: None,
                                },
                                None,
                            ))
                        }
                    };
                    let s = &mut slot.0;
                    s.first_ts = s.first_ts.min(piece.min_ts);
                    s.last_ts = s.last_ts.max(piece.max_ts);
                    s.entries += piece.entries;
                    s.errors += piece.errors;
                    if piece.terminal.is_some() {
                        slot.1 = piece.terminal;
                    }
                    Ok(())
                };
            if let Some(sealed) = day.sealed() {
                let mut records = Vec::new();
                sealed.for_each_record(|r| records.push(r))?;
                for r in records {
                    let piece = Piece {
                        hash: r.hash,
                        min_ts: r.min_ts,
                        max_ts: r.max_ts,
                        entries: u64::from(r.entries),
                        errors: u64::from(r.errors),
                        terminal: state_name(r.state).map(Terminal::State),
                    };
                    add(piece, &mut || {
                        Ok(sealed.name(&r)?.map(|n| ExecutionId::from_checked(&n)))
                    })?;
                }
            }
            day.for_each_run(&mut |run| {
                let piece = Piece {
                    hash: run.hash,
                    min_ts: run.min_ts,
                    max_ts: run.max_ts,
                    entries: u64::from(run.count),
                    errors: u64::from(run.errors),
                    terminal: run.is_terminal().then_some(Terminal::Run(di, run)),
                };
                add(piece, &mut || first_id(day, &run))
            })?;
        }
        let mut out = Vec::with_capacity(by_hash.len());
        for (_, (mut s, terminal)) in by_hash {
            s.final_state = match terminal {
                Some(Terminal::Run(di, run)) => final_state(&days[di], &run)?,
                Some(Terminal::State(name)) => Some(name.to_owned()),
                None => None,
            };
            out.push(s);
        }
        out.sort_by(|a, b| (a.first_ts, &a.execution_id).cmp(&(b.first_ts, &b.execution_id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Clock, Config, Durability, Level, LogEntry, LogStore, ManualClock, TaskId};

    const DAY: i64 = 86_400_000;

    /// Two past days sealed whole, today in parts and a live segment, executions across
    /// midnights and parts, terminal entries in every layout.
    fn store(dir: &std::path::Path) -> LogStore {
        let clock = ManualClock::new(1_768_046_400_000 - 2 * DAY);
        let config = Config {
            part_bytes: 4096,
            clock: std::sync::Arc::new(clock.clone()),
            ..Config::default()
        };
        let store = LogStore::open_with(dir, config).unwrap();
        for day in 0..3 {
            for i in 0..300u32 {
                let exec = format!("e{}", (i * 7 + day * 3) % 23);
                let mut e = LogEntry::new(
                    exec.parse().unwrap(),
                    clock.now_ms() + i64::from(i),
                    if i % 11 == 0 {
                        Level::Error
                    } else {
                        Level::Info
                    },
                    "worker",
                    format!("line {i} of day {day}"),
                );
                if i % 5 == 0 {
                    e.task_id = Some(TaskId::new("t").unwrap());
                }
                if i % 37 == 36 {
                    let state = serde_json::json!({"state": "SUCCESS"});
                    e = LogEntry::new(
                        e.execution_id.clone(),
                        e.timestamp,
                        Level::Info,
                        "scheduler",
                        "done",
                    )
                    .with_metadata(state.as_object().cloned().unwrap());
                }
                store.append(&e).unwrap();
            }
            store.flush(Durability::Written).unwrap();
            clock.advance(DAY);
        }
        store.seal().unwrap();
        store
    }

    #[test]
    fn the_lister_lists_what_the_oracle_sums() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let oracle = store.list_oracle().unwrap();
        assert!(oracle.len() > 20, "{} executions", oracle.len());
        assert!(oracle.iter().any(|s| s.final_state.is_some()));
        assert_eq!(store.list().unwrap(), oracle);
        drop(store);
        let reader = LogStore::open_read_only(dir.path()).unwrap();
        assert_eq!(reader.list().unwrap(), reader.list_oracle().unwrap());
    }
}
