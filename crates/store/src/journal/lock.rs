//! The writer lock: an flock on `DIR/LOCK` that holds the writer's pid.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Result, StoreError};

/// The held writer lock. Dropping it unlocks explicitly rather than relying on the close: an
/// flock belongs to the open file description, and a child forked by another thread of this
/// process (`Command::spawn`) holds a copy of the descriptor until it execs, so a close alone
/// can leave the lock held for a moment after the store is gone, and a reopen in that moment
/// is refused with our own pid. `LOCK_UN` on any copy releases it for all of them.
#[derive(Debug)]
pub(crate) struct WriterLock(File);

impl Drop for WriterLock {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock() {
            tracing::warn!(error = %e, "logstore: unlocking the writer lock failed; it is released when the file closes");
        }
    }
}

/// Takes the writer lock on `dir`, writing our pid into the lock file.
pub(crate) fn take_lock(dir: &Path) -> Result<WriterLock> {
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(StoreError::io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                dir: dir.to_owned(),
                holder: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io("lock", &path)(e)),
    }
    let lock = WriterLock(file);
    lock.0
        .set_len(0)
        .map_err(StoreError::io("write lock file", &path))?;
    lock.0
        .write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        .map_err(StoreError::io("write lock file", &path))?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_lock_is_free_while_a_copy_of_its_descriptor_lives() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = take_lock(dir.path()).expect("first lock");
        // What a child forked by another thread holds until it execs.
        let forked_copy = lock.0.try_clone().expect("dup");
        match take_lock(dir.path()) {
            Err(StoreError::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("a second lock while the first is held: {other:?}"),
        }
        drop(lock);
        let again = take_lock(dir.path());
        assert!(again.is_ok(), "{again:?}");
        drop(forked_copy);
    }
}
