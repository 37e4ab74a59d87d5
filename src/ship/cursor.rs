//! The shipper's durable cursor: `DIR/ship.cursor`, a small JSON file saying what ClickHouse
//! has acknowledged. It moves only after an insert was acknowledged, and is replaced
//! atomically (write a temp file, fsync it, rename it over, fsync the directory), so after a
//! crash at any instant it holds either the old position or the new one.
//!
//! A position is per layout, because a position in one layout of a day means nothing in the
//! other: in a v1 day it is a segment offset (runs are shipped whole, in segment order); in a
//! sealed day it is a block number (blocks are shipped whole, in file order) plus the
//! execution whose cluster the last block ended in and how many of its entries came before.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ShipError;
use crate::store::day::Day;
use crate::store::index::sync_dir;
use crate::StoreError;

/// The cursor file's name in the store directory.
pub const CURSOR_FILE: &str = "ship.cursor";
/// The name of the shipper's retention hold (`DIR/holds/ship`): gc keeps every day it has not
/// shipped whole.
pub const HOLD: &str = "ship";

/// Where shipping stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Format of this file.
    pub version: u32,
    /// The node name the rows carry. Shipping the same store under another name would store
    /// every entry twice, so a cursor refuses a different one.
    pub node: String,
    /// The database the rows went to.
    pub database: String,
    /// Every day up to and including this one (`YYYY-MM-DD`) is shipped whole.
    pub done_through: Option<String>,
    /// The day being shipped, and how far.
    pub day: Option<String>,
    /// The position in `day`.
    pub position: Position,
    /// Entries acknowledged so far, in all (a re-shipped day counts again).
    pub shipped: u64,
    /// When the last batch was acknowledged (Unix ms).
    pub updated_ms: i64,
}

/// A position inside one day, in the layout the day had when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "lowercase")]
pub enum Position {
    /// Nothing of the day shipped yet.
    Start,
    /// A v1 segment: everything before this segment offset is shipped.
    V1 {
        /// Segment offset after the last shipped run.
        offset: u64,
        /// Index entries (runs) shipped: where to resume reading the live index.
        runs: u64,
        /// The sequence number of the last record before `offset` (0: unknown, a cursor from
        /// before numbers). On resume, the record ending at `offset` must still have it: if a
        /// power cut took back records the shipper had sent, the segment's tail was rewritten
        /// and the shipper starts the segment again (its rows are keyed, so nothing doubles).
        #[serde(default)]
        end_seq: u64,
    },
    /// A sealed day: the blocks before `block` are shipped.
    Sealed {
        /// The next block to ship.
        block: u64,
        /// The execution whose entries ended the last shipped block.
        exec: Option<String>,
        /// How many entries of `exec` in this day came before `block`.
        ordinal: u32,
    },
}

impl Cursor {
    /// A cursor that has shipped nothing.
    pub fn new(node: &str, database: &str) -> Cursor {
        Cursor {
            version: 1,
            node: node.to_owned(),
            database: database.to_owned(),
            done_through: None,
            day: None,
            position: Position::Start,
            shipped: 0,
            updated_ms: 0,
        }
    }

    /// `DIR/ship.cursor`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CURSOR_FILE)
    }

    /// Reads the cursor of the store at `dir`; `None` if there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Cursor>, ShipError> {
        let path = Cursor::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ShipError::Cursor {
                    path,
                    reason: format!("cannot read it: {e}"),
                })
            }
        };
        let cursor: Cursor = serde_json::from_str(&text).map_err(|e| ShipError::Cursor {
            path: path.clone(),
            reason: format!(
                "not a valid cursor ({e}); move it away to ship the store again from the start"
            ),
        })?;
        if cursor.version != 1 {
            return Err(ShipError::Cursor {
                path,
                reason: format!(
                    "cursor version {} is not one this logstore reads",
                    cursor.version
                ),
            });
        }
        for day in [&cursor.done_through, &cursor.day].into_iter().flatten() {
            parse_day(&path, day)?;
        }
        Ok(Some(cursor))
    }

    /// Replaces the cursor file atomically and durably.
    pub fn save(&self, dir: &Path) -> Result<(), ShipError> {
        let path = Cursor::path(dir);
        let tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(|e| ShipError::Cursor {
            path: path.clone(),
            reason: format!("cannot serialize: {e}"),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
        f.write_all(&text).map_err(StoreError::io("write", &tmp))?;
        f.sync_all().map_err(StoreError::io("fsync", &tmp))?;
        drop(f);
        let first = !path.exists();
        std::fs::rename(&tmp, &path).map_err(StoreError::io("rename", &tmp))?;
        sync_dir(dir)?;
        if first {
            // From the first cursor on, gc keeps what is not shipped.
            self.hold(dir)?;
        }
        Ok(())
    }

    /// Sets the shipper's retention hold to the days this cursor is done with, so that `gc`
    /// never deletes a day before it is shipped whole.
    pub fn hold(&self, dir: &Path) -> Result<(), ShipError> {
        let through = self.done_through_day(dir)?;
        crate::store::holds::set_hold(dir, HOLD, through, "`logstore ship` has not shipped yet")?;
        Ok(())
    }

    /// The day every earlier day is shipped through, parsed.
    pub fn done_through_day(&self, dir: &Path) -> Result<Option<Day>, ShipError> {
        self.done_through
            .as_deref()
            .map(|d| parse_day(&Cursor::path(dir), d))
            .transpose()
    }

    /// The day being shipped, parsed.
    pub fn current_day(&self, dir: &Path) -> Result<Option<Day>, ShipError> {
        self.day
            .as_deref()
            .map(|d| parse_day(&Cursor::path(dir), d))
            .transpose()
    }
}

fn parse_day(path: &Path, text: &str) -> Result<Day, ShipError> {
    text.parse().map_err(|_| ShipError::Cursor {
        path: path.to_owned(),
        reason: format!("{text:?} is not a day (YYYY-MM-DD)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Cursor::load(dir.path()).unwrap(), None);
        let mut c = Cursor::new("n1", "logstore");
        c.day = Some("2026-11-25".to_owned());
        c.position = Position::V1 {
            offset: 16,
            runs: 0,
            end_seq: 9,
        };
        c.save(dir.path()).unwrap();
        c.position = Position::Sealed {
            block: 3,
            exec: Some("e1".to_owned()),
            ordinal: 7,
        };
        c.save(dir.path()).unwrap();
        assert_eq!(Cursor::load(dir.path()).unwrap(), Some(c));
        let names = |d: &Path| -> Vec<_> {
            let mut n: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(dir.path()), ["holds", CURSOR_FILE]);
        // The first save set the shipper's retention hold, and left no temporary file either.
        assert_eq!(names(&dir.path().join("holds")), [HOLD]);
    }

    #[test]
    fn a_damaged_cursor_is_an_error_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Cursor::path(dir.path()), "{\"version\":1,").unwrap();
        let err = Cursor::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("ship.cursor") && err.contains("not a valid cursor"),
            "{err}"
        );
    }
}
