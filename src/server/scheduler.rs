//! Schedules: each `[tools.ID.schedule.NAME]` runs its tool at the ticks of its cron
//! expression (UTC) as its user, with its arguments checked like an API submission
//! (options from commands and conditions included), as an ordinary run in the history
//! (`via` `schedule`). A tick runs once: before starting it, this ftw claims it in the
//! state database, where a tick already claimed (by this ftw before a restart, or by
//! another replica) cannot be claimed again. A paused schedule claims nothing.
//!
//! Missed ticks are not made up, as cron does not: a tick runs if it came at most
//! `GRACE` before this ftw noticed it (a restart in between), else it is skipped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::State;
use super::launch::{Starter, start_json};
use super::problem::Problem;
use crate::manifest::{Schedule, Tool};
use crate::store::ScheduleState;

/// How late a tick may still run (ftw restarting across it, a busy machine).
pub const GRACE: Duration = Duration::from_secs(60);
/// The longest sleep between looks (a reload may add or change schedules).
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Runs the schedules until ftw stops.
pub async fn run(state: Arc<State>) {
    let started = Utc::now();
    loop {
        let manifest = state.manifest();
        let now = Utc::now();
        let mut wake = now + chrono::Duration::from_std(LOOK_EVERY).expect("small");
        let any = manifest.tools.values().any(|t| !t.schedules.is_empty());
        if any {
            let kept = match state.store.schedule_states().await {
                Ok(states) => states.into_iter().map(|s| (s.key.clone(), s)).collect(),
                Err(e) => {
                    tracing::error!("cannot read the schedules' state: {e}");
                    HashMap::new()
                }
            };
            for tool in manifest.tools.values() {
                for schedule in &tool.schedules {
                    due(
                        &state,
                        tool,
                        schedule,
                        kept.get(&schedule.key(&tool.id)),
                        now,
                        started,
                    )
                    .await;
                    if let Ok(next) = schedule.cron.find_next_occurrence(&now, false) {
                        wake = wake.min(next);
                    }
                }
            }
        }
        let sleep = (wake - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(sleep.max(Duration::from_millis(5))).await;
    }
}

/// Starts the schedule's latest tick if it is due, not claimed, and claimed now.
async fn due(
    state: &State,
    tool: &Tool,
    schedule: &Schedule,
    kept: Option<&ScheduleState>,
    now: DateTime<Utc>,
    started: DateTime<Utc>,
) {
    let Ok(tick) = schedule.cron.find_previous_occurrence(&now, true) else {
        return;
    };
    let grace = chrono::Duration::from_std(GRACE).expect("small");
    if tick < started - grace || now - tick > grace {
        return;
    }
    // Whole seconds: the cron crate keeps the fraction of the time it counted from,
    // which differs between replicas (and would make one tick several).
    let tick_ms = tick.timestamp() * 1000;
    if kept.is_some_and(|k| k.paused || k.last_tick_ms.is_some_and(|t| t >= tick_ms)) {
        return;
    }
    let key = schedule.key(&tool.id);
    match state.store.claim_tick(&key, tick_ms).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!("cannot claim schedule {key:?}'s tick: {e}");
            return;
        }
    }
    match start(state, tool, schedule).await {
        Ok(run) => {
            if let Err(e) = state.store.schedule_ran(&key, &run).await {
                tracing::error!("cannot record the run of schedule {key:?}: {e}");
            }
        }
        Err(why) => {
            tracing::warn!("schedule {key:?} did not start its run: {why}");
            state.audit.record(
                "schedule-failed",
                json!({ "tool": tool.id, "schedule": schedule.name, "user": schedule.user, "reason": why }),
            );
        }
    }
}

/// Starts one run of `schedule`; its id, or why it could not start.
async fn start(state: &State, tool: &Tool, schedule: &Schedule) -> Result<String, String> {
    let starter = Starter {
        user: &schedule.user,
        via: "schedule".into(),
        client: serde_json::Value::Null,
        schedule: Some(&schedule.name),
    };
    match start_json(state, tool, &starter, &schedule.args).await {
        Ok(run) => Ok(run.id.clone()),
        Err(Problem::Invalid(errors)) => Err(errors
            .iter()
            .map(|(field, why)| format!("{field} {why}"))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(Problem::Internal(why)) => Err(why),
        Err(other) => Err(other.sentence()),
    }
}
