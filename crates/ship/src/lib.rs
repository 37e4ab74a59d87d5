//! Shipping a store to ClickHouse (one server or a sharded cluster), exactly once as readers
//! see it, or to any OpenTelemetry backend (OTLP/HTTP), at least once; and reading ClickHouse
//! back.
//!
//! ```text
//!  store (read-only, next to the writing engine)
//!    └─ source: days oldest first, runs (live layout) or blocks (sealed) in order, rows keyed
//!       (node, seq), or (node, day, execution_id, ordinal) for entries without numbers
//!         └─ rows: a batch in the target's encoding, bounded by entries, bytes and time
//!              ├─ clickhouse: INSERT (RowBinary) over HTTP, synchronous on a cluster
//!              └─ otlp: POST /v1/logs (protobuf, gzip)
//!                   retried with backoff while the target is away, then
//!                   └─ cursor: DIR/ship[-NAME].cursor, replaced atomically after the
//!                      acknowledgement
//! ```
//!
//! A crash between the acknowledgement and the cursor write sends the batch again on restart;
//! its rows carry the same keys, so a `ReplacingMergeTree` read with `FINAL` shows each entry
//! once (an OTLP backend sees that one batch twice, each record with its `log.record.uid`).
//! `docs/FLEET.md` is the operator's side: schema, recipes, guarantees.

mod chunk;
pub mod clickhouse;
pub mod cluster;
pub mod cursor;
mod error;
pub mod fleet;
pub mod otlp;
mod rows;
pub mod schema;
mod sealed_source;
mod source;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use clickhouse::{ClickHouse, Version};
pub use cursor::{Cursor, DayPosition};

/// The name [`DayPosition`] had before it was told apart from search's
/// `Position` of a hit.
#[deprecated(note = "renamed DayPosition")]
pub type Position = DayPosition;
pub use error::ShipError;
pub use otlp::{Otlp, OtlpConfig};
pub use schema::Features;

use chunk::Limits;
use logstore_store::access::DayFiles;
use logstore_store::Day;
use logstore_store::{Clock, SystemClock};
use logstore_store::{LogStore, StoreError};
use rows::Rows;
use source::DayReader;

/// How a [`Shipper`] runs.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// ClickHouse: `http://[user[:password]@]host[:port]`.
    pub url: String,
    /// The database holding the `logs` table.
    pub database: String,
    /// The ClickHouse cluster (one of the servers' `remote_servers`) that `logs` is a
    /// `Distributed` table over: `init` creates that layout, and `check` insists on it.
    pub cluster: Option<String>,
    /// Ship to this OTLP/HTTP receiver instead of ClickHouse.
    pub otlp: Option<OtlpConfig>,
    /// The target's name, which names its cursor (`DIR/ship-NAME.cursor`) and its hold
    /// (`None`: `DIR/ship.cursor`, the ClickHouse default).
    pub target: Option<String>,
    /// This node's name, part of every row's key.
    pub node: String,
    /// A batch holds at most this many entries ...
    pub max_batch_entries: usize,
    /// ... and about this many bytes of rows ...
    pub max_batch_bytes: usize,
    /// ... and waits at most this long for more entries once it has one.
    pub max_batch_delay: Duration,
    /// How often to look for new entries when there were none.
    pub poll_interval: Duration,
    /// Give up on a server that stays away this long (`None`: never).
    pub retry_for: Option<Duration>,
}

impl ShipConfig {
    /// Defaults for the server at `url`: database `logstore`, node = host name.
    pub fn new(url: &str) -> ShipConfig {
        ShipConfig {
            url: url.to_owned(),
            database: "logstore".to_owned(),
            cluster: None,
            otlp: None,
            target: None,
            node: default_node(),
            max_batch_entries: 100_000,
            max_batch_bytes: 16 << 20,
            max_batch_delay: Duration::from_millis(500),
            poll_interval: Duration::from_millis(100),
            retry_for: None,
        }
    }

    /// Defaults for the OTLP/HTTP receiver `otlp`: target `otlp`, batches of at most 8,192
    /// entries or 4 MiB (receivers commonly cap a request at 4 MiB), node = host name.
    pub fn otlp(otlp: OtlpConfig) -> ShipConfig {
        ShipConfig {
            url: otlp.url.clone(),
            database: String::new(),
            target: Some("otlp".to_owned()),
            otlp: Some(otlp),
            max_batch_entries: 8192,
            max_batch_bytes: 4 << 20,
            ..ShipConfig::new("")
        }
    }
}

/// The host name, or `localhost` when it cannot be read.
pub fn default_node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| check_node(h).is_ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A node name: 1..=128 bytes of `[A-Za-z0-9._:-]`, like an execution id.
pub fn check_node(node: &str) -> Result<(), String> {
    logstore_store::check_id("node", node).map_err(|e| e.to_string())
}

/// What one [`Shipper::ship_available`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shipped {
    /// Entries acknowledged.
    pub entries: u64,
    /// Inserts made.
    pub batches: u64,
}

/// Where shipping stands, as `logstore ship --status` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipStatus {
    /// The cursor (a fresh one if nothing was shipped yet).
    pub cursor: Cursor,
    /// Whether a cursor file exists.
    pub started: bool,
    /// Entries stored but not acknowledged.
    pub lag_entries: u64,
    /// Age of the oldest of those, by its timestamp (0 when there are none).
    pub lag_seconds: f64,
}

/// Ships a store to ClickHouse or an OTLP receiver: see the module documentation.
pub struct Shipper {
    dir: PathBuf,
    store: LogStore,
    target: Target,
    config: ShipConfig,
    cursor: Cursor,
    reader: Option<DayReader>,
    clock: Arc<dyn Clock>,
}

/// Where batches go.
enum Target {
    ClickHouse {
        ch: ClickHouse,
        insert_sql: String,
        /// What the server supports, asked before the first insert.
        features: Option<Features>,
    },
    Otlp(Otlp),
}

impl Target {
    fn url(&self) -> &str {
        match self {
            Target::ClickHouse { ch, .. } => ch.url(),
            Target::Otlp(o) => o.url(),
        }
    }

    fn empty_rows(&self) -> Rows {
        match self {
            Target::ClickHouse { .. } => Rows::RowBinary(Vec::new()),
            Target::Otlp(_) => Rows::Otlp(otlp::Records::default()),
        }
    }
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("dir", &self.dir)
            .field("url", &self.target.url())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl Shipper {
    /// Opens the store in `dir` read-only and loads its cursor. Does not contact the server.
    /// A cursor written for another node or database is refused.
    pub fn open(dir: &Path, config: ShipConfig) -> Result<Shipper, ShipError> {
        check_node(&config.node).map_err(|reason| ShipError::BadUrl {
            url: config.url.clone(),
            reason: format!("--node: {reason}"),
        })?;
        if let Some(t) = &config.target {
            cursor::check_target(t).map_err(|reason| ShipError::Cursor {
                path: dir.to_owned(),
                reason,
            })?;
        }
        let target = match &config.otlp {
            Some(o) => Target::Otlp(Otlp::new(o, &config.node)?),
            None => {
                for (what, name) in std::iter::once(("--database", &config.database))
                    .chain(config.cluster.iter().map(|c| ("--cluster", c)))
                {
                    if !clickhouse::is_identifier(name) {
                        return Err(ShipError::BadUrl {
                            url: clickhouse::mask_password(&config.url),
                            reason: format!(
                                "{what} {name:?} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)"
                            ),
                        });
                    }
                }
                Target::ClickHouse {
                    ch: ClickHouse::new(&config.url)?,
                    insert_sql: format!(
                        "INSERT INTO {}.{} ({}) FORMAT RowBinary",
                        config.database,
                        schema::TABLE,
                        schema::INSERT_COLUMNS
                    ),
                    features: None,
                }
            }
        };
        let store = LogStore::open_read_only(dir)?;
        let target_name = config.target.as_deref();
        let cursor = match Cursor::load_of(dir, target_name)? {
            Some(c) => {
                for (what, have, want) in [
                    ("node", &c.node, &config.node),
                    ("database", &c.database, &config.database),
                ] {
                    if have != want {
                        return Err(ShipError::Cursor {
                            path: c.file(dir),
                            reason: format!("it was written for {what} {have:?}, not {want:?}; ship with --{what} {have}, or move the file away to ship everything again under the new {what}"),
                        });
                    }
                }
                // A cursor from before holds existed gets its hold here.
                c.hold(dir)?;
                c
            }
            None => Cursor {
                target: target_name.map(str::to_owned),
                ..Cursor::new(&config.node, &config.database)
            },
        };
        Ok(Shipper {
            dir: dir.to_owned(),
            store,
            target,
            config,
            cursor,
            reader: None,
            clock: Arc::new(SystemClock),
        })
    }

    /// The target's URL, for messages (never holds a password).
    pub fn url(&self) -> &str {
        self.target.url()
    }

    /// The ClickHouse client (`None` when shipping to an OTLP receiver).
    pub fn clickhouse(&self) -> Option<&ClickHouse> {
        match &self.target {
            Target::ClickHouse { ch, .. } => Some(ch),
            Target::Otlp(_) => None,
        }
    }

    /// The cursor as last saved.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Creates what this ClickHouse server needs if it is missing, with what it supports: the
    /// database and the table, or, on a cluster, this server's shard table and the
    /// `Distributed` table over the cluster (run it against every server of the cluster).
    /// Nothing to do for an OTLP receiver.
    pub fn init(&mut self) -> Result<Option<Features>, ShipError> {
        let Target::ClickHouse { ch, features, .. } = &mut self.target else {
            return Ok(None);
        };
        let found = Features::detect(ch)?;
        *features = Some(found);
        let ch = ch.clone();
        let database = &self.config.database;
        if let Some(cluster) = &self.config.cluster {
            cluster::check_cluster(&ch, cluster)?;
            // A plain table of that name (from shipping to one server) is not replaced.
            match cluster::table_engine(&ch, database, schema::TABLE)? {
                Some(engine) if engine != "Distributed" => {
                    return Err(cluster::not_distributed(&ch, database, cluster, &engine))
                }
                _ => {}
            }
        }
        for sql in schema::create_statements(database, found, self.config.cluster.as_deref()) {
            ch.execute(&sql)?;
        }
        let table = if self.config.cluster.is_some() {
            schema::LOCAL_TABLE
        } else {
            schema::TABLE
        };
        if !schema::has_seq_column(&ch, database, table)? {
            tracing::warn!(database = %database, "the table has the key of a shipper before sequence numbers: migrating it (the old table stays as logs_before_seq)");
            for sql in schema::migrate_statements(database, found) {
                ch.execute(&sql)?;
            }
        }
        Ok(Some(found))
    }

    /// Checks that the target answers (waiting for it as for an insert) and takes our
    /// credentials; for ClickHouse, that the table exists with the current key (and, with a
    /// cluster, is a `Distributed` table over it), and which settings inserts need.
    pub fn check(&mut self, stop: Option<&AtomicBool>) -> Result<(), ShipError> {
        match &self.target {
            Target::Otlp(o) => {
                // An empty request is a valid export: it tests the URL and the headers.
                let body = o.encode(&mut otlp::Records::default());
                let o = o.clone();
                self.retrying(stop, || {
                    o.export(&body, &|| "an empty export".to_owned()).map(drop)
                })
            }
            Target::ClickHouse { ch, .. } => {
                let ch = ch.clone();
                let database = &self.config.database;
                let sql = format!("SELECT count() FROM {database}.{} WHERE 0", schema::TABLE);
                self.retrying(stop, || ch.execute(&sql).map(drop))?;
                if let Some(cluster) = &self.config.cluster {
                    cluster::check_cluster(&ch, cluster)?;
                    cluster::check_distributed(&ch, database, cluster)?;
                }
                if !schema::has_seq_column(&ch, database, schema::TABLE)? {
                    return Err(ShipError::MissingSchema {
                        url: ch.url().to_owned(),
                        what: format!(
                            "column seq in table {database}.{} (its key is a shipper's from before sequence numbers; migrate it, see docs/FLEET.md)",
                            schema::TABLE
                        ),
                        message: "no such column".to_owned(),
                    });
                }
                // What the server supports, unless `init` just asked.
                if let Target::ClickHouse { features, .. } = &mut self.target {
                    if features.is_none() {
                        *features = Some(Features::detect(&ch)?);
                    }
                }
                Ok(())
            }
        }
    }

    /// Runs `op` until it succeeds, retrying transient failures with backoff (100 ms doubling
    /// to 5 s) for `retry_for` or until `stop`.
    fn retrying(
        &self,
        stop: Option<&AtomicBool>,
        mut op: impl FnMut() -> Result<(), ShipError>,
    ) -> Result<(), ShipError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match op() {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() => {
                    let waited = started.elapsed();
                    let out_of_time = self.config.retry_for.is_some_and(|limit| waited >= limit);
                    if out_of_time || stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                        return Err(e.after_retrying(waited));
                    }
                    // A receiver that says when to come back is believed (capped, and never
                    // sooner than the backoff).
                    let wait = e.retry_after().map_or(backoff, |d| d.max(backoff));
                    tracing::warn!(error = %e, retry_in = ?wait, "request failed; retrying (the cursor has not moved)");
                    sleep_unless_stopped(wait, stop);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Ships everything stored now, then returns (what `logstore ship --once` does).
    pub fn ship_available(&mut self) -> Result<Shipped, ShipError> {
        let mut done = Shipped::default();
        while let Some(entries) = self.ship_one()? {
            done.entries += entries;
            done.batches += 1;
        }
        Ok(done)
    }

    /// Ships one batch of what is stored now (up to the limits, without waiting); returns its
    /// entries, or `None` when there was nothing to ship.
    pub fn ship_one(&mut self) -> Result<Option<u64>, ShipError> {
        let mut rows = self.target.empty_rows();
        let Some(batch) = self.next_batch(&mut rows, None, None)? else {
            return Ok(None);
        };
        self.send(&mut rows, &batch, None)?;
        Ok(Some(batch.entries as u64))
    }

    /// Ships until `stop` is set: batches are sent when full or `max_batch_delay` after their
    /// first entry; a server that is away is retried with backoff (for `retry_for`, or
    /// forever).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Shipped, ShipError> {
        let mut done = Shipped::default();
        let mut rows = self.target.empty_rows();
        while !stop.load(Ordering::Relaxed) {
            rows.clear();
            let deadline = Instant::now() + self.config.max_batch_delay;
            match self.next_batch(&mut rows, Some(deadline), Some(stop))? {
                Some(batch) => {
                    self.send(&mut rows, &batch, Some(stop))?;
                    done.entries += batch.entries as u64;
                    done.batches += 1;
                }
                None => std::thread::sleep(self.config.poll_interval),
            }
        }
        Ok(done)
    }

    /// Reads the next batch into `rows`: from the current day (moving on to the next day when
    /// this one is finished), up to the limits. With a `deadline`, a batch that is not full
    /// keeps collecting new entries until then. `None` when there is nothing to ship.
    fn next_batch(
        &mut self,
        rows: &mut Rows,
        deadline: Option<Instant>,
        stop: Option<&AtomicBool>,
    ) -> Result<Option<Batch>, ShipError> {
        let mut batch: Option<Batch> = None;
        let mut relists = 0;
        loop {
            self.store.refresh_days()?;
            let days = self.store.days();
            let Some(files) = self.current_day(&days)? else {
                return Ok(batch);
            };
            if !source::shippable(&files) {
                // Several live segments and no part yet (the sealer is behind): what they
                // hold is shipped from their parts. Send what we have.
                return Ok(batch);
            }
            // A day gets no more entries once it is sealed whole, or once a newer day exists
            // (the writer rolled) and it is either one live segment or parts only (a day whose
            // damaged part keeps it from being sealed whole is done too). A day in parts with
            // a live segment left waits: that segment still becomes a part.
            let newer = days.iter().any(|d| d.day() > files.day());
            let frozen = files.is_whole()
                || (newer && (files.sealed().is_none() || files.segs().is_empty()));
            let resealed = self
                .reader
                .as_ref()
                .is_some_and(|r| r.day() == files.day() && !r.fits(&files));
            if resealed && batch.is_some() {
                // Sealed under us: what was read from the live-layout files is good; send it first.
                return Ok(batch);
            }
            let taken = batch.as_ref().map_or(0, |b| b.entries);
            let limits = Limits {
                entries: self.config.max_batch_entries.saturating_sub(taken),
                bytes: self.config.max_batch_bytes.saturating_sub(rows.bytes()),
            };
            match self.open_reader(&files) {
                // Sealed between the listing and the open: the live-layout files are gone; list again.
                Err(ShipError::Store(StoreError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound && relists < 100 =>
                {
                    relists += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                other => other?,
            }
            let node = &self.config.node;
            let reader = self
                .reader
                .as_mut()
                .ok_or_else(|| unreachable_reader(&self.dir))?;
            let chunk = reader.read(&files, node, limits, rows)?;
            if chunk.entries > 0 || batch.is_some() {
                let b = batch.get_or_insert(Batch {
                    day: files.day(),
                    entries: 0,
                    min_ts: chunk.min_ts,
                    end: chunk.end.clone(),
                });
                b.entries += chunk.entries;
                b.end = chunk.end;
                b.min_ts = match (b.min_ts, chunk.min_ts) {
                    (Some(a), Some(c)) => Some(a.min(c)),
                    (a, c) => a.or(c),
                };
            }
            let full = batch.as_ref().is_some_and(|b| {
                b.entries >= self.config.max_batch_entries
                    || rows.bytes() >= self.config.max_batch_bytes
            });
            if chunk.entries == 0 && frozen {
                if batch.is_some() {
                    return Ok(batch); // finish this day's last batch first
                }
                self.finish_day(files.day())?;
                continue;
            }
            let Some(deadline) = deadline.filter(|_| batch.is_some() && !full) else {
                return Ok(batch);
            };
            let now = Instant::now();
            if now >= deadline || stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Ok(batch);
            }
            if chunk.entries == 0 {
                std::thread::sleep(self.config.poll_interval.min(deadline - now));
            }
        }
    }

    /// The day to ship from: the cursor's, or the first one after the last finished day.
    fn current_day(&mut self, days: &[Arc<DayFiles>]) -> Result<Option<Arc<DayFiles>>, ShipError> {
        let done = self.cursor.done_through_day(&self.dir)?;
        let current = self.cursor.current_day(&self.dir)?;
        if let Some(day) = current {
            if let Some(f) = days.iter().find(|d| d.day() == day) {
                return Ok(Some(Arc::clone(f)));
            }
            // Deleted under us (`gc --force`): what is gone cannot be shipped.
            tracing::warn!(%day, "the day being shipped was deleted from the store; moving on");
            self.finish_day(day)?;
        }
        let done = self.cursor.done_through_day(&self.dir)?.or(done);
        Ok(days
            .iter()
            .find(|d| done.is_none_or(|done| d.day() > done))
            .cloned())
    }

    /// A reader at the cursor's position in `files`' day, reusing the current one. A day
    /// sealed under a segment reader is read again from its first block, skipping what that reader
    /// had shipped.
    fn open_reader(&mut self, files: &DayFiles) -> Result<(), ShipError> {
        if self.reader.as_ref().is_some_and(|r| r.fits(files)) {
            return Ok(());
        }
        let segments_dir = self.dir.join("segments");
        if let (Some(DayReader::Segment(old)), Some(_)) = (self.reader.take(), files.sealed()) {
            if old.day() == files.day() {
                tracing::info!(day = %files.day(), "the day was sealed while being shipped; going on from the sealed file");
                self.reader = Some(DayReader::sealed_after(old, &segments_dir));
                return Ok(());
            }
        }
        let position = if self.cursor.current_day(&self.dir)? == Some(files.day()) {
            self.cursor.position.clone()
        } else {
            DayPosition::Start
        };
        // `next_batch` asks only for days the shipper can read (`source::shippable`).
        self.reader = DayReader::open(files, &segments_dir, &position)?;
        if self.reader.is_none() {
            return Err(unreachable_reader(&self.dir));
        }
        Ok(())
    }

    /// Records that `day` is shipped whole.
    fn finish_day(&mut self, day: Day) -> Result<(), ShipError> {
        self.cursor.done_through = Some(day.to_string());
        self.cursor.day = None;
        self.cursor.position = DayPosition::Start;
        self.cursor.save(&self.dir)?;
        self.cursor.hold(&self.dir)?;
        self.reader = None;
        Ok(())
    }

    /// Inserts `rows`, retrying transient failures with backoff, then moves the cursor.
    fn send(
        &mut self,
        rows: &mut Rows,
        batch: &Batch,
        stop: Option<&AtomicBool>,
    ) -> Result<(), ShipError> {
        let what = || {
            format!(
                "an insert of {} entries ({} up to {:?})",
                batch.entries, batch.day, batch.end
            )
        };
        if matches!(self.target, Target::ClickHouse { features: None, .. }) {
            self.check(stop)?;
        }
        let sent = match (&self.target, rows) {
            (
                Target::ClickHouse {
                    ch,
                    insert_sql,
                    features,
                },
                Rows::RowBinary(rows),
            ) => {
                let settings = features.map(|f| f.insert_settings()).unwrap_or_default();
                self.retrying(stop, || ch.insert(insert_sql, &settings, rows, &what))
            }
            (Target::Otlp(o), Rows::Otlp(records)) => {
                let body = o.encode(records);
                let mut rejected = 0;
                let r = self.retrying(stop, || {
                    rejected = o.export(&body, &what)?;
                    Ok(())
                });
                self.cursor.rejected += rejected;
                r
            }
            // Rows come from `Target::empty_rows`: they always match their target.
            (target, _) => Err(ShipError::Protocol {
                url: target.url().to_owned(),
                reason: "a batch encoded for another kind of target".to_owned(),
            }),
        };
        if let Err(e) = sent {
            // The reader is past the batch: start again from the cursor next time.
            self.reader = None;
            return Err(e);
        }
        self.cursor.day = Some(batch.day.to_string());
        self.cursor.position = batch.end.clone();
        self.cursor.shipped += batch.entries as u64;
        self.cursor.updated_ms = self.clock.now_ms();
        self.cursor.save(&self.dir)
    }

    /// Where shipping of the store in `dir` stands, and the lag: entries stored but not
    /// acknowledged, and the age of the oldest of them. Reads only local files.
    pub fn status(dir: &Path) -> Result<ShipStatus, ShipError> {
        Shipper::status_of(dir, None)
    }

    /// [`status`](Self::status) of the target named `target` (`None`: the unnamed one).
    pub fn status_of(dir: &Path, target: Option<&str>) -> Result<ShipStatus, ShipError> {
        let mut tries = 0;
        loop {
            match Shipper::status_once(dir, target) {
                // A day sealed (its live-layout files deleted) while we looked: look again.
                Err(ShipError::Store(StoreError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 3 =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    fn status_once(dir: &Path, target: Option<&str>) -> Result<ShipStatus, ShipError> {
        let store = LogStore::open_read_only(dir)?;
        let loaded = Cursor::load_of(dir, target)?;
        let started = loaded.is_some();
        let cursor = loaded.unwrap_or_else(|| Cursor {
            target: target.map(str::to_owned),
            ..Cursor::new("", "")
        });
        let done = cursor.done_through_day(dir)?;
        let current = cursor.current_day(dir)?;
        let segments_dir = dir.join("segments");
        let mut lag_entries = 0u64;
        let mut oldest: Option<i64> = None;
        for files in store.days() {
            if done.is_some_and(|d| files.day() <= d) {
                continue;
            }
            let position = if current == Some(files.day()) {
                cursor.position.clone()
            } else {
                DayPosition::Start
            };
            // A day of several live segments and no part yet: its lag is counted once it has
            // parts.
            let Some(reader) = DayReader::open(&files, &segments_dir, &position)? else {
                continue;
            };
            let (n, min_ts) = reader.pending(&files)?;
            lag_entries += n;
            if oldest.is_none() {
                oldest = min_ts;
            }
        }
        let now = SystemClock.now_ms();
        let lag_seconds = oldest.map_or(0.0, |ts| (now.saturating_sub(ts)).max(0) as f64 / 1000.0);
        Ok(ShipStatus {
            cursor,
            started,
            lag_entries,
            lag_seconds,
        })
    }
}

/// Sleeps `d`, waking early if `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: Option<&AtomicBool>) {
    let until = Instant::now() + d;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if left.is_zero() || stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

fn unreachable_reader(dir: &Path) -> ShipError {
    ShipError::Cursor {
        path: Cursor::path(dir),
        reason: "no reader for the current day".to_owned(),
    }
}

/// A batch read and not yet acknowledged.
#[derive(Debug)]
struct Batch {
    day: Day,
    entries: usize,
    min_ts: Option<i64>,
    end: DayPosition,
}
