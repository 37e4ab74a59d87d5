//! The record frame: how one entry is laid out in a segment.
//!
//! ```text
//! +----------------+----------------+------------------------------+
//! | length: u32 LE | crc32: u32 LE  | payload: `length` bytes      |
//! +----------------+----------------+------------------------------+
//! ```
//!
//! `crc32` (CRC-32/ISO-HDLC, as `crc32fast` computes it) covers the four length bytes and then
//! the payload, so a damaged length is caught as surely as a damaged payload. The payload is the
//! bincode 2 "standard" encoding of [`PayloadRef`], spelled out byte by byte in `docs/FORMAT.md`.
//!
//! A reader decides a frame is whole only when all three hold: `length` is at most
//! [`MAX_PAYLOAD_LEN`] and fits in what is left of the file, the CRC matches, and the payload
//! decodes to a valid entry. Anything else is damage (mid-file) or a torn tail (nothing valid
//! follows); the length is never trusted before it is bounded, so no allocation is ever sized by
//! a number read off disk.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};

use crate::entry::{metadata_from_json, metadata_to_json};
use crate::{EntryError, ExecutionId, Level, LogEntry, TaskId};

/// Bytes before the payload: length and CRC.
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest payload a writer produces or a reader accepts (1 MiB).
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;

type Config = Configuration<LittleEndian, Varint, Limit<MAX_PAYLOAD_LEN>>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD_LEN>()
}

/// The payload as stored, borrowing its strings (decoding allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PayloadRef<'a> {
    /// The entry's sequence number (`docs/FORMAT.md`, version 2 frames); 0 for an entry
    /// written before entries had one.
    pub seq: u64,
    /// Execution id, validated on decode.
    pub execution_id: &'a str,
    /// Unix ms.
    pub timestamp: i64,
    /// [`Level::to_byte`].
    pub level: u8,
    /// Source.
    pub source: &'a str,
    /// Message.
    pub message: &'a str,
    /// Task id.
    pub task_id: Option<&'a str>,
    /// Metadata as JSON object text.
    pub metadata: Option<&'a str>,
}

/// The bincode-encoded part of a payload: every field but the sequence number, which a
/// version-2 frame stores before it as 8 fixed bytes.
#[derive(bincode::Encode, bincode::BorrowDecode)]
struct Wire<'a> {
    execution_id: &'a str,
    timestamp: i64,
    level: u8,
    source: &'a str,
    message: &'a str,
    task_id: Option<&'a str>,
    metadata: Option<&'a str>,
}

/// How the frames of one segment are checked: its header's format version (and salt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameKind {
    /// Version 1: the CRC covers the length field and the payload; no sequence number.
    #[default]
    V1,
    /// Version 2: the payload starts with the entry's sequence number (u64 LE), and the stored
    /// CRC is XORed with [`FrameKind::key`] of the segment's random salt and the frame's offset,
    /// so that bytes inside a payload never validate as a frame, at any offset, without the
    /// salt.
    V2 {
        /// The segment's salt, from its header.
        salt: u32,
    },
}

impl FrameKind {
    /// What the stored CRC of a frame at file offset `offset` is XORed with: 0 for version 1;
    /// for version 2 the low 32 bits of splitmix64's finalizer applied to
    /// `offset ^ (salt * 0x9E3779B97F4A7C15)` (`docs/FORMAT.md`).
    pub fn key(self, offset: u64) -> u32 {
        match self {
            FrameKind::V1 => 0,
            FrameKind::V2 { salt } => {
                let mut z = (offset ^ u64::from(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                let z = (z ^ (z >> 31)).to_le_bytes();
                u32::from_le_bytes([z[0], z[1], z[2], z[3]])
            }
        }
    }

    /// Bytes of sequence number before the bincode fields of a payload.
    pub fn seq_len(self) -> usize {
        match self {
            FrameKind::V1 => 0,
            FrameKind::V2 { .. } => 8,
        }
    }
}

impl PayloadRef<'_> {
    /// The sequence number, if the entry has one (0 marks an entry written before numbers).
    pub fn number(&self) -> Option<u64> {
        (self.seq != 0).then_some(self.seq)
    }

    /// The level, if the byte is a known one.
    pub fn level(&self) -> Option<Level> {
        Level::from_byte(self.level)
    }

    /// Builds the owned entry. Every field but the metadata was checked by the decoder; the
    /// metadata is parsed here (and must be a JSON object).
    pub fn to_entry(&self) -> Result<LogEntry, FrameError> {
        self.to_entry_sharing(&mut None, &mut None)
    }

    /// [`to_entry`](Self::to_entry), sharing the id text with the previous entry built through
    /// the same slots when it is the same id (a query's entries all carry one execution id and
    /// mostly runs of one task id): cloning an id is then a reference count, not an allocation.
    pub fn to_entry_sharing(
        &self,
        exec: &mut Option<ExecutionId>,
        task: &mut Option<TaskId>,
    ) -> Result<LogEntry, FrameError> {
        let level = self
            .level()
            .ok_or_else(|| FrameError::Payload(format!("unknown level byte {}", self.level)))?;
        let metadata = self
            .metadata
            .map(metadata_from_json)
            .transpose()
            .map_err(|e| FrameError::Payload(e.to_string()))?;
        let execution_id = shared(
            exec,
            self.execution_id,
            ExecutionId::as_str,
            ExecutionId::from_checked,
        );
        let task_id = self
            .task_id
            .map(|t| shared(task, t, TaskId::as_str, TaskId::from_checked));
        Ok(LogEntry {
            execution_id,
            timestamp: self.timestamp,
            level,
            source: self.source.to_owned(),
            message: self.message.to_owned(),
            task_id,
            metadata,
        })
    }
}

/// Why bytes are not a whole, valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes remain than the frame needs: a torn write, or the end of what was read.
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The length field is larger than any writer produces.
    #[error("length field {0} is over the {MAX_PAYLOAD_LEN}-byte maximum")]
    BadLength(u32),
    /// The stored CRC does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// CRC in the frame.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
    /// The CRC matched but the payload is not a valid entry (a bug or a foreign format).
    #[error("payload does not decode: {0}")]
    Payload(String),
}

/// Appends the version-1 frame for `entry` to `out`. On error `out` is left as it was.
pub fn encode(entry: &LogEntry, out: &mut Vec<u8>) -> Result<(), EntryError> {
    let start = out.len();
    encode_as(entry, FrameKind::V1, out)?;
    let crc = unkeyed_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Appends the frame for `entry` in the layout of `kind` to `out`, with its sequence number
/// (version 2) zero and its CRC field zero: the writer sets the number when it orders the
/// entry, and [`finish_frames`] the CRCs once the frames' offsets are known. On error `out` is
/// left as it was.
pub fn encode_as(entry: &LogEntry, kind: FrameKind, out: &mut Vec<u8>) -> Result<(), EntryError> {
    entry.validate()?;
    let metadata = entry.metadata.as_ref().map(metadata_to_json).transpose()?;
    let wire = Wire {
        execution_id: entry.execution_id.as_str(),
        timestamp: entry.timestamp,
        level: entry.level.to_byte(),
        source: &entry.source,
        message: &entry.message,
        task_id: entry.task_id.as_ref().map(TaskId::as_str),
        metadata: metadata.as_deref(),
    };
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.resize(out.len() + kind.seq_len(), 0);
    if let Err(e) = bincode::encode_into_std_write(wire, out, config()) {
        out.truncate(start);
        return Err(EntryError::InvalidMetadata(format!(
            "cannot encode entry: {e}"
        )));
    }
    let len = out.len() - start - FRAME_HEADER_LEN;
    // Validation bounds every field, so this holds; checked anyway because a reader would
    // refuse the frame.
    let Ok(len32) = u32::try_from(len) else {
        out.truncate(start);
        return Err(EntryError::InvalidMetadata("entry too large".to_owned()));
    };
    if len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(EntryError::InvalidMetadata(format!(
            "entry encodes to {len} bytes, over the {MAX_PAYLOAD_LEN}-byte record limit"
        )));
    }
    out[start..start + 4].copy_from_slice(&len32.to_le_bytes());
    Ok(())
}

/// Sets the sequence number of the version-2 frame at the start of `frame`.
pub fn set_seq(frame: &mut [u8], seq: u64) {
    if let Some(b) = frame.get_mut(FRAME_HEADER_LEN..FRAME_HEADER_LEN + 8) {
        b.copy_from_slice(&seq.to_le_bytes());
    }
}

/// Moves the valid frames of `bytes` (of `kind`, read at file offset `from`) to file offset
/// `to`: their CRCs are re-keyed for their new place. Damaged bytes are left as they are, and
/// stay damaged there.
pub fn rekey_frames(bytes: &mut [u8], kind: FrameKind, from: u64, to: u64) {
    if kind == FrameKind::V1 || from == to {
        return;
    }
    // The CRC alone tells a valid frame here (the payload is decoded where it is read).
    let mut pos = 0;
    while pos < bytes.len() {
        let at = from + pos as u64;
        match check_frame_as(&bytes[pos..], kind, at) {
            Ok((_, n)) => {
                let delta = kind.key(at) ^ kind.key(to + pos as u64);
                let field = &mut bytes[pos + 4..pos + 8];
                let crc = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) ^ delta;
                field.copy_from_slice(&crc.to_le_bytes());
                pos += n;
            }
            Err(_) => pos = next_frame_as(bytes, pos + 1, kind, from).unwrap_or(bytes.len()),
        }
    }
}

/// The CRC of a frame's length field and payload (`frame` is exactly one frame).
fn unkeyed_crc(frame: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&frame[..4]);
    hasher.update(&frame[FRAME_HEADER_LEN..]);
    hasher.finalize()
}

/// Sets the CRC of every frame in `bytes` (whole frames, as [`encode_as`] wrote them, to be
/// written at file offset `base`) for `kind`.
pub fn finish_frames(bytes: &mut [u8], kind: FrameKind, base: u64) {
    let mut pos = 0;
    while let Some(h) = bytes.get(pos..pos + 4) {
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let end = pos + FRAME_HEADER_LEN + len;
        let Some(frame) = bytes.get(pos..end) else {
            return;
        };
        let crc = unkeyed_crc(frame) ^ kind.key(base + pos as u64);
        bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}

/// Checks the version-1 frame at the start of `buf`; returns its payload bytes and the whole
/// frame length.
pub fn check_frame(buf: &[u8]) -> Result<(&[u8], usize), FrameError> {
    check_frame_as(buf, FrameKind::V1, 0)
}

/// Checks the frame of `kind` at the start of `buf`, which is at file offset `offset`; returns
/// its payload bytes (with the sequence number, in version 2) and the whole frame length.
pub fn check_frame_as(
    buf: &[u8],
    kind: FrameKind,
    offset: u64,
) -> Result<(&[u8], usize), FrameError> {
    let truncated = |needed| FrameError::Truncated {
        needed,
        available: buf.len(),
    };
    let header: [u8; FRAME_HEADER_LEN] = buf
        .get(..FRAME_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| truncated(FRAME_HEADER_LEN))?;
    let len32 = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let len = usize::try_from(len32).map_err(|_| FrameError::BadLength(len32))?;
    if len > MAX_PAYLOAD_LEN || len < kind.seq_len() {
        return Err(FrameError::BadLength(len32));
    }
    let total = FRAME_HEADER_LEN + len;
    let payload = buf
        .get(FRAME_HEADER_LEN..total)
        .ok_or_else(|| truncated(total))?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..4]);
    hasher.update(payload);
    let computed = hasher.finalize() ^ kind.key(offset);
    if computed != stored {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok((payload, total))
}

/// Decodes a checked payload of `kind` (sequence number, then the bincode fields).
pub fn decode_payload_as(payload: &[u8], kind: FrameKind) -> Result<PayloadRef<'_>, FrameError> {
    let (number, rest) = payload
        .split_at_checked(kind.seq_len())
        .ok_or_else(|| FrameError::Payload("no room for the sequence number".to_owned()))?;
    let mut p = decode_payload(rest)?;
    // Eight bytes in version 2, none in version 1 (then 0: no number).
    p.seq = number.iter().rev().fold(0, |v, &b| (v << 8) | u64::from(b));
    Ok(p)
}

/// Decodes a payload whose CRC has been checked, borrowing from it.
pub fn decode_payload(payload: &[u8]) -> Result<PayloadRef<'_>, FrameError> {
    let (w, used): (Wire<'_>, usize) = bincode::borrow_decode_from_slice(payload, config())
        .map_err(|e| FrameError::Payload(e.to_string()))?;
    let p = PayloadRef {
        seq: 0,
        execution_id: w.execution_id,
        timestamp: w.timestamp,
        level: w.level,
        source: w.source,
        message: w.message,
        task_id: w.task_id,
        metadata: w.metadata,
    };
    if used != payload.len() {
        return Err(FrameError::Payload(format!(
            "{} trailing bytes after the entry",
            payload.len() - used
        )));
    }
    if p.level().is_none() {
        return Err(FrameError::Payload(format!(
            "unknown level byte {}",
            p.level
        )));
    }
    // Every field as `append` checked it, in place (no allocation), so that building the
    // entry needs no second pass.
    let bad = |e: EntryError| FrameError::Payload(e.to_string());
    crate::entry::check_id("execution_id", p.execution_id).map_err(bad)?;
    if let Some(t) = p.task_id {
        crate::entry::check_id("task_id", t).map_err(bad)?;
    }
    crate::entry::check_source(p.source).map_err(bad)?;
    if p.message.len() > crate::MAX_MESSAGE_LEN {
        return Err(bad(EntryError::MessageTooLong {
            len: p.message.len(),
        }));
    }
    Ok(p)
}

/// The id in `slot` if it spells `text`, else a new one (which then fills the slot).
fn shared<T: Clone>(
    slot: &mut Option<T>,
    text: &str,
    as_str: fn(&T) -> &str,
    make: fn(&str) -> T,
) -> T {
    match slot {
        Some(id) if as_str(id) == text => id.clone(),
        _ => slot.insert(make(text)).clone(),
    }
}

/// Checks and decodes the version-1 frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Result<(PayloadRef<'_>, usize), FrameError> {
    decode_as(buf, FrameKind::V1, 0)
}

/// Checks and decodes the frame of `kind` at the start of `buf`, at file offset `offset`.
pub fn decode_as(
    buf: &[u8],
    kind: FrameKind,
    offset: u64,
) -> Result<(PayloadRef<'_>, usize), FrameError> {
    let (payload, total) = check_frame_as(buf, kind, offset)?;
    Ok((decode_payload_as(payload, kind)?, total))
}

/// The first offset at or after `from` in `buf` where a whole valid frame starts: how a reader
/// resynchronises after damage.
///
/// Its cost is bounded even when the damaged bytes were built to be expensive (a plugin
/// controls its messages' bytes, and a bit flip in a frame header makes the resync walk through
/// them). At each offset, in order of cost:
/// 1. the length field must be in range and fit in `buf` (4 bytes read);
/// 2. the payload's own length fields must be in range and add up to that length, with a
///    valid execution id (`payload_shape_fits`: tens of bytes read, whatever the length);
/// 3. the CRC, computed from prefix CRCs (`PrefixCrc`): at most two
///    `CRC_CHECKPOINT`-byte (1 KiB) CRCs and two shifts, instead of one CRC over up to 1 MiB;
/// 4. the full decode, which ends the search one way or the other only for a CRC-valid frame.
///
/// So a resync costs at most a few KiB of CRC per candidate offset, and random damage almost
/// never gets past step 2. `docs/DURABILITY.md` has the measured worst case.
pub fn next_frame(buf: &[u8], from: usize) -> Option<usize> {
    next_frame_as(buf, from, FrameKind::V1, 0)
}

/// [`next_frame`] for frames of `kind` in a `buf` that starts at file offset `base`: only a
/// frame whose CRC matches with the key of its own offset is found, so bytes inside a payload
/// never pass for one in a version-2 segment.
pub fn next_frame_as(buf: &[u8], from: usize, kind: FrameKind, base: u64) -> Option<usize> {
    let mut crcs = PrefixCrc::new(buf);
    (from..buf.len()).find(|&q| {
        let Some(header) = buf.get(q..q + FRAME_HEADER_LEN) else {
            return false;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(len) = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0 && l <= MAX_PAYLOAD_LEN && l <= buf.len() - q - FRAME_HEADER_LEN)
        else {
            return false;
        };
        let payload_at = q + FRAME_HEADER_LEN;
        len >= kind.seq_len()
            && payload_shape_fits(&buf[payload_at + kind.seq_len()..payload_at + len])
            && crcs.frame_crc(q, len) ^ kind.key(base + q as u64) == stored
            && decode_as(&buf[q..], kind, base + q as u64).is_ok()
    })
}

/// Spacing of the prefix CRCs that [`next_frame`] keeps: the most it CRCs per end of a
/// candidate frame.
pub const CRC_CHECKPOINT: usize = 1024;

/// CRCs of the prefixes of a buffer, so that the CRC of any range costs at most two
/// [`CRC_CHECKPOINT`]-byte CRCs and two shifts.
///
/// CRC-32 is affine: `crc(a ‖ b) = shift(crc(a), len(b)) ^ crc(b)`, where `shift` appends
/// `len(b)` zero bytes to a CRC state (crc32fast's `combine`, a few dozen carry-less
/// multiplications). So `crc(buf[s..e]) = crc(buf[..e]) ^ shift(crc(buf[..s]), e - s)`, and the
/// prefix CRCs come from checkpoints taken every [`CRC_CHECKPOINT`] bytes, built lazily, as far
/// as candidates reach.
pub struct PrefixCrc<'a> {
    buf: &'a [u8],
    /// `marks[i]` is the CRC of `buf[..i * CRC_CHECKPOINT]`.
    marks: Vec<u32>,
}

impl<'a> PrefixCrc<'a> {
    /// No checkpoint computed yet.
    pub fn new(buf: &'a [u8]) -> PrefixCrc<'a> {
        PrefixCrc {
            buf,
            marks: vec![0],
        }
    }

    /// The CRC of `buf[..end]`.
    fn prefix(&mut self, end: usize) -> u32 {
        let i = end / CRC_CHECKPOINT;
        while self.marks.len() <= i {
            let j = self.marks.len() - 1;
            let chunk = &self.buf[j * CRC_CHECKPOINT..(j + 1) * CRC_CHECKPOINT];
            let mut h = crc32fast::Hasher::new_with_initial(self.marks[j]);
            h.update(chunk);
            self.marks.push(h.finalize());
        }
        let mut h = crc32fast::Hasher::new_with_initial(self.marks[i]);
        h.update(&self.buf[i * CRC_CHECKPOINT..end]);
        h.finalize()
    }

    /// The CRC of `buf[start..end]`.
    pub fn range(&mut self, start: usize, end: usize) -> u32 {
        let whole = self.prefix(end);
        let before = self.prefix(start);
        whole ^ shift(before, end - start)
    }

    /// The CRC a frame at `at` with a `len`-byte payload must store: over its length field,
    /// then its payload.
    pub fn frame_crc(&mut self, at: usize, len: usize) -> u32 {
        let payload_at = at + FRAME_HEADER_LEN;
        let length_field = crc32fast::hash(&self.buf[at..at + 4]);
        shift(length_field, len) ^ self.range(payload_at, payload_at + len)
    }
}

/// `crc` with `n` zero bytes appended to its message.
fn shift(crc: u32, n: usize) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(crc);
    h.combine(&crc32fast::Hasher::new_with_initial_len(0, n as u64));
    h.finalize()
}

/// Whether `payload` has the shape of a [`PayloadRef`] encoding of exactly its length: every
/// length prefix within its field's limit, the level byte known, the option tags 0 or 1, the
/// execution id valid, and the fields ending exactly at the end. Reads only the few bytes of
/// the prefixes and the id (strings are skipped, not validated: the decode does that after the
/// CRC), so it costs the same for a 16-byte and a 1 MiB payload.
pub fn payload_shape_fits(payload: &[u8]) -> bool {
    let mut r = ShapeReader { b: payload, at: 0 };
    (|| {
        let id = r.string(crate::MAX_ID_LEN)?;
        let id = std::str::from_utf8(id).ok()?;
        crate::entry::check_id("execution_id", id).ok()?;
        r.varint()?; // timestamp
        Level::from_byte(r.byte()?)?;
        r.string(crate::MAX_SOURCE_LEN)?;
        r.string(crate::MAX_MESSAGE_LEN)?;
        // Metadata is bounded by the payload only: the decode does not check its limit either.
        for max in [crate::MAX_ID_LEN, MAX_PAYLOAD_LEN] {
            match r.byte()? {
                0 => {}
                1 => {
                    r.string(max)?;
                }
                _ => return None,
            }
        }
        (r.at == payload.len()).then_some(())
    })()
    .is_some()
}

/// Walks bincode's "standard" varint encoding (`docs/FORMAT.md`).
struct ShapeReader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> ShapeReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A varint: one byte below 251, else 251/252/253 then a u16/u32/u64.
    fn varint(&mut self) -> Option<u64> {
        let le = |b: &[u8]| b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x));
        match self.byte()? {
            b @ 0..=250 => Some(u64::from(b)),
            251 => self.take(2).map(le),
            252 => self.take(4).map(le),
            253 => self.take(8).map(le),
            _ => None,
        }
    }

    /// A length-prefixed string of at most `max` bytes, skipped.
    fn string(&mut self, max: usize) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok().filter(|&l| l <= max)?;
        self.take(len)
    }
}

/// Calls `f` for every valid frame of `kind` in `buf` (a run, or any span of whole frames), which
/// starts at file offset `base`, skipping damaged bytes by resynchronising; returns the damaged
/// spans as (offset, length, reason).
pub fn for_each_frame_as<'a>(
    buf: &'a [u8],
    kind: FrameKind,
    base: u64,
    mut f: impl FnMut(usize, PayloadRef<'a>) -> bool,
) -> Vec<(usize, usize, FrameError)> {
    let mut damage = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        match decode_as(&buf[pos..], kind, base + pos as u64) {
            Ok((p, n)) => {
                if !f(pos, p) {
                    break;
                }
                pos += n;
            }
            Err(e) => {
                let next = next_frame_as(buf, pos + 1, kind, base).unwrap_or(buf.len());
                damage.push((pos, next - pos, e));
                pos = next;
            }
        }
    }
    damage
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_encoded_payload_has_the_shape_and_prefix_crcs_match() {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for i in 0..300 {
            let mut e = sample();
            e.message = "m".repeat(i * 37);
            if i % 3 == 0 {
                e.task_id = None;
                e.metadata = None;
            }
            starts.push(buf.len());
            encode(&e, &mut buf).unwrap();
        }
        let mut crcs = PrefixCrc::new(&buf);
        for &at in &starts {
            let (payload, total) = check_frame(&buf[at..]).unwrap();
            assert!(payload_shape_fits(payload), "frame at {at}");
            let stored = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
            assert_eq!(crcs.frame_crc(at, total - FRAME_HEADER_LEN), stored);
            // One byte more or less is another shape.
            assert!(!payload_shape_fits(
                &buf[at + FRAME_HEADER_LEN..at + total - 1]
            ));
            if let Some(longer) = buf.get(at + FRAME_HEADER_LEN..at + total + 1) {
                assert!(!payload_shape_fits(longer));
            }
        }
        assert_eq!(crcs.range(5, 5), crc32fast::hash(&[]));
        assert_eq!(crcs.range(7, 3000), crc32fast::hash(&buf[7..3000]));
        // Resync finds each frame from just past the one before.
        for w in starts.windows(2) {
            assert_eq!(next_frame(&buf, w[0] + 1), Some(w[1]));
        }
    }

    fn sample() -> LogEntry {
        let meta = json!({"stack": ["a", "b"], "n": 1})
            .as_object()
            .cloned()
            .unwrap();
        LogEntry::new(
            ExecutionId::new("exec-1").unwrap(),
            -5,
            Level::Error,
            "worker",
            "boom\nline",
        )
        .with_task(TaskId::new("t1").unwrap())
        .with_metadata(meta)
    }

    #[test]
    fn frame_round_trips() {
        let mut buf = vec![7u8];
        encode(&sample(), &mut buf).unwrap();
        let (p, n) = decode(&buf[1..]).unwrap();
        assert_eq!(n, buf.len() - 1);
        assert_eq!(p.to_entry().unwrap(), sample());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(matches!(
                decode(&buf[..cut]),
                Err(FrameError::Truncated { .. })
            ));
        }
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&b).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn a_damaged_frame_loses_only_itself() {
        let mut buf = Vec::new();
        for i in 0..5 {
            let e = LogEntry::new(
                ExecutionId::new("e").unwrap(),
                i,
                Level::Info,
                "s",
                format!("m{i}"),
            );
            encode(&e, &mut buf).unwrap();
        }
        let frame = buf.len() / 5;
        buf[2 * frame + 10] ^= 0x40;
        let mut seen = Vec::new();
        let damage = for_each_frame_as(&buf, FrameKind::V1, 0, |_, p| {
            seen.push(p.timestamp);
            true
        });
        assert_eq!(seen, [0, 1, 3, 4]);
        assert_eq!(damage.len(), 1);
        assert_eq!((damage[0].0, damage[0].1), (2 * frame, frame));
    }

    #[test]
    fn huge_length_is_refused_before_reading() {
        let mut buf = u32::MAX.to_le_bytes().to_vec();
        buf.extend_from_slice(&[0; 12]);
        assert_eq!(decode(&buf).unwrap_err(), FrameError::BadLength(u32::MAX));
    }

    #[test]
    fn payload_layout_matches_format_doc() {
        // docs/FORMAT.md walks through exactly this record.
        let e = LogEntry::new(
            ExecutionId::new("e1").unwrap(),
            1000,
            Level::Info,
            "s",
            "hi",
        );
        let mut buf = Vec::new();
        encode(&e, &mut buf).unwrap();
        let payload = &buf[FRAME_HEADER_LEN..];
        assert_eq!(
            payload,
            &[2, b'e', b'1', 251, 0xD0, 0x07, 1, 1, b's', 2, b'h', b'i', 0, 0]
        );
        assert_eq!(&buf[..4], &14u32.to_le_bytes());
    }
}
