//! The account page and the passkey endpoints, in-process: who may see and change what,
//! and hostile answers to a passkey ceremony. (Making and using real passkeys is in the
//! browser test, with WebDriver's virtual authenticator.)

use serde_json::json;

use crate::support::app::App;
use crate::support::{HASH_A, HASH_B};

fn manifest(passwordless: bool) -> String {
    format!(
        r#"
[auth]
passkey_sign_in = {passwordless}
admins = ["@ops"]
[auth.users]
alice = {{ password = "{HASH_A}", groups = ["ops"] }}
bob = "{HASH_B}"
[tools.hello]
command = ["/bin/echo", "hello"]
"#
    )
}

/// Starts a passkey ceremony at `path` with `body`; its id.
async fn ceremony(
    b: &mut crate::support::app::Browser<'_>,
    path: &str,
    body: serde_json::Value,
    csrf: &str,
) -> serde_json::Value {
    let r = b.post_json(path, &body, &[("x-csrf-token", csrf)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["ceremony"].clone()
}

#[tokio::test]
async fn the_account_page_is_for_the_signed_in_user_only() {
    let app = App::new(&manifest(false));
    let mut anon = app.browser();
    let r = anon.get("/account").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/login?next=%2Faccount");

    let mut alice = app.browser();
    assert_eq!(alice.login("alice", "hunter2-but-longer").await.status, 303);
    let page = alice.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"<dd id="account-user">alice</dd>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("ops"));
    assert!(page.body.contains("yes: you see and may cancel"));
    assert!(page.body.contains("You have no passkeys yet"));
}

#[tokio::test]
async fn passkey_requests_need_the_session_csrf_token_and_this_origin() {
    let app = App::new(&manifest(false));
    let mut alice = app.browser();
    alice.login("alice", "hunter2-but-longer").await;
    let csrf = alice.get("/account").await.csrf();

    let r = alice
        .post_json("/account/passkeys/options", &json!({}), &[])
        .await;
    assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
    let r = alice
        .post_json(
            "/account/passkeys/options",
            &json!({}),
            &[("x-csrf-token", "forged")],
        )
        .await;
    assert_eq!(r.status, 403, "a wrong token");
    alice.origin = Some("https://evil.example".into());
    let r = alice
        .post_json(
            "/account/passkeys/options",
            &json!({}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 403, "another site");
    alice.origin = Some("http://localhost".into());

    let r = alice
        .post_json(
            "/account/passkeys/options",
            &json!({}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let options: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let ceremony = options["ceremony"].as_str().unwrap().to_string();
    let public_key = &options["options"]["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(public_key["user"]["name"], "alice");
    assert_ne!(
        public_key["user"]["id"], "alice",
        "the user handle does not carry the name"
    );

    // Bob cannot finish alice's ceremony, even with his own valid token.
    let mut bob = app.browser();
    bob.login("bob", "second").await;
    let bob_csrf = bob.get("/account").await.csrf();
    let r = bob
        .post_json(
            "/account/passkeys",
            &json!({ "ceremony": ceremony, "credential": {} }),
            &[("x-csrf-token", &bob_csrf)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("another user"), "{}", r.body);
    // ... and the ceremony is spent: alice's answer now finds nothing either.
    let r = alice
        .post_json(
            "/account/passkeys",
            &json!({ "ceremony": ceremony, "credential": {} }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("expired"), "{}", r.body);

    // A made-up answer to a real ceremony is refused, and nothing is stored.
    let r = alice
        .post_json(
            "/account/passkeys/options",
            &json!({}),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    let ceremony = serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["ceremony"].clone();
    let fake = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" }
    });
    let r = alice
        .post_json(
            "/account/passkeys",
            &json!({ "ceremony": ceremony, "credential": fake, "name": "fake" }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        alice
            .get("/account")
            .await
            .body
            .contains("You have no passkeys yet")
    );
}

#[tokio::test]
async fn passwordless_sign_in_exists_only_where_the_manifest_allows_it() {
    let off = App::new(&manifest(false));
    let mut b = off.browser();
    let page = b.get("/login").await;
    assert!(!page.body.contains("passkey-sign-in"));
    let csrf = page.csrf();
    let r = b
        .post_json(
            "/login/passkey/options",
            &json!({ "mode": "passwordless" }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let on = App::new(&manifest(true));
    let mut b = on.browser();
    let page = b.get("/login").await;
    assert!(page.body.contains("passkey-sign-in"));
    let csrf = page.csrf();
    let r = b
        .post_json(
            "/login/passkey/options",
            &json!({ "mode": "passwordless" }),
            &[("x-csrf-token", "wrong")],
        )
        .await;
    assert_eq!(r.status, 403, "the login page's CSRF token is needed");
    let r = b
        .post_json(
            "/login/passkey/options",
            &json!({ "mode": "passwordless" }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The second-step mode needs a password step in progress.
    let r = b
        .post_json(
            "/login/passkey/options",
            &json!({ "mode": "second-factor" }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_ne!(r.status, 200);
    // A made-up answer signs nobody in.
    let mode = json!({ "mode": "passwordless" });
    let ceremony = ceremony(&mut b, "/login/passkey/options", mode, &csrf).await;
    let fake = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": null }
    });
    let r = b
        .post_json(
            "/login/passkey",
            &json!({ "ceremony": ceremony, "credential": fake, "next": "/" }),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(b.session().is_none());
}
