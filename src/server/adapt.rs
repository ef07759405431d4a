//! POST `/api/tools/{id}/options`: the options of a tool's `options_from` choices and
//! the fields hidden by `show_if`, for the values sent (urlencoded, as the form page's
//! script sends them, or JSON `{"args": {...}}`). The form page asks as fields change;
//! API clients can ask what a choice accepts. Runs commands, so it is a POST with the
//! rules of every API write: a bearer token, or the session with `X-CSRF-Token` from
//! the same origin. Answer: `{"fields": {"db": {"options": [{"value", "label"}],
//! "problem": null}}, "hidden": ["name"]}`.

use std::sync::Arc;

use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::{Map, Value as Json, json};
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::allowed_tool;
use super::body::{self, BodyStream};
use super::context::Ctx;
use super::intake::{self, Bodies, FORM_LIMIT};
use super::respond;

/// POST /api/tools/{id}/options
pub async fn options(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    body: impl BodyStream,
) -> Result<Response, Rejection> {
    intake::precheck(&state, &ctx)?;
    let caller = state.caller(&ctx).await?;
    let tool = allowed_tool(&state, &caller, &id)?;
    caller.may_write(&state, &ctx, None)?;
    let body = body::with_idle_timeout(body, state.config.client_timeout);
    let bytes = body::read_all(body, FORM_LIMIT).await?;
    let content_type = ctx.header(CONTENT_TYPE.as_str()).unwrap_or("");
    let submission = intake::text_submission(&tool, &bytes, content_type, Bodies::Api)?;
    let prepared = crate::options::prepare(
        &state.options,
        &tool,
        &submission.given(&tool),
        &caller.user.name,
    )
    .await;
    let mut fields = Map::new();
    for arg in tool.args.iter().filter(|a| a.options_from.is_some()) {
        let options = prepared
            .choices
            .get(&arg.name)
            .map(|c| json!(c.as_slice()))
            .unwrap_or_else(|| json!([]));
        fields.insert(
            arg.name.clone(),
            json!({ "options": options, "problem": prepared.problems.get(&arg.name) }),
        );
    }
    let hidden: Vec<&str> = tool
        .args
        .iter()
        .filter(|a| prepared.hidden.contains(&a.name))
        .map(|a| a.name.as_str())
        .collect();
    let answer = json!({ "fields": Json::Object(fields), "hidden": hidden });
    Ok(caller.finish(respond::json(StatusCode::OK, &answer)))
}
