//! Reading a sealed file's execution table: records, their names, the lookup of an id
//! through the catalog's fence, and the catalog's time pages.

use crate::error::Result;
use crate::journal::index::exec_hash;
use crate::sealed::catalog;
use crate::sealed::layout::{ExecRecord, EXEC_RECORD_LEN};

use super::SealedFile;

impl SealedFile {
    /// Record number `i` of the execution table; `None` if it is damaged.
    pub(crate) fn record(&self, i: u32) -> Result<Option<ExecRecord>> {
        let mut b = [0u8; EXEC_RECORD_LEN];
        let at = self.trailer.exec_table + u64::from(i) * EXEC_RECORD_LEN as u64;
        self.read_at(&mut b, at)?;
        Ok(self.checked(&b))
    }

    fn checked(&self, b: &[u8]) -> Option<ExecRecord> {
        ExecRecord::from_bytes(b).filter(|r| {
            r.last_block < self.trailer.blocks
                && r.name_offset + u64::from(r.name_len) <= self.trailer.names_len
        })
    }

    /// Where the catalog section starts, if the file has one.
    fn catalog_at(&self) -> Option<u64> {
        let t = &self.trailer;
        t.catalog
            .then(|| t.exec_table + u64::from(t.execs) * EXEC_RECORD_LEN as u64)
    }

    /// Whether the file has a catalog (version 5): its executions can be taken newest first.
    pub(crate) fn has_catalog(&self) -> bool {
        self.trailer.catalog
    }

    /// Pages of the catalog's order by first entry (0 without a catalog).
    pub(crate) fn time_page_count(&self) -> usize {
        if self.trailer.catalog {
            catalog::time_page_count(self.trailer.execs)
        } else {
            0
        }
    }

    /// Page `p` of the catalog's order by first entry: record numbers, oldest first entry
    /// first; `None` if the page is damaged (or there is no catalog).
    pub(crate) fn time_page(&self, p: usize) -> Result<Option<Vec<u32>>> {
        let Some(at) = self.catalog_at() else {
            return Ok(None);
        };
        let execs = self.trailer.execs;
        let (rel, n) = catalog::time_page_at(execs, p);
        if n == 0 {
            return Ok(None);
        }
        let mut b = vec![0u8; n * 4 + 4];
        self.read_at(&mut b, at + rel)?;
        Ok(catalog::decode_time_page(&b, execs))
    }

    /// Checks the catalog against the execution table, for `verify`: every page's CRC, every
    /// record listed once in order of first entry, every fence hash that of its record.
    /// Returns the problems as (file offset, what).
    pub(crate) fn check_catalog(&self) -> Result<Vec<(u64, String)>> {
        let Some(at) = self.catalog_at() else {
            return Ok(Vec::new());
        };
        let execs = self.trailer.execs;
        let n = execs as usize;
        // (hash, min_ts) of every record by number; `None` where it is damaged.
        let mut recs: Vec<Option<(u64, i64)>> = Vec::with_capacity(n);
        self.for_each_slot(|_, r| recs.push(r.map(|r| (r.hash, r.min_ts))))?;
        let mut problems = Vec::new();
        let mut listed = vec![false; n];
        let mut whole = true;
        let mut prev: Option<(i64, u32)> = None;
        for p in 0..catalog::time_page_count(execs) {
            let (rel, _) = catalog::time_page_at(execs, p);
            let Some(numbers) = self.time_page(p)? else {
                whole = false;
                problems.push((at + rel, format!("catalog page {p} fails its checksum (the newest-first listing reads the execution table instead)")));
                continue;
            };
            for i in numbers {
                if std::mem::replace(&mut listed[i as usize], true) {
                    problems.push((at + rel, format!("catalog page {p} lists record {i} twice")));
                }
                if let Some((_, ts)) = recs[i as usize] {
                    if prev.is_some_and(|q| q > (ts, i)) {
                        problems.push((
                            at + rel,
                            format!("catalog page {p} is out of order at record {i}"),
                        ));
                    }
                    prev = Some((ts, i));
                }
            }
        }
        if whole && listed.iter().any(|l| !l) {
            problems.push((
                at,
                "the catalog leaves out some execution records".to_owned(),
            ));
        }
        let fence_at = at + catalog::by_time_len(execs);
        match self.fence()? {
            None => problems.push((fence_at, "the catalog's fence of hashes fails its checks (executions are found by binary search instead)".to_owned())),
            Some(f) => {
                for (j, &h) in f.iter().enumerate() {
                    if recs
                        .get(j * catalog::STRIDE)
                        .copied()
                        .flatten()
                        .is_some_and(|(hash, _)| hash != h)
                    {
                        problems.push((fence_at, format!("fence entry {j} is not the hash of record {}", j * catalog::STRIDE)));
                    }
                }
            }
        }
        Ok(problems)
    }

    /// The catalog's fence of hashes, read once.
    fn fence(&self) -> Result<Option<&[u64]>> {
        if let Some(f) = self.fence.get() {
            return Ok(f.as_deref());
        }
        let fence = match self.catalog_at() {
            None => None,
            Some(at) => {
                let execs = self.trailer.execs;
                let from = at + catalog::by_time_len(execs);
                let len = at + catalog::catalog_len(execs) - from;
                let mut b = vec![0u8; usize::try_from(len).unwrap_or(0)];
                self.read_at(&mut b, from)?;
                let f = catalog::decode_fence(&b, execs);
                if f.is_none() {
                    tracing::warn!(file = %self.path.display(), "damaged catalog fence; finding executions by binary search (run `logstore verify`)");
                }
                f
            }
        };
        Ok(self.fence.get_or_init(|| fence).as_deref())
    }

    /// The execution id of a record; `None` if its bytes are damaged.
    pub(crate) fn name(&self, r: &ExecRecord) -> Result<Option<String>> {
        let mut b = vec![0u8; usize::from(r.name_len)];
        self.read_at(&mut b, self.trailer.names + r.name_offset)?;
        // The names carry no CRC of their own: the record's hash is their check.
        Ok(String::from_utf8(b).ok().filter(|s| {
            crate::entry::check_id("execution_id", s).is_ok() && exec_hash(s) == r.hash
        }))
    }

    /// The record of execution `id` (none if the day does not hold it; the writer writes one
    /// per id). A damaged record on the way of the binary search makes it a linear scan, so
    /// one bad record costs only its own execution.
    pub(crate) fn lookup(&self, id: &str) -> Result<Vec<ExecRecord>> {
        let hash = exec_hash(id);
        let candidates = match self.search(hash)? {
            Some(c) => c,
            None => {
                tracing::warn!(file = %self.path.display(), "damaged execution record; scanning the execution table (run `logstore verify`)");
                let mut c = Vec::new();
                self.for_each_record(|r| {
                    if r.hash == hash {
                        c.push(r);
                    }
                })?;
                c
            }
        };
        let mut out = Vec::new();
        for r in candidates {
            match self.name(&r)? {
                Some(name) if name == id => out.push(r),
                Some(_) => {} // another id with the same hash
                // A damaged name: the hash matched, and the blocks are filtered by id anyway.
                None => out.push(r),
            }
        }
        // A merged file holds one record per part the execution was in: block order is
        // append order.
        out.sort_by_key(|r| r.first_block);
        Ok(out)
    }

    /// Binary search; `None` if a damaged record was met.
    fn search(&self, hash: u64) -> Result<Option<Vec<ExecRecord>>> {
        if let Some(fence) = self.fence()? {
            // One read of the window the fence gives: every record of `hash` is in it.
            let (lo, hi) = catalog::window(fence, self.trailer.execs, hash);
            let n = hi.saturating_sub(lo) as usize;
            let mut b = vec![0u8; n * EXEC_RECORD_LEN];
            let at = self.trailer.exec_table + u64::from(lo) * EXEC_RECORD_LEN as u64;
            self.read_at(&mut b, at)?;
            let mut out = Vec::new();
            for chunk in b.chunks_exact(EXEC_RECORD_LEN) {
                let Some(r) = self.checked(chunk) else {
                    return Ok(None);
                };
                if r.hash == hash {
                    out.push(r);
                }
            }
            return Ok(Some(out));
        }
        let (mut lo, mut hi) = (0u32, self.trailer.execs);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(r) = self.record(mid)? else {
                return Ok(None);
            };
            if r.hash < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        while lo < self.trailer.execs {
            let Some(r) = self.record(lo)? else {
                return Ok(None);
            };
            if r.hash != hash {
                break;
            }
            out.push(r);
            lo += 1;
        }
        Ok(Some(out))
    }

    /// The records whose hash is `hash` (ids that share it included), by the fence, a binary
    /// search, or a scan of the table if a record on the way is damaged.
    pub(crate) fn records_of_hash(&self, hash: u64) -> Result<Vec<ExecRecord>> {
        if let Some(found) = self.search(hash)? {
            return Ok(found);
        }
        let mut c = Vec::new();
        self.for_each_record(|r| {
            if r.hash == hash {
                c.push(r);
            }
        })?;
        Ok(c)
    }

    /// Calls `f` for every intact execution record, in table order; returns the file offsets
    /// of the damaged ones.
    pub(crate) fn for_each_record(&self, mut f: impl FnMut(ExecRecord)) -> Result<Vec<u64>> {
        let mut bad = Vec::new();
        self.for_each_slot(|at, r| match r {
            Some(r) => f(r),
            None => bad.push(at),
        })?;
        Ok(bad)
    }

    /// Calls `f(offset, record)` for every slot of the execution table in order, `None` for a
    /// damaged one; reads the table in chunks.
    fn for_each_slot(&self, mut f: impl FnMut(u64, Option<ExecRecord>)) -> Result<()> {
        const CHUNK: u32 = 4096;
        let mut i = 0u32;
        while i < self.trailer.execs {
            let n = CHUNK.min(self.trailer.execs - i);
            let at = self.trailer.exec_table + u64::from(i) * EXEC_RECORD_LEN as u64;
            let mut b = vec![0u8; n as usize * EXEC_RECORD_LEN];
            self.read_at(&mut b, at)?;
            for (k, chunk) in b.chunks_exact(EXEC_RECORD_LEN).enumerate() {
                f(at + (k * EXEC_RECORD_LEN) as u64, self.checked(chunk));
            }
            i += n;
        }
        Ok(())
    }
}
