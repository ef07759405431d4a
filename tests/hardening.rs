//! Hardening, in-process: login throttling (by name, by address, under a spray), TOTP,
//! the audit log, trusted proxies and forward auth, limits before sign-in, and the fixes
//! of the security review (output folder swapped for a symlink, caching, output tails).

use std::net::SocketAddr;

use crate::support::app::{App, Browser, Reply};
use crate::support::{HASH_A, HASH_B};

const ALICE_PW: &str = "hunter2-but-longer";
const BOB_PW: &str = "second";
/// RFC 6238's SHA-1 test secret, "12345678901234567890", in base32.
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn manifest(extra_auth: &str, extra: &str) -> String {
    format!(
        r#"
[auth]
{extra_auth}

[auth.users]
alice = {{ password = "{HASH_A}", groups = ["ops"] }}
bob = "{HASH_B}"

[tools.hello]
command = ["/bin/echo", "hello"]

[tools.ops]
command = ["/bin/echo", "ops"]
allow = ["@ops"]
{extra}
"#
    )
}

fn from(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 50000)
}

async fn attempt(app: &App, ip: &str, user: &str, password: &str) -> Reply {
    let mut b = app.browser();
    b.peer = from(ip);
    b.login(user, password).await
}

// ---- throttling ----

#[tokio::test]
async fn five_failures_block_the_name_with_retry_after() {
    let app = App::new(&manifest("", ""));
    for i in 0..5 {
        assert_eq!(
            attempt(&app, &format!("10.0.0.{i}"), "alice", "wrong")
                .await
                .status,
            401
        );
    }
    let blocked = attempt(&app, "10.0.1.1", "alice", ALICE_PW).await;
    assert_eq!(blocked.status, 429, "even the right password waits");
    let retry: u64 = blocked.header("retry-after").parse().unwrap();
    assert!((290..=300).contains(&retry), "{retry}");
    assert!(
        blocked
            .body
            .contains("Too many failed sign-ins. Try again in 5 minutes.")
    );
    assert_eq!(
        attempt(&app, "10.0.1.1", "bob", BOB_PW).await.status,
        303,
        "bob is not alice"
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_limit() {
    // Twelve guesses at once, each from its own address: the first five are checked,
    // the rest are turned away while those are still hashing, not after.
    let app = App::new(&manifest("", ""));
    let addresses: Vec<String> = (0..12).map(|i| format!("10.0.2.{i}")).collect();
    let guesses = addresses.iter().map(|a| attempt(&app, a, "alice", "wrong"));
    let replies = futures_util::future::join_all(guesses).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(
        attempt(&app, "10.0.3.1", "alice", ALICE_PW).await.status,
        429,
        "five failures: the name is blocked"
    );
}

#[tokio::test]
async fn five_failures_block_the_address_whatever_the_name() {
    let app = App::new(&manifest("", ""));
    for i in 0..5 {
        assert_eq!(
            attempt(&app, "6.6.6.6", &format!("guess{i}"), "x")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        attempt(&app, "6.6.6.6", "alice", ALICE_PW).await.status,
        429
    );
    assert_eq!(
        attempt(&app, "1.2.3.4", "alice", ALICE_PW).await.status,
        303
    );
}

#[tokio::test]
async fn a_spray_of_names_does_not_lock_out_real_users() {
    let app = App::new(&manifest("", ""));
    for i in 0..60u32 {
        let ip = format!("172.16.{}.{}", i / 250, i % 250);
        attempt(&app, &ip, &format!("sprayed{i}"), "x").await;
    }
    assert_eq!(
        attempt(&app, "192.168.1.10", "alice", ALICE_PW)
            .await
            .status,
        303
    );
    assert_eq!(
        attempt(&app, "192.168.1.11", "bob", BOB_PW).await.status,
        303
    );
}

#[tokio::test]
async fn throttling_can_be_switched_off_and_tuned() {
    let app = App::new(&manifest("max_login_failures = 0", ""));
    for _ in 0..8 {
        assert_eq!(attempt(&app, "6.6.6.6", "alice", "wrong").await.status, 401);
    }
    assert_eq!(
        attempt(&app, "6.6.6.6", "alice", ALICE_PW).await.status,
        303
    );

    let app = App::new(&manifest(
        "max_login_failures = 2\nlogin_block_time = \"30s\"",
        "",
    ));
    attempt(&app, "6.6.6.6", "alice", "wrong").await;
    attempt(&app, "6.6.6.6", "alice", "wrong").await;
    let r = attempt(&app, "6.6.6.6", "alice", ALICE_PW).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").parse::<u64>().unwrap() <= 30);
}

// ---- trusted proxies ----

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = App::new(&manifest("", ""));
    for i in 0..5 {
        let mut b = app.browser();
        b.peer = from("6.6.6.6");
        b.headers
            .push(("x-forwarded-for".into(), format!("9.9.9.{i}")));
        b.login("nobody", "x").await;
    }
    let mut b = app.browser();
    b.peer = from("6.6.6.6");
    b.headers.push(("x-forwarded-for".into(), "8.8.8.8".into()));
    assert_eq!(
        b.login("alice", ALICE_PW).await.status,
        429,
        "the peer is the client"
    );
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let app = App::new(&format!(
        "[server]\ntrusted_proxies = [\"10.0.0.1\"]\n{}",
        manifest("", "")
    ));
    let via_proxy = |client: &str| {
        let mut b = app.browser();
        b.peer = from("10.0.0.1");
        b.headers
            .push(("x-forwarded-for".into(), format!("6.6.6.6, {client}")));
        b
    };
    for _ in 0..5 {
        via_proxy("1.1.1.1").login("nobody", "x").await;
    }
    assert_eq!(
        via_proxy("1.1.1.1").login("alice", ALICE_PW).await.status,
        429
    );
    assert_eq!(
        via_proxy("2.2.2.2").login("alice", ALICE_PW).await.status,
        303,
        "another client behind the same proxy"
    );
}

#[tokio::test]
async fn forwarded_proto_https_from_a_trusted_proxy_makes_cookies_secure() {
    let app = App::new(&format!(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\nallowed_hosts = [\"tools.example.com\"]\n{}",
        manifest("", "")
    ));
    let mut b = app.browser();
    b.peer = from("10.1.2.3");
    b.origin = Some("https://tools.example.com".into());
    b.headers.push(("x-forwarded-proto".into(), "https".into()));
    b.headers
        .push(("x-forwarded-host".into(), "tools.example.com".into()));
    let r = b.login("alice", ALICE_PW).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-ftw_session="))
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert_eq!(b.get("/").await.status, 200);
    // The same headers from anyone else change nothing.
    let mut direct = app.browser();
    direct
        .headers
        .push(("x-forwarded-proto".into(), "https".into()));
    let r = direct.login("alice", ALICE_PW).await;
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("ftw_session=") && !c.contains("Secure"))
    );
}

// ---- forward auth ----

fn forward_auth_manifest() -> String {
    format!(
        "[server]\ntrusted_proxies = [\"10.0.0.1\"]\n{}",
        manifest(
            "trusted_header = \"Remote-User\"\ntrusted_groups_header = \"Remote-Groups\"",
            ""
        )
    )
}

#[tokio::test]
async fn the_trusted_header_counts_only_from_a_trusted_proxy() {
    let app = App::new(&forward_auth_manifest());
    let mut direct = app.browser();
    direct.headers.push(("remote-user".into(), "alice".into()));
    assert_eq!(
        direct.get("/").await.status,
        303,
        "ignored from an untrusted peer"
    );

    let mut proxied = app.browser();
    proxied.peer = from("10.0.0.1");
    proxied.headers.push(("remote-user".into(), "carol".into()));
    let page = proxied.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("carol"));
    assert_eq!(
        proxied.get("/tools/ops").await.status,
        404,
        "allow lists still apply"
    );
    proxied
        .headers
        .push(("remote-groups".into(), "ops, other".into()));
    assert_eq!(
        proxied.get("/tools/ops").await.status,
        200,
        "groups from the proxy count"
    );
    // Forms still need the CSRF token.
    let csrf = proxied.get("/tools/hello").await.csrf();
    assert_eq!(proxied.post("/tools/hello", &[]).await.status, 403);
    assert_eq!(
        proxied
            .post("/tools/hello", &[("_csrf", &csrf)])
            .await
            .status,
        303
    );
}

// ---- TOTP ----

fn totp_manifest() -> String {
    format!(
        "[auth.users]\nalice = {{ password = \"{HASH_A}\", totp = \"{TOTP_SECRET}\" }}\n\n[tools.hello]\ncommand = [\"/bin/echo\", \"hello\"]\n"
    )
}

fn code_now() -> String {
    ftw::auth::totp::code_at(b"12345678901234567890", ftw::auth::now())
}

async fn password_step<'a>(app: &'a App, ip: &str) -> (Browser<'a>, String) {
    let mut b = app.browser();
    b.peer = from(ip);
    let r = b.login("alice", ALICE_PW).await;
    assert_eq!(r.status, 303);
    assert!(
        r.header("location").starts_with("/login/2fa?next="),
        "{}",
        r.header("location")
    );
    assert!(b.session().is_none(), "no session before the code");
    let form = b.get(r.header("location")).await;
    assert!(form.body.contains("autocomplete=\"one-time-code\""));
    let csrf = form.csrf();
    (b, csrf)
}

#[tokio::test]
async fn totp_users_sign_in_with_a_code_that_works_once() {
    let app = App::new(&totp_manifest());
    let (mut b, csrf) = password_step(&app, "1.1.1.1").await;
    assert_eq!(b.get("/").await.status, 303, "not signed in yet");
    let r = b
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code_now()), ("next", "/")],
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, "/"));
    assert!(b.session().is_some());
    assert_eq!(b.get("/").await.status, 200);

    // The same code again, from another browser: refused (no replay in its window).
    let (mut other, csrf) = password_step(&app, "2.2.2.2").await;
    let r = other
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code_now()), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body
            .contains("That code was already used. Wait for the next code"),
        "{}",
        r.body
    );
    assert!(other.session().is_none());
}

#[tokio::test]
async fn a_used_totp_code_stays_used_after_a_restart() {
    let app = App::new(&totp_manifest());
    let code = code_now();
    let (mut b, csrf) = password_step(&app, "1.1.1.1").await;
    let r = b
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 303);
    drop(b);
    let app = app.restart();
    let (mut other, csrf) = password_step(&app, "2.2.2.2").await;
    let r = other
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 401, "the code was used before the restart");
    assert!(r.body.contains("That code was already used"), "{}", r.body);
}

#[tokio::test]
async fn wrong_totp_codes_are_refused_and_throttled() {
    let app = App::new(&totp_manifest());
    let (mut b, csrf) = password_step(&app, "3.3.3.3").await;
    let wrong = if code_now() == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let r = b
            .post(
                "/login/2fa",
                &[("_csrf", &csrf), ("code", wrong), ("next", "/")],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = b
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code_now()), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 429, "even the right code waits");
    assert!(!r.header("retry-after").is_empty());
}

#[tokio::test]
async fn the_code_step_cookie_works_once_and_only_beside_its_sign_in() {
    let app = App::new(&totp_manifest());
    let (mut b, csrf) = password_step(&app, "1.1.1.1").await;
    // Someone keeps a copy of the browser's cookies after the password step.
    let copy = b.cookies.clone();
    let previous = ftw::auth::totp::code_at(b"12345678901234567890", ftw::auth::now() - 30);
    let r = b
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &previous), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Signed in and out again: the copy plus the current (unused) code gets nothing.
    let csrf_out = b.get("/").await.csrf();
    b.post("/logout", &[("_csrf", &csrf_out)]).await;
    let mut thief = app.browser();
    thief.cookies = copy.clone();
    let r = thief
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code_now()), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 403, "the step was used: {}", r.body);
    assert!(thief.session().is_none());

    // An unused step-two cookie without its sign-in's login cookie gets nothing either.
    let (fresh, csrf) = password_step(&app, "2.2.2.2").await;
    let mut thief = app.browser();
    thief.cookies = fresh
        .cookies
        .iter()
        .filter(|(name, _)| name.contains("2fa"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    thief.cookies.extend(
        copy.iter()
            .filter(|(name, _)| name.contains("login"))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    assert_eq!(thief.cookies.len(), 2, "{:?}", thief.cookies);
    let r = thief
        .post(
            "/login/2fa",
            &[("_csrf", &csrf), ("code", &code_now()), ("next", "/")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
}

#[tokio::test]
async fn the_code_step_needs_the_password_step_first() {
    let app = App::new(&totp_manifest());
    let mut b = app.browser();
    assert_eq!(b.get("/login/2fa").await.header("location"), "/login");
    assert_eq!(
        b.post("/login/2fa", &[("code", &code_now())]).await.status,
        403
    );
}

// ---- audit ----

#[tokio::test]
async fn audit_lines_are_json_and_mask_passwords() {
    let app = App::with_audit(
        &manifest(
            "",
            "[tools.deploy]\ncommand = [\"/bin/echo\", \"{token}\", \"{env}\"]\n[tools.deploy.args.token]\ntype = \"password\"\n[tools.deploy.args.env]\ntype = \"text\"\n",
        ),
        &[],
    );
    attempt(&app, "5.5.5.5", "mal\nlory\u{1b}[31m", "x").await;
    let mut b = app.browser();
    b.login("alice", ALICE_PW).await;
    let r = b
        .run_tool("deploy", &[("token", "s3cr3t-value"), ("env", "prod")])
        .await;
    let run = Browser::run_id(&r);
    app.finished(&run).await;
    let csrf = b.get("/").await.csrf();
    b.post("/logout", &[("_csrf", &csrf)]).await;

    let records = app.audit();
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "sign-in-failed",
            "sign-in",
            "run-start",
            "run-end",
            "sign-out"
        ]
    );
    assert_eq!(records[0]["user"], "mal\nlory\u{1b}[31m");
    assert_eq!(records[0]["client"], "5.5.5.5");
    assert_eq!(records[2]["args"]["token"], "***");
    assert_eq!(records[2]["args"]["env"], "prod");
    assert_eq!(records[3]["exit_code"], 0);
    assert!(records[3]["output_bytes"].as_u64().unwrap() > 0);
    assert!(
        records
            .iter()
            .all(|r| r["time"].as_str().unwrap().ends_with('Z'))
    );
    let raw = std::fs::read_to_string(app.dir.path().join("audit.log")).unwrap();
    assert!(!raw.contains("s3cr3t-value") && !raw.contains(ALICE_PW));
    assert_eq!(
        raw.lines().count(),
        5,
        "a newline in a name cannot make a line"
    );
}

// ---- limits and the security review ----

#[tokio::test]
async fn oversized_bodies_are_413_before_sign_in() {
    let app = App::new(&manifest("", ""));
    let b = app.browser();
    let req = warp::test::request()
        .method("POST")
        .path("/tools/hello")
        .body("x")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "999999999");
    let r = b.app.send(req).await;
    assert_eq!(r.status, 413);
    let req = warp::test::request()
        .method("POST")
        .path("/login")
        .body("x")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "99999999");
    assert_eq!(b.app.send(req).await.status, 413);
}

#[tokio::test]
async fn the_cap_before_sign_in_reveals_no_tool() {
    let app = App::new(&manifest(
        "",
        "[tools.up]\ncommand = [\"/bin/true\", \"{f}\"]\n[tools.up.args.f]\ntype = \"file\"\nmax_size = \"5MB\"\n",
    ));
    for tool in ["hello", "up", "no-such-tool"] {
        let req = warp::test::request()
            .method("POST")
            .path(&format!("/tools/{tool}"))
            .body("x")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "3000000");
        assert_eq!(
            app.send(req).await.status,
            303,
            "{tool}: to the login form, whatever the tool"
        );
    }
}

#[tokio::test]
async fn event_streams_are_not_stored() {
    let app = App::new(&manifest("", ""));
    let mut b = app.browser();
    b.login("alice", ALICE_PW).await;
    let id = Browser::run_id(&b.run_tool("hello", &[]).await);
    app.finished(&id).await;
    assert_eq!(
        b.get(&format!("/runs/{id}/events"))
            .await
            .header("cache-control"),
        "no-store"
    );
}

#[tokio::test]
async fn an_output_folder_swapped_for_a_symlink_serves_nothing() {
    let script = "#!/bin/sh\nprintf x > \"$FTW_OUTPUT_DIR/a.txt\"\nrm -rf \"$FTW_OUTPUT_DIR\"\nln -s \"$PWD\" \"$FTW_OUTPUT_DIR\"\n";
    let app = App::with_files(
        &manifest("", "[tools.swap]\ncommand = [\"./swap.sh\"]\n"),
        &[("swap.sh", script)],
    );
    let mut b = app.browser();
    b.login("alice", ALICE_PW).await;
    let id = Browser::run_id(&b.run_tool("swap", &[]).await);
    let run = app.finished(&id).await;
    assert!(
        run.snapshot().files.is_empty(),
        "{:?}",
        run.snapshot().files
    );
    assert_eq!(
        b.get(&format!("/runs/{id}/files/tools.toml")).await.status,
        404
    );
}

#[tokio::test]
async fn long_output_shows_its_tail_and_downloads_whole() {
    let script =
        "#!/bin/sh\ni=0\nwhile [ $i -lt 40000 ]; do echo \"line $i <b>\"; i=$((i+1)); done\n";
    let app = App::with_files(
        &manifest("", "[tools.long]\ncommand = [\"./long.sh\"]\n"),
        &[("long.sh", script)],
    );
    let mut b = app.browser();
    b.login("alice", ALICE_PW).await;
    let id = Browser::run_id(&b.run_tool("long", &[]).await);
    app.finished(&id).await;
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(page.body.contains("line 39999 &lt;b&gt;"));
    assert!(!page.body.contains("line 0 &lt;b&gt;\n"));
    assert!(page.body.contains("are not shown here"));
    assert!(page.body.len() < 600_000, "{} bytes", page.body.len());
    let whole = b.get(&format!("/runs/{id}/output")).await;
    assert!(whole.body.starts_with("line 0 <b>\nline 1 <b>\n"));
    assert_eq!(whole.body.lines().count(), 40000);
    assert!(
        whole
            .header("content-disposition")
            .starts_with("attachment;")
    );
    assert!(whole.header("content-security-policy").contains("sandbox"));
}

#[tokio::test]
async fn signing_in_again_ends_the_browsers_previous_session() {
    let app = App::new(&manifest("", ""));
    let mut b = app.browser();
    b.login("alice", ALICE_PW).await;
    let old = b.session().unwrap();
    let csrf = b.get("/login").await;
    assert_eq!(csrf.status, 303, "signed in: the form sends you on");
    // Post the login form again anyway (another tab had it open).
    let mut other_tab = app.browser();
    let form = other_tab.get("/login").await;
    b.cookies.extend(other_tab.cookies.clone());
    b.post(
        "/login",
        &[
            ("_csrf", &form.csrf()),
            ("username", "alice"),
            ("password", ALICE_PW),
            ("next", "/"),
        ],
    )
    .await;
    let new = b.session().unwrap();
    assert_ne!(old, new);
    let mut replay = app.browser();
    replay.cookies.insert("ftw_session".into(), old);
    assert_eq!(replay.get("/").await.status, 303);
}

#[tokio::test]
async fn non_ascii_next_is_percent_encoded_in_the_redirect() {
    let app = App::new(&manifest("", ""));
    let mut b = app.browser();
    let form = b.get("/login").await;
    let r = b
        .post(
            "/login",
            &[
                ("_csrf", &form.csrf()),
                ("username", "alice"),
                ("password", ALICE_PW),
                ("next", "/tools/héllo"),
            ],
        )
        .await;
    assert_eq!(r.header("location"), "/tools/h%C3%A9llo");
}
