//! The newest bytes of the writer's open segment and index, kept in memory for this process's
//! readers.
//!
//! The open segment holds the entries that readers want most (running executions, followers)
//! in the layout that costs most to read: every flush writes one run per execution, so an
//! execution that logs one line per batch has one run (and one index entry) per flush, each a
//! `pread` of a few hundred bytes. The writer already holds those bytes when it writes them;
//! it keeps the last [`Config::tail_bytes`](crate::Config::tail_bytes) of them here, and its
//! own process's queries and followers copy runs from memory instead of asking the kernel for
//! each. Other processes read the files as before: the mirror is an in-process cache of bytes
//! that are already on disk, never a source of truth. A run not wholly in the mirror is read
//! from the file.

use std::collections::VecDeque;

use parking_lot::RwLock;

/// Bytes per chunk of the mirror: the unit in which old bytes are dropped.
const CHUNK: usize = 1 << 20;

/// The newest bytes of one append-only file, up to a capacity.
pub(crate) struct TailMirror {
    cap: usize,
    inner: RwLock<Chunks>,
}

#[derive(Default)]
struct Chunks {
    /// File offset of the first byte held.
    start: u64,
    /// File offset after the last byte held.
    end: u64,
    /// The bytes `start..end`, in chunks of [`CHUNK`] (the last one may be shorter).
    chunks: VecDeque<Vec<u8>>,
}

impl TailMirror {
    /// An empty mirror of a file that is `len` bytes long, keeping at most about `cap` bytes
    /// (0 keeps nothing).
    pub(crate) fn new(len: u64, cap: usize) -> TailMirror {
        TailMirror {
            cap,
            inner: RwLock::new(Chunks {
                start: len,
                end: len,
                chunks: VecDeque::new(),
            }),
        }
    }

    /// The most bytes it keeps (about).
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Records that `bytes` were written at `offset`. A write anywhere but at the end (the
    /// file was cut back) starts the mirror over from there.
    pub(crate) fn append(&self, offset: u64, mut bytes: &[u8]) {
        if self.cap == 0 {
            return;
        }
        let mut c = self.inner.write();
        if offset != c.end {
            *c = Chunks {
                start: offset,
                end: offset,
                chunks: VecDeque::new(),
            };
        }
        c.end += bytes.len() as u64;
        while !bytes.is_empty() {
            match c.chunks.back_mut() {
                Some(last) if last.len() < CHUNK => {
                    let n = (CHUNK - last.len()).min(bytes.len());
                    last.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                }
                _ => c.chunks.push_back(Vec::with_capacity(CHUNK)),
            }
        }
        // Drop whole chunks from the front while what remains still covers the capacity.
        while c.chunks.len() > 1 && c.end - c.start - c.chunks[0].len() as u64 >= self.cap as u64 {
            if let Some(old) = c.chunks.pop_front() {
                c.start += old.len() as u64;
            }
        }
    }

    /// Forgets everything (the file was closed): the memory goes back now, not when the last
    /// reader's view of the file is dropped.
    pub(crate) fn clear(&self) {
        let mut c = self.inner.write();
        let end = c.end;
        *c = Chunks {
            start: end,
            end,
            chunks: VecDeque::new(),
        };
    }

    /// The bytes `offset..offset + len` if the mirror holds all of them.
    pub(crate) fn read(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let c = self.inner.read();
        let end = offset.checked_add(len as u64)?;
        if offset < c.start || end > c.end {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        // Every chunk but the last is full, so the chunk of an offset is a division.
        let rel = usize::try_from(offset - c.start).ok()?;
        let (mut chunk, mut at) = (rel / CHUNK, rel % CHUNK);
        while out.len() < len {
            let src = c.chunks.get(chunk)?;
            let n = (src.len() - at).min(len - out.len());
            out.extend_from_slice(&src[at..at + n]);
            chunk += 1;
            at = 0;
        }
        Some(out)
    }

    /// Bytes held now.
    #[cfg(test)]
    fn held(&self) -> u64 {
        let c = self.inner.read();
        c.end - c.start
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// A mirror agrees with the file it mirrors for every range it answers, keeps at least its
    /// capacity of the newest bytes, and answers nothing it does not hold.
    #[test]
    fn mirror_answers_exactly_the_newest_bytes() {
        let cap = 3 * CHUNK + 100;
        let m = TailMirror::new(16, cap);
        let mut file: Vec<u8> = vec![0; 16];
        let mut n = 0u32;
        while file.len() < 16 + 9 * CHUNK {
            // Writes of uneven sizes, so that they straddle chunk boundaries.
            let len = 1 + (n as usize * 7919) % 70_000;
            let bytes: Vec<u8> = (0..len).map(|i| (i as u32 ^ n) as u8).collect();
            m.append(file.len() as u64, &bytes);
            file.extend_from_slice(&bytes);
            n += 1;
            assert!(m.held() as usize >= cap.min(file.len() - 16));
            assert!(m.held() as usize <= cap + CHUNK);
        }
        let flen = file.len() as u64;
        let held = m.held();
        for (off, len) in [
            (flen - 10, 10),
            (flen - held, held as usize),
            (flen - 2 * CHUNK as u64 - 5, CHUNK + 10),
            (flen - cap as u64, 1),
        ] {
            let got = m.read(off, len).expect("within the mirror");
            assert_eq!(got, file[off as usize..off as usize + len]);
        }
        assert!(
            m.read(flen - held - 1, 2).is_none(),
            "older than the mirror"
        );
        assert!(m.read(flen - 1, 2).is_none(), "past the end");
        assert!(m.read(0, 4).is_none());
        // A write that does not continue the file (it was cut back) starts over.
        m.append(flen - 100, b"again");
        assert!(m.read(flen - 200, 10).is_none());
        assert_eq!(m.read(flen - 100, 5).as_deref(), Some(&b"again"[..]));
        m.clear();
        assert!(m.read(flen - 100, 5).is_none());
        // A mirror of no capacity holds nothing.
        let none = TailMirror::new(0, 0);
        none.append(0, b"abc");
        assert!(none.read(0, 3).is_none());
    }
}
