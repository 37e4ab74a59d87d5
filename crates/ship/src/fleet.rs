//! Reading one execution back from ClickHouse, in the store's order and with the store's
//! filters, as `LogEntry`s: what `logstore dump --clickhouse` prints.

use std::collections::VecDeque;
use std::io::BufReader;

use super::clickhouse::{quote, ClickHouse};
use super::error::ShipError;
use super::schema::{read_entry, severity_number, SELECT_COLUMNS, TABLE};
use logstore_store::{ExecutionId, Filter, LogEntry};

/// The `SELECT` for one execution: `FINAL` (so a row shipped twice shows once), the filter as
/// `WHERE`, ordered as the store orders it (day, then position in the day).
pub fn execution_query(database: &str, id: &ExecutionId, filter: &Filter) -> String {
    let mut sql = format!(
        "SELECT {SELECT_COLUMNS} FROM {database}.{TABLE} FINAL WHERE execution_id = {}",
        quote(id.as_str())
    );
    if let Some(level) = filter.min_level {
        sql.push_str(&format!(
            " AND SeverityNumber >= {}",
            severity_number(level)
        ));
    }
    if let Some(task) = &filter.task_id {
        sql.push_str(&format!(" AND task_id = {}", quote(task.as_str())));
    }
    if let Some(prefix) = &filter.source_prefix {
        sql.push_str(&format!(" AND startsWith(source, {})", quote(prefix)));
    }
    if let Some(since) = filter.since_ms {
        sql.push_str(&format!(" AND timestamp_ms >= {since}"));
    }
    if let Some(until) = filter.until_ms {
        sql.push_str(&format!(" AND timestamp_ms < {until}"));
    }
    // Within a day, entries without a number (older) come before numbered ones, which is
    // their append order.
    sql.push_str(" ORDER BY day, node, seq, ordinal");
    if filter.tail.is_none() {
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
    }
    sql.push_str(" FORMAT RowBinary");
    sql
}

/// Streams the entries of `id` that pass `filter` to `f`, in order (`filter.tail` keeps the
/// last N). Like [`LogStore::query`](logstore_store::LogStore::query), an execution with no row at all is
/// an error; one whose rows are all filtered out gives nothing.
pub fn read_execution(
    ch: &ClickHouse,
    database: &str,
    id: &ExecutionId,
    filter: &Filter,
    mut f: impl FnMut(LogEntry) -> bool,
) -> Result<(), ShipError> {
    if !super::clickhouse::is_identifier(database) {
        return Err(ShipError::BadUrl {
            url: ch.url().to_owned(),
            reason: format!(
                "--database {database:?} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)"
            ),
        });
    }
    let stream = ch.select(&execution_query(database, id, filter))?;
    let mut reader = BufReader::with_capacity(256 << 10, stream);
    let mut tail = filter.tail.map(|_| VecDeque::new());
    let mut any = false;
    loop {
        let entry = read_entry(&mut reader).map_err(|reason| ShipError::Protocol {
            url: ch.url().to_owned(),
            reason: format!("reading the rows of execution {id}: {reason}"),
        })?;
        let Some(entry) = entry else { break };
        any = true;
        match (&mut tail, filter.tail) {
            (Some(q), Some(n)) => {
                q.push_back(entry);
                if q.len() > n {
                    q.pop_front();
                }
            }
            _ => {
                if !f(entry) {
                    return Ok(());
                }
            }
        }
    }
    if !any {
        let count = ch.execute(&format!(
            "SELECT count() FROM {database}.{TABLE} WHERE execution_id = {}",
            quote(id.as_str())
        ))?;
        if count.trim() == "0" {
            return Err(ShipError::NotInFleet {
                url: ch.url().to_owned(),
                execution_id: id.clone(),
            });
        }
    }
    for entry in tail.into_iter().flatten() {
        if !f(entry) {
            break;
        }
    }
    Ok(())
}
