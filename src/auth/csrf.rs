//! CSRF tokens: an HMAC of the session id under the CSRF key, so a token is tied to one
//! session, needs no server-side storage, and dies with the session. Before sign-in there
//! is no session, so the login form is bound to a random pre-login nonce kept in its own
//! short-lived cookie (double submit, signed); it is cleared when the session starts, so
//! nothing from before login survives it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{b64, unb64};

/// What a token is bound to; the purpose is part of the MAC so the two never mix.
#[derive(Clone, Copy)]
pub enum Binding<'a> {
    Session(&'a [u8; 16]),
    Login(&'a [u8]),
}

fn mac(key: &[u8; 32], binding: Binding) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    match binding {
        Binding::Session(id) => {
            mac.update(b"session\0");
            mac.update(id);
        }
        Binding::Login(nonce) => {
            mac.update(b"login\0");
            mac.update(nonce);
        }
    }
    mac
}

pub fn token(key: &[u8; 32], binding: Binding) -> String {
    b64(&mac(key, binding).finalize().into_bytes())
}

/// A stable 128-bit id for a caller who has no ftw session (a forwarded user, an API
/// token), to bind their CSRF tokens to. `purpose` keeps the kinds of names apart.
pub fn derive_id(key: &[u8; 32], purpose: &str, name: &str) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(name.as_bytes());
    let full: [u8; 32] = mac.finalize().into_bytes().into();
    full[..16].try_into().expect("16 of 32 bytes")
}

/// Constant-time check of a submitted token.
pub fn verify(key: &[u8; 32], binding: Binding, submitted: &str) -> bool {
    match unb64(submitted) {
        Some(tag) => mac(key, binding).verify_slice(&tag).is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_session_and_purpose() {
        let key = [5; 32];
        let t = token(&key, Binding::Session(&[1; 16]));
        assert!(verify(&key, Binding::Session(&[1; 16]), &t));
        assert!(!verify(&key, Binding::Session(&[2; 16]), &t));
        assert!(!verify(&key, Binding::Login(&[1; 16]), &t));
        assert!(!verify(&[6; 32], Binding::Session(&[1; 16]), &t));
        assert!(!verify(&key, Binding::Session(&[1; 16]), ""));
        assert!(!verify(&key, Binding::Session(&[1; 16]), &t[..t.len() - 1]));
    }
}
