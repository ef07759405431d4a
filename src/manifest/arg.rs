//! Arguments: the typed fields of a tool's form, and the one place that decides whether a
//! value is acceptable for them. The same `Arg::parse` checks a manifest's `default` at
//! load time and every submitted value at run time, so a default can never be something
//! the form would refuse, and the server never trusts what the browser checked.

use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

/// One argument of a tool, as its form field.
#[derive(Debug, Clone)]
pub struct Arg {
    /// The key in `[tools.ID.args]`: the form field name and the `{placeholder}`.
    pub name: String,
    /// The type, with its constraints.
    pub kind: Kind,
    pub label: String,
    pub default: Option<Value>,
    /// It must be filled in (`true` unless the manifest gives a default).
    pub required: bool,
    pub help: Option<String>,
    pub placeholder: Option<String>,
}

/// The argument's type with the constraints that belong to it.
#[derive(Debug, Clone)]
pub enum Kind {
    Text(TextRules),
    Textarea(TextRules),
    Password(TextRules),
    Email(TextRules),
    Url(TextRules),
    Int {
        min: Option<i64>,
        max: Option<i64>,
        step: Option<i64>,
    },
    Float {
        min: Option<f64>,
        max: Option<f64>,
        step: Option<f64>,
    },
    Bool {
        flag: Option<String>,
    },
    Select {
        options: Vec<String>,
    },
    Multiselect {
        options: Vec<String>,
        min: Option<u32>,
        max: Option<u32>,
    },
    Date(Bounds),
    Time(Bounds),
    Datetime(Bounds),
    Color,
    File {
        accept: Option<String>,
        max_size: u64,
    },
}

/// Constraints shared by the free-text types.
#[derive(Debug, Clone, Default)]
pub struct TextRules {
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub pattern: Option<Pattern>,
}

/// A whole-value regular expression: `source` as the manifest wrote it, `regex` anchored.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }
}

impl Pattern {
    /// The pattern for the HTML `pattern` attribute, or `None` when the browser would not
    /// read it the same way. Browsers compile `pattern` with JavaScript's `v` flag, where
    /// a bare `-`, `(`, `)`, `{`, `}`, `/` or `|` inside `[...]` is a syntax error that
    /// silently switches the check off; those are escaped. Rust-only syntax (inline flags
    /// such as `(?i)`, `\A`, `\z`, POSIX classes) leaves the check to the server alone.
    pub fn for_html(&self) -> Option<String> {
        let src = self.source.as_str();
        if src.contains("(?") && !src.contains("(?:")
            || src.contains("(?P")
            || src.contains("(?i")
            || src.contains("\\A")
            || src.contains("\\z")
            || src.contains("[:")
        {
            return None;
        }
        let chars: Vec<char> = src.chars().collect();
        let mut out = String::with_capacity(src.len() + 8);
        let mut in_class = false;
        let mut class_start = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
                continue;
            }
            if !in_class {
                if c == '[' {
                    in_class = true;
                    out.push(c);
                    if chars.get(i + 1) == Some(&'^') {
                        out.push('^');
                        i += 1;
                    }
                    class_start = i + 1;
                } else {
                    out.push(c);
                }
                i += 1;
                continue;
            }
            match c {
                ']' if i > class_start => {
                    in_class = false;
                    out.push(']');
                }
                ']' => out.push_str("\\]"),
                '-' => {
                    let first = i == class_start;
                    let last = chars.get(i + 1) == Some(&']');
                    if first || last {
                        out.push_str("\\-");
                    } else if chars.get(i + 1) == Some(&'-') {
                        return None; // `--` is set subtraction in the v flag
                    } else {
                        out.push('-');
                    }
                }
                '(' | ')' | '{' | '}' | '/' | '|' | '[' => {
                    out.push('\\');
                    out.push(c);
                }
                '&' if chars.get(i + 1) == Some(&'&') => return None,
                c => out.push(c),
            }
            i += 1;
        }
        Some(out)
    }
}

/// Inclusive bounds of a date, time or datetime, in their ISO text form. ISO 8601 text
/// of one shape sorts like the moments it names, so comparing strings is enough once
/// both sides are normalised by `Temporal::normalise`.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    pub min: Option<String>,
    pub max: Option<String>,
}

/// A checked value, ready for argv and the environment.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Optional and left empty: elements that mention it are dropped.
    Absent,
    /// One argv element.
    One(String),
    /// A multiselect: one argv element per chosen option.
    Many(Vec<String>),
    /// A checkbox: its flag (or `true`/`false` without one).
    Bool(bool),
}

impl Value {
    /// The value as text, one string per element it can become: none when absent, each
    /// chosen option of a multiselect, `true` or `false` for a checkbox. argv, the
    /// environment, query strings and re-shown forms all start from this.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Value::Absent => Vec::new(),
            Value::One(v) => vec![v.as_str()],
            Value::Many(vs) => vs.iter().map(String::as_str).collect(),
            Value::Bool(b) => vec![if *b { "true" } else { "false" }],
        }
    }

    /// The value as JSON: a string, an array of strings, a boolean, or null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Absent => serde_json::Value::Null,
            Value::One(v) => serde_json::json!(v),
            Value::Many(vs) => serde_json::json!(vs),
            Value::Bool(b) => serde_json::json!(b),
        }
    }
}

/// All type names, for messages and suggestions.
pub const TYPE_NAMES: &[&str] = &[
    "text",
    "textarea",
    "password",
    "int",
    "float",
    "bool",
    "select",
    "multiselect",
    "date",
    "time",
    "datetime",
    "email",
    "url",
    "color",
    "file",
];

/// Names people reach for from other tools, mapped to ours.
const ALIASES: &[(&str, &str)] = &[
    ("string", "text"),
    ("str", "text"),
    ("integer", "int"),
    ("number", "int"),
    ("i64", "int"),
    ("long", "int"),
    ("double", "float"),
    ("decimal", "float"),
    ("f64", "float"),
    ("real", "float"),
    ("boolean", "bool"),
    ("checkbox", "bool"),
    ("switch", "bool"),
    ("choice", "select"),
    ("dropdown", "select"),
    ("enum", "select"),
    ("radio", "select"),
    ("multi", "multiselect"),
    ("multiple", "multiselect"),
    ("checkboxes", "multiselect"),
    ("tags", "multiselect"),
    ("upload", "file"),
    ("colour", "color"),
    ("mail", "email"),
    ("e-mail", "email"),
    ("link", "url"),
    ("uri", "url"),
    ("secret", "password"),
    ("multiline", "textarea"),
    ("timestamp", "datetime"),
    ("datetime-local", "datetime"),
];

/// The type a misspelt or foreign type name most likely meant: an alias ("integer"), a
/// typo of a type ("txet"), or a typo of an alias ("nubmer").
pub fn suggest_type(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let alias = |a: &str| {
        ALIASES
            .iter()
            .find(|(from, _)| *from == a)
            .map(|(_, to)| *to)
    };
    alias(&lower)
        .or_else(|| super::diagnostic::did_you_mean(&lower, TYPE_NAMES.iter().copied()))
        .or_else(|| {
            super::diagnostic::did_you_mean(&lower, ALIASES.iter().map(|(from, _)| *from))
                .and_then(alias)
        })
}

impl Kind {
    /// The manifest's name for this type.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Text(_) => "text",
            Kind::Textarea(_) => "textarea",
            Kind::Password(_) => "password",
            Kind::Email(_) => "email",
            Kind::Url(_) => "url",
            Kind::Int { .. } => "int",
            Kind::Float { .. } => "float",
            Kind::Bool { .. } => "bool",
            Kind::Select { .. } => "select",
            Kind::Multiselect { .. } => "multiselect",
            Kind::Date(_) => "date",
            Kind::Time(_) => "time",
            Kind::Datetime(_) => "datetime",
            Kind::Color => "color",
            Kind::File { .. } => "file",
        }
    }

    /// Free text: a value that could begin with `-` and be read as an option.
    pub fn is_free_text(&self) -> bool {
        matches!(
            self,
            Kind::Text(_) | Kind::Textarea(_) | Kind::Password(_) | Kind::Email(_)
        )
    }

    pub fn text_rules(&self) -> Option<&TextRules> {
        match self {
            Kind::Text(r)
            | Kind::Textarea(r)
            | Kind::Password(r)
            | Kind::Email(r)
            | Kind::Url(r) => Some(r),
            _ => None,
        }
    }
}

impl Arg {
    /// Checks what was submitted for this field (every value under its name, in order)
    /// and returns the value the command will get, or a message for the user that says
    /// what is wrong. A single-value field left empty takes its default. Uploads are not
    /// parsed here: the form layer stores them first.
    pub fn parse(&self, inputs: &[String]) -> Result<Value, String> {
        if inputs.iter().any(|v| v.contains('\0')) {
            return Err("must not contain NUL characters".into());
        }
        match &self.kind {
            Kind::Multiselect { options, min, max } => self.parse_many(inputs, options, *min, *max),
            Kind::Bool { .. } => self.parse_bool(inputs),
            _ => {
                let text = match inputs {
                    [] => "",
                    [one] => one.as_str(),
                    _ => return Err("was given more than once".into()),
                };
                // Left empty: the default, if there is one (a checkbox or a multiselect
                // left empty is a choice, so they never get here).
                if text.is_empty() {
                    return match &self.default {
                        Some(default) => Ok(default.clone()),
                        None if self.required => Err("is required".into()),
                        None => Ok(Value::Absent),
                    };
                }
                self.kind.parse_one(text).map(Value::One)
            }
        }
    }

    fn parse_bool(&self, inputs: &[String]) -> Result<Value, String> {
        let checked = match inputs {
            [] => false,
            [one] => match one.as_str() {
                "true" | "on" => true,
                "false" | "" => false,
                _ => return Err("must be true or false".into()),
            },
            _ => return Err("was given more than once".into()),
        };
        if self.required && !checked {
            return Err("must be checked".into());
        }
        Ok(Value::Bool(checked))
    }

    fn parse_many(
        &self,
        inputs: &[String],
        options: &[String],
        min: Option<u32>,
        max: Option<u32>,
    ) -> Result<Value, String> {
        let chosen: Vec<&String> = inputs.iter().filter(|v| !v.is_empty()).collect();
        // Every problem at once: a form (or a default) with two stray values names both.
        let mut problems = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for value in chosen.iter().filter(|v| !options.contains(v)) {
            let quoted = format!("{value:?}");
            if !unknown.contains(&quoted) {
                unknown.push(quoted);
            }
        }
        if !unknown.is_empty() {
            problems.push(format!(
                "must be one of the options, not {}",
                unknown.join(" or ")
            ));
        }
        let mut twice: Vec<String> = Vec::new();
        for (i, value) in chosen.iter().enumerate() {
            let quoted = format!("{value:?}");
            if chosen[..i].contains(value) && !twice.contains(&quoted) {
                twice.push(quoted);
            }
        }
        if !twice.is_empty() {
            problems.push(format!("lists {} twice", twice.join(" and ")));
        }
        let count = chosen.len();
        let min = min.map_or(usize::from(self.required), |m| m as usize);
        if count < min {
            problems.push(if min == 1 {
                "needs at least one choice".into()
            } else {
                format!("needs at least {min} choices")
            });
        }
        if let Some(max) = max
            && count > max as usize
        {
            problems.push(if max == 1 {
                "allows at most one choice".into()
            } else {
                format!("allows at most {max} choices")
            });
        }
        if !problems.is_empty() {
            return Err(problems.join(", and "));
        }
        if count == 0 {
            return Ok(Value::Absent);
        }
        Ok(Value::Many(chosen.into_iter().cloned().collect()))
    }
}

impl Kind {
    /// Checks one non-empty value; returns it in the form the command gets.
    fn parse_one(&self, text: &str) -> Result<String, String> {
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

    fn check(self, text: &str, bounds: &Bounds) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(kind: Kind) -> Arg {
        Arg {
            name: "x".into(),
            label: "X".into(),
            help: None,
            placeholder: None,
            required: true,
            default: None,
            kind,
        }
    }

    fn one(kind: Kind, input: &str) -> Result<Value, String> {
        arg(kind).parse(&[input.to_string()])
    }

    fn text(pattern: Option<&str>) -> Kind {
        Kind::Text(TextRules {
            min_length: Some(2),
            max_length: Some(5),
            pattern: pattern.map(|p| Pattern::new(p).unwrap()),
        })
    }

    #[test]
    fn patterns_are_made_safe_for_the_browser() {
        let html = |p: &str| Pattern::new(p).unwrap().for_html();
        assert_eq!(
            html("[a-z0-9-]{1,32}").as_deref(),
            Some("[a-z0-9\\-]{1,32}")
        );
        assert_eq!(
            html("[A-Za-z0-9 ,.'-]+").as_deref(),
            Some("[A-Za-z0-9 ,.'\\-]+")
        );
        assert_eq!(html("[-_a-z]+").as_deref(), Some("[\\-_a-z]+"));
        assert_eq!(html("[^(){}]+").as_deref(), Some("[^\\(\\)\\{\\}]+"));
        assert_eq!(html("[]a]").as_deref(), Some("[\\]a]"));
        assert_eq!(html("(?:ab|cd)\\d+").as_deref(), Some("(?:ab|cd)\\d+"));
        assert_eq!(html("(?i)abc"), None);
        assert_eq!(html("[[:alpha:]]+"), None);
    }

    #[test]
    fn text_checks_length_and_whole_value_pattern() {
        assert_eq!(one(text(None), "abc"), Ok(Value::One("abc".into())));
        assert!(one(text(None), "a").unwrap_err().contains("at least 2"));
        assert!(one(text(None), "abcdef").unwrap_err().contains("at most 5"));
        // An unanchored pattern still has to match the whole value.
        assert!(one(text(Some("[a-z]+")), "ab1").is_err());
        assert!(one(text(Some("[a-z]+|x")), "abx").is_ok());
        assert!(one(text(None), "a\0b").unwrap_err().contains("NUL"));
    }

    #[test]
    fn hostile_text_is_kept_verbatim() {
        let kind = Kind::Text(TextRules::default());
        for v in [
            "$(id)", "`id`", ";id", "|id", "a\nb", "'\"", "--help", "ünï",
        ] {
            assert_eq!(one(kind.clone(), v), Ok(Value::One(v.into())));
        }
    }

    #[test]
    fn required_and_optional_empty_values() {
        let mut a = arg(Kind::Text(TextRules::default()));
        assert_eq!(a.parse(&[]), Err("is required".into()));
        a.required = false;
        assert_eq!(a.parse(&["".into()]), Ok(Value::Absent));
        assert!(a.parse(&["a".into(), "b".into()]).is_err());
    }

    #[test]
    fn numbers_are_parsed_ranged_and_stepped() {
        let int = Kind::Int {
            min: Some(1),
            max: Some(10),
            step: Some(3),
        };
        assert_eq!(one(int.clone(), "7"), Ok(Value::One("7".into())));
        assert!(
            one(int.clone(), "6")
                .unwrap_err()
                .contains("multiple of 3 counted from 1")
        );
        assert!(
            one(int.clone(), "11")
                .unwrap_err()
                .contains("between 1 and 10")
        );
        assert!(one(int.clone(), "1.5").is_err());
        assert!(one(int, "99999999999999999999").is_err());
        let float = Kind::Float {
            min: None,
            max: Some(1.0),
            step: Some(0.1),
        };
        assert_eq!(one(float.clone(), "0.3"), Ok(Value::One("0.3".into())));
        assert!(one(float.clone(), "0.35").is_err());
        for bad in ["inf", "NaN", "1e999", "0x10", " 1"] {
            assert!(one(float.clone(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn choices_match_exactly() {
        let select = Kind::Select {
            options: vec!["prod".into(), "staging".into()],
        };
        assert!(one(select.clone(), "prod").is_ok());
        assert!(one(select.clone(), "Prod").is_err());
        assert!(one(select, "prod ").is_err());
        let multi = arg(Kind::Multiselect {
            options: vec!["a".into(), "b".into(), "c".into()],
            min: None,
            max: Some(2),
        });
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            multi.parse(&v(&["a", "c"])),
            Ok(Value::Many(v(&["a", "c"])))
        );
        assert!(multi.parse(&v(&["a", "a"])).is_err());
        assert!(multi.parse(&v(&["a", "b", "c"])).is_err());
        assert!(multi.parse(&v(&["d"])).is_err());
        assert_eq!(multi.parse(&[]), Err("needs at least one choice".into()));
    }

    #[test]
    fn empty_fields_take_their_default() {
        let mut a = arg(Kind::Int {
            min: None,
            max: None,
            step: None,
        });
        a.required = false;
        a.default = Some(Value::One("3".into()));
        assert_eq!(a.parse(&[]), Ok(Value::One("3".into())));
        assert_eq!(a.parse(&["".into()]), Ok(Value::One("3".into())));
        assert_eq!(a.parse(&["4".into()]), Ok(Value::One("4".into())));
        let mut b = arg(Kind::Bool { flag: None });
        b.required = false;
        b.default = Some(Value::Bool(true));
        assert_eq!(
            b.parse(&[]),
            Ok(Value::Bool(false)),
            "an unticked box is a choice"
        );
    }

    #[test]
    fn bools_and_required_checkboxes() {
        let mut a = arg(Kind::Bool { flag: None });
        a.required = false;
        assert_eq!(a.parse(&[]), Ok(Value::Bool(false)));
        assert_eq!(a.parse(&["on".into()]), Ok(Value::Bool(true)));
        assert!(a.parse(&["yes".into()]).is_err());
        a.required = true;
        assert_eq!(a.parse(&[]), Err("must be checked".into()));
    }

    #[test]
    fn dates_and_times_are_iso_and_bounded() {
        let bounds = Bounds {
            min: Some("2026-01-01".into()),
            max: None,
        };
        assert!(one(Kind::Date(bounds.clone()), "2026-11-22").is_ok());
        assert!(
            one(Kind::Date(bounds.clone()), "2025-12-31")
                .unwrap_err()
                .contains("2026-01-01 or later")
        );
        assert!(one(Kind::Date(bounds), "2026-02-30").is_err());
        let time = Kind::Time(Bounds {
            min: Some("09:00:00".into()),
            max: Some("17:30:00".into()),
        });
        assert_eq!(one(time.clone(), "14:05"), Ok(Value::One("14:05".into())));
        assert_eq!(
            one(time.clone(), "14:05:09"),
            Ok(Value::One("14:05:09".into()))
        );
        assert!(
            one(time.clone(), "17:31")
                .unwrap_err()
                .contains("17:30 or earlier")
        );
        assert!(one(time, "25:00").is_err());
        let dt = Kind::Datetime(Bounds::default());
        assert_eq!(
            one(dt.clone(), "2026-11-22T14:05"),
            Ok(Value::One("2026-11-22T14:05".into()))
        );
        assert!(one(dt, "2026-11-22").is_err());
    }

    #[test]
    fn email_url_and_colour_syntax() {
        let email = Kind::Email(TextRules::default());
        assert!(one(email.clone(), "a.b@example.com").is_ok());
        assert!(one(email.clone(), "a b@example.com").is_err());
        assert!(one(email, "@example.com").is_err());
        let url = Kind::Url(TextRules::default());
        assert!(one(url.clone(), "https://example.com/x?y=1").is_ok());
        assert!(one(url.clone(), "javascript:alert(1)").is_err());
        assert!(one(url, "https://exa mple.com").is_err());
        assert_eq!(
            one(Kind::Color, "#A0b1C2"),
            Ok(Value::One("#a0b1c2".into()))
        );
        assert!(one(Kind::Color, "red").is_err());
    }
}
