//! One sealed block: entries stored by column, then compressed with zstd.
//!
//! The raw (uncompressed) block is a sequence of columns (docs/FORMAT.md, "Block contents"):
//! the entry count; the execution id dictionary and one index per entry; timestamps as a first
//! value and zigzag deltas; one level byte per entry; the source dictionary and indexes; the
//! task dictionary and indexes (0 = no task); metadata lengths (0 = none, else length + 1) and
//! bytes; message lengths and bytes. Putting like with like (all the small numbers together,
//! all the message text together) is what lets zstd find the repeats; `docs/PERFORMANCE.md`
//! gives the measured gain over compressing the frames as they are.
//!
//! Decoding borrows every string from the decompressed buffer ([`PayloadRef`]), so reading a
//! block allocates the buffer and one small vector per column, not one string per field.

use std::collections::{HashMap, HashSet};

use super::codec::{put_str, put_varint, zigzag};
use super::filter::{for_each_word_hash, TokenFilter};
use crate::journal::record::PayloadRef;

/// The most raw bytes a block may declare: a reader refuses larger before allocating. A block
/// is closed once it reaches its target size, so it is at most the target plus one entry.
pub(crate) const MAX_RAW_BLOCK: usize = 16 << 20;

/// Hashes the (already FNV-mixed) word hashes of the word set: one multiply and a shift
/// instead of SipHash, which was a tenth of sealing. Keyed per process, so that which words
/// land together differs between runs.
#[derive(Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`WordHasher`]s with this process's key.
#[derive(Clone, Copy)]
pub(crate) struct WordHashing(u64);

impl Default for WordHashing {
    fn default() -> WordHashing {
        use std::hash::BuildHasher;
        static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        WordHashing(
            *KEY.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u64)),
        )
    }
}

impl std::hash::BuildHasher for WordHashing {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.0)
    }
}

/// A string dictionary of one block column: each distinct value once, in first-seen order.
#[derive(Default)]
struct Dict {
    values: Vec<String>,
    index: HashMap<String, u32>,
    bytes: usize,
    /// The id returned last: consecutive entries mostly share their execution, source, task.
    last: u32,
}

impl Dict {
    fn id(&mut self, s: &str) -> u32 {
        if self.values.get(self.last as usize).is_some_and(|v| v == s) {
            return self.last;
        }
        let i = match self.index.get(s) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
                self.values.push(s.to_owned());
                self.index.insert(s.to_owned(), i);
                self.bytes += s.len() + 2;
                i
            }
        };
        self.last = i;
        i
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.values.len() as u64);
        for v in &self.values {
            put_str(out, v);
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.index.clear();
        self.bytes = 0;
        self.last = 0;
    }
}

/// What a block's token filter is made of, kept apart until the file's common words
/// (`common.rs`) are known: the distinct word hashes of its messages and its distinct sources,
/// tasks and execution ids.
pub(crate) struct BlockWords {
    /// Distinct, in no order (a vector: the sealer holds a sample of blocks' sets at once).
    pub(crate) words: Vec<u64>,
    sources: Vec<String>,
    tasks: Vec<String>,
    executions: Vec<String>,
}

impl BlockWords {
    /// The block's filter, without the words in `common` (the file lists those once).
    pub(crate) fn into_filter(mut self, common: &HashSet<u64, WordHashing>) -> TokenFilter {
        if !common.is_empty() {
            self.words.retain(|h| !common.contains(h));
        }
        TokenFilter::build(&self.words, self.sources, self.tasks, self.executions)
    }
}

/// What a block holds besides its bytes: the fields of its block-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockStats {
    pub(crate) entries: u32,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) level_mask: u8,
}

/// Collects entries into columns until the block is full.
#[derive(Default)]
pub(crate) struct BlockBuilder {
    n: u32,
    execs: Dict,
    exec_col: Vec<u8>,
    ts_col: Vec<u8>,
    last_ts: i64,
    min_ts: i64,
    max_ts: i64,
    levels: Vec<u8>,
    level_mask: u8,
    sources: Dict,
    source_col: Vec<u8>,
    tasks: Dict,
    task_col: Vec<u8>,
    meta_lens: Vec<u8>,
    meta: Vec<u8>,
    msg_lens: Vec<u8>,
    msgs: Vec<u8>,
    /// Sequence numbers: zigzag deltas from the previous entry's (version 4).
    seq_col: Vec<u8>,
    last_seq: u64,
    words: HashSet<u64, WordHashing>,
    recent: RecentWords,
    /// Scratch space of the tokenizer.
    hashes: Vec<u64>,
}

/// The word hashes put into the word set lately, by their low bits: most words of a block
/// repeat, and a look here is cheaper than the set. Cleared with the block.
struct RecentWords(Vec<u64>);

/// Slots of [`RecentWords`].
const RECENT_WORDS: usize = 4096;

impl Default for RecentWords {
    fn default() -> RecentWords {
        RecentWords(vec![0; RECENT_WORDS])
    }
}

impl RecentWords {
    /// False if `hash` is known to be in the set already.
    fn is_new(&mut self, hash: u64) -> bool {
        let slot = &mut self.0[usize::try_from(hash % RECENT_WORDS as u64).unwrap_or(0)];
        // 0 marks an empty slot, so a hash of 0 always goes to the set.
        if *slot == hash && hash != 0 {
            return false;
        }
        *slot = hash;
        true
    }

    fn clear(&mut self) {
        self.0.fill(0);
    }
}

impl BlockBuilder {
    /// Adds one entry (already validated: it came out of a checked record).
    pub(crate) fn push(&mut self, p: &PayloadRef<'_>) {
        if self.n == 0 {
            self.min_ts = p.timestamp;
            self.max_ts = p.timestamp;
            self.last_ts = 0;
            self.last_seq = 0;
        }
        self.n += 1;
        put_varint(
            &mut self.seq_col,
            zigzag(p.seq.wrapping_sub(self.last_seq) as i64),
        );
        self.last_seq = p.seq;
        let e = self.execs.id(p.execution_id);
        put_varint(&mut self.exec_col, u64::from(e));
        put_varint(
            &mut self.ts_col,
            zigzag(p.timestamp.wrapping_sub(self.last_ts)),
        );
        self.last_ts = p.timestamp;
        self.min_ts = self.min_ts.min(p.timestamp);
        self.max_ts = self.max_ts.max(p.timestamp);
        self.levels.push(p.level);
        if p.level < 8 {
            self.level_mask |= 1 << p.level;
        }
        let s = self.sources.id(p.source);
        put_varint(&mut self.source_col, u64::from(s));
        let t = p.task_id.map_or(0, |t| u64::from(self.tasks.id(t)) + 1);
        put_varint(&mut self.task_col, t);
        match p.metadata {
            None => put_varint(&mut self.meta_lens, 0),
            Some(m) => {
                put_varint(&mut self.meta_lens, m.len() as u64 + 1);
                self.meta.extend_from_slice(m.as_bytes());
            }
        }
        put_varint(&mut self.msg_lens, p.message.len() as u64);
        self.msgs.extend_from_slice(p.message.as_bytes());
        let (words, recent) = (&mut self.words, &mut self.recent);
        for_each_word_hash(p.message, &mut self.hashes, |h| {
            if recent.is_new(h) {
                words.insert(h);
            }
        });
    }

    /// Entries so far.
    pub(crate) fn len(&self) -> u32 {
        self.n
    }

    /// The raw size the block would have now (close enough to decide when to close it).
    pub(crate) fn raw_len(&self) -> usize {
        self.execs.bytes
            + self.sources.bytes
            + self.tasks.bytes
            + self.exec_col.len()
            + self.ts_col.len()
            + self.levels.len()
            + self.source_col.len()
            + self.task_col.len()
            + self.meta_lens.len()
            + self.meta.len()
            + self.msg_lens.len()
            + self.msgs.len()
            + self.seq_col.len()
            + 8
    }

    /// Writes the raw block into `out` (cleared first), returns its statistics and what its
    /// token filter is built from, and empties the builder for the next block.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> (BlockStats, BlockWords) {
        out.clear();
        put_varint(out, u64::from(self.n));
        self.execs.encode(out);
        out.extend_from_slice(&self.exec_col);
        out.extend_from_slice(&self.ts_col);
        out.extend_from_slice(&self.levels);
        self.sources.encode(out);
        out.extend_from_slice(&self.source_col);
        self.tasks.encode(out);
        out.extend_from_slice(&self.task_col);
        out.extend_from_slice(&self.meta_lens);
        out.extend_from_slice(&self.meta);
        out.extend_from_slice(&self.msg_lens);
        out.extend_from_slice(&self.msgs);
        out.extend_from_slice(&self.seq_col);
        let stats = BlockStats {
            entries: self.n,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            level_mask: self.level_mask,
        };
        let words = BlockWords {
            words: self.words.iter().copied().collect(),
            sources: std::mem::take(&mut self.sources.values),
            tasks: std::mem::take(&mut self.tasks.values),
            executions: std::mem::take(&mut self.execs.values),
        };
        self.clear();
        (stats, words)
    }

    fn clear(&mut self) {
        self.n = 0;
        self.level_mask = 0;
        self.execs.clear();
        self.sources.clear();
        self.tasks.clear();
        for col in [
            &mut self.exec_col,
            &mut self.ts_col,
            &mut self.levels,
            &mut self.source_col,
            &mut self.task_col,
            &mut self.meta_lens,
            &mut self.meta,
            &mut self.msg_lens,
            &mut self.msgs,
            &mut self.seq_col,
        ] {
            col.clear();
        }
        self.words.clear();
        self.recent.clear();
    }
}

/// Decodes a raw block into its entries, in block order, borrowing from `raw`. Every field is
/// checked as the frame decoder checks it (`Columns::parse`), so a bug or a foreign
/// writer is an error here, never a panic or an invalid entry later.
#[cfg(test)]
pub(crate) fn decode(raw: &[u8]) -> Result<Vec<PayloadRef<'_>>, String> {
    Ok(super::columns::Columns::parse(raw, true)?.payloads())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn payload<'a>(exec: &'a str, ts: i64, msg: &'a str) -> PayloadRef<'a> {
        PayloadRef {
            seq: 0,
            execution_id: exec,
            timestamp: ts,
            level: 1,
            source: "plugin:x",
            message: msg,
            task_id: None,
            metadata: None,
        }
    }

    #[test]
    fn block_round_trips_every_field() {
        let mut b = BlockBuilder::default();
        let mut entries = vec![
            payload("e1", 1000, "hello world"),
            payload("e1", 900, ""),
            payload("e2", i64::MIN, "ünïcode ✓"),
        ];
        entries[1].task_id = Some("t-1");
        entries[1].level = 3;
        entries[2].metadata = Some(r#"{"a":1}"#);
        entries[2].source = "scheduler";
        for e in &entries {
            b.push(e);
        }
        let mut raw = Vec::new();
        let (stats, words) = b.finish(&mut raw);
        let filter = words.into_filter(&HashSet::default());
        assert_eq!(stats.entries, 3);
        assert_eq!((stats.min_ts, stats.max_ts), (i64::MIN, 1000));
        assert_eq!(stats.level_mask, 0b1010);
        assert_eq!(filter.executions, ["e1", "e2"]);
        assert_eq!(filter.tasks, ["t-1"]);
        assert!(filter.may_contain_word("world"));
        assert_eq!(decode(&raw).unwrap(), entries);
        // The builder is empty again.
        assert_eq!(b.len(), 0);
        b.push(&entries[0]);
        let (stats, _) = b.finish(&mut raw);
        assert_eq!(stats.level_mask, 0b10);
        assert_eq!(decode(&raw).unwrap(), entries[..1]);
    }

    #[test]
    fn truncated_or_padded_blocks_are_errors() {
        let mut b = BlockBuilder::default();
        b.push(&payload("e1", 5, "some text"));
        let mut raw = Vec::new();
        b.finish(&mut raw);
        for cut in 0..raw.len() {
            assert!(decode(&raw[..cut]).is_err(), "cut at {cut}");
        }
        raw.push(0);
        assert!(decode(&raw).is_err());
    }
}
