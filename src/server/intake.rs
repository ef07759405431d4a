//! The way into a run, shared by the form (`POST /tools/{id}`) and the API
//! (`POST /api/tools/{id}/runs`): body limits, a fresh private run folder, the body read
//! with a deadline between chunks (urlencoded, multipart with uploads straight to disk,
//! or JSON for the API), the CSRF rule, and the values checked. Each handler only
//! decides how to answer what comes out.
//!
//! The order keeps an attacker cheapest: the declared size against the largest any
//! tool takes (413 before anyone is known), cross-site refusal, then after sign-in and
//! access the tool's own limit, a CSRF token sent as a header (or not needed: bearer
//! tokens) before the body is read, one sent as a form field after, and only then the
//! values.

use http::header::CONTENT_TYPE;
use serde_json::Value as Json;

use super::State;
use super::access::allowed_tool;
use super::body::{self, BodyStream};
use super::context::Ctx;
use super::format::human_size;
use super::identity::{Authed, Via, bearer};
use super::problem::Problem;
use crate::form::{self, Checked, Errors, FORM_ERROR, Submission, Upload};
use crate::manifest::{Kind, Tool, Value};
use crate::runs::RunDir;

/// Largest urlencoded or JSON body, and the allowance for text fields beside uploads.
pub const FORM_LIMIT: u64 = 1024 * 1024;

/// Which bodies a route reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    /// urlencoded or multipart, as browsers send forms.
    Form,
    /// Those, and JSON `{"args": {...}}`.
    Api,
}

/// A submission that passed every check, with the folder its run will use.
pub struct Intake {
    pub tool: Tool,
    pub run_id: String,
    pub dir: RunDir,
    pub submission: Submission,
    pub checked: Checked,
}

/// Why a submission did not become a run.
#[derive(Debug)]
pub enum Refused {
    /// Answered the same way by every route (403, 404, 400, 415, ...).
    Problem(Problem),
    /// Larger than the tool takes: a message for the form (or the field too large).
    TooLarge(Errors),
    /// Values that did not pass their checks, and what was sent (to show again).
    Invalid(Errors, Submission),
    /// The form's "Update choices" button (no JavaScript): show it again with the
    /// choices for what was sent, and run nothing.
    Refresh(Submission),
}

impl From<Problem> for Refused {
    fn from(p: Problem) -> Refused {
        Refused::Problem(p)
    }
}

/// How the API answers a refusal: JSON with the messages by field.
impl From<Refused> for Problem {
    fn from(refused: Refused) -> Problem {
        match refused {
            Refused::Problem(p) => p,
            Refused::TooLarge(errors) => Problem::TooLargeFields(errors),
            Refused::Invalid(errors, _) => Problem::Invalid(errors),
            Refused::Refresh(_) => Problem::Invalid(Errors::new()),
        }
    }
}

/// Before anyone is known: a declared body larger than any tool takes (the answer
/// reveals nothing about which tools exist), and cross-site browser requests.
pub fn precheck(state: &State, ctx: &Ctx) -> Result<(), Problem> {
    if ctx
        .content_length()
        .is_some_and(|n| n > largest_body_limit(state))
    {
        return Err(Problem::TooLarge);
    }
    if bearer(ctx).is_none() && !ctx.same_origin() {
        return Err(Problem::CrossSite);
    }
    Ok(())
}

/// Reads and checks a submission for tool `id`, which `authed` must be allowed to run
/// (404 otherwise).
pub async fn intake(
    state: &State,
    ctx: &Ctx,
    authed: &Authed,
    id: &str,
    body: impl BodyStream,
    bodies: Bodies,
) -> Result<Intake, Refused> {
    let tool = &allowed_tool(state, authed, id)?;
    let limit = body_limit(tool);
    if ctx.content_length().is_some_and(|n| n > limit) {
        return Err(Refused::TooLarge(form_too_large(tool)));
    }
    let csrf_first = matches!(authed.via, Via::Token(_)) || ctx.header("x-csrf-token").is_some();
    if csrf_first {
        authed.may_write(state, ctx, None)?;
    }
    let run_id = crate::runs::new_id();
    let dir = state
        .runs
        .new_dir(&run_id)
        .map_err(|e| Problem::storage("the run's folder", &e))?;
    let content_type = ctx.header(CONTENT_TYPE.as_str()).unwrap_or("");
    let body = body::with_idle_timeout(body, state.config.client_timeout);
    let submission = if content_type.starts_with("multipart/form-data") {
        read_multipart(tool, content_type, body, limit, &dir).await?
    } else {
        let bytes = body::read_all(body, FORM_LIMIT).await?;
        text_submission(tool, &bytes, content_type, bodies)?
    };
    if !csrf_first {
        authed.may_write(state, ctx, submission.csrf())?;
    }
    if bodies == Bodies::Form && submission.refresh() {
        return Err(Refused::Refresh(submission));
    }
    match check(state, tool, submission, &authed.user.name).await {
        (submission, Ok(checked)) => Ok(Intake {
            tool: tool.clone(),
            run_id,
            dir,
            submission,
            checked,
        }),
        (submission, Err(errors)) => Err(Refused::Invalid(errors, submission)),
    }
}

/// Checks `submission` against `tool` for `user`: against the options the server
/// computes now and the fields shown now (`options::prepare`), never against what the
/// browser was shown. What was sent for hidden fields is dropped from the submission
/// it gives back.
pub async fn check(
    state: &State,
    tool: &Tool,
    mut submission: Submission,
    user: &str,
) -> (Submission, Result<Checked, Errors>) {
    let prepared =
        crate::options::prepare(&state.options, tool, &submission.given(tool), user).await;
    let checked_tool = prepared.for_check(&mut submission);
    let checked = form::check(&checked_tool, &submission).map_err(|mut errors| {
        for (name, why) in &prepared.problems {
            if let Some(message) = errors.get_mut(name) {
                *message = format!("has no options: {why}");
            }
        }
        errors
    });
    (submission, checked)
}

/// A body without uploads: JSON `{"args": {...}}` (when `bodies` takes it) or a
/// urlencoded form.
pub(super) fn text_submission(
    tool: &Tool,
    bytes: &[u8],
    content_type: &str,
    bodies: Bodies,
) -> Result<Submission, Problem> {
    let json = bodies == Bodies::Api
        && (looks_like_json(bytes) || content_type.starts_with("application/json"));
    if json {
        json_submission(tool, bytes)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Ok(Submission {
            fields: body::parse_form(bytes)?,
            uploads: Vec::new(),
        })
    } else {
        Err(Problem::UnsupportedForm)
    }
}

/// An API body that is JSON whatever its `Content-Type` says (`curl -d '{...}'` sends
/// a form type), or empty.
fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|&b| b == b'{')
}

/// The most bytes a POST to this tool may carry: its uploads plus the text fields.
pub fn body_limit(tool: &Tool) -> u64 {
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

/// The most any tool takes: the cap before anyone is signed in.
fn largest_body_limit(state: &State) -> u64 {
    state
        .manifest()
        .tools
        .values()
        .map(body_limit)
        .max()
        .unwrap_or(FORM_LIMIT)
}

/// The form's message when a body is larger than `tool` takes.
fn form_too_large(tool: &Tool) -> Errors {
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
    let message = if files.is_empty() {
        "The form is larger than ftw accepts.".into()
    } else {
        format!("The upload is too large: {}.", files.join(", "))
    };
    let mut errors = Errors::new();
    errors.insert(FORM_ERROR.into(), message);
    errors
}

/// `{"args": {...}}` as form fields: strings as they are, numbers and booleans as text,
/// arrays one field per element, `null` left out. A bool or multiselect the caller
/// leaves out takes its default (in a form, leaving a box unticked is a choice; in
/// JSON, leaving a key out is not).
pub(super) fn json_submission(tool: &Tool, body: &[u8]) -> Result<Submission, Problem> {
    let body = if body.trim_ascii().is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    let parsed: Json = serde_json::from_slice(body).map_err(|_| Problem::BadJson)?;
    let args = match parsed.get("args") {
        None => serde_json::Map::new(),
        Some(Json::Object(map)) => map.clone(),
        Some(_) => return Err(Problem::BadJson),
    };
    if parsed
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k != "args"))
    {
        return Err(Problem::BadJson);
    }
    let mut fields = Vec::new();
    for (name, value) in &args {
        let mut push = |v: &Json| -> Result<(), Problem> {
            match v {
                Json::String(s) => fields.push((name.clone(), s.clone())),
                Json::Number(n) => fields.push((name.clone(), n.to_string())),
                Json::Bool(b) => fields.push((name.clone(), b.to_string())),
                Json::Null => {}
                _ => return Err(Problem::BadJson),
            }
            Ok(())
        };
        match value {
            Json::Array(items) => items.iter().try_for_each(&mut push)?,
            other => push(other)?,
        }
    }
    for arg in &tool.args {
        if args.contains_key(&arg.name) {
            continue;
        }
        if let Some(default @ (Value::Bool(_) | Value::Many(_))) = &arg.default {
            fields.extend(
                default
                    .texts()
                    .iter()
                    .map(|t| (arg.name.clone(), t.to_string())),
            );
        }
    }
    Ok(Submission {
        fields,
        uploads: Vec::new(),
    })
}

/// Reads a multipart body: text fields into memory (UTF-8 only), files straight to
/// disk under random names in the run's private `uploads/` folder, each within its
/// argument's `max_size`, and no more parts than the form can have.
async fn read_multipart<S>(
    tool: &Tool,
    content_type: &str,
    body: S,
    limit: u64,
    dir: &RunDir,
) -> Result<Submission, Refused>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Unpin + 'static,
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
    let unread = |e: multer::Error| -> Refused {
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
                    None => errors = form_too_large(tool),
                }
                Refused::TooLarge(errors)
            }
            multer::Error::StreamSizeExceeded { .. } => Refused::TooLarge(form_too_large(tool)),
            multer::Error::StreamReadFailed(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) =>
            {
                Refused::Problem(Problem::SlowClient)
            }
            _ => Refused::Problem(Problem::BadBody),
        }
    };
    let store_error = |e: std::io::Error| Refused::Problem(Problem::storage("an upload", &e));
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
        // The folder is made for the first upload: most runs take none.
        let uploads_dir = dir.make_uploads().map_err(store_error)?;
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
            // The last of the disk stays for ftw's records (see `runs::space`).
            if let Some(why) = crate::runs::nearly_full(uploads_dir) {
                return Err(Problem::StorageFull(format!("cannot store an upload: {why}")).into());
            }
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
