//! Sign-in, sessions, CSRF and headers, in-process through `warp::test`. Each test is
//! named after the rule of security.md it tries to break (items 1-18).

use ftw::auth::session::Session;

use crate::support::app::{App, Browser, Reply};
use crate::support::{HASH_A, HASH_B};

const ALICE_PW: &str = "hunter2-but-longer";
const BOB_PW: &str = "second";

fn manifest() -> String {
    format!(
        r#"
title = "Test ops"

[auth.users]
alice = {{ password = "{HASH_A}", groups = ["ops"] }}
bob = "{HASH_B}"

[tools.hello]
title = "Say hello"
description = "Greets."
group = "Basics"
command = ["/bin/echo", "hello"]

[tools.secret]
title = "Ops only"
command = ["/bin/echo", "secret"]
allow = ["@ops"]
"#
    )
}

async fn signed_in(app: &App) -> Browser<'_> {
    let mut b = app.browser();
    let r = b.login("alice", ALICE_PW).await;
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

fn cookie<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", reply.set_cookies()))
}

/// GET `/` with exactly this session cookie value.
async fn index_with(app: &App, value: &str) -> Reply {
    let mut b = app.browser();
    b.cookies
        .insert(app.session_name().to_string(), value.to_string());
    b.get("/").await
}

#[track_caller]
fn assert_signed_out(r: &Reply) {
    assert_eq!(
        r.status, 303,
        "expected a redirect to the login form: {}",
        r.body
    );
    assert_eq!(r.header("location"), "/login?next=%2F");
}

// ---- 1. cookie attributes ----

#[tokio::test]
async fn s01_cookie_is_httponly_samesite_lax_with_explicit_path() {
    let app = App::new(&manifest());
    let r = app.browser().login("alice", ALICE_PW).await;
    let c = cookie(&r, "ftw_session");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(c.contains(attr), "{attr} missing: {c}");
    }
    assert!(!c.contains("Secure") && !c.contains("Domain"), "{c}");
    assert!(c.split(';').next().unwrap().len() < 4096);
}

#[tokio::test]
async fn s01_over_tls_cookie_is_secure_and_host_prefixed() {
    let app = App::with(&manifest(), true);
    let mut b = app.browser();
    b.origin = Some("https://localhost".into());
    let r = b.login("alice", ALICE_PW).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let c = cookie(&r, "__Host-ftw_session");
    assert!(
        c.contains("; Secure") && c.contains("Path=/") && !c.contains("Domain"),
        "{c}"
    );
    assert!(b.get("/").await.status == 200);
}

// ---- 2, 3. session ids and fresh sessions ----

#[tokio::test]
async fn s02_session_ids_are_128_random_bits() {
    let app = App::new(&manifest());
    let a = app.open(&signed_in(&app).await.session().unwrap());
    let b = app.open(&signed_in(&app).await.session().unwrap());
    assert_eq!(a.id.len(), 16);
    assert_ne!(a.id, b.id);
    assert_ne!(a.id, [0; 16]);
}

#[tokio::test]
async fn s03_every_login_makes_a_new_session_and_drops_the_pre_login_cookie() {
    let app = App::new(&manifest());
    let mut b = signed_in(&app).await;
    let first = b.session().unwrap();
    assert!(
        !b.cookies.contains_key("ftw_login"),
        "pre-login cookie survived"
    );
    // The same browser signs in again while it still holds that session (a login
    // form from another tab, or a session planted by someone else): the form is
    // fetched without it, the sign-in is sent with it.
    let held = b.cookies.remove("ftw_session").unwrap();
    let csrf = b.get("/login").await.csrf();
    assert!(b.cookies.contains_key("ftw_login"));
    b.cookies.insert("ftw_session".into(), held);
    let r = b
        .post(
            "/login",
            &[
                ("_csrf", &csrf),
                ("username", "alice"),
                ("password", ALICE_PW),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let second = b.session().unwrap();
    assert_ne!(
        app.open(&first).id,
        app.open(&second).id,
        "a new session id"
    );
    assert!(
        !b.cookies.contains_key("ftw_login"),
        "pre-login cookie survived"
    );
    // One browser, one session: the one it held before is over.
    assert_signed_out(&index_with(&app, &first).await);
    assert_eq!(index_with(&app, &second).await.status, 200);
}

// ---- 4. the MAC is checked first; tampered cookies are refused ----

#[tokio::test]
async fn s04_altered_truncated_renamed_other_key_cookies_are_refused() {
    let app = App::new(&manifest());
    let good = signed_in(&app).await.session().unwrap();
    assert_eq!(index_with(&app, &good).await.status, 200);

    // One bit flipped in the payload's first character.
    let mut flipped = good.clone().into_bytes();
    flipped[0] ^= 0x01;
    assert_signed_out(&index_with(&app, &String::from_utf8(flipped).unwrap()).await);
    // Truncated.
    assert_signed_out(&index_with(&app, &good[..good.len() - 2]).await);
    assert_signed_out(&index_with(&app, good.split('.').next().unwrap()).await);
    // Another user's name in the payload, old MAC kept.
    let (payload, mac) = good.split_once('.').unwrap();
    let text = String::from_utf8(ftw::auth::unb64(payload).unwrap()).unwrap();
    let forged = ftw::auth::b64(text.replace("alice", "bob").as_bytes());
    assert_signed_out(&index_with(&app, &format!("{forged}.{mac}")).await);
    // Signed with another key.
    let keys = ftw::auth::keys::Keys::from_secret(&[7; 32], ftw::auth::keys::KeySource::Env);
    let other = ftw::auth::session::Codec::new(keys.session);
    let session = app.open(&good);
    assert_signed_out(&index_with(&app, &other.seal("ftw_session", &session)).await);
    // Renamed: a value made for the __Host- cookie does not pass as the plain one.
    let renamed = app.codec().seal("__Host-ftw_session", &session);
    assert_signed_out(&index_with(&app, &renamed).await);
    // Garbage.
    for junk in ["", ".", "x.y", "....", &"A".repeat(5000)] {
        assert_signed_out(&index_with(&app, junk).await);
    }
}

#[tokio::test]
async fn s04_expired_and_future_dated_cookies_are_refused() {
    let app = App::new(&manifest());
    let now = ftw::auth::now();
    let fp = app.fingerprint("alice");
    let fresh = Session::new("alice", fp, now);
    assert_eq!(
        index_with(&app, &app.forge(&fresh)).await.status,
        200,
        "a forged-but-valid cookie works, so the rest are refused for their times"
    );

    let future = Session::new("alice", fp, now + 600);
    assert_signed_out(&index_with(&app, &app.forge(&future)).await);
    let mut future_active = fresh.clone();
    future_active.active = now + 3600;
    assert_signed_out(&index_with(&app, &app.forge(&future_active)).await);
}

// ---- 5. absolute and idle expiry ----

#[tokio::test]
async fn s05_absolute_and_idle_expiry_are_checked_on_the_server() {
    let app = App::new(&manifest());
    let now = ftw::auth::now();
    let fp = app.fingerprint("alice");
    let mut old = Session::new("alice", fp, now - 14 * 86400 - 1);
    old.active = now;
    assert_signed_out(&index_with(&app, &app.forge(&old)).await);
    let mut idle = Session::new("alice", fp, now - 13 * 3600);
    idle.active = now - 12 * 3600 - 1;
    assert_signed_out(&index_with(&app, &app.forge(&idle)).await);
    let mut working = Session::new("alice", fp, now - 13 * 86400);
    working.active = now - 11 * 3600;
    let r = index_with(&app, &app.forge(&working)).await;
    assert_eq!(r.status, 200);
    // A working session gets its idle clock reset; the absolute one does not move.
    let refreshed = cookie(&r, "ftw_session")
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let s = app.open(refreshed);
    assert!(s.active >= now && s.issued == working.issued && s.id == working.id);
    let max_age: u64 = cookie(&r, "ftw_session")
        .split("Max-Age=")
        .nth(1)
        .and_then(|v| v.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (86390..=86400).contains(&max_age),
        "the cookie lives until the absolute expiry: {max_age}"
    );
}

// ---- 6. logout ----

#[tokio::test]
async fn s06_replaying_a_cookie_after_logout_is_refused() {
    let app = App::new(&manifest());
    let mut b = signed_in(&app).await;
    let old = b.session().unwrap();
    let page = b.get("/").await;
    let r = b.post("/logout", &[("_csrf", &page.csrf())]).await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    assert!(cookie(&r, "ftw_session").contains("Max-Age=0"));
    assert!(b.session().is_none());
    assert_signed_out(&index_with(&app, &old).await);
}

// ---- 7. password change or removed user ends sessions ----

#[tokio::test]
async fn s07_changed_hash_or_removed_user_ends_their_sessions() {
    let app = App::new(&manifest());
    let alice = signed_in(&app).await.session().unwrap();
    let mut bob = app.browser();
    bob.login("bob", BOB_PW).await;
    let bob = bob.session().unwrap();

    let mut m = (*app.state.manifest()).clone();
    m.auth.users.get_mut("alice").unwrap().password_hash = HASH_B.into();
    app.state.replace_manifest(m.clone());
    assert_signed_out(&index_with(&app, &alice).await);
    assert_eq!(index_with(&app, &bob).await.status, 200, "bob is untouched");

    m.auth.users.shift_remove("bob");
    app.state.replace_manifest(m);
    assert_signed_out(&index_with(&app, &bob).await);
}

// ---- 8. no-store ----

#[tokio::test]
async fn s08_signed_in_pages_and_cookie_responses_are_not_stored() {
    let app = App::new(&manifest());
    let mut b = app.browser();
    let form = b.get("/login").await;
    assert_eq!(form.header("cache-control"), "no-store");
    assert!(!form.set_cookies().is_empty());
    let login = b.login("alice", ALICE_PW).await;
    assert_eq!(login.header("cache-control"), "no-store");
    assert_eq!(b.get("/").await.header("cache-control"), "no-store");
}

// ---- 9, 10. passwords ----

#[tokio::test]
async fn s10_long_passwords_are_accepted_whole_up_to_1024_bytes() {
    let long = "p".repeat(1023) + "q";
    let hash = ftw::password::hash(long.as_bytes()).unwrap();
    let app = App::new(&format!(
        "[auth.users]\ncarol = \"{hash}\"\n\n[tools.t]\ncommand = [\"/bin/true\"]\n"
    ));
    assert_eq!(app.browser().login("carol", &long).await.status, 303);
    let almost = "p".repeat(1024);
    assert_eq!(
        app.browser().login("carol", &almost).await.status,
        401,
        "the last byte counts"
    );
    let too_long = long + "x";
    assert_eq!(app.browser().login("carol", &too_long).await.status, 401);
}

#[tokio::test]
async fn s09_no_default_account_without_users() {
    let app = App::new("[tools.t]\ncommand = [\"/bin/true\"]\n");
    for guess in ["admin", "password", "", "ftw"] {
        assert_eq!(app.browser().login("admin", guess).await.status, 401);
    }
    let password = app.state.config.one_time_password.clone().unwrap();
    assert!(
        password.len() >= 22,
        "one-time password has at least 128 bits"
    );
    assert_eq!(app.browser().login("admin", &password).await.status, 303);
}

// ---- 11. unknown user and wrong password look the same ----

#[tokio::test]
async fn s11_unknown_user_and_wrong_password_get_the_same_answer() {
    let app = App::new(&manifest());
    let mut b = app.browser();
    let csrf = b.get("/login").await.csrf();
    let wrong = b
        .post(
            "/login",
            &[
                ("_csrf", &csrf),
                ("username", "alice"),
                ("password", "nope"),
                ("next", "/"),
            ],
        )
        .await;
    let unknown = b
        .post(
            "/login",
            &[
                ("_csrf", &csrf),
                ("username", "mallory"),
                ("password", "nope"),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, wrong.status);
    // The form keeps what was typed, so the two differ by exactly that name.
    assert!(wrong.body.contains(r#"value="alice""#), "{}", wrong.body);
    assert_eq!(
        unknown.body.replace("mallory", "NAME"),
        wrong.body.replace("alice", "NAME")
    );
    assert!(wrong.body.contains("Wrong user name or password."));
}

// ---- 15. next ----

#[tokio::test]
async fn s15_next_only_follows_relative_same_site_paths() {
    let app = App::new(&manifest());
    for (next, expected) in [
        ("/tools/hello", "/tools/hello"),
        ("javascript:alert(1)", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\r\nSet-Cookie: x=y", "/"),
    ] {
        let mut b = app.browser();
        let csrf = b.get("/login").await.csrf();
        let r = b
            .post(
                "/login",
                &[
                    ("_csrf", &csrf),
                    ("username", "alice"),
                    ("password", ALICE_PW),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, expected),
            "next={next:?}"
        );
    }
}

#[tokio::test]
async fn s15_signed_out_requests_come_back_after_login() {
    let app = App::new(&manifest());
    let mut b = app.browser();
    let r = b.get("/").await;
    assert_eq!(r.header("location"), "/login?next=%2F");
    let form = b.get("/login?next=%2F").await;
    assert!(form.body.contains("name=\"next\" value=\"/\""));
    let evil = b.get("/login?next=https%3A%2F%2Fevil.example").await;
    assert!(
        evil.body.contains("name=\"next\" value=\"/\""),
        "unsafe next is dropped in the form too"
    );
}

// ---- 16. CSRF and cross-site requests ----

#[tokio::test]
async fn s16_login_needs_its_csrf_token_and_same_origin() {
    let app = App::new(&manifest());
    let mut b = app.browser();
    let csrf = b.get("/login").await.csrf();
    let creds = [("username", "alice"), ("password", ALICE_PW)];
    let r = b.post("/login", &creds).await;
    assert_eq!(r.status, 403, "no token");
    let r = b
        .post("/login", &[creds[0], creds[1], ("_csrf", "forged")])
        .await;
    assert_eq!(r.status, 403, "wrong token");
    b.origin = Some("http://evil.example".into());
    let r = b
        .post("/login", &[creds[0], creds[1], ("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, 403, "cross-site Origin");
    b.origin = None;
    let r = b
        .post_with(
            "/login",
            &[creds[0], creds[1], ("_csrf", &csrf)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(r.status, 403, "Sec-Fetch-Site: cross-site");
    assert!(b.session().is_none());
    // A token from another browser's form does not fit this browser's cookie.
    let mut other = app.browser();
    let other_csrf = other.get("/login").await.csrf();
    let r = b
        .post("/login", &[creds[0], creds[1], ("_csrf", &other_csrf)])
        .await;
    assert_eq!(r.status, 403);
    // Without the login cookie at all.
    let mut fresh = app.browser();
    let r = fresh
        .post("/login", &[creds[0], creds[1], ("_csrf", &csrf)])
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Reload the sign-in page"));
}

#[tokio::test]
async fn s16_logout_needs_the_session_token_and_same_origin() {
    let app = App::new(&manifest());
    let mut b = signed_in(&app).await;
    let csrf = b.get("/").await.csrf();
    assert_eq!(b.post("/logout", &[]).await.status, 403);
    assert_eq!(b.post("/logout", &[("_csrf", "x")]).await.status, 403);
    b.origin = Some("null".into());
    assert_eq!(b.post("/logout", &[("_csrf", &csrf)]).await.status, 403);
    b.origin = Some("http://localhost".into());
    // A token of another session is refused.
    let other_csrf = signed_in(&app).await.get("/").await.csrf();
    assert_eq!(
        b.post("/logout", &[("_csrf", &other_csrf)]).await.status,
        403
    );
    assert_eq!(b.get("/").await.status, 200, "still signed in");
    assert_eq!(b.post("/logout", &[("_csrf", &csrf)]).await.status, 303);
}

#[tokio::test]
async fn s16_no_get_changes_anything() {
    let app = App::new(&manifest());
    let mut b = signed_in(&app).await;
    for path in ["/logout", "/login"] {
        b.get(path).await;
    }
    assert_eq!(b.get("/").await.status, 200, "GET /logout did not sign out");
}

// ---- 17, 18. headers ----

#[tokio::test]
async fn s17_every_response_has_the_security_headers_and_a_charset() {
    let app = App::new(&manifest());
    let mut b = signed_in(&app).await;
    let mut replies = vec![
        b.get("/").await,
        b.get("/healthz").await,
        b.get("/static/style.css").await,
        b.get("/static/app.js").await,
        b.get("/nowhere").await,
        b.get("/static/nothing.css").await,
        b.post("/logout", &[]).await,
    ];
    replies.push(app.browser().get("/").await);
    replies.push(app.browser().get("/login").await);
    for r in &replies {
        let csp = r.header("content-security-policy");
        for part in [
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(part),
                "{part} missing in {csp:?} (status {})",
                r.status
            );
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert_eq!(r.header("x-frame-options"), "DENY");
        assert_eq!(r.header("referrer-policy"), "same-origin");
        assert_eq!(
            r.header("strict-transport-security"),
            "",
            "no HSTS without TLS"
        );
        let ct = r.header("content-type");
        assert!(ct.is_empty() || ct.contains("charset=utf-8"), "{ct}");
    }
    assert_eq!(replies[4].status, 404);
    assert_eq!(replies[5].status, 404);
    // No inline script anywhere in the pages.
    for r in &replies {
        assert!(
            !r.body.contains("<script>") && !r.body.contains("onclick="),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn s18_hsts_only_over_tls() {
    let app = App::with(&manifest(), true);
    let r = app.browser().get("/login").await;
    assert_eq!(r.header("strict-transport-security"), "max-age=31536000");
    assert!(
        !r.header("strict-transport-security")
            .contains("includeSubDomains")
    );
}

// ---- the index page ----

#[tokio::test]
async fn index_lists_only_the_tools_this_user_may_run_grouped() {
    let app = App::new(&manifest());
    let page = signed_in(&app).await.get("/").await;
    assert!(page.body.contains("Say hello") && page.body.contains("Ops only"));
    assert!(page.body.contains("<h2>Basics</h2>"));
    let mut bob = app.browser();
    bob.login("bob", BOB_PW).await;
    let page = bob.get("/").await;
    assert!(page.body.contains("Say hello"));
    assert!(!page.body.contains("Ops only") && !page.body.contains("/tools/secret"));
    let searched = bob.get("/?q=HELLO").await;
    assert!(searched.body.contains("Say hello"));
    let none = bob.get("/?q=zzz").await;
    assert!(!none.body.contains("Say hello") && none.body.contains("No tool matches"));
}

#[tokio::test]
async fn pages_escape_what_they_show() {
    let app = App::new(&format!(
        "title = \"<script>alert(1)</script>\"\n[auth.users]\nalice = \"{HASH_A}\"\n\n[tools.x]\ntitle = \"<img src=x onerror=alert(1)>\"\ncommand = [\"/bin/true\"]\n"
    ));
    let mut b = app.browser();
    b.login("alice", ALICE_PW).await;
    let page = b.get("/?q=%3Cimg").await;
    assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"));
    assert!(
        page.body.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"&#60;img\""));
}

#[tokio::test]
async fn errors_under_api_are_json() {
    let app = App::new(&manifest());
    let r = app.browser().get("/api/nothing/here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(body["error"].is_string());
    assert!(!r.header("content-security-policy").is_empty());
}

#[tokio::test]
async fn healthz_answers_anyone_without_secrets() {
    let app = App::new(&manifest());
    let r = app.browser().get("/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
}

#[tokio::test]
async fn base_path_prefixes_routes_links_and_cookies() {
    let app = App::new(&format!(
        "[server]\nbase_path = \"/ops\"\n[auth.users]\nalice = \"{HASH_A}\"\n\n[tools.x]\ncommand = [\"/bin/true\"]\n"
    ));
    let mut b = app.browser();
    assert_eq!(
        b.get("/").await.status,
        404,
        "nothing outside the base path"
    );
    let r = b.get("/ops/").await;
    assert_eq!(r.header("location"), "/ops/login?next=%2Fops%2F");
    let form = b.get("/ops/login").await;
    assert!(
        form.body.contains("action=\"/ops/login\"")
            && form.body.contains("href=\"/ops/static/style.css")
    );
    let csrf = form.csrf();
    let r = b
        .post(
            "/ops/login",
            &[
                ("_csrf", &csrf),
                ("username", "alice"),
                ("password", ALICE_PW),
                ("next", "/elsewhere"),
            ],
        )
        .await;
    assert_eq!(r.header("location"), "/ops/");
    assert!(cookie(&r, "ftw_session").contains("Path=/ops"));
    assert_eq!(b.get("/ops/").await.status, 200);
}
