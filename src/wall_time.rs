//! Wall-clock limits in Slurm's formats, normalised to seconds and compared as
//! numbers (the original compared strings, so its debug limit never fired).

use std::fmt;

/// Longest time jrps accepts at all; partitions set their own, lower limits.
const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// A positive wall time. Displays as `HH:MM:SS`, or `D-HH:MM:SS` from one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime {
    seconds: u64,
}

/// The formats Slurm accepts for `--time`, as shown to users.
pub const FORMATS: &str = "minutes (M), M:S, H:M:S, D-H, D-H:M or D-H:M:S, greater than zero";

/// What an idle timeout may be, as shown to users.
pub const IDLE_FORMATS: &str =
    "`off`, or minutes (M), M:S, H:M:S, D-H, D-H:M or D-H:M:S, greater than zero";

/// An idle timeout: `off` (`None`) or a wall time.
pub fn parse_idle(text: &str) -> Result<Option<WallTime>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        WallTime::parse(text).map(Some)
    }
}

impl WallTime {
    pub fn from_seconds(seconds: u64) -> Option<WallTime> {
        (seconds > 0 && seconds <= MAX_SECONDS).then_some(WallTime { seconds })
    }

    pub fn from_minutes(minutes: u64) -> Option<WallTime> {
        minutes.checked_mul(60).and_then(WallTime::from_seconds)
    }

    pub fn seconds(self) -> u64 {
        self.seconds
    }

    /// Parses Slurm's formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
    /// A bare number is minutes, as in Slurm. The leading field may be large
    /// (`90`, `36:00:00`); the fields after it must be in range.
    pub fn parse(text: &str) -> Result<WallTime, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("it is empty".into());
        }
        if text.starts_with('-') {
            return Err("it is negative".into());
        }
        let (days, rest) = match text.split_once('-') {
            Some((days, rest)) => (Some(number(days)?), rest),
            None => (None, text),
        };
        let fields = rest
            .split(':')
            .map(number)
            .collect::<Result<Vec<u64>, String>>()?;
        let seconds = match (days, fields.as_slice()) {
            (None, [m]) => m.checked_mul(60),
            (None, [m, s]) => {
                below(*s, 60, "seconds")?;
                m.checked_mul(60).and_then(|m| m.checked_add(*s))
            }
            (None, [h, m, s]) => {
                below(*m, 60, "minutes")?;
                below(*s, 60, "seconds")?;
                h.checked_mul(3600).and_then(|h| h.checked_add(m * 60 + s))
            }
            (Some(d), [h]) => {
                below(*h, 24, "hours")?;
                d.checked_mul(86400).and_then(|d| d.checked_add(h * 3600))
            }
            (Some(d), [h, m]) => {
                below(*h, 24, "hours")?;
                below(*m, 60, "minutes")?;
                d.checked_mul(86400)
                    .and_then(|d| d.checked_add(h * 3600 + m * 60))
            }
            (Some(d), [h, m, s]) => {
                below(*h, 24, "hours")?;
                below(*m, 60, "minutes")?;
                below(*s, 60, "seconds")?;
                d.checked_mul(86400)
                    .and_then(|d| d.checked_add(h * 3600 + m * 60 + s))
            }
            _ => return Err("it has too many `:` fields".into()),
        };
        match seconds {
            Some(0) => Err("it is zero".into()),
            Some(s) if s <= MAX_SECONDS => Ok(WallTime { seconds: s }),
            _ => Err("it is longer than 365 days".into()),
        }
    }
}

fn number(field: &str) -> Result<u64, String> {
    if field.is_empty() {
        return Err("it has an empty field".into());
    }
    if field.starts_with('-') {
        return Err("it is negative".into());
    }
    if !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{field}` is not a whole number"));
    }
    // Very long digit strings overflow u64; treat them as too long, not as garbage.
    field
        .parse()
        .map_err(|_| "it is longer than 365 days".to_string())
}

fn below(value: u64, limit: u64, what: &str) -> Result<(), String> {
    if value < limit {
        Ok(())
    } else {
        Err(format!("{what} must be below {limit}, got {value}"))
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds / 86400;
        let hours = self.seconds % 86400 / 3600;
        let minutes = self.seconds % 3600 / 60;
        let seconds = self.seconds % 60;
        if days > 0 {
            write!(f, "{days}-{hours:02}:{minutes:02}:{seconds:02}")
        } else {
            write!(f, "{hours:02}:{minutes:02}:{seconds:02}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> String {
        match WallTime::parse(text) {
            Ok(time) => time.to_string(),
            Err(why) => format!("error: {why}"),
        }
    }

    #[test]
    fn slurm_formats_are_normalised() {
        assert_eq!(show("30"), "00:30:00");
        assert_eq!(show("90"), "01:30:00");
        assert_eq!(show("1:30"), "00:01:30");
        assert_eq!(show("00:30:00"), "00:30:00");
        assert_eq!(show("36:00:00"), "1-12:00:00");
        assert_eq!(show("2-0"), "2-00:00:00");
        assert_eq!(show("1-2:3"), "1-02:03:00");
        assert_eq!(show("1-02:03:04"), "1-02:03:04");
    }

    #[test]
    fn garbage_zero_and_negative_are_refused() {
        for bad in [
            "",
            "0",
            "00:00:00",
            "0-0",
            "-5",
            "abc",
            "1h",
            "1:2:3:4",
            "1:60",
            "1:60:00",
            "1-24",
            "1--2",
            ":30",
            "30:",
            "1.5",
            " - ",
            "99999999999999999999999",
            "400-0",
        ] {
            assert!(WallTime::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn comparison_is_numeric() {
        // The original compared "45" with "30" as strings; "100" < "30" as text.
        let limit = WallTime::parse("30").unwrap();
        assert!(WallTime::parse("100").unwrap() > limit);
        assert!(WallTime::parse("0:45:00").unwrap() > limit);
    }
}
