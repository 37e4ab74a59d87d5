//! What can go wrong while shipping (to ClickHouse or an OTLP receiver) or reading from
//! ClickHouse, sorted by what to do about it:
//! fix the configuration (URL, credentials, schema), wait and retry (the server is down or went
//! away), or look at the store.

use std::path::PathBuf;
use std::time::Duration;

use logstore_store::StoreError;

/// An error of the shipper or of a fleet read.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The `--clickhouse` URL cannot be used.
    #[error(
        "invalid ClickHouse URL {url:?}: {reason} (expected http://[user[:password]@]host[:port])"
    )]
    BadUrl {
        /// The URL as given (its password masked).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `--otlp` URL or a `--header` cannot be used.
    #[error("invalid OTLP URL {url:?}: {reason} (expected http://host[:port][/path])")]
    BadOtlpUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (refused, unknown host, timeout).
    #[error("cannot reach {peer} at {url}: {reason}{}", retried_note(*retried))]
    Unreachable {
        /// `ClickHouse`, or `the OTLP receiver`.
        peer: &'static str,
        /// The server.
        url: String,
        /// The system's or the client's reason.
        reason: String,
        /// How long the shipper kept retrying before giving up.
        retried: Duration,
    },
    /// The connection broke while a request was under way (the server went away mid-batch).
    #[error("{peer} at {url} went away during {what}: {reason}{}", retried_note(*retried))]
    Interrupted {
        /// `ClickHouse`, or `the OTLP receiver`.
        peer: &'static str,
        /// The server.
        url: String,
        /// What was under way, such as `an insert of 5000 entries (2026-11-25, segment offset 16)`.
        what: String,
        /// The client's reason.
        reason: String,
        /// How long the shipper kept retrying before giving up.
        retried: Duration,
    },
    /// The server refused the user name or password.
    #[error("ClickHouse at {url} refused the credentials of user {user:?}: {message} (give them in the URL: http://user:password@host:8123)")]
    Credentials {
        /// The server.
        url: String,
        /// The user the shipper authenticated as.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The database or table does not exist.
    #[error(
        "ClickHouse at {url} has no {what}: {message} (create it with `logstore ship --init`)"
    )]
    MissingSchema {
        /// The server.
        url: String,
        /// `database logstore` or `table logstore.logs`.
        what: String,
        /// The server's message.
        message: String,
    },
    /// Any other error the server answered with.
    #[error("ClickHouse at {url} answered HTTP {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Server {
        /// The server.
        url: String,
        /// HTTP status.
        status: u16,
        /// ClickHouse's error code, when the body carried one.
        code: Option<u32>,
        /// The server's message.
        message: String,
    },
    /// The OTLP receiver asked to be sent the batch later (429, or a server error).
    #[error("the OTLP receiver at {url} answered HTTP {status} (retryable{}): {message}", retry_after.map(|d| format!(", Retry-After {d:?}")).unwrap_or_default())]
    Throttled {
        /// The endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// How long it asked to wait, if it said.
        retry_after: Option<Duration>,
        /// Its message.
        message: String,
    },
    /// The OTLP receiver refused the batch for good (a 4xx other than 429, or 501/505).
    #[error("the OTLP receiver at {url} refused the batch with HTTP {status}: {message} (not retried: check the URL, the --header credentials, and the receiver's log)")]
    Refused {
        /// The endpoint.
        url: String,
        /// HTTP status (0: no HTTP answer at all).
        status: u16,
        /// Its message.
        message: String,
    },
    /// A response that does not have the shape asked for.
    #[error("unexpected answer from ClickHouse at {url}: {reason}")]
    Protocol {
        /// The server.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// No row of this execution is stored in ClickHouse.
    #[error("no entries stored in ClickHouse at {url} for execution {execution_id} (check the id, or whether its node ships with `logstore ship --status`)")]
    NotInFleet {
        /// The server.
        url: String,
        /// The execution asked for.
        execution_id: logstore_store::ExecutionId,
    },
    /// The cursor file cannot be read, or belongs to another node or database.
    #[error("ship cursor {}: {reason}", path.display())]
    Cursor {
        /// The cursor file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn retried_note(retried: Duration) -> String {
    if retried.is_zero() {
        String::new()
    } else {
        format!(" (gave up after retrying for {:.0?})", retried)
    }
}

impl ShipError {
    /// Whether waiting and sending again may succeed: the server is down, restarting, or
    /// overloaded. Configuration errors (URL, credentials, schema) and protocol errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ShipError::Unreachable { .. }
            | ShipError::Interrupted { .. }
            | ShipError::Throttled { .. } => true,
            // 5xx without a code is a proxy or a server that died mid-answer; codes that mean
            // "too busy" are worth waiting for.
            ShipError::Server { status, code, .. } => match code {
                None => *status >= 500,
                Some(c) => TRANSIENT_CODES.contains(c),
            },
            _ => false,
        }
    }

    /// The error of a request that got no HTTP answer: `Unreachable` when no connection could
    /// be made, `Interrupted` when one broke under way; `None` for any other failure, which
    /// each client names itself.
    pub(crate) fn of_transport(
        e: &ureq::Error,
        peer: &'static str,
        url: &str,
        what: &dyn Fn() -> String,
    ) -> Option<ShipError> {
        let unreachable = |reason: String| ShipError::Unreachable {
            peer,
            url: url.to_owned(),
            reason,
            retried: Duration::ZERO,
        };
        match e {
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                Some(unreachable(e.to_string()))
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                Some(unreachable(io.to_string()))
            }
            ureq::Error::Timeout(t)
                if matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve) =>
            {
                Some(unreachable(format!("timed out ({t:?})")))
            }
            ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::Protocol(_) => {
                Some(ShipError::Interrupted {
                    peer,
                    url: url.to_owned(),
                    what: what(),
                    reason: e.to_string(),
                    retried: Duration::ZERO,
                })
            }
            _ => None,
        }
    }

    /// How long the other side asked to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ShipError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The same error, noting how long it was retried.
    pub(crate) fn after_retrying(self, for_how_long: Duration) -> ShipError {
        match self {
            ShipError::Unreachable {
                peer, url, reason, ..
            } => ShipError::Unreachable {
                peer,
                url,
                reason,
                retried: for_how_long,
            },
            ShipError::Interrupted {
                peer,
                url,
                what,
                reason,
                ..
            } => ShipError::Interrupted {
                peer,
                url,
                what,
                reason,
                retried: for_how_long,
            },
            other => other,
        }
    }
}

/// ClickHouse error codes that say "not now" rather than "never": timeouts, too many parts or
/// queries, memory limits, a table being restarted.
const TRANSIENT_CODES: &[u32] = &[
    32,  // ATTEMPT_TO_READ_AFTER_EOF (a shard died mid-answer)
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR (a shard of a Distributed insert went away)
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    279, // ALL_CONNECTION_TRIES_FAILED (a shard of a Distributed insert is down)
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
];
