//! ANSI colours in log text, for `dump`'s human output.
//!
//! Plugins often colour their output (`\x1b[31merror\x1b[0m`). The store keeps those bytes as
//! printed; when showing them, `dump` either keeps the colours (a terminal, or
//! `--color=always`) or strips them (a file or a pipe, or `--color=never`), so a grep of the
//! output finds `error`, not `\x1b[31merror`.
//!
//! Only SGR sequences (`ESC [ params m`: colours, bold, underline, reset) are colours. Every
//! other control sequence (cursor moves, screen clears, window titles) is never passed through:
//! it is escaped as before ([`escape`]), because log text comes from programs we do not trust.

use std::borrow::Cow;

use super::escape;

/// When `dump` shows colours (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always: colours pass through even into a file or a pipe.
    Always,
    /// Never: colours are stripped.
    Never,
}

impl ColorWhen {
    /// Whether to colour, given what `auto` would say.
    pub fn resolve(self, auto: bool) -> bool {
        match self {
            ColorWhen::Auto => auto,
            ColorWhen::Always => true,
            ColorWhen::Never => false,
        }
    }
}

/// The length of the SGR sequence at the start of `s` (`ESC [ [0-9;:]* m`), if there is one.
fn sgr_len(s: &str) -> Option<usize> {
    let params = s.strip_prefix("\x1b[")?;
    let n = params
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        .count();
    (params.as_bytes().get(n) == Some(&b'm')).then_some(2 + n + 1)
}

/// `text` ready for a terminal: SGR sequences kept (`color`) or removed, everything else
/// escaped. Kept colours are followed by a reset, so that a plugin's colour never runs on into
/// the next line.
pub fn show(text: &str, color: bool) -> Cow<'_, str> {
    if !text.contains("\x1b[") {
        return escape(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut kept_any = false;
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&escape(&rest[..at]));
        let tail = &rest[at..];
        match sgr_len(tail) {
            Some(n) => {
                if color {
                    out.push_str(&tail[..n]);
                    kept_any = true;
                }
                rest = &tail[n..];
            }
            None => {
                // Not a colour: the ESC is escaped and the rest read on from `[`.
                out.push_str(&escape("\x1b"));
                rest = &tail[1..];
            }
        }
    }
    out.push_str(&escape(rest));
    if kept_any {
        out.push_str("\x1b[0m");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stripped_or_kept_with_a_reset() {
        let text = "red \x1b[31malert\x1b[0m and \x1b[1;38;5;208mbold orange\x1b[m";
        assert_eq!(show(text, false), "red alert and bold orange");
        assert_eq!(show(text, true), format!("{text}\x1b[0m"));
    }

    #[test]
    fn other_sequences_are_escaped_either_way() {
        for color in [false, true] {
            assert_eq!(
                show("\x1b[2J\x1b]0;title\x07x\x1b[", color),
                "\\x1b[2J\\x1b]0;title\\x07x\\x1b["
            );
            assert_eq!(show("a\nb\x1b", color), "a\\nb\\x1b");
            assert_eq!(
                show("\u{9b}31m", color),
                "\\u{9b}31m",
                "C1 CSI is no colour"
            );
        }
        // A colour next to a clear: the colour is handled, the clear escaped.
        assert_eq!(show("\x1b[31m\x1b[2Jx", false), "\\x1b[2Jx");
    }

    #[test]
    fn text_without_colours_is_only_escaped() {
        assert_eq!(show("plain", true), "plain");
        assert_eq!(show("tab\there", false), "tab\\there");
    }
}
