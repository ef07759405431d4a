//! `[tools.ID.args.NAME]`: each argument's type, the keys that fit it, its constraints,
//! and a default checked by the very code that checks submitted values.

use std::ops::Range;

use toml::Spanned;

use crate::manifest::DEFAULT_MAX_UPLOAD;
use crate::manifest::arg::{self, Arg, Bounds, Kind, Pattern, Temporal, TextRules, Value};
use crate::manifest::decode::{self};
use crate::manifest::diagnostic::quoted;
use crate::manifest::raw::RawArg;
use crate::manifest::template::is_name;

use super::Checker;

impl Checker<'_> {
    /// The arguments that are valid, with the span of their name.
    pub(super) fn args(
        &mut self,
        tool: &str,
        entries: Vec<decode::RawArgEntry>,
    ) -> Vec<(Range<usize>, Arg)> {
        let mut args: Vec<(Range<usize>, Arg)> = Vec::new();
        for entry in entries {
            let name = entry.name.get_ref();
            if !is_name(name) || name.len() > 64 {
                self.error(
                    entry.name.span(),
                    format!("argument name {} must start with a letter and use only letters, digits and `_` (at most 64)", quoted(name)),
                );
                continue;
            }
            if let Some((_, other)) = args.iter().find(|(_, a)| a.name.eq_ignore_ascii_case(name)) {
                self.error(
                    entry.name.span(),
                    format!("arguments `{}` and `{name}` of `{tool}` differ only in case; both would be FTW_ARG_{}", other.name, name.to_ascii_uppercase()),
                );
                continue;
            }
            if let Some(raw) = entry.arg
                && let Some(arg) = self.arg(name, raw)
            {
                args.push((entry.name.span(), arg));
            }
        }
        args
    }

    pub(super) fn arg(&mut self, name: &str, raw: RawArg) -> Option<Arg> {
        let kind_span = raw.kind.as_ref()?.span();
        let type_name = raw.kind.as_ref()?.get_ref().as_str();
        if !arg::TYPE_NAMES.contains(&type_name) {
            let hint = arg::suggest_type(type_name)
                .map(|g| format!("; did you mean {}?", quoted(g)))
                .unwrap_or_default();
            self.error_help(
                kind_span,
                format!("unknown type {}{hint}", quoted(type_name)),
                format!("types: {}", arg::TYPE_NAMES.join(", ")),
            );
            return None;
        }
        let before = self.diags.error_count();
        self.keys_fit_type(type_name, &raw);
        let kind = self.kind(type_name, &raw);
        let required = match (&raw.required, &kind) {
            (Some(r), _) => *r.get_ref(),
            (None, Kind::Bool { .. }) => false,
            (None, _) => raw.default.is_none(),
        };
        let mut arg = Arg {
            name: name.to_string(),
            label: raw.label.clone().unwrap_or_else(|| label_from_name(name)),
            help: raw.help.clone(),
            placeholder: raw.placeholder.clone(),
            required,
            default: None,
            kind,
            options_from: None,
            show_if: None,
        };
        // A default is only judged against constraints that are themselves sound.
        if let Some(default) = &raw.default
            && self.diags.error_count() == before
        {
            arg.default = self.default(&arg, default, raw.options_from.is_some());
        }
        let ok = self.diags.error_count() == before;
        if ok && (raw.options_from.is_some() || raw.show_if.is_some()) {
            self.dynamic.push(super::dynamic::RawDynamic {
                arg: name.to_string(),
                options_from: raw.options_from,
                options_ttl: raw.options_ttl,
                show_if: raw.show_if,
            });
        }
        ok.then_some(arg)
    }

    /// Refuses keys that mean nothing for this type (`options` on an `int`, ...).
    pub(super) fn keys_fit_type(&mut self, type_name: &str, raw: &RawArg) {
        const TEXT: &[&str] = &["text", "textarea", "password", "email", "url"];
        const RANGED: &[&str] = &["int", "float", "multiselect", "date", "time", "datetime"];
        type KeyUse<'a> = (&'a str, Option<Range<usize>>, &'a [&'a str]);
        const CHOICES: &[&str] = &["select", "multiselect"];
        let spans: [KeyUse; 12] = [
            (
                "min_length",
                raw.min_length.as_ref().map(Spanned::span),
                TEXT,
            ),
            (
                "max_length",
                raw.max_length.as_ref().map(Spanned::span),
                TEXT,
            ),
            ("pattern", raw.pattern.as_ref().map(Spanned::span), TEXT),
            ("min", raw.min.as_ref().map(Spanned::span), RANGED),
            ("max", raw.max.as_ref().map(Spanned::span), RANGED),
            (
                "step",
                raw.step.as_ref().map(Spanned::span),
                &["int", "float"],
            ),
            ("options", raw.options.as_ref().map(Spanned::span), CHOICES),
            (
                "options_from",
                raw.options_from.as_ref().map(Spanned::span),
                CHOICES,
            ),
            (
                "options_ttl",
                raw.options_ttl.as_ref().map(Spanned::span),
                CHOICES,
            ),
            ("flag", raw.flag.as_ref().map(Spanned::span), &["bool"]),
            ("accept", raw.accept.as_ref().map(Spanned::span), &["file"]),
            (
                "max_size",
                raw.max_size.as_ref().map(Spanned::span),
                &["file"],
            ),
        ];
        for (key, span, types) in spans {
            if let Some(span) = span
                && !types.contains(&type_name)
            {
                let hint = match key {
                    "min" | "max" if TEXT.contains(&type_name) => {
                        format!("; did you mean `{key}_length`?")
                    }
                    _ => String::new(),
                };
                self.error_help(
                    span,
                    format!("`{key}` does not apply to type {}{hint}", quoted(type_name)),
                    format!("`{key}` applies to: {}", types.join(", ")),
                );
            }
        }
        if raw.default.is_some() && type_name == "file" {
            let span = raw.default.as_ref().map(Spanned::span).unwrap_or_default();
            self.error(span, "a `file` argument cannot have a default".into());
        }
    }

    pub(super) fn kind(&mut self, type_name: &str, raw: &RawArg) -> Kind {
        match type_name {
            "text" => Kind::Text(self.text_rules(raw)),
            "textarea" => Kind::Textarea(self.text_rules(raw)),
            "password" => Kind::Password(self.text_rules(raw)),
            "email" => Kind::Email(self.text_rules(raw)),
            "url" => Kind::Url(self.text_rules(raw)),
            "int" => {
                let (min, max, step) = self.numeric(raw, Self::int, 0);
                Kind::Int { min, max, step }
            }
            "float" => {
                let (min, max, step) = self.numeric(raw, Self::float, 0.0);
                Kind::Float { min, max, step }
            }
            "bool" => {
                if let Some(flag) = &raw.flag
                    && (flag.get_ref().is_empty() || flag.get_ref().contains('\0'))
                {
                    self.error(
                        flag.span(),
                        "`flag` must be a non-empty string such as \"--verbose\"".into(),
                    );
                }
                Kind::Bool {
                    flag: raw.flag.as_ref().map(|f| f.get_ref().clone()),
                }
            }
            "select" => Kind::Select {
                options: self.options(raw),
            },
            "multiselect" => {
                let options = self.options(raw);
                // Options a command prints are not known yet: any count may fit them.
                let known = if raw.options_from.is_some() {
                    u32::MAX as usize
                } else {
                    options.len()
                };
                let min = self.count(&raw.min, "min", known);
                let max = self.count(&raw.max, "max", known);
                self.ordered(&raw.max, min, max);
                Kind::Multiselect { options, min, max }
            }
            "date" => Kind::Date(self.bounds(raw, Temporal::Date)),
            "time" => Kind::Time(self.bounds(raw, Temporal::Time)),
            "datetime" => Kind::Datetime(self.bounds(raw, Temporal::Datetime)),
            "color" => Kind::Color,
            _ => Kind::File {
                accept: raw.accept.as_ref().map(|a| a.get_ref().clone()),
                max_size: self.size(raw.max_size.clone(), "max_size", DEFAULT_MAX_UPLOAD),
            },
        }
    }

    pub(super) fn text_rules(&mut self, raw: &RawArg) -> TextRules {
        let min_length = raw.min_length.as_ref().map(|s| *s.get_ref());
        let max_length = raw.max_length.as_ref().map(|s| *s.get_ref());
        self.ordered(&raw.max_length, min_length, max_length);
        let pattern = raw
            .pattern
            .as_ref()
            .and_then(|p| match Pattern::new(p.get_ref()) {
                Ok(pattern) => Some(pattern),
                Err(e) => {
                    self.error(
                        p.span(),
                        format!(
                            "`pattern` is not a valid regular expression: {}",
                            regex_reason(&e)
                        ),
                    );
                    None
                }
            });
        TextRules {
            min_length,
            max_length,
            pattern,
        }
    }

    /// `min`, `max` and `step` of a number type, read by `number`: the maximum not below
    /// the minimum, the step above `zero`.
    fn numeric<T: PartialOrd + Copy + std::fmt::Display>(
        &mut self,
        raw: &RawArg,
        number: fn(&mut Self, &Option<Spanned<toml::Value>>, &str) -> Option<T>,
        zero: T,
    ) -> (Option<T>, Option<T>, Option<T>) {
        let min = number(self, &raw.min, "min");
        let max = number(self, &raw.max, "max");
        self.ordered(&raw.max, min, max);
        let step = number(self, &raw.step, "step");
        if let (Some(s), Some(span)) = (step, raw.step.as_ref())
            && s <= zero
        {
            self.error(span.span(), "`step` must be larger than zero".into());
        }
        (min, max, step)
    }

    /// Reports `min > max` at the `max` value.
    pub(super) fn ordered<T: PartialOrd + std::fmt::Display, S>(
        &mut self,
        max_raw: &Option<Spanned<S>>,
        min: Option<T>,
        max: Option<T>,
    ) {
        if let (Some(lo), Some(hi), Some(span)) = (min, max, max_raw.as_ref())
            && lo > hi
        {
            self.error(
                span.span(),
                format!("the maximum {hi} is below the minimum {lo}"),
            );
        }
    }

    pub(super) fn int(&mut self, value: &Option<Spanned<toml::Value>>, key: &str) -> Option<i64> {
        let value = value.as_ref()?;
        match value.get_ref() {
            toml::Value::Integer(n) => Some(*n),
            other => {
                self.error(
                    value.span(),
                    format!("`{key}` must be a whole number, not {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn float(&mut self, value: &Option<Spanned<toml::Value>>, key: &str) -> Option<f64> {
        let value = value.as_ref()?;
        match value.get_ref() {
            toml::Value::Integer(n) => Some(*n as f64),
            toml::Value::Float(x) if x.is_finite() => Some(*x),
            other => {
                self.error(
                    value.span(),
                    format!("`{key}` must be a finite number, not {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn count(
        &mut self,
        value: &Option<Spanned<toml::Value>>,
        key: &str,
        options: usize,
    ) -> Option<u32> {
        let n = self.int(value, key)?;
        let span = value.as_ref().map(Spanned::span).unwrap_or_default();
        match u32::try_from(n) {
            Ok(n) if n as usize <= options => Some(n),
            _ => {
                self.error(
                    span,
                    format!("`{key}` counts chosen options: between 0 and {options}"),
                );
                None
            }
        }
    }

    pub(super) fn options(&mut self, raw: &RawArg) -> Vec<String> {
        if raw.options_from.is_some() {
            if let Some(options) = &raw.options {
                self.error_help(
                    options.span(),
                    "`options` and `options_from` are both given".into(),
                    "keep `options` for a fixed list, or `options_from` for a command that prints the list".into(),
                );
            }
            return Vec::new();
        }
        if let Some(ttl) = &raw.options_ttl {
            self.error(
                ttl.span(),
                "`options_ttl` applies to options from a command (`options_from`)".into(),
            );
        }
        let Some(options) = &raw.options else {
            if let Some(kind) = &raw.kind {
                self.error_help(
                    kind.span(),
                    format!(
                        "type {} needs `options`, such as options = [\"a\", \"b\"]",
                        quoted(kind.get_ref())
                    ),
                    "or `options_from`, a command that prints one option per line, such as options_from = [\"./list-dbs.sh\"]".into(),
                );
            }
            return Vec::new();
        };
        if options.get_ref().is_empty() {
            self.error(
                options.span(),
                "`options` is empty; list at least one choice".into(),
            );
        }
        let mut list: Vec<String> = Vec::new();
        for option in options.get_ref() {
            let text = option.get_ref();
            if text.is_empty() || text.chars().any(char::is_control) {
                self.error(
                    option.span(),
                    "an option must be non-empty text without control characters".into(),
                );
            } else if list.contains(text) {
                self.error(
                    option.span(),
                    format!("option {} is listed twice", quoted(text)),
                );
            } else {
                list.push(text.clone());
            }
        }
        list
    }

    pub(super) fn bounds(&mut self, raw: &RawArg, temporal: Temporal) -> Bounds {
        let mut bound = |value: &Option<Spanned<toml::Value>>, key: &str| -> Option<String> {
            let value = value.as_ref()?;
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                other => other.to_string(),
            };
            let normal = temporal.normalise(&text);
            if normal.is_none() {
                self.error(
                    value.span(),
                    format!(
                        "`{key}` {} is not in the ISO form this type uses",
                        quoted(&text)
                    ),
                );
            }
            normal
        };
        let min = bound(&raw.min, "min");
        let max = bound(&raw.max, "max");
        self.ordered(&raw.max, min.clone(), max.clone());
        Bounds { min, max }
    }

    /// The default, checked by the same code that checks submitted values. A choice
    /// whose options come from a command is checked for its form only; whether it is
    /// among the options is decided when they are known (a default that is not is not
    /// used).
    pub(super) fn default(
        &mut self,
        arg: &Arg,
        default: &Spanned<toml::Value>,
        options_from: bool,
    ) -> Option<Value> {
        let inputs: Vec<String> = match (default.get_ref(), &arg.kind) {
            (toml::Value::Boolean(b), Kind::Bool { .. }) => vec![b.to_string()],
            (_, Kind::Bool { .. }) => {
                self.error(
                    default.span(),
                    "the default of a `bool` is true or false".into(),
                );
                return None;
            }
            (toml::Value::Array(items), Kind::Multiselect { .. }) => {
                let mut inputs = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => inputs.push(s.clone()),
                        other => inputs.push(other.to_string()),
                    }
                }
                inputs
            }
            (_, Kind::Multiselect { .. }) => {
                self.error(
                    default.span(),
                    "the default of a `multiselect` is an array of options, such as [\"a\"]".into(),
                );
                return None;
            }
            (toml::Value::Array(_) | toml::Value::Table(_), _) => {
                self.error(
                    default.span(),
                    format!("the default of a `{}` is a single value", arg.kind.name()),
                );
                return None;
            }
            (toml::Value::String(s), _) => vec![s.clone()],
            (toml::Value::Datetime(d), _) => vec![d.to_string()],
            (other, _) => vec![other.to_string()],
        };
        // Checked as if the argument were required: a default of "" means nothing.
        let mut strict = arg.clone();
        strict.required = !matches!(arg.kind, Kind::Bool { .. } | Kind::Multiselect { .. });
        if options_from {
            strict.kind.set_options(inputs.clone());
        }
        match strict.parse(&inputs) {
            Ok(value) => Some(value),
            Err(why) => {
                let shown = match default.get_ref() {
                    toml::Value::String(s) => quoted(s),
                    other => other.to_string(),
                };
                self.error(
                    default.span(),
                    format!("the default {shown} breaks its own rule: it {why}"),
                );
                None
            }
        }
    }
}

/// "db_name" -> "Db name".
fn label_from_name(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// The regex crate's message, without its own multi-line snippet.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_names() {
        assert_eq!(label_from_name("db_name"), "Db name");
    }
}
