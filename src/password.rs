//! Password hashing with argon2id: the parameters ftw writes, the ones it accepts, and
//! checking a password against a hash. Hashes are PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), the format `ftw hash-password` prints
//! and the manifest stores.
//!
//! The floor is OWASP's argon2id minimum (m=19456 KiB, t=2, p=1); a hash below it is
//! refused at load time rather than silently accepted. There is a ceiling too, because
//! verifying uses the cost written in the hash: a hash asking for 64 GiB would take the
//! server down at the first sign-in.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};
use subtle::ConstantTimeEq;

/// OWASP's minimum for argon2id, and what ftw writes.
pub const MIN_M_COST: u32 = 19_456;
pub const MIN_T_COST: u32 = 2;
pub const MIN_P_COST: u32 = 1;
/// The most a hash may ask for: 1 GiB of memory, 64 passes, 16 lanes.
pub const MAX_M_COST: u32 = 1 << 20;
pub const MAX_T_COST: u32 = 64;
pub const MAX_P_COST: u32 = 16;

/// Longer passwords are refused before hashing (security.md 10).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// argon2id's cost: memory (KiB), passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost {
    pub m: u32,
    pub t: u32,
    pub p: u32,
}

/// What `ftw hash-password` writes.
pub const DEFAULT_COST: Cost = Cost {
    m: MIN_M_COST,
    t: MIN_T_COST,
    p: MIN_P_COST,
};

fn hasher_with(cost: Cost) -> Argon2<'static> {
    let params = Params::new(cost.m, cost.t, cost.p, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hasher() -> Argon2<'static> {
    hasher_with(DEFAULT_COST)
}

/// The cost written in a PHC string ftw accepts.
pub fn cost_of(phc: &str) -> Option<Cost> {
    let parsed = PasswordHash::new(phc).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    Some(Cost {
        m: params.m_cost(),
        t: params.t_cost(),
        p: params.p_cost(),
    })
}

/// Hashes with a chosen cost (for the dummy hash that must cost what real ones do).
pub fn hash_with(password: &[u8], cost: Cost) -> Result<String, String> {
    check_length(password)?;
    hasher_with(cost)
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Refuses what may not be hashed: nothing, or more than 1024 bytes.
pub fn check_length(password: &[u8]) -> Result<(), String> {
    if password.is_empty() {
        Err("the password is empty".into())
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(format!(
            "the password is {} bytes long; the most ftw accepts is {MAX_PASSWORD_BYTES}",
            password.len()
        ))
    } else {
        Ok(())
    }
}

/// Hashes a password with a fresh random salt.
pub fn hash(password: &[u8]) -> Result<String, String> {
    check_length(password)?;
    hasher()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `password` matches `phc`. A malformed hash never matches.
pub fn verify(password: &[u8], phc: &str) -> bool {
    verify_with_memory(password, phc, &mut Vec::new())
}

/// `verify`, with argon2's working memory (m KiB) kept in `memory` for the next call.
/// A sign-in server that allocated 19 MiB per verification would page-fault through
/// all of it every time, and glibc keeps freed blocks of that size in per-thread
/// arenas: a burst of sign-ins left hundreds of MB behind.
pub fn verify_with_memory(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    if check_length(password).is_err() {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if check_parsed(&parsed).is_err() {
        return false;
    }
    let (Some(salt), Some(expected), Ok(params)) =
        (&parsed.salt, &parsed.hash, Params::try_from(&parsed))
    else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .unwrap_or(Version::V0x13);
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), &mut out, &mut memory[..blocks])
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Checks that a PHC string is an argon2id hash ftw will accept; the error says why not.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| format!("it is not a valid PHC string ({e})"))?;
    check_parsed(&parsed)
}

fn check_parsed(parsed: &PasswordHash) -> Result<(), String> {
    let algorithm = parsed.algorithm.as_str();
    if algorithm != "argon2id" {
        return Err(format!("it uses {algorithm}; ftw accepts argon2id only"));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("it has no salt or no hash part".into());
    }
    let params =
        Params::try_from(parsed).map_err(|e| format!("its parameters are invalid ({e})"))?;
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m < MIN_M_COST || t < MIN_T_COST || p < MIN_P_COST {
        return Err(format!(
            "its cost m={m},t={t},p={p} is below the minimum m={MIN_M_COST},t={MIN_T_COST},p={MIN_P_COST}"
        ));
    }
    if m > MAX_M_COST || t > MAX_T_COST || p > MAX_P_COST {
        return Err(format!(
            "its cost m={m},t={t},p={p} is above the maximum m={MAX_M_COST},t={MAX_T_COST},p={MAX_P_COST}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_meet_the_floor() {
        let h = hash(b"correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(b"correct horse", &h));
        assert!(!verify(b"correct horsf", &h));
        assert!(check_hash(&h).is_ok());
    }

    #[test]
    fn reused_memory_gives_the_same_answers() {
        let mut memory = Vec::new();
        let a = hash(b"first").unwrap();
        let strong = hash_with(
            b"second",
            Cost {
                m: 32768,
                t: 3,
                p: 2,
            },
        )
        .unwrap();
        for _ in 0..2 {
            assert!(verify_with_memory(b"first", &a, &mut memory));
            assert!(!verify_with_memory(b"firsT", &a, &mut memory));
            assert!(verify_with_memory(b"second", &strong, &mut memory));
            assert!(!verify_with_memory(b"first", &strong, &mut memory));
        }
        assert_eq!(memory.len(), 32768, "grown to the largest cost, kept");
        // (The hashes come from the argon2 crate's own hasher: the two agree.)
    }

    #[test]
    fn lengths_are_bounded() {
        assert!(hash(b"").is_err());
        assert!(hash(&[b'a'; 1025]).is_err());
        assert!(check_length(&[b'a'; 1024]).is_ok());
    }

    #[test]
    fn weak_or_foreign_hashes_are_refused() {
        let weak =
            "$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$2Yx9Lpq0RMeQWCUgiHVU3A1J0e3x3cEtCRXdeaQC7Qk";
        assert!(check_hash(weak).unwrap_err().contains("below the minimum"));
        let argon2i =
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$2Yx9Lpq0RMeQWCUgiHVU3A1J0e3x3cEtCRXdeaQC7Qk";
        assert!(check_hash(argon2i).unwrap_err().contains("argon2id only"));
        assert!(check_hash("$argon2id$garbage").is_err());
        assert!(!verify(b"x", "$argon2id$garbage"));
    }
}
