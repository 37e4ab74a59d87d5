//! Matching a query against every message of a sealed block at once.
//!
//! A block stores its messages one after the other in one column. Instead of testing message
//! after message, the query's prefilter (the longest ASCII query word, ASCII
//! case-insensitively, or a regex's prefix literals) runs once over the whole column; each hit
//! is mapped to its message through the message offsets, and only that message is tested. A
//! hit that crosses from one message into the next belongs to neither: the search looks again
//! inside the first message only. The semantics stay those of [`Query::text_matches`]
//! (`query.rs`): for the common query of one ASCII word, a hit on word boundaries inside an
//! ASCII message decides without further work (the same test `text_matches` makes there);
//! everything else (other terms, non-ASCII messages, regexes) calls `text_matches` on the
//! message that holds the hit.

use std::cell::RefCell;
use std::ops::Range;

use super::prefilter::LiteralHit;
use super::query::on_ascii_word_boundaries;
use super::Query;

/// Calls `each(k)`, in increasing `k`, for every message `k` of the column `text` (message
/// `k` is `text[offs[k]..offs[k + 1]]`, offsets on char boundaries) that matches the query's
/// words, phrases and regex. Stops when `each` returns false.
pub(crate) fn for_each_match(
    query: &Query,
    text: &str,
    offs: &[u32],
    mut each: impl FnMut(usize) -> bool,
) {
    let n = offs.len().saturating_sub(1);
    let span = |k: usize| offs[k] as usize..offs[k + 1] as usize;
    let message = |k: usize| text.get(span(k)).unwrap_or_default();
    if !query.has_text_terms() {
        for k in 0..n {
            if !each(k) {
                return;
            }
        }
        return;
    }
    let Some(prefilter) = &query.prefilter else {
        for k in 0..n {
            if query.text_matches(message(k)) && !each(k) {
                return;
            }
        }
        return;
    };
    let hay = text.as_bytes();
    let decides = query.word_hit_decides();
    let all_ascii = hay.is_ascii();
    LOWERED.with_borrow_mut(|lowered| {
        // The column is searched lowered (see `Prefilter::lowered`): ASCII lowering keeps
        // every offset. Only the Kelvin sign lowercases to an ASCII letter (`k`): a column
        // that may hold it, with a word that has a `k`, takes the searchers that know it.
        let low = match prefilter.lowered() {
            Some(finder) if all_ascii || !finder.needle().contains(&b'k') => {
                lowered.clear();
                lowered.extend(hay.iter().map(u8::to_ascii_lowercase));
                Some((finder, &lowered[..]))
            }
            _ => None,
        };
        let find = |span: Range<usize>| match low {
            Some((finder, low)) => finder.find(&low[span.clone()]).map(|at| LiteralHit {
                at: span.start + at..span.start + at + finder.needle().len(),
                word: true,
            }),
            None => prefilter.find_in_column(hay, span),
        };
        scan(query, text, offs, decides, all_ascii, &find, &mut each);
    });
}

thread_local! {
    /// The lowered copy of the column being searched, reused from block to block.
    static LOWERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The loop of [`for_each_match`] over the prefilter's hits, `find(span)` giving the first
/// hit inside `span`.
fn scan(
    query: &Query,
    text: &str,
    offs: &[u32],
    decides: Option<bool>,
    all_ascii: bool,
    find: &dyn Fn(Range<usize>) -> Option<LiteralHit>,
    each: &mut dyn FnMut(usize) -> bool,
) {
    let hay = text.as_bytes();
    let n = offs.len().saturating_sub(1);
    let span = |k: usize| offs[k] as usize..offs[k + 1] as usize;
    let message = |k: usize| text.get(span(k)).unwrap_or_default();
    let (mut from, mut k) = (0usize, 0usize);
    while let Some(mut hit) = find(from..hay.len()) {
        // The message holding the hit's start (empty messages hold nothing).
        while k < n && offs[k + 1] as usize <= hit.at.start {
            k += 1;
        }
        if k >= n {
            return;
        }
        let msg = span(k);
        if hit.at.end > msg.end {
            // It runs into the next message: look again inside this one only.
            match find(from.max(msg.start)..msg.end) {
                Some(inner) => hit = inner,
                None => {
                    from = msg.end;
                    continue;
                }
            }
        }
        let matched = match decides {
            Some(decided) if hit.word && (all_ascii || hay[msg.clone()].is_ascii()) => {
                let within = hit.at.start - msg.start..hit.at.end - msg.start;
                if !on_ascii_word_boundaries(&hay[msg.clone()], within) {
                    // Inside a longer word. A later hit that overlaps this one starts after a
                    // word character, so it is not on a boundary either: go on after it.
                    from = hit.at.end;
                    continue;
                }
                decided || query.text_matches(message(k))
            }
            _ => query.text_matches(message(k)),
        };
        if matched && !each(k) {
            return;
        }
        from = msg.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::tests::q;

    /// The column of `msgs` and its offsets.
    fn column(msgs: &[&str]) -> (String, Vec<u32>) {
        let mut text = String::new();
        let mut offs = vec![0u32];
        for m in msgs {
            text.push_str(m);
            offs.push(u32::try_from(text.len()).unwrap());
        }
        (text, offs)
    }

    fn matching(query: &Query, msgs: &[&str]) -> Vec<usize> {
        let (text, offs) = column(msgs);
        let mut out = Vec::new();
        for_each_match(query, &text, &offs, |k| {
            out.push(k);
            true
        });
        // Always what the message-by-message test says.
        let naive: Vec<usize> = (0..msgs.len())
            .filter(|&k| query.text_matches(msgs[k]))
            .collect();
        assert_eq!(out, naive, "{msgs:?}");
        out
    }

    #[test]
    fn words_at_column_and_message_boundaries() {
        let fix = q(&["fix"], None);
        assert_eq!(matching(&fix, &["fix", "a fix.", "fix"]), [0, 1, 2]);
        // "fi" + "x": the hit spans two messages and counts for neither.
        assert_eq!(matching(&fix, &["a fi", "x b"]), Vec::<usize>::new());
        // Glued to the next message's text, a word still ends at its message's end.
        assert_eq!(matching(&fix, &["the fix", "ed it"]), [0]);
        assert_eq!(matching(&fix, &["pre", "fix"]), [1]);
        // A spanning hit must not hide a hit inside the first message.
        assert_eq!(matching(&q(&["aa"], None), &["x aa", "a"]), [0]);
        assert_eq!(matching(&q(&["aa"], None), &["xaa", "a aa"]), [1]);
        assert_eq!(
            matching(&fix, &["", "FIX", "", "prefix fix_", "fixfix FiX"]),
            [1, 4]
        );
        assert_eq!(matching(&fix, &[]), Vec::<usize>::new());
    }

    #[test]
    fn non_ascii_messages_take_the_full_test() {
        let fix = q(&["fix"], None);
        // 'é' is a letter: "éfix" is one word, though the byte before 'f' is not ASCII.
        assert_eq!(matching(&fix, &["éfix", "é fix", "fixé", "fix é"]), [1, 3]);
        // The capital I with dot stands for an 'i' to a tokenizer that lowercases first only;
        // ours splits first.
        assert_eq!(matching(&fix, &["f\u{130}x", "FIX", "\u{130} fix"]), [1, 2]);
        // The Kelvin sign lowercases to 'k'.
        let key = q(&["key"], None);
        assert_eq!(matching(&key, &["a \u{212A}EY", "keys", "KEY"]), [0, 2]);
        // Words too long to spell out their case variants are searched in the lowered column,
        // ASCII or not; with a `k`, a non-ASCII column keeps the search that knows the Kelvin
        // sign.
        let long = q(&["installed"], None);
        let msgs = [
            "Jörg INSTALLED it",
            "reinstalled",
            "installedx Installed,",
            "ünïcode",
            "installed",
            "x-installed-y",
        ];
        assert_eq!(matching(&long, &msgs), [0, 2, 4, 5]);
        assert_eq!(matching(&long, &["a", "INSTALLED", "b installed"]), [1, 2]);
        let kerberos = q(&["kerberos"], None);
        assert_eq!(
            matching(
                &kerberos,
                &["é", "\u{212A}ERBEROS ticket", "kerberos5", "Kerberos."]
            ),
            [1, 3]
        );
    }

    #[test]
    fn several_terms_phrases_and_regexes() {
        let two = q(&["fix", "bug"], None);
        assert_eq!(
            matching(&two, &["fix bug", "fix", "bug fix", "bugfix"]),
            [0, 2]
        );
        let phrase = q(&["connection refused"], None);
        assert_eq!(
            matching(&phrase, &["connection", "refused", "Connection  REFUSED!"]),
            [2]
        );
        let re = q(&[], Some("CVE-[0-9]{4}-[0-9]{4,}"));
        assert_eq!(
            matching(&re, &["CVE-2024-", "12345", "x CVE-2024-12345", "CVE-1-1"]),
            [2]
        );
        // Literals that start at the same place, the longer one running into the next message.
        let alt = q(&[], Some("abc|ab"));
        assert_eq!(matching(&alt, &["xab", "c", "abc"]), [0, 2]);
        let anchored = q(&[], Some("^err"));
        assert_eq!(matching(&anchored, &["x", "err", "an err"]), [1]);
        // Non-ASCII words (no prefilter) and filters only.
        assert_eq!(matching(&q(&["été"], None), &["ÉTÉ", "ete"]), [0]);
        assert_eq!(matching(&q(&[], None), &["a", ""]), [0, 1]);
    }

    #[test]
    fn each_can_stop_the_scan() {
        let (text, offs) = column(&["fix", "fix", "fix"]);
        let mut seen = 0;
        for_each_match(&q(&["fix"], None), &text, &offs, |_| {
            seen += 1;
            seen < 2
        });
        assert_eq!(seen, 2);
    }
}
