//! Level tokens: the level a plain output line announces at its very start.
//!
//! Most programs do not speak `context.log`, but their logging libraries already print a level
//! first. A plain stdout or stderr line whose first bytes form one of the tokens below gets that
//! level instead of its pipe's (INFO for stdout, WARN for stderr). The text itself is stored
//! unchanged. The grammar is strict on purpose: a word that merely looks like a level
//! (`Errors found: 0`, `error handling is done`) or a level word later in the line is no token.
//!
//! ```text
//! line    = sgr* token ...                 (SGR colour codes before the token are skipped)
//! sgr     = ESC "[" [0-9;]* "m"
//! token   = word | bracket | logfmt | glog
//! word    = NAME (" " | "\t" | ":" | ESC | end)  all upper case      ERROR x, WARNING:root:x
//!         | name ":" (not followed by ":") in any case                 error: x, Warning: x
//! bracket = "[" " "* name " "* "]"         the name alone, any case    [WARN], [warn], [INFO ]
//!         | "[" (stamp " "+)? NAME (" "+ target)? " "* "]"            env_logger:
//!                                                [2024-01-01T00:00:00Z ERROR my_crate] msg
//! logfmt  = (("time"|"ts"|"t") "=" value " "+)? ("level"|"lvl") "=" value (" " | end)
//!                                          level=error, time="..." level=warn, level="info"
//! glog    = [IWEF] MM DD " " hh ":" mm ":" ss      W1125 12:00:00.123456 1 f.go:42] x
//! ```
//!
//! * `name` is one of `trace`, `debug`, `info`, `warn`, `warning`, `error`, `fatal`,
//!   `critical` (case-insensitive); `NAME` is the same in upper case. logfmt values also accept
//!   `err`, `crit` and `panic`, case-insensitive. TRACE is stored as DEBUG; FATAL, CRITICAL,
//!   CRIT and PANIC as ERROR; glog's I, W, E, F are INFO, WARN, ERROR, ERROR.
//! * `stamp` starts with a digit and holds only `[0-9A-Za-z:.+-]`; `target` holds only
//!   `[A-Za-z0-9_:.-/]` (a Rust module path, a logger name).
//! * No leading whitespace: an indented line (a stack frame) is never a token.

use logstore_store::Level;

/// The level announced by the first bytes of `line`, if any (see the module grammar).
pub fn level_token(line: &[u8]) -> Option<Level> {
    let line = skip_sgr(line);
    match line.first()? {
        b'[' => bracket(&line[1..]),
        b'I' | b'W' | b'E' | b'F' if glog(line) => glog_level(line[0]),
        _ => logfmt(line).or_else(|| word(line)),
    }
}

/// Skips SGR colour sequences (`ESC [ params m`) at the start.
fn skip_sgr(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_prefix(b"\x1b[") {
        let params = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b';')
            .count();
        if rest.get(params) != Some(&b'm') {
            break;
        }
        line = &rest[params + 1..];
    }
    line
}

/// A level name in any case.
fn name(word: &[u8]) -> Option<Level> {
    const NAMES: [(&str, Level); 8] = [
        ("trace", Level::Debug),
        ("debug", Level::Debug),
        ("info", Level::Info),
        ("warn", Level::Warn),
        ("warning", Level::Warn),
        ("error", Level::Error),
        ("fatal", Level::Error),
        ("critical", Level::Error),
    ];
    NAMES
        .iter()
        .find(|(n, _)| word.eq_ignore_ascii_case(n.as_bytes()))
        .map(|&(_, level)| level)
}

/// A level name in upper case.
fn upper_name(word: &[u8]) -> Option<Level> {
    if word.iter().all(u8::is_ascii_uppercase) {
        name(word)
    } else {
        None
    }
}

fn letters(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_alphabetic()).count()
}

fn word(line: &[u8]) -> Option<Level> {
    let n = letters(line);
    let (w, rest) = line.split_at(n);
    match rest.first() {
        // `error::Error` is a path, not a token.
        Some(b':') if rest.get(1) != Some(&b':') => name(w),
        // ESC: a colour reset right after the word (`\x1b[31mERROR\x1b[0m`).
        None | Some(b' ' | b'\t' | b':' | 0x1b) => upper_name(w),
        _ => None,
    }
}

/// The longest bracket looked into: a timestamp, a level and a module path fit; a long line
/// that merely starts with `[` (a JSON array) is not split up.
const MAX_BRACKET: usize = 256;

fn bracket(inside: &[u8]) -> Option<Level> {
    let end = inside.iter().take(MAX_BRACKET).position(|&b| b == b']')?;
    let content = &inside[..end];
    let parts: Vec<&[u8]> = content
        .split(|&b| b == b' ')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [only] => name(only),
        [a, b] if is_stamp(a) => upper_name(b),
        [a, b] if is_target(b) => upper_name(a),
        [stamp, level, target] if is_stamp(stamp) && is_target(target) => upper_name(level),
        _ => None,
    }
}

fn is_stamp(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_digit)
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b":.+-".contains(b))
}

fn is_target(s: &[u8]) -> bool {
    s.iter()
        .all(|b| b.is_ascii_alphanumeric() || b"_:.-/".contains(b))
}

/// One logfmt `key=value` at the start of `s`: the key, the value (unquoted), and the rest
/// after the separating spaces; `None` unless the value is followed by a space or the end.
fn logfmt_pair(s: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    // Keys are short words: no need to look far for the `=`.
    let eq = s.iter().take(16).position(|&b| b == b'=')?;
    let key = &s[..eq];
    if key.is_empty() || !key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
        return None;
    }
    let after = &s[eq + 1..];
    let (value, rest) = if let Some(quoted) = after.strip_prefix(b"\"") {
        let close = quoted.iter().position(|&b| b == b'"')?;
        (&quoted[..close], &quoted[close + 1..])
    } else {
        let end = after.iter().position(|&b| b == b' ').unwrap_or(after.len());
        after.split_at(end)
    };
    if !(rest.is_empty() || rest.starts_with(b" ")) {
        return None;
    }
    let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
    Some((key, value, rest))
}

fn logfmt(line: &[u8]) -> Option<Level> {
    let (mut key, mut value, rest) = logfmt_pair(line)?;
    if matches!(key, b"time" | b"ts" | b"t") {
        (key, value, _) = logfmt_pair(rest)?;
    }
    if !matches!(key, b"level" | b"lvl") {
        return None;
    }
    name(value).or_else(|| {
        [
            ("err", Level::Error),
            ("crit", Level::Error),
            ("panic", Level::Error),
        ]
        .iter()
        .find(|(n, _)| value.eq_ignore_ascii_case(n.as_bytes()))
        .map(|&(_, level)| level)
    })
}

/// `[IWEF]MMDD hh:mm:ss`, with a real month and day.
fn glog(line: &[u8]) -> bool {
    let Some(head) = line.get(..14) else {
        return false;
    };
    let digits = |r: std::ops::Range<usize>| head[r].iter().all(u8::is_ascii_digit);
    let num = |i: usize| (head[i] - b'0') * 10 + (head[i + 1] - b'0');
    digits(1..5)
        && (1..=12).contains(&num(1))
        && (1..=31).contains(&num(3))
        && head[5] == b' '
        && digits(6..8)
        && head[8] == b':'
        && digits(9..11)
        && head[11] == b':'
        && digits(12..14)
}

fn glog_level(letter: u8) -> Option<Level> {
    match letter {
        b'I' => Some(Level::Info),
        b'W' => Some(Level::Warn),
        b'E' | b'F' => Some(Level::Error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, Option<Level>)]) {
        for (line, want) in cases {
            assert_eq!(level_token(line.as_bytes()), *want, "{line:?}");
        }
    }

    #[test]
    fn words() {
        use Level::*;
        check(&[
            ("ERROR could not connect", Some(Error)),
            ("ERROR", Some(Error)),
            ("WARN\tx", Some(Warn)),
            ("WARNING:root:disk full", Some(Warn)),
            ("CRITICAL:root:x", Some(Error)),
            ("INFO: ready", Some(Info)),
            ("DEBUG x", Some(Debug)),
            ("TRACE x", Some(Debug)),
            ("FATAL x", Some(Error)),
            ("error: could not compile", Some(Error)),
            ("Error: boom", Some(Error)),
            ("warning: unused variable", Some(Warn)),
            ("info:", Some(Info)),
        ]);
    }

    #[test]
    fn words_that_are_not_tokens() {
        check(&[
            ("Errors found: 0", None),
            ("error handling is done", None),
            ("Error count: 0", None),
            ("Info about the run", None),
            ("ERRORS: 0", None),
            ("ERROR_COUNT=0", None),
            ("ERROR-prone", None),
            ("error::Error is a trait", None),
            ("the WARNING comes later", None),
            ("  ERROR indented (a stack frame)", None),
            ("warn", None),
            ("", None),
            ("errorx: y", None),
            ("E", None),
        ]);
    }

    #[test]
    fn brackets_and_env_logger() {
        use Level::*;
        check(&[
            ("[WARN] retrying", Some(Warn)),
            ("[warn] retrying", Some(Warn)),
            ("[INFO ] padded", Some(Info)),
            ("[ Error ] x", Some(Error)),
            ("[2024-01-01T00:00:00Z ERROR my_crate] msg", Some(Error)),
            ("[2024-01-01T00:00:00Z INFO  my_crate::db] msg", Some(Info)),
            ("[2024-01-01T00:00:00.123Z TRACE a] msg", Some(Debug)),
            ("[ERROR my_crate] msg", Some(Error)),
            ("[2024-01-01T00:00:00Z WARN ] msg", Some(Warn)),
            ("[error handling] done", None),
            ("[info about the thing] x", None),
            ("[x] done", None),
            ("[WARN no closing bracket", None),
            ("[2024-01-01 00:00:00] ERROR x", None),
            (&format!("[{}ERROR]", " ".repeat(300)), None),
        ]);
    }

    #[test]
    fn logfmt() {
        use Level::*;
        check(&[
            ("level=error msg=\"upload failed\"", Some(Error)),
            ("level=WARN", Some(Warn)),
            ("lvl=info msg=x", Some(Info)),
            ("level=\"debug\" msg=x", Some(Debug)),
            ("level=err", Some(Error)),
            (
                "time=\"2024-01-01 00:00:00\" level=warning msg=x",
                Some(Warn),
            ),
            ("ts=2024-01-01T00:00:00Z level=crit", Some(Error)),
            ("level=errorish", None),
            ("level=", None),
            ("msg=x level=error", None),
            ("time=x msg=y level=error", None),
            ("level=error,x", None),
        ]);
    }

    #[test]
    fn glog() {
        use Level::*;
        check(&[
            ("I1125 12:00:00.123456 1 main.go:1] x", Some(Info)),
            ("W1125 12:00:00.123456 1 main.go:1] x", Some(Warn)),
            ("E0101 00:00:00.000000 1 main.go:1] x", Some(Error)),
            ("F1231 23:59:59.999999 1 main.go:1] x", Some(Error)),
            ("E1001 is an error code", None),
            ("W1325 12:00:00 month 13", None),
            ("W1100 12:00:00 day 0", None),
            ("I1125", None),
        ]);
    }

    #[test]
    fn colour_codes_before_the_token_are_skipped() {
        check(&[
            ("\x1b[31mERROR\x1b[0m x", Some(Level::Error)),
            ("\x1b[1;33m[WARN]\x1b[0m x", Some(Level::Warn)),
            ("\x1b[2J ERROR", None),
        ]);
    }

    #[test]
    fn invalid_utf8_is_no_token_and_no_panic() {
        assert_eq!(level_token(b"\xff\xfe ERROR"), None);
        assert_eq!(level_token(b"ERROR \xff"), Some(Level::Error));
        assert_eq!(level_token(b"[\xff ERROR x]"), None);
    }
}
