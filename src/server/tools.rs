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
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::context::Ctx;
use super::identity::Authed;
use super::pages::require;
use super::problem::Problem;
use super::respond::{Page, html, see_other};
use crate::exec::{Plan, RunInfo};
use crate::form::{self, Errors, FORM_ERROR, Submission, Upload};
use crate::manifest::{Arg, Kind, Tool, Value};
use crate::runs::{NewRun, Refusal};

/// Largest urlencoded body, and the allowance for text fields beside uploads.
pub const FORM_LIMIT: u64 = 1024 * 1024;

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
    errors_above: Vec<String>,
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
        errors_above: errors.keys().filter(|k| !k.is_empty()).cloned().collect(),
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

/// The query string that opens the form with these values again (passwords and files
/// are never put in a link).
fn rerun_query(tool: &Tool, values: &indexmap::IndexMap<String, Value>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for arg in &tool.args {
        if matches!(arg.kind, Kind::Password(_) | Kind::File { .. }) {
            continue;
        }
        match values.get(&arg.name) {
            Some(Value::One(v)) => {
                query.append_pair(&arg.name, v);
            }
            Some(Value::Many(vs)) => {
                for v in vs {
                    query.append_pair(&arg.name, v);
                }
            }
            Some(Value::Bool(b)) => {
                query.append_pair(&arg.name, if *b { "true" } else { "false" });
            }
            Some(Value::Absent) | None => {}
        }
    }
    let query = query.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

/// Arguments as the audit log shows them: passwords `***`, files by the name the client
/// gave, lists as arrays, absent values left out.
fn audit_args(
    tool: &Tool,
    values: &indexmap::IndexMap<String, Value>,
    submission: &Submission,
) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for arg in &tool.args {
        let shown = match (values.get(&arg.name), &arg.kind) {
            (None | Some(Value::Absent), _) => continue,
            (Some(_), Kind::Password(_)) => serde_json::json!("***"),
            (Some(_), Kind::File { .. }) => serde_json::json!(
                submission
                    .uploads
                    .iter()
                    .find(|u| u.field == arg.name)
                    .map(|u| u.client_name.clone())
            ),
            (Some(Value::One(v)), _) => serde_json::json!(v),
            (Some(Value::Many(vs)), _) => serde_json::json!(vs),
            (Some(Value::Bool(b)), _) => serde_json::json!(b),
        };
        map.insert(arg.name.clone(), shown);
    }
    serde_json::Value::Object(map)
}

/// The most bytes a POST to this tool may carry: its uploads plus the text fields.
fn body_limit(tool: &Tool) -> u64 {
    let uploads: u64 = tool
        .args
        .iter()
        .map(|a| match a.kind {
            Kind::File { max_size, .. } => max_size,
            _ => 0,
        })
        .sum();
    FORM_LIMIT + uploads
}

/// The most any tool takes: the cap before anyone is signed in, so the answer reveals
/// nothing about which tools exist or what they accept.
fn largest_body_limit(state: &State) -> u64 {
    state
        .manifest()
        .tools
        .values()
        .map(body_limit)
        .max()
        .unwrap_or(FORM_LIMIT)
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
    let declared = ctx
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
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
    let content_type = ctx
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
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

    let checked_values = checked.values.clone();
    let file_names: indexmap::IndexMap<String, String> = submission
        .uploads
        .iter()
        .map(|u| (u.field.clone(), u.client_name.clone()))
        .collect();
    let plan = Plan::new(
        &tool,
        &checked.values,
        &RunInfo {
            id: &run_id,
            user: &authed.user.name,
            output_dir: &dir.output(),
            file_names: &file_names,
        },
    );
    let new = NewRun {
        tool_id: tool.id.clone(),
        tool_title: tool.title.clone(),
        user: authed.user.name.clone(),
        shown_args: checked.shown,
        rerun_query: rerun_query(&tool, &checked_values),
        dir,
        max_output: tool.max_output,
        max_concurrent: tool.max_concurrent,
        plan,
    };
    match state.runs.start(run_id.clone(), new) {
        Ok(_) => {
            state.audit.record(
                "run-start",
                serde_json::json!({
                    "user": authed.user.name,
                    "client": crate::audit::client(ctx.client),
                    "tool": tool.id,
                    "run": run_id,
                    "args": audit_args(&tool, &checked_values, &submission),
                }),
            );
            Ok(authed.finish(see_other(&format!("{}runs/{run_id}", state.base))))
        }
        Err(Refusal::QueueFull) => Err(Problem::QueueFull.into()),
        Err(Refusal::ShuttingDown) => Err(Problem::ShuttingDown.into()),
    }
}

/// Why a body was not read to its end.
enum Unread {
    Problem(Problem),
    /// Too large: the form is shown again with this message.
    TooLarge(Errors),
}

impl From<Problem> for Unread {
    fn from(p: Problem) -> Unread {
        Unread::Problem(p)
    }
}

fn too_large_message(tool: &Tool) -> String {
    let files: Vec<String> = tool
        .args
        .iter()
        .filter_map(|a| match a.kind {
            Kind::File { max_size, .. } => {
                Some(format!("{} at most {}", a.label, human_size(max_size)))
            }
            _ => None,
        })
        .collect();
    if files.is_empty() {
        "The form is larger than ftw accepts.".into()
    } else {
        format!("The upload is too large: {}.", files.join(", "))
    }
}

/// "2 MB", "512 KB", "3 bytes" (decimal, as `max_size` is written).
pub fn human_size(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} bytes"),
        1_000..1_000_000 => format!("{} KB", trim(n as f64 / 1e3)),
        1_000_000..1_000_000_000 => format!("{} MB", trim(n as f64 / 1e6)),
        _ => format!("{} GB", trim(n as f64 / 1e9)),
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").unwrap_or(&s).to_string()
}

/// Reads a multipart body: text fields into memory (UTF-8 only), files straight to
/// disk under random names in the run's private `uploads/` folder, each within its
/// argument's `max_size`, and no more parts than the form can have.
async fn read_multipart<S>(
    tool: &Tool,
    content_type: &str,
    body: S,
    limit: u64,
    uploads_dir: &std::path::Path,
) -> Result<Submission, Unread>
where
    S: Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    use std::os::unix::fs::OpenOptionsExt;
    use tokio::io::AsyncWriteExt;

    let boundary = multer::parse_boundary(content_type).map_err(|_| Problem::BadBody)?;
    let mut sizes = multer::SizeLimit::new()
        .whole_stream(limit)
        .per_field(FORM_LIMIT);
    for arg in &tool.args {
        if let Kind::File { max_size, .. } = arg.kind {
            sizes = sizes.for_field(arg.name.clone(), max_size);
        }
    }
    let mut multipart = multer::Multipart::with_constraints(
        body,
        boundary,
        multer::Constraints::new().size_limit(sizes),
    );
    let max_parts = 4 + tool
        .args
        .iter()
        .map(|a| match &a.kind {
            Kind::Multiselect { options, .. } => options.len(),
            _ => 1,
        })
        .sum::<usize>();
    let unread = |e: multer::Error| -> Unread {
        match e {
            multer::Error::FieldSizeExceeded { field_name, .. } => {
                let mut errors = Errors::new();
                match field_name.as_deref().and_then(|n| tool.arg(n)) {
                    Some(arg) => {
                        let max = match arg.kind {
                            Kind::File { max_size, .. } => max_size,
                            _ => FORM_LIMIT,
                        };
                        errors.insert(
                            arg.name.clone(),
                            format!("is larger than {}", human_size(max)),
                        );
                    }
                    None => {
                        errors.insert(FORM_ERROR.into(), too_large_message(tool));
                    }
                }
                Unread::TooLarge(errors)
            }
            multer::Error::StreamSizeExceeded { .. } => {
                let mut errors = Errors::new();
                errors.insert(FORM_ERROR.into(), too_large_message(tool));
                Unread::TooLarge(errors)
            }
            multer::Error::StreamReadFailed(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) =>
            {
                Unread::Problem(Problem::SlowClient)
            }
            _ => Unread::Problem(Problem::BadBody),
        }
    };
    let store_error = |e: std::io::Error| {
        Unread::Problem(Problem::Internal(format!("cannot store an upload: {e}")))
    };
    let mut submission = Submission::default();
    let mut parts = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(unread)? {
        parts += 1;
        if parts > max_parts {
            return Err(Problem::TooManyParts.into());
        }
        let name = field.name().unwrap_or("").to_string();
        let Some(client_name) = field.file_name().map(str::to_string) else {
            let text = field.text().await.map_err(unread)?;
            submission.fields.push((name, text));
            continue;
        };
        if client_name.is_empty() {
            // A file input left empty: browsers send an empty part without a name.
            while field.chunk().await.map_err(unread)?.is_some() {}
            continue;
        }
        let stored = uploads_dir.join(format!(
            "{}{}",
            crate::auth::b64(&crate::auth::random::<12>()),
            form::safe_extension(&client_name)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&stored)
            .map_err(store_error)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(unread)? {
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(store_error)?;
        }
        file.flush().await.map_err(store_error)?;
        submission.uploads.push(Upload {
            field: name,
            client_name: form::display_name(&client_name),
            path: stored,
            size,
        });
    }
    Ok(submission)
}
