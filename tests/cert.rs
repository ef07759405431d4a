//! `ftw cert --self-signed`: files, key mode, SANs, fingerprint, overwrite protection.

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use crate::support::Test;

/// The DER bytes of the first PEM block in `pem`.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn sans(der: &[u8]) -> Vec<String> {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let ext = cert.subject_alternative_name().unwrap().unwrap();
    ext.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap()).to_string(),
                _ => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap()).to_string(),
            },
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn self_signed_writes_cert_and_private_key_and_says_how_to_serve() {
    let out = Test::new().args(&["cert", "--self-signed"]).run();
    out.success();
    let cert_pem = std::fs::read_to_string(out.path("cert.pem")).unwrap();
    let key_pem = std::fs::read_to_string(out.path("key.pem")).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let mode = std::fs::metadata(out.path("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");

    let der = der(&cert_pem);
    assert_eq!(sans(&der), ["localhost", "127.0.0.1", "::1"]);
    let fingerprint: Vec<String> = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    out.stdout_has(&format!("SHA-256 fingerprint: {}\n", fingerprint.join(":")))
        .stdout_has("  ftw serve tools.toml --tls-cert ./cert.pem --tls-key ./key.pem\n");

    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86400;
    assert_eq!(
        days, 365,
        "valid for a year (plus the five minutes of clock skew)"
    );
}

#[test]
fn custom_names_days_and_folder() {
    let out = Test::new()
        .args(&[
            "cert",
            "--self-signed",
            "--san",
            "ftw.example.lan",
            "--san",
            "10.0.0.7",
            "--days",
            "30",
            "--out-dir",
            "tls",
        ])
        .run();
    out.success()
        .stdout_has("--tls-cert tls/cert.pem --tls-key tls/key.pem");
    let der = der(&std::fs::read_to_string(out.path("tls/cert.pem")).unwrap());
    assert_eq!(
        sans(&der),
        [
            "ftw.example.lan",
            "10.0.0.7",
            "localhost",
            "127.0.0.1",
            "::1"
        ],
        "the loopback names are kept"
    );
}

#[test]
fn no_default_sans_leaves_the_loopback_names_out() {
    let out = Test::new()
        .args(&[
            "cert",
            "--self-signed",
            "--san",
            "ftw.example.lan",
            "--no-default-sans",
        ])
        .run();
    out.success().stdout_has("for ftw.example.lan)");
    let der = der(&std::fs::read_to_string(out.path("cert.pem")).unwrap());
    assert_eq!(sans(&der), ["ftw.example.lan"]);
    // Without a --san there would be no name at all.
    Test::new()
        .args(&["cert", "--self-signed", "--no-default-sans"])
        .run()
        .code(2)
        .stderr_has("--san");
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let test = Test::new()
        .file("key.pem", "precious")
        .args(&["cert", "--self-signed"]);
    let out = test.run();
    out.code(2).stderr_is(
        "error: ./key.pem already exists; pass --force to replace it, or --out-dir to write elsewhere\n",
    );
    assert_eq!(
        std::fs::read_to_string(out.path("key.pem")).unwrap(),
        "precious"
    );
    assert!(!out.path("cert.pem").exists(), "nothing half-written");

    let forced = Test::new()
        .file("key.pem", "precious")
        .args(&["cert", "--self-signed", "--force"])
        .run();
    forced.success();
    let key = std::fs::read_to_string(forced.path("key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let mode = std::fs::metadata(forced.path("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn without_a_mode_it_explains_what_it_can_do() {
    Test::new()
        .args(&["cert"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has("ftw cert --self-signed [--san NAME]...")
        .stderr_has("Let's Encrypt");
}

#[test]
fn bad_names_are_refused() {
    Test::new()
        .args(&["cert", "--self-signed", "--san", "not a name"])
        .run()
        .code(2)
        .stderr_is("error: --san \"not a name\" is neither an IP address nor a DNS name (such as ftw.example.lan)\n");
}
