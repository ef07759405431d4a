//! The JSON API under `/api/`: list tools (with JSON Schemas of their arguments), start
//! a run (and optionally wait for it), read a run, follow its output, cancel it, and the
//! OpenAPI description of all that.
//!
//! Callers authenticate with `Authorization: Bearer TOKEN` (tokens from `ftw gen-token`,
//! no CSRF token needed: a browser never sends that header on its own) or with the
//! session cookie, in which case every POST needs the session's `X-CSRF-Token` and must
//! pass the same-origin check. The access rules are the pages' rules: a tool you may not
//! run, or a run you may not see, is 404. Errors are JSON: `{"error": "..."}`, and
//! `422` adds `"fields": {"name": "message"}`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value as Json, json};
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::{tools_for, visible_run};
use super::body::BodyStream;
use super::context::Ctx;
use super::download::{self, files_json};
use super::format::rfc3339;
use super::identity::Authed;
use super::intake::{self, Bodies};
use super::problem::Problem;
use super::respond;
use super::sse::{self, Format};
use crate::manifest::Tool;
use crate::runs::{Run, Status};

fn ok(status: StatusCode, body: Json, caller: &Authed) -> Response {
    caller.finish(respond::json(status, &body))
}

/// GET /api/tools
pub async fn tools(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    let manifest = state.manifest();
    let tools: Vec<Json> = tools_for(&manifest, &caller.user)
        .map(|t| tool_json(&state, t))
        .collect();
    Ok(ok(StatusCode::OK, json!({ "tools": tools }), &caller))
}

fn tool_json(state: &State, tool: &Tool) -> Json {
    json!({
        "id": tool.id,
        "title": tool.title,
        "description": tool.description,
        "group": tool.group,
        "runs": format!("{}api/tools/{}/runs", state.base, tool.id),
        "args": super::schema::args_schema(tool),
    })
}

/// POST /api/tools/{id}/runs[?wait=true]
pub async fn create(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    query: std::collections::HashMap<String, String>,
    body: impl BodyStream,
) -> Result<Response, Rejection> {
    intake::precheck(&state, &ctx)?;
    let caller = state.caller(&ctx).await?;
    let intake = intake::intake(&state, &ctx, &caller, &id, body, Bodies::Api)
        .await
        .map_err(Problem::from)?;
    // Bounded by the tool's timeout (and the kill grace after it).
    let wait_at_most = intake.tool.timeout + crate::exec::KILL_GRACE + Duration::from_secs(5);
    let run = super::launch::start(&state, &ctx, &caller, intake).await?;

    if query.get("wait").is_some_and(|w| w == "true" || w == "1") {
        let limit = wait_at_most;
        let _ = tokio::time::timeout(limit, run.finished()).await;
        return Ok(ok(
            StatusCode::CREATED,
            run_json(&state, &run, true),
            &caller,
        ));
    }
    let body = json!({
        "id": run.id,
        "status": run.status().word(),
        "url": format!("{}api/runs/{}", state.base, run.id),
        "page": format!("{}runs/{}", state.base, run.id),
    });
    Ok(ok(StatusCode::CREATED, body, &caller))
}

/// A run as JSON. `exit_code` is always there: a number once the program exited (0
/// included), `null` before, or when it was killed.
pub fn run_json(state: &State, run: &Run, with_output: bool) -> Json {
    let snap = run.snapshot();
    let files = files_json(run, &snap.files, &state.base);
    let mut body = json!({
        "id": run.id,
        "tool": run.tool_id,
        "user": run.user,
        "status": snap.status.word(),
        "exit_code": snap.status.exit_code(),
        "signal": snap.status.signal(),
        "error": match &snap.status {
            Status::Error(why) => Some(why.clone()),
            Status::Interrupted(..) => Some(super::format::status_text(&snap.status)),
            _ => None,
        },
        "started": rfc3339(run.created),
        "duration_ms": snap.duration.map(|d| d.as_millis() as u64),
        "output_cut": snap.cut.is_some(),
        "output_cut_reason": snap.cut,
        "files": files,
        "url": format!("{}api/runs/{}", state.base, run.id),
        "page": format!("{}runs/{}", state.base, run.id),
    });
    if with_output {
        body["output_bytes"] = json!(snap.output_len);
        body["output_url"] = json!(format!("{}api/runs/{}/output", state.base, run.id));
        body["output"] = if snap.output_len <= INLINE_OUTPUT {
            // Exactly the bytes `output_bytes` counts: a busy run may have printed
            // megabytes more since the snapshot.
            json!(String::from_utf8_lossy(&run.output_upto(snap.output_len)))
        } else {
            Json::Null
        };
    }
    body
}

/// Output up to this size comes inline in a run's JSON; longer output is `null` there
/// and read from `output_url`, so a JSON answer never holds megabytes.
pub const INLINE_OUTPUT: u64 = 1024 * 1024;

/// GET /api/runs[?tool=&status=&user=&since=&until=&limit=&cursor=]: the runs this
/// caller may see, newest first; `next` is the cursor of the following page.
pub async fn list(
    state: Arc<State>,
    ctx: Ctx,
    query: std::collections::HashMap<String, String>,
) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    let page = super::history::page(&state, &caller, &query, "cursor").await?;
    let runs: Vec<Json> = page.rows.iter().map(|r| record_json(&state, r)).collect();
    let next_url = page.next.as_ref().map(|cursor| {
        let filters = page.filters.query_string();
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("{}api/runs?{filters}{sep}cursor={cursor}", state.base)
    });
    let body = json!({ "runs": runs, "next": page.next, "next_url": next_url });
    Ok(ok(StatusCode::OK, body, &caller))
}

/// A run of the history as JSON: what `GET /api/runs/{id}` says without its output
/// and files, plus the arguments as they were shown (passwords `***`).
fn record_json(state: &State, r: &crate::store::RunRecord) -> Json {
    let args: serde_json::Map<String, Json> = r
        .args
        .iter()
        .filter(|a| !a.shown.is_empty())
        .map(|a| (a.name.clone(), json!(a.shown)))
        .collect();
    json!({
        "id": r.id,
        "tool": r.tool,
        "user": r.user,
        "via": r.via,
        "args": args,
        "status": r.status.word(),
        "exit_code": r.status.exit_code(),
        "signal": r.status.signal(),
        "started": rfc3339(r.created),
        "duration_ms": r.duration.map(|d| d.as_millis() as u64),
        "url": format!("{}api/runs/{}", state.base, r.id),
        "page": format!("{}runs/{}", state.base, r.id),
    })
}

/// GET /api/runs/{id}/output: the whole output as text.
pub async fn output(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    let run = visible_run(&state, &caller, &id).await?;
    Ok(caller.finish(download::output(run)))
}

/// GET /api/runs/{id}
pub async fn get(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    let run = visible_run(&state, &caller, &id).await?;
    Ok(ok(StatusCode::OK, run_json(&state, &run, true), &caller))
}

/// GET /api/runs/{id}/events: the output as text, then `end`.
pub async fn events(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    let run = visible_run(&state, &caller, &id).await?;
    let slot = state.streams.open(&caller.user.name)?;
    let r = sse::event_stream(run, state.base.clone(), Format::Text, slot);
    Ok(caller.finish(r))
}

/// POST /api/runs/{id}/cancel
pub async fn cancel(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    caller.may_write(&state, &ctx, None)?;
    let run = visible_run(&state, &caller, &id).await?;
    if super::launch::cancel(&state, &ctx, &caller, &run).await {
        return Ok(ok(StatusCode::OK, run_json(&state, &run, false), &caller));
    }
    // Still stopping (a tool that takes its time over SIGTERM): say so.
    let body = json!({ "id": run.id, "status": run.status().word() });
    Ok(ok(StatusCode::ACCEPTED, body, &caller))
}

/// GET /api/openapi.json: the API, with each of the caller's tools as its own path and
/// argument schema.
pub async fn openapi(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = state.caller(&ctx).await?;
    let manifest = state.manifest();
    let tools: Vec<&Tool> = tools_for(&manifest, &caller.user).collect();
    let doc = super::openapi::document(&state, &manifest.title, &tools);
    Ok(ok(StatusCode::OK, doc, &caller))
}
