//! `ftw cert --self-signed`: a certificate and key for `ftw serve --tls-cert/--tls-key`,
//! made with rcgen on the ring provider. The key is written with mode 0600 from the
//! moment it exists, and both files go to a temporary name first and are renamed into
//! place, so an interrupted run never leaves half a key behind.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DnType, KeyPair};
use sha2::{Digest, Sha256};

use crate::cli::CertArgs;
use crate::error::{Error, Result};
use crate::manifest::io_reason;

const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

pub fn run(args: CertArgs) -> Result<()> {
    if !args.self_signed {
        return Err(Error::usage(
            "`ftw cert` needs a mode. It can make a self-signed certificate today:\n\n    \
             ftw cert --self-signed [--san NAME]... [--no-default-sans] [--days N] [--out-dir DIR] [--force]\n\n\
             For a name the public can reach, use a certificate from your CA or from \
             Let's Encrypt (certbot, or a proxy such as Caddy) and pass its files to \
             `ftw serve --tls-cert FILE --tls-key FILE`.",
        ));
    }
    // The names asked for first (the first is the certificate's common name), then the
    // loopback names, so the URL `ftw serve` prints on this machine works too.
    let mut sans: Vec<String> = args.sans.clone();
    if !args.no_default_sans {
        for name in DEFAULT_SANS {
            if !sans.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                sans.push(name.to_string());
            }
        }
    }
    for san in &sans {
        check_san(san)?;
    }

    let cert_path = args.out_dir.join("cert.pem");
    let key_path = args.out_dir.join("key.pem");
    if !args.force {
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(Error::usage(format!(
                    "{} already exists; pass --force to replace it, or --out-dir to write elsewhere",
                    path.display()
                )));
            }
        }
    }
    fs::create_dir_all(&args.out_dir).map_err(|e| {
        Error::runtime(format!(
            "cannot create {}: {}",
            args.out_dir.display(),
            io_reason(&e)
        ))
    })?;

    let made = make(&sans, args.days)?;
    write_atomically(&key_path, made.key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert_path, made.cert_pem.as_bytes(), 0o644)?;

    println!(
        "Wrote {} (self-signed, valid {} days, for {})",
        cert_path.display(),
        args.days,
        sans.join(", ")
    );
    println!("Wrote {} (private key, mode 0600)", key_path.display());
    println!("SHA-256 fingerprint: {}", made.fingerprint);
    println!();
    println!("Serve with:");
    println!(
        "  ftw serve tools.toml --tls-cert {} --tls-key {}",
        shell_word(&cert_path),
        shell_word(&key_path)
    );
    println!(
        "Browsers warn about a self-signed certificate; compare the fingerprint above with the one they show."
    );
    Ok(())
}

/// A freshly made certificate and key, PEM-encoded.
pub struct Made {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 of the DER certificate, as `AB:CD:...`.
    pub fingerprint: String,
}

pub fn make(sans: &[String], days: u32) -> Result<Made> {
    let fail = |e: rcgen::Error| Error::runtime(format!("cannot make the certificate: {e}"));
    let mut params = CertificateParams::new(sans.to_vec()).map_err(fail)?;
    params
        .distinguished_name
        .push(DnType::CommonName, sans[0].clone());
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ftw self-signed");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days.into());
    let key = KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    let fingerprint = Sha256::digest(cert.der().as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(Made {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint,
    })
}

/// An IP address, or a DNS name (letters, digits and `-` per label, `*.` in front allowed).
fn check_san(san: &str) -> Result<()> {
    if san.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = san.strip_prefix("*.").unwrap_or(san);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "--san {san:?} is neither an IP address nor a DNS name (such as ftw.example.lan)"
        )))
    }
}

/// Writes to a temporary file beside `path` with `mode`, then renames it into place.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::runtime(format!(
            "cannot write {}: {}",
            path.display(),
            io_reason(&e)
        ))
    };
    let mut tmp: PathBuf = path.to_path_buf();
    tmp.set_extension(format!("pem.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

/// A path as one shell word, quoted only when it has to be.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_checked() {
        for ok in [
            "localhost",
            "127.0.0.1",
            "::1",
            "ftw.example.lan",
            "*.example.com",
        ] {
            assert!(check_san(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "-x.com", "x..com", "é.com", "*."] {
            assert!(check_san(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(Path::new("./cert.pem")), "./cert.pem");
        assert_eq!(
            shell_word(Path::new("my dir/it's.pem")),
            r"'my dir/it'\''s.pem'"
        );
    }
}
