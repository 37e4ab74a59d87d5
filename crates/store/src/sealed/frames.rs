//! The one way a block's frame is made: zstd at a level, with one of the file's dictionaries
//! or none. Sealing (parts and days sealed whole) and the day-end merge that compresses a day's
//! blocks again both write frames through [`FrameWriter`]; the sealer's dictionary trials and
//! the breakdown's per-column estimate make their one-off contexts with [`compressor`].

use zstd::bulk::Compressor;

/// A zstd context at `level`, with `dict` (raw content) if given.
pub(super) fn compressor(level: i32, dict: Option<&[u8]>) -> std::io::Result<Compressor<'static>> {
    match dict {
        Some(d) => Compressor::with_dictionary(level, d),
        None => Compressor::new(level),
    }
}

/// Compresses one file's blocks: a context per dictionary of the file, made when a block first
/// needs it (each holds its dictionary and tables: megabytes).
pub(super) struct FrameWriter {
    level: i32,
    /// By dictionary number: 0 none, `n` the file's dictionary `n` (1-based).
    contexts: Vec<Option<Compressor<'static>>>,
}

impl FrameWriter {
    pub(super) fn new(level: i32) -> FrameWriter {
        FrameWriter {
            level,
            contexts: Vec::new(),
        }
    }

    /// Compresses `raw` into `frame` (replacing what it held) with dictionary number `dict` of
    /// `dicts` (1-based; 0 is none).
    pub(super) fn compress(
        &mut self,
        raw: &[u8],
        dict: u16,
        dicts: &[Vec<u8>],
        frame: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let n = usize::from(dict);
        let d = match n.checked_sub(1) {
            None => None,
            Some(i) => Some(dicts.get(i).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("no dictionary {n} among the file's {}", dicts.len()),
                )
            })?),
        };
        if self.contexts.len() <= n {
            self.contexts.resize_with(n + 1, || None);
        }
        let ctx = match &mut self.contexts[n] {
            Some(c) => c,
            slot => slot.insert(compressor(self.level, d.map(Vec::as_slice))?),
        };
        frame.clear();
        frame.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        ctx.compress_to_buffer(raw, frame)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decompress_with_the_dictionary_they_name() {
        let dicts = vec![b"the quick brown fox jumps over the lazy dog ".repeat(40)];
        let raw =
            b"the quick brown fox jumps over the lazy dog, twice: the quick brown fox".repeat(3);
        let mut w = FrameWriter::new(6);
        let (mut plain, mut with) = (Vec::new(), Vec::new());
        w.compress(&raw, 0, &dicts, &mut plain).unwrap();
        w.compress(&raw, 1, &dicts, &mut with).unwrap();
        assert!(
            with.len() < plain.len(),
            "{} with, {} without",
            with.len(),
            plain.len()
        );
        assert_eq!(zstd::bulk::decompress(&plain, raw.len()).unwrap(), raw);
        let mut d = zstd::bulk::Decompressor::with_dictionary(&dicts[0]).unwrap();
        assert_eq!(d.decompress(&with, raw.len()).unwrap(), raw);
        let err = w.compress(&raw, 2, &dicts, &mut with).unwrap_err();
        assert!(err.to_string().contains("no dictionary 2"), "{err}");
    }
}
