//! Dates, times and date-times in the ISO 8601 forms HTML inputs send, normalised so
//! that bounds compare as text.

use super::Bounds;

/// Dates and times in the ISO 8601 forms HTML inputs send.
#[derive(Debug, Clone, Copy)]
pub enum Temporal {
    Date,
    Time,
    Datetime,
}

impl Temporal {
    fn example(self) -> &'static str {
        match self {
            Temporal::Date => "a date such as 2026-11-22",
            Temporal::Time => "a time such as 14:05",
            Temporal::Datetime => "a date and time such as 2026-11-22T14:05",
        }
    }

    /// Parses `text` and returns it in one canonical shape (seconds always present), so
    /// that values and bounds compare correctly as strings. Accepts `HH:MM` and
    /// `HH:MM:SS`, a space instead of `T` (as TOML does), nothing else.
    pub fn normalise(self, text: &str) -> Option<String> {
        use time::macros::format_description;
        let date = format_description!("[year]-[month]-[day]");
        let parse_time = |t: &str| -> Option<time::Time> {
            let short = format_description!("[hour]:[minute]");
            let long = format_description!("[hour]:[minute]:[second]");
            match t.len() {
                5 => time::Time::parse(t, short).ok(),
                8 => time::Time::parse(t, long).ok(),
                _ => None,
            }
        };
        let parse_date = |d: &str| (d.len() == 10).then(|| time::Date::parse(d, date).ok())?;
        match self {
            Temporal::Date => parse_date(text).map(|d| d.to_string()),
            Temporal::Time => parse_time(text).map(format_time),
            Temporal::Datetime => {
                let (d, t) = text.split_once(['T', ' '])?;
                Some(format!(
                    "{}T{}",
                    parse_date(d)?,
                    format_time(parse_time(t)?)
                ))
            }
        }
    }

    pub(super) fn check(self, text: &str, bounds: &Bounds) -> Result<String, String> {
        let value = self
            .normalise(text)
            .ok_or_else(|| format!("must be {}", self.example()))?;
        let shown = |b: &String| match self {
            Temporal::Date => b.clone(),
            _ => b.strip_suffix(":00").unwrap_or(b).to_string(),
        };
        if let Some(min) = &bounds.min
            && value < *min
        {
            return Err(format!("must be {} or later", shown(min)));
        }
        if let Some(max) = &bounds.max
            && value > *max
        {
            return Err(format!("must be {} or earlier", shown(max)));
        }
        // The command gets what was sent, in the shape HTML uses ("T" between date and time).
        Ok(text.replacen(' ', "T", 1))
    }
}

fn format_time(t: time::Time) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}
