//! Whether to believe who a request says it is: the session cookie (opened,
//! time-checked, revocation-checked and matched against the user's current password
//! hash), forward auth from a trusted proxy, and CSRF tokens.

use http::HeaderMap;
use http::header::COOKIE;

use super::State;
use super::context::Ctx;
use crate::auth::csrf::{self, Binding};
use crate::auth::session::{Refused, Session};
use crate::auth::{self, unb64};
use crate::manifest::User;

/// A signed-in request.
#[derive(Debug, Clone)]
pub struct Authed {
    pub session: Session,
    pub user: User,
    /// The CSRF token for forms on the pages this request renders.
    pub csrf: String,
    /// A `Set-Cookie` value with a fresh `active` time, when one is due.
    pub refresh: Option<String>,
    /// Signed in by a trusted proxy (forward auth), not by ftw's own session.
    pub forwarded: bool,
}

/// Every value of cookie `name` in the request (there can be several; the first valid
/// one wins, so a planted duplicate cannot shadow the real session).
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v.trim_matches('"'))
        })
}

impl State {
    /// The session cookie's name: `__Host-` prefixed when the request came over TLS.
    pub fn session_name(&self, secure: bool) -> &'static str {
        if secure {
            super::SESSION_COOKIE_SECURE
        } else {
            super::SESSION_COOKIE
        }
    }

    pub fn login_name(&self, secure: bool) -> &'static str {
        if secure {
            super::LOGIN_COOKIE_SECURE
        } else {
            super::LOGIN_COOKIE
        }
    }

    /// The signed-in user, if the request carries a session that passes every check, or
    /// comes from a trusted proxy that names the user (forward auth).
    pub fn authenticate(&self, ctx: &Ctx) -> Option<Authed> {
        let manifest = self.manifest();
        if let Some(authed) = self.forwarded_user(ctx, &manifest) {
            return Some(authed);
        }
        let now = auth::now();
        let name = self.session_name(ctx.secure);
        cookie_values(&ctx.headers, name).find_map(|value| {
            let session = self.check_session(name, value, &manifest, now).ok()?;
            let user = manifest.auth.users.get(&session.user)?.clone();
            let refresh = session.needs_refresh(now).then(|| {
                let fresh = Session {
                    active: now,
                    ..session.clone()
                };
                self.session_cookie(ctx.secure, &fresh, now)
            });
            Some(Authed {
                csrf: csrf::token(&self.config.keys.csrf, Binding::Session(&session.id)),
                session,
                user,
                refresh,
                forwarded: false,
            })
        })
    }

    /// Forward auth: the user in `trusted_header`, believed only from a trusted proxy.
    /// A user the manifest also lists keeps their groups; the proxy's groups are added.
    fn forwarded_user(&self, ctx: &Ctx, manifest: &crate::manifest::Manifest) -> Option<Authed> {
        let header = manifest.auth.trusted_header.as_deref()?;
        if !ctx.proxied {
            return None;
        }
        let name = ctx.header(header)?.trim();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if !valid {
            return None;
        }
        let mut user = manifest.auth.users.get(name).cloned().unwrap_or(User {
            name: name.to_string(),
            password_hash: String::new(),
            groups: Vec::new(),
            totp: None,
        });
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
        // A stable per-user id binds the CSRF token; there is no ftw session to end.
        let id = csrf::derive_id(&self.config.keys.csrf, name);
        let session = Session {
            user: name.to_string(),
            issued: 0,
            active: 0,
            id,
            fingerprint: [0; 16],
        };
        Some(Authed {
            csrf: csrf::token(&self.config.keys.csrf, Binding::Session(&session.id)),
            session,
            user,
            refresh: None,
            forwarded: true,
        })
    }

    fn check_session(
        &self,
        name: &str,
        value: &str,
        manifest: &crate::manifest::Manifest,
        now: u64,
    ) -> Result<Session, Refused> {
        let session = self.sessions.open(name, value)?;
        session.check_times(&self.policy(), now)?;
        if self.revoked.is_revoked(&session) {
            return Err(Refused::Revoked);
        }
        let user = manifest
            .auth
            .users
            .get(&session.user)
            .ok_or(Refused::UnknownUser)?;
        if self.sessions.fingerprint(&user.password_hash) != session.fingerprint {
            return Err(Refused::PasswordChanged);
        }
        Ok(session)
    }

    /// `Set-Cookie` for a session, living until its absolute expiry.
    pub fn session_cookie(&self, secure: bool, session: &Session, now: u64) -> String {
        let left = session.expires(&self.policy()).saturating_sub(now);
        let name = self.session_name(secure);
        self.cookie(secure, name, &self.sessions.seal(name, session), Some(left))
    }

    /// `Set-Cookie` that deletes a cookie.
    pub fn expired_cookie(&self, secure: bool, name: &str) -> String {
        self.cookie(secure, name, "", Some(0))
    }

    /// A cookie with ftw's attributes: HttpOnly, SameSite=Lax, an explicit Path, and over
    /// TLS `Secure` (the `__Host-` names need it, and `Path=/`). `max_age: None` lasts as
    /// long as the browser session.
    pub fn cookie(&self, secure: bool, name: &str, value: &str, max_age: Option<u64>) -> String {
        let path = if secure { "/" } else { &self.config.base_path };
        let mut c = format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}");
        if let Some(seconds) = max_age {
            c.push_str(&format!("; Max-Age={seconds}"));
        }
        if secure {
            c.push_str("; Secure");
        }
        c
    }

    /// The pre-login nonce from the login cookie, if it is well-formed.
    pub fn login_nonce(&self, ctx: &Ctx) -> Option<Vec<u8>> {
        cookie_values(&ctx.headers, self.login_name(ctx.secure))
            .filter_map(unb64)
            .find(|n| n.len() == 16)
    }

    pub fn login_csrf(&self, nonce: &[u8]) -> String {
        csrf::token(&self.config.keys.csrf, Binding::Login(nonce))
    }

    pub fn login_csrf_ok(&self, nonce: &[u8], submitted: &str) -> bool {
        csrf::verify(&self.config.keys.csrf, Binding::Login(nonce), submitted)
    }
}

impl Authed {
    pub fn csrf_ok(&self, state: &State, submitted: &str) -> bool {
        csrf::verify(
            &state.config.keys.csrf,
            Binding::Session(&self.session.id),
            submitted,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cookie_values_finds_every_copy() {
        let h = headers(&[
            ("cookie", "a=1; ftw_session=x"),
            ("cookie", "ftw_session=y"),
        ]);
        assert_eq!(
            cookie_values(&h, "ftw_session").collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}
