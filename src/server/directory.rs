//! The password form for directory users (`[auth.ldap]`): a name that is not in
//! `[auth.users]` is looked up in the directory (`auth::ldap`), and a user it vouches for
//! becomes an ordinary session that remembers its groups and says `"via": "ldap"`.
//! Throttling and the audit log work as for ftw's own passwords; the caller does them.

use serde_json::json;

use super::State;
use super::context::Ctx;
use crate::audit;
use crate::auth::ldap::{self, Failure};
use crate::auth::outside::named_groups;
use crate::auth::session::{Outside, Session};
use crate::auth::{self};
use crate::manifest::{Ldap, Manifest, names};

/// Why a directory sign-in did not make a session.
pub enum Refusal {
    /// Wrong name or password, or not allowed: a failed sign-in.
    Failed,
    /// The directory could not be asked: nothing was checked.
    Unreachable,
}

/// Asks the directory about `username`; a new session when it says yes and the manifest
/// lets the user in. Failures are audited here with their reason.
pub async fn sign_in(
    state: &State,
    ctx: &Ctx,
    manifest: &Manifest,
    ldap: &Ldap,
    username: &str,
    password: &str,
) -> Result<Session, Refusal> {
    let refuse = |reason: &str| {
        state.metrics.sign_in("failure");
        state.audit.record(
            "sign-in-failed",
            json!({ "user": username, "via": "ldap", "client": audit::client(ctx.client), "reason": reason }),
        );
        Refusal::Failed
    };
    let found = match ldap::authenticate(ldap, username, password).await {
        Ok(found) => found,
        Err(Failure::Refused(why)) => return Err(refuse(why)),
        Err(Failure::Unreachable(why)) => {
            tracing::error!("cannot check a directory sign-in: {why:?}");
            return Err(Refusal::Unreachable);
        }
    };
    if !names::USER.allows(&found.name) {
        return Err(refuse(
            "the directory's user name is not a valid ftw user name",
        ));
    }
    if manifest.auth.users.contains_key(&found.name) {
        return Err(refuse(
            "the name belongs to a user with a password in the manifest",
        ));
    }
    let wanted = named_groups(manifest);
    let mut groups: Vec<String> = Vec::new();
    for group in &found.groups {
        let group = ldap.map.get(group).unwrap_or(group);
        if wanted.contains(group) && !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    groups.sort();
    groups.truncate(auth::outside::MAX_GROUPS);
    let admitted = ldap
        .allowed_groups
        .as_ref()
        .is_none_or(|allowed| groups.iter().any(|g| allowed.contains(g)));
    if !admitted {
        return Err(refuse("not in an allowed group"));
    }
    let mut session = Session::new(&found.name, state.directory_fingerprint(ldap), auth::now());
    session.outside = Some(Outside {
        provider: "ldap".into(),
        email: found
            .email
            .filter(|e| !e.contains(['|', ',']) && e.len() <= 254),
        groups,
    });
    Ok(session)
}
