//! The prefilter: a literal that every matching message must contain, found before any
//! message is decoded or tested.
//!
//! For words, the longest ASCII query word (a long word is usually a rare one), ASCII
//! case-insensitively, plus the non-ASCII characters that lowercase to its ASCII letters (the
//! Kelvin sign for `k`, the capital I with dot for `i`). For a regex, the literals every match
//! starts with (from `regex-syntax`), if there are few. A hit only says "maybe": the message
//! is always tested in full, except where [`column`](super::column) can decide from the hit.
//!
//! Two ways to search: [`Prefilter::find`] (aho-corasick) over the raw frames of a segment,
//! and [`Prefilter::column_hits`] over a sealed block's message column, which for a short word
//! spells out its case variants for the faster SIMD "Teddy" searcher.

use std::ops::Range;

use aho_corasick::AhoCorasick;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// A literal search over raw segment bytes that finds every frame that may match (see the
/// module doc). Frames without a hit are never decoded.
#[derive(Debug, Clone)]
pub(crate) struct Prefilter {
    finder: AhoCorasick,
    /// For a short word, to search a block's message column ([`ColumnHits`]): every ASCII
    /// case variant of it spelled out (then the Kelvin sign if the word has a `k`), searched
    /// with the SIMD "Teddy" searcher: several times faster than `finder`, whose
    /// case-insensitive mode looks for the word's rarest bytes one by one and confirms each.
    /// The number of case variants comes with it. The capital I with dot is left out: see
    /// [`CAPITAL_I_DOT`] (and a 2-byte pattern makes Teddy much slower).
    packed: Option<(aho_corasick::packed::Searcher, usize)>,
    /// The word in lower case: with the column lowered once (ASCII letters only, a copy), it is
    /// searched with `memchr`'s SIMD substring search, several times faster than either
    /// searcher above on a word too long to spell out (`search --count installed` over 1 M
    /// messages: 0.17 s to 0.06 s). Not for a word with a `k` in a column with non-ASCII
    /// text, which may hold the Kelvin sign.
    lower: Option<memchr::memmem::Finder<'static>>,
    /// Built from a query word: pattern 0 is that word (the others the non-ASCII characters
    /// that lowercase to its letters). Otherwise from a regex.
    pub(crate) from_word: bool,
}

/// At most this many letters in a word for [`Prefilter`] to spell out its case variants
/// (2^5 = 32; Teddy stays fast up to about 64 patterns).
const MAX_VARIANT_LETTERS: usize = 5;

/// Every ASCII case variant of `word`.
fn case_variants(word: &str) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::with_capacity(word.len())];
    for b in word.bytes() {
        if b.is_ascii_alphabetic() {
            let upper: Vec<Vec<u8>> = out
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    v.push(b.to_ascii_uppercase());
                    v
                })
                .collect();
            for v in &mut out {
                v.push(b.to_ascii_lowercase());
            }
            out.extend(upper);
        } else {
            for v in &mut out {
                v.push(b);
            }
        }
    }
    out
}

/// The Kelvin sign lowercases to ASCII `k`, so a frame holding it may hold a word with `k`.
const KELVIN: &str = "\u{212A}";
/// Capital I with dot lowercases to `i` + U+0307: a tokenizer that lowercases before it splits
/// would see an `i` there. Ours splits first (a word holding it lowercases to non-ASCII, so it
/// never equals an ASCII query word), so only the segment prefilter lists it, to be right for
/// either order; the column search leaves it out.
const CAPITAL_I_DOT: &str = "\u{130}";

/// At most this many literals from a regex; past it the regex is searched without prefilter.
const MAX_REGEX_LITERALS: usize = 64;

impl Prefilter {
    /// The longest ASCII word (a long word is usually a rare one): matched ASCII
    /// case-insensitively, plus the two non-ASCII characters that lowercase to ASCII letters.
    /// None if every word has non-ASCII letters (their upper-case forms are not one literal).
    pub(crate) fn for_words<'a>(tokens: impl Iterator<Item = &'a String>) -> Option<Prefilter> {
        let best = tokens.filter(|t| t.is_ascii()).max_by_key(|t| t.len())?;
        let mut patterns = vec![best.as_str()];
        if best.contains('k') {
            patterns.push(KELVIN);
        }
        if best.contains('i') {
            patterns.push(CAPITAL_I_DOT);
        }
        let finder = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&patterns)
            .ok()?;
        let letters = best.bytes().filter(u8::is_ascii_alphabetic).count();
        let packed = (letters <= MAX_VARIANT_LETTERS)
            .then(|| {
                let variants = case_variants(best);
                let n = variants.len();
                let kelvin = best.contains('k').then(|| KELVIN.as_bytes().to_vec());
                aho_corasick::packed::Searcher::new(variants.into_iter().chain(kelvin))
                    .map(|s| (s, n))
            })
            .flatten();
        Some(Prefilter {
            finder,
            packed,
            lower: Some(memchr::memmem::Finder::new(&best.to_ascii_lowercase()).into_owned()),
            from_word: true,
        })
    }

    /// The literals every match of `re` starts with, if there are few and none is empty.
    pub(crate) fn for_regex(re: &str) -> Option<Prefilter> {
        let hir = regex_syntax::Parser::new().parse(re).ok()?;
        let mut seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
        // Shorter common prefixes, fewer of them (what the regex crate does for its own
        // prefilter); may give up (infinite) when they would be too short to help.
        seq.optimize_for_prefix_by_preference();
        let lits = seq.literals()?;
        if lits.is_empty()
            || lits.len() > MAX_REGEX_LITERALS
            || lits.iter().any(|l| l.as_bytes().is_empty())
        {
            return None;
        }
        let finder = AhoCorasick::new(lits.iter().map(|l| l.as_bytes())).ok()?;
        Some(Prefilter {
            finder,
            packed: None,
            lower: None,
            from_word: false,
        })
    }

    /// The offset of the first hit in `hay` at or after `from`.
    pub(crate) fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        let input = aho_corasick::Input::new(hay).span(from..hay.len());
        self.finder.find(input).map(|m| m.start())
    }

    /// The searcher of an all-ASCII column already lowered, if this prefilter has one.
    pub(crate) fn lowered(&self) -> Option<&memchr::memmem::Finder<'static>> {
        self.lower.as_ref()
    }

    /// The first hit lying wholly inside `span` of a block's message column `hay` (leftmost
    /// first).
    pub(crate) fn find_in_column(&self, hay: &[u8], span: Range<usize>) -> Option<LiteralHit> {
        match &self.packed {
            Some((packed, variants)) => {
                packed
                    .find_in(hay, aho_corasick::Span::from(span))
                    .map(|m| LiteralHit {
                        at: m.range(),
                        word: m.pattern().as_usize() < *variants,
                    })
            }
            None => {
                let input = aho_corasick::Input::new(hay).span(span);
                self.finder.find(input).map(|m| LiteralHit {
                    at: m.range(),
                    word: self.from_word && m.pattern().as_usize() == 0,
                })
            }
        }
    }
}

/// One hit of a [`Prefilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiteralHit {
    /// Where.
    pub(crate) at: Range<usize>,
    /// A hit of the query word itself, in ASCII (not of a non-ASCII character that lowercases
    /// to one of its letters, nor of a regex literal).
    pub(crate) word: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::tests::q;

    #[test]
    fn prefilter_finds_every_frame_that_may_match() {
        let p = q(&["key", "a"], None).prefilter.unwrap();
        assert_eq!(p.find(b"xx KEY", 0), Some(3));
        assert_eq!(p.find("\u{212A}ey".as_bytes(), 0), Some(0));
        assert_eq!(p.find(b"k e y", 0), None);
        // Non-ASCII words have no prefilter: every frame is decoded.
        assert!(q(&["été"], None).prefilter.is_none());
    }

    #[test]
    fn short_words_are_searched_by_their_spelled_out_case_variants() {
        let v = case_variants("a_1b");
        assert_eq!(v.len(), 4);
        assert!(v.contains(&b"A_1b".to_vec()) && v.contains(&b"a_1B".to_vec()));
        let short = q(&["fix"], None).prefilter.unwrap();
        let long = q(&["fixable"], None).prefilter.unwrap();
        assert!(short.packed.is_some() && long.packed.is_none());
        let kit = q(&["kit"], None).prefilter.unwrap();
        // Both kinds find what aho-corasick finds (but the capital I with dot).
        for (p, hay) in [
            (&short, "a FiX b fIxfix"),
            (&short, "fi x \u{130} fIx"),
            (&long, "un-FIXABLE"),
            (&kit, "a \u{212A}it \u{130} KIT"),
        ] {
            let h = hay.as_bytes();
            let mut all = Vec::new();
            let mut from = 0;
            while let Some(hit) = p.find_in_column(h, from..h.len()) {
                from = hit.at.start + 1;
                all.push((hit.at, hit.word));
            }
            let by_ac: Vec<_> = p
                .finder
                .find_overlapping_iter(h)
                .filter(|m| &hay[m.range()] != CAPITAL_I_DOT)
                .map(|m| (m.range(), !hay[m.range()].contains(KELVIN)))
                .collect();
            assert_eq!(all, by_ac, "{hay}");
        }
        // A span excludes hits that run past its end.
        assert_eq!(short.find_in_column(b"fix", 0..2), None);
    }

    #[test]
    fn the_kelvin_sign_is_the_only_non_ascii_character_that_lowercases_to_ascii() {
        // Why the column search needs no other non-ASCII pattern: a word holding any other
        // non-ASCII character lowercases to non-ASCII, so it never equals an ASCII query word.
        let to_ascii: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| !c.is_ascii() && c.to_lowercase().all(|l| l.is_ascii()))
            .collect();
        assert_eq!(to_ascii, ['\u{212A}']);
        assert!(!CAPITAL_I_DOT.to_lowercase().is_ascii());
    }

    #[test]
    fn regex_prefilter_uses_required_prefix_literals() {
        let p = q(&[], Some("(timeout|refused) after [0-9]+ms"))
            .prefilter
            .unwrap();
        assert!(p.find(b"xx refused after 5ms", 0).is_some());
        assert!(p.find(b"nothing here", 0).is_none());
        // A regex that can start anywhere gets none.
        assert!(q(&[], Some(r"\w+ms")).prefilter.is_none());
        assert!(q(&[], Some("(?i)x")).prefilter.is_some());
    }
}
