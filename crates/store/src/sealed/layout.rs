//! The fixed-size parts of a sealed file: header, trailer, block-table entry, execution record.
//! Each carries its own CRC-32, so one flipped bit costs the one thing it sits in.
//!
//! ```text
//! 0      header (16): "LOGSTSLD", version 2, reserved
//! 16     trailer copy (72)
//! 88     block 0 (zstd) | block 1 | ...            the entries, executions clustered
//!        filter 0 | filter 1 | ...                  token filters (filter.rs)
//!        dictionaries (version 6, if any)          zstd dictionaries the blocks name (dict.rs)
//!        block table: 64 bytes per block
//!        execution table: 56 bytes per execution, sorted by (hash, id)
//!        catalog (version 5): the table by first entry, and a fence of hashes (catalog.rs)
//!        names: the execution ids, back to back
//! end-72 trailer (72)
//! ```

use std::path::{Path, PathBuf};

use crate::day::Day;

/// First bytes of a sealed file.
pub const SEALED_MAGIC: [u8; 8] = *b"LOGSTSLD";
/// The sealed format's version. Readers refuse a higher one and read every lower one.
pub const SEALED_VERSION: u32 = 7;
/// Magic of the trailer.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"LOGSTEND";
/// Bytes of the trailer (and of its copy after the header).
pub(crate) const TRAILER_LEN: usize = 72;
/// Bytes before the first block: the header and the trailer copy.
pub(crate) const HEAD_LEN: usize = 16 + TRAILER_LEN;
/// Offset of the first block.
pub(crate) const DATA_START: u64 = HEAD_LEN as u64;
/// Bytes per block-table entry.
pub(crate) const BLOCK_ENTRY_LEN: usize = 64;
/// Bytes per execution record.
pub(crate) const EXEC_RECORD_LEN: usize = 56;

/// `DIR/segments/YYYY-MM-DD.sealed`.
pub fn sealed_path(segments_dir: &Path, day: Day) -> PathBuf {
    segments_dir.join(format!("{day}.sealed"))
}

/// The file a seal writes before renaming it into place (never read).
pub(crate) fn sealed_tmp_path(segments_dir: &Path, day: Day) -> PathBuf {
    segments_dir.join(format!("{day}.sealed.tmp"))
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default())
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default())
}

fn seal_crc(b: &mut [u8]) {
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
}

fn crc_ok(b: &[u8]) -> bool {
    let n = b.len() - 4;
    crc32fast::hash(&b[..n]) == u32_at(b, n)
}

/// Where the sections are, and totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Trailer {
    pub(crate) block_table: u64,
    pub(crate) exec_table: u64,
    pub(crate) names: u64,
    pub(crate) names_len: u64,
    pub(crate) entries: u64,
    /// Bytes of the live-layout files (segment and indexes) this file was sealed from.
    pub(crate) segment_bytes: u64,
    pub(crate) blocks: u32,
    pub(crate) execs: u32,
    /// A catalog section follows the execution table (version 5; trailer byte 64, bit 0).
    pub(crate) catalog: bool,
    /// A dictionaries section ends where the block table starts (version 6; bit 1).
    pub(crate) dicts: bool,
    /// A common-words section ends where the dictionaries (or the block table) start
    /// (version 7; bit 2).
    pub(crate) common: bool,
}

impl Trailer {
    pub(crate) fn to_bytes(self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&TRAILER_MAGIC);
        b[8..16].copy_from_slice(&self.block_table.to_le_bytes());
        b[16..24].copy_from_slice(&self.exec_table.to_le_bytes());
        b[24..32].copy_from_slice(&self.names.to_le_bytes());
        b[32..40].copy_from_slice(&self.names_len.to_le_bytes());
        b[40..48].copy_from_slice(&self.entries.to_le_bytes());
        b[48..56].copy_from_slice(&self.segment_bytes.to_le_bytes());
        b[56..60].copy_from_slice(&self.blocks.to_le_bytes());
        b[60..64].copy_from_slice(&self.execs.to_le_bytes());
        b[64] = u8::from(self.catalog) | u8::from(self.dicts) << 1 | u8::from(self.common) << 2;
        seal_crc(&mut b[..]);
        b
    }

    /// Decodes a trailer and checks it against the file length: `None` if anything is off.
    pub(crate) fn from_bytes(b: &[u8], file_len: u64) -> Option<Trailer> {
        let b = b.get(..TRAILER_LEN)?;
        if b[0..8] != TRAILER_MAGIC || b[64] > 7 || b[65..68] != [0; 3] || !crc_ok(b) {
            return None;
        }
        let t = Trailer {
            block_table: u64_at(b, 8),
            exec_table: u64_at(b, 16),
            names: u64_at(b, 24),
            names_len: u64_at(b, 32),
            entries: u64_at(b, 40),
            segment_bytes: u64_at(b, 48),
            blocks: u32_at(b, 56),
            execs: u32_at(b, 60),
            catalog: b[64] & 1 == 1,
            dicts: b[64] & 2 == 2,
            common: b[64] & 4 == 4,
        };
        let catalog = if t.catalog {
            super::catalog::catalog_len(t.execs)
        } else {
            0
        };
        let sections_fit = t.block_table >= DATA_START
            && t.block_table + u64::from(t.blocks) * BLOCK_ENTRY_LEN as u64 == t.exec_table
            && t.exec_table + u64::from(t.execs) * EXEC_RECORD_LEN as u64 + catalog == t.names
            && t.names.checked_add(t.names_len)? + TRAILER_LEN as u64 == file_len;
        sections_fit.then_some(t)
    }
}

/// One block-table entry: where a block and its filter are, and what the block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockEntry {
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) raw_len: u32,
    pub(crate) entries: u32,
    pub(crate) crc: u32,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) filter_offset: u64,
    pub(crate) filter_len: u32,
    pub(crate) filter_crc: u32,
    pub(crate) level_mask: u8,
    /// The dictionary its frame was compressed with: 0 none, else number `dict` (1-based) of
    /// the file's dictionaries (version 6).
    pub(crate) dict: u16,
}

impl BlockEntry {
    pub(crate) fn to_bytes(self) -> [u8; BLOCK_ENTRY_LEN] {
        let mut b = [0u8; BLOCK_ENTRY_LEN];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.entries.to_le_bytes());
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b[24..32].copy_from_slice(&self.min_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_ts.to_le_bytes());
        b[40..48].copy_from_slice(&self.filter_offset.to_le_bytes());
        b[48..52].copy_from_slice(&self.filter_len.to_le_bytes());
        b[52..56].copy_from_slice(&self.filter_crc.to_le_bytes());
        b[56] = self.level_mask;
        b[57..59].copy_from_slice(&self.dict.to_le_bytes());
        seal_crc(&mut b[..]);
        b
    }

    /// Decodes and checks one entry; `None` if its CRC or a field is wrong.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<BlockEntry> {
        let b = b.get(..BLOCK_ENTRY_LEN)?;
        if !crc_ok(b) || b[59] != 0 {
            return None;
        }
        let e = BlockEntry {
            offset: u64_at(b, 0),
            len: u32_at(b, 8),
            raw_len: u32_at(b, 12),
            entries: u32_at(b, 16),
            crc: u32_at(b, 20),
            min_ts: u64_at(b, 24).cast_signed(),
            max_ts: u64_at(b, 32).cast_signed(),
            filter_offset: u64_at(b, 40),
            filter_len: u32_at(b, 48),
            filter_crc: u32_at(b, 52),
            level_mask: b[56],
            dict: u16::from_le_bytes([b[57], b[58]]),
        };
        (e.entries > 0 && e.min_ts <= e.max_ts && e.level_mask & 0xf0 == 0).then_some(e)
    }

    /// One past the block's last byte.
    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// The state byte of an execution record: which terminal state the day holds, if any.
pub(crate) fn state_byte(state: Option<&str>) -> u8 {
    match state {
        Some("SUCCESS") => 1,
        Some("FAILED") => 2,
        Some("CANCELLED") => 3,
        _ => 0,
    }
}

/// The terminal state of a state byte.
pub(crate) fn state_name(b: u8) -> Option<&'static str> {
    match b {
        1 => Some("SUCCESS"),
        2 => Some("FAILED"),
        3 => Some("CANCELLED"),
        _ => None,
    }
}

/// One execution of the day: its blocks and a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ExecRecord {
    pub(crate) hash: u64,
    /// First block holding its entries.
    pub(crate) first_block: u32,
    /// Last block holding its entries (inclusive).
    pub(crate) last_block: u32,
    pub(crate) entries: u32,
    pub(crate) errors: u32,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    /// Offset of the id in the names section.
    pub(crate) name_offset: u64,
    pub(crate) name_len: u8,
    /// [`state_byte`] of the terminal entry, if the day holds it.
    pub(crate) state: u8,
}

impl ExecRecord {
    pub(crate) fn to_bytes(self) -> [u8; EXEC_RECORD_LEN] {
        let mut b = [0u8; EXEC_RECORD_LEN];
        b[0..8].copy_from_slice(&self.hash.to_le_bytes());
        b[8..12].copy_from_slice(&self.first_block.to_le_bytes());
        b[12..16].copy_from_slice(&self.last_block.to_le_bytes());
        b[16..20].copy_from_slice(&self.entries.to_le_bytes());
        b[20..24].copy_from_slice(&self.errors.to_le_bytes());
        b[24..32].copy_from_slice(&self.min_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_ts.to_le_bytes());
        b[40..48].copy_from_slice(&self.name_offset.to_le_bytes());
        b[48] = self.name_len;
        b[49] = self.state;
        seal_crc(&mut b[..]);
        b
    }

    /// Decodes and checks one record; `None` if its CRC or a field is wrong.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<ExecRecord> {
        let b = b.get(..EXEC_RECORD_LEN)?;
        if !crc_ok(b) || b[50..52] != [0; 2] {
            return None;
        }
        let r = ExecRecord {
            hash: u64_at(b, 0),
            first_block: u32_at(b, 8),
            last_block: u32_at(b, 12),
            entries: u32_at(b, 16),
            errors: u32_at(b, 20),
            min_ts: u64_at(b, 24).cast_signed(),
            max_ts: u64_at(b, 32).cast_signed(),
            name_offset: u64_at(b, 40),
            name_len: b[48],
            state: b[49],
        };
        let valid = r.first_block <= r.last_block
            && r.entries > 0
            && r.errors <= r.entries
            && r.min_ts <= r.max_ts
            && r.name_len > 0
            && r.state <= 3;
        valid.then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flips_are_caught(bytes: &[u8], ok: impl Fn(&[u8]) -> bool) {
        assert!(ok(bytes));
        for bit in 0..bytes.len() * 8 {
            let mut c = bytes.to_vec();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(!ok(&c), "bit {bit} flip not caught");
        }
    }

    #[test]
    fn fixed_parts_round_trip_and_catch_every_bit_flip() {
        let e = BlockEntry {
            offset: 88,
            len: 10,
            raw_len: 30,
            entries: 2,
            crc: 7,
            min_ts: -5,
            max_ts: 5,
            filter_offset: 98,
            filter_len: 3,
            filter_crc: 9,
            level_mask: 0b1001,
            dict: 2,
        };
        assert_eq!(BlockEntry::from_bytes(&e.to_bytes()), Some(e));
        flips_are_caught(&e.to_bytes(), |b| BlockEntry::from_bytes(b) == Some(e));
        let r = ExecRecord {
            hash: 1 << 60,
            first_block: 1,
            last_block: 3,
            entries: 9,
            errors: 2,
            min_ts: 1,
            max_ts: 2,
            name_offset: 12,
            name_len: 5,
            state: 2,
        };
        assert_eq!(ExecRecord::from_bytes(&r.to_bytes()), Some(r));
        flips_are_caught(&r.to_bytes(), |b| ExecRecord::from_bytes(b) == Some(r));
        let t = Trailer {
            block_table: 200,
            exec_table: 264,
            names: 320,
            names_len: 5,
            entries: 9,
            segment_bytes: 1000,
            blocks: 1,
            execs: 1,
            catalog: false,
            dicts: false,
            common: false,
        };
        let len = 320 + 5 + TRAILER_LEN as u64;
        assert_eq!(Trailer::from_bytes(&t.to_bytes(), len), Some(t));
        assert_eq!(Trailer::from_bytes(&t.to_bytes(), len + 1), None);
        flips_are_caught(&t.to_bytes(), |b| Trailer::from_bytes(b, len) == Some(t));
        // With a catalog, the names start after it.
        let c = Trailer {
            names: 320 + super::super::catalog::catalog_len(1),
            catalog: true,
            ..t
        };
        let len = c.names + 5 + TRAILER_LEN as u64;
        assert_eq!(Trailer::from_bytes(&c.to_bytes(), len), Some(c));
        assert_eq!(Trailer::from_bytes(&t.to_bytes(), len), None);
        flips_are_caught(&c.to_bytes(), |b| Trailer::from_bytes(b, len) == Some(c));
    }
}
