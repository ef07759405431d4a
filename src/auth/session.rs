//! Session cookies: stateless, signed, and checked in a fixed order.
//!
//! The value is `PAYLOAD.MAC`, both URL-safe base64. PAYLOAD is
//! `v1|user|issued|active|session-id|fingerprint` (times in Unix seconds, the 128-bit
//! session id and the password fingerprint in hex). A user an identity provider vouched
//! for has `v2|...|fingerprint|provider|email|group,group`, where the fingerprint is of
//! the provider's settings (`Codec::provider_fingerprint`). MAC is HMAC-SHA256 under the session
//! key over the cookie *name*, a NUL, and PAYLOAD as sent, so a renamed cookie fails.
//!
//! `Codec::open` checks the MAC in constant time before it decodes a single byte of the
//! payload; only then are times, revocation and the user's current password fingerprint
//! looked at (`Session::check`). The fingerprint is a keyed hash of the user's PHC string:
//! change the hash in the manifest and every session of that user ends.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{b64, hex, unb64};

/// How far in the future a timestamp may be before the cookie is refused (clock skew).
pub const MAX_SKEW_SECS: u64 = 300;
/// `last active` is rewritten at most this often, so not every request sets a cookie.
pub const REFRESH_AFTER_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// When the user signed in (absolute expiry counts from here).
    pub issued: u64,
    /// The last request seen (idle expiry counts from here).
    pub active: u64,
    pub id: [u8; 16],
    pub fingerprint: [u8; 16],
    /// Set when an identity provider, not a password of ftw's, signed the user in.
    pub outside: Option<Outside>,
}

/// What an identity provider said about a session's user when they signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// `oidc:NAME`.
    pub provider: String,
    /// The verified email, if any.
    pub email: Option<String>,
    /// The groups ftw kept (see `auth::outside`).
    pub groups: Vec<String>,
}

/// Why a cookie was refused; for logs and tests, never shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    BadMac,
    FutureDated,
    Expired,
    Idle,
    Revoked,
    UnknownUser,
    PasswordChanged,
    /// A provider's user whom the manifest's allowlist no longer lets in.
    NotAllowed,
}

/// Signs and opens session cookies under one key. The cookie's name is part of every
/// MAC, so a value made for one name does not pass under another.
#[derive(Clone)]
pub struct Codec {
    key: [u8; 32],
}

impl Codec {
    pub fn new(key: [u8; 32]) -> Codec {
        Codec { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// The keyed fingerprint of a password hash.
    pub fn fingerprint(&self, password_hash: &str) -> [u8; 16] {
        let mut mac = self.mac();
        mac.update(b"password fingerprint\0");
        mac.update(password_hash.as_bytes());
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        full[..16].try_into().expect("16 of 32 bytes")
    }

    /// The keyed fingerprint of an identity provider's settings (`oidc:NAME`, issuer,
    /// client id): a session ends when they change.
    pub fn provider_fingerprint(&self, parts: &[&str]) -> [u8; 16] {
        self.fingerprint(&format!("provider\0{}", parts.join("\0")))
    }

    fn tag(&self, name: &str, payload: &str) -> Hmac<Sha256> {
        let mut mac = self.mac();
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(payload.as_bytes());
        mac
    }

    /// The value of cookie `name` for this session.
    pub fn seal(&self, name: &str, s: &Session) -> String {
        let mut text = format!(
            "{}|{}|{}|{}|{}|{}",
            if s.outside.is_some() { "v2" } else { "v1" },
            s.user,
            s.issued,
            s.active,
            hex(&s.id),
            hex(&s.fingerprint)
        );
        if let Some(o) = &s.outside {
            let email = o.email.as_deref().unwrap_or("");
            text.push_str(&format!("|{}|{email}|{}", o.provider, o.groups.join(",")));
        }
        self.seal_text(name, &text)
    }

    /// Verifies the MAC (constant time), then decodes. Nothing in the payload is looked
    /// at before the MAC has been checked.
    pub fn open(&self, name: &str, value: &str) -> Result<Session, Refused> {
        decode_payload(&self.open_text(name, value)?).ok_or(Refused::Malformed)
    }

    /// Any text, signed for cookie `name` (a sign-in in progress uses it too).
    pub fn seal_text(&self, name: &str, text: &str) -> String {
        let payload = b64(text.as_bytes());
        let tag = self.tag(name, &payload).finalize().into_bytes();
        format!("{payload}.{}", b64(&tag))
    }

    /// The text of a value `seal_text` made for cookie `name`, once its MAC checks out.
    pub fn open_text(&self, name: &str, value: &str) -> Result<String, Refused> {
        let (payload, tag) = value.rsplit_once('.').ok_or(Refused::Malformed)?;
        let tag = unb64(tag).ok_or(Refused::Malformed)?;
        self.tag(name, payload)
            .verify_slice(&tag)
            .map_err(|_| Refused::BadMac)?;
        let bytes = unb64(payload).ok_or(Refused::Malformed)?;
        String::from_utf8(bytes).map_err(|_| Refused::Malformed)
    }
}

fn decode_payload(text: &str) -> Option<Session> {
    let mut fields = text.split('|');
    let version = fields.next()?;
    let mut session = Session {
        user: fields.next()?.to_string(),
        issued: fields.next()?.parse().ok()?,
        active: fields.next()?.parse().ok()?,
        id: unhex(fields.next()?)?,
        fingerprint: unhex(fields.next()?)?,
        outside: None,
    };
    match version {
        "v1" => {}
        "v2" => {
            let provider = fields.next()?.to_string();
            let email = Some(fields.next()?.to_string()).filter(|e| !e.is_empty());
            let groups = fields.next()?;
            let groups = groups
                .split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect();
            session.outside = Some(Outside {
                provider,
                email,
                groups,
            });
        }
        _ => return None,
    }
    fields.next().is_none().then_some(session)
}

/// What a session is checked against besides its own fields.
pub struct Policy {
    pub ttl: u64,
    pub idle: u64,
}

impl Session {
    pub fn new(user: &str, fingerprint: [u8; 16], now: u64) -> Session {
        Session {
            user: user.to_string(),
            issued: now,
            active: now,
            id: super::random(),
            fingerprint,
            outside: None,
        }
    }

    /// Time rules: not from the future, not past its absolute or idle expiry.
    pub fn check_times(&self, policy: &Policy, now: u64) -> Result<(), Refused> {
        if self.issued > now + MAX_SKEW_SECS || self.active > now + MAX_SKEW_SECS {
            return Err(Refused::FutureDated);
        }
        if now.saturating_sub(self.issued) >= policy.ttl {
            return Err(Refused::Expired);
        }
        if now.saturating_sub(self.active) >= policy.idle {
            return Err(Refused::Idle);
        }
        Ok(())
    }

    /// The moment the absolute lifetime ends.
    pub fn expires(&self, policy: &Policy) -> u64 {
        self.issued.saturating_add(policy.ttl)
    }

    /// Whether the cookie should be re-issued with a fresh `active` time.
    pub fn needs_refresh(&self, now: u64) -> bool {
        now.saturating_sub(self.active) >= REFRESH_AFTER_SECS
    }
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    const NAME: &str = "ftw_session";

    fn codec() -> Codec {
        Codec::new([9; 32])
    }

    fn session() -> Session {
        Session::new("alice", [3; 16], NOW)
    }

    const POLICY: Policy = Policy {
        ttl: 14 * 86400,
        idle: 12 * 3600,
    };

    #[test]
    fn seal_then_open_round_trips() {
        let s = session();
        assert_eq!(codec().open(NAME, &codec().seal(NAME, &s)), Ok(s));
    }

    #[test]
    fn a_provider_session_round_trips() {
        let mut s = session();
        s.outside = Some(Outside {
            provider: "oidc:corp".into(),
            email: Some("a@example.com".into()),
            groups: vec!["ops".into(), "dev".into()],
        });
        assert_eq!(codec().open(NAME, &codec().seal(NAME, &s)), Ok(s.clone()));
        s.outside.as_mut().unwrap().email = None;
        s.outside.as_mut().unwrap().groups.clear();
        assert_eq!(codec().open(NAME, &codec().seal(NAME, &s)), Ok(s));
    }

    #[test]
    fn session_ids_are_random() {
        assert_ne!(session().id, session().id);
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let value = codec().seal(NAME, &session());
        for i in 0..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                codec().open(NAME, &tampered).is_err(),
                "byte {i} changed and still accepted"
            );
        }
    }

    #[test]
    fn truncated_renamed_and_other_key_cookies_are_refused() {
        let value = codec().seal(NAME, &session());
        assert!(codec().open(NAME, &value[..value.len() - 1]).is_err());
        assert!(
            codec()
                .open(NAME, value.split('.').next().unwrap())
                .is_err()
        );
        assert_eq!(
            codec().open("__Host-ftw_session", &value),
            Err(Refused::BadMac)
        );
        assert_eq!(Codec::new([8; 32]).open(NAME, &value), Err(Refused::BadMac));
        assert_eq!(codec().open(NAME, ""), Err(Refused::Malformed));
    }

    #[test]
    fn time_rules() {
        let mut s = session();
        assert_eq!(s.check_times(&POLICY, NOW + 10), Ok(()));
        assert_eq!(s.check_times(&POLICY, NOW + 12 * 3600), Err(Refused::Idle));
        s.active = NOW + 13 * 86400;
        assert_eq!(
            s.check_times(&POLICY, NOW + 14 * 86400),
            Err(Refused::Expired)
        );
        let future = Session::new("alice", [3; 16], NOW + MAX_SKEW_SECS + 1);
        assert_eq!(future.check_times(&POLICY, NOW), Err(Refused::FutureDated));
        let slightly_ahead = Session::new("alice", [3; 16], NOW + 60);
        assert_eq!(slightly_ahead.check_times(&POLICY, NOW), Ok(()));
    }

    #[test]
    fn fingerprints_follow_the_hash() {
        assert_ne!(
            codec().fingerprint("$argon2id$a"),
            codec().fingerprint("$argon2id$b")
        );
        assert_eq!(
            codec().fingerprint("$argon2id$a"),
            codec().fingerprint("$argon2id$a")
        );
    }
}
