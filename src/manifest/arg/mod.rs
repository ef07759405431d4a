//! Arguments: the typed fields of a tool's form, and the one place that decides whether a
//! value is acceptable for them. The same `Arg::parse` checks a manifest's `default` at
//! load time and every submitted value at run time, so a default can never be something
//! the form would refuse, and the server never trusts what the browser checked.

mod check;
mod dynamic;
mod pattern;
mod temporal;

pub use check::parse_float;
pub use dynamic::{DEFAULT_OPTIONS_TTL, OptionsFrom, ShowIf};
pub use pattern::Pattern;
pub use temporal::Temporal;

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
    /// A `select`'s or `multiselect`'s options come from a command: `kind` lists none
    /// until `crate::options` fills them in for one request.
    pub options_from: Option<OptionsFrom>,
    /// Shown (and passed) only while another field has a given value.
    pub show_if: Option<ShowIf>,
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

    /// The options of a `select` or `multiselect` (nothing for other types).
    pub fn options(&self) -> &[String] {
        match self {
            Kind::Select { options } | Kind::Multiselect { options, .. } => options,
            _ => &[],
        }
    }

    /// Puts `list` in place of a choice's options (options from a command, once run).
    pub fn set_options(&mut self, list: Vec<String>) {
        if let Kind::Select { options } | Kind::Multiselect { options, .. } = self {
            *options = list;
        }
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
            options_from: None,
            show_if: None,
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
