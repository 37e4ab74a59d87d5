//! Retention holds: named low-water marks that `gc` honours.
//!
//! A consumer of the store that must see every day before it is deleted (the shipper, or any
//! tool an engine adds) keeps a hold: `DIR/holds/NAME`, two lines of text,
//!
//! ```text
//! 2026-11-25                                   the last day it is done with ("-": none yet)
//! `logstore ship` has not shipped yet           what gc says of a day the hold keeps
//! ```
//!
//! `gc` deletes a day only if every hold is done with it (`gc --force` ignores them). The store
//! knows nothing of who holds what: the holder writes and removes its file. A hold is written
//! to a temporary file, fsynced and renamed, so a crash leaves the old hold or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::fs::sync_dir;

/// One hold, as read from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Its name (the file name).
    pub name: String,
    /// The last day its holder is done with; `None`: none yet.
    pub through: Option<Day>,
    /// What `gc` says of a day this hold keeps ("`logstore ship` has not shipped yet").
    pub reason: String,
}

fn holds_dir(dir: &Path) -> PathBuf {
    dir.join("holds")
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StoreError::InvalidHold(format!(
            "hold name {name:?}: 1 to 64 of [A-Za-z0-9_-]"
        )));
    }
    Ok(())
}

/// Sets hold `name` of the store in `dir`: its holder is done with every day through
/// `through` (none yet: `None`). `reason` is what `gc` says of a day it keeps.
pub fn set_hold(dir: &Path, name: &str, through: Option<Day>, reason: &str) -> Result<()> {
    check_name(name)?;
    let reason = reason.lines().next().unwrap_or("").trim();
    let holds = holds_dir(dir);
    let created = !holds.is_dir();
    std::fs::create_dir_all(&holds).map_err(StoreError::io("create directory", &holds))?;
    if created {
        sync_dir(dir)?;
    }
    let path = holds.join(name);
    let tmp = holds.join(format!("{name}.tmp"));
    let text = format!(
        "{}\n{reason}\n",
        through.map_or_else(|| "-".to_owned(), |d| d.to_string())
    );
    let mut f = std::fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
    f.write_all(text.as_bytes())
        .map_err(StoreError::io("write", &tmp))?;
    f.sync_all().map_err(StoreError::io("fsync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(StoreError::io("rename", &path))?;
    sync_dir(&holds)
}

/// Removes hold `name` (nothing if it is not there).
pub fn remove_hold(dir: &Path, name: &str) -> Result<()> {
    check_name(name)?;
    let path = holds_dir(dir).join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(&holds_dir(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("delete", &path)(e)),
    }
}

/// Every hold of the store in `dir`, by name. A hold file that does not parse is an error that
/// names it: `gc` must not guess what a broken hold protects.
pub fn holds(dir: &Path) -> Result<Vec<Hold>> {
    let holds = holds_dir(dir);
    let rd = match std::fs::read_dir(&holds) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", &holds)(e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(StoreError::io("list", &holds))?;
        let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(".tmp") || check_name(&name).is_err() {
            continue;
        }
        let path = ent.path();
        let text = std::fs::read_to_string(&path).map_err(StoreError::io("read", &path))?;
        let mut lines = text.lines();
        let corrupt = |reason: String| StoreError::Corrupt {
            file: path.clone(),
            offset: 0,
            reason,
        };
        let through = match lines.next() {
            Some("-") => None,
            Some(d) => Some(
                d.parse::<Day>()
                    .map_err(|e| corrupt(format!("not a retention hold: first line {d:?}: {e}")))?,
            ),
            None => return Err(corrupt("not a retention hold: empty".to_owned())),
        };
        out.push(Hold {
            name,
            through,
            reason: lines.next().unwrap_or("").to_owned(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_round_trip_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(holds(dir.path()).unwrap().is_empty());
        set_hold(dir.path(), "ship", None, "not shipped").unwrap();
        set_hold(
            dir.path(),
            "audit",
            Some(Day(20000)),
            "not audited\nsecond line",
        )
        .unwrap();
        let got = holds(dir.path()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].name.as_str(), got[0].through),
            ("audit", Some(Day(20000)))
        );
        assert_eq!(got[0].reason, "not audited");
        assert_eq!((got[1].name.as_str(), got[1].through), ("ship", None));
        assert!(set_hold(dir.path(), "../x", None, "").is_err());
        remove_hold(dir.path(), "audit").unwrap();
        assert_eq!(holds(dir.path()).unwrap().len(), 1);
        std::fs::write(dir.path().join("holds/ship"), "yesterday\n").unwrap();
        let err = holds(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("holds/ship") && err.contains("yesterday"),
            "{err}"
        );
    }
}
