//! How a store is opened: group commit, the segment size, the in-memory tail, the level a
//! finished day is kept at, and the clock.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::journal::commit::CommitPolicy;

/// How a store is opened.
#[derive(Clone)]
pub struct Config {
    /// Group commit thresholds.
    pub commit: CommitPolicy,
    /// Bytes at which the writer closes its segment and starts the next: each closed segment
    /// is sealed into a part in the background (default 64 MiB). Readers in any process read
    /// at most this much of a day in the live layout.
    pub part_bytes: u64,
    /// Bytes of the open segment's newest runs the writer keeps in memory for this process's
    /// queries and followers (`store::tail`; default 16 MiB, plus a quarter of that for the
    /// index). 0 keeps none: every read goes to the file.
    pub tail_bytes: usize,
    /// zstd level a finished day is kept at for its retention (default
    /// [`DEFAULT_DAY_LEVEL`]): the merge of its parts into its sealed file compresses every
    /// block again at it, and a day of one segment is sealed at it. Parts are sealed at level 3
    /// to keep up with ingest; at 3 or below, the day's merge copies their blocks as they are.
    /// 3 to 22: a lower level is taken as 3 (a finished day is never kept at a lower level
    /// than its parts), a higher one as zstd's highest. The costs are in docs/PERFORMANCE.md.
    pub day_level: i32,
    /// Where "now" comes from (the day of a write, the age of the buffer).
    pub clock: Arc<dyn Clock>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            commit: CommitPolicy::default(),
            part_bytes: DEFAULT_PART_BYTES,
            tail_bytes: DEFAULT_TAIL_BYTES,
            day_level: DEFAULT_DAY_LEVEL,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("commit", &self.commit)
            .field("part_bytes", &self.part_bytes)
            .field("tail_bytes", &self.tail_bytes)
            .field("day_level", &self.day_level)
            .finish_non_exhaustive()
    }
}

/// Default of [`Config::part_bytes`].
pub const DEFAULT_PART_BYTES: u64 = 64 << 20;

/// Default of [`Config::day_level`]: 8 % fewer bytes than the parts' level 3 on real logs, for
/// 2.6x its compression CPU, once per day.
pub const DEFAULT_DAY_LEVEL: i32 = crate::sealed::options::DAY_LEVEL;

/// Default of [`Config::tail_bytes`].
pub const DEFAULT_TAIL_BYTES: usize = 16 << 20;
