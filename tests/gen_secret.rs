//! `ftw gen-secret`: length, encoding, randomness, bounds.

use base64::Engine as _;

use crate::support::Test;

fn secret(args: &[&str]) -> String {
    let mut all = vec!["gen-secret"];
    all.extend_from_slice(args);
    let out = Test::new().args(&all).run();
    out.success();
    assert!(
        out.stdout.ends_with('\n') && out.stdout.lines().count() == 1,
        "{:?}",
        out.stdout
    );
    out.stdout.trim_end().to_string()
}

#[test]
fn default_is_32_bytes_of_hex() {
    let s = secret(&[]);
    assert_eq!(s.len(), 64);
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn bytes_and_base64() {
    assert_eq!(secret(&["--bytes", "16"]).len(), 32);
    let b64 = secret(&["--bytes", "48", "--base64"]);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    assert_eq!(raw.len(), 48);
}

#[test]
fn keys_too_short_for_serve_come_with_a_note() {
    Test::new()
        .args(&["gen-secret", "--bytes", "16"])
        .run()
        .success()
        .stderr_is("note: `ftw serve` needs a signing key of at least 32 bytes; this one is 16\n");
    Test::new()
        .args(&["gen-secret"])
        .run()
        .success()
        .stderr_is("");
}

#[test]
fn two_secrets_differ() {
    assert_ne!(secret(&[]), secret(&[]));
}

#[test]
fn fewer_than_16_bytes_is_refused() {
    Test::new()
        .args(&["gen-secret", "--bytes", "15"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has("15 is not in 16..=1024");
}
