//! What the store, the server and the shipper report, through the `metrics` facade: an engine
//! that embeds the store installs any recorder it likes (Prometheus, StatsD, OpenTelemetry) and
//! gets these; `logstore serve` installs a Prometheus one and renders it at `/metrics`, with the
//! gauges only files can tell (days and segments waiting to be sealed, parts, ship lag per
//! target) computed at each scrape ([`LogStore::record_gauges`](crate::LogStore::record_gauges)
//! and `logstore serve`). Without a recorder every call is a
//! no-op. The names, units and meanings are in `docs/HTTP.md`.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

/// Entries written to segments (counted per flush).
pub const ENTRIES_APPENDED: &str = "logstore_entries_appended_total";
/// Bytes of records written to segments.
pub const BYTES_APPENDED: &str = "logstore_bytes_appended_total";
/// Group-commit flushes (one write of a batch to the segment and its index).
pub const FLUSHES: &str = "logstore_flushes_total";
/// How long a flush took.
pub const FLUSH_SECONDS: &str = "logstore_flush_seconds";
/// fsyncs of the live segment (shared by the executions that finished meanwhile).
pub const FSYNCS: &str = "logstore_fsyncs_total";
/// How long an fsync took.
pub const FSYNC_SECONDS: &str = "logstore_fsync_seconds";
/// Bytes of segments (and parts, for merges) the sealer rewrote, by step.
pub const SEAL_INPUT_BYTES: &str = "logstore_seal_input_bytes_total";
/// Time of each sealer step, by step: its `_sum` with the bytes gives the throughput.
pub const SEAL_SECONDS: &str = "logstore_seal_seconds";
/// Damaged records or blocks a read skipped, or recovery cut.
pub const DAMAGE: &str = "logstore_damage_found_total";
/// Followers connected (SSE streams and `serve::follow` streams).
pub const FOLLOWERS: &str = "logstore_followers";
/// Server time of a page of entries (`/api/executions/{id}/logs`).
pub const PAGE_SECONDS: &str = "logstore_page_seconds";
/// Server time of a search (`/api/search`).
pub const SEARCH_SECONDS: &str = "logstore_search_seconds";

/// Days in the store, by state (`sealed`: one sealed file; `live`: still segments or parts).
pub const DAYS: &str = "logstore_days";
/// Parts of days not yet sealed whole.
pub const PARTS: &str = "logstore_parts";
/// Closed segments not yet sealed into parts (the sealer is behind): all but the newest
/// segment of the newest day, which the writer may be appending to.
pub const SEGMENTS_WAITING: &str = "logstore_segments_waiting";
/// Past days not yet sealed whole.
pub const DAYS_WAITING: &str = "logstore_days_waiting";

/// Entries of the store not yet shipped to a target, by `target` (set at each scrape by
/// `logstore serve` from the ship cursors).
pub const SHIP_LAG_ENTRIES: &str = "logstore_ship_lag_entries";
/// Seconds between the newest entry and the newest shipped one, by `target`.
pub const SHIP_LAG_SECONDS: &str = "logstore_ship_lag_seconds";
/// Entries a target has acknowledged, by `target`.
pub const SHIPPED_ENTRIES: &str = "logstore_shipped_entries";

/// Latency buckets, in seconds, for every `_seconds` histogram: 100 µs to 10 s.
pub const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// Registers the descriptions and units (once per recorder; harmless to repeat).
pub fn describe() {
    describe_counter!(
        ENTRIES_APPENDED,
        Unit::Count,
        "Entries written to segments."
    );
    describe_counter!(
        BYTES_APPENDED,
        Unit::Bytes,
        "Bytes of records written to segments."
    );
    describe_counter!(
        FLUSHES,
        Unit::Count,
        "Group-commit flushes of a batch to the segment and its index."
    );
    describe_histogram!(FLUSH_SECONDS, Unit::Seconds, "Time of one flush.");
    describe_counter!(FSYNCS, Unit::Count, "fsyncs of the live segment.");
    describe_histogram!(
        FSYNC_SECONDS,
        Unit::Seconds,
        "Time of one fsync of the live segment."
    );
    describe_counter!(
        SEAL_INPUT_BYTES,
        Unit::Bytes,
        "Bytes the sealer rewrote, by step (part, merge, day)."
    );
    describe_histogram!(
        SEAL_SECONDS,
        Unit::Seconds,
        "Time of one sealer step, by step."
    );
    describe_counter!(
        DAMAGE,
        Unit::Count,
        "Damaged records or blocks skipped by reads or cut by recovery."
    );
    describe_gauge!(FOLLOWERS, Unit::Count, "Followers connected.");
    describe_histogram!(
        PAGE_SECONDS,
        Unit::Seconds,
        "Server time of a page of entries."
    );
    describe_histogram!(SEARCH_SECONDS, Unit::Seconds, "Server time of a search.");
}

/// A flush wrote `entries` entries in `bytes` bytes in `took`.
pub(crate) fn flushed(entries: usize, bytes: usize, took: Duration) {
    counter!(ENTRIES_APPENDED).increment(entries as u64);
    counter!(BYTES_APPENDED).increment(bytes as u64);
    counter!(FLUSHES).increment(1);
    histogram!(FLUSH_SECONDS).record(took.as_secs_f64());
}

/// An fsync of the live segment took `took`.
pub(crate) fn fsynced(took: Duration) {
    counter!(FSYNCS).increment(1);
    histogram!(FSYNC_SECONDS).record(took.as_secs_f64());
}

/// The sealer's `step` (`part`, `merge`, `day`) rewrote `bytes` in `took`.
pub(crate) fn sealed(step: &'static str, bytes: u64, took: Duration) {
    counter!(SEAL_INPUT_BYTES, "step" => step).increment(bytes);
    histogram!(SEAL_SECONDS, "step" => step).record(took.as_secs_f64());
}

/// A read skipped, or recovery cut, `n` damaged records or blocks.
pub fn damage(n: u64) {
    counter!(DAMAGE).increment(n);
}

/// One more follower while this lives.
pub struct Following(());

impl Following {
    /// Counts one more follower until the value is dropped.
    pub fn start() -> Following {
        gauge!(FOLLOWERS).increment(1.0);
        Following(())
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        gauge!(FOLLOWERS).decrement(1.0);
    }
}

/// A page took `took` to serve.
pub fn page(took: Duration) {
    histogram!(PAGE_SECONDS).record(took.as_secs_f64());
}

/// A search took `took` to serve.
pub fn search(took: Duration) {
    histogram!(SEARCH_SECONDS).record(took.as_secs_f64());
}
