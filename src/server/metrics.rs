//! GET /metrics: Prometheus text for scrapers. Off unless `[server] metrics_allow` or
//! `metrics_token` is set; then answered to those addresses, or to
//! `Authorization: Bearer` with that token (compared by hash, in constant time).

use std::sync::Arc;

use http::HeaderValue;
use http::header::CONTENT_TYPE;
use subtle::ConstantTimeEq;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::context::Ctx;
use super::identity::bearer;
use super::problem::Problem;

pub async fn scrape(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let manifest = state.manifest();
    let server = &manifest.server;
    if server.metrics_allow.is_empty() && server.metrics_token.is_none() {
        return Err(Problem::NotFound.into());
    }
    let by_address = server
        .metrics_allow
        .iter()
        .any(|net| net.contains(&ctx.client));
    let by_token = server.metrics_token.is_some_and(|expected| {
        bearer(&ctx).is_some_and(|t| bool::from(crate::auth::tokens::hash(t).ct_eq(&expected)))
    });
    if !by_address && !by_token {
        return Err(Problem::Forbidden.into());
    }
    state
        .metrics
        .set_active(state.runs.running(), state.runs.queued());
    let mut r = Response::new(state.metrics.render().into());
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(r)
}
