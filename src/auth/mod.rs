//! Who is asking: the signing key, session cookies, CSRF tokens, password checks and the
//! `next` redirect rule. Everything here is plain functions and small types with no HTTP
//! framework in sight, so each rule of security.md can be unit-tested on its own; the
//! server module wires them to requests.

pub mod csrf;
pub mod departed;
pub mod github;
pub mod keys;
pub mod ldap;
pub mod next;
pub mod oidc;
pub mod outside;
pub mod passkeys;
pub mod passwords;
pub mod revoked;
pub mod session;
pub mod throttle;
pub mod tokens;
pub mod totp;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `N` random bytes from the OS CSPRNG.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random generator is available");
    bytes
}

/// URL-safe base64 without padding: the encoding of everything ftw puts in cookies,
/// tokens and ids.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Lower-case hex: fingerprints, token hashes and keys as people read them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
