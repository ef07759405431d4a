//! The password form for directory users (`[auth.ldap]`): a name that is not in
//! `[auth.users]` is looked up in the directory (`auth::ldap`), and a user it vouches for
//! becomes an ordinary session that remembers its groups and says `"via": "ldap"`.
//! Throttling and the audit log work as for ftw's own passwords; the caller does them.

use serde_json::json;

use super::State;
use super::context::Ctx;
use crate::audit;
use crate::auth::ldap::{self, Failure};
use crate::auth::outside::{
    Denied, Identity, Source, admit, keep_groups, named_groups, usable_email, usable_name,
};
use crate::auth::session::Session;
use crate::manifest::{Ldap, Manifest};

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
    let source = Source::Ldap(ldap);
    let mut groups = keep_groups(
        found.groups.iter().map(String::as_str),
        &ldap.map,
        &named_groups(manifest),
    );
    groups.sort();
    let identity = Identity {
        name: found.name,
        subject: found.dn,
        email: found.email.filter(|e| usable_email(e)),
        groups,
    };
    let admits = source.admits(None, &identity.groups);
    let checked = usable_name(&identity.name).and_then(|()| admit(manifest, identity, admits));
    let identity = match checked {
        Ok(identity) => identity,
        Err(Denied::NotAllowed { .. }) => return Err(refuse("not in an allowed group")),
        Err(denied) => return Err(refuse(&denied.to_string())),
    };
    if let Err(denied) = state.claim_outside_name(&identity, "ldap").await {
        return Err(refuse(&denied.to_string()));
    }
    let session = state.outside_session(&source, identity);
    Ok(session)
}
