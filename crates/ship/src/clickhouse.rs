//! A small ClickHouse client over its HTTP interface: the URL, authentication, error
//! classification and the server version. Queries go in the request body (or, for inserts, in
//! the `query` parameter with the rows as the body); answers come back as text or as a stream.
//!
//! Authentication uses the `X-ClickHouse-User` / `X-ClickHouse-Key` headers, which every
//! version since 2017 reads, so passwords never appear in a URL that a proxy could log.

use std::io::Read;
use std::time::Duration;

use ureq::http::Response;
use ureq::Body;

use super::error::ShipError;

/// Where the server is and who we are on it.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://host:port`.
    base: String,
    user: String,
    password: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Parses `http://[user[:password]@]host[:port][/]`. The port defaults to 8123 and the user
    /// to `default`; user and password may be percent-encoded.
    pub fn parse(url: &str) -> Result<Endpoint, ShipError> {
        let bad = |reason: &str| ShipError::BadUrl {
            url: mask_password(url),
            reason: reason.to_owned(),
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(bad("https is not built into this logstore; reach ClickHouse over http on a private network, or through a local TLS-terminating proxy"));
        } else {
            return Err(bad("it must start with http://"));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !(path.is_empty() || path == "/") {
            return Err(bad(
                "a path, query or fragment is not supported; use --database for the database",
            ));
        }
        if authority.contains(['?', '#']) {
            return Err(bad("a query or fragment is not supported"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => ("default".to_owned(), String::new()),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in the user"))?;
                let pass =
                    percent_decode(pass).ok_or_else(|| bad("bad %-escape in the password"))?;
                (user, pass)
            }
        };
        if user.is_empty() {
            return Err(bad("the user name is empty"));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port: u16 = p
                    .parse()
                    .map_err(|_| bad(&format!("port {p:?} is not a number from 1 to 65535")))?;
                if port == 0 {
                    return Err(bad("port 0 is not a port"));
                }
                (h, port)
            }
            _ => (hostport, 8123),
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        }) {
            return Err(bad(&format!("{host:?} is not a host name or address")));
        }
        Ok(Endpoint {
            base: format!("http://{host}:{port}"),
            user,
            password,
        })
    }

    /// `http://host:port`, for messages (never holds the password).
    pub fn display(&self) -> &str {
        &self.base
    }
}

/// `url` with any password replaced by `***`, for error messages.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let after = &url[scheme_end + 3..];
    let authority_end = after.find('/').unwrap_or(after.len());
    match after[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            let at = scheme_end + 3 + userinfo.len();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The server's version, as `SELECT version()` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Year-based major (18, 19, ... 24, 25).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl Version {
    /// Parses `18.16.1` or `24.8.4.13`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Version { major, minor })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A connection pool to one server.
#[derive(Debug, Clone)]
pub struct ClickHouse {
    agent: ureq::Agent,
    endpoint: Endpoint,
}

/// How long a request may take in all. An insert of the largest batch (16 MiB) takes well
/// under a second on an idle server; a minute leaves room for a server that is merging hard.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl ClickHouse {
    /// A client for the server at `url` (see [`Endpoint::parse`]). Connects lazily.
    pub fn new(url: &str) -> Result<ClickHouse, ShipError> {
        let endpoint = Endpoint::parse(url)?;
        let config = ureq::Agent::config_builder()
            // Error answers carry ClickHouse's message in the body: we read it ourselves.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        Ok(ClickHouse {
            agent: ureq::Agent::new_with_config(config),
            endpoint,
        })
    }

    /// The server, for messages.
    pub fn url(&self) -> &str {
        self.endpoint.display()
    }

    /// Runs `sql` and returns its whole answer as text (for DDL and small answers).
    pub fn execute(&self, sql: &str) -> Result<String, ShipError> {
        let mut response = self.send(None, &[], sql.as_bytes(), &|| "a query".to_owned())?;
        response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| self.broken("reading an answer", e))
    }

    /// Runs the `INSERT ... FORMAT ...` statement `insert` with `rows` as its data and
    /// `settings` as query settings. `what` describes the batch for messages.
    pub fn insert(
        &self,
        insert: &str,
        settings: &[(&str, &str)],
        rows: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<(), ShipError> {
        let mut response = self.send(Some(insert), settings, rows, what)?;
        // Read the (empty) answer to the end so the connection goes back to the pool.
        let _ = response.body_mut().read_to_vec();
        Ok(())
    }

    /// Runs `sql` and returns its answer as a stream (for answers of any size).
    pub fn select(&self, sql: &str) -> Result<impl Read, ShipError> {
        let response = self.send(None, &[], sql.as_bytes(), &|| "a query".to_owned())?;
        Ok(response.into_body().into_reader())
    }

    /// `SELECT version()`.
    pub fn version(&self) -> Result<Version, ShipError> {
        let text = self.execute("SELECT version()")?;
        Version::parse(&text).ok_or_else(|| ShipError::Protocol {
            url: self.url().to_owned(),
            reason: format!("`SELECT version()` gave {:?}", text.trim()),
        })
    }

    fn send(
        &self,
        query: Option<&str>,
        settings: &[(&str, &str)],
        body: &[u8],
        what: &dyn Fn() -> String,
    ) -> Result<Response<Body>, ShipError> {
        let mut request = self
            .agent
            .post(format!("{}/", self.endpoint.base))
            .header("X-ClickHouse-User", &self.endpoint.user)
            .header("X-ClickHouse-Key", &self.endpoint.password);
        if let Some(q) = query {
            request = request.query("query", q);
        }
        for (name, value) in settings {
            request = request.query(*name, *value);
        }
        let mut response = request
            .send(body)
            .map_err(|e| self.request_failed(e, what))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(response);
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        Err(self.server_error(status, &text))
    }

    fn request_failed(&self, e: ureq::Error, what: &dyn Fn() -> String) -> ShipError {
        ShipError::of_transport(&e, "ClickHouse", self.url(), what).unwrap_or_else(|| {
            ShipError::Protocol {
                url: self.url().to_owned(),
                reason: e.to_string(),
            }
        })
    }

    fn broken(&self, what: &str, e: ureq::Error) -> ShipError {
        ShipError::Interrupted {
            peer: "ClickHouse",
            url: self.url().to_owned(),
            what: what.to_owned(),
            reason: e.to_string(),
            retried: Duration::ZERO,
        }
    }

    fn server_error(&self, status: u16, body: &str) -> ShipError {
        let url = self.url().to_owned();
        let (code, message) = parse_exception(body);
        match code {
            // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
            Some(192 | 193 | 194 | 516) => ShipError::Credentials {
                url,
                user: self.endpoint.user.clone(),
                message,
            },
            // UNKNOWN_DATABASE
            Some(81) => ShipError::MissingSchema {
                url,
                what: "database".to_owned(),
                message,
            },
            // UNKNOWN_TABLE
            Some(60) => ShipError::MissingSchema {
                url,
                what: "table".to_owned(),
                message,
            },
            _ if status == 401 || status == 403 => ShipError::Credentials {
                url,
                user: self.endpoint.user.clone(),
                message,
            },
            _ => ShipError::Server {
                url,
                status,
                code,
                message,
            },
        }
    }
}

/// ClickHouse's error text: `Code: 60, e.displayText() = DB::Exception: Table x doesn't exist,
/// e.what() = DB::Exception` (18.x) or `Code: 60. DB::Exception: Table x does not exist.
/// (UNKNOWN_TABLE) (version 24.8)` (current). Returns the code and the message.
pub fn parse_exception(body: &str) -> (Option<u32>, String) {
    let body = body.trim();
    let code = body.strip_prefix("Code: ").and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    let message = body
        .find("DB::Exception: ")
        .map_or(body, |i| &body[i + "DB::Exception: ".len()..]);
    let message = message
        .split(", e.what() = ")
        .next()
        .unwrap_or(message)
        .trim();
    let mut message: String = message.chars().take(2000).collect();
    if message.is_empty() {
        message = "(no message)".to_owned();
    }
    (code, message)
}

/// `s` as a ClickHouse string literal: quoted, with backslash and quote escaped (the only two
/// characters its lexer treats specially inside quotes).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whether `name` can be used unquoted as a database name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_credentials() {
        let e = Endpoint::parse("http://127.0.0.1:8124").unwrap();
        assert_eq!(
            (e.base.as_str(), e.user.as_str(), e.password.as_str()),
            ("http://127.0.0.1:8124", "default", "")
        );
        let e = Endpoint::parse("http://ship:p%40ss@ch.internal/").unwrap();
        assert_eq!(
            (e.base.as_str(), e.user.as_str(), e.password.as_str()),
            ("http://ch.internal:8123", "ship", "p@ss")
        );
        for (bad, says) in [
            ("ch:8123", "must start with http://"),
            ("https://ch", "https"),
            ("http://ch:port", "not a number"),
            ("http://ch/db", "path"),
            ("http://", "host is empty"),
            ("http://a b", "not a host"),
        ] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(mask_password("http://u:secret@h:1/"), "http://u:***@h:1/");
        let err = Endpoint::parse("http://u:secret@h:x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn exceptions_of_old_and_new_servers_parse() {
        let old = "Code: 193, e.displayText() = DB::Exception: Wrong password for user shipper, e.what() = DB::Exception\n";
        assert_eq!(
            parse_exception(old),
            (Some(193), "Wrong password for user shipper".to_owned())
        );
        let new = "Code: 60. DB::Exception: Table logstore.logs does not exist. (UNKNOWN_TABLE) (version 24.8.4.13 (official build))";
        let (code, msg) = parse_exception(new);
        assert_eq!(code, Some(60));
        assert!(
            msg.starts_with("Table logstore.logs does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn literals_and_identifiers() {
        assert_eq!(quote(r"it's a \ test"), r"'it\'s a \\ test'");
        assert!(is_identifier("logstore_2"));
        assert!(!is_identifier("2x") && !is_identifier("a-b") && !is_identifier(""));
        assert_eq!(
            Version::parse("18.16.1\n"),
            Some(Version {
                major: 18,
                minor: 16
            })
        );
        assert!(Version::parse("x").is_none());
    }
}
