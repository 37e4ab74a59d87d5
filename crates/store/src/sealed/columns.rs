//! Reading one raw (decompressed) block by column: [`Columns`].
//!
//! Parsing checks every field as the frame decoder checks it (ids, sources, levels,
//! dictionary indexes, lengths, UTF-8), so a bug or a foreign writer is an error here, never a
//! panic or an invalid entry later. It keeps the text columns as they are stored (one `&str`
//! for all messages, one for all metadata, with per-entry offsets), so search can run one
//! literal scan over every message of a block at once ([`Columns::messages`]) and build an
//! entry ([`Columns::payload`]) only for the entries that match. The small columns (indexes,
//! timestamps) are decoded eagerly: a few bytes per entry, next to the hundreds of its message.

use super::codec::{unzigzag, ByteCursor};
use crate::journal::record::PayloadRef;
use crate::{Level, MAX_MESSAGE_LEN, MAX_METADATA_LEN};

/// A parsed raw block, borrowing its strings from the raw bytes.
#[derive(Debug)]
pub struct Columns<'a> {
    n: usize,
    execs: Vec<&'a str>,
    exec_ix: Vec<u32>,
    ts: Vec<i64>,
    levels: &'a [u8],
    sources: Vec<&'a str>,
    source_ix: Vec<u32>,
    tasks: Vec<&'a str>,
    /// 0 = no task, else dictionary index + 1.
    task_ix: Vec<u32>,
    meta: &'a str,
    /// Entry k's metadata is `meta[meta_offs[k]..meta_offs[k + 1]]`, if `has_meta[k]`.
    meta_offs: Vec<u32>,
    has_meta: Vec<bool>,
    messages: &'a str,
    msg_offs: Vec<u32>,
    /// Sequence numbers (version 4 blocks; zeros before).
    seqs: Vec<u64>,
}

/// Why a raw block does not decode.
pub(crate) fn bad(what: &str) -> String {
    format!("block contents do not decode: {what}")
}

fn dict<'a>(c: &mut ByteCursor<'a>, what: &str) -> Result<Vec<&'a str>, String> {
    let n = c.len_at_most(c.left()).ok_or_else(|| bad(what))?;
    (0..n).map(|_| c.str().ok_or_else(|| bad(what))).collect()
}

/// `n` varints, each below `bound`.
fn indexes(c: &mut ByteCursor<'_>, n: usize, bound: usize, what: &str) -> Result<Vec<u32>, String> {
    // No value is below 0: only an empty column fits an empty dictionary.
    let Some(max) = bound.checked_sub(1) else {
        return if n == 0 {
            Ok(Vec::new())
        } else {
            Err(bad(what))
        };
    };
    let max = u64::try_from(max).unwrap_or(u64::MAX);
    Ok(varints(c, n, max, what)?
        .into_iter()
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
        .collect())
}

/// `n` varints, each at most `max`. The common column of one-byte values (small indexes,
/// no metadata) is read as bytes, in a loop the compiler vectorizes.
fn varints(c: &mut ByteCursor<'_>, n: usize, max: u64, what: &str) -> Result<Vec<u64>, String> {
    if let Some(bytes) = c.peek(n).filter(|b| b.iter().all(|&b| b < 0x80)) {
        if bytes.iter().any(|&b| u64::from(b) > max) {
            return Err(bad(what));
        }
        c.bytes(n);
        return Ok(bytes.iter().map(|&b| u64::from(b)).collect());
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match c.varint() {
            Some(v) if v <= max => out.push(v),
            _ => return Err(bad(what)),
        }
    }
    Ok(out)
}

/// A text column of `n` pieces whose lengths come first (`lens`, each `len_of` gives the byte
/// length or None for an absent piece): the whole column as one `&str` and the n + 1 offsets.
/// Every piece is valid UTF-8 exactly when the column is and every offset is a char boundary.
fn text_column<'a>(
    c: &mut ByteCursor<'a>,
    lens: &[u64],
    what: &str,
) -> Result<(&'a str, Vec<u32>), String> {
    let mut offs = Vec::with_capacity(lens.len() + 1);
    let mut at = 0usize;
    offs.push(0);
    for &len in lens {
        at = usize::try_from(len)
            .ok()
            .and_then(|l| at.checked_add(l))
            .ok_or_else(|| bad(what))?;
        offs.push(u32::try_from(at).map_err(|_| bad(what))?);
    }
    let bytes = c.bytes(at).ok_or_else(|| bad(what))?;
    let text = std::str::from_utf8(bytes).map_err(|_| bad(what))?;
    // In ASCII text every offset is a char boundary.
    if !text.is_ascii() && !offs.iter().all(|&o| text.is_char_boundary(o as usize)) {
        return Err(bad(what));
    }
    Ok((text, offs))
}

fn lengths(c: &mut ByteCursor<'_>, n: usize, max: u64, what: &str) -> Result<Vec<u64>, String> {
    varints(c, n, max, what)
}

impl<'a> Columns<'a> {
    /// Parses and checks a raw block (the layout is in the module doc of `block`).
    pub(crate) fn parse(raw: &'a [u8], with_seq: bool) -> Result<Columns<'a>, String> {
        Columns::parse_marking(raw, with_seq, &mut |_, _| {})
    }

    /// [`parse`](Columns::parse), calling `mark(column, end)` with the offset in `raw` where
    /// each column ends (for the per-column byte breakdown of `examples/sealed.rs`).
    pub(crate) fn parse_marking(
        raw: &'a [u8],
        with_seq: bool,
        mark: &mut dyn FnMut(&'static str, usize),
    ) -> Result<Columns<'a>, String> {
        if u32::try_from(raw.len()).is_err() {
            return Err(bad("block larger than 4 GiB"));
        }
        let mut c = ByteCursor::new(raw);
        // Each entry takes at least 6 bytes (five one-byte indexes or lengths and a level byte).
        let n = c
            .len_at_most(raw.len() / 6)
            .ok_or_else(|| bad("entry count"))?;
        let execs = dict(&mut c, "execution dictionary")?;
        for e in &execs {
            crate::entry::check_id("execution_id", e).map_err(|e| bad(&e.to_string()))?;
        }
        let exec_ix = indexes(&mut c, n, execs.len(), "execution column")?;
        mark("execution ids", raw.len() - c.left());
        let mut last = 0i64;
        let ts: Vec<i64> = varints(&mut c, n, u64::MAX, "timestamps")?
            .into_iter()
            .map(|d| {
                last = last.wrapping_add(unzigzag(d));
                last
            })
            .collect();
        mark("timestamps", raw.len() - c.left());
        let levels = c.bytes(n).ok_or_else(|| bad("levels"))?;
        mark("levels", raw.len() - c.left());
        if let Some(l) = levels.iter().find(|&&l| Level::from_byte(l).is_none()) {
            return Err(bad(&format!("unknown level byte {l}")));
        }
        let sources = dict(&mut c, "source dictionary")?;
        for s in &sources {
            crate::entry::check_source(s).map_err(|e| bad(&e.to_string()))?;
        }
        let source_ix = indexes(&mut c, n, sources.len(), "source column")?;
        mark("sources", raw.len() - c.left());
        let tasks = dict(&mut c, "task dictionary")?;
        for t in &tasks {
            crate::entry::check_id("task_id", t).map_err(|e| bad(&e.to_string()))?;
        }
        let task_ix = indexes(&mut c, n, tasks.len() + 1, "task column")?;
        mark("tasks", raw.len() - c.left());
        let meta_tags = lengths(&mut c, n, MAX_METADATA_LEN as u64 + 1, "metadata lengths")?;
        let has_meta: Vec<bool> = meta_tags.iter().map(|&t| t != 0).collect();
        let meta_lens: Vec<u64> = meta_tags.iter().map(|&t| t.saturating_sub(1)).collect();
        let (meta, meta_offs) = text_column(&mut c, &meta_lens, "metadata")?;
        mark("metadata", raw.len() - c.left());
        let msg_lens = lengths(&mut c, n, MAX_MESSAGE_LEN as u64, "message lengths")?;
        let (messages, msg_offs) = text_column(&mut c, &msg_lens, "message")?;
        mark("messages", raw.len() - c.left());
        let seqs = if with_seq {
            let mut last = 0u64;
            varints(&mut c, n, u64::MAX, "sequence numbers")?
                .into_iter()
                .map(|d| {
                    last = last.wrapping_add(unzigzag(d).cast_unsigned());
                    last
                })
                .collect()
        } else {
            vec![0; n]
        };
        mark("seqs", raw.len() - c.left());
        if !c.is_empty() {
            return Err(bad(&format!("{} bytes after the last message", c.left())));
        }
        Ok(Columns {
            n,
            execs,
            exec_ix,
            ts,
            levels,
            sources,
            source_ix,
            tasks,
            task_ix,
            meta,
            meta_offs,
            has_meta,
            messages,
            msg_offs,
            seqs,
        })
    }

    /// Entries in the block.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Every message, one after the other, as stored.
    pub fn messages(&self) -> &'a str {
        self.messages
    }

    /// The n + 1 offsets of the messages in [`Columns::messages`]: message k is
    /// `messages[offs[k]..offs[k + 1]]`. Every offset is a char boundary.
    pub fn message_offsets(&self) -> &[u32] {
        &self.msg_offs
    }

    /// Entry `k` (`k < len()`), borrowing from the raw block.
    pub fn payload(&self, k: usize) -> PayloadRef<'a> {
        // Indexes and offsets were checked by `parse`; the fallbacks are never taken.
        let piece = |text: &'a str, offs: &[u32]| {
            text.get(offs[k] as usize..offs[k + 1] as usize)
                .unwrap_or_default()
        };
        PayloadRef {
            seq: self.seqs[k],
            execution_id: self.execs[self.exec_ix[k] as usize],
            timestamp: self.ts[k],
            level: self.levels[k],
            source: self.sources[self.source_ix[k] as usize],
            message: piece(self.messages, &self.msg_offs),
            task_id: match self.task_ix[k] {
                0 => None,
                t => self.tasks.get(t as usize - 1).copied(),
            },
            metadata: self.has_meta[k].then(|| piece(self.meta, &self.meta_offs)),
        }
    }

    /// The entries of execution `id`, in block order, without building the others: a block
    /// holds several executions' clusters, and a query wants one.
    pub(crate) fn rows_of<'s>(&'s self, id: &'s str) -> impl Iterator<Item = usize> + 's {
        // Each dictionary entry is compared once, not each row.
        let ours: Vec<bool> = self.execs.iter().map(|e| *e == id).collect();
        self.exec_ix
            .iter()
            .enumerate()
            .filter(move |(_, &x)| ours.get(x as usize).copied().unwrap_or(false))
            .map(|(k, _)| k)
    }

    /// The highest sequence number in the block (0 if it has none).
    pub(crate) fn max_seq(&self) -> u64 {
        self.seqs.iter().copied().max().unwrap_or(0)
    }

    /// Every entry, in block order.
    pub(crate) fn payloads(&self) -> Vec<PayloadRef<'a>> {
        (0..self.n).map(|k| self.payload(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::block::BlockBuilder;
    use super::*;

    /// Sequence numbers that go down as well as up and wrap: deltas are zigzagged, wrapping.
    fn seq_of(ts: i64) -> u64 {
        match ts {
            1_000 => 5,
            -5 => 1,
            i64::MIN => u64::MAX,
            _ => 0,
        }
    }

    fn sample() -> Vec<u8> {
        let mut b = BlockBuilder::default();
        let long = "x".repeat(300); // a two-byte length
        let entries = [
            ("e1", 1_000, "hello wörld", None, None),
            ("e2", -5, "", Some("t-1"), Some(r#"{"a":1}"#)),
            ("e1", i64::MIN, long.as_str(), None, None),
            ("e3", i64::MAX, "ünïcode ✓", Some("t-2"), None),
        ];
        for (exec, ts, msg, task, meta) in entries {
            b.push(&PayloadRef {
                seq: seq_of(ts),
                execution_id: exec,
                timestamp: ts,
                level: 2,
                source: "plugin:x",
                message: msg,
                task_id: task,
                metadata: meta,
            });
        }
        let mut raw = Vec::new();
        b.finish(&mut raw);
        raw
    }

    #[test]
    fn the_message_column_and_offsets_are_the_messages() {
        let raw = sample();
        let c = Columns::parse(&raw, true).unwrap();
        assert_eq!(c.len(), 4);
        let seqs: Vec<u64> = (0..4).map(|k| c.payload(k).seq).collect();
        assert_eq!(seqs, [5, 1, u64::MAX, 0]);
        assert_eq!(c.max_seq(), u64::MAX);
        let offs = c.message_offsets();
        let msgs: Vec<&str> = (0..4)
            .map(|k| &c.messages()[offs[k] as usize..offs[k + 1] as usize])
            .collect();
        assert_eq!(msgs[0], "hello wörld");
        assert_eq!(msgs[1], "");
        assert_eq!(msgs[2].len(), 300);
        assert_eq!(msgs[3], "ünïcode ✓");
        for (k, m) in msgs.iter().enumerate() {
            assert_eq!(c.payload(k).message, *m);
        }
        assert_eq!(c.payload(1).metadata, Some(r#"{"a":1}"#));
        assert_eq!(c.payload(1).task_id, Some("t-1"));
        assert_eq!(c.payload(2).timestamp, i64::MIN);
        assert_eq!(c.payload(3).timestamp, i64::MAX);
        assert_eq!(c.payload(3).execution_id, "e3");
    }

    #[test]
    fn damaged_blocks_are_errors_or_valid_entries_never_panics() {
        let raw = sample();
        for at in 0..raw.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = raw.clone();
                bad[at] ^= flip;
                if let Ok(c) = Columns::parse(&bad, true) {
                    for k in 0..c.len() {
                        let p = c.payload(k);
                        assert!(crate::entry::check_id("execution_id", p.execution_id).is_ok());
                        assert!(p.level().is_some());
                    }
                }
            }
        }
        for cut in 0..raw.len() {
            assert!(Columns::parse(&raw[..cut], true).is_err(), "cut at {cut}");
        }
    }
}
