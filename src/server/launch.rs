//! Starting a run, shared by the form (`POST /tools/{id}`) and the API
//! (`POST /api/tools/{id}/runs`): body limits, reading multipart uploads into the run's
//! private folder, and turning a checked submission into a plan, a run and an audit
//! record.

use std::sync::Arc;

use futures_util::Stream;

use super::State;
use super::context::Ctx;
use super::identity::Authed;
use super::problem::Problem;
use crate::exec::{Plan, RunInfo};
use crate::form::{self, Checked, Errors, FORM_ERROR, Submission, Upload};
use crate::manifest::{Kind, Tool, Value};
use crate::runs::{NewRun, Refusal, Run, RunDir};

/// Largest urlencoded or JSON body, and the allowance for text fields beside uploads.
pub const FORM_LIMIT: u64 = 1024 * 1024;

/// Accepts a checked submission: plans the run, starts it, audits it. `via` says how
/// the caller signed in ("form", "session", "token:NAME") for the audit log.
#[allow(clippy::too_many_arguments)]
pub fn start(
    state: &State,
    ctx: &Ctx,
    authed: &Authed,
    tool: &Tool,
    run_id: String,
    dir: RunDir,
    checked: Checked,
    submission: &Submission,
    via: &str,
) -> Result<Arc<Run>, Problem> {
    let file_names: indexmap::IndexMap<String, String> = submission
        .uploads
        .iter()
        .map(|u| (u.field.clone(), u.client_name.clone()))
        .collect();
    let plan = Plan::new(
        tool,
        &checked.values,
        &RunInfo {
            id: &run_id,
            user: &authed.user.name,
            output_dir: &dir.output(),
            file_names: &file_names,
        },
    );
    let args = audit_args(tool, &checked.values, submission);
    let new = NewRun {
        tool_id: tool.id.clone(),
        tool_title: tool.title.clone(),
        user: authed.user.name.clone(),
        shown_args: checked.shown,
        rerun_query: rerun_query(tool, &checked.values),
        dir,
        max_output: tool.max_output,
        max_concurrent: tool.max_concurrent,
        plan,
    };
    let run = state
        .runs
        .start(run_id, new)
        .map_err(|refusal| match refusal {
            Refusal::QueueFull => Problem::QueueFull,
            Refusal::ShuttingDown => Problem::ShuttingDown,
            Refusal::Storage(why) => Problem::Internal(why),
        })?;
    state.audit.record(
        "run-start",
        serde_json::json!({
            "user": authed.user.name,
            "client": crate::audit::client(ctx.client),
            "via": via,
            "tool": tool.id,
            "run": run.id,
            "args": args,
        }),
    );
    state.metrics.run_started(&tool.id);
    Ok(run)
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

/// The most any tool takes: the cap before anyone is signed in, so the answer reveals
/// nothing about which tools exist or what they accept.
pub fn largest_body_limit(state: &State) -> u64 {
    state
        .manifest()
        .tools
        .values()
        .map(body_limit)
        .max()
        .unwrap_or(FORM_LIMIT)
}

/// Why a body was not read to its end.
pub enum Unread {
    Problem(Problem),
    /// Too large: the form is shown again with this message.
    TooLarge(Errors),
}

impl From<Problem> for Unread {
    fn from(p: Problem) -> Unread {
        Unread::Problem(p)
    }
}

pub fn too_large_message(tool: &Tool) -> String {
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
pub async fn read_multipart<S>(
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
