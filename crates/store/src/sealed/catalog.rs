//! The catalog section of a sealed file or part (version 5): the execution table in order of
//! first entry, and a fence of its hashes.
//!
//! The execution table is sorted by hash, which finds one execution but says nothing about
//! which executions are newest: the first page of a listing had to read every record of every
//! day (275 ms at 1 M executions). The catalog lists the table's record numbers by first
//! timestamp, so that the newest executions are the last few numbers of it, one read; and
//! every 64th record's hash, so that finding an execution in a file with a million of them is
//! one small read instead of a twenty-step binary search through the file. Both are in pages
//! with their own CRC-32: damage costs the catalog (the listing falls back to reading the
//! table), never an entry.
//!
//! ```text
//! by_time: pages of up to 1,024 u32 record numbers, ascending (min_ts, number), each + CRC-32
//! fence:   pages of up to 512 u64 hashes (records 0, 64, 128, ...), each + CRC-32
//! ```

use crate::error::Result;

/// Record numbers per `by_time` page.
pub(crate) const TIME_PAGE: usize = 1024;
/// Records per fence entry.
pub(crate) const STRIDE: usize = 64;
/// Hashes per fence page.
pub(crate) const FENCE_PAGE: usize = 512;

fn pages(n: usize, per: usize) -> usize {
    n.div_ceil(per)
}

/// Bytes of the `by_time` part for `execs` records.
pub(crate) fn by_time_len(execs: u32) -> u64 {
    let n = execs as usize;
    (n * 4 + pages(n, TIME_PAGE) * 4) as u64
}

/// Entries of the fence for `execs` records.
pub(crate) fn fence_count(execs: u32) -> usize {
    (execs as usize).div_ceil(STRIDE)
}

/// Bytes of the whole catalog section for `execs` records.
pub(crate) fn catalog_len(execs: u32) -> u64 {
    let f = fence_count(execs);
    by_time_len(execs) + (f * 8 + pages(f, FENCE_PAGE) * 4) as u64
}

/// Collects the records of an execution table, in table order, and writes their catalog.
#[derive(Default)]
pub(crate) struct CatalogBuilder {
    keys: Vec<(i64, u32)>,
    fence: Vec<u64>,
}

impl CatalogBuilder {
    /// Notes the next record of the table: its execution's hash and first timestamp.
    pub(crate) fn push(&mut self, hash: u64, min_ts: i64) {
        let i = self.keys.len();
        if i.is_multiple_of(STRIDE) {
            self.fence.push(hash);
        }
        self.keys
            .push((min_ts, u32::try_from(i).unwrap_or(u32::MAX)));
    }

    /// Writes the section (its length is [`catalog_len`] of the records pushed).
    pub(crate) fn write(mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.keys.sort_unstable();
        let mut page = Vec::with_capacity(TIME_PAGE * 4 + 4);
        for chunk in self.keys.chunks(TIME_PAGE) {
            page.clear();
            for &(_, i) in chunk {
                page.extend_from_slice(&i.to_le_bytes());
            }
            let crc = crc32fast::hash(&page);
            page.extend_from_slice(&crc.to_le_bytes());
            out(&page)?;
        }
        for chunk in self.fence.chunks(FENCE_PAGE) {
            page.clear();
            for h in chunk {
                page.extend_from_slice(&h.to_le_bytes());
            }
            let crc = crc32fast::hash(&page);
            page.extend_from_slice(&crc.to_le_bytes());
            out(&page)?;
        }
        Ok(())
    }
}

/// Where page `p` of `by_time` is, relative to the section, and how many numbers it holds.
pub(crate) fn time_page_at(execs: u32, p: usize) -> (u64, usize) {
    let n = execs as usize;
    let at = p * (TIME_PAGE * 4 + 4);
    (at as u64, TIME_PAGE.min(n.saturating_sub(p * TIME_PAGE)))
}

/// Pages of `by_time`.
pub(crate) fn time_page_count(execs: u32) -> usize {
    pages(execs as usize, TIME_PAGE)
}

/// Decodes a `by_time` page (numbers + CRC); `None` if it is damaged or names a record that
/// does not exist.
pub(crate) fn decode_time_page(b: &[u8], execs: u32) -> Option<Vec<u32>> {
    let (body, crc) = b.split_at_checked(b.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    body.chunks_exact(4)
        .map(|c| {
            let i = u32::from_le_bytes(c.try_into().unwrap_or_default());
            (i < execs).then_some(i)
        })
        .collect()
}

/// Decodes the whole fence (all its pages); `None` if any page is damaged or the hashes do not
/// ascend.
pub(crate) fn decode_fence(b: &[u8], execs: u32) -> Option<Vec<u64>> {
    let n = fence_count(execs);
    let mut out = Vec::with_capacity(n);
    let mut rest = b;
    while out.len() < n {
        let k = FENCE_PAGE.min(n - out.len());
        let (page, tail) = rest.split_at_checked(k * 8 + 4)?;
        rest = tail;
        let (body, crc) = page.split_at(k * 8);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        out.extend(
            body.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())),
        );
    }
    (rest.is_empty() && out.windows(2).all(|w| w[0] <= w[1])).then_some(out)
}

/// The range of table records that holds every record of `hash` that the table has, given
/// the fence: from the last fence entry below `hash` to the first one above it.
pub(crate) fn window(fence: &[u64], execs: u32, hash: u64) -> (u32, u32) {
    let below = fence.partition_point(|&h| h < hash);
    let above = fence.partition_point(|&h| h <= hash);
    let lo = below.saturating_sub(1) * STRIDE;
    let hi = (above * STRIDE).min(execs as usize);
    (
        u32::try_from(lo).unwrap_or(u32::MAX),
        u32::try_from(hi).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::layout::ExecRecord;

    fn rec(hash: u64, min_ts: i64) -> ExecRecord {
        ExecRecord {
            hash,
            min_ts,
            max_ts: min_ts,
            entries: 1,
            name_len: 1,
            ..ExecRecord::default()
        }
    }

    /// The section has the length the trailer check expects, its pages decode to the table's
    /// order by first entry, every bit flip in a page is caught, and the fence windows find
    /// every hash.
    #[test]
    fn catalog_round_trips_and_its_windows_find_every_hash() {
        for execs in [1u32, 63, 64, 65, 1024, 1025, 3000, 40_000] {
            // Hashes ascending with runs of equal ones; timestamps scrambled.
            let recs: Vec<ExecRecord> = (0..execs)
                .map(|i| rec(u64::from(i / 3) * 7, i64::from((i * 7919) % 1000)))
                .collect();
            let mut b = CatalogBuilder::default();
            recs.iter().for_each(|r| b.push(r.hash, r.min_ts));
            let mut bytes = Vec::new();
            b.write(&mut |x| {
                bytes.extend_from_slice(x);
                Ok(())
            })
            .unwrap();
            assert_eq!(bytes.len() as u64, catalog_len(execs));
            let mut order = Vec::new();
            for p in 0..time_page_count(execs) {
                let (at, n) = time_page_at(execs, p);
                let at = usize::try_from(at).unwrap();
                order.extend(decode_time_page(&bytes[at..at + n * 4 + 4], execs).unwrap());
            }
            let mut want: Vec<u32> = (0..execs).collect();
            want.sort_by_key(|&i| (recs[i as usize].min_ts, i));
            assert_eq!(order, want, "{execs}");
            let fence_at = usize::try_from(by_time_len(execs)).unwrap();
            let fence = decode_fence(&bytes[fence_at..], execs).unwrap();
            for (i, r) in recs.iter().enumerate() {
                let (lo, hi) = window(&fence, execs, r.hash);
                assert!((lo as usize) <= i && i < hi as usize, "{execs}: record {i}");
            }
            if execs == 1025 {
                for bit in 0..(TIME_PAGE * 4 + 4) * 8 {
                    let mut c = bytes[..TIME_PAGE * 4 + 4].to_vec();
                    c[bit / 8] ^= 1 << (bit % 8);
                    assert!(decode_time_page(&c, execs).is_none(), "bit {bit}");
                }
                let mut c = bytes[fence_at..].to_vec();
                c[3] ^= 4;
                assert!(decode_fence(&c, execs).is_none());
            }
        }
    }
}
