//! The ClickHouse table: its columns, the statements that create it on each server version, and
//! the RowBinary encoding of one entry as a row. `docs/FLEET.md` documents all of it.
//!
//! The row key is `(execution_id, day, node, seq, ordinal)`. An entry with a sequence number
//! (every entry a version-2 segment holds) is identified by `(node, seq)` alone, its `ordinal`
//! 0: numbers are unique per store and never reused, so a key never moves, whatever a power cut
//! took back or however execution hashes collide. An entry written before numbers existed has
//! `seq` 0 and the old key, its position among that execution's entries of that day. Every
//! layout of a day gives an entry the same key, so an entry sent twice (after a crash, or once
//! from each layout) collapses under `ReplacingMergeTree` when read with `FINAL`.

use super::clickhouse::{ClickHouse, Version};
use super::error::ShipError;
use crate::{Level, LogEntry};

/// The table's name inside the database.
pub const TABLE: &str = "logs";

/// Columns the shipper writes, in RowBinary order. (`Timestamp` is computed by the server.)
pub const INSERT_COLUMNS: &str = "node, day, execution_id, ordinal, seq, timestamp_ms, SeverityText, SeverityNumber, source, task_id, Body, Attributes";

/// What the server supports beyond ClickHouse 18.16, decided once per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// The version, as `SELECT version()` gave it.
    pub version: Version,
    /// `LowCardinality(String)` without an experimental flag, data-skipping indexes
    /// (`tokenbf_v1` on the body, `minmax` on the time): ClickHouse 20.1 and later.
    pub modern_types: bool,
    /// `non_replicated_deduplication_window`: a plain MergeTree drops a block identical to one
    /// of the last N inserted, so a batch re-sent after a lost answer is not stored twice.
    pub insert_dedup: bool,
}

impl Features {
    /// Asks the server.
    pub fn detect(ch: &ClickHouse) -> Result<Features, ShipError> {
        let version = ch.version()?;
        let dedup = ch.execute(
            "SELECT count() FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window'",
        )?;
        Ok(Features {
            version,
            modern_types: version.major >= 20,
            insert_dedup: dedup.trim() == "1",
        })
    }
}

/// The statements that create the database and the table if they are missing.
pub fn create_statements(database: &str, features: Features) -> [String; 2] {
    [
        format!("CREATE DATABASE IF NOT EXISTS {database}"),
        create_table(database, TABLE, features),
    ]
}

/// The statements that move a table of the old key (no `seq` column) to the new one without
/// doubling a row: a new table, every old row copied into it with `seq` 0 (an entry shipped
/// under the old key was written before numbers existed, so re-shipping it gives that same
/// key), then both renamed at once. The old table stays as `logs_before_seq`.
pub fn migrate_statements(database: &str, features: Features) -> [String; 3] {
    let cols = "node, day, execution_id, ordinal, timestamp_ms, SeverityText, SeverityNumber, source, task_id, Body, Attributes";
    [
        create_table(database, "logs_with_seq", features),
        format!("INSERT INTO {database}.logs_with_seq ({cols}, seq) SELECT {cols}, 0 FROM {database}.{TABLE}"),
        format!("RENAME TABLE {database}.{TABLE} TO {database}.logs_before_seq, {database}.logs_with_seq TO {database}.{TABLE}"),
    ]
}

/// `CREATE TABLE IF NOT EXISTS database.table` with the shipper's columns and key.
fn create_table(database: &str, table: &str, features: Features) -> String {
    let lc = |t: &str| {
        if features.modern_types {
            format!("LowCardinality({t})")
        } else {
            t.to_owned()
        }
    };
    let indexes = if features.modern_types {
        ",\n    INDEX body_words Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1,\n    INDEX time_range Timestamp TYPE minmax GRANULARITY 1"
    } else {
        ""
    };
    let settings = if features.insert_dedup {
        "\nSETTINGS non_replicated_deduplication_window = 1000"
    } else {
        ""
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n    \
             node           {node},\n    \
             day            Date,\n    \
             execution_id   String,\n    \
             ordinal        UInt32,\n    \
             seq            UInt64,\n    \
             timestamp_ms   Int64,\n    \
             Timestamp      DateTime MATERIALIZED toDateTime(intDiv(timestamp_ms, 1000)),\n    \
             SeverityText   {sev},\n    \
             SeverityNumber UInt8,\n    \
             source         {source},\n    \
             task_id        String,\n    \
             Body           String,\n    \
             Attributes     String{indexes}\n)\n\
             ENGINE = ReplacingMergeTree()\n\
             PARTITION BY day\n\
             ORDER BY (execution_id, day, node, seq, ordinal){settings}",
        node = lc("String"),
        sev = lc("String"),
        source = lc("String"),
    )
}

/// The OpenTelemetry severity number of a level (DEBUG 5, INFO 9, WARN 13, ERROR 17).
pub fn severity_number(level: Level) -> u8 {
    match level {
        Level::Debug => 5,
        Level::Info => 9,
        Level::Warn => 13,
        Level::Error => 17,
    }
}

/// Where a row comes from: the rest of its key.
#[derive(Debug, Clone, Copy)]
pub struct RowKey<'a> {
    /// The node.
    pub node: &'a str,
    /// The store day, as days since 1970-01-01.
    pub day: u16,
    /// Position among the execution's entries of that day; 0 for an entry with a number.
    pub ordinal: u32,
    /// The entry's sequence number; 0 for an entry written before numbers existed.
    pub seq: u64,
}

impl RowKey<'_> {
    /// The key of an entry numbered `seq` (0: none) at `ordinal`: a numbered entry is keyed
    /// by its number alone.
    pub fn of(node: &str, day: u16, ordinal: u32, seq: u64) -> RowKey<'_> {
        RowKey {
            node,
            day,
            ordinal: if seq == 0 { ordinal } else { 0 },
            seq,
        }
    }
}

/// The fields of one entry as stored (borrowed from a frame or from a decoded entry).
#[derive(Debug, Clone, Copy)]
pub struct RowFields<'a> {
    /// Execution id.
    pub execution_id: &'a str,
    /// Unix ms.
    pub timestamp: i64,
    /// Level.
    pub level: Level,
    /// Source.
    pub source: &'a str,
    /// Message.
    pub message: &'a str,
    /// Task id.
    pub task_id: Option<&'a str>,
    /// Metadata as JSON object text, exactly as stored.
    pub metadata: Option<&'a str>,
}

/// Appends the row of a stored entry; false (nothing appended) when its level byte is unknown.
pub(crate) fn encode_payload(
    out: &mut Vec<u8>,
    key: RowKey<'_>,
    p: &crate::store::record::PayloadRef<'_>,
) -> bool {
    let Some(level) = p.level() else {
        return false;
    };
    encode_row(
        out,
        key,
        RowFields {
            execution_id: p.execution_id,
            timestamp: p.timestamp,
            level,
            source: p.source,
            message: p.message,
            task_id: p.task_id,
            metadata: p.metadata,
        },
    );
    true
}

/// Appends one row in RowBinary, columns as in [`INSERT_COLUMNS`].
pub fn encode_row(out: &mut Vec<u8>, key: RowKey<'_>, f: RowFields<'_>) {
    put_str(out, key.node);
    out.extend_from_slice(&key.day.to_le_bytes());
    put_str(out, f.execution_id);
    out.extend_from_slice(&key.ordinal.to_le_bytes());
    out.extend_from_slice(&key.seq.to_le_bytes());
    out.extend_from_slice(&f.timestamp.to_le_bytes());
    put_str(out, f.level.as_str());
    out.push(severity_number(f.level));
    put_str(out, f.source);
    put_str(out, f.task_id.unwrap_or(""));
    put_str(out, f.message);
    put_str(out, f.metadata.unwrap_or(""));
}

/// A RowBinary string: LEB128 length, then the bytes.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

/// The columns a fleet read selects, in the order [`read_entry`] decodes them.
pub const SELECT_COLUMNS: &str =
    "execution_id, timestamp_ms, SeverityText, source, Body, task_id, Attributes";

/// Reads one row of [`SELECT_COLUMNS`] in RowBinary; `None` at a clean end of the stream.
pub fn read_entry(r: &mut impl std::io::BufRead) -> Result<Option<LogEntry>, String> {
    if r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let execution_id = get_str(r)?;
    let mut ts = [0u8; 8];
    r.read_exact(&mut ts).map_err(|e| e.to_string())?;
    let level: Level = get_str(r)?.parse().map_err(|e| format!("{e}"))?;
    let source = get_str(r)?;
    let message = get_str(r)?;
    let task = get_str(r)?;
    let metadata = get_str(r)?;
    let mut entry = LogEntry::new(
        execution_id.parse().map_err(|e| format!("{e}"))?,
        i64::from_le_bytes(ts),
        level,
        source,
        message,
    );
    if !task.is_empty() {
        entry.task_id = Some(task.parse().map_err(|e| format!("{e}"))?);
    }
    if !metadata.is_empty() {
        entry.metadata = Some(crate::metadata_from_json(&metadata).map_err(|e| format!("{e}"))?);
    }
    Ok(Some(entry))
}

fn get_str(r: &mut impl std::io::Read) -> Result<String, String> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map_err(|e| e.to_string())?;
        len |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 56 {
            return Err("string length varint too long".to_owned());
        }
    }
    // Every field we stored is at most 256 KiB (metadata); more is not our row.
    if len > (1 << 20) {
        return Err(format!(
            "a string of {len} bytes is longer than any stored field"
        ));
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    r.read_exact(&mut buf).map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|_| "a string is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_use_leb128_lengths() {
        let mut out = Vec::new();
        put_str(&mut out, &"a".repeat(300));
        assert_eq!(&out[..2], &[0xac, 0x02]);
        assert_eq!(get_str(&mut &out[..]).unwrap().len(), 300);
    }

    #[test]
    fn the_18_16_schema_uses_no_newer_feature() {
        let old = Features {
            version: Version {
                major: 18,
                minor: 16,
            },
            modern_types: false,
            insert_dedup: false,
        };
        let [db, table] = create_statements("logstore", old);
        assert_eq!(db, "CREATE DATABASE IF NOT EXISTS logstore");
        for newer in ["LowCardinality", "INDEX", "SETTINGS"] {
            assert!(!table.contains(newer), "{table}");
        }
        let new = Features {
            version: Version {
                major: 24,
                minor: 8,
            },
            modern_types: true,
            insert_dedup: true,
        };
        let [_, table] = create_statements("logstore", new);
        assert!(
            table.contains("tokenbf_v1") && table.contains("non_replicated_deduplication_window")
        );
        assert!(table.contains("ORDER BY (execution_id, day, node, seq, ordinal)"));
    }
}
