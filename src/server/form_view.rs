//! A tool's arguments as form fields: which control each type gets, the values it
//! shows (what was sent, else the link's query, else the default; never a password),
//! the HTML attributes the browser checks, and the same constraints in words.

use crate::manifest::{Arg, Kind};
use crate::options::{Choice as Option_, Prepared};

pub struct FieldView {
    pub control: Control,
    /// `fieldset` for a field shown only while another field has a value (disabled
    /// with it when hidden, so it is neither required nor sent); `div` otherwise.
    pub tag: &'static str,
    /// `show_if`: the field and the value it must have.
    pub show_if: Option<(String, String)>,
    pub hidden: bool,
    /// The fields whose change brings this choice new options (space-separated).
    pub options_from: String,
    /// Why this choice has no options now.
    pub notice: Option<String>,
    pub name: String,
    pub label: String,
    /// The server's message when a submission was refused.
    pub error: Option<String>,
    pub help: Option<String>,
    pub required: bool,
    /// Marked "(optional)": it may stay empty and has no default.
    pub optional: bool,
    /// Extra attributes (`min`, `maxlength`, ...), from a fixed set of names.
    pub attrs: Vec<(&'static str, String)>,
    /// The constraints in words ("1 to 60, in steps of 5"), shown under the field.
    pub rules: Option<String>,
    /// How wide the control is: `narrow`, `medium` or `wide`.
    pub width: &'static str,
}

pub enum Control {
    Input {
        kind: &'static str,
        value: String,
    },
    Textarea {
        value: String,
    },
    Select {
        options: Vec<Choice>,
        multiple: bool,
        empty: Option<String>,
    },
    Checkbox {
        checked: bool,
    },
    Checkboxes {
        options: Vec<Choice>,
    },
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Multiselects with more options than this are a `<select multiple>`, not checkboxes.
const MAX_CHECKBOXES: usize = 8;

/// What the form shows for each field: submitted values when re-showing, else the query
/// string, else the default. Passwords are never put back. `prepared` says what adapts:
/// options from a command (with labels), fields hidden now.
pub fn field_view(
    arg: &Arg,
    given: Option<&[String]>,
    error: Option<&String>,
    prepared: &Prepared,
) -> FieldView {
    let labels = prepared.choices.get(&arg.name).map(|c| c.as_slice());
    let values: Vec<String> = match (given, &arg.default) {
        (Some(v), _) => v.to_vec(),
        (None, Some(default)) => default.texts().into_iter().map(str::to_string).collect(),
        (None, None) => Vec::new(),
    };
    let first = values.first().cloned().unwrap_or_default();
    let mut attrs: Vec<(&'static str, String)> = Vec::new();
    if let Some(p) = &arg.placeholder {
        attrs.push(("placeholder", p.clone()));
    }
    let text_attrs = |attrs: &mut Vec<(&'static str, String)>| {
        if let Some(rules) = arg.kind.text_rules() {
            if let Some(n) = rules.min_length {
                attrs.push(("minlength", n.to_string()));
            }
            if let Some(n) = rules.max_length {
                attrs.push(("maxlength", n.to_string()));
            }
            if let Some(html) = rules.pattern.as_ref().and_then(|p| p.for_html()) {
                attrs.push(("pattern", html));
            }
        }
    };
    let control = match &arg.kind {
        Kind::Text(_) | Kind::Email(_) | Kind::Url(_) | Kind::Password(_) => {
            text_attrs(&mut attrs);
            let (kind, value) = match arg.kind {
                Kind::Text(_) => ("text", first),
                Kind::Email(_) => ("email", first),
                Kind::Url(_) => ("url", first),
                _ => {
                    attrs.push(("autocomplete", "off".into()));
                    ("password", String::new())
                }
            };
            Control::Input { kind, value }
        }
        Kind::Textarea(_) => {
            text_attrs(&mut attrs);
            attrs.push(("rows", "6".into()));
            Control::Textarea { value: first }
        }
        Kind::Int { min, max, step } => {
            push_opt(&mut attrs, "min", min);
            push_opt(&mut attrs, "max", max);
            push_opt(&mut attrs, "step", step);
            Control::Input {
                kind: "number",
                value: first,
            }
        }
        Kind::Float { min, max, step } => {
            push_opt(&mut attrs, "min", min);
            push_opt(&mut attrs, "max", max);
            attrs.push(("step", step.map_or("any".into(), |s| s.to_string())));
            Control::Input {
                kind: "number",
                value: first,
            }
        }
        Kind::Bool { .. } => Control::Checkbox {
            checked: matches!(first.as_str(), "true" | "on"),
        },
        // With a default there is nothing to "choose": an empty choice would mean the
        // default anyway.
        Kind::Select { options } => Control::Select {
            options: choices(options, &values, labels),
            multiple: false,
            empty: arg.default.is_none().then(|| {
                arg.placeholder
                    .clone()
                    .unwrap_or_else(|| "— choose —".into())
            }),
        },
        // Options from a command can change in place: always a list the page can refill.
        Kind::Multiselect { options, .. }
            if options.len() <= MAX_CHECKBOXES && arg.options_from.is_none() =>
        {
            Control::Checkboxes {
                options: choices(options, &values, labels),
            }
        }
        Kind::Multiselect { options, .. } => Control::Select {
            options: choices(options, &values, labels),
            multiple: true,
            empty: None,
        },
        Kind::Date(b) | Kind::Time(b) | Kind::Datetime(b) => {
            let kind = match arg.kind {
                Kind::Date(_) => "date",
                Kind::Time(_) => "time",
                _ => "datetime-local",
            };
            // Bounds are kept with seconds; the inputs step by minutes.
            let shown = |s: &str| s.strip_suffix(":00").unwrap_or(s).to_string();
            if let Some(min) = &b.min {
                attrs.push(("min", shown(min)));
            }
            if let Some(max) = &b.max {
                attrs.push(("max", shown(max)));
            }
            Control::Input { kind, value: first }
        }
        // A colour picker always has a value, so an optional colour without a default is
        // a text field: empty means "no colour".
        Kind::Color if !arg.required && arg.default.is_none() => {
            attrs.push(("pattern", "#[0-9a-fA-F]{6}".into()));
            attrs.push(("maxlength", "7".into()));
            if arg.placeholder.is_none() {
                attrs.push(("placeholder", "#rrggbb".into()));
            }
            Control::Input {
                kind: "text",
                value: first,
            }
        }
        Kind::Color => Control::Input {
            kind: "color",
            value: first,
        },
        Kind::File { accept, .. } => {
            if let Some(accept) = accept {
                attrs.push(("accept", accept.clone()));
            }
            Control::Input {
                kind: "file",
                value: String::new(),
            }
        }
    };
    let hidden = prepared.hidden.contains(&arg.name);
    FieldView {
        tag: if arg.show_if.is_some() {
            "fieldset"
        } else {
            "div"
        },
        show_if: arg
            .show_if
            .as_ref()
            .map(|w| (w.field.clone(), w.equals.clone())),
        hidden,
        options_from: arg
            .options_from
            .as_ref()
            .map(|f| f.depends_on.join(" "))
            .unwrap_or_default(),
        notice: prepared
            .problems
            .get(&arg.name)
            .filter(|_| error.is_none())
            .map(|why| format!("No options: {why}.")),
        name: arg.name.clone(),
        label: arg.label.clone(),
        help: arg.help.clone(),
        // Shown as required (and marked so for the browser) when it must be filled in:
        // a field with a default never must, an empty one takes the default.
        required: (arg.required && arg.default.is_none())
            || matches!(arg.kind, Kind::Bool { .. } if arg.required),
        optional: !arg.required && arg.default.is_none(),
        error: error.cloned(),
        attrs,
        rules: rules(arg),
        width: width(&arg.kind),
        control,
    }
}

/// The constraints the server checks, said plainly (the browser's own checks are not
/// visible until something is wrong).
fn rules(arg: &Arg) -> Option<String> {
    let sentence = |text: String| {
        let mut chars = text.chars();
        chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect::<String>() + ".")
    };
    constraints(arg).and_then(sentence)
}

fn constraints(arg: &Arg) -> Option<String> {
    let range = |min: Option<String>, max: Option<String>| match (min, max) {
        (Some(lo), Some(hi)) => Some(format!("from {lo} to {hi}")),
        (Some(lo), None) => Some(format!("at least {lo}")),
        (None, Some(hi)) => Some(format!("at most {hi}")),
        (None, None) => None,
    };
    let text = |r: &crate::manifest::arg::TextRules, what: Option<&str>| {
        let length = match (r.min_length, r.max_length) {
            (Some(lo), Some(hi)) if lo == hi => Some(format!("exactly {lo} characters")),
            (Some(lo), Some(hi)) => Some(format!("{lo} to {hi} characters")),
            (Some(lo), None) => Some(format!("at least {lo} characters")),
            (None, Some(hi)) => Some(format!("at most {hi} characters")),
            (None, None) => None,
        };
        // A pattern is shown when no help explains it.
        let pattern = r
            .pattern
            .as_ref()
            .filter(|_| arg.help.is_none())
            .map(|p| format!("must match {}", p.source));
        let parts: Vec<String> = what
            .map(str::to_string)
            .into_iter()
            .chain(length)
            .chain(pattern)
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    };
    let number = |min: Option<String>, max: Option<String>, step: Option<String>, whole: bool| {
        let what = if whole { "a whole number" } else { "a number" };
        let bounds = range(min, max);
        let step = step.map(|s| format!("in steps of {s}"));
        let parts: Vec<String> = [Some(what.to_string()), bounds, step]
            .into_iter()
            .flatten()
            .collect();
        Some(parts.join(", "))
    };
    let shown = |s: &Option<String>| {
        s.as_deref()
            .map(|v| v.strip_suffix(":00").unwrap_or(v).to_string())
    };
    match &arg.kind {
        Kind::Text(r) | Kind::Textarea(r) | Kind::Password(r) => text(r, None),
        Kind::Email(r) => text(r, Some("an e-mail address")),
        Kind::Url(r) => text(r, Some("an http:// or https:// address")),
        Kind::Int { min, max, step } => number(
            min.map(|v| v.to_string()),
            max.map(|v| v.to_string()),
            step.map(|v| v.to_string()),
            true,
        ),
        Kind::Float { min, max, step } => number(
            min.map(|v| v.to_string()),
            max.map(|v| v.to_string()),
            step.map(|v| v.to_string()),
            false,
        ),
        Kind::Multiselect { min, max, .. } => {
            let min = min.or((arg.required && arg.default.is_none()).then_some(1));
            match (min, *max) {
                (Some(lo), Some(hi)) if lo == hi => Some(format!("choose {lo}")),
                (Some(lo), Some(hi)) => Some(format!("choose {lo} to {hi}")),
                (Some(lo), None) => Some(format!("choose at least {lo}")),
                (None, Some(hi)) => Some(format!("choose at most {hi}")),
                (None, None) => None,
            }
        }
        Kind::Date(b) | Kind::Time(b) | Kind::Datetime(b) => match (shown(&b.min), shown(&b.max)) {
            (Some(lo), Some(hi)) => Some(format!("from {lo} to {hi}")),
            (Some(lo), None) => Some(format!("{lo} or later")),
            (None, Some(hi)) => Some(format!("{hi} or earlier")),
            (None, None) => None,
        },
        Kind::Color if !arg.required && arg.default.is_none() => {
            Some("a colour as #rrggbb, or empty".into())
        }
        Kind::File { accept, max_size } => {
            let size = format!("at most {}", super::format::human_size(*max_size));
            Some(match accept {
                Some(types) => format!("{}; {size}", types.replace(',', ", ")),
                None => size,
            })
        }
        Kind::Bool { .. } | Kind::Select { .. } | Kind::Color => None,
    }
}

/// Controls as wide as what they hold: numbers, dates and colours are narrow, short
/// text is medium, the rest takes the form's width.
fn width(kind: &Kind) -> &'static str {
    match kind {
        Kind::Int { .. } | Kind::Float { .. } | Kind::Date(_) | Kind::Time(_) | Kind::Color => {
            "narrow"
        }
        Kind::Datetime(_) | Kind::Select { .. } => "medium",
        Kind::Text(r) | Kind::Password(r) if r.max_length.is_some_and(|n| n <= 24) => "medium",
        _ => "wide",
    }
}

fn push_opt<T: ToString>(
    attrs: &mut Vec<(&'static str, String)>,
    name: &'static str,
    v: &Option<T>,
) {
    if let Some(v) = v {
        attrs.push((name, v.to_string()));
    }
}

fn choices(options: &[String], selected: &[String], labels: Option<&[Option_]>) -> Vec<Choice> {
    options
        .iter()
        .map(|o| Choice {
            value: o.clone(),
            label: labels
                .and_then(|l| l.iter().find(|c| c.value == *o))
                .map_or_else(|| o.clone(), |c| c.label.clone()),
            selected: selected.contains(o),
        })
        .collect()
}
