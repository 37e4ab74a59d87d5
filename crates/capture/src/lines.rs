//! Bytes from a pipe -> lines, whatever the read boundaries.
//!
//! A line ends at `\n`; one `\r` right before the `\n` belongs to the line ending (`\r\n`).
//! A last line without `\n` is a line too; an empty stream has no lines. Bytes are not decoded
//! here: invalid UTF-8 and NUL bytes pass through untouched.
//!
//! A line longer than `max` bytes is emitted as several [`Piece`]s of at most `max` bytes, cut
//! where [`cut_point`] says (never inside a UTF-8 character). A piece is emitted as soon as the
//! splitter has seen enough to know the line goes on, so a 50 MB line never sits in memory:
//! the splitter buffers at most `max + 2` bytes (the `+ 2` is how it tells a full line that ends
//! in `\r\n` from one that goes on).
//!
//! Two exceptions to `max`, both so that what the capture layer does next works on whole text:
//!
//! * A line that starts with `0x1E` (a `context.log` record) may be held whole up to
//!   `record_max` bytes ([`with_record_max`](LineSplitter::with_record_max)), so a record longer
//!   than one entry still reaches the parser in one piece and keeps its level on every part.
//!   Only such a line makes the buffer grow past `max + 2`.
//! * A cut never falls inside one of the [`keep_whole`](LineSplitter::keep_whole) words (the
//!   execution's secrets): the cut moves back to before any tail of the piece that could be
//!   the start of one, so the word lands whole in the next piece, where masking finds it.
//!
//! The output depends only on the byte stream, never on how reads chopped it; a property test
//! below checks that.

use super::limits::cut_point;
use super::protocol::RECORD_SEPARATOR;

/// A line, or part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The bytes, without the line ending.
    pub bytes: &'a [u8],
    /// True if the same line goes on in the next piece.
    pub continues: bool,
}

/// Splits a byte stream into lines, keeping at most `max + 2` bytes between calls (or
/// `record_max + 2` for a record line).
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    record_max: usize,
    pending: Vec<u8>,
    /// True once a piece of the current line was emitted.
    in_line: bool,
    keep_whole: Vec<String>,
}

impl LineSplitter {
    /// A splitter whose pieces are at most `max` bytes (at least 4: one character of any width).
    pub fn new(max: usize) -> LineSplitter {
        let max = max.max(4);
        LineSplitter {
            max,
            record_max: max,
            // Allocated once: `pending` never grows past this, but for a record line.
            pending: Vec::with_capacity(max + 2),
            in_line: false,
            keep_whole: Vec::new(),
        }
    }

    /// Lets a line that starts with `0x1E` grow to `record_max` bytes (at least `max`) before
    /// it is cut.
    pub fn with_record_max(mut self, record_max: usize) -> LineSplitter {
        self.record_max = record_max.max(self.max);
        self
    }

    /// Sets the words no cut may fall inside (a word longer than a piece cannot be kept whole).
    pub fn keep_whole(&mut self, words: Vec<String>) {
        self.keep_whole = words;
    }

    /// The longest piece the current line may be emitted in: `record_max` for a record line
    /// not cut yet (its first byte is the first of `pending`, or of `rest` if nothing is
    /// pending), else `max`.
    fn limit(&self, rest: &[u8]) -> usize {
        let first = self.pending.first().or(rest.first());
        if !self.in_line && first == Some(&RECORD_SEPARATOR) {
            self.record_max
        } else {
            self.max
        }
    }

    /// Bytes held back waiting for the rest of their line.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// The buffer's allocation, to check that memory stays bounded.
    pub fn buffer_capacity(&self) -> usize {
        self.pending.capacity()
    }

    /// Feeds the next bytes of the stream; `emit` receives every piece that is now complete.
    pub fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(Piece<'_>)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            // Look no further than what could still belong to a piece of at most `max` bytes
            // plus its `\r\n`: beyond that the line certainly has to be cut.
            let limit = self.limit(rest);
            let room = limit + 2 - self.pending.len();
            let step = &rest[..rest.len().min(room)];
            let mut out = Cut {
                max: self.max,
                keep_whole: &self.keep_whole,
            };
            match step.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    out.max = limit;
                    if self.pending.is_empty() {
                        // Fast path: the whole line is inside this chunk, no copy.
                        out.emit_line(&rest[..i], &mut emit);
                    } else {
                        self.pending.extend_from_slice(&rest[..i]);
                        out.emit_line(&self.pending, &mut emit);
                        self.pending.clear();
                    }
                    self.in_line = false;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.pending.extend_from_slice(step);
                    rest = &rest[step.len()..];
                    // limit + 2 bytes and no `\n`: even if the last is a `\r`, the line has
                    // more than `limit` bytes of text, so its first pieces are final now: as
                    // many as it takes to leave less than `max + 2` (one for a plain line).
                    let full = self.pending.len() >= limit + 2;
                    while full && self.pending.len() >= self.max + 2 {
                        let cut = out.point(&self.pending[..self.max]);
                        emit(Piece {
                            bytes: &self.pending[..cut],
                            continues: true,
                        });
                        self.in_line = true;
                        // Moves a few bytes to the front (up to a record's worth, once, for a
                        // record over `record_max`).
                        self.pending.drain(..cut);
                    }
                }
            }
        }
    }

    /// Ends the stream: emits the last line if it had no `\n`.
    pub fn finish(&mut self, mut emit: impl FnMut(Piece<'_>)) {
        if !self.pending.is_empty() {
            let out = Cut {
                max: self.limit(&[]),
                keep_whole: &self.keep_whole,
            };
            // A `\r` without `\n` is text, not a line ending, so nothing is stripped here.
            out.emit_text(&self.pending, &mut emit);
            self.pending.clear();
        }
        self.in_line = false;
    }
}

/// How the end of a line is cut: pieces of at most `max`, never inside a UTF-8 character or a
/// word to keep whole.
struct Cut<'a> {
    max: usize,
    keep_whole: &'a [String],
}

impl Cut<'_> {
    /// Emits a line whose `\n` was seen, without its `\r`.
    fn emit_line(&self, line: &[u8], emit: &mut impl FnMut(Piece<'_>)) {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        self.emit_text(text, emit);
    }

    /// Emits the last part of a line.
    fn emit_text(&self, text: &[u8], emit: &mut impl FnMut(Piece<'_>)) {
        let mut text = text;
        while text.len() > self.max {
            let cut = self.point(&text[..self.max]);
            emit(Piece {
                bytes: &text[..cut],
                continues: true,
            });
            text = &text[cut..];
        }
        emit(Piece {
            bytes: text,
            continues: false,
        });
    }

    /// Where to cut `window` (a full piece's worth of a line that goes on): [`cut_point`],
    /// moved back to before any tail of the piece that is the start of a word to keep whole.
    /// Never 0 for a window of 4 bytes or more.
    ///
    /// Moving back for one word can end the piece with the start of another (or of the same
    /// word, if it overlaps itself), so this repeats; but never further back than twice the
    /// longest word, so that a line of such starts still comes out in near-full pieces and
    /// cannot be turned into thousands of tiny entries.
    fn point(&self, window: &[u8]) -> usize {
        let first = cut_point(window);
        let longest = self.keep_whole.iter().map(String::len).max().unwrap_or(0);
        let floor = first.saturating_sub(2 * longest).max(1);
        let mut cut = first;
        loop {
            let before = cut;
            for word in self.keep_whole.iter().map(String::as_bytes) {
                // The longest proper prefix of `word` that the piece ends with.
                let started = (1..word.len().min(cut + 1))
                    .rev()
                    .find(|&k| window[..cut].ends_with(&word[..k]));
                if let Some(k) = started.filter(|&k| cut - k >= floor) {
                    cut -= k;
                }
            }
            if cut == before {
                return cut;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs the splitter over `chunks` and returns each line as its concatenated pieces, plus
    /// every piece length.
    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<usize>) {
        split_with(LineSplitter::new(max), chunks)
    }

    fn split_with(mut s: LineSplitter, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<usize>) {
        let mut lines = Vec::new();
        let mut current = Vec::new();
        let mut sizes = Vec::new();
        let mut on_piece = |p: Piece<'_>| {
            sizes.push(p.bytes.len());
            current.extend_from_slice(p.bytes);
            if !p.continues {
                lines.push(std::mem::take(&mut current));
            }
        };
        for c in chunks {
            s.push(c, &mut on_piece);
        }
        s.finish(&mut on_piece);
        assert!(current.is_empty(), "a line was left open");
        (lines, sizes)
    }

    /// The reference: split the whole stream at once.
    fn reference_lines(data: &[u8]) -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = data
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect();
        // `split` yields a last element after a final `\n` (or for empty input): it is not a line.
        if data.is_empty() || data.ends_with(b"\n") {
            lines.pop();
        } else if let Some(last) = lines.last_mut() {
            // The final unterminated line keeps its `\r`.
            if data.ends_with(b"\r") {
                last.push(b'\r');
            }
        }
        lines
    }

    #[test]
    fn crlf_and_last_line_without_newline() {
        let (lines, _) = split(64, &[b"one\r\ntwo\nthree"]);
        assert_eq!(lines, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn crlf_split_across_reads() {
        let (lines, _) = split(64, &[b"a\r", b"\nb\r", b"\n"]);
        assert_eq!(lines, [b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn empty_lines_are_lines_and_empty_stream_has_none() {
        let (lines, _) = split(64, &[b"\n\nx\n"]);
        assert_eq!(lines, [vec![], vec![], b"x".to_vec()]);
        assert!(split(64, &[]).0.is_empty());
    }

    #[test]
    fn invalid_utf8_and_nul_pass_through() {
        let (lines, _) = split(64, &[b"\xFF\xFEa\0b\n\0"]);
        assert_eq!(lines, [b"\xFF\xFEa\0b".to_vec(), b"\0".to_vec()]);
    }

    #[test]
    fn long_line_is_cut_into_pieces_of_at_most_max() {
        let line = vec![b'x'; 25];
        let (lines, sizes) = split(8, &[&line, b"\n"]);
        assert_eq!(lines, [line]);
        assert_eq!(sizes, [8, 8, 8, 1]);
    }

    #[test]
    fn line_of_exactly_max_is_one_piece_even_with_crlf() {
        let (_, sizes) = split(8, &[b"12345678", b"\r", b"\n"]);
        assert_eq!(sizes, [8]);
        let (_, sizes) = split(8, &[b"12345678"]);
        assert_eq!(sizes, [8]);
    }

    #[test]
    fn cut_never_splits_a_character() {
        // 7 ASCII bytes then "€" (3 bytes): a cut at 8 would split it.
        let (lines, sizes) = split(8, &["1234567€€€\n".as_bytes()]);
        assert_eq!(lines, ["1234567€€€".as_bytes().to_vec()]);
        assert_eq!(sizes, [7, 6, 3]);
    }

    #[test]
    fn memory_stays_bounded_on_a_huge_line() {
        let mut s = LineSplitter::new(1024);
        let chunk = vec![b'y'; 64 * 1024];
        let mut total = 0;
        for _ in 0..50 {
            s.push(&chunk, |p| total += p.bytes.len());
            assert!(s.buffered() <= 1024 + 2);
        }
        assert_eq!(s.buffer_capacity(), 1024 + 2, "the buffer never grew");
        s.finish(|p| total += p.bytes.len());
        assert_eq!(total, 50 * 64 * 1024);
    }

    #[test]
    fn a_cut_never_falls_inside_a_word_to_keep_whole() {
        // Pieces of 8: "xxxxxSEC|RET..." would cut the word; the piece ends before it.
        let mut s = LineSplitter::new(8);
        s.keep_whole(vec!["SECRET".into()]);
        let mut pieces = Vec::new();
        s.push(b"xxxxxSECRETyyyyyyyyy\n", |p| pieces.push(p.bytes.to_vec()));
        assert_eq!(
            pieces,
            [b"xxxxx".to_vec(), b"SECRETyy".to_vec(), b"yyyyyyy".to_vec()]
        );
        // A line of nothing but starts of a word still comes out in near-full pieces.
        let mut s = LineSplitter::new(64);
        s.keep_whole(vec!["ab".into()]);
        let mut sizes = Vec::new();
        s.push(&b"a".repeat(640), |p| sizes.push(p.bytes.len()));
        s.finish(|p| sizes.push(p.bytes.len()));
        assert!(
            sizes.iter().rev().skip(1).all(|&n| n >= 64 - 4),
            "{sizes:?}"
        );
    }

    #[test]
    fn a_record_line_is_held_whole_up_to_record_max() {
        let mut s = LineSplitter::new(8).with_record_max(32);
        let mut pieces = Vec::new();
        let record = [&[RECORD_SEPARATOR][..], &[b'r'; 20]].concat();
        for chunk in record.chunks(3) {
            s.push(chunk, |p| pieces.push((p.bytes.to_vec(), p.continues)));
        }
        s.push(b"\nplain line here\n", |p| {
            pieces.push((p.bytes.to_vec(), p.continues))
        });
        assert_eq!(pieces[0], (record.clone(), false), "one piece of 21 bytes");
        assert_eq!(pieces[1].0.len(), 8, "a plain line is cut at max");
        // Longer than record_max: cut into pieces of max, the first with the separator.
        let long = [&[RECORD_SEPARATOR][..], &[b'r'; 40]].concat();
        let (lines, sizes) = {
            let mut s = LineSplitter::new(8).with_record_max(32);
            let mut sizes = Vec::new();
            let mut line = Vec::new();
            s.push(&long, |p| {
                sizes.push(p.bytes.len());
                line.extend_from_slice(p.bytes)
            });
            s.finish(|p| {
                sizes.push(p.bytes.len());
                line.extend_from_slice(p.bytes)
            });
            (line, sizes)
        };
        assert_eq!(lines, long);
        assert!(sizes.iter().all(|&n| n <= 8), "{sizes:?}");
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_lines(
            data in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xE2u8), Just(0x82u8), Just(0xACu8), any::<u8>(), Just(b'a'), Just(RECORD_SEPARATOR)],
                0..200,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            max in 4usize..16,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for c in cuts {
                chunks.push(&data[start..c]);
                start = c;
            }
            chunks.push(&data[start..]);

            let (whole, whole_sizes) = split(max, &[&data]);
            let (chunked, chunked_sizes) = split(max, &chunks);
            prop_assert_eq!(&whole, &chunked);
            prop_assert_eq!(&whole_sizes, &chunked_sizes);
            prop_assert_eq!(whole, reference_lines(&data));
            prop_assert!(whole_sizes.iter().all(|&s| s <= max));

            // Records held whole and words kept whole: still independent of the chunking,
            // still the same lines.
            let make = || {
                let mut s = LineSplitter::new(max).with_record_max(max * 3);
                s.keep_whole(vec!["a\r".into(), "\u{20AC}a".into()]);
                s
            };
            let (whole, whole_sizes) = split_with(make(), &[&data]);
            let (chunked, chunked_sizes) = split_with(make(), &chunks);
            prop_assert_eq!(&whole, &chunked);
            prop_assert_eq!(&whole_sizes, &chunked_sizes);
            prop_assert_eq!(whole, reference_lines(&data));
            prop_assert!(whole_sizes.iter().all(|&s| s <= max * 3));
        }
    }
}
