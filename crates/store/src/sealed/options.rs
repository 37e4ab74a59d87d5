//! What a seal is tuned by: the block size, the zstd levels of parts and of a finished day,
//! the partition size of the spill sort, and the dictionary's size ([`SealOptions`]).

use super::dict;

/// Raw bytes at which a block is closed. 256 KiB: measured on real log text in
/// docs/PERFORMANCE.md ("Sealed days"), the ratio gains little above it and a query of a small
/// execution decompresses more for nothing.
pub(crate) const BLOCK_TARGET: usize = 256 * 1024;
/// A block holding `BLOCK_TARGET / EXEC_CUT` raw bytes or more is closed where an execution
/// ends.
pub(crate) const EXEC_CUT: usize = 2;
/// zstd level of the blocks as they are sealed (parts, and a day sealed whole).
pub(crate) const ZSTD_LEVEL: i32 = 3;
/// zstd level of a finished day's blocks: compressed again once when its parts are merged
/// into its sealed file (`merge::Frames::Recompress`), or sealed at it when the day is sealed
/// whole. Measured in docs/PERFORMANCE.md ("A finished day at level 6"): 8 % fewer bytes than
/// level 3 for 2.6x its compression CPU, and blocks that decompress a little faster; level 9
/// saves 2 % more for twice level 6's CPU.
pub(crate) const DAY_LEVEL: i32 = 6;
/// Bytes of segment per partition of the spill sort (see `partition`): the most a seal reads
/// into memory at once. 4 MiB, so that a partition, which is read in execution order rather
/// than file order, stays in the CPU's cache: measured 20 % less CPU than 32 MiB.
pub(crate) const PARTITION_BYTES: u64 = 4 << 20;

/// Options of a seal (tests and benchmarks vary them; the store seals parts with the defaults
/// and a day sealed whole with [`SealOptions::finished_day`]).
#[derive(Debug, Clone, Copy)]
pub struct SealOptions {
    /// Raw bytes at which a block is closed.
    pub block_target: usize,
    /// Bytes of segment per partition of the spill sort: the most read into memory at once.
    pub partition_bytes: u64,
    /// zstd level of the blocks.
    pub level: i32,
    /// Bytes of the zstd dictionary trained for the file (0: none).
    pub dict_bytes: usize,
    /// Raw block bytes sampled to train it; a smaller file gets none.
    pub train_bytes: usize,
}

impl SealOptions {
    /// The options of a finished day's sealed file: the defaults at [`crate::DEFAULT_DAY_LEVEL`] (what the
    /// store seals a day whole with; a day of parts gets the same level when they are merged).
    pub fn finished_day() -> SealOptions {
        SealOptions {
            level: DAY_LEVEL,
            ..SealOptions::default()
        }
    }
}

impl Default for SealOptions {
    fn default() -> SealOptions {
        SealOptions {
            block_target: BLOCK_TARGET,
            partition_bytes: PARTITION_BYTES,
            level: ZSTD_LEVEL,
            dict_bytes: dict::DICT_BYTES,
            train_bytes: dict::TRAIN_BYTES,
        }
    }
}
