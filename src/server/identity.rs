//! Who sent a request and whether to believe it: the client address, the session cookie
//! (opened, time-checked, revocation-checked and matched against the user's current
//! password hash), CSRF tokens, and the same-origin rule for every POST.

use std::net::SocketAddr;

use http::HeaderMap;
use http::header::{COOKIE, HOST, ORIGIN};

use super::State;
use crate::auth::csrf::{self, Binding};
use crate::auth::session::{Refused, Session};
use crate::auth::{self, unb64};
use crate::manifest::User;

/// The peer address of the connection, put into each request by the accept loop (warp's
/// own remote address is empty behind a custom acceptor such as TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// A signed-in request.
#[derive(Debug, Clone)]
pub struct Authed {
    pub session: Session,
    pub user: User,
    /// The CSRF token for forms on the pages this request renders.
    pub csrf: String,
    /// A `Set-Cookie` value with a fresh `active` time, when one is due.
    pub refresh: Option<String>,
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
    /// The signed-in user, if the request carries a session that passes every check.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Authed> {
        let now = auth::now();
        let manifest = self.manifest();
        cookie_values(headers, self.sessions.name).find_map(|value| {
            let session = self.check_session(value, &manifest, now).ok()?;
            let user = manifest.auth.users.get(&session.user)?.clone();
            let refresh = session.needs_refresh(now).then(|| {
                let fresh = Session {
                    active: now,
                    ..session.clone()
                };
                self.session_cookie(&fresh, now)
            });
            Some(Authed {
                csrf: csrf::token(&self.config.keys.csrf, Binding::Session(&session.id)),
                session,
                user,
                refresh,
            })
        })
    }

    fn check_session(
        &self,
        value: &str,
        manifest: &crate::manifest::Manifest,
        now: u64,
    ) -> Result<Session, Refused> {
        let session = self.sessions.open(value)?;
        session.check_times(&self.policy, now)?;
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
    pub fn session_cookie(&self, session: &Session, now: u64) -> String {
        let left = session.expires(&self.policy).saturating_sub(now);
        self.cookie(self.sessions.name, &self.sessions.seal(session), Some(left))
    }

    /// `Set-Cookie` that deletes a cookie.
    pub fn expired_cookie(&self, name: &str) -> String {
        self.cookie(name, "", Some(0))
    }

    /// A cookie with ftw's attributes: HttpOnly, SameSite=Lax, an explicit Path, and
    /// over TLS `Secure` (the `__Host-` names need it). `max_age: None` lasts as long
    /// as the browser session.
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut c = format!(
            "{name}={value}; HttpOnly; SameSite=Lax; Path={}",
            self.cookie_path()
        );
        if let Some(seconds) = max_age {
            c.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// The pre-login nonce from the login cookie, if it is well-formed.
    pub fn login_nonce(&self, headers: &HeaderMap) -> Option<Vec<u8>> {
        cookie_values(headers, self.login_cookie_name())
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

/// The same-origin rule for state-changing requests: a browser's `Origin` must name this
/// very host (and https when ftw serves TLS), and `Sec-Fetch-Site: cross-site` is always
/// refused. Requests without either header (curl, scripts) pass this check and still
/// need a CSRF token or a bearer token.
pub fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(url) = url::Url::parse(origin) else {
        return false; // includes "null"
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => !secure,
        _ => false,
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return false,
    };
    scheme_ok && authority.eq_ignore_ascii_case(host)
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
    fn origin_rules() {
        let host = ("host", "ftw.lan:8000");
        assert!(same_origin(&headers(&[host]), false), "no Origin: curl");
        assert!(same_origin(
            &headers(&[host, ("origin", "http://ftw.lan:8000")]),
            false
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "http://evil.lan:8000")]),
            false
        ));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), false));
        assert!(
            !same_origin(&headers(&[host, ("origin", "http://ftw.lan:8000")]), true),
            "downgrade"
        );
        assert!(!same_origin(
            &headers(&[host, ("sec-fetch-site", "cross-site")]),
            false
        ));
        assert!(same_origin(
            &headers(&[host, ("sec-fetch-site", "same-origin")]),
            false
        ));
        assert!(same_origin(
            &headers(&[("host", "ftw.lan"), ("origin", "https://ftw.lan")]),
            true
        ));
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
