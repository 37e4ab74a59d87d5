//! The limits on plugin output: the per-task byte budget, the longest message, and the longest
//! `context.log` record.
//!
//! * [`OutputBudget`] counts the raw bytes a task wrote on stdout and stderr together. Past the
//!   limit (10 MiB by default) the rest is still *read*, so the plugin never blocks on a full
//!   pipe, but discarded; the caller reports the truncation once, when both pipes have closed
//!   and the number of dropped bytes is known.
//! * A line longer than [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN) becomes several entries.
//!   [`cut_point`] chooses where a raw byte chunk may be cut without splitting a UTF-8
//!   character; [`split_message`] does the same for text that lossy decoding made longer than
//!   the raw bytes (every invalid byte becomes the 3-byte U+FFFD).
//! * A `context.log` record line is parsed whole up to [`MAX_RECORD_BYTES`], so that a message
//!   longer than one entry keeps its level and metadata on every part; a longer record line is
//!   cut like any line and stored as text (at the level it names, if it names one first).

/// The default output limit of one attempt (one run of a plugin): 10 MiB of raw stdout +
/// stderr bytes.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 10 * 1024 * 1024;

/// The longest `context.log` record line parsed whole: 1 MiB (16 entries of message). Only a
/// line that starts with `0x1E` is held this long, so this is also the most a pipe buffers.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Counts a task's output against its limit.
///
/// Shared by the stdout and stderr readers of one task, because the limit covers both together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputBudget {
    limit: u64,
    captured: u64,
    dropped: u64,
}

impl OutputBudget {
    /// A budget of `limit` raw bytes.
    pub fn new(limit: u64) -> OutputBudget {
        OutputBudget {
            limit,
            captured: 0,
            dropped: 0,
        }
    }

    /// Accounts for a read of `len` bytes and returns how many of them, from the start, are
    /// still within the limit. The rest are counted as dropped.
    pub fn admit(&mut self, len: usize) -> usize {
        let room = self.limit.saturating_sub(self.captured);
        // `len` is one read, at most a buffer; widening to u64 is lossless.
        let wanted = len as u64;
        let taken = wanted.min(room);
        self.captured += taken;
        self.dropped += wanted - taken;
        // `taken <= len`, so it fits back into usize.
        usize::try_from(taken).unwrap_or(len)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes kept so far.
    pub fn captured(&self) -> u64 {
        self.captured
    }

    /// Bytes read and discarded so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// True once any byte was dropped.
    pub fn truncated(&self) -> bool {
        self.dropped > 0
    }
}

/// Where to cut `window` (a full chunk of a line that goes on) so that no UTF-8 character is
/// split: `window.len()`, or the start of a multi-byte character that the window cuts short.
///
/// Bytes that are not valid UTF-8 anyway are cut anywhere: lossy decoding replaces them whichever
/// side they land on. The result is never 0 for a window of 4 bytes or more, so the caller
/// always makes progress.
pub fn cut_point(window: &[u8]) -> usize {
    let len = window.len();
    // A character is at most 4 bytes, so only the last 3 can start one that is cut short.
    for back in 1..=3.min(len) {
        let i = len - back;
        let b = window[i];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: look further back for the lead byte
        }
        let needed = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 1, // ASCII or a byte that can never start a character
        };
        return if back < needed && i > 0 { i } else { len };
    }
    len
}

/// Splits `text` into pieces of at most `max` bytes, each ending on a character boundary.
///
/// `max` must be at least 4 (one character of any width).
pub fn split_message(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let max = max.max(4);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_admits_up_to_the_limit_and_counts_the_rest() {
        let mut b = OutputBudget::new(10);
        assert_eq!(b.admit(4), 4);
        assert_eq!(b.admit(8), 6, "only the room left is admitted");
        assert_eq!(b.admit(5), 0);
        assert_eq!((b.captured(), b.dropped(), b.truncated()), (10, 7, true));
    }

    #[test]
    fn budget_exactly_full_is_not_truncated() {
        let mut b = OutputBudget::new(3);
        assert_eq!(b.admit(3), 3);
        assert!(!b.truncated());
        assert_eq!(b.admit(0), 0);
        assert!(!b.truncated());
    }

    #[test]
    fn cut_point_keeps_multibyte_characters_whole() {
        assert_eq!(cut_point(b"abcd"), 4);
        // "é" is C3 A9: a window ending with the lead byte is cut before it.
        assert_eq!(cut_point(b"abc\xC3"), 3);
        assert_eq!(cut_point(b"ab\xC3\xA9"), 4);
        // "€" is E2 82 AC.
        assert_eq!(cut_point(b"ab\xE2\x82"), 2);
        assert_eq!(cut_point(b"a\xE2\x82\xAC"), 4);
        // "😀" is F0 9F 98 80.
        assert_eq!(cut_point(b"a\xF0\x9F\x98"), 1);
        assert_eq!(cut_point(b"\xF0\x9F\x98\x80"), 4);
        // Invalid bytes are cut anywhere.
        assert_eq!(cut_point(b"ab\xFF\xFF"), 4);
        assert_eq!(cut_point(b"\x80\x80\x80\x80"), 4);
    }

    #[test]
    fn split_message_respects_max_and_boundaries() {
        let text = "aé€😀".repeat(50);
        let pieces: Vec<&str> = split_message(&text, 7).collect();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= 7));
        assert_eq!(split_message("", 7).count(), 0);
        assert_eq!(split_message("abc", 7).collect::<Vec<_>>(), ["abc"]);
    }
}
