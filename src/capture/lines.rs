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
//! The output depends only on the byte stream, never on how reads chopped it; a property test
//! below checks that.

use super::limits::cut_point;

/// A line, or part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// The bytes, without the line ending.
    pub bytes: &'a [u8],
    /// True if the same line goes on in the next piece.
    pub continues: bool,
}

/// Splits a byte stream into lines, keeping at most `max + 2` bytes between calls.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    pending: Vec<u8>,
}

impl LineSplitter {
    /// A splitter whose pieces are at most `max` bytes (at least 4: one character of any width).
    pub fn new(max: usize) -> LineSplitter {
        let max = max.max(4);
        LineSplitter {
            max,
            // Allocated once: `pending` never grows past this.
            pending: Vec::with_capacity(max + 2),
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
            let room = self.max + 2 - self.pending.len();
            let step = &rest[..rest.len().min(room)];
            match step.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if self.pending.is_empty() {
                        // Fast path: the whole line is inside this chunk, no copy.
                        emit_line(&rest[..i], self.max, &mut emit);
                    } else {
                        self.pending.extend_from_slice(&rest[..i]);
                        emit_line(&self.pending, self.max, &mut emit);
                        self.pending.clear();
                    }
                    rest = &rest[i + 1..];
                }
                None => {
                    self.pending.extend_from_slice(step);
                    rest = &rest[step.len()..];
                    if self.pending.len() == self.max + 2 {
                        // max + 2 bytes and no `\n`: even if the last is a `\r`, the line has
                        // more than `max` bytes of text, so its first piece is final now.
                        let cut = cut_point(&self.pending[..self.max]);
                        emit(Piece {
                            bytes: &self.pending[..cut],
                            continues: true,
                        });
                        // Moves at most a few bytes to the front.
                        self.pending.drain(..cut);
                    }
                }
            }
        }
    }

    /// Ends the stream: emits the last line if it had no `\n`.
    pub fn finish(&mut self, mut emit: impl FnMut(Piece<'_>)) {
        if !self.pending.is_empty() {
            // A `\r` without `\n` is text, not a line ending, so nothing is stripped here.
            emit_text(&self.pending, self.max, &mut emit);
            self.pending.clear();
        }
    }
}

/// Emits a line whose `\n` was seen, without its `\r`.
fn emit_line(line: &[u8], max: usize, emit: &mut impl FnMut(Piece<'_>)) {
    let text = line.strip_suffix(b"\r").unwrap_or(line);
    emit_text(text, max, emit);
}

/// Emits the last part of a line: at most `max + 1` bytes, so at most one cut is needed.
fn emit_text(text: &[u8], max: usize, emit: &mut impl FnMut(Piece<'_>)) {
    let mut text = text;
    while text.len() > max {
        let cut = cut_point(&text[..max]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs the splitter over `chunks` and returns each line as its concatenated pieces, plus
    /// every piece length.
    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<usize>) {
        let mut s = LineSplitter::new(max);
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

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_lines(
            data in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xE2u8), Just(0x82u8), Just(0xACu8), any::<u8>(), Just(b'a')],
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
        }
    }
}
