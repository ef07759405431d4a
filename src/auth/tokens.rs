//! API tokens: `ftw_` and 43 characters of base64url (256 random bits). The manifest
//! keeps only each token's SHA-256 (a token is long and random, so a fast hash is
//! enough; no one can guess their way back to it). Checking compares the hash of what
//! was presented with every configured hash in constant time, so neither timing nor
//! order reveals which token came close.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::manifest::ApiToken;

pub const PREFIX: &str = "ftw_";

/// A new token and the hash to store.
pub fn generate() -> (String, [u8; 32]) {
    let token = format!("{PREFIX}{}", super::b64(&super::random::<32>()));
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `sha256:<hex>`, as the manifest stores it.
pub fn manifest_form(hash: &[u8; 32]) -> String {
    format!("sha256:{}", super::hex(hash))
}

/// The configured token `presented` is, if any.
pub fn find<'a>(tokens: &'a [ApiToken], presented: &str) -> Option<&'a ApiToken> {
    let presented = hash(presented);
    let mut found = None;
    for token in tokens {
        if bool::from(token.hash.ct_eq(&presented)) && found.is_none() {
            found = Some(token);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_found_by_their_hash_only() {
        let (token, hash) = generate();
        assert!(
            token.starts_with("ftw_") && token.len() == 4 + 43,
            "{token}"
        );
        let tokens = vec![ApiToken {
            name: "ci".into(),
            hash,
            user: "alice".into(),
        }];
        assert_eq!(
            find(&tokens, &token).map(|t| t.user.as_str()),
            Some("alice")
        );
        assert!(find(&tokens, &token[..token.len() - 1]).is_none());
        assert!(find(&tokens, "").is_none());
        assert!(manifest_form(&hash).starts_with("sha256:") && manifest_form(&hash).len() == 71);
    }
}
