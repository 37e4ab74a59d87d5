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
use logstore_store::access::PayloadRef;
use logstore_store::{Level, LogEntry};

/// The table's name inside the database: what the shipper inserts into and readers read from.
/// On a cluster it is the `Distributed` table over every shard's [`LOCAL_TABLE`].
pub const TABLE: &str = "logs";

/// On a cluster, each shard's own `ReplacingMergeTree` table.
pub const LOCAL_TABLE: &str = "logs_local";

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
    /// The setting that makes an insert into a `Distributed` table return only once every
    /// shard has its rows: `insert_distributed_sync` (18.16 on) or its newer name
    /// `distributed_foreground_insert` (24.x). `None`: the server has neither.
    pub sync_insert: Option<&'static str>,
}

impl Features {
    /// Asks the server.
    pub fn detect(ch: &ClickHouse) -> Result<Features, ShipError> {
        let version = ch.version()?;
        let dedup = ch.execute(
            "SELECT count() FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window'",
        )?;
        let sync = ch.execute(
            "SELECT name FROM system.settings WHERE name IN ('distributed_foreground_insert', 'insert_distributed_sync')",
        )?;
        let sync_insert = ["distributed_foreground_insert", "insert_distributed_sync"]
            .into_iter()
            .find(|name| sync.lines().any(|l| l.trim() == *name));
        Ok(Features {
            version,
            modern_types: version.major >= 20,
            insert_dedup: dedup.trim() == "1",
            sync_insert,
        })
    }

    /// The query settings every insert carries: synchronous distributed inserts, so that an
    /// acknowledged batch is on every shard it belongs to (harmless on a plain table).
    pub fn insert_settings(&self) -> Vec<(&'static str, &'static str)> {
        self.sync_insert.map(|s| (s, "1")).into_iter().collect()
    }
}

/// The statements that create the database and the table if they are missing. On a cluster
/// (`cluster` names one of the server's `remote_servers`), they create this server's shard,
/// [`LOCAL_TABLE`], and [`TABLE`] as a `Distributed` table over the cluster's shards, sharded by
/// a hash of `execution_id`: every row of an execution, and so every copy of a row sent twice,
/// lands on one shard, where `FINAL` collapses it.
pub fn create_statements(database: &str, features: Features, cluster: Option<&str>) -> Vec<String> {
    let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS {database}")];
    match cluster {
        None => out.push(create_table(database, TABLE, features)),
        Some(cluster) => {
            out.push(create_table(database, LOCAL_TABLE, features));
            out.push(create_distributed(database, cluster, features));
        }
    }
    out
}

/// The `Distributed` table over `cluster`'s shards. Its `Timestamp` is an `ALIAS`, computed
/// where it is read: a `MATERIALIZED` column there would be forwarded to the shards, which
/// refuse to be given one.
fn create_distributed(database: &str, cluster: &str, features: Features) -> String {
    let lc = low_cardinality(features);
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{TABLE}\n(\n{columns}\n)\n\
         ENGINE = Distributed({cluster}, {database}, {LOCAL_TABLE}, sipHash64(execution_id))",
        columns = columns(&lc, "ALIAS"),
    )
}

/// The type of `node`, `SeverityText` and `source`: dictionary-encoded where the server has it.
fn low_cardinality(features: Features) -> String {
    if features.modern_types {
        "LowCardinality(String)".to_owned()
    } else {
        "String".to_owned()
    }
}

/// The column list, with the types of the dictionary-friendly columns and how `Timestamp` is
/// computed (`MATERIALIZED` in a MergeTree, `ALIAS` in a Distributed table).
fn columns(lc: &str, computed: &str) -> String {
    format!(
        "    node           {lc},\n    \
             day            Date,\n    \
             execution_id   String,\n    \
             ordinal        UInt32,\n    \
             seq            UInt64,\n    \
             timestamp_ms   Int64,\n    \
             Timestamp      DateTime {computed} toDateTime(intDiv(timestamp_ms, 1000)),\n    \
             SeverityText   {lc},\n    \
             SeverityNumber UInt8,\n    \
             source         {lc},\n    \
             task_id        String,\n    \
             Body           String,\n    \
             Attributes     String"
    )
}

/// Whether `database.table` has the `seq` column (a table created before numbers existed does
/// not, and must be migrated by `init`).
pub fn has_seq_column(ch: &ClickHouse, database: &str, table: &str) -> Result<bool, ShipError> {
    let sql = format!(
        "SELECT count() FROM system.columns WHERE database = '{database}' AND table = '{table}' AND name = 'seq'"
    );
    Ok(ch.execute(&sql)?.trim() == "1")
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
    let lc = low_cardinality(features);
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
        "CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n{columns}{indexes}\n)\n\
             ENGINE = ReplacingMergeTree()\n\
             PARTITION BY day\n\
             ORDER BY (execution_id, day, node, seq, ordinal){settings}",
        columns = columns(&lc, "MATERIALIZED"),
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
    /// DayPosition among the execution's entries of that day; 0 for an entry with a number.
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

/// Appends one row in RowBinary, columns as in [`INSERT_COLUMNS`]: the entry `f` as stored
/// (borrowed from a frame, or built from a decoded entry), its level checked as `level`.
pub fn encode_row(out: &mut Vec<u8>, key: RowKey<'_>, f: &PayloadRef<'_>, level: Level) {
    put_str(out, key.node);
    out.extend_from_slice(&key.day.to_le_bytes());
    put_str(out, f.execution_id);
    out.extend_from_slice(&key.ordinal.to_le_bytes());
    out.extend_from_slice(&key.seq.to_le_bytes());
    out.extend_from_slice(&f.timestamp.to_le_bytes());
    put_str(out, level.as_str());
    out.push(severity_number(level));
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
        entry.metadata =
            Some(logstore_store::metadata_from_json(&metadata).map_err(|e| format!("{e}"))?);
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
            sync_insert: Some("insert_distributed_sync"),
        };
        let [db, table] = &create_statements("logstore", old, None)[..] else {
            panic!("two statements")
        };
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
            sync_insert: Some("distributed_foreground_insert"),
        };
        let [_, table] = &create_statements("logstore", new, None)[..] else {
            panic!("two statements")
        };
        assert!(
            table.contains("tokenbf_v1") && table.contains("non_replicated_deduplication_window")
        );
        assert!(table.contains("ORDER BY (execution_id, day, node, seq, ordinal)"));
    }

    #[test]
    fn a_cluster_gets_a_local_table_and_a_distributed_one_over_it() {
        let old = Features {
            version: Version {
                major: 18,
                minor: 16,
            },
            modern_types: false,
            insert_dedup: false,
            sync_insert: Some("insert_distributed_sync"),
        };
        let [db, local, dist] = &create_statements("logstore", old, Some("logs2"))[..] else {
            panic!("three statements")
        };
        assert_eq!(db, "CREATE DATABASE IF NOT EXISTS logstore");
        assert!(local.contains("logstore.logs_local") && local.contains("ReplacingMergeTree"));
        assert!(
            local.contains("Timestamp      DateTime MATERIALIZED"),
            "{local}"
        );
        assert!(dist.contains(
            "ENGINE = Distributed(logs2, logstore, logs_local, sipHash64(execution_id))"
        ));
        // A materialized column in a Distributed table would be forwarded to the shards.
        assert!(dist.contains("Timestamp      DateTime ALIAS"), "{dist}");
        assert_eq!(old.insert_settings(), [("insert_distributed_sync", "1")]);
    }
}
