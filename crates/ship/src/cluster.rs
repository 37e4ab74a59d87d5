//! A ClickHouse cluster as the shipper sees it: the servers' `remote_servers` name the shards,
//! `logs` is a `Distributed` table over every shard's `logs_local`, and every insert is
//! synchronous (`schema::Features::insert_settings`), so an acknowledged batch is on its
//! shards. `docs/FLEET.md` explains the choice.

use super::clickhouse::{quote, ClickHouse};
use super::error::ShipError;
use super::schema::{LOCAL_TABLE, TABLE};

/// Checks that the server knows `cluster` in its `remote_servers`, and that it has shards.
pub fn check_cluster(ch: &ClickHouse, cluster: &str) -> Result<u64, ShipError> {
    let shards = ch.execute(&format!(
        "SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = {}",
        quote(cluster)
    ))?;
    match shards.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ShipError::MissingSchema {
            url: ch.url().to_owned(),
            what: format!("cluster {cluster} in its remote_servers"),
            message: "system.clusters has no such cluster (see docs/FLEET.md for an example remote_servers config)".to_owned(),
        }),
    }
}

/// The engine of `database.table`, or `None` when there is no such table.
pub fn table_engine(
    ch: &ClickHouse,
    database: &str,
    table: &str,
) -> Result<Option<String>, ShipError> {
    let engine = ch.execute(&format!(
        "SELECT engine FROM system.tables WHERE database = {} AND name = {}",
        quote(database),
        quote(table)
    ))?;
    let engine = engine.trim();
    Ok((!engine.is_empty()).then(|| engine.to_owned()))
}

/// The error for a `logs` table that is not the `Distributed` table a cluster needs.
pub fn not_distributed(ch: &ClickHouse, database: &str, cluster: &str, engine: &str) -> ShipError {
    ShipError::MissingSchema {
        url: ch.url().to_owned(),
        what: format!("Distributed table {database}.{TABLE} over cluster {cluster}"),
        message: format!(
            "{database}.{TABLE} is a {engine} table (from shipping to one server?): rename it to {LOCAL_TABLE} to make it this server's shard, then run `logstore ship --cluster {cluster} --init`"
        ),
    }
}

/// Checks that `database.logs` is a `Distributed` table over `cluster`.
pub fn check_distributed(ch: &ClickHouse, database: &str, cluster: &str) -> Result<(), ShipError> {
    let full = ch.execute(&format!(
        "SELECT engine, engine_full FROM system.tables WHERE database = {} AND name = {}",
        quote(database),
        quote(TABLE)
    ))?;
    let (engine, engine_full) = full.trim().split_once('\t').unwrap_or((full.trim(), ""));
    if engine != "Distributed" {
        return Err(not_distributed(ch, database, cluster, engine));
    }
    // `Distributed(cluster, database, table, key)`, the cluster quoted or not.
    let named = engine_full
        .strip_prefix("Distributed(")
        .and_then(|rest| rest.split(',').next())
        .map(|c| c.trim().trim_matches(['\'', '`', '"']));
    if named != Some(cluster) {
        return Err(ShipError::MissingSchema {
            url: ch.url().to_owned(),
            what: format!("Distributed table {database}.{TABLE} over cluster {cluster}"),
            message: format!("it is {engine_full}"),
        });
    }
    Ok(())
}
