//! A tool's form: GET `/tools/{id}` shows it (pre-filled from the query string), POST
//! reads it (urlencoded or multipart with uploads), checks it, and starts the run.
//!
//! The POST handler works in the order that keeps an attacker cheapest: body size first
//! (413 before anything else is looked at), then same-origin, session, access (a tool the
//! user may not run is 404), reading the body, the CSRF token, and only then the values.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use bytes::Buf;
use futures_util::Stream;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::context::Ctx;
use super::identity::Authed;
use super::launch::{Unread, body_limit, largest_body_limit, read_multipart, too_large_message};
use super::pages::require;
use super::problem::Problem;
use super::respond::{Page, html, see_other};
use crate::form::{self, Errors, FORM_ERROR, Submission};
use crate::manifest::{Arg, Kind, Tool, Value};

pub use super::launch::FORM_LIMIT;

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
    let from_default = || -> Vec<String> {
        match &arg.default {
            Some(Value::One(v)) => vec![v.clone()],
            Some(Value::Many(vs)) => vs.clone(),
            Some(Value::Bool(true)) => vec!["true".into()],
            _ => Vec::new(),
        }
    };
    let values: Vec<String> = match given {
        Some(v) => v.to_vec(),
        None => from_default(),
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

/// The tool if it exists and this user may run it; otherwise 404 (its existence is not
/// revealed).
pub fn allowed_tool(state: &State, authed: &Authed, id: &str) -> Result<Tool, Rejection> {
    let manifest = state.manifest();
    match manifest.tools.get(id) {
        Some(tool) if tool.allows(&authed.user.name, &authed.user.groups) => Ok(tool.clone()),
        _ => Err(Problem::NotFound.into()),
    }
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
pub async fn submit<S, B>(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    body: S,
) -> Result<Response, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin + 'static,
    B: Buf + Send + 'static,
{
    let declared = ctx.content_length();
    if declared.is_some_and(|n| n > largest_body_limit(&state)) {
        return Err(Problem::TooLarge.into());
    }
    if !ctx.same_origin() {
        return Err(Problem::CrossSite.into());
    }
    let authed = require(&state, &ctx, &format!("{}tools/{id}", state.base))?;
    let tool = allowed_tool(&state, &authed, &id)?;
    let limit = body_limit(&tool);
    if declared.is_some_and(|n| n > limit) {
        let mut errors = Errors::new();
        errors.insert(FORM_ERROR.into(), too_large_message(&tool));
        return Ok(render(
            &state,
            &authed,
            &tool,
            StatusCode::PAYLOAD_TOO_LARGE,
            &HashMap::new(),
            &errors,
        ));
    }

    let run_id = crate::auth::b64(&crate::auth::random::<16>());
    let dir = state
        .runs
        .new_dir(&run_id)
        .map_err(|e| Problem::Internal(format!("cannot make the run folder: {e}")))?;
    let content_type = ctx.header(CONTENT_TYPE.as_str()).unwrap_or("");
    let body = super::body::with_idle_timeout(body, state.config.client_timeout);
    let submission = if content_type.starts_with("multipart/form-data") {
        match read_multipart(&tool, content_type, body, limit, &dir.uploads()).await {
            Ok(submission) => submission,
            Err(Unread::Problem(p)) => return Err(p.into()),
            Err(Unread::TooLarge(errors)) => {
                return Ok(render(
                    &state,
                    &authed,
                    &tool,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &HashMap::new(),
                    &errors,
                ));
            }
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let bytes = super::body::read_all(body, FORM_LIMIT).await?;
        Submission {
            fields: super::body::parse_form(&bytes)?,
            uploads: Vec::new(),
        }
    } else {
        return Err(Problem::UnsupportedForm.into());
    };

    let header_token = ctx
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok());
    let token = submission.csrf().or(header_token).unwrap_or("");
    if !authed.csrf_ok(&state, token) {
        return Err(Problem::BadCsrf.into());
    }

    let checked = match form::check(&tool, &submission) {
        Ok(checked) => checked,
        Err(errors) => {
            let mut given: HashMap<String, Vec<String>> = HashMap::new();
            for (k, v) in &submission.fields {
                if tool
                    .arg(k)
                    .is_some_and(|a| !matches!(a.kind, Kind::Password(_)))
                {
                    given.entry(k.clone()).or_default().push(v.clone());
                }
            }
            // Unchecked checkboxes send nothing; keep them unchecked when re-shown.
            for arg in &tool.args {
                if matches!(arg.kind, Kind::Bool { .. } | Kind::Multiselect { .. }) {
                    given.entry(arg.name.clone()).or_default();
                }
            }
            return Ok(render(
                &state,
                &authed,
                &tool,
                StatusCode::UNPROCESSABLE_ENTITY,
                &given,
                &errors,
            ));
        }
    };

    let run = super::launch::start(
        &state,
        &ctx,
        &authed,
        &tool,
        run_id,
        dir,
        checked,
        &submission,
        "form",
    )?;
    Ok(authed.finish(see_other(&format!("{}runs/{}", state.base, run.id))))
}
