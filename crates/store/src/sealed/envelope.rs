//! The envelope of a sealed file: every section after the blocks and their filters, in file
//! order (`docs/FORMAT.md`, "Layout"): the common words, the dictionaries, the block table,
//! the execution table and its catalog, the names, the trailer, and the trailer's copy after
//! the header. A seal ([`SealedWriter`](super::seal::SealedWriter)) and a merge
//! ([`merge`](super::merge::merge)) both write it here; they differ only in where the
//! tables' and names' bytes come from (spill files, or the inputs).

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::catalog::CatalogBuilder;
use super::common;
use super::dict;
use super::layout::{BlockEntry, ExecRecord, Trailer};
use super::seal_file::SealFile;
use crate::error::{Result, StoreError};

/// What the trailer says of the whole file, beside the sections' places.
pub(super) struct Totals {
    /// Entries in the file.
    pub(super) entries: u64,
    /// Bytes of the live-layout files it was sealed from (informative).
    pub(super) segment_bytes: u64,
}

/// The sections after the filters, and how to write the ones whose bytes the caller holds.
pub(super) struct Envelope<'a> {
    /// The words the block filters leave out, sorted.
    pub(super) common: &'a [u64],
    /// The zstd dictionaries, in number order.
    pub(super) dicts: &'a [Vec<u8>],
    pub(super) totals: Totals,
}

/// Where the execution table's records come from.
pub(super) enum Execs<'a> {
    /// Bytes already written in order (a seal's spill file), and their catalog.
    Written {
        count: u64,
        write: &'a mut dyn FnMut(&mut SealFile) -> Result<()>,
        catalog: CatalogBuilder,
    },
    /// Records in table order (a merge): written here, the catalog built from them.
    Records(&'a [ExecRecord]),
}

impl Envelope<'_> {
    /// Writes the envelope after what `out` holds and the trailer's copy at offset 16; returns
    /// the file (not yet fsynced: the caller decides when) and its length.
    /// `blocks` are the block table's entries in block order; `names` writes the names
    /// section.
    pub(super) fn write(
        self,
        mut out: SealFile,
        blocks: impl IntoIterator<Item = BlockEntry>,
        execs: Execs<'_>,
        names: impl FnOnce(&mut SealFile) -> Result<()>,
    ) -> Result<(File, u64)> {
        common::write_section(self.common, &mut |b| out.write(b))?;
        dict::write_section(self.dicts, &mut |b| out.write(b))?;
        let block_table = out.len;
        let mut block_count = 0u64;
        for e in blocks {
            out.write(&e.to_bytes())?;
            block_count += 1;
        }
        let exec_table = out.len;
        let exec_count = match execs {
            Execs::Written {
                count,
                write,
                catalog,
            } => {
                write(&mut out)?;
                catalog.write(&mut |b| out.write(b))?;
                count
            }
            Execs::Records(records) => {
                let mut catalog = CatalogBuilder::default();
                for r in records {
                    out.write(&r.to_bytes())?;
                    catalog.push(r.hash, r.min_ts);
                }
                catalog.write(&mut |b| out.write(b))?;
                records.len() as u64
            }
        };
        let names_at = out.len;
        names(&mut out)?;
        let too_many = |what: &str| StoreError::Corrupt {
            file: out.path.clone(),
            offset: 0,
            reason: format!("more than 4 billion {what}: a sealed file cannot hold them"),
        };
        let trailer = Trailer {
            block_table,
            exec_table,
            names: names_at,
            names_len: out.len - names_at,
            entries: self.totals.entries,
            segment_bytes: self.totals.segment_bytes,
            blocks: u32::try_from(block_count).map_err(|_| too_many("blocks"))?,
            execs: u32::try_from(exec_count).map_err(|_| too_many("execution records"))?,
            catalog: true,
            dicts: !self.dicts.is_empty(),
            common: !self.common.is_empty(),
        }
        .to_bytes();
        out.write(&trailer)?;
        let len = out.len;
        let path = out.path.clone();
        let file = out
            .file
            .into_inner()
            .map_err(|e| StoreError::io("write", &path)(e.into_error()))?;
        // The copy after the header lets a reader open the file if the last bytes are damaged.
        file.write_all_at(&trailer, 16)
            .map_err(StoreError::io("write", &path))?;
        Ok((file, len))
    }
}
