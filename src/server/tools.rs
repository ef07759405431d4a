//! A tool's form: GET `/tools/{id}` shows it (pre-filled from the query string), POST
//! hands the body to `intake` and answers like a form: a run page on success, the form
//! again with every message and the values kept (never passwords) when not.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use http::StatusCode;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::allowed_tool;
use super::body::BodyStream;
use super::context::Ctx;
use super::identity::Authed;
use super::intake::{self, Bodies, Refused};
use super::pages::require;
use super::respond::{Page, html, see_other};
use crate::form::{Errors, FORM_ERROR, Submission};
use crate::manifest::{Arg, Kind, Tool};

#[derive(Template)]
#[template(path = "tool.html")]
struct ToolPage<'a> {
    page: Page<'a>,
    id: &'a str,
    title: &'a str,
    description: Option<&'a str>,
    group: Option<&'a str>,
    multipart: bool,
    fields: Vec<FieldView>,
    form_error: Option<String>,
    /// (name, label) of each field with an error, linked from the notice at the top.
    errors_above: Vec<(String, String)>,
}

struct FieldView {
    name: String,
    label: String,
    help: Option<String>,
    required: bool,
    /// Marked "(optional)": it may stay empty and has no default.
    optional: bool,
    error: Option<String>,
    /// Extra attributes (`min`, `maxlength`, ...), from a fixed set of names.
    attrs: Vec<(&'static str, String)>,
    control: Control,
}

enum Control {
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

struct Choice {
    value: String,
    selected: bool,
}

/// Multiselects with more options than this are a `<select multiple>`, not checkboxes.
const MAX_CHECKBOXES: usize = 8;

/// What the form shows for each field: submitted values when re-showing, else the query
/// string, else the default. Passwords are never put back.
fn field_view(arg: &Arg, given: Option<&[String]>, error: Option<&String>) -> FieldView {
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
            options: choices(options, &values),
            multiple: false,
            empty: arg.default.is_none().then(|| {
                arg.placeholder
                    .clone()
                    .unwrap_or_else(|| "— choose —".into())
            }),
        },
        Kind::Multiselect { options, .. } if options.len() <= MAX_CHECKBOXES => {
            Control::Checkboxes {
                options: choices(options, &values),
            }
        }
        Kind::Multiselect { options, .. } => Control::Select {
            options: choices(options, &values),
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
    FieldView {
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
        control,
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

fn choices(options: &[String], selected: &[String]) -> Vec<Choice> {
    options
        .iter()
        .map(|o| Choice {
            value: o.clone(),
            selected: selected.contains(o),
        })
        .collect()
}

fn render(
    state: &State,
    authed: &Authed,
    tool: &Tool,
    status: StatusCode,
    given: &HashMap<String, Vec<String>>,
    errors: &Errors,
) -> Response {
    let manifest = state.manifest();
    let fields: Vec<FieldView> = tool
        .args
        .iter()
        .map(|a| {
            field_view(
                a,
                given.get(&a.name).map(Vec::as_slice),
                errors.get(&a.name),
            )
        })
        .collect();
    let mut page = Page::new(state, &manifest.title, &tool.title, Some(authed));
    page.nav = "tools";
    let body = ToolPage {
        page,
        id: &tool.id,
        title: &tool.title,
        description: tool.description.as_deref(),
        group: tool.group.as_deref(),
        multipart: tool
            .args
            .iter()
            .any(|a| matches!(a.kind, Kind::File { .. })),
        fields,
        form_error: errors.get(FORM_ERROR).cloned(),
        errors_above: tool
            .args
            .iter()
            .filter(|a| errors.contains_key(&a.name))
            .map(|a| (a.name.clone(), a.label.clone()))
            .collect(),
    };
    authed.finish(html(status, &body))
}

/// GET /tools/{id}?name=value: the form, pre-filled from the query string.
pub async fn show(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    raw_query: Option<String>,
) -> Result<Response, Rejection> {
    let here = match &raw_query {
        Some(q) => format!("{}tools/{id}?{q}", state.base),
        None => format!("{}tools/{id}", state.base),
    };
    let authed = require(&state, &ctx, &here)?;
    let tool = allowed_tool(&state, &authed, &id)?;
    let mut given: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        let secret = tool
            .arg(&k)
            .is_none_or(|a| matches!(a.kind, Kind::Password(_) | Kind::File { .. }));
        if !secret {
            given
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
    }
    Ok(render(
        &state,
        &authed,
        &tool,
        StatusCode::OK,
        &given,
        &Errors::new(),
    ))
}

/// POST /tools/{id}: check and start.
pub async fn submit(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    body: impl BodyStream,
) -> Result<Response, Rejection> {
    intake::precheck(&state, &ctx)?;
    let authed = require(&state, &ctx, &format!("{}tools/{id}", state.base))?;
    let (status, given, errors) =
        match intake::intake(&state, &ctx, &authed, &id, body, Bodies::Form).await {
            Ok(intake) => {
                let run = super::launch::start(&state, &ctx, &authed, intake)?;
                let page = format!("{}runs/{}", state.base, run.id);
                return Ok(authed.finish(see_other(&page)));
            }
            Err(Refused::Problem(p)) => return Err(p.into()),
            Err(Refused::TooLarge(errors)) => (StatusCode::PAYLOAD_TOO_LARGE, None, errors),
            Err(Refused::Invalid(errors, submission)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(submission), errors)
            }
        };
    // The form again, with every message and what was sent (nothing was read of a body
    // that was too large).
    let tool = allowed_tool(&state, &authed, &id)?;
    let given = given.map(|s| given_back(&tool, &s)).unwrap_or_default();
    Ok(render(&state, &authed, &tool, status, &given, &errors))
}

/// The values to show again after a refused submission: what was sent, except
/// passwords; unchecked boxes stay unchecked (they send nothing at all).
fn given_back(tool: &Tool, submission: &Submission) -> HashMap<String, Vec<String>> {
    let mut given: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &submission.fields {
        if tool
            .arg(k)
            .is_some_and(|a| !matches!(a.kind, Kind::Password(_)))
        {
            given.entry(k.clone()).or_default().push(v.clone());
        }
    }
    for arg in &tool.args {
        if matches!(arg.kind, Kind::Bool { .. } | Kind::Multiselect { .. }) {
            given.entry(arg.name.clone()).or_default();
        }
    }
    given
}
