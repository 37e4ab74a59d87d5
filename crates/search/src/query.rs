//! The query: what a search looks for, compiled once, and how one entry is tested.
//!
//! # Words, phrases, regexes
//!
//! A message is cut into *words*: maximal runs of characters that are alphanumeric
//! (`char::is_alphanumeric`) or `_`. Each word is lowercased with [`str::to_lowercase`]
//! (Unicode's *simple + special-casing lowercase*, not full case folding). A query term that is
//! one word matches a message holding that word; a term of several words (`"connection
//! refused"`, or `connection-refused`) is a *phrase*: those words, consecutive, in that order.
//! Every term must match (AND). A regex (the `regex` crate's syntax, case-sensitive unless it
//! says `(?i)`) must match somewhere in the message. Only the message is searched; the other
//! fields are filters.
//!
//! What lowercase (rather than full folding) means for a user: `ERROR`, `Error` and `error` are
//! the same word, and so are `ΣΊΣΥΦΟΣ` and `σίσυφος`, `KEY` and `\u{212A}ey` (the Kelvin sign
//! lowercases to `k`). But `STRASSE` does not find `straße` (full folding would map `ß` to
//! `ss`), and final sigma stays distinct (`σίσυφος` vs `σίσυφοσ`). The sealed-day block
//! filters are built with the same function, so a filter never disagrees with the matcher.
//!
//! # The prefilter
//!
//! Before a frame is checked and decoded, the raw segment bytes are searched for a literal
//! that every matching message must contain ([`Prefilter`]): the longest ASCII query word
//! (ASCII case-insensitively, with aho-corasick), or the literals every regex match starts
//! with (from `regex-syntax`). A frame holding none of them cannot match and is never
//! decoded. The prefilter only ever lets more frames through than match: the decoded message
//! is always tested in full.

use std::ops::Range;

use aho_corasick::AhoCorasick;

pub(crate) use super::prefilter::Prefilter;
use super::{Search, SearchError};
use logstore_store::access::PayloadRef;
use logstore_store::LogEntry;

use logstore_store::access::word_spans;
/// The words of `text`, lowercased: see the module doc. One definition for the block filters
/// that the sealer builds and for the matcher.
pub use logstore_store::access::words;

/// The fields of one stored entry that a search looks at, borrowed from a decoded frame or
/// from an entry of a sealed block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) execution_id: &'a str,
    pub(crate) timestamp: i64,
    pub(crate) level: u8,
    pub(crate) source: &'a str,
    pub(crate) message: &'a str,
    pub(crate) task_id: Option<&'a str>,
}

impl<'a> From<&PayloadRef<'a>> for Fields<'a> {
    fn from(p: &PayloadRef<'a>) -> Fields<'a> {
        Fields {
            execution_id: p.execution_id,
            timestamp: p.timestamp,
            level: p.level,
            source: p.source,
            message: p.message,
            task_id: p.task_id,
        }
    }
}

impl<'a> From<&'a LogEntry> for Fields<'a> {
    fn from(e: &'a LogEntry) -> Fields<'a> {
        Fields {
            execution_id: e.execution_id.as_str(),
            timestamp: e.timestamp,
            level: e.level.to_byte(),
            source: &e.source,
            message: &e.message,
            task_id: e.task_id.as_ref().map(|t| t.as_str()),
        }
    }
}

/// A compiled [`Search`]: build it with [`Search::compile`]. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Query {
    /// Single-word terms, lowercased.
    pub(crate) words: Vec<String>,
    /// Multi-word terms, each lowercased word by word.
    pub(crate) phrases: Vec<Vec<String>>,
    regex: Option<regex::Regex>,
    /// When every term is one ASCII word: one finder per word, to match ASCII messages
    /// without splitting them into words (see [`Query::text_matches`]).
    ascii_words: Option<Vec<AhoCorasick>>,
    pub(crate) min_level: Option<u8>,
    pub(crate) source_prefix: Option<String>,
    pub(crate) task_id: Option<String>,
    pub(crate) execution_prefix: Option<String>,
    pub(crate) since_ms: Option<i64>,
    pub(crate) until_ms: Option<i64>,
    pub(crate) prefilter: Option<Prefilter>,
}

impl Search {
    /// Checks and compiles the query: a term without any word character, or a regex that does
    /// not parse, is refused here, before any file is read.
    pub fn compile(&self) -> Result<Query, SearchError> {
        let mut words = Vec::new();
        let mut phrases = Vec::new();
        for term in &self.terms {
            let w: Vec<String> = super::words(term).collect();
            match w.len() {
                0 => return Err(SearchError::NoWords { term: term.clone() }),
                1 => words.extend(w),
                _ => phrases.push(w),
            }
        }
        words.sort();
        words.dedup();
        let regex = self
            .regex
            .as_deref()
            .map(|re| {
                regex::Regex::new(re).map_err(|e| SearchError::BadRegex {
                    pattern: re.to_owned(),
                    reason: regex_reason(re, &e),
                })
            })
            .transpose()?;
        let tokens = words.iter().chain(phrases.iter().flatten());
        let prefilter = Prefilter::for_words(tokens)
            .or_else(|| self.regex.as_deref().and_then(Prefilter::for_regex));
        let ascii_words = if phrases.is_empty() && words.iter().all(|w| w.is_ascii()) {
            words
                .iter()
                .map(|w| {
                    AhoCorasick::builder()
                        .ascii_case_insensitive(true)
                        .build([w])
                        .ok()
                })
                .collect()
        } else {
            None
        };
        Ok(Query {
            words,
            phrases,
            regex,
            ascii_words,
            min_level: self.filter.min_level.map(|l| l.to_byte()),
            source_prefix: self.filter.source_prefix.clone().filter(|s| !s.is_empty()),
            task_id: self.filter.task_id.as_ref().map(|t| t.as_str().to_owned()),
            execution_prefix: self.execution_prefix.clone().filter(|s| !s.is_empty()),
            since_ms: self.filter.since_ms,
            until_ms: self.filter.until_ms,
            prefilter,
        })
    }
}

/// The regex crate's error in one line: what is wrong and at which byte (its own text draws
/// a caret under the pattern over several lines).
fn regex_reason(re: &str, e: &regex::Error) -> String {
    let located = |kind: &dyn std::fmt::Display, at: usize| format!("{kind} at byte {at}");
    match regex_syntax::Parser::new().parse(re) {
        Err(regex_syntax::Error::Parse(p)) => located(p.kind(), p.span().start.offset),
        Err(regex_syntax::Error::Translate(t)) => located(t.kind(), t.span().start.offset),
        _ => e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl Query {
    /// Whether the entry passes the filters and its message matches every term.
    pub(crate) fn matches(&self, f: &Fields<'_>) -> bool {
        self.filters_pass(f) && self.text_matches(f.message)
    }

    /// Whether the entry passes the filters (level, source, task, execution, time); the
    /// message is not looked at.
    pub(crate) fn filters_pass(&self, f: &Fields<'_>) -> bool {
        self.header_passes(f.execution_id, f.timestamp, f.level)
            && self
                .source_prefix
                .as_deref()
                .is_none_or(|p| f.source.starts_with(p))
            && self.task_id.as_deref().is_none_or(|t| f.task_id == Some(t))
    }

    /// Whether any filter is set (else [`Query::filters_pass`] is always true).
    pub(crate) fn has_filters(&self) -> bool {
        self.min_level.is_some()
            || self.since_ms.is_some()
            || self.until_ms.is_some()
            || self.source_prefix.is_some()
            || self.task_id.is_some()
            || self.execution_prefix.is_some()
    }

    /// Whether the query has words, phrases or a regex (else every message matches).
    pub(crate) fn has_text_terms(&self) -> bool {
        self.has_words() || self.regex.is_some()
    }

    /// When a hit of the word prefilter's word on word boundaries, in an ASCII message,
    /// proves the message matches without looking further: the query is that one ASCII word.
    /// `Some(false)`: such a hit proves that word only (other terms remain to check); `None`:
    /// the prefilter is not a word's, so a hit proves nothing.
    pub(crate) fn word_hit_decides(&self) -> Option<bool> {
        let from_word = self.prefilter.as_ref().is_some_and(|p| p.from_word);
        (from_word && self.ascii_words.is_some())
            .then(|| self.words.len() == 1 && self.regex.is_none())
    }

    /// The filters that need only the first three fields of a payload (which
    /// [`peek_header`](super::live) reads without decoding the rest).
    pub(crate) fn header_passes(&self, execution_id: &str, timestamp: i64, level: u8) -> bool {
        self.min_level.is_none_or(|l| level >= l)
            && self.since_ms.is_none_or(|s| timestamp >= s)
            && self.until_ms.is_none_or(|u| timestamp < u)
            && self
                .execution_prefix
                .as_deref()
                .is_none_or(|p| execution_id.starts_with(p))
    }

    /// Whether `message` matches every term and the regex.
    pub fn text_matches(&self, message: &str) -> bool {
        if let Some(re) = &self.regex {
            if !re.is_match(message) {
                return false;
            }
        }
        if self.words.is_empty() && self.phrases.is_empty() {
            return true;
        }
        // The common case, without allocating: ASCII words in an ASCII message. There a word
        // is an ASCII case-insensitive occurrence with no word character on either side
        // (`is_alphanumeric` is `is_ascii_alphanumeric` on ASCII, and lowercase is ASCII
        // lowercase). Non-ASCII text may hold letters that lowercase to ASCII (the Kelvin
        // sign), so it takes the general path.
        if let Some(finders) = &self.ascii_words {
            if message.is_ascii() {
                return finders
                    .iter()
                    .all(|f| has_ascii_word(f, message.as_bytes()));
            }
        }
        let tokens: Vec<String> = super::words(message).collect();
        self.words.iter().all(|w| tokens.contains(w))
            && self
                .phrases
                .iter()
                .all(|p| tokens.windows(p.len()).any(|win| win == p.as_slice()))
    }

    /// Every query word, from single-word terms and phrases (what a block filter is asked).
    pub(crate) fn tokens(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .chain(self.phrases.iter().flatten())
            .map(String::as_str)
    }

    /// Byte ranges of `message` to highlight: every word that is a query word, and every regex
    /// match; sorted, not overlapping.
    pub fn highlights(&self, message: &str) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        if self.has_words() {
            for r in word_spans(message) {
                let w = message[r.clone()].to_lowercase();
                if self.tokens().any(|t| t == w) {
                    out.push(r);
                }
            }
        }
        if let Some(re) = &self.regex {
            out.extend(
                re.find_iter(message)
                    .map(|m| m.range())
                    .filter(|r| !r.is_empty()),
            );
        }
        out.sort_by_key(|r| (r.start, r.end));
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(out.len());
        for r in out {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    fn has_words(&self) -> bool {
        !self.words.is_empty() || !self.phrases.is_empty()
    }
}

/// Whether `finder`'s word occurs in ASCII `hay` as a whole word. Non-overlapping matches are
/// enough: a match that overlaps an earlier one starts inside a run of word characters, so it
/// is never a whole word.
fn has_ascii_word(finder: &AhoCorasick, hay: &[u8]) -> bool {
    finder
        .find_iter(hay)
        .any(|m| on_ascii_word_boundaries(hay, m.start()..m.end()))
}

/// Whether `at` of ASCII `hay` has no word character on either side.
pub(crate) fn on_ascii_word_boundaries(hay: &[u8], at: Range<usize>) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let before = at.start.checked_sub(1).and_then(|i| hay.get(i).copied());
    let after = hay.get(at.end).copied();
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn q(terms: &[&str], regex: Option<&str>) -> Query {
        Search {
            terms: terms.iter().map(|s| (*s).to_owned()).collect(),
            regex: regex.map(str::to_owned),
            ..Search::default()
        }
        .compile()
        .unwrap()
    }

    #[test]
    fn words_split_on_non_word_characters_and_lowercase() {
        let w: Vec<String> = words("Connection-REFUSED: état_2 ÉTÉ!x").collect();
        assert_eq!(w, ["connection", "refused", "état_2", "été", "x"]);
    }

    #[test]
    fn words_match_on_boundaries_only() {
        let query = q(&["fail"], None);
        assert!(query.text_matches("it did FAIL."));
        assert!(!query.text_matches("it failed"));
        assert!(!query.text_matches("unfail_x"));
        assert!(query.text_matches("failfail fail_ fail"));
        assert!(!query.text_matches("é fail_ xfail"));
        assert!(query.text_matches("é FAIL"));
        // Both paths (ASCII message, and not) agree on the Kelvin sign.
        assert!(q(&["kelvin"], None).text_matches("\u{212A}elvin"));
    }

    #[test]
    fn all_terms_must_match_and_a_phrase_is_consecutive() {
        let query = q(&["connection refused", "db"], None);
        assert!(query.text_matches("db: Connection  refused (os error 111)"));
        assert!(!query.text_matches("db: refused connection"));
        assert!(!query.text_matches("connection refused"));
    }

    #[test]
    fn case_folding_is_simple_lowercase() {
        // Documented choice: str::to_lowercase, not full case folding.
        assert!(q(&["σίσυφος"], None).text_matches("ΣΊΣΥΦΟΣ rolls"));
        assert!(q(&["key"], None).text_matches("\u{212A}EY"));
        assert!(q(&["STRASSE"], None).text_matches("strasse"));
        assert!(!q(&["STRASSE"], None).text_matches("straße"));
        assert!(!q(&["ss"], None).text_matches("ß"));
    }

    #[test]
    fn bad_input_is_refused_with_what_was_wrong() {
        let e = Search {
            regex: Some("a(".to_owned()),
            ..Search::default()
        }
        .compile()
        .unwrap_err();
        assert!(e.to_string().contains("a("), "{e}");
        let e = Search {
            terms: vec!["--".to_owned()],
            ..Search::default()
        }
        .compile()
        .unwrap_err();
        assert!(matches!(e, SearchError::NoWords { .. }), "{e}");
    }

    #[test]
    fn highlights_cover_query_words_and_regex_matches() {
        let query = q(&["error"], Some("[0-9]+"));
        let m = "Error 42: error, errors";
        let h: Vec<&str> = query.highlights(m).into_iter().map(|r| &m[r]).collect();
        assert_eq!(h, ["Error", "42", "error"]);
    }
}
