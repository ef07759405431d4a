//! GET `/schedules`: every schedule of a tool the user may run (an admin's: all), with
//! its next tick, the run its last tick started and whether it is paused; POST
//! `/schedules/{tool}/{name}`: an admin pauses or resumes one (audited). The pause is
//! kept in the state database, so it holds across restarts and for every replica.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use http::StatusCode;
use serde_json::json;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::may_run;
use super::context::Ctx;
use super::format::{human_time, status_text};
use super::pages::{Fields, field, require};
use super::problem::Problem;
use super::respond::{Page, html, see_other};
use crate::form::CSRF_FIELD;

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage<'a> {
    page: Page<'a>,
    admin: bool,
    rows: Vec<Row>,
}

struct Row {
    key: String,
    tool_id: String,
    tool: String,
    name: String,
    cron: String,
    user: String,
    next: String,
    /// (run id, status word, status text) of the last tick's run.
    last: Option<(String, &'static str, String)>,
    paused: bool,
    paused_by: Option<String>,
}

/// GET /schedules
pub async fn list(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}schedules", state.base)).await?;
    let manifest = state.manifest();
    let admin = manifest.auth.is_admin(&authed.user);
    let kept: HashMap<String, crate::store::ScheduleState> = state
        .store
        .schedule_states()
        .await
        .map_err(|e| Problem::stored("the schedules", &e))?
        .into_iter()
        .map(|s| (s.key.clone(), s))
        .collect();
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for tool in manifest.tools.values() {
        if !admin && !may_run(&manifest, &authed.user, &tool.id) {
            continue;
        }
        for schedule in &tool.schedules {
            let key = schedule.key(&tool.id);
            let kept = kept.get(&key).cloned().unwrap_or_default();
            let next = schedule
                .cron
                .find_next_occurrence(&now, false)
                .map(|t| human_time(std::time::SystemTime::from(t)))
                .unwrap_or_else(|_| "never".into());
            // The last run is its user's: others (not admins) see that it exists only.
            let theirs = admin || schedule.user == authed.user.name;
            let last = match kept.last_run.as_ref().filter(|_| theirs) {
                Some(id) => state.runs.get(id).await.map(|run| {
                    let status = run.status();
                    (id.clone(), status.word(), status_text(&status))
                }),
                None => None,
            };
            rows.push(Row {
                key,
                tool_id: tool.id.clone(),
                tool: tool.title.clone(),
                name: schedule.name.clone(),
                cron: schedule.cron_text.clone(),
                user: schedule.user.clone(),
                next,
                last,
                paused: kept.paused,
                paused_by: kept.paused_by,
            });
        }
    }
    let mut page = Page::new(&state, &manifest.title, "Schedules", Some(&authed));
    page.nav = "schedules";
    let body = SchedulesPage { page, admin, rows };
    Ok(authed.finish(html(StatusCode::OK, &body)))
}

/// POST /schedules/{tool}/{name}: `action=pause` or `action=resume` (admins).
pub async fn pause(
    tool: String,
    name: String,
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}schedules", state.base)).await?;
    authed.may_write(&state, &ctx, field(&fields, CSRF_FIELD))?;
    let manifest = state.manifest();
    if !manifest.auth.is_admin(&authed.user) {
        return Err(Problem::NotFound.into());
    }
    let schedule = manifest
        .tools
        .get(&tool)
        .and_then(|t| t.schedules.iter().find(|s| s.name == name))
        .ok_or(Problem::NotFound)?;
    let paused = match field(&fields, "action") {
        Some("pause") => true,
        Some("resume") => false,
        _ => return Err(Problem::BadRequest.into()),
    };
    let key = schedule.key(&tool);
    state
        .store
        .pause_schedule(&key, paused, &authed.user.name)
        .await
        .map_err(|e| Problem::stored("the schedule", &e))?;
    state.audit.record(
        if paused {
            "schedule-paused"
        } else {
            "schedule-resumed"
        },
        json!({
            "user": authed.user.name,
            "client": crate::audit::client(ctx.client),
            "tool": tool,
            "schedule": name,
        }),
    );
    Ok(authed.finish(see_other(&format!("{}schedules", state.base))))
}
