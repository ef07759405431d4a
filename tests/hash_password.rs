//! `ftw hash-password`: piped and interactive input, limits, and `--verify`.

use std::process::Command;

use crate::support::pty::Pty;
use crate::support::{BIN, HASH_A, Test};

fn hash_of(input: &[u8]) -> String {
    let out = Test::new().args(&["hash-password"]).stdin(input).run();
    out.success();
    out.stdout.trim_end().to_string()
}

fn verify(hash: &str, input: &[u8]) -> i32 {
    Test::new()
        .args(&["hash-password", "--verify", hash])
        .stdin(input)
        .run()
        .code
}

#[test]
fn piped_password_is_hashed_with_argon2id_at_the_owasp_floor() {
    let hash = hash_of(b"correct horse\n");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(verify(&hash, b"correct horse\n"), 0);
    assert_eq!(verify(&hash, b"correct horsE\n"), 1);
}

#[test]
fn only_the_first_line_counts_and_crlf_is_stripped() {
    let hash = hash_of(b"pa ss \r\nsecond line\n");
    assert_eq!(
        verify(&hash, b"pa ss "),
        0,
        "spaces are kept, the line ending is not"
    );
}

#[test]
fn short_passwords_are_hashed_with_a_warning() {
    Test::new()
        .args(&["hash-password"])
        .stdin("abc\n")
        .run()
        .success()
        .stderr_is("warning: this password is only 3 characters long; 12 or more resist guessing far better\n");
    Test::new()
        .args(&["hash-password"])
        .stdin("a long enough passphrase\n")
        .run()
        .success()
        .stderr_is("");
}

#[test]
fn salts_differ() {
    assert_ne!(hash_of(b"same\n"), hash_of(b"same\n"));
}

#[test]
fn verify_against_a_known_hash() {
    assert_eq!(verify(HASH_A, b"hunter2-but-longer\n"), 0);
    let out = Test::new()
        .args(&["hash-password", "--verify", HASH_A])
        .stdin("wrong\n")
        .run();
    out.code(1)
        .stderr_is("error: the password does not match the hash\n");
}

#[test]
fn verify_refuses_a_malformed_hash() {
    Test::new()
        .args(&["hash-password", "--verify", "not-a-hash"])
        .stdin("x\n")
        .run()
        .code(2)
        .stderr_has("the hash given to --verify is not usable");
}

#[test]
fn empty_password_is_refused() {
    for input in [&b""[..], b"\n"] {
        Test::new()
            .args(&["hash-password"])
            .stdin(input)
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is("error: the password is empty; nothing was hashed\n");
    }
}

#[test]
fn passwords_up_to_1024_bytes_are_accepted_whole_and_longer_refused() {
    let mut long = vec![b'x'; 1024];
    let hash = hash_of(&long);
    long.push(b'\n');
    assert_eq!(verify(&hash, &long), 0);
    long.pop();
    long[1023] = b'y';
    assert_eq!(verify(&hash, &long), 1, "the last byte counts");

    Test::new()
        .args(&["hash-password"])
        .stdin(vec![b'x'; 1025])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: the password is 1025 bytes long; the most ftw accepts is 1024; nothing was hashed\n");
}

#[test]
fn terminal_asks_twice_without_echo() {
    let mut cmd = Command::new(BIN);
    cmd.arg("hash-password");
    let mut pty = Pty::spawn(cmd);
    pty.expect("Password: ");
    pty.expect_no_echo();
    pty.type_line("s3cret-typed");
    pty.expect("Repeat it: ");
    pty.expect_no_echo();
    pty.type_line("s3cret-typed");
    let (code, stdout, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(stdout.starts_with("$argon2id$"), "{stdout}");
    assert!(
        !screen.contains("s3cret-typed"),
        "the password was echoed: {screen:?}"
    );
    assert!(screen.contains("Paste it into the manifest"), "{screen}");
    assert_eq!(verify(stdout.trim_end(), b"s3cret-typed\n"), 0);
}

#[test]
fn terminal_refuses_a_mismatch() {
    let mut cmd = Command::new(BIN);
    cmd.arg("hash-password");
    let mut pty = Pty::spawn(cmd);
    pty.expect("Password: ");
    pty.expect_no_echo();
    pty.type_line("first-one");
    pty.expect("Repeat it: ");
    pty.expect_no_echo();
    pty.type_line("second-one");
    let (code, stdout, screen) = pty.finish();
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(
        screen.contains("the two passwords differ; nothing was hashed"),
        "{screen}"
    );
}
