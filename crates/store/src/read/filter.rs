//! [`Filter`]: which entries a reader wants (level, task, source, time range, how many). The
//! one vocabulary of queries, follows, pages and searches; the tests of runs and blocks that
//! let a reader skip what cannot match.

use crate::journal::index::IndexEntry;
use crate::journal::record::PayloadRef;
use crate::sealed::layout::BlockEntry;
use crate::{Level, TaskId};

/// Which entries of an execution a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Only entries at this level or above.
    pub min_level: Option<Level>,
    /// Only entries of this task.
    pub task_id: Option<TaskId>,
    /// Only entries whose source starts with this.
    pub source_prefix: Option<String>,
    /// Only entries with `timestamp >= since_ms`.
    pub since_ms: Option<i64>,
    /// Only entries with `timestamp < until_ms`.
    pub until_ms: Option<i64>,
    /// At most this many entries, the first ones.
    pub limit: Option<usize>,
    /// Only the last this many entries (applied after the other filters).
    pub tail: Option<usize>,
}

/// What the index and block tables let a reader skip unread.
impl Filter {
    pub(crate) fn run_may_match(&self, run: &IndexEntry) -> bool {
        self.since_ms.is_none_or(|s| run.max_ts >= s)
            && self.until_ms.is_none_or(|u| run.min_ts < u)
    }

    pub(crate) fn block_may_match(&self, b: &BlockEntry) -> bool {
        self.since_ms.is_none_or(|s| b.max_ts >= s)
            && self.until_ms.is_none_or(|u| b.min_ts < u)
            && self
                .min_level
                .is_none_or(|l| b.level_mask >> l.to_byte() != 0)
    }

    /// Whether a stored payload passes the filter.
    pub fn matches(&self, p: &PayloadRef<'_>) -> bool {
        self.min_level.is_none_or(|l| p.level >= l.to_byte())
            && self
                .task_id
                .as_ref()
                .is_none_or(|t| p.task_id == Some(t.as_str()))
            && self
                .source_prefix
                .as_ref()
                .is_none_or(|s| p.source.starts_with(s.as_str()))
            && self.since_ms.is_none_or(|s| p.timestamp >= s)
            && self.until_ms.is_none_or(|u| p.timestamp < u)
    }
}
