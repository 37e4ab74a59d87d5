//! The token filter of a sealed block: which words, sources, tasks and executions it may hold.
//!
//! Search (and a query with a filter) asks a block's filter before reading the block, so a
//! block that cannot match is never decompressed. Words go into a bloom filter (false positives
//! cost a wasted block read, never a missed entry); sources, tasks and execution ids are few
//! per block and stored exactly, so prefix questions can be answered.
//!
//! Words are what [`words`] yields: maximal runs of `char::is_alphanumeric() || c == '_'`,
//! each lowercased with `str::to_lowercase`. The builder and the searcher both use this one
//! function, so they never disagree on what a word is.

use super::codec::{put_str, put_varint, ByteCursor};

/// Bloom bits per distinct word. With [`HASHES`] = 6 this gives about 2 % false positives; the
/// words most blocks of a file hold are left out (`common.rs`), and what is left costs about
/// 6-7 % of the sealed bytes. 7 bits saved 0.9 % of them and made a rare word 32 % slower to
/// find (docs/PERFORMANCE.md).
pub(crate) const BITS_PER_WORD: usize = 8;
/// Bit positions set per word.
pub(crate) const HASHES: u8 = 6;

/// The words of `text`, lowercased, in order (repeats included): maximal runs of
/// alphanumeric characters or `_`, each lowercased with `str::to_lowercase`. The one
/// definition of a word: the block filters are built from it and search matches by it
/// (`logstore::search::words` is this function; `crates/search/src/query.rs` documents what it means
/// for a user).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    word_spans(text).map(|r| text[r].to_lowercase())
}

/// Byte ranges of the words of `text`, before lowercasing (search highlights them).
pub fn word_spans(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let start = loop {
            let (i, c) = chars.next()?;
            if is_word_char(c) {
                break i;
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if !is_word_char(c) {
                end = i;
                break;
            }
            chars.next();
        }
        Some(start..end)
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Calls `f` with the hash of every word of `text` (the hash of what [`words`] yields, in
/// order): the sealing hot path. An ASCII text (almost every log line) is hashed without a
/// branch per byte ([`ascii_word_hashes`]); otherwise words are found character by character,
/// and a word holding a non-ASCII character is lowercased into a string.
pub(crate) fn for_each_word_hash(text: &str, scratch: &mut Vec<u64>, mut f: impl FnMut(u64)) {
    if text.is_ascii() {
        for &h in ascii_word_hashes(text.as_bytes(), scratch) {
            f(h);
        }
        return;
    }
    let bytes = text.as_bytes();
    let mut start: Option<usize> = None;
    let mut ascii = true;
    let mut h = FNV_OFFSET;
    let mut emit = |from: usize, to: usize, ascii: bool, h: u64| {
        if ascii {
            f(h);
        } else if let Some(w) = text.get(from..to) {
            f(word_hash(&w.to_lowercase()));
        }
    };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (word, width) = if b < 0x80 {
            (ASCII_WORD[usize::from(b)], 1)
        } else {
            match text.get(i..).and_then(|t| t.chars().next()) {
                Some(c) => (is_word_char(c), c.len_utf8()),
                None => break,
            }
        };
        if word {
            if start.is_none() {
                start = Some(i);
                ascii = true;
                h = FNV_OFFSET;
            }
            if b < 0x80 {
                h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(FNV_PRIME);
            } else {
                ascii = false;
            }
        } else if let Some(s) = start.take() {
            emit(s, i, ascii, h);
        }
        i += width;
    }
    if let Some(s) = start {
        emit(s, bytes.len(), ascii, h);
    }
}

/// The hashes of the words of an ASCII text, in order, written into `out`. Every byte goes
/// through the same steps (the hash is updated, then kept or reset by a conditional move; a
/// word's hash is stored at the next free slot, which advances only where a word ends), so
/// word boundaries cost no mispredicted branch: 15-20 % faster than a branch per boundary on
/// real log lines.
fn ascii_word_hashes<'a>(bytes: &[u8], out: &'a mut Vec<u64>) -> &'a [u64] {
    // A text of n bytes has at most (n + 1) / 2 words; one more slot for the last store.
    out.clear();
    out.resize(bytes.len() / 2 + 2, 0);
    let mut n = 0usize;
    let mut in_word = 0usize;
    let mut h = FNV_OFFSET;
    for &b in bytes {
        let word = usize::from(ASCII_WORD[usize::from(b & 0x7f)]);
        out[n] = h;
        n += in_word & (word ^ 1);
        let next = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(FNV_PRIME);
        h = if word == 1 { next } else { FNV_OFFSET };
        in_word = word;
    }
    out[n] = h;
    n += in_word;
    &out[..n]
}

/// Which ASCII bytes are word characters (alphanumeric or `_`).
const ASCII_WORD: [bool; 128] = {
    let mut t = [false; 128];
    let mut b: u8 = 0;
    while b < 128 {
        t[b as usize] = b.is_ascii_alphanumeric() || b == b'_';
        b += 1;
    }
    t
};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The hash of one (already lowercased) word: 64-bit FNV-1a of its UTF-8 bytes.
pub(crate) fn word_hash(word: &str) -> u64 {
    fnv1a(word.bytes())
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Bit `i` (of `HASHES`) of a word in a filter of `m` bits: double hashing, with
/// `h1` = the low 32 bits of the word hash and `h2` = the high 32 bits with the low bit set.
fn bit(hash: u64, i: u8, m: u64) -> u64 {
    let h1 = hash & 0xffff_ffff;
    let h2 = (hash >> 32) | 1;
    h1.wrapping_add(u64::from(i).wrapping_mul(h2)) % m
}

/// The decoded filter of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TokenFilter {
    /// Bloom bits (bit `b` is `bits[b / 8] >> (b % 8) & 1`); empty: no word at all.
    pub(crate) bits: Vec<u8>,
    /// Hashes per word.
    pub(crate) hashes: u8,
    /// Distinct sources, sorted.
    pub(crate) sources: Vec<String>,
    /// Distinct task ids, sorted.
    pub(crate) tasks: Vec<String>,
    /// Distinct execution ids, sorted.
    pub(crate) executions: Vec<String>,
}

impl TokenFilter {
    /// Builds the filter from the distinct word hashes and the block's dictionaries.
    pub(crate) fn build(
        word_hashes: &[u64],
        sources: Vec<String>,
        tasks: Vec<String>,
        executions: Vec<String>,
    ) -> TokenFilter {
        let m_bytes = if word_hashes.is_empty() {
            0
        } else {
            (word_hashes.len() * BITS_PER_WORD).div_ceil(8).max(8)
        };
        let mut bits = vec![0u8; m_bytes];
        let m = (m_bytes * 8) as u64;
        for &h in word_hashes {
            for i in 0..HASHES {
                let b = bit(h, i, m);
                // b < m = 8 * bits.len(), so the index is in range.
                bits[usize::try_from(b / 8).unwrap_or(0)] |= 1 << (b % 8);
            }
        }
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        TokenFilter {
            bits,
            hashes: HASHES,
            sources: sorted(sources),
            tasks: sorted(tasks),
            executions: sorted(executions),
        }
    }

    /// False only when no message of the block has `word` (lowercase, one word).
    #[cfg(test)]
    pub(crate) fn may_contain_word(&self, word: &str) -> bool {
        self.may_contain_hash(word_hash(word))
    }

    /// [`may_contain_word`](Self::may_contain_word) for the word of hash `h`.
    pub(crate) fn may_contain_hash(&self, h: u64) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        let m = (self.bits.len() * 8) as u64;
        (0..self.hashes).all(|i| {
            let b = bit(h, i, m);
            self.bits
                .get(usize::try_from(b / 8).unwrap_or(usize::MAX))
                .is_some_and(|byte| byte >> (b % 8) & 1 == 1)
        })
    }

    /// The encoding stored in the file (docs/FORMAT.md, "Block filter").
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.bits.len() as u64);
        out.push(self.hashes);
        out.extend_from_slice(&self.bits);
        for list in [&self.sources, &self.tasks, &self.executions] {
            put_varint(out, list.len() as u64);
            for s in list {
                put_str(out, s);
            }
        }
    }

    /// Decodes [`encode`](Self::encode)'s bytes; `None` if they do not parse exactly.
    pub(crate) fn decode(bytes: &[u8]) -> Option<TokenFilter> {
        let mut c = ByteCursor::new(bytes);
        let m_bytes = c.len_at_most(bytes.len())?;
        let hashes = c.byte()?;
        let bits = c.bytes(m_bytes)?.to_vec();
        let mut lists = [Vec::new(), Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = c.len_at_most(bytes.len())?;
            for _ in 0..n {
                list.push(c.str()?.to_owned());
            }
        }
        let [sources, tasks, executions] = lists;
        (c.is_empty() && (1..=32).contains(&hashes)).then_some(TokenFilter {
            bits,
            hashes,
            sources,
            tasks,
            executions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_non_word_characters_and_lowercase() {
        let got: Vec<String> =
            words("Error: FAILED to open /var/log_x (errno=13) Ünïcode").collect();
        assert_eq!(
            got,
            [
                "error",
                "failed",
                "to",
                "open",
                "var",
                "log_x",
                "errno",
                "13",
                "ünïcode"
            ]
        );
    }

    #[test]
    fn hashes_agree_with_words() {
        for text in [
            "Straße ÄÖÜ mixed_Case 42 ΣΊΣΥΦΟΣ",
            "",
            "   ",
            "a",
            "éa",
            "aé",
            "x—y",
            "tail_ü",
            "ΣΊΣΥΦΟΣ!ΣΊΣΥΦΟΣ",
            "\u{212A}ey KEY 日本語テキスト end",
            "naïve café: déjà-vu, 100%!",
            "emoji 🎉party🎉 done",
            "a b c d e f g",
            "ab",
            "!a!",
            "__init__ x=1,y=22;z=333 HTTP/1.1 404",
            "trailing words  ",
            "12345678 123456789 abcdefgh ABCDEFGH abcdefghi _ __ a_b",
        ] {
            let mut fast = Vec::new();
            for_each_word_hash(text, &mut Vec::new(), |h| fast.push(h));
            let slow: Vec<u64> = words(text).map(|w| word_hash(&w)).collect();
            assert_eq!(fast, slow, "{text:?}");
        }
    }

    #[test]
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let set: Vec<u64> = (0..2000).map(|i| word_hash(&format!("word{i}"))).collect();
        let f = TokenFilter::build(
            &set,
            vec!["b".into(), "a".into()],
            vec![],
            vec!["e1".into()],
        );
        for i in 0..2000 {
            assert!(f.may_contain_word(&format!("word{i}")));
        }
        let false_pos = (0..10_000)
            .filter(|i| f.may_contain_word(&format!("other{i}")))
            .count();
        assert!(false_pos < 300, "{false_pos} false positives in 10000");
        let mut bytes = Vec::new();
        f.encode(&mut bytes);
        let back = TokenFilter::decode(&bytes).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.sources, ["a", "b"]);
        assert!(TokenFilter::decode(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn empty_filter_contains_nothing() {
        let f = TokenFilter::build(&[], vec![], vec![], vec![]);
        assert!(!f.may_contain_word("x"));
    }
}
