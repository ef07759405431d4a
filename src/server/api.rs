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
use std::time::{Duration, Instant};

use bytes::Buf;
use futures_util::Stream;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::{Value as Json, json};
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::context::Ctx;
use super::identity::Authed;
use super::launch::{self, FORM_LIMIT, Unread};
use super::problem::Problem;
use super::respond;
use super::run_pages::{self, Format};
use crate::form::{self, Submission};
use crate::manifest::{Arg, Kind, Tool, Value};
use crate::runs::{Run, Status};

/// Who is calling: the user, and whether by token (no CSRF needed) or session.
pub struct Caller {
    pub authed: Authed,
    /// `token:NAME` or `session`, for the audit log.
    pub via: String,
}

/// The caller, from a bearer token or the session cookie; `401` otherwise. Bad tokens
/// count as failed sign-ins of the client's address.
pub fn caller(state: &State, ctx: &Ctx) -> Result<Caller, Rejection> {
    if let Some(presented) = ctx.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) {
        let manifest = state.manifest();
        let policy = manifest.auth.throttle;
        if let Err(wait) = state
            .throttle
            .check_address(&policy, ctx.client, Instant::now())
        {
            state.metrics.sign_in("throttled");
            return Err(Problem::Throttled(wait).into());
        }
        let Some(token) = crate::auth::tokens::find(&manifest.auth.tokens, presented.trim()) else {
            state.metrics.sign_in("failure");
            state.audit.record(
                "token-failed",
                json!({ "client": crate::audit::client(ctx.client) }),
            );
            let _ = state
                .throttle
                .fail_address(&policy, ctx.client, Instant::now());
            return Err(Problem::Unauthorized.into());
        };
        let user = manifest
            .auth
            .users
            .get(&token.user)
            .cloned()
            .unwrap_or(crate::manifest::User {
                name: token.user.clone(),
                password_hash: String::new(),
                groups: Vec::new(),
                totp: None,
            });
        let id =
            crate::auth::csrf::derive_id(&state.config.keys.csrf, &format!("token:{}", token.name));
        let session = crate::auth::session::Session {
            user: user.name.clone(),
            issued: 0,
            active: 0,
            id,
            fingerprint: [0; 16],
        };
        return Ok(Caller {
            authed: Authed {
                csrf: String::new(),
                session,
                user,
                refresh: None,
                forwarded: true,
            },
            via: format!("token:{}", token.name),
        });
    }
    match state.authenticate(ctx) {
        Some(authed) => Ok(Caller {
            authed,
            via: "session".into(),
        }),
        None => Err(Problem::Unauthorized.into()),
    }
}

/// For POSTs: a session caller must send `X-CSRF-Token` and pass the origin check.
fn check_write(state: &State, ctx: &Ctx, caller: &Caller) -> Result<(), Rejection> {
    if caller.via != "session" {
        return Ok(());
    }
    if !ctx.same_origin() {
        return Err(Problem::CrossSite.into());
    }
    let token = ctx.header("x-csrf-token").unwrap_or("");
    if !caller.authed.csrf_ok(state, token) {
        return Err(Problem::BadCsrf.into());
    }
    Ok(())
}

fn ok(status: StatusCode, body: Json, caller: &Caller) -> Response {
    caller.authed.finish(respond::json(status, &body))
}

/// GET /api/tools
pub async fn tools(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = caller(&state, &ctx)?;
    let manifest = state.manifest();
    let tools: Vec<Json> = manifest
        .tools
        .values()
        .filter(|t| t.allows(&caller.authed.user.name, &caller.authed.user.groups))
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
        "args": args_schema(tool),
    })
}

/// The JSON Schema of a tool's `args` object.
pub fn args_schema(tool: &Tool) -> Json {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for arg in &tool.args {
        properties.insert(arg.name.clone(), arg_schema(arg));
        if arg.required && arg.default.is_none() && !matches!(arg.kind, Kind::Bool { .. }) {
            required.push(arg.name.clone());
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn arg_schema(arg: &Arg) -> Json {
    let mut schema = match &arg.kind {
        Kind::Text(r) | Kind::Textarea(r) | Kind::Password(r) | Kind::Email(r) | Kind::Url(r) => {
            let mut s = json!({ "type": "string" });
            if let Some(n) = r.min_length {
                s["minLength"] = json!(n);
            }
            if let Some(n) = r.max_length {
                s["maxLength"] = json!(n);
            }
            if let Some(p) = &r.pattern {
                s["pattern"] = json!(format!("^(?:{})$", p.source));
            }
            match arg.kind {
                Kind::Email(_) => s["format"] = json!("email"),
                Kind::Url(_) => s["format"] = json!("uri"),
                Kind::Password(_) => s["writeOnly"] = json!(true),
                _ => {}
            }
            s
        }
        Kind::Int { min, max, .. } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Float { min, max, .. } => json!({ "type": "number", "minimum": min, "maximum": max }),
        Kind::Bool { .. } => json!({ "type": "boolean" }),
        Kind::Select { options } => json!({ "type": "string", "enum": options }),
        Kind::Multiselect { options, min, max } => json!({
            "type": "array",
            "items": { "type": "string", "enum": options },
            "uniqueItems": true,
            "minItems": min,
            "maxItems": max,
        }),
        Kind::Date(_) => json!({ "type": "string", "format": "date" }),
        Kind::Time(_) => json!({ "type": "string", "pattern": "^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$" }),
        Kind::Datetime(_) => json!({
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?$"
        }),
        Kind::Color => json!({ "type": "string", "pattern": "^#[0-9a-fA-F]{6}$" }),
        Kind::File { .. } => json!({
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "send the file as a part of a multipart/form-data request"
        }),
    };
    // Drop the `null`s of bounds that are not set.
    if let Json::Object(map) = &mut schema {
        map.retain(|_, v| !v.is_null());
        map.insert("title".into(), json!(arg.label));
        if let Some(help) = &arg.help {
            map.insert("description".into(), json!(help));
        }
        match &arg.default {
            Some(Value::One(v)) => {
                let v = match arg.kind {
                    Kind::Int { .. } => v.parse::<i64>().map(Json::from).unwrap_or(json!(v)),
                    Kind::Float { .. } => v.parse::<f64>().map(Json::from).unwrap_or(json!(v)),
                    _ => json!(v),
                };
                map.insert("default".into(), v);
            }
            Some(Value::Many(vs)) => {
                map.insert("default".into(), json!(vs));
            }
            Some(Value::Bool(b)) => {
                map.insert("default".into(), json!(b));
            }
            _ => {}
        }
    }
    schema
}

/// `{"args": {...}}` as form fields: strings as they are, numbers and booleans as text,
/// arrays one field per element, `null` left out. A bool or multiselect the caller
/// leaves out takes its default (in a form, leaving a box unticked is a choice; in
/// JSON, leaving a key out is not).
fn json_submission(tool: &Tool, body: &[u8]) -> Result<Submission, Problem> {
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
        match &arg.default {
            Some(Value::Bool(b)) => fields.push((arg.name.clone(), b.to_string())),
            Some(Value::Many(vs)) => {
                fields.extend(vs.iter().map(|v| (arg.name.clone(), v.clone())))
            }
            _ => {}
        }
    }
    Ok(Submission {
        fields,
        uploads: Vec::new(),
    })
}

/// POST /api/tools/{id}/runs[?wait=true]
pub async fn create<S, B>(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    query: std::collections::HashMap<String, String>,
    body: S,
) -> Result<Response, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin + 'static,
    B: Buf + Send + 'static,
{
    let declared = ctx.content_length();
    if declared.is_some_and(|n| n > launch::largest_body_limit(&state)) {
        return Err(Problem::TooLarge.into());
    }
    let caller = caller(&state, &ctx)?;
    check_write(&state, &ctx, &caller)?;
    let tool = super::tools::allowed_tool(&state, &caller.authed, &id)?;
    let limit = launch::body_limit(&tool);
    if declared.is_some_and(|n| n > limit) {
        return Err(Problem::TooLarge.into());
    }

    let run_id = crate::auth::b64(&crate::auth::random::<16>());
    let dir = state
        .runs
        .new_dir(&run_id)
        .map_err(|e| Problem::Internal(format!("cannot make the run folder: {e}")))?;
    let content_type = ctx.header(CONTENT_TYPE.as_str()).unwrap_or("").to_string();
    let body = super::body::with_idle_timeout(body, state.config.client_timeout);
    let submission = if content_type.starts_with("multipart/form-data") {
        match launch::read_multipart(&tool, &content_type, body, limit, &dir.uploads()).await {
            Ok(s) => s,
            Err(Unread::Problem(p)) => return Err(p.into()),
            Err(Unread::TooLarge(errors)) => return Err(Problem::Invalid(errors).into()),
        }
    } else {
        let bytes = super::body::read_all(body, FORM_LIMIT).await?;
        let looks_json = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|&b| b == b'{');
        if looks_json || content_type.starts_with("application/json") {
            // JSON, whatever the Content-Type says (`curl -d '{...}'` sends a form type).
            let bytes = if bytes.trim_ascii().is_empty() {
                b"{}".to_vec()
            } else {
                bytes
            };
            json_submission(&tool, &bytes)?
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            Submission {
                fields: super::body::parse_form(&bytes)?,
                uploads: Vec::new(),
            }
        } else {
            return Err(Problem::UnsupportedForm.into());
        }
    };
    let checked = form::check(&tool, &submission).map_err(Problem::Invalid)?;
    let run = launch::start(
        &state,
        &ctx,
        &caller.authed,
        &tool,
        run_id,
        dir,
        checked,
        &submission,
        &caller.via,
    )?;

    if query.get("wait").is_some_and(|w| w == "true" || w == "1") {
        // Bounded by the tool's timeout (and the kill grace after it).
        let limit = tool.timeout + crate::exec::KILL_GRACE + Duration::from_secs(5);
        let mut changes = run.watch();
        let finished = async {
            while !run.status().is_finished() {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(limit, finished).await;
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
    let files = run_pages::files_json(run, &snap.files, &state.base);
    let started = time::OffsetDateTime::from(run.created)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut body = json!({
        "id": run.id,
        "tool": run.tool_id,
        "user": run.user,
        "status": snap.status.word(),
        "exit_code": snap.status.exit_code(),
        "signal": snap.status.signal(),
        "error": match &snap.status { Status::Error(why) => Some(why.clone()), _ => None },
        "started": started,
        "duration_ms": snap.duration.map(|d| d.as_millis() as u64),
        "output_cut": snap.dropped > 0,
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

/// GET /api/runs/{id}/output: the whole output as text.
pub async fn output(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = caller(&state, &ctx)?;
    let run = run_pages::visible(&state, &caller.authed, &id)?;
    Ok(caller.authed.finish(run_pages::output_download(&run)?))
}

/// GET /api/runs/{id}
pub async fn get(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = caller(&state, &ctx)?;
    let run = run_pages::visible(&state, &caller.authed, &id)?;
    Ok(ok(StatusCode::OK, run_json(&state, &run, true), &caller))
}

/// GET /api/runs/{id}/events: the output as text, then `end`.
pub async fn events(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = caller(&state, &ctx)?;
    let run = run_pages::visible(&state, &caller.authed, &id)?;
    let r = run_pages::event_stream(run, state.base.clone(), Format::Text);
    Ok(caller.authed.finish(r))
}

/// POST /api/runs/{id}/cancel
pub async fn cancel(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = caller(&state, &ctx)?;
    check_write(&state, &ctx, &caller)?;
    let run = run_pages::visible(&state, &caller.authed, &id)?;
    run.cancel();
    state.audit.record(
        "cancel",
        json!({
            "user": caller.authed.user.name,
            "client": crate::audit::client(ctx.client),
            "via": caller.via,
            "tool": run.tool_id,
            "run": run.id,
        }),
    );
    let body = json!({ "id": run.id, "status": run.status().word() });
    Ok(ok(StatusCode::ACCEPTED, body, &caller))
}

/// GET /api/openapi.json: the API, with each of the caller's tools as its own path and
/// argument schema.
pub async fn openapi(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let caller = caller(&state, &ctx)?;
    let manifest = state.manifest();
    let tools: Vec<&Tool> = manifest
        .tools
        .values()
        .filter(|t| t.allows(&caller.authed.user.name, &caller.authed.user.groups))
        .collect();
    let doc = super::openapi::document(&state, &manifest.title, &tools);
    Ok(ok(StatusCode::OK, doc, &caller))
}
