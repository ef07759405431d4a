//! Who may see what, in one place for pages, event streams, downloads and the API: the
//! tools a user may run, and the runs a user may see and cancel: their own runs of
//! tools they may still run, or of a tool removed since (by a reload: nobody else could
//! reach those runs), and, for admins, everyone's, of every tool, including tools the
//! admin may not run (admins oversee what ran; running is still per `allow`). Anything
//! else is 404, exactly like a tool or run that does not exist, so nothing reveals that
//! it does.

use std::sync::Arc;

use super::State;
use super::identity::Authed;
use super::problem::Problem;
use crate::manifest::{Manifest, Tool, User};
use crate::runs::Run;

/// The tools `user` may run, in the manifest's order.
pub fn tools_for<'a>(manifest: &'a Manifest, user: &'a User) -> impl Iterator<Item = &'a Tool> {
    manifest
        .tools
        .values()
        .filter(move |t| t.allows(&user.name, &user.groups))
}

/// The tool if it exists and this user may run it; otherwise 404.
pub fn allowed_tool(state: &State, authed: &Authed, id: &str) -> Result<Tool, Problem> {
    let manifest = state.manifest();
    match manifest.tools.get(id) {
        Some(tool) if tool.allows(&authed.user.name, &authed.user.groups) => Ok(tool.clone()),
        _ => Err(Problem::NotFound),
    }
}

/// The run, live or from the history, if this user may see it; otherwise 404.
pub async fn visible_run(state: &State, authed: &Authed, id: &str) -> Result<Arc<Run>, Problem> {
    if !crate::runs::is_id(id) {
        return Err(Problem::NotFound);
    }
    let run = state.runs.get(id).await.ok_or(Problem::NotFound)?;
    if may_see(&state.manifest(), &authed.user, &run) {
        Ok(run)
    } else {
        Err(Problem::NotFound)
    }
}

pub fn may_see(manifest: &Manifest, user: &User, run: &Run) -> bool {
    if manifest.auth.is_admin(user) {
        return true;
    }
    let tool_ok = manifest
        .tools
        .get(&run.tool_id)
        .is_none_or(|t| t.allows(&user.name, &user.groups));
    run.user == user.name && tool_ok
}

/// Tools whose runs `user` may not see even when they started them (`may_see`, for the
/// history's query): none for admins; else the tools that exist and that the user may
/// not run.
pub fn hidden_tools(manifest: &Manifest, user: &User) -> Vec<String> {
    if manifest.auth.is_admin(user) {
        return Vec::new();
    }
    manifest
        .tools
        .values()
        .filter(|t| !t.allows(&user.name, &user.groups))
        .map(|t| t.id.clone())
        .collect()
}

/// Whether `user` may run `tool_id` now (for "Run again" links).
pub fn may_run(manifest: &Manifest, user: &User, tool_id: &str) -> bool {
    manifest
        .tools
        .get(tool_id)
        .is_some_and(|t| t.allows(&user.name, &user.groups))
}
