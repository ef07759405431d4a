//! Checking one submitted value against its type's constraints: lengths and patterns,
//! numbers in range and on their step, URLs, e-mail addresses, colours, dates.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

use super::{Kind, Temporal, TextRules};

impl Kind {
    /// Checks one non-empty value; returns it in the form the command gets.
    pub fn parse_one(&self, text: &str) -> Result<String, String> {
        match self {
            Kind::Text(rules) | Kind::Password(rules) => rules.check(text).map(|()| text.into()),
            Kind::Textarea(rules) => {
                // Browsers submit textarea line breaks as CRLF; scripts expect LF.
                let text = text.replace("\r\n", "\n");
                rules.check(&text).map(|()| text)
            }
            Kind::Email(rules) => {
                if text.len() > 254 || !EMAIL.is_match(text) {
                    return Err("must be an e-mail address such as name@example.com".into());
                }
                rules.check(text).map(|()| text.into())
            }
            Kind::Url(rules) => {
                check_url(text)?;
                rules.check(text).map(|()| text.into())
            }
            Kind::Int { min, max, step } => {
                let n: i64 = text
                    .parse()
                    .map_err(|_| "must be a whole number, such as 42 or -7".to_string())?;
                check_range(n, *min, *max)?;
                if let Some(step) = step {
                    let base = min.unwrap_or(0);
                    if (i128::from(n) - i128::from(base)) % i128::from(*step) != 0 {
                        return Err(step_message(base, *step));
                    }
                }
                Ok(n.to_string())
            }
            Kind::Float { min, max, step } => {
                let x = parse_float(text)?;
                check_range(x, *min, *max)?;
                if let Some(step) = step {
                    let base = min.unwrap_or(0.0);
                    let steps = (x - base) / step;
                    if (steps - steps.round()).abs() > 1e-9 * steps.abs().max(1.0) {
                        return Err(step_message(base, *step));
                    }
                }
                Ok(x.to_string())
            }
            Kind::Select { options } => {
                if options.iter().any(|o| o == text) {
                    Ok(text.into())
                } else {
                    Err(format!("must be one of the options, not {text:?}"))
                }
            }
            Kind::Date(bounds) => Temporal::Date.check(text, bounds),
            Kind::Time(bounds) => Temporal::Time.check(text, bounds),
            Kind::Datetime(bounds) => Temporal::Datetime.check(text, bounds),
            Kind::Color => {
                if text.len() == 7
                    && text.starts_with('#')
                    && text[1..].bytes().all(|b| b.is_ascii_hexdigit())
                {
                    Ok(text.to_ascii_lowercase())
                } else {
                    Err("must be a colour such as #1e90ff".into())
                }
            }
            Kind::Bool { .. } | Kind::Multiselect { .. } | Kind::File { .. } => {
                Err("cannot be given as text".into())
            }
        }
    }
}

impl TextRules {
    fn check(&self, text: &str) -> Result<(), String> {
        let length = text.chars().count();
        if let Some(min) = self.min_length
            && length < min as usize
        {
            return Err(format!("must be at least {} long", characters(min)));
        }
        if let Some(max) = self.max_length
            && length > max as usize
        {
            return Err(format!("must be at most {} long", characters(max)));
        }
        if let Some(pattern) = &self.pattern
            && !pattern.regex.is_match(text)
        {
            return Err(format!("must match the pattern {}", pattern.source));
        }
        Ok(())
    }
}

fn characters(n: u32) -> String {
    if n == 1 {
        "1 character".into()
    } else {
        format!("{n} characters")
    }
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    n: T,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), String> {
    match (min, max) {
        (Some(lo), Some(hi)) if n < lo || n > hi => Err(format!("must be between {lo} and {hi}")),
        (Some(lo), _) if n < lo => Err(format!("must be at least {lo}")),
        (_, Some(hi)) if n > hi => Err(format!("must be at most {hi}")),
        _ => Ok(()),
    }
}

fn step_message<T: std::fmt::Display>(base: T, step: T) -> String {
    let mut m = format!("must be a multiple of {step}");
    if base.to_string() != "0" {
        let _ = write!(m, " counted from {base}");
    }
    m
}

/// A finite decimal number. Rust's float parser also takes "inf" and "NaN": refused.
pub fn parse_float(text: &str) -> Result<f64, String> {
    let looks_decimal = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(x) if looks_decimal && x.is_finite() => Ok(x),
        _ => Err("must be a number, such as 3.14".into()),
    }
}

fn check_url(text: &str) -> Result<(), String> {
    const HELP: &str = "must be a web address starting with http:// or https://";
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{HELP}, without spaces"));
    }
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(HELP.into()),
    }
}

/// The HTML standard's definition of a valid e-mail address, so the server agrees with
/// the browser's `type="email"` check.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
    )
    .expect("the e-mail pattern is valid")
});
