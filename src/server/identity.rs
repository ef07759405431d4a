//! Who a request is from, decided in one place for pages and the API alike: ftw's own
//! session cookie (opened, time-checked, revocation-checked and matched against the
//! user's current password hash), forward auth from a trusted proxy, or an API token.
//! `Via` says which, so the rules that differ (CSRF, sign-out, the audit log) ask it
//! instead of guessing from side facts.
//!
//! The cookies ftw sets are named here once (`CookieName`), built and read with the
//! `cookie` crate, and always carry the same attributes: HttpOnly, SameSite=Lax, an
//! explicit Path, and over TLS `Secure` with the `__Host-` prefix.

use std::time::Instant;

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use serde_json::json;

use super::State;
use super::context::Ctx;
use super::problem::Problem;
use crate::auth::csrf::{self, Binding};
use crate::auth::outside::{Identity, Source};
use crate::auth::session::{Outside, Refused, Session};
use crate::auth::{self, unb64};
use crate::manifest::{Manifest, User, names};

/// The longest a session from an identity provider or a directory lasts (whatever
/// `session_ttl` says): a user disabled at the source is out within a day.
pub const OUTSIDE_SESSION_MAX: u64 = 24 * 3600;

/// The cookies ftw sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieName {
    /// The signed session.
    Session,
    /// The pre-login nonce the sign-in form's CSRF token is bound to.
    Login,
    /// "Password done, code next" for users with a second factor.
    SecondFactor,
    /// A sign-in in progress at an identity provider (`auth::oidc::Flow`).
    Provider,
}

impl CookieName {
    /// The name on the wire: `__Host-` prefixed when the request came over TLS.
    pub const fn name(self, secure: bool) -> &'static str {
        match (self, secure) {
            (CookieName::Session, false) => "ftw_session",
            (CookieName::Session, true) => "__Host-ftw_session",
            (CookieName::Login, false) => "ftw_login",
            (CookieName::Login, true) => "__Host-ftw_login",
            (CookieName::SecondFactor, false) => "ftw_2fa",
            (CookieName::SecondFactor, true) => "__Host-ftw_2fa",
            (CookieName::Provider, false) => "ftw_oidc",
            (CookieName::Provider, true) => "__Host-ftw_oidc",
        }
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// ftw's own session cookie.
    Session(Session),
    /// A trusted proxy named the user (forward auth); only the proxy can sign them out.
    Forwarded,
    /// An API token (`Authorization: Bearer`), by its name in `[auth.tokens]`.
    Token(String),
}

impl Via {
    /// For the audit log: `session`, `oidc:NAME` (a session an identity provider
    /// started), `forward-auth` or `token:NAME`.
    pub fn label(&self) -> String {
        match self {
            Via::Session(Session {
                outside: Some(o), ..
            }) => o.provider.clone(),
            Via::Session(_) => "session".into(),
            Via::Forwarded => "forward-auth".into(),
            Via::Token(name) => format!("token:{name}"),
        }
    }
}

/// A request whose user ftw believes.
#[derive(Debug, Clone)]
pub struct Authed {
    pub user: User,
    pub via: Via,
    /// What this caller's CSRF tokens are bound to: the session id, or an id derived
    /// from the name when there is no ftw session.
    binding: [u8; 16],
    /// The CSRF token for forms on the pages this request renders.
    pub csrf: String,
    /// A `Set-Cookie` value with a fresh `active` time, when one is due.
    pub refresh: Option<String>,
}

impl Authed {
    /// The rule for every state-changing request: a browser's request must come from
    /// this site (`Origin`, `Sec-Fetch-Site`) and carry this caller's CSRF token, from
    /// the form field `submitted` or the `X-CSRF-Token` header. A bearer token is never
    /// sent by a browser on its own, so token callers need neither.
    pub fn may_write(
        &self,
        state: &State,
        ctx: &Ctx,
        submitted: Option<&str>,
    ) -> Result<(), Problem> {
        if matches!(self.via, Via::Token(_)) {
            return Ok(());
        }
        if !ctx.same_origin() {
            return Err(Problem::CrossSite);
        }
        let token = submitted.or(ctx.header("x-csrf-token")).unwrap_or("");
        if csrf::verify(
            &state.config.keys.csrf,
            Binding::Session(&self.binding),
            token,
        ) {
            Ok(())
        } else {
            Err(Problem::BadCsrf)
        }
    }
}

/// Every value of cookie `name` in the request. There can be several (and several
/// `Cookie` headers over HTTP/2); callers take the first *valid* one, so a planted
/// duplicate cannot shadow the real session.
pub fn request_cookies<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(move |c| {
            let c = c.ok()?;
            // Borrowed from the header; the value as sent, without surrounding quotes.
            let value = c.value_raw()?;
            (c.name_raw()? == name).then(|| value.trim_matches('"'))
        })
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme is
/// case-insensitive, RFC 9110), if there is one.
pub fn bearer(ctx: &Ctx) -> Option<&str> {
    let value = ctx.header(AUTHORIZATION.as_str())?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl State {
    /// The signed-in user of a page request: forward auth from a trusted proxy, or a
    /// session cookie that passes every check.
    pub async fn authenticate(&self, ctx: &Ctx) -> Option<Authed> {
        let manifest = self.manifest();
        if let Some(user) = forwarded_user(ctx, &manifest) {
            return Some(self.authed(user, Via::Forwarded, None));
        }
        let now = auth::now();
        let name = CookieName::Session.name(ctx.secure);
        for value in request_cookies(&ctx.headers, name) {
            let Ok((session, user)) = self.check_session(name, value, &manifest, now).await else {
                continue;
            };
            let refresh = session.needs_refresh(now).then(|| {
                let fresh = Session {
                    active: now,
                    ..session.clone()
                };
                self.session_cookie(ctx.secure, &fresh, now)
            });
            return Some(self.authed(user, Via::Session(session), refresh));
        }
        None
    }

    /// The caller of an API request: a bearer token, else as `authenticate`. A token
    /// that is not configured counts as a failed sign-in of the client's address (never
    /// of a user name: bad tokens cannot lock anyone out); a right one is refused while
    /// the address is blocked, and is not counted (`Throttle::address_blocked`).
    pub async fn caller(&self, ctx: &Ctx) -> Result<Authed, Problem> {
        let Some(presented) = bearer(ctx) else {
            return self.authenticate(ctx).await.ok_or(Problem::Unauthorized);
        };
        let manifest = self.manifest();
        let policy = &manifest.auth.throttle;
        let now = Instant::now();
        let throttled = |wait| {
            self.metrics.sign_in("throttled");
            Problem::Throttled(wait)
        };
        let Some(token) = crate::auth::tokens::find(&manifest.auth.tokens, presented) else {
            let attempt = self
                .throttle
                .begin_address(policy, ctx.client, now)
                .await
                .map_err(throttled)?;
            self.metrics.sign_in("failure");
            self.audit.record(
                "token-failed",
                json!({ "client": crate::audit::client(ctx.client) }),
            );
            let _ = attempt.failed(now).await;
            return Err(Problem::BadToken);
        };
        if let Some(wait) = self.throttle.address_blocked(policy, ctx.client, now).await {
            return Err(throttled(wait));
        }
        let user = manifest
            .auth
            .users
            .get(&token.user)
            .cloned()
            .unwrap_or_else(|| User::synthesized(&token.user));
        Ok(self.authed(user, Via::Token(token.name.clone()), None))
    }

    fn authed(&self, user: User, via: Via, refresh: Option<String>) -> Authed {
        let key = &self.config.keys.csrf;
        let binding = match &via {
            Via::Session(session) => session.id,
            Via::Forwarded => csrf::derive_id(key, "forwarded user", &user.name),
            Via::Token(name) => csrf::derive_id(key, "api token", name),
        };
        Authed {
            csrf: csrf::token(key, Binding::Session(&binding)),
            binding,
            user,
            via,
            refresh,
        }
    }

    async fn check_session(
        &self,
        name: &str,
        value: &str,
        manifest: &Manifest,
        now: u64,
    ) -> Result<(Session, User), Refused> {
        let session = self.sessions.open(name, value)?;
        session.check_times(&self.policy(), now)?;
        let user = self.session_user(&session, manifest)?;
        // Last, as the one check that may ask the database (with replicas: a sign-out
        // on another one counts).
        if self.revoked.check(&session).await {
            return Err(Refused::Revoked);
        }
        Ok((session, user))
    }

    /// The user of a session whose MAC, times and revocation passed: a user of the
    /// manifest whose password hash has not changed, or a provider's user whom the
    /// provider's settings and allowlist (as they are now) still let in.
    fn session_user(&self, session: &Session, manifest: &Manifest) -> Result<User, Refused> {
        let users = &manifest.auth.users;
        let Some(outside) = &session.outside else {
            let user = users.get(&session.user).ok_or(Refused::UnknownUser)?;
            if self.sessions.fingerprint(&user.password_hash) != session.fingerprint {
                return Err(Refused::PasswordChanged);
            }
            return Ok(user.clone());
        };
        // A name the manifest now gives a password user is theirs alone.
        if users.contains_key(&session.user) {
            return Err(Refused::UnknownUser);
        }
        // The source decides who may still sign in; ftw asks it again at least daily.
        if auth::now().saturating_sub(session.issued) >= OUTSIDE_SESSION_MAX {
            return Err(Refused::Expired);
        }
        let source = Source::find(&manifest.auth, &outside.provider).ok_or(Refused::UnknownUser)?;
        let fingerprint = self.source_fingerprint(&source);
        let admitted = source.admits(outside.email.as_deref(), &outside.groups);
        if fingerprint != session.fingerprint {
            return Err(Refused::PasswordChanged);
        }
        if !admitted {
            return Err(Refused::NotAllowed);
        }
        Ok(User {
            groups: outside.groups.clone(),
            ..User::synthesized(&session.user)
        })
    }

    /// An outside user name belongs to the account that first signed in with it
    /// (`source`: `oidc:NAME`, `github` or `ldap`; the identity's subject): another
    /// provider, or another user of the same provider who renamed themselves, cannot
    /// take over its runs and rights. A store that cannot answer refuses too.
    pub async fn claim_outside_name(
        &self,
        identity: &Identity,
        source: &str,
    ) -> Result<(), crate::auth::outside::Denied> {
        let taken = || crate::auth::outside::Denied::NameTaken(identity.name.clone());
        match self
            .store
            .bind_outside_name(&identity.name, source, &identity.subject)
            .await
        {
            Ok((s, subject)) if s == source && subject == identity.subject => Ok(()),
            Ok(_) => Err(taken()),
            Err(e) => {
                tracing::error!("cannot check who owns the name {:?}: {e}", identity.name);
                Err(taken())
            }
        }
    }

    /// A new session for `identity`, whom `source` vouched for and the manifest admits.
    pub fn outside_session(&self, source: &Source, identity: Identity) -> Session {
        let mut session =
            Session::new(&identity.name, self.source_fingerprint(source), auth::now());
        session.outside = Some(Outside {
            provider: source.key(),
            email: identity.email,
            groups: identity.groups,
        });
        session
    }

    /// What the sessions of an outside `source` are bound to (`Source::settings`).
    pub fn source_fingerprint(&self, source: &Source) -> [u8; 16] {
        let settings = source.settings();
        let parts: Vec<&str> = settings.iter().map(String::as_str).collect();
        self.sessions.provider_fingerprint(&parts)
    }

    /// `Set-Cookie` for a session, living until its absolute expiry.
    pub fn session_cookie(&self, secure: bool, session: &Session, now: u64) -> String {
        let left = session.expires(&self.policy()).saturating_sub(now);
        let name = CookieName::Session.name(secure);
        self.cookie(secure, name, &self.sessions.seal(name, session), Some(left))
    }

    /// `Set-Cookie` that deletes one of ftw's cookies.
    pub fn expired_cookie(&self, secure: bool, which: CookieName) -> String {
        self.cookie(secure, which.name(secure), "", Some(0))
    }

    /// A cookie with ftw's attributes. `max_age: None` lasts as long as the browser
    /// session. Over TLS the path is `/`, as the `__Host-` prefix requires.
    pub fn cookie(&self, secure: bool, name: &str, value: &str, max_age: Option<u64>) -> String {
        let path = if secure { "/" } else { &self.config.base_path };
        let mut c = Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path(path)
            .secure(secure);
        if let Some(seconds) = max_age {
            let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
            c = c.max_age(cookie::time::Duration::seconds(seconds));
        }
        c.build().to_string()
    }

    /// The pre-login nonce from the login cookie, if it is well-formed.
    pub fn login_nonce(&self, ctx: &Ctx) -> Option<Vec<u8>> {
        request_cookies(&ctx.headers, CookieName::Login.name(ctx.secure))
            .filter_map(unb64)
            .find(|n| n.len() == 16)
    }

    pub fn login_csrf_ok(&self, nonce: &[u8], submitted: &str) -> bool {
        csrf::verify(&self.config.keys.csrf, Binding::Login(nonce), submitted)
    }
}

/// Forward auth: the user in `trusted_header`, believed only from a trusted proxy. A
/// user the manifest also lists keeps their groups; the proxy's groups are added.
fn forwarded_user(ctx: &Ctx, manifest: &Manifest) -> Option<User> {
    let header = manifest.auth.trusted_header.as_deref()?;
    if !ctx.proxied {
        return None;
    }
    let name = ctx.header(header)?.trim();
    if !names::USER.allows(name) {
        return None;
    }
    let mut user = manifest
        .auth
        .users
        .get(name)
        .cloned()
        .unwrap_or_else(|| User::synthesized(name));
    if let Some(groups) = manifest
        .auth
        .trusted_groups_header
        .as_deref()
        .and_then(|h| ctx.header(h))
    {
        for group in groups.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if !user.groups.iter().any(|g| g == group) {
                user.groups.push(group.to_string());
            }
        }
    }
    Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::context::headers;

    #[test]
    fn every_copy_of_a_cookie_is_found() {
        let h = headers(&[
            ("cookie", "a=1; ftw_session=x; junk"),
            ("cookie", "ftw_session=\"y\""),
        ]);
        assert_eq!(
            request_cookies(&h, "ftw_session").collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let ctx = |value: &str| Ctx::new(headers(&[("authorization", value)]), None, &[], false);
        assert_eq!(bearer(&ctx("Bearer ftw_x")), Some("ftw_x"));
        assert_eq!(bearer(&ctx("bearer  ftw_x ")), Some("ftw_x"));
        assert_eq!(bearer(&ctx("BEARER ftw_x")), Some("ftw_x"));
        assert_eq!(bearer(&ctx("Basic YTpi")), None);
        assert_eq!(bearer(&ctx("Bearer")), None);
        assert_eq!(bearer(&ctx("Bearerftw_x")), None);
    }

    #[test]
    fn cookie_names_take_the_host_prefix_over_tls() {
        for which in [
            CookieName::Session,
            CookieName::Login,
            CookieName::SecondFactor,
            CookieName::Provider,
        ] {
            let plain = which.name(false);
            assert!(plain.starts_with("ftw_"));
            assert_eq!(which.name(true), format!("__Host-{plain}"));
        }
    }
}
