//! The site's announcement: `[announcement]` in `proxy.toml`, one line
//! every user waiting for a session sees at the top of the page
//! (maintenance, an outage), until its `until` if it has one. The proxy
//! re-reads it on SIGHUP without a restart.

use std::sync::RwLock;

use serde::Deserialize;
use toml::Spanned;
use toml::value::{Datetime, Offset};

/// The longest announcement: a line, not a page.
const MAX_CHARS: usize = 500;

/// `[announcement]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnouncement {
    text: Spanned<String>,
    /// A TOML date-time with its offset, e.g. `2026-12-12T12:00:00Z`.
    until: Option<Spanned<Datetime>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub text: String,
    /// Unix seconds after which it is no longer shown.
    pub until: Option<u64>,
}

impl RawAnnouncement {
    /// The announcement, or what is wrong with it and where (the offset).
    pub(super) fn resolve(self) -> Result<Announcement, (usize, String)> {
        let text = self.text.get_ref().trim();
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_CHARS || text.chars().any(char::is_control) {
            return Err((
                self.text.span().start,
                format!(
                    "`announcement.text` must be one line of 1 to {MAX_CHARS} characters \
                     without control characters"
                ),
            ));
        }
        let until = match &self.until {
            None => None,
            Some(until) => Some(unix_seconds(until.get_ref()).ok_or_else(|| {
                (
                    until.span().start,
                    "`announcement.until` must be a date and time with its offset, \
                     such as 2026-12-12T12:00:00Z"
                        .to_owned(),
                )
            })?),
        };
        Ok(Announcement {
            text: text.to_owned(),
            until,
        })
    }
}

impl Announcement {
    /// The text, while it is to be shown at `now` (Unix seconds).
    pub fn current(&self, now: u64) -> Option<&str> {
        self.until
            .is_none_or(|until| now < until)
            .then_some(self.text.as_str())
    }
}

/// The announcement in force, swapped whole on SIGHUP.
#[derive(Debug, Default)]
pub struct Current(RwLock<Option<Announcement>>);

impl Current {
    pub fn new(announcement: Option<Announcement>) -> Current {
        Current(RwLock::new(announcement))
    }

    pub fn set(&self, announcement: Option<Announcement>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = announcement;
    }

    /// The text to show at `now`, if any.
    pub fn text(&self, now: u64) -> Option<String> {
        let held = self.0.read().unwrap_or_else(|e| e.into_inner());
        held.as_ref()?.current(now).map(str::to_owned)
    }
}

/// A TOML offset date-time as Unix seconds; `None` without a date, a
/// time or an offset (a local time means nothing to a proxy's users in
/// several time zones), or before 1970.
fn unix_seconds(at: &Datetime) -> Option<u64> {
    let (date, time, offset) = (at.date?, at.time?, at.offset?);
    let offset_minutes: i64 = match offset {
        Offset::Z => 0,
        Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    let seconds = days * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second.unwrap_or(0))
        - offset_minutes * 60;
    u64::try_from(seconds).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawAnnouncement {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn dates_with_offsets_are_unix_seconds() {
        let at = |s: &str| unix_seconds(&s.parse::<Datetime>().unwrap());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(at("2026-12-07T03:40:59Z"), Some(1_796_614_859));
        assert_eq!(at("2026-12-07T04:40:59+01:00"), Some(1_796_614_859));
        assert_eq!(at("2026-12-07T03:40:59"), None, "no offset");
        assert_eq!(at("2026-12-07"), None, "no time");
    }

    #[test]
    fn an_announcement_is_one_line_shown_until_its_end() {
        let shown = raw("text = \" Maintenance on Saturday \"\nuntil = 2026-12-12T12:00:00Z")
            .resolve()
            .unwrap();
        assert_eq!(shown.text, "Maintenance on Saturday");
        let end = shown.until.unwrap();
        assert_eq!(shown.current(end - 1), Some("Maintenance on Saturday"));
        assert_eq!(shown.current(end), None);
        let always = raw("text = \"x\"").resolve().unwrap();
        assert_eq!(always.current(u64::MAX), Some("x"));
        for bad in [
            "text = \"\"",
            "text = \"a\\nb\"",
            "text = \"x\"\nuntil = 2026-12-12",
        ] {
            assert!(raw(bad).resolve().is_err(), "{bad}");
        }
        let long = format!("text = \"{}\"", "x".repeat(MAX_CHARS + 1));
        assert!(raw(&long).resolve().is_err());
    }
}
