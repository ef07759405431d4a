//! Starting and stopping runs, shared by the form and the API: a checked submission
//! becomes a plan (argv and environment, with the facts only the server knows, such as
//! who started it), the run is registered and started, and each start and cancel is
//! audited and counted.

use std::sync::Arc;

use super::State;
use super::context::Ctx;
use super::identity::Authed;
use super::intake::Intake;
use super::problem::Problem;
use crate::exec::{Plan, RunInfo};
use crate::form::Submission;
use crate::manifest::{Kind, Tool, Value};
use crate::runs::{NewRun, Refusal, Run};

/// Starts the run of an intake: plans it, records and starts it, audits it.
pub async fn start(
    state: &State,
    ctx: &Ctx,
    authed: &Authed,
    intake: Intake,
) -> Result<Arc<Run>, Problem> {
    let starter = Starter {
        user: &authed.user.name,
        via: authed.via.label(),
        client: crate::audit::client(ctx.client),
        schedule: None,
    };
    start_for(state, &starter, intake).await
}

/// Who starts a run, for its record and the audit log.
pub struct Starter<'a> {
    pub user: &'a str,
    /// `session`, `token:NAME`, `schedule`, ...
    pub via: String,
    /// The client's address as the audit log writes it (`null` for a schedule).
    pub client: serde_json::Value,
    /// The schedule's name, for a scheduled run.
    pub schedule: Option<&'a str>,
}

/// `start`, for any starter (a request's user, or a schedule).
pub async fn start_for(
    state: &State,
    starter: &Starter<'_>,
    intake: Intake,
) -> Result<Arc<Run>, Problem> {
    let Intake {
        tool,
        run_id,
        dir,
        submission,
        checked,
    } = intake;
    let file_names: indexmap::IndexMap<String, String> = submission
        .uploads
        .iter()
        .map(|u| (u.field.clone(), u.client_name.clone()))
        .collect();
    let mut plan = Plan::new(
        &tool,
        &checked.values,
        &RunInfo {
            id: &run_id,
            output_dir: dir.output(),
            file_names: &file_names,
        },
    );
    plan.env.push(("FTW_USER".into(), starter.user.to_string()));
    let args = audit_args(&tool, &checked.values, &submission);
    let new = NewRun {
        tool_id: tool.id.clone(),
        tool_title: tool.title.clone(),
        user: starter.user.to_string(),
        via: starter.via.clone(),
        args: checked.args,
        dir,
        max_output: tool.max_output,
        max_concurrent: tool.max_concurrent,
        plan,
    };
    let run = state
        .runs
        .start(run_id, new)
        .await
        .map_err(|refusal| match refusal {
            Refusal::QueueFull => Problem::QueueFull,
            Refusal::UserBusy(_) => Problem::UserBusy,
            Refusal::ShuttingDown => Problem::ShuttingDown,
            Refusal::Storage(e) if e.full => Problem::StorageFull(e.message),
            Refusal::Storage(e) => Problem::Internal(e.message),
        })?;
    let mut record = serde_json::json!({
        "user": starter.user,
        "client": starter.client,
        "via": starter.via,
        "tool": tool.id,
        "run": run.id,
        "args": args,
    });
    if let Some(name) = starter.schedule {
        record["schedule"] = serde_json::json!(name);
    }
    state.audit.record("run-start", record);
    state.metrics.run_started(&tool.id);
    let manifest = state.manifest();
    let targets = tool
        .notify
        .iter()
        .filter_map(|name| Some((name.clone(), manifest.notify.get(name)?.clone())))
        .collect();
    super::notify::when_done(
        Arc::clone(&run),
        targets,
        tool.notify_on,
        state.base.clone(),
        Arc::clone(&state.audit),
    );
    Ok(run)
}

/// Starts `tool` for `starter` with arguments as an API client sends them
/// (`{"args": {...}}`): checked like an API submission, options from commands and
/// conditions included, after the starter's access to the tool. For runs no request
/// starts (schedules) or that a request starts for someone else (webhooks).
pub async fn start_json(
    state: &State,
    tool: &Tool,
    starter: &Starter<'_>,
    body: &serde_json::Value,
) -> Result<Arc<Run>, Problem> {
    let manifest = state.manifest();
    let user = manifest
        .auth
        .users
        .get(starter.user)
        .cloned()
        .unwrap_or_else(|| crate::manifest::User::synthesized(starter.user));
    if !super::access::may_run(&manifest, &user, &tool.id) {
        return Err(Problem::Internal(format!(
            "{} may not run {}",
            user.name, tool.id
        )));
    }
    let submission = super::intake::json_submission(tool, body.to_string().as_bytes())?;
    let (submission, checked) = super::intake::check(state, tool, submission, &user.name).await;
    let checked = checked.map_err(Problem::Invalid)?;
    let run_id = crate::runs::new_id();
    let dir = state
        .runs
        .new_dir(&run_id)
        .map_err(|e| Problem::storage("the run's folder", &e))?;
    let intake = Intake {
        tool: tool.clone(),
        run_id,
        dir,
        submission,
        checked,
    };
    start_for(state, starter, intake).await
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
        let Some(value) = values.get(&arg.name).filter(|v| **v != Value::Absent) else {
            continue;
        };
        let shown = match &arg.kind {
            Kind::Password(_) => serde_json::json!("***"),
            Kind::File { .. } => serde_json::json!(
                submission
                    .uploads
                    .iter()
                    .find(|u| u.field == arg.name)
                    .map(|u| u.client_name.clone())
            ),
            _ => value.to_json(),
        };
        map.insert(arg.name.clone(), shown);
    }
    serde_json::Value::Object(map)
}

/// How long a cancel waits for the run to end before it answers: the kill grace and a
/// moment, so the answer (and the page it leads to) usually shows how the run ended.
pub const CANCEL_WAIT: std::time::Duration =
    crate::exec::KILL_GRACE.saturating_add(std::time::Duration::from_secs(1));

/// Asks a run to stop (SIGTERM to its group, SIGKILL after the grace), audits who
/// asked, and waits at most `CANCEL_WAIT` for it to end. Returns whether it has.
pub async fn cancel(state: &State, ctx: &Ctx, authed: &Authed, run: &Run) -> bool {
    run.cancel();
    state.audit.record(
        "cancel",
        serde_json::json!({
            "user": authed.user.name,
            "client": crate::audit::client(ctx.client),
            "via": authed.via.label(),
            "tool": run.tool_id,
            "run": run.id,
        }),
    );
    tokio::time::timeout(CANCEL_WAIT, run.finished())
        .await
        .is_ok()
}
