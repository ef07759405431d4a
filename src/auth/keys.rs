//! The secret key that signs session cookies and CSRF tokens: where it comes from
//! (`--secret-key-file`, then `FTW_SECRET_KEY`, then `[auth] secret_key_file`, else a
//! random key for this run), how its text is read (hex, base64 or raw bytes), and the
//! purpose-specific keys derived from it, so a MAC made for one purpose can never pass
//! as another.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const MIN_KEY_BYTES: usize = 32;

/// Where the key came from, for the start-up message.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    Flag(PathBuf),
    Env,
    Manifest(PathBuf),
    /// None configured: random for this run; sessions end at restart.
    Ephemeral,
}

/// The keys ftw signs with, derived from the configured secret.
#[derive(Clone)]
pub struct Keys {
    pub session: [u8; 32],
    pub csrf: [u8; 32],
    pub source: KeySource,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub fn from_secret(secret: &[u8], source: KeySource) -> Keys {
        Keys {
            session: derive(secret, b"ftw session cookie v1"),
            csrf: derive(secret, b"ftw csrf token v1"),
            source,
        }
    }

    /// Finds the key in the order the docs give. `env_value` is `FTW_SECRET_KEY`.
    /// Returns the keys and, when the key is weakly protected or missing, a warning.
    pub fn load(
        flag: Option<&Path>,
        env_value: Option<&str>,
        manifest: Option<&Path>,
    ) -> Result<(Keys, Option<String>), String> {
        if let Some(path) = flag {
            let secret = read_key_file(path)?;
            return Ok((
                Keys::from_secret(&secret, KeySource::Flag(path.into())),
                permission_warning(path),
            ));
        }
        if let Some(text) = env_value.filter(|v| !v.trim().is_empty()) {
            let secret = decode(text).map_err(|why| format!("FTW_SECRET_KEY {why}"))?;
            return Ok((Keys::from_secret(&secret, KeySource::Env), None));
        }
        if let Some(path) = manifest {
            let secret = read_key_file(path)?;
            return Ok((
                Keys::from_secret(&secret, KeySource::Manifest(path.into())),
                permission_warning(path),
            ));
        }
        let warning = "no secret key is configured, so ftw made one for this run: everyone is \
                       signed out when it restarts. Keep sessions across restarts with \
                       `ftw gen-secret > ftw.secret && chmod 600 ftw.secret` and \
                       --secret-key-file ftw.secret"
            .to_string();
        Ok((
            Keys::from_secret(&super::random::<32>(), KeySource::Ephemeral),
            Some(warning),
        ))
    }
}

fn derive(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the secret key file {}: {}",
            path.display(),
            crate::manifest::io_reason(&e)
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    decode(&text).map_err(|why| format!("the secret key in {} {why}", path.display()))
}

/// Reads a key written as hex (what `ftw gen-secret` prints), base64 (`--base64`), or
/// failing both, raw bytes; surrounding whitespace is ignored. At least 32 bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let (bytes, written) =
        if text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
                .collect();
            (bytes, format!("{} hex digits", text.len()))
        } else if let Ok(b) = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        {
            (b, format!("{} base64 characters", text.len()))
        } else {
            let raw = text.as_bytes().to_vec();
            (raw, "plain text, neither hex nor base64".to_string())
        };
    if bytes.len() < MIN_KEY_BYTES {
        return Err(format!(
            "is only {} bytes long (written as {written}); ftw needs at least {MIN_KEY_BYTES} \
             bytes ({} hex digits). Make a good one with `ftw gen-secret`",
            bytes.len(),
            MIN_KEY_BYTES * 2
        ));
    }
    Ok(bytes)
}

fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "the secret key file {} can be read by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_base64_and_raw_keys_decode() {
        let hex = "ab".repeat(32);
        assert_eq!(decode(&format!("  {hex}\n")).unwrap(), vec![0xab; 32]);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 40]);
        assert_eq!(decode(&b64).unwrap(), vec![7u8; 40]);
        assert_eq!(decode(&"x".repeat(33)).unwrap().len(), 33);
    }

    #[test]
    fn short_keys_are_refused_with_a_pointer_to_gen_secret() {
        let err = decode(&"ab".repeat(16)).unwrap_err();
        assert!(
            err.contains("only 16 bytes long (written as 32 hex digits)")
                && err.contains("ftw gen-secret"),
            "{err}"
        );
    }

    #[test]
    fn derived_keys_differ_per_purpose() {
        let k = Keys::from_secret(&[1; 32], KeySource::Ephemeral);
        assert_ne!(k.session, k.csrf);
    }
}
