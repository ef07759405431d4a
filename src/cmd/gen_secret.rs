//! `ftw gen-secret`: random bytes from the OS CSPRNG, printed alone on one line.

use base64::Engine as _;

use crate::error::{Error, Result};

pub fn run(bytes: usize, base64: bool) -> Result<()> {
    if bytes < crate::auth::keys::MIN_KEY_BYTES {
        eprintln!(
            "note: `ftw serve` needs a signing key of at least {} bytes; this one is {bytes}",
            crate::auth::keys::MIN_KEY_BYTES
        );
    }
    println!("{}", generate(bytes, base64)?);
    Ok(())
}

pub fn generate(bytes: usize, base64: bool) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::runtime(format!("the OS random generator failed: {e}")))?;
    Ok(if base64 {
        base64::engine::general_purpose::STANDARD.encode(&buf)
    } else {
        crate::auth::hex(&buf)
    })
}
