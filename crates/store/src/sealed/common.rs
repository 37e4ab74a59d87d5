//! The words common to most blocks of a sealed file (version 7), kept once instead of in every
//! block filter.
//!
//! A block filter answers "is this word in none of the block's messages?". For a word that
//! half the blocks hold, the answer saves little, yet the word costs every block that holds it
//! ten bits of filter. Measured on real log text, the words held by at least half of a file's
//! blocks are about 40 % of all (block, word) pairs, so listing them once per file takes that
//! much off the filters. A search for a listed word reads every block (the filters cannot
//! say), which it would nearly have done anyway.
//!
//! The sealer picks them from the blocks it holds back for the dictionary (the file's first
//! 8 MiB): a word is common when at least half of those blocks hold it. A merge lists the union
//! of its inputs' words, which is right for every block it copies (each was built without its
//! own file's list, a subset of the union).
//!
//! ```text
//! hash u64 × n (sorted, distinct) | n u32 | crc32 of the hashes u32
//! ```
//!
//! The section ends where the dictionaries section starts (or the block table, without one),
//! so it is found from the end. If it fails its CRC, no filter of the file can answer for any
//! word (the list is lost), so every search reads every block of the file (reported).

use crate::error::Result;

/// A word is common when at least `1 / SHARE` of the sampled blocks hold it.
const SHARE: usize = 2;
/// Fewer sampled blocks than this give no list: "half of them" would mean too little.
pub(crate) const MIN_BLOCKS: usize = 8;
/// The most words the sealer lists for one file (128 KiB; real logs list about 1,500).
const MAX_CHOSEN: usize = 1 << 14;
/// The most words a file's list may hold (32 MiB), so that a reader refuses a damaged count
/// before allocating: merges list the union of their inputs' lists, which may exceed
/// [`MAX_CHOSEN`] (hundreds of parts of a day, each with its own list).
pub(crate) const MAX_WORDS: usize = 1 << 22;

/// The common words of a file, as a reader sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommonWords {
    /// Sorted word hashes: the block filters of the file do not hold them.
    Listed(Box<[u64]>),
    /// The section is damaged: the filters cannot answer for any word.
    Lost,
}

impl CommonWords {
    /// Whether the block filters may lack the word of hash `h` although a block holds it.
    pub(crate) fn hides(&self, h: u64) -> bool {
        match self {
            CommonWords::Listed(words) => words.binary_search(&h).is_ok(),
            CommonWords::Lost => true,
        }
    }
}

/// The hashes held by at least half of `blocks` (the distinct word hashes of each sampled
/// block), sorted; empty if there are fewer than [`MIN_BLOCKS`].
pub(crate) fn choose(blocks: &[&[u64]]) -> Vec<u64> {
    if blocks.len() < MIN_BLOCKS {
        return Vec::new();
    }
    let need = blocks.len().div_ceil(SHARE);
    let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for set in blocks {
        for &h in *set {
            *counts.entry(h).or_default() += 1;
        }
    }
    let mut common: Vec<(usize, u64)> = counts
        .into_iter()
        .filter(|&(_, n)| n >= need)
        .map(|(h, n)| (n, h))
        .collect();
    // Past the cap, the most widely held words are the ones worth listing.
    if common.len() > MAX_CHOSEN {
        common.sort_unstable_by(|a, b| b.cmp(a));
        common.truncate(MAX_CHOSEN);
    }
    let mut words: Vec<u64> = common.into_iter().map(|(_, h)| h).collect();
    words.sort_unstable();
    words
}

/// Writes the section for `words` (sorted, distinct; nothing for none).
pub(crate) fn write_section(words: &[u64], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    if words.is_empty() {
        return Ok(());
    }
    let mut b = Vec::with_capacity(8 * words.len() + 8);
    for h in words {
        b.extend_from_slice(&h.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&u32::try_from(words.len()).unwrap_or(u32::MAX).to_le_bytes());
    b.extend_from_slice(&crc.to_le_bytes());
    out(&b)
}

/// Where the section that ends at `end` starts, no lower than `floor`, reading its last 8 bytes
/// with `read(buf, at)`: `None` if it does not fit (its count is zero, too large, or reaches
/// below `floor`).
pub(crate) fn start(
    end: u64,
    floor: u64,
    read: &mut dyn FnMut(&mut [u8], u64) -> Result<()>,
) -> Result<Option<u64>> {
    if end < floor.saturating_add(8) {
        return Ok(None);
    }
    let mut tail = [0u8; 8];
    read(&mut tail, end - 8)?;
    let n = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let len = 8 * n as u64 + 8;
    if n == 0 || n > MAX_WORDS || end - floor < len {
        return Ok(None);
    }
    Ok(Some(end - len))
}

/// Decodes the section's bytes (from [`start`] to its end): `Lost` if the count or the CRC
/// fails or the hashes are not sorted and distinct.
pub(crate) fn decode(section: &[u8]) -> CommonWords {
    let Some(body_len) = section.len().checked_sub(8) else {
        return CommonWords::Lost;
    };
    let (body, tail) = section.split_at(body_len);
    let n = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let crc = u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]);
    if body.len() != 8 * n || crc32fast::hash(body) != crc {
        return CommonWords::Lost;
    }
    let words: Vec<u64> = body
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    if words.windows(2).any(|w| w[0] >= w[1]) {
        return CommonWords::Lost;
    }
    CommonWords::Listed(words.into_boxed_slice())
}

/// The union of sorted lists, sorted and distinct; `None` past [`MAX_WORDS`].
pub(crate) fn union(lists: &[&[u64]]) -> Option<Vec<u64>> {
    let mut all: Vec<u64> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    (all.len() <= MAX_WORDS).then_some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(words: &[u64]) -> Vec<u8> {
        let mut b = Vec::new();
        write_section(words, &mut |x| {
            b.extend_from_slice(x);
            Ok(())
        })
        .unwrap();
        b
    }

    #[test]
    fn words_held_by_half_the_blocks_are_common() {
        let sets: Vec<Vec<u64>> = (0..10u64)
            .map(|i| {
                let mut s = vec![1, 2];
                if i < 5 {
                    s.push(3); // in exactly half: common
                }
                if i < 4 {
                    s.push(4); // in 4 of 10: not
                }
                s.push(100 + i); // in one
                s
            })
            .collect();
        let refs: Vec<&[u64]> = sets.iter().map(Vec::as_slice).collect();
        assert_eq!(choose(&refs), [1, 2, 3]);
        assert!(choose(&refs[..MIN_BLOCKS - 1]).is_empty());
    }

    #[test]
    fn the_section_round_trips_and_every_flipped_bit_loses_it() {
        let words = [3u64, 9, u64::MAX - 1];
        let b = section(&words);
        assert_eq!(b.len(), 8 * 3 + 8);
        let mut file = vec![0xAAu8; 40];
        file.extend_from_slice(&b);
        let end = file.len() as u64;
        let mut read = |buf: &mut [u8], at: u64| {
            let at = usize::try_from(at).unwrap();
            buf.copy_from_slice(&file[at..at + buf.len()]);
            Ok(())
        };
        let at = start(end, 40, &mut read).unwrap().unwrap();
        assert_eq!(at, 40);
        assert_eq!(start(end, 41, &mut read).unwrap(), None, "below the floor");
        let got = decode(&b);
        assert_eq!(got, CommonWords::Listed(words.into()));
        assert!(got.hides(9) && !got.hides(4));
        for bit in 0..b.len() * 8 {
            let mut bad = b.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&bad), CommonWords::Lost, "bit {bit}");
        }
        assert!(CommonWords::Lost.hides(12345));
        assert!(section(&[]).is_empty());
        assert_eq!(union(&[&[1, 5], &[2, 5, 9]]), Some(vec![1, 2, 5, 9]));
    }
}
