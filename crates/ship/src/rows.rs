//! A batch of rows in its target's encoding: RowBinary for ClickHouse, OTLP log records for an
//! OpenTelemetry receiver. The day readers push entries with their keys; the shipper sends the
//! batch whole.

use super::otlp::Records;
use super::schema::{encode_row, RowKey};
use logstore_store::access::PayloadRef;

/// Rows of one batch.
#[derive(Debug)]
pub enum Rows {
    /// ClickHouse's RowBinary, columns as in `schema::INSERT_COLUMNS`.
    RowBinary(Vec<u8>),
    /// OTLP log records.
    Otlp(Records),
}

impl Rows {
    /// Appends the row of a stored entry; false (nothing appended) when its level byte is
    /// unknown.
    pub fn push_payload(&mut self, key: RowKey<'_>, p: &PayloadRef<'_>) -> bool {
        let Some(level) = p.level() else {
            return false;
        };
        match self {
            Rows::RowBinary(out) => encode_row(out, key, p, level),
            Rows::Otlp(records) => records.push(key, p, level),
        }
        true
    }

    /// About how many bytes the batch holds.
    pub fn bytes(&self) -> usize {
        match self {
            Rows::RowBinary(out) => out.len(),
            Rows::Otlp(records) => records.bytes(),
        }
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        match self {
            Rows::RowBinary(out) => out.clear(),
            Rows::Otlp(records) => records.clear(),
        }
    }
}
