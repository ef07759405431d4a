//! POST `/api/hooks/{tool}`: a signed delivery starts the tool as the webhook's user.
//! In order, cheapest first: the tool has a webhook (else 404, like an unknown tool),
//! the address is not blocked (failed signatures count against it, as bad tokens do),
//! the body fits `max_body` (413), the signature is right, compared in constant time
//! (401, audited), a signed timestamp is inside `replay_window`, each argument is taken
//! from the payload, a header or the query, the delivery was not seen before (its
//! signature; 409, audited), and the values are checked like API values (422 with the
//! field: a payload
//! path that points at an object is not a value). Answer: `202` with the run, or with
//! `?wait=true` the finished run.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use http::StatusCode;
use serde_json::{Map, Value as Json, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::body::{self, BodyStream};
use super::context::Ctx;
use super::launch::{Starter, start_json};
use super::problem::Problem;
use super::respond;
use crate::form::Errors;
use crate::manifest::{Signature, Tool, ValueSource, Webhook};

/// POST /api/hooks/{tool}[?wait=true]
pub async fn deliver(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    query: std::collections::HashMap<String, String>,
    body: impl BodyStream,
) -> Result<Response, Rejection> {
    let manifest = state.manifest();
    let tool = manifest
        .tools
        .get(&id)
        .filter(|t| t.webhook.is_some())
        .ok_or(Problem::NotFound)?
        .clone();
    let hook = tool.webhook.as_ref().expect("filtered");
    let policy = manifest.auth.throttle;
    if let Some(wait) = state
        .throttle
        .address_blocked(&policy, ctx.client, Instant::now())
        .await
    {
        return Err(Problem::Throttled(wait).into());
    }
    if ctx.content_length().is_some_and(|n| n > hook.max_body) {
        return Err(Problem::TooLarge.into());
    }
    let body = body::with_idle_timeout(body, state.config.client_timeout);
    let bytes = body::read_all(body, hook.max_body).await?;
    if let Err(why) = verify(hook, &ctx, &bytes) {
        refuse(&state, &ctx, &tool, "webhook-refused", why, true).await;
        return Ok(problem(
            StatusCode::UNAUTHORIZED,
            &format!("The delivery was refused: {why}."),
        ));
    }
    let args = match arguments(hook, &ctx, &query, &bytes) {
        Ok(args) => args,
        Err(errors) => return Err(Problem::Invalid(errors).into()),
    };
    let delivery = delivery_key(hook, &ctx).map(|key| format!("{}/{key}", tool.id));
    if let Some(key) = &delivery {
        let now = crate::store::unix_ms(SystemTime::now());
        let first = state
            .store
            .first_delivery(key, now)
            .await
            .map_err(|e| Problem::stored("the delivery", &e))?;
        if !first {
            refuse(
                &state,
                &ctx,
                &tool,
                "webhook-replayed",
                "this delivery was received before",
                false,
            )
            .await;
            return Ok(problem(
                StatusCode::CONFLICT,
                "This delivery was received before; it does not run twice.",
            ));
        }
    }
    let starter = Starter {
        user: &hook.user,
        via: "webhook".into(),
        client: crate::audit::client(ctx.client),
        schedule: None,
    };
    let run = match start_json(&state, &tool, &starter, &json!({ "args": args })).await {
        Ok(run) => run,
        Err(problem) => {
            // Not run (a value that does not fit, ftw busy): the sender may try again.
            if let Some(key) = &delivery
                && let Err(e) = state.store.forget_delivery(key).await
            {
                tracing::error!("cannot forget the delivery that did not run: {e}");
            }
            return Err(problem.into());
        }
    };
    if query.get("wait").is_some_and(|w| w == "true" || w == "1") {
        let limit = tool.timeout + crate::exec::KILL_GRACE + Duration::from_secs(5);
        let _ = tokio::time::timeout(limit, run.finished()).await;
        return Ok(respond::json(
            StatusCode::OK,
            &super::api::run_json(&state, &run, true),
        ));
    }
    let answer = json!({
        "id": run.id,
        "status": run.status().word(),
        "url": format!("{}api/runs/{}", state.base, run.id),
        "page": format!("{}runs/{}", state.base, run.id),
    });
    Ok(respond::json(StatusCode::ACCEPTED, &answer))
}

fn problem(status: StatusCode, message: &str) -> Response {
    respond::json(status, &json!({ "error": message }))
}

/// Audits a refused delivery; a bad signature also counts against the address.
async fn refuse(state: &State, ctx: &Ctx, tool: &Tool, event: &str, why: &str, failure: bool) {
    tracing::warn!(tool = %tool.id, client = %ctx.client, "webhook delivery refused: {why}");
    state.audit.record(
        event,
        json!({ "tool": tool.id, "client": crate::audit::client(ctx.client), "reason": why }),
    );
    if failure {
        let policy = state.manifest().auth.throttle;
        if let Ok(attempt) = state
            .throttle
            .begin_address(&policy, ctx.client, Instant::now())
            .await
        {
            let _ = attempt.failed(Instant::now()).await;
        }
    }
}

/// Whether the delivery proves it knows the secret (and, when signed, is recent).
fn verify(hook: &Webhook, ctx: &Ctx, body: &[u8]) -> Result<(), &'static str> {
    match &hook.signature {
        Signature::GitLab => {
            let given = ctx
                .header("x-gitlab-token")
                .ok_or("no X-Gitlab-Token header")?;
            if bool::from(given.as_bytes().ct_eq(&hook.secret)) {
                Ok(())
            } else {
                Err("wrong X-Gitlab-Token")
            }
        }
        Signature::GitHub => {
            let given = ctx
                .header("x-hub-signature-256")
                .ok_or("no X-Hub-Signature-256 header")?;
            check_hmac(&hook.secret, &[body], given)
        }
        Signature::Hmac {
            header,
            timestamp_header,
        } => {
            let given = ctx.header(header).ok_or("no signature header")?;
            match timestamp_header {
                None => check_hmac(&hook.secret, &[body], given),
                Some(name) => {
                    let stamp = ctx.header(name).ok_or("no timestamp header")?;
                    let at: i64 = stamp
                        .trim()
                        .parse()
                        .map_err(|_| "the timestamp is not a Unix time")?;
                    check_hmac(&hook.secret, &[stamp.trim().as_bytes(), b".", body], given)?;
                    let now = crate::store::unix_ms(SystemTime::now()) / 1000;
                    if now.abs_diff(at) > hook.replay_window.as_secs() {
                        return Err("the signed timestamp is outside the replay window");
                    }
                    Ok(())
                }
            }
        }
    }
}

/// `given` (`sha256=<hex>` or `<hex>`) is the HMAC-SHA256 of `parts` under `secret`;
/// compared in constant time by the `hmac` crate.
fn check_hmac(secret: &[u8], parts: &[&[u8]], given: &str) -> Result<(), &'static str> {
    let hex = given.trim().strip_prefix("sha256=").unwrap_or(given.trim());
    let Some(bytes) = from_hex(hex) else {
        return Err("the signature is not hex");
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(&bytes).map_err(|_| "wrong signature")
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What makes a delivery unique: its signature, which only the secret's holder can
/// make, normalised to lower-case hex (the same bytes written another way are the same
/// delivery); `t:` when it covers a timestamp (no use keeping it past the window),
/// `m:` when it covers the body alone (kept). Headers such as `X-GitHub-Delivery` are
/// not signed, so a replay could change them: they are not used. GitLab's token signs
/// nothing: its deliveries cannot be told from replays.
fn delivery_key(hook: &Webhook, ctx: &Ctx) -> Option<String> {
    let (header, kind) = match &hook.signature {
        Signature::GitLab => return None,
        Signature::GitHub => ("x-hub-signature-256", "m"),
        Signature::Hmac {
            header,
            timestamp_header,
        } => (
            header.as_str(),
            if timestamp_header.is_some() { "t" } else { "m" },
        ),
    };
    let given = ctx.header(header)?.trim();
    let mac = from_hex(given.strip_prefix("sha256=").unwrap_or(given))?;
    Some(format!("{kind}:{}", crate::auth::hex(&mac)))
}

/// The arguments from the delivery, as an API client sends them; or, per argument,
/// why its source has no usable value.
fn arguments(
    hook: &Webhook,
    ctx: &Ctx,
    query: &std::collections::HashMap<String, String>,
    body: &[u8],
) -> Result<Map<String, Json>, Errors> {
    let needs_payload = hook
        .args
        .values()
        .any(|s| matches!(s, ValueSource::Payload(_)));
    let payload: Option<Json> = if needs_payload {
        serde_json::from_slice(body).ok()
    } else {
        None
    };
    let mut args = Map::new();
    let mut errors = Errors::new();
    for (name, source) in &hook.args {
        let value = match source {
            ValueSource::Header(h) => ctx.header(h).map(|v| json!(v)),
            ValueSource::Query(q) => query.get(q).map(|v| json!(v)),
            ValueSource::Payload(path) => {
                let Some(payload) = &payload else {
                    errors.insert(name.clone(), "has no value: the body is not JSON".into());
                    continue;
                };
                match at_path(payload, path) {
                    None | Some(Json::Null) => None,
                    Some(v @ (Json::String(_) | Json::Number(_) | Json::Bool(_))) => {
                        Some(v.clone())
                    }
                    Some(Json::Array(items))
                        if items.iter().all(|i| {
                            matches!(i, Json::String(_) | Json::Number(_) | Json::Bool(_))
                        }) =>
                    {
                        Some(Json::Array(items.clone()))
                    }
                    Some(_) => {
                        errors.insert(
                            name.clone(),
                            format!("has no value: payload.{} is an object or a list of objects, not a value", path.join(".")),
                        );
                        continue;
                    }
                }
            }
        };
        if let Some(value) = value {
            args.insert(name.clone(), value);
        }
    }
    if errors.is_empty() {
        Ok(args)
    } else {
        Err(errors)
    }
}

fn at_path<'a>(mut value: &'a Json, path: &[String]) -> Option<&'a Json> {
    for step in path {
        value = match value {
            Json::Object(map) => map.get(step)?,
            Json::Array(items) => items.get(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_github_signature_is_the_hmac_of_the_body() {
        let secret = b"0123456789abcdef";
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(b"{}");
        let good = format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()));
        assert_eq!(check_hmac(secret, &[b"{}"], &good), Ok(()));
        assert_eq!(check_hmac(secret, &[b"{ }"], &good), Err("wrong signature"));
        assert_eq!(
            check_hmac(secret, &[b"{}"], "sha256=zz"),
            Err("the signature is not hex")
        );
        assert_eq!(check_hmac(secret, &[b"{}"], ""), Err("wrong signature"));
    }

    #[test]
    fn payload_paths_walk_objects_and_arrays() {
        let v: Json = serde_json::from_str(r#"{"a": {"b": [10, {"c": "x"}]}}"#).unwrap();
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(at_path(&v, &path("a.b.0")), Some(&json!(10)));
        assert_eq!(at_path(&v, &path("a.b.1.c")), Some(&json!("x")));
        assert_eq!(at_path(&v, &path("a.x")), None);
        assert_eq!(at_path(&v, &path("a.b.9")), None);
    }
}
