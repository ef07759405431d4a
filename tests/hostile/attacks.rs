//! Attacks from the second security review (issue 12), each replayed against the real
//! `ftw serve` over real sockets: the test sends what the attacker sent and checks that
//! it no longer works.

use super::{ALICE_PW, RECORD_SH, UPLOAD_SH, csrf_in, manifest, pair, request};
use crate::support::Test;
use crate::support::server::{Server, Wire};

/// A fresh server on the corpus manifest, with an audit log file.
fn server(extra: &[&str]) -> Server {
    let test = Test::new()
        .manifest(&manifest())
        .exec("record.sh", RECORD_SH)
        .exec("upload.sh", UPLOAD_SH);
    Server::start(test, &[&["--audit-log", "audit.log"], extra].concat())
}

/// POST /login with these raw urlencoded credentials, on a fresh login form.
fn login(server: &Server, credentials: &str) -> Wire {
    let form = request(server, "GET", "/login", &[], b"");
    let cookie = pair(form.header("set-cookie").unwrap());
    let body = format!("_csrf={}&{credentials}&next=%2F", csrf_in(&form.body));
    request(
        server,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        body.as_bytes(),
    )
}

fn audit_bytes(server: &Server) -> u64 {
    std::fs::metadata(server.test.path().join("audit.log")).map_or(0, |m| m.len())
}

#[test]
fn a_huge_user_name_of_control_characters_adds_little_to_the_audit_log() {
    let server = server(&[]);
    let before = audit_bytes(&server);
    // 200,000 control characters, each six bytes once JSON-escaped.
    let name = "%01".repeat(200_000);
    let r = login(&server, &format!("username={name}&password=x"));
    assert_eq!(r.status, 401, "{}", r.body);
    let grown = audit_bytes(&server) - before;
    assert!(grown < 4_000, "the audit log grew by {grown} bytes");
    let log = std::fs::read_to_string(server.test.path().join("audit.log")).unwrap();
    assert!(log.contains("[cut: 200000 bytes in all]"), "{log}");
}

#[test]
fn empty_and_oversized_passwords_count_as_failures() {
    let server = server(&[]);
    let long = "x".repeat(5_000);
    for password in ["", "", "", &long, &long] {
        let r = login(&server, &format!("username=alice&password={password}"));
        assert!(
            r.status == 401 || r.status == 429,
            "{}: {}",
            r.status,
            r.body
        );
    }
    let r = login(&server, &format!("username=alice&password={ALICE_PW}"));
    assert_eq!(r.status, 429, "five failures block the name: {}", r.body);
}
