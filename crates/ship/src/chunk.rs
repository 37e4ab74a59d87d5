//! What a day reader (the segment reader in `source.rs`, the sealed reader in
//! `sealed_source.rs`) is asked for and hands back: the bounds of one read, the chunk of rows it
//! read, and the day as ClickHouse's `Date`.

use std::path::Path;

use super::cursor::DayPosition;
use logstore_store::Day;
use logstore_store::{Result, StoreError};

/// Bounds of one read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop adding runs once this many entries were read.
    pub entries: usize,
    /// Stop adding runs once this many bytes of rows were encoded.
    pub bytes: usize,
}

/// Rows read from one day, and where the day's reading stands after them.
#[derive(Debug)]
pub struct Chunk {
    /// Entries encoded.
    pub entries: usize,
    /// Smallest timestamp among them.
    pub min_ts: Option<i64>,
    /// The position after them.
    pub end: DayPosition,
}

/// The day as ClickHouse's `Date` (days since 1970-01-01 in a `UInt16`).
pub(crate) fn day_u16(day: Day, file: &Path) -> Result<u16> {
    u16::try_from(day.0).map_err(|_| StoreError::Corrupt {
        file: file.to_owned(),
        offset: 0,
        reason: format!("day {day} is outside ClickHouse's Date range (1970..2149)"),
    })
}
