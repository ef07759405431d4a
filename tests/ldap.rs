//! Signing in with directory passwords against a real `slapd` (see `support::slapd`):
//! the password form, groups from a group search or `memberOf`, the allowlist, filter
//! injection, throttling and the audit log.

use crate::support::server::Server;
use crate::support::slapd::{SEARCH_DN, SEARCH_PASSWORD, SUFFIX, Slapd};
use crate::support::{HASH_A, Test, unindent};

/// ftw with the directory, a password user `local`, and a tool only `@ops` may run.
/// `groups`: the `[auth.ldap]` lines that say where groups come from.
fn start(slapd: &Slapd, groups: &str) -> Server {
    let manifest = unindent(&format!(
        r#"
        [auth]
        max_login_failures = 6
        [auth.users]
        local = "{HASH_A}"
        [auth.ldap]
        url = "{url}"
        bind_dn = "{SEARCH_DN}"
        bind_password_file = "ldap.secret"
        base_dn = "ou=people,{SUFFIX}"
        allowed_groups = ["ops", "developers"]
        {groups}
        [auth.ldap.map]
        dev = "developers"
        [tools.hello]
        command = ["echo", "hello"]
        [tools.deploy]
        command = ["echo", "deployed"]
        allow = ["@ops"]
        "#,
        url = slapd.url(),
    ));
    let test = Test::new()
        .manifest(&manifest)
        .file("ldap.secret", &format!("{SEARCH_PASSWORD}\n"));
    Server::start(test, &["--audit-log", "audit.jsonl"])
}

fn get(server: &Server, path: &str, session: &str) -> u16 {
    server
        .request("GET", path, &[("Cookie", session)], "")
        .status
}

#[test]
fn directory_users_sign_in_with_their_directory_password() {
    let Some(slapd) = Slapd::start() else { return };
    let group_search = format!("group_base_dn = \"ou=groups,{SUFFIX}\"");
    let server = start(&slapd, &group_search);

    let alice = server.sign_in("alice", "alice-pw").expect("alice signs in");
    assert_eq!(get(&server, "/", &alice), 200);
    assert_eq!(
        get(&server, "/tools/deploy", &alice),
        200,
        "alice is in ops"
    );
    let bob = server.sign_in("bob", "bob-pw").expect("bob signs in");
    assert_eq!(get(&server, "/tools/hello", &bob), 200);
    assert_eq!(
        get(&server, "/tools/deploy", &bob),
        404,
        "bob is not in ops"
    );
    // The password user is still checked against the manifest, not the directory.
    assert!(server.sign_in("local", "hunter2-but-longer").is_some());

    for (user, password, why) in [
        ("alice", "wrong", "a wrong password"),
        (
            "bob",
            "",
            "an empty password (an unauthenticated bind to LDAP)",
        ),
        (
            "al*",
            "alice-pw",
            "a wildcard in the name (filter injection)",
        ),
        ("eve", "eve-pw", "a user in no allowed group"),
        ("nobody", "x", "a name the directory does not have"),
    ] {
        assert!(server.sign_in(user, password).is_none(), "{why} was let in");
    }

    let events = server.audit("audit.jsonl");
    let sign_in = events
        .iter()
        .find(|e| e["event"] == "sign-in" && e["user"] == "alice")
        .unwrap();
    assert_eq!(sign_in["method"], "ldap");
    assert_eq!(sign_in["via"], "ldap");
    assert_eq!(sign_in["groups"], serde_json::json!(["developers", "ops"]));
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "sign-in-failed")
        .map(|e| e["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        reasons,
        [
            "wrong password",
            "empty password",
            "no such user in the directory",
            "not in an allowed group",
            "no such user in the directory"
        ]
    );

    // Directory users are throttled like everyone: six failures from one address, then
    // 429 even with the right password.
    for _ in 0..3 {
        assert!(server.sign_in("bob", "wrong").is_none());
    }
    let page = server.request("GET", "/login", &[], "");
    let cookie =
        crate::support::server::cookie_pair(page.header("set-cookie").unwrap()).to_string();
    let body = format!(
        "_csrf={}&username=bob&password=bob-pw&next=%2F",
        crate::support::server::csrf(&page.body)
    );
    let r = server.request(
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("Origin", "http://localhost"),
        ],
        &body,
    );
    assert_eq!(r.status, 429);
}

#[test]
fn groups_can_come_from_member_of() {
    let Some(slapd) = Slapd::start() else { return };
    let server = start(&slapd, "");
    let alice = server.sign_in("alice", "alice-pw").expect("alice signs in");
    assert_eq!(
        get(&server, "/tools/deploy", &alice),
        200,
        "ops from memberOf"
    );
    let bob = server.sign_in("bob", "bob-pw").expect("bob signs in");
    assert_eq!(get(&server, "/tools/deploy", &bob), 404);
    assert!(server.sign_in("eve", "eve-pw").is_none());
}
