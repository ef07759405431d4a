//! The TOTP second factor (RFC 6238) as authenticator apps expect it: SHA-1, six
//! digits, 30-second steps. A code from the step before or after is accepted (clock
//! skew), and each step is accepted at most once per user, so a code seen over a
//! shoulder or in a proxy log cannot be replayed while it is still valid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use totp_rs::{Algorithm, Builder, Totp};

pub const DIGITS: u8 = 6;
pub const STEP: u64 = 30;

fn totp(secret: &[u8], account: &str, issuer: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(issuer))
        .build()
        .ok()
}

/// The time step `code` is valid for at `now` (within one step either way), if any.
pub fn check(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "user", "ftw")?.check(code, now)
}

/// The current code, for tests and for `ftw totp-setup` to show a sample.
pub fn code_at(secret: &[u8], now: u64) -> String {
    totp(secret, "user", "ftw")
        .map(|t| t.generate(now).to_string())
        .unwrap_or_default()
}

/// A new 160-bit secret (RFC 4226's recommendation) from the OS CSPRNG.
pub fn new_secret() -> Vec<u8> {
    super::random::<20>().to_vec()
}

pub fn to_base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// The `otpauth://` URI an authenticator app scans.
pub fn uri(secret: &[u8], account: &str, issuer: &str) -> Result<String, String> {
    totp(secret, account, issuer)
        .ok_or_else(|| "the TOTP secret is not usable".to_string())?
        .to_url()
        .map_err(|e| format!("cannot make the otpauth URI: {e}"))
}

/// The last step each user signed in with; a step is never accepted twice, not even
/// across a restart (each accepted step is written to the state database).
#[derive(Default)]
pub struct Replays {
    last: Mutex<HashMap<String, u64>>,
    store: Option<Arc<dyn crate::store::Store>>,
}

impl std::fmt::Debug for Replays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replays").finish_non_exhaustive()
    }
}

impl Replays {
    /// Steps written to `store`, starting from those it kept.
    pub fn restore(store: Arc<dyn crate::store::Store>, kept: Vec<(String, u64)>) -> Replays {
        Replays {
            last: Mutex::new(kept.into_iter().collect()),
            store: Some(store),
        }
    }

    /// Records `step` for `user`; false if that step (or a later one) was used already,
    /// here or, with replicas sharing the database, on any of them (the database
    /// decides; one that cannot answer refuses the code).
    pub async fn accept(&self, user: &str, step: u64) -> bool {
        let Some(store) = self.store.as_ref().filter(|s| s.shared()) else {
            return self.accept_here(user, step);
        };
        if self
            .last
            .lock()
            .expect("replay lock")
            .get(user)
            .is_some_and(|&used| step <= used)
        {
            return false;
        }
        match store.totp_accept(user, step).await {
            Ok(accepted) => {
                if accepted {
                    let mut last = self.last.lock().expect("replay lock");
                    let used = last.entry(user.to_string()).or_insert(step);
                    *used = (*used).max(step);
                }
                accepted
            }
            Err(e) => {
                tracing::error!("cannot record a used TOTP code ({e}); refusing it");
                false
            }
        }
    }

    /// `accept`, decided in this process's memory (one ftw on its own database).
    fn accept_here(&self, user: &str, step: u64) -> bool {
        let mut last = self.last.lock().expect("replay lock");
        match last.get(user) {
            Some(&used) if step <= used => false,
            _ => {
                last.insert(user.to_string(), step);
                if let Some(store) = &self.store {
                    drop(store.totp_used(user, step));
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238's test secret for SHA-1.
    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors_and_skew() {
        assert_eq!(code_at(SECRET, 59), "287082");
        assert_eq!(code_at(SECRET, 1_111_111_109), "081804");
        assert_eq!(
            check(SECRET, "081804", 1_111_111_109),
            Some(1_111_111_109 / 30)
        );
        assert!(
            check(SECRET, "081804", 1_111_111_109 + 30).is_some(),
            "one step late is fine"
        );
        assert!(
            check(SECRET, "081804", 1_111_111_109 + 61).is_none(),
            "two steps late is not"
        );
        assert!(check(SECRET, "81804", 1_111_111_109).is_none());
        assert!(check(SECRET, "08180a", 1_111_111_109).is_none());
    }

    #[test]
    fn a_step_is_accepted_once() {
        let r = Replays::default();
        assert!(r.accept_here("alice", 100));
        assert!(!r.accept_here("alice", 100));
        assert!(!r.accept_here("alice", 99));
        assert!(r.accept_here("bob", 100));
        assert!(r.accept_here("alice", 101));
    }

    #[test]
    fn uris_name_the_account_and_issuer() {
        let u = uri(SECRET, "alice", "Acme ops").unwrap();
        assert!(u.starts_with("otpauth://totp/Acme%20ops:alice?"), "{u}");
        assert!(u.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
    }
}
