//! UTC calendar days: the unit of segment files (`YYYY-MM-DD.log`).

use std::fmt;
use std::str::FromStr;

const MS_PER_DAY: i64 = 86_400_000;

/// A UTC day, counted in days since 1970-01-01.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// The UTC day holding the instant `ms` (Unix milliseconds).
    pub fn from_unix_ms(ms: i64) -> Day {
        Day(ms.div_euclid(MS_PER_DAY))
    }

    /// Unix ms of this day's first millisecond.
    pub fn start_ms(self) -> i64 {
        self.0.saturating_mul(MS_PER_DAY)
    }

    /// (year, month 1..=12, day 1..=31), by Howard Hinnant's `civil_from_days`.
    pub fn civil(self) -> (i64, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        // d is in 1..=31 and m in 1..=12 by construction.
        (
            y,
            u32::try_from(m).unwrap_or(1),
            u32::try_from(d).unwrap_or(1),
        )
    }

    /// The day of a civil date, by Howard Hinnant's `days_from_civil`.
    pub fn from_civil(y: i64, m: u32, d: u32) -> Day {
        let (m, d) = (i64::from(m), i64::from(d));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe - 719_468)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Day {
    type Err = String;

    /// Parses `YYYY-MM-DD` (the segment file stem), exactly as [`Display`](fmt::Display) writes it.
    fn from_str(s: &str) -> Result<Day, String> {
        let err = || format!("{s:?} is not a YYYY-MM-DD date");
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let y: i64 = s[..4].parse().map_err(|_| err())?;
        let m: u32 = s[5..7].parse().map_err(|_| err())?;
        let d: u32 = s[8..].parse().map_err(|_| err())?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return Err(err());
        }
        let day = Day::from_civil(y, m, d);
        // Reject 2026-02-31 and friends: the round trip must be exact.
        if day.civil() != (y, m, d) {
            return Err(err());
        }
        Ok(day)
    }
}

/// Formats Unix ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let day = Day::from_unix_ms(ms);
    let in_day = ms - day.start_ms();
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (mi, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    format!("{day}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_across_centuries() {
        for n in (-800_000..800_000).step_by(97) {
            let day = Day(n);
            let text = day.to_string();
            if text.len() == 10 {
                assert_eq!(text.parse::<Day>().unwrap(), day);
            }
            let (y, m, d) = day.civil();
            assert_eq!(Day::from_civil(y, m, d), day);
        }
        assert_eq!(Day(0).to_string(), "1970-01-01");
        assert_eq!(
            Day::from_unix_ms(1_764_028_800_000).to_string(),
            "2025-11-25"
        );
        assert_eq!(Day::from_unix_ms(-1).to_string(), "1969-12-31");
        assert!("2026-02-30".parse::<Day>().is_err());
        assert!("2026-1-01".parse::<Day>().is_err());
    }

    #[test]
    fn rfc3339_format() {
        assert_eq!(
            format_rfc3339_ms(1_764_028_800_123 + 3_723_000),
            "2025-11-25T01:02:03.123Z"
        );
    }
}
