//! Signing in with OpenID Connect against a real, certified provider (`oidc-provider`
//! under Node, see `support::idp`): the whole flow over real HTTP, and every check of
//! the callback with the provider's answer tampered with in one way each.

use serde_json::{Value, json};

use crate::support::idp::{Idp, Journey, free_port};
use crate::support::server::Server;
use crate::support::{HASH_A, Test, unindent};

const CALLBACK: &str = "http://localhost/login/oidc/corp/callback";
const PARTNER_CALLBACK: &str = "http://localhost/login/oidc/partners/callback";

fn accounts() -> Value {
    let person = |email: &str, verified: bool, groups: &[&str]| {
        json!({
            "email": email,
            "email_verified": verified,
            "preferred_username": email.split('@').next().unwrap(),
            "groups": groups,
        })
    };
    json!({
        "alice": person("alice@example.com", true, &["/staff/ops", "unrelated"]),
        "bob": person("bob@example.com", true, &["dev"]),
        "mallory": person("mallory@example.com", false, &[]),
        "eve": person("eve@elsewhere.org", true, &[]),
        "dan": person("dan@elsewhere.org", true, &["ext-contractors"]),
        "local": person("local@example.com", true, &[]),
        "carol": person("carol@partner.org", true, &[]),
        // Another account of the same provider that calls itself alice.
        "alice-again": {
            "email": "alice.again@example.com",
            "email_verified": true,
            "preferred_username": "alice",
        },
    })
}

/// The provider with two clients (two `[auth.oidc]` entries of one ftw), and ftw with
/// both, a password user named `local`, and a tool only `@ops` may run.
fn start() -> Option<(Idp, Server)> {
    let port = free_port();
    let clients = json!([
        {
            "client_id": "ftw",
            "client_secret": "corp-secret",
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": ["http://localhost/login"],
        },
        {
            "client_id": "ftw-partners",
            "client_secret": "partners-secret",
            "redirect_uris": [PARTNER_CALLBACK],
        },
    ]);
    let manifest = manifest(port, "[\"example.com\"]");
    let test = Test::new()
        .manifest(&manifest)
        .file("corp.secret", "corp-secret\n");
    let server = Server::start(test, &["--audit-log", "audit.jsonl"]);
    let idp = Idp::start(port, clients, accounts())?;
    Some((idp, server))
}

/// ftw's manifest for the provider on `port`; `domains`: corp's `allowed_domains`.
fn manifest(port: u16, domains: &str) -> String {
    unindent(&format!(
        r#"
        [auth]
        admins = ["@ops"]
        max_login_failures = 20
        [auth.users]
        local = "{HASH_A}"
        [auth.oidc.corp]
        issuer = "http://127.0.0.1:{port}"
        client_id = "ftw"
        client_secret_file = "corp.secret"
        scopes = ["email", "profile", "groups"]
        allowed_domains = {domains}
        allowed_groups = ["contractors"]
        [auth.oidc.corp.map]
        "/staff/ops" = "ops"
        "ext-contractors" = "contractors"
        [auth.oidc.partners]
        issuer = "http://127.0.0.1:{port}"
        client_id = "ftw-partners"
        client_secret = "partners-secret"
        label = "Partner sign-in"
        allowed_emails = ["carol@partner.org"]
        [tools.hello]
        command = ["echo", "hello"]
        [tools.deploy]
        command = ["echo", "deployed"]
        allow = ["@ops"]
        "#
    ))
}

fn get(server: &Server, path: &str, session: &str) -> crate::support::server::Wire {
    server.request("GET", path, &[("Cookie", session)], "")
}

#[test]
fn a_provider_user_signs_in_works_and_signs_out_at_the_provider_too() {
    let Some((idp, server)) = start() else { return };
    let page = server.request("GET", "/login", &[], "");
    assert!(page.body.contains("Sign in with corp"), "{}", page.body);
    assert!(page.body.contains("Partner sign-in"));
    // Browsers apply `form-action` to a form's redirect: the button must be let through.
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {}", idp.issuer())),
        "{csp}"
    );

    let mut journey = Journey::to_callback(&server, &idp, "corp", "alice");
    assert!(journey.callback.contains("state="), "{}", journey.callback);
    let done = journey.finish(&server);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/"));
    let session = journey.session().expect("a session cookie");
    assert!(
        journey.jar.get("ftw_oidc").is_none(),
        "the sign-in cookie is gone"
    );

    // An ordinary session: the start page, the group from the provider (mapped), admin.
    let home = get(&server, "/", &session);
    assert_eq!(home.status, 200);
    assert!(home.body.contains("alice"), "{}", home.body);
    assert!(get(&server, "/tools/deploy", &session).status == 200);

    let events = server.audit("audit.jsonl");
    let sign_in = events
        .iter()
        .find(|e| e["event"] == "sign-in")
        .expect("a sign-in record");
    assert_eq!(sign_in["user"], "alice");
    assert_eq!(sign_in["via"], "oidc:corp");
    assert_eq!(sign_in["groups"], json!(["ops"]));

    // Sign-out ends the session here and sends the browser to the provider's
    // end-session endpoint, which knows where to send it back.
    let page = get(&server, "/", &session);
    let token = crate::support::server::csrf(&page.body);
    let out = server.request(
        "POST",
        "/logout",
        &[
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://localhost"),
        ],
        &format!("_csrf={token}"),
    );
    assert_eq!(out.status, 303);
    let location = url::Url::parse(out.header("location").unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next().unwrap(),
        format!("{}/session/end", idp.issuer())
    );
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "ftw");
    assert_eq!(query["post_logout_redirect_uri"], "http://localhost/login");
    let at_provider = idp.request(
        "GET",
        location.as_str().strip_prefix(&idp.issuer()).unwrap(),
        &Default::default(),
        "",
    );
    assert_eq!(
        at_provider.status, 200,
        "the provider takes the logout request"
    );
    assert_eq!(get(&server, "/", &session).status, 303, "the session ended");
}

#[test]
fn every_check_of_the_id_token_refuses_a_forged_one() {
    let Some((idp, server)) = start() else { return };
    // The control: the same claims signed again with the provider's key pass, so each
    // refusal below is the tampered claim's doing.
    let mut modes = vec![("resigned", true)];
    modes.extend(
        [
            "expired",
            "stale",
            "wrong-audience",
            "wrong-nonce",
            "wrong-issuer",
            "other-key",
            "unknown-key",
            "alg-none",
            "hs256",
        ]
        .map(|m| (m, false)),
    );
    for (mode, passes) in modes {
        let mut journey = Journey::to_callback(&server, &idp, "corp", "alice");
        idp.forge_next_token(mode);
        let r = journey.finish(&server);
        if passes {
            assert_eq!(r.status, 303, "{mode}: {}", r.body);
            assert!(journey.session().is_some(), "{mode}");
        } else {
            assert_eq!(r.status, 401, "{mode} was not refused: {}", r.body);
            assert!(journey.session().is_none(), "{mode} gave a session");
            assert!(r.body.contains("did not pass"), "{mode}: {}", r.body);
        }
    }
    let reasons: Vec<String> = server
        .audit("audit.jsonl")
        .iter()
        .filter(|e| e["event"] == "sign-in-failed")
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    // One reason per forgery, each naming the check that caught it.
    let expected = [
        "ID token expired",
        "issued too long ago",
        "Invalid audiences",
        "nonce mismatch",
        "Invalid issuer",
        "bad signature",
        "No matching key",
        "No signature found",
        "Disallowed signature algorithm",
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:#?}");
    for (reason, part) in reasons.iter().zip(expected) {
        assert!(reason.contains(part), "{reason} does not say {part}");
    }
}

#[test]
fn state_cookie_and_code_are_each_good_once() {
    let Some((idp, server)) = start() else { return };
    // A callback whose state is not this browser's.
    let mut journey = Journey::to_callback(&server, &idp, "corp", "alice");
    let good = journey.callback.clone();
    journey.callback = good.replace("state=", "state=x");
    let r = journey.finish(&server);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(journey.session().is_none());

    // The provider said no (the user pressed "cancel" there): a clear message.
    let mut journey = Journey::to_callback(&server, &idp, "corp", "alice");
    let state = journey
        .callback
        .split(['?', '&'])
        .find(|p| p.starts_with("state="))
        .unwrap()
        .to_string();
    journey.callback = format!(
        "/login/oidc/corp/callback?error=access_denied&error_description=no%3Cb%3E&{state}"
    );
    let r = journey.finish(&server);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("did not sign you in (access_denied)"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<b>"), "the provider's text is never HTML");

    // Without the sign-in cookie (another browser, say) nothing can be finished.
    let mut journey = Journey::to_callback(&server, &idp, "corp", "alice");
    let mut bare = journey.jar.clone();
    bare.take(&crate::support::server::Wire {
        status: 200,
        headers: vec![("set-cookie".into(), "ftw_oidc=; Max-Age=0".into())],
        body: String::new(),
    });
    let r = server.request("GET", &journey.callback, &[("Cookie", &bare.header())], "");
    assert_eq!(r.status, 400, "{}", r.body);

    // The genuine callback works once; replayed, with the same cookie, it does not.
    let first_jar = journey.jar.clone();
    assert_eq!(journey.finish(&server).status, 303);
    let code = journey
        .callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_string();
    let replay = server.request(
        "GET",
        &journey.callback,
        &[("Cookie", &first_jar.header())],
        "",
    );
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);

    // A used code with a fresh sign-in's state: the provider refuses it, so does ftw.
    let mut fresh = Journey::to_callback(&server, &idp, "corp", "alice");
    let fresh_code = fresh
        .callback
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_string();
    fresh.callback = fresh.callback.replace(&fresh_code, &code);
    let r = fresh.finish(&server);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(fresh.session().is_none());
}

#[test]
fn the_allowlist_decides_who_gets_in() {
    let Some((idp, server)) = start() else { return };
    let outcome = |provider: &str, account: &str| {
        let mut journey = Journey::to_callback(&server, &idp, provider, account);
        let r = journey.finish(&server);
        (r.status, journey.session())
    };
    // An unverified email matches nothing, whatever its domain.
    assert_eq!(outcome("corp", "mallory").0, 403);
    // A verified email outside the domain, without an allowed group.
    assert_eq!(outcome("corp", "eve").0, 403);
    // A provider user may not take the name of a password user.
    assert_eq!(outcome("corp", "local").0, 403);
    // A name belongs to the account that first signed in with it.
    assert_eq!(outcome("corp", "alice").0, 303);
    assert_eq!(outcome("corp", "alice-again").0, 403);
    assert_eq!(outcome("corp", "alice").0, 303);
    // In through a group the provider calls `ext-contractors` (mapped).
    let (status, dan) = outcome("corp", "dan");
    assert_eq!(status, 303);
    // The second provider has its own allowlist.
    assert_eq!(outcome("corp", "carol").0, 403);
    let (status, carol) = outcome("partners", "carol");
    assert_eq!(status, 303);
    // Groups decide what each may do: bob (domain, no ops) may not deploy; a tool one
    // may not run is not there at all.
    let (_, bob) = outcome("corp", "bob");
    assert_eq!(get(&server, "/tools/hello", &bob.unwrap()).status, 200);
    let (_, bob) = outcome("corp", "bob");
    assert_eq!(get(&server, "/tools/deploy", &bob.unwrap()).status, 404);
    assert_eq!(get(&server, "/tools/deploy", &dan.unwrap()).status, 404);
    assert_eq!(get(&server, "/tools/hello", &carol.unwrap()).status, 200);

    let denied: Vec<Value> = server
        .audit("audit.jsonl")
        .into_iter()
        .filter(|e| e["event"] == "sign-in-failed")
        .collect();
    assert_eq!(denied.len(), 5, "{denied:#?}");
    assert!(
        denied[3]["reason"]
            .as_str()
            .unwrap()
            .contains("belongs to another account"),
        "{denied:#?}"
    );
    assert!(
        denied
            .iter()
            .all(|e| e["via"].as_str().unwrap().starts_with("oidc:"))
    );
}

#[test]
fn sessions_follow_the_manifest_as_it_is_now() {
    let Some((idp, server)) = start() else {
        return;
    };
    let sign_in = |account: &str| {
        let mut journey = Journey::to_callback(&server, &idp, "corp", account);
        assert_eq!(journey.finish(&server).status, 303, "{account}");
        journey.session().unwrap()
    };
    let alice = sign_in("alice");
    let dan = sign_in("dan");
    // The domain leaves the allowlist: alice (in by domain) is out at once; dan (in by
    // group) stays.
    std::fs::write(
        server.test.path().join("tools.toml"),
        manifest(idp.port, "[\"other.org\"]"),
    )
    .unwrap();
    server.signal_only(libc::SIGHUP);
    crate::support::eventually("alice signed out", || {
        get(&server, "/", &alice).status == 303
    });
    assert_eq!(get(&server, "/", &dan).status, 200);
    // A session cookie of a provider user is no key to a password user's account, and
    // a provider's sessions end with the provider.
    let without = manifest(idp.port, "[\"example.com\"]")
        .replace("[auth.oidc.corp.map]", "[auth.oidc.gone.map]")
        .replace("[auth.oidc.corp]", "[auth.oidc.gone]");
    std::fs::write(server.test.path().join("tools.toml"), without).unwrap();
    server.signal_only(libc::SIGHUP);
    crate::support::eventually("dan signed out", || get(&server, "/", &dan).status == 303);
}

// ---- GitHub, against the stand-in of its endpoints (support::github) ----

fn github_journey(
    server: &Server,
    github: &crate::support::github::GitHub,
    login: &str,
) -> (crate::support::server::Wire, crate::support::idp::Jar) {
    let mut jar = crate::support::idp::Jar::default();
    let page = server.request("GET", "/login", &[], "");
    assert!(page.body.contains("Sign in with GitHub"), "{}", page.body);
    jar.take(&page);
    let body = format!(
        "_csrf={}&next=%2Ftools%2Fhello",
        crate::support::server::csrf(&page.body)
    );
    let cookie = jar.header();
    let start = server.request(
        "POST",
        "/login/github",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("Origin", "http://localhost"),
        ],
        &body,
    );
    assert_eq!(start.status, 303, "{}", start.body);
    jar.take(&start);
    let authorize = start.header("location").unwrap();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(authorize.contains("scope=read%3Aorg"), "{authorize}");
    github.sign_in_as(login);
    let path = authorize.strip_prefix(&github.url()).unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", github.port)).unwrap();
    let host = format!("127.0.0.1:{}", github.port);
    let approved = crate::support::server::http_to(&host, &mut stream, "GET", path, &[], "");
    let back = approved.header("location").unwrap();
    let callback = back.strip_prefix("http://localhost").unwrap();
    let cookie = jar.header();
    let done = server.request("GET", callback, &[("Cookie", &cookie)], "");
    jar.take(&done);
    (done, jar)
}

#[test]
fn github_users_sign_in_by_organisation_and_team() {
    use crate::support::github::{Account, CLIENT_ID, CLIENT_SECRET, GitHub};
    let account =
        |orgs: Vec<&'static str>, teams: Vec<(&'static str, &'static str)>| Account { orgs, teams };
    let github = GitHub::start(
        [
            ("alice", account(vec!["acme"], vec![("acme", "ops")])),
            // Anyone can make an organisation of any name: "self-made" proves nothing.
            (
                "bob",
                account(vec!["acme", "self-made"], vec![("self-made", "ops")]),
            ),
            (
                "carol",
                account(vec!["partners"], vec![("partners", "deployers")]),
            ),
            ("mallory", account(vec!["evil"], vec![("evil", "ops")])),
            ("local", account(vec!["acme"], vec![])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    let manifest = unindent(&format!(
        r#"
        [auth]
        admins = ["@acme/ops"]
        [auth.users]
        local = "{HASH_A}"
        [auth.github]
        client_id = "{CLIENT_ID}"
        client_secret = "{CLIENT_SECRET}"
        url = "{url}"
        api_url = "{url}/api/v3"
        allowed_orgs = ["acme"]
        allowed_teams = ["partners/deployers"]
        [tools.hello]
        command = ["echo", "hello"]
        [tools.deploy]
        command = ["echo", "deployed"]
        allow = ["@acme/ops", "@partners/deployers", "@self-made", "@self-made/ops"]
        "#,
        url = github.url()
    ));
    let server = Server::start(
        Test::new().manifest(&manifest),
        &["--audit-log", "audit.jsonl"],
    );

    let (done, jar) = github_journey(&server, &github, "alice");
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/tools/hello"));
    let alice = format!("ftw_session={}", jar.get("ftw_session").unwrap());
    assert_eq!(
        get(&server, "/tools/deploy", &alice).status,
        200,
        "team acme/ops"
    );

    let (done, jar) = github_journey(&server, &github, "bob");
    assert_eq!(done.status, 303);
    let bob = format!("ftw_session={}", jar.get("ftw_session").unwrap());
    assert_eq!(get(&server, "/tools/hello", &bob).status, 200);
    assert_eq!(
        get(&server, "/tools/deploy", &bob).status,
        404,
        "acme only: a self-made organisation is no group"
    );

    let (done, jar) = github_journey(&server, &github, "carol");
    assert_eq!(
        done.status, 303,
        "in through a team of another organisation"
    );
    let carol = format!("ftw_session={}", jar.get("ftw_session").unwrap());
    assert_eq!(get(&server, "/tools/deploy", &carol).status, 200);

    // Another organisation's `ops` team is not acme's; a local user's name is taken.
    assert_eq!(github_journey(&server, &github, "mallory").0.status, 403);
    assert_eq!(github_journey(&server, &github, "local").0.status, 403);

    let events = server.audit("audit.jsonl");
    let alice_in = events
        .iter()
        .find(|e| e["event"] == "sign-in" && e["user"] == "alice")
        .unwrap();
    assert_eq!(alice_in["via"], "github");
    assert_eq!(alice_in["groups"], json!(["acme", "acme/ops"]));
}

#[test]
fn an_unreachable_provider_or_directory_gets_a_clear_answer_not_a_hang() {
    // Nothing listens on these ports: the provider and the directory are down.
    let closed = crate::support::idp::free_port();
    let manifest = unindent(&format!(
        r#"
        [auth.oidc.corp]
        issuer = "http://127.0.0.1:{closed}"
        client_id = "ftw"
        client_secret = "s"
        allowed_domains = ["example.com"]
        [auth.ldap]
        url = "ldap://127.0.0.1:{closed}"
        base_dn = "dc=example,dc=com"
        [tools.hello]
        command = ["echo", "hello"]
        "#
    ));
    let server = Server::start(Test::new().manifest(&manifest), &[]);
    let mut jar = crate::support::idp::Jar::default();
    let page = server.request("GET", "/login", &[], "");
    assert_eq!(page.status, 200, "ftw serves while its provider is down");
    jar.take(&page);
    let csrf = crate::support::server::csrf(&page.body);
    let cookie = jar.header();
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", cookie.as_str()),
        ("Origin", "http://localhost"),
    ];
    let r = server.request(
        "POST",
        "/login/oidc/corp",
        &headers,
        &format!("_csrf={csrf}&next=%2F"),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("cannot be reached right now"), "{}", r.body);
    let r = server.request(
        "POST",
        "/login",
        &headers,
        &format!("_csrf={csrf}&username=alice&password=pw&next=%2F"),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("directory cannot be reached"), "{}", r.body);
    assert!(
        server
            .stderr()
            .contains("identity provider `corp` cannot be reached yet"),
        "the log says so at start: {}",
        server.stderr()
    );
}
