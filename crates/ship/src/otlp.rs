//! Shipping to any OpenTelemetry backend: OTLP/HTTP (`POST /v1/logs`, protobuf, gzip), built
//! from the OpenTelemetry project's own generated types (`opentelemetry-proto`, `prost`).
//!
//! One request carries one `ResourceLogs` (this node: `service.name`, `host.name`) with one
//! `ScopeLogs` (`logstore`) holding the batch's records. The mapping of an entry to a
//! `LogRecord` is in `docs/FLEET.md`. OTLP has no deduplication: a batch the receiver accepted
//! but whose answer was lost is sent again, so this path is at least once, with at most one
//! batch sent twice after a crash. Every record carries `log.record.uid`, the entry's row key,
//! for a backend that can deduplicate on it.
//!
//! Retries: 429 and server errors (5xx but 501 and 505; OTLP/HTTP names 429, 502, 503, 504)
//! are retried, honouring `Retry-After`, as are connections that fail or break; any other
//! status is an error that stops the shipper with the receiver's message.

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use ureq::http::Response;
use ureq::Body;

use super::error::ShipError;
use super::schema::{severity_number, RowKey};
use logstore_store::access::PayloadRef;
use logstore_store::Level;

/// How to reach an OTLP/HTTP receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// `http://host[:port][/path]`; a URL without a path gets `/v1/logs` (as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` does), one with a path is used as it is (as
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` is).
    pub url: String,
    /// Extra request headers, such as an API key (`--header K=V`).
    pub headers: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: String,
}

impl OtlpConfig {
    /// A receiver at `url`, no extra headers, `service.name` `logstore`.
    pub fn new(url: &str) -> OtlpConfig {
        OtlpConfig {
            url: url.to_owned(),
            headers: Vec::new(),
            service_name: "logstore".to_owned(),
        }
    }
}

/// The name of the instrumentation scope every record is sent under.
pub const SCOPE: &str = "logstore";

/// A batch of records for one request.
#[derive(Debug, Default)]
pub struct Records {
    records: Vec<LogRecord>,
    /// About what the records hold, for the batch's byte limit.
    bytes: usize,
}

impl Records {
    /// Entries in the batch.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// About how many bytes the records hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.records.clear();
        self.bytes = 0;
    }

    /// Adds the record of one entry.
    pub fn push(&mut self, key: RowKey<'_>, f: &PayloadRef<'_>, level: Level) {
        let record = log_record(key, f, level);
        self.bytes += f.message.len() + f.metadata.map_or(0, str::len) + 128;
        self.records.push(record);
    }

    /// The records, in order.
    pub fn records(&self) -> &[LogRecord] {
        &self.records
    }
}

/// The `LogRecord` of one entry (`docs/FLEET.md`, "OpenTelemetry").
/// `f` is the entry as stored, its level checked as `level`.
pub fn log_record(key: RowKey<'_>, f: &PayloadRef<'_>, level: Level) -> LogRecord {
    // Unix ms to ns; an i64 of ms before 1970 or past the year 2554 has no u64 of ns.
    let ns = u64::try_from(f.timestamp)
        .ok()
        .and_then(|ms| ms.checked_mul(1_000_000))
        .unwrap_or(0);
    let mut attributes = Vec::with_capacity(6);
    attributes.push(kv("logstore.execution_id", string(f.execution_id)));
    if let Some(task) = f.task_id {
        attributes.push(kv("logstore.task_id", string(task)));
    }
    attributes.push(kv("logstore.source", string(f.source)));
    if key.seq != 0 {
        attributes.push(kv(
            "logstore.seq",
            Value::IntValue(i64::try_from(key.seq).unwrap_or(i64::MAX)),
        ));
    }
    attributes.push(kv("log.record.uid", Value::StringValue(uid(key, f))));
    if let Some(meta) = f.metadata {
        // Stored metadata is a JSON object (checked on append); text that is not one is
        // passed on as it is rather than dropped.
        let value = match serde_json::from_str::<serde_json::Value>(meta) {
            Ok(v) => json_value(v),
            Err(_) => AnyValue {
                value: Some(string(meta)),
            },
        };
        attributes.push(KeyValue {
            key: "logstore.metadata".to_owned(),
            value: Some(value),
            ..KeyValue::default()
        });
    }
    LogRecord {
        time_unix_nano: ns,
        observed_time_unix_nano: ns,
        severity_number: i32::from(severity_number(level)),
        severity_text: level.as_str().to_owned(),
        body: Some(AnyValue {
            value: Some(string(f.message)),
        }),
        attributes,
        ..LogRecord::default()
    }
}

/// The entry's row key as text, unique in the fleet: `node/seq` for a numbered entry,
/// `node/day/execution/ordinal` for one written before numbers existed.
fn uid(key: RowKey<'_>, f: &PayloadRef<'_>) -> String {
    if key.seq != 0 {
        format!("{}/{}", key.node, key.seq)
    } else {
        format!(
            "{}/{}/{}/{}",
            key.node, key.day, f.execution_id, key.ordinal
        )
    }
}

fn string(s: &str) -> Value {
    Value::StringValue(s.to_owned())
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// A JSON value as an OTLP `AnyValue`: objects as key-value lists, arrays as arrays, integers
/// that fit an i64 as ints, other numbers as doubles, null as the empty value.
fn json_value(v: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(Value::BoolValue(b)),
        J::Number(n) => Some(match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        J::String(s) => Some(Value::StringValue(s)),
        J::Array(items) => Some(Value::ArrayValue(ArrayValue {
            values: items.into_iter().map(json_value).collect(),
        })),
        J::Object(map) => Some(Value::KvlistValue(KeyValueList {
            values: map
                .into_iter()
                .map(|(key, v)| KeyValue {
                    key,
                    value: Some(json_value(v)),
                    ..KeyValue::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// A client of one OTLP/HTTP receiver.
#[derive(Debug, Clone)]
pub struct Otlp {
    agent: ureq::Agent,
    endpoint: String,
    headers: Vec<(String, String)>,
    resource: Resource,
    scope: InstrumentationScope,
}

/// How long a request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured: a receiver asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

impl Otlp {
    /// A client for `config`, sending as node `node`. Checks the URL and headers; connects
    /// lazily.
    pub fn new(config: &OtlpConfig, node: &str) -> Result<Otlp, ShipError> {
        let endpoint = endpoint(&config.url)?;
        for (k, v) in &config.headers {
            let bad = |reason: &str| ShipError::BadOtlpUrl {
                url: config.url.clone(),
                reason: format!("--header {k:?}: {reason}"),
            };
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(bad("a header name is letters, digits, '-' and '_'"));
            }
            if v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(bad("a header value holds no control characters"));
            }
        }
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        Ok(Otlp {
            agent: ureq::Agent::new_with_config(agent_config),
            endpoint,
            headers: config.headers.clone(),
            resource: Resource {
                attributes: vec![
                    kv("service.name", string(&config.service_name)),
                    kv("host.name", string(node)),
                ],
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: SCOPE.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
        })
    }

    /// The endpoint requests go to, for messages (never holds a header's value).
    pub fn url(&self) -> &str {
        &self.endpoint
    }

    /// The request body for `records`: an `ExportLogsServiceRequest`, gzipped. Built once per
    /// batch, so a retry sends the very same bytes. The records are lent to the request, not
    /// copied, and are back in `records` when it returns.
    pub fn encode(&self, records: &mut Records) -> Vec<u8> {
        let mut request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope.clone()),
                    log_records: std::mem::take(&mut records.records),
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let plain = request.encode_to_vec();
        if let Some(scope) = request
            .resource_logs
            .pop()
            .and_then(|mut r| r.scope_logs.pop())
        {
            records.records = scope.log_records;
        }
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&plain);
        gz.finish().unwrap_or_default()
    }

    /// Sends one encoded request; returns how many records the receiver says it rejected
    /// (a partial success: OTLP says not to send those again).
    pub fn export(&self, body: &[u8], what: &dyn Fn() -> String) -> Result<u64, ShipError> {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "gzip");
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let mut response = request
            .send(body)
            .map_err(|e| self.request_failed(e, what))?;
        let status = response.status().as_u16();
        let gzip = gzipped(&response);
        let text = read_body(&mut response, gzip);
        if (200..300).contains(&status) {
            let answer = ExportLogsServiceResponse::decode(&text[..]).unwrap_or_default();
            let rejected = answer
                .partial_success
                .map(|p| {
                    (
                        u64::try_from(p.rejected_log_records).unwrap_or(0),
                        p.error_message,
                    )
                })
                .filter(|(n, m)| *n > 0 || !m.is_empty());
            if let Some((n, message)) = rejected {
                tracing::warn!(url = %self.endpoint, rejected = n, %message, "the OTLP receiver accepted the batch but rejected some records (they are not sent again)");
                return Ok(n);
            }
            return Ok(0);
        }
        let message = status_message(&text);
        // OTLP/HTTP names 429, 502, 503 and 504 retryable; a receiver's other 5xx (a collector
        // whose exporter is down answers 500) is retried too, as any server error is by the
        // ClickHouse path, except those that say the request itself can never work.
        if status == 429 || ((500..600).contains(&status) && !matches!(status, 501 | 505)) {
            return Err(ShipError::Throttled {
                url: self.endpoint.clone(),
                status,
                retry_after: retry_after(&response, SystemTime::now()),
                message,
            });
        }
        Err(ShipError::Refused {
            url: self.endpoint.clone(),
            status,
            message,
        })
    }

    fn request_failed(&self, e: ureq::Error, what: &dyn Fn() -> String) -> ShipError {
        ShipError::of_transport(&e, PEER, &self.endpoint, what).unwrap_or_else(|| {
            ShipError::Refused {
                url: self.endpoint.clone(),
                status: 0,
                message: e.to_string(),
            }
        })
    }
}

/// How messages name the other side.
const PEER: &str = "the OTLP receiver";

/// `url` with `/v1/logs` when it has no path; only `http://` (a local collector or agent
/// terminates TLS: see `docs/FLEET.md`).
fn endpoint(url: &str) -> Result<String, ShipError> {
    let bad = |reason: &str| ShipError::BadOtlpUrl {
        url: super::clickhouse::mask_password(url),
        reason: reason.to_owned(),
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(bad(
            "an OTLP/HTTP URL starts with http:// (send through a local collector for TLS)",
        ));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(bad("the host is empty"));
    }
    if authority.contains('@') {
        return Err(bad("credentials go in a --header, not in the URL"));
    }
    if authority.contains(['?', '#']) || path.contains(['?', '#']) {
        return Err(bad("a query or fragment is not supported"));
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || h.starts_with('['))
    {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(bad(&format!(
                "port {port:?} is not a number from 1 to 65535"
            )));
        }
    }
    Ok(if path.is_empty() || path == "/" {
        format!("http://{authority}/v1/logs")
    } else {
        url.to_owned()
    })
}

fn gzipped(response: &Response<Body>) -> bool {
    response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
}

/// The body, at most 64 KiB of it, gunzipped when it says so.
fn read_body(response: &mut Response<Body>, gzip: bool) -> Vec<u8> {
    let raw = response
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .unwrap_or_default();
    if !gzip {
        return raw;
    }
    let mut out = Vec::new();
    let _ = flate2::read::GzDecoder::new(&raw[..])
        .take(64 << 10)
        .read_to_end(&mut out);
    out
}

/// An error answer's message: a `google.rpc.Status` (protobuf) carries it in field 2; else
/// the text as it is, shortened.
fn status_message(body: &[u8]) -> String {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    if let Ok(s) = Status::decode(body) {
        if !s.message.is_empty() {
            return s.message;
        }
    }
    let text: String = String::from_utf8_lossy(body).chars().take(500).collect();
    let text = text.trim();
    if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text.to_owned()
    }
}

/// `Retry-After` as a delay: seconds, or an HTTP date (RFC 9110), capped.
fn retry_after(response: &Response<Body>, now: SystemTime) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    parse_retry_after(value, now)
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_logs_path_and_refuse_what_cannot_work() {
        assert_eq!(
            endpoint("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(endpoint("http://c:4318/").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(
            endpoint("http://c:4318/otlp/v1/logs").unwrap(),
            "http://c:4318/otlp/v1/logs"
        );
        for (bad, says) in [
            ("https://c", "http://"),
            ("c:4318", "http://"),
            ("http://", "host is empty"),
            ("http://u:p@c", "--header"),
            ("http://c:0", "port"),
            ("http://c/v1/logs?x=1", "query"),
        ] {
            let err = endpoint(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 08:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn a_record_carries_every_field_and_its_key() {
        let key = RowKey::of("n1", 20_000, 3, 42);
        let f = PayloadRef {
            seq: 42,
            execution_id: "exec-1",
            timestamp: 1_795_600_000_123,
            level: Level::Warn.to_byte(),
            source: "plugin:acme/s.run",
            message: "disk almost full",
            task_id: Some("t1"),
            metadata: Some(r#"{"n":1,"x":1.5,"ok":true,"l":["a",null],"o":{"k":"v"}}"#),
        };
        let r = log_record(key, &f, Level::Warn);
        assert_eq!(r.time_unix_nano, 1_795_600_000_123_000_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
        let attr = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(attr("logstore.execution_id"), Some(string("exec-1")));
        assert_eq!(attr("logstore.task_id"), Some(string("t1")));
        assert_eq!(attr("logstore.seq"), Some(Value::IntValue(42)));
        assert_eq!(attr("log.record.uid"), Some(string("n1/42")));
        let Some(Value::KvlistValue(meta)) = attr("logstore.metadata") else {
            panic!("metadata is a key-value list: {:?}", r.attributes)
        };
        assert_eq!(meta.values.len(), 5);
        // An entry from before numbers is keyed by its place instead.
        let old = log_record(
            RowKey::of("n1", 20_000, 3, 0),
            &PayloadRef {
                seq: 0,
                task_id: None,
                metadata: None,
                ..f
            },
            Level::Warn,
        );
        assert!(old
            .attributes
            .iter()
            .all(|a| a.key != "logstore.seq" && a.key != "logstore.task_id"));
        assert!(old.attributes.iter().any(|a| a.key == "log.record.uid"
            && a.value
                == Some(AnyValue {
                    value: Some(string("n1/20000/exec-1/3"))
                })));
    }

    #[test]
    fn a_request_body_decodes_with_the_same_types() {
        let client = Otlp::new(&OtlpConfig::new("http://127.0.0.1:4318"), "n1").unwrap();
        let mut records = Records::default();
        for i in 0..3u64 {
            let message = format!("line {i}");
            records.push(
                RowKey::of("n1", 1, 0, i + 1),
                &PayloadRef {
                    seq: i + 1,
                    execution_id: "e",
                    timestamp: 1,
                    level: Level::Info.to_byte(),
                    source: "worker",
                    message: &message,
                    task_id: None,
                    metadata: None,
                },
                Level::Info,
            );
        }
        let body = client.encode(&mut records);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        let request = ExportLogsServiceRequest::decode(&plain[..]).unwrap();
        let rl = &request.resource_logs[0];
        assert_eq!(rl.resource.as_ref().unwrap().attributes.len(), 2);
        assert_eq!(rl.scope_logs[0].scope.as_ref().unwrap().name, SCOPE);
        assert_eq!(rl.scope_logs[0].log_records, records.records());
    }
}
