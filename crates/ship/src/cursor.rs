//! The shipper's durable cursor: a small JSON file saying what a target has acknowledged, one
//! per target: `DIR/ship.cursor` for ClickHouse, `DIR/ship-NAME.cursor` for a named target
//! (an OTLP receiver is `otlp` unless named otherwise). It moves only after an insert was acknowledged, and is replaced
//! atomically (write a temp file, fsync it, rename it over, fsync the directory), so after a
//! crash at any instant it holds either the old position or the new one.
//!
//! A position is per layout, because a position in one layout of a day means nothing in the
//! other: in a live-layout day it is a segment offset (runs are shipped whole, in segment order); in a
//! sealed day it is a block number (blocks are shipped whole, in file order) plus the
//! execution whose cluster the last block ended in and how many of its entries came before.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ShipError;
use logstore_store::access::sync_dir;
use logstore_store::Day;
use logstore_store::StoreError;

/// The cursor file's name in the store directory (the unnamed target: ClickHouse).
pub const CURSOR_FILE: &str = "ship.cursor";
/// The name of the shipper's retention hold (`DIR/holds/ship`): gc keeps every day it has not
/// shipped whole. A named target's hold is `ship-NAME`.
pub const HOLD: &str = "ship";

/// Whether `name` can name a target: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn check_target(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "target name {name:?} is not 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

/// The hold (and cursor stem) of a target: `ship`, or `ship-NAME`.
fn stem(target: Option<&str>) -> String {
    match target {
        None => HOLD.to_owned(),
        Some(name) => format!("{HOLD}-{name}"),
    }
}

/// The targets that have a cursor in `dir` (`None`: the unnamed one), sorted.
pub fn targets(dir: &Path) -> Result<Vec<Option<String>>, ShipError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StoreError::io("list", dir)(e).into()),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == CURSOR_FILE {
            out.push(None);
        } else if let Some(t) = name
            .strip_prefix("ship-")
            .and_then(|n| n.strip_suffix(".cursor"))
            .filter(|t| check_target(t).is_ok())
        {
            out.push(Some(t.to_owned()));
        }
    }
    out.sort();
    Ok(out)
}
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
    pub position: DayPosition,
    /// Entries acknowledged so far, in all (a re-shipped day counts again).
    pub shipped: u64,
    /// Of those, entries an OTLP receiver said it rejected (a partial success).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected: u64,
    /// When the last batch was acknowledged (Unix ms).
    pub updated_ms: i64,
    /// The target's name (`None`: the unnamed ClickHouse target, file `ship.cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A position inside one day, in the layout the day had when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "lowercase")]
pub enum DayPosition {
    /// Nothing of the day shipped yet.
    Start,
    /// A day in the live layout (a segment and its index; `"layout": "v1"` in the cursor
    /// file, the name of the first layout): everything before this segment offset is shipped.
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
        /// Every entry numbered below this is shipped: the first number of the last shipped
        /// run (0: none known). When the segment becomes a part, its entries below it are not
        /// sent again, so what is sent twice is at most one flush batch.
        #[serde(default, skip_serializing_if = "is_zero")]
        floor: u64,
    },
    /// A day with sealed files (parts, or the whole sealed day): the blocks before `block`
    /// are shipped, and then, once every block is, the live segment after them.
    Sealed {
        /// The next block to ship.
        block: u64,
        /// The execution whose entries ended the last shipped block.
        exec: Option<String>,
        /// How many entries of `exec` in this day came before `block`.
        ordinal: u32,
        /// Every entry numbered below this is shipped (see `V1::floor`): blocks from `block`
        /// on skip such entries, shipped from the live segment they were in.
        #[serde(default, skip_serializing_if = "is_zero")]
        floor: u64,
        /// Where shipping of the day's first live segment stands, once every block before it
        /// is shipped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<Live>,
    },
}

/// A position in the live segment after a day's sealed files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    /// The segment's number in the day.
    pub segment: u32,
    /// Segment offset after the last shipped run.
    pub offset: u64,
    /// Index entries (runs) shipped.
    pub runs: u64,
    /// The number of the last record before `offset`.
    pub end_seq: u64,
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
            position: DayPosition::Start,
            shipped: 0,
            rejected: 0,
            updated_ms: 0,
            target: None,
        }
    }

    /// `DIR/ship.cursor`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CURSOR_FILE)
    }

    /// The cursor file of `target`: `DIR/ship.cursor`, or `DIR/ship-NAME.cursor`.
    pub fn path_of(dir: &Path, target: Option<&str>) -> PathBuf {
        match target {
            None => Cursor::path(dir),
            Some(_) => dir.join(format!("{}.cursor", stem(target))),
        }
    }

    /// This cursor's file.
    pub fn file(&self, dir: &Path) -> PathBuf {
        Cursor::path_of(dir, self.target.as_deref())
    }

    /// Reads the cursor of the store at `dir`; `None` if there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Cursor>, ShipError> {
        Cursor::load_of(dir, None)
    }

    /// Reads the cursor of `target` in the store at `dir`; `None` if there is none yet.
    pub fn load_of(dir: &Path, target: Option<&str>) -> Result<Option<Cursor>, ShipError> {
        let path = Cursor::path_of(dir, target);
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
        let mut cursor: Cursor = serde_json::from_str(&text).map_err(|e| ShipError::Cursor {
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
        // The file's name says whose it is.
        cursor.target = target.map(str::to_owned);
        Ok(Some(cursor))
    }

    /// Replaces the cursor file atomically and durably.
    pub fn save(&self, dir: &Path) -> Result<(), ShipError> {
        let path = self.file(dir);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
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
        let why = match &self.target {
            None => "`logstore ship` has not shipped yet".to_owned(),
            Some(t) => format!("`logstore ship` to target {t} has not shipped yet"),
        };
        logstore_store::set_hold(dir, &stem(self.target.as_deref()), through, &why)?;
        Ok(())
    }

    /// The day every earlier day is shipped through, parsed.
    pub fn done_through_day(&self, dir: &Path) -> Result<Option<Day>, ShipError> {
        self.done_through
            .as_deref()
            .map(|d| parse_day(&self.file(dir), d))
            .transpose()
    }

    /// The day being shipped, parsed.
    pub fn current_day(&self, dir: &Path) -> Result<Option<Day>, ShipError> {
        self.day
            .as_deref()
            .map(|d| parse_day(&self.file(dir), d))
            .transpose()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
        c.position = DayPosition::V1 {
            offset: 16,
            runs: 0,
            end_seq: 9,
            floor: 7,
        };
        c.save(dir.path()).unwrap();
        c.position = DayPosition::Sealed {
            block: 3,
            exec: Some("e1".to_owned()),
            ordinal: 7,
            floor: 0,
            live: None,
        };
        c.save(dir.path()).unwrap();
        assert_eq!(Cursor::load(dir.path()).unwrap(), Some(c.clone()));
        c.position = DayPosition::Sealed {
            block: 5,
            exec: None,
            ordinal: 0,
            floor: 1000,
            live: Some(Live {
                segment: 2,
                offset: 32,
                runs: 1,
                end_seq: 1003,
            }),
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
