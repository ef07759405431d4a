//! A sign-in in progress with an identity provider, kept in the browser that started it:
//! a short-lived cookie signed with the session key. It holds what the callback must
//! check (the `state` sent to the provider, the `nonce` the ID token must carry, the
//! PKCE verifier) and where to go afterwards. The cookie is SameSite=Lax, so the
//! provider's redirect back brings it; another browser, or this one after ten minutes,
//! has nothing to finish. The callback also marks the state used (`Revoked::revoke_once`),
//! so a replayed callback URL is refused even while the cookie lives.

use crate::auth::session::{Codec, Session};
use crate::auth::unb64;

/// How long a started sign-in may take at the provider.
pub const FLOW_TTL: u64 = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// `oidc:NAME`.
    pub provider: String,
    /// Sent to the provider; it comes back with the code.
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created: u64,
    /// A safe path (`auth::next`), last: it may contain any character.
    pub next: String,
}

impl Flow {
    pub fn seal(&self, codec: &Codec, cookie: &str) -> String {
        let text = format!(
            "f1|{}|{}|{}|{}|{}|{}",
            self.provider, self.state, self.nonce, self.pkce_verifier, self.created, self.next
        );
        codec.seal_text(cookie, &text)
    }

    /// The flow in `value`, if its MAC checks out and it is not older than `FLOW_TTL`.
    pub fn open(codec: &Codec, cookie: &str, value: &str, now: u64) -> Option<Flow> {
        let text = codec.open_text(cookie, value).ok()?;
        let mut fields = text.splitn(7, '|');
        (fields.next()? == "f1").then_some(())?;
        let flow = Flow {
            provider: fields.next()?.to_string(),
            state: fields.next()?.to_string(),
            nonce: fields.next()?.to_string(),
            pkce_verifier: fields.next()?.to_string(),
            created: fields.next()?.parse().ok()?,
            next: fields.next()?.to_string(),
        };
        let fresh = flow.created <= now + 5 && now.saturating_sub(flow.created) < FLOW_TTL;
        fresh.then_some(flow)
    }

    /// Whether `state` from the callback is this flow's (constant time).
    pub fn state_matches(&self, state: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.state.len() == state.len() && bool::from(self.state.as_bytes().ct_eq(state.as_bytes()))
    }

    /// The flow as a single-use entry of the revocation list: its id is the state.
    pub fn as_used(&self) -> Option<Session> {
        let bytes = unb64(&self.state)?;
        let id: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        Some(Session {
            user: self.provider.clone(),
            issued: self.created,
            active: self.created,
            id,
            fingerprint: [0; 16],
            outside: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow {
            provider: "oidc:corp".into(),
            state: crate::auth::b64(&[7; 16]),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            created: 1_000,
            next: "/x?a=1|2".into(),
        }
    }

    #[test]
    fn a_flow_round_trips_and_expires() {
        let codec = Codec::new([1; 32]);
        let value = flow().seal(&codec, "ftw_oidc");
        assert_eq!(Flow::open(&codec, "ftw_oidc", &value, 1_100), Some(flow()));
        assert_eq!(
            Flow::open(&codec, "ftw_oidc", &value, 1_000 + FLOW_TTL),
            None
        );
        assert_eq!(Flow::open(&codec, "other", &value, 1_100), None);
        assert_eq!(
            Flow::open(&Codec::new([2; 32]), "ftw_oidc", &value, 1_100),
            None
        );
    }

    #[test]
    fn the_state_must_match_exactly() {
        let f = flow();
        assert!(f.state_matches(&f.state.clone()));
        assert!(!f.state_matches(&f.state[1..]));
        assert!(!f.state_matches(""));
        assert_eq!(f.as_used().unwrap().id, [7; 16]);
    }
}
