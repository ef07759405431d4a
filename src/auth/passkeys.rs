//! Passkeys (WebAuthn), through `webauthn-rs`: the relying party is the host the browser
//! addressed (checked against the allowed hosts before any handler runs), so a passkey
//! made at `tools.example.com` works there and nowhere else, as WebAuthn intends.
//!
//! A ceremony (make a passkey, or sign in with one) has two halves: ftw sends a
//! challenge, the browser answers it. Between the two the ceremony waits here, in
//! memory, for at most five minutes, under a random id, and is taken out (once) by the
//! answer. A passkey's user handle is a keyed hash of the user name, so the
//! authenticator never learns the name from it and a renamed key cannot be matched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::store::{PasskeyRecord, Store};

/// How long a started ceremony may wait for the browser's answer.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Ceremonies waiting at once, at most; the oldest give way.
const MAX_WAITING: usize = 10_000;
/// Passkeys one user may have.
pub const MAX_PER_USER: usize = 16;

/// What a started ceremony is for, with webauthn-rs's state for its second half.
/// Serialisable (webauthn-rs's `danger-allow-state-serialisation`) so replicas can
/// keep it in their shared database; it never leaves the server.
#[derive(serde::Serialize, serde::Deserialize)]
pub enum Ceremony {
    /// A signed-in user makes a passkey.
    Register {
        user: String,
        state: PasskeyRegistration,
    },
    /// The second step of a password sign-in; `step` is that sign-in's nonce.
    SecondFactor {
        user: String,
        step: [u8; 16],
        state: PasskeyAuthentication,
    },
    /// A sign-in with a passkey alone, from the browser with this login nonce.
    Passwordless {
        nonce: Vec<u8>,
        state: DiscoverableAuthentication,
    },
}

/// Ceremonies waiting for the browser's answer: in memory, or with replicas in the
/// shared database (the answer may reach another replica than the challenge).
#[derive(Default)]
pub struct Ceremonies {
    waiting: Mutex<HashMap<String, (Ceremony, Instant)>>,
    shared: Option<Arc<dyn Store>>,
}

impl Ceremonies {
    /// Ceremonies kept in `store` when it is shared, else in memory.
    pub fn new(store: &Arc<dyn Store>) -> Ceremonies {
        Ceremonies {
            waiting: Mutex::default(),
            shared: store.shared().then(|| Arc::clone(store)),
        }
    }

    /// Keeps `ceremony` until its answer; the id to send with the challenge. A browser
    /// has one passwordless ceremony at a time: a new one replaces the last.
    pub async fn hold(&self, ceremony: Ceremony) -> Result<String, String> {
        let Some(store) = &self.shared else {
            return Ok(self.hold_here(ceremony));
        };
        let id = crate::auth::b64(&crate::auth::random::<16>());
        let nonce = match &ceremony {
            Ceremony::Passwordless { nonce, .. } => Some(crate::auth::hex(nonce)),
            _ => None,
        };
        let json = serde_json::to_string(&ceremony).map_err(|e| e.to_string())?;
        store
            .hold_ceremony(&id, nonce.as_deref(), json)
            .await
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    /// The ceremony `id`, once, if it is still fresh.
    pub async fn take(&self, id: &str) -> Option<Ceremony> {
        let Some(store) = &self.shared else {
            return self.take_here(id);
        };
        let since = crate::store::unix_ms(std::time::SystemTime::now() - CEREMONY_TTL);
        match store.take_ceremony(id, since).await {
            Ok(json) => serde_json::from_str(&json?).ok(),
            Err(e) => {
                tracing::error!("cannot read a passkey ceremony from the database: {e}");
                None
            }
        }
    }

    fn hold_here(&self, ceremony: Ceremony) -> String {
        let id = crate::auth::b64(&crate::auth::random::<16>());
        let mut waiting = self.waiting.lock().expect("ceremony lock");
        if let Ceremony::Passwordless { nonce, .. } = &ceremony {
            waiting.retain(|_, (c, _)| {
                !matches!(c, Ceremony::Passwordless { nonce: other, .. } if other == nonce)
            });
        }
        if waiting.len() >= MAX_WAITING {
            waiting.retain(|_, (_, at)| at.elapsed() < CEREMONY_TTL);
        }
        if waiting.len() >= MAX_WAITING
            && let Some(oldest) = waiting
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| id.clone())
        {
            waiting.remove(&oldest);
        }
        waiting.insert(id.clone(), (ceremony, Instant::now()));
        id
    }

    fn take_here(&self, id: &str) -> Option<Ceremony> {
        let (ceremony, at) = self.waiting.lock().expect("ceremony lock").remove(id)?;
        (at.elapsed() < CEREMONY_TTL).then_some(ceremony)
    }
}

/// The relying party for `origin` (`scheme://host[:port]`, as the browser addressed ftw).
pub fn relying_party(origin: &str, name: &str) -> Result<Webauthn, String> {
    let url = Url::parse(origin).map_err(|e| format!("bad origin {origin}: {e}"))?;
    let host = url.host_str().ok_or("the origin has no host")?.to_string();
    WebauthnBuilder::new(&host, &url)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| format!("passkeys cannot be used at {origin}: {e}"))
}

/// The user handle of `user`'s passkeys: a keyed hash of the name.
pub fn user_handle(key: &[u8; 32], user: &str) -> Uuid {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"passkey user handle\0");
    mac.update(user.as_bytes());
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    let bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    uuid_from(bytes)
}

fn uuid_from(bytes: [u8; 16]) -> Uuid {
    Uuid::from_bytes(bytes)
}

/// The credential of a stored passkey.
pub fn credential(record: &PasskeyRecord) -> Option<Passkey> {
    serde_json::from_str(&record.passkey).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_are_stable_keyed_and_distinct() {
        let a = user_handle(&[1; 32], "alice");
        assert_eq!(a, user_handle(&[1; 32], "alice"));
        assert_ne!(a, user_handle(&[2; 32], "alice"));
        assert_ne!(a, user_handle(&[1; 32], "bob"));
    }

    #[test]
    fn a_ceremony_is_taken_once() {
        let ceremonies = Ceremonies::default();
        let rp = relying_party("http://localhost:8000", "ftw").unwrap();
        let (_, state) = rp
            .start_passkey_registration(user_handle(&[1; 32], "a"), "a", "a", None)
            .unwrap();
        let id = ceremonies.hold_here(Ceremony::Register {
            user: "a".into(),
            state,
        });
        assert!(ceremonies.take_here(&id).is_some());
        assert!(ceremonies.take_here(&id).is_none());
        assert!(ceremonies.take_here("made-up").is_none());
    }

    #[test]
    fn the_relying_party_is_the_host() {
        assert!(relying_party("https://tools.example.com", "ftw").is_ok());
        assert!(relying_party("not a url", "ftw").is_err());
    }
}
