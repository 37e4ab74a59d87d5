//! One UTC day's append-only segment file: header, appends, and the scan that recovery and
//! `verify` use.
//!
//! ```text
//! offset 0   magic  b"LOGSTSEG"      8 bytes
//! offset 8   format version: u32 LE  (SEGMENT_VERSION)
//! offset 12  salt: u32 LE          version 2: random, mixed into every frame's CRC
//!                                  (version 1: zero, unused)
//! offset 16  records (see `record.rs`), back to back, until the end of the file
//! ```
//!
//! Nothing in a segment is ever rewritten: the writer appends with `pwrite` at the length it
//! tracks, and only recovery (or a failed append rolling itself back) shortens the file.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::journal::record::{
    self, FrameError, FrameKind, PayloadRef, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN,
};
use crate::view::FileView;

/// First bytes of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LOGSTSEG";
/// The segment and record format version. A reader refuses a file with a higher version; a
/// change that old readers could misread bumps it.
pub const SEGMENT_VERSION: u32 = 2;
/// Bytes before the first record.
pub const SEGMENT_HEADER_LEN: u64 = 16;

/// The 16-byte header of a segment (and, with another magic, of an index file).
pub fn file_header(magic: [u8; 8], version: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h
}

/// Checks a 16-byte file header.
pub fn check_header(path: &Path, bytes: &[u8], magic: [u8; 8], version: u32) -> Result<()> {
    let corrupt = |reason: String| StoreError::Corrupt {
        file: path.to_owned(),
        offset: 0,
        reason,
    };
    if bytes.len() < 16 {
        return Err(corrupt(format!(
            "header is {} bytes, 16 expected",
            bytes.len()
        )));
    }
    if bytes[..8] != magic {
        return Err(corrupt(format!(
            "not a logstore file (magic {:?}, expected {:?})",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(&magic)
        )));
    }
    let found = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if found > version {
        return Err(corrupt(format!(
            "format version {found} is newer than this logstore reads ({version}); upgrade logstore"
        )));
    }
    Ok(())
}

/// Checks the 16-byte `header` of the segment at `path`: how its frames are checked.
fn checked_frame_kind(path: &Path, header: &[u8]) -> Result<FrameKind> {
    check_header(path, header, SEGMENT_MAGIC, SEGMENT_VERSION)?;
    Ok(frame_kind(header))
}

/// How the frames of a segment whose 16-byte header is `header` (already checked) are checked.
pub fn frame_kind(header: &[u8]) -> FrameKind {
    let word = |i: usize| {
        header
            .get(i..i + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match word(8) {
        0 | 1 => FrameKind::V1,
        _ => FrameKind::V2 { salt: word(12) },
    }
}

/// Reads and checks the header of the segment in `view`: how its frames are checked.
pub fn read_frame_kind(view: &FileView) -> Result<FrameKind> {
    // A segment created whose header never reached the disk holds nothing.
    if view
        .len()
        .map_err(StoreError::io("stat segment", view.path()))?
        < SEGMENT_HEADER_LEN
    {
        return Ok(FrameKind::V1);
    }
    let header = view
        .read(0, 16)
        .map_err(StoreError::io("read segment header", view.path()))?;
    checked_frame_kind(view.path(), &header)
}

/// A random, non-zero salt for a new segment, from the kernel's random source.
fn new_salt(path: &Path) -> Result<u32> {
    let mut b = [0u8; 4];
    File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut b))
        .map_err(StoreError::io("read /dev/urandom for the salt of", path))?;
    Ok(u32::from_le_bytes(b).max(1))
}

/// The writer's handle on the current segment.
pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    len: u64,
    kind: FrameKind,
}

impl SegmentWriter {
    /// Opens (creating with a header if needed) the segment at `path`, positioned at `len`
    /// (the end of the last whole record, as recovery found it).
    pub fn open(path: &Path, len: u64) -> Result<SegmentWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("open segment", path))?;
        let mut w = SegmentWriter {
            file,
            path: path.to_owned(),
            len,
            kind: FrameKind::V1,
        };
        if len < SEGMENT_HEADER_LEN {
            let mut header = file_header(SEGMENT_MAGIC, SEGMENT_VERSION);
            header[12..16].copy_from_slice(&new_salt(path)?.to_le_bytes());
            w.file
                .write_all_at(&header, 0)
                .map_err(StoreError::io("write segment header", path))?;
            w.len = SEGMENT_HEADER_LEN;
            w.kind = frame_kind(&header);
        } else {
            let mut header = [0u8; 16];
            w.file
                .read_exact_at(&mut header, 0)
                .map_err(StoreError::io("read segment header", path))?;
            w.kind = checked_frame_kind(path, &header)?;
        }
        w.file
            .set_len(w.len)
            .map_err(StoreError::io("truncate segment", path))?;
        Ok(w)
    }

    /// How this segment's frames are checked (its header's version and salt).
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// Bytes in the file that are whole records (and header).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes`; returns the offset they start at. On failure the file is cut back to
    /// where it was, so a half-written batch never stays (the error says if even that failed).
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        let at = self.len;
        if let Err(e) = self.file.write_all_at(bytes, at) {
            // Best effort: a partial write past `at` must not stay readable as a record. If the
            // cut fails too, recovery on the next open removes the torn bytes (CRC).
            let _ = self.file.set_len(at);
            return Err(StoreError::io("append to segment", &self.path)(e));
        }
        self.len += bytes.len() as u64;
        Ok(at)
    }

    /// A second handle on the file, for `fsync` outside the writer's lock.
    pub fn sync_handle(&self) -> Result<SyncHandle> {
        let file = self
            .file
            .try_clone()
            .map_err(StoreError::io("clone segment handle", &self.path))?;
        Ok(SyncHandle {
            file,
            path: self.path.clone(),
        })
    }

    /// `fdatasync`: the records appended so far survive a power cut once this returns.
    pub fn sync(&self) -> Result<()> {
        fdatasync(&self.file, &self.path)
    }
}

/// A second handle on a segment, to fsync it outside the writer's lock (the group commit).
pub struct SyncHandle {
    file: File,
    path: PathBuf,
}

impl SyncHandle {
    /// `fdatasync` of the segment, as [`SegmentWriter::sync`].
    pub fn sync(&self) -> Result<()> {
        fdatasync(&self.file, &self.path)
    }
}

/// The one `fdatasync` of a segment, whichever handle asks; with the `failpoints` feature,
/// the failpoint `segment-fdatasync` makes it fail as a disk would.
fn fdatasync(file: &File, path: &Path) -> Result<()> {
    #[cfg(feature = "failpoints")]
    fail::fail_point!("segment-fdatasync", |_| Err(StoreError::io(
        "fsync segment",
        path
    )(io::Error::other(
        "Input/output error (injected at the failpoint segment-fdatasync)"
    ))));
    file.sync_data()
        .map_err(StoreError::io("fsync segment", path))
}

/// What a scan meets.
pub enum ScanEvent<'a> {
    /// A whole, valid record.
    Record {
        /// Offset of its frame.
        offset: u64,
        /// Frame length (header + payload).
        len: usize,
        /// The decoded payload.
        payload: PayloadRef<'a>,
    },
    /// Bytes that are not records, followed by a valid record: mid-file damage.
    Damage {
        /// Where the damage starts.
        offset: u64,
        /// How many bytes are skipped.
        len: u64,
        /// Why the first frame there failed.
        reason: FrameError,
    },
    /// Bytes at the end with no valid record after them: a torn tail (or damage at the end).
    Tail {
        /// Where the invalid bytes start.
        offset: u64,
        /// Why the frame there failed.
        reason: FrameError,
    },
}

const WINDOW: usize = 4 << 20;
const MAX_FRAME: usize = FRAME_HEADER_LEN + MAX_PAYLOAD_LEN;

/// Reads `[from, to)` of `view` record by record, calling `f` for each record, damaged region
/// and torn tail, in file order. Stops early when `f` breaks. Memory: one window of a few MiB.
pub fn scan(
    view: &FileView,
    kind: FrameKind,
    from: u64,
    to: u64,
    mut f: impl FnMut(ScanEvent<'_>) -> ControlFlow<()>,
) -> io::Result<()> {
    let mut win = Window::new(view, to);
    let mut pos = from;
    while pos < to {
        let bytes = win.at(pos)?;
        match record::decode_as(bytes, kind, pos) {
            Ok((payload, len)) => {
                let ev = ScanEvent::Record {
                    offset: pos,
                    len,
                    payload,
                };
                if f(ev).is_break() {
                    return Ok(());
                }
                pos += len as u64;
            }
            Err(reason) => {
                let next = resync(&mut win, kind, pos + 1, to)?;
                let ev = match next {
                    Some(next) => ScanEvent::Damage {
                        offset: pos,
                        len: next - pos,
                        reason,
                    },
                    None => ScanEvent::Tail {
                        offset: pos,
                        reason,
                    },
                };
                if f(ev).is_break() {
                    return Ok(());
                }
                match next {
                    Some(next) => pos = next,
                    None => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

/// The first offset in `[from, to)` where a whole valid record starts, looked for one window
/// at a time (each window holds a whole maximum-size frame past its last candidate).
fn resync(win: &mut Window<'_>, kind: FrameKind, from: u64, to: u64) -> io::Result<Option<u64>> {
    let mut q = from;
    while q < to {
        let bytes = win.at(q)?;
        // Candidates in this window: those with a maximum-size frame's room after them, or all
        // of them if the window reaches the end.
        let reaches_end = q + bytes.len() as u64 >= to;
        let candidates = if reaches_end {
            bytes.len()
        } else {
            bytes.len().saturating_sub(MAX_FRAME).max(1)
        };
        if let Some(i) = record::next_frame_as(bytes, 0, kind, q).filter(|&i| i < candidates) {
            return Ok(Some(q + i as u64));
        }
        if reaches_end {
            return Ok(None);
        }
        q += candidates as u64;
    }
    Ok(None)
}

/// A sliding read window that always holds a whole maximum-size frame ahead of the position
/// asked for (or everything up to `end`).
struct Window<'v> {
    view: &'v FileView,
    end: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'v> Window<'v> {
    fn new(view: &'v FileView, end: u64) -> Window<'v> {
        Window {
            view,
            end,
            start: 0,
            buf: Vec::new(),
        }
    }

    fn at(&mut self, pos: u64) -> io::Result<&[u8]> {
        let have_end = self.start + self.buf.len() as u64;
        let need_end = self.end.min(pos.saturating_add(MAX_FRAME as u64));
        if pos < self.start || need_end > have_end {
            let len = usize::try_from(self.end - pos)
                .map_or(WINDOW + MAX_FRAME, |l| l.min(WINDOW + MAX_FRAME));
            let chunk = self.view.read(pos, len)?;
            self.buf.clear();
            self.buf.extend_from_slice(&chunk);
            self.start = pos;
        }
        let from = usize::try_from(pos - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(from..).unwrap_or(&[]))
    }
}
