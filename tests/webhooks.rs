//! Inbound webhooks (issue 15) on the real `ftw serve`: a GitHub-style delivery signed
//! in the test starts the tool with values from the payload and a header; a replayed
//! delivery, a bad signature and a stale signed timestamp are refused and audited; a
//! payload path that points at an object is a 422 naming the field; GitLab's token;
//! `ftw check` refuses a webhook without a (private) secret.

use std::os::unix::fs::PermissionsExt;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::server::Server;
use crate::support::{HASH_A, Test, eventually};

const SECRET: &str = "a-long-webhook-secret-for-tests";

fn manifest() -> String {
    format!(
        r#"
[auth.users]
alice = "{HASH_A}"

[tools.deploy]
command = ["./deploy.sh", "{{branch}}", "{{event}}"]

[tools.deploy.args.branch]
type = "text"
pattern = "refs/heads/[a-z0-9/_$();` -]+"

[tools.deploy.args.event]
type = "select"
options = ["push", "release"]

[tools.deploy.webhook]
secret_file = "hook.secret"
signature = "github"
user = "alice"
args = {{ branch = "payload.ref", event = "header.X-GitHub-Event" }}

[tools.stamped]
command = ["./deploy.sh", "{{branch}}"]

[tools.stamped.args.branch]
type = "text"

[tools.stamped.webhook]
secret_file = "hook.secret"
signature = "hmac-sha256"
header = "X-Signature"
timestamp_header = "X-Timestamp"
user = "alice"
args = {{ branch = "payload.repository" }}

[tools.lab]
command = ["./deploy.sh", "{{branch}}"]

[tools.lab.args.branch]
type = "text"

[tools.lab.webhook]
secret_file = "hook.secret"
signature = "gitlab"
user = "alice"
args = {{ branch = "query.branch" }}
"#
    )
}

fn server() -> Server {
    let test = Test::new()
        .manifest(&manifest())
        .exec(
            "deploy.sh",
            "#!/bin/sh\nprintf '%s|' \"$@\"; echo \"by $FTW_USER\"\n",
        )
        .file("hook.secret", &format!("{SECRET}\n"));
    std::fs::set_permissions(
        test.path().join("hook.secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    Server::start(test, &["--audit-log", "audit.log"])
}

fn sign(parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn deliver(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let r = server.request("POST", path, &all, body);
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

fn events(server: &Server, name: &str) -> Vec<Value> {
    server
        .audit("audit.log")
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

#[test]
fn a_signed_github_delivery_runs_the_tool_once() {
    let server = server();
    let body = r#"{"ref": "refs/heads/main $(id)", "repository": {"name": "app"}}"#;
    let signature = format!("sha256={}", sign(&[body.as_bytes()]));
    let headers = [
        ("X-Hub-Signature-256", signature.as_str()),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-GitHub-Event", "push"),
    ];
    let (status, run) = deliver(&server, "/api/hooks/deploy?wait=true", &headers, body);
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], "refs/heads/main $(id)|push|by alice\n");
    let starts = events(&server, "run-start");
    assert_eq!(starts[0]["via"], "webhook");
    assert_eq!(starts[0]["user"], "alice");

    // The same delivery again: refused, audited, nothing runs.
    let (status, answer) = deliver(&server, "/api/hooks/deploy", &headers, body);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(events(&server, "webhook-replayed").len(), 1);
    // Its delivery id is not signed: a replay with a new one, or with the signature
    // written in capitals, is the same delivery.
    let shouted = format!("sha256={}", sign(&[body.as_bytes()]).to_uppercase());
    for (signature, id) in [
        (signature.as_str(), "a-new-id"),
        (shouted.as_str(), "another-id"),
    ] {
        let replay = [
            ("X-Hub-Signature-256", signature),
            ("X-GitHub-Delivery", id),
            ("X-GitHub-Event", "push"),
        ];
        let (status, answer) = deliver(&server, "/api/hooks/deploy", &replay, body);
        assert_eq!(status, 409, "{answer}");
    }
    // A wrong signature: 401, audited, nothing runs.
    let forged = [
        ("X-Hub-Signature-256", "sha256=00"),
        ("X-GitHub-Delivery", "another"),
        ("X-GitHub-Event", "push"),
    ];
    let (status, answer) = deliver(&server, "/api/hooks/deploy", &forged, body);
    assert_eq!(status, 401, "{answer}");
    let refused = events(&server, "webhook-refused");
    assert_eq!(refused[0]["reason"], "wrong signature");
    // No signature at all, and a body signed for another body.
    let (status, _) = deliver(
        &server,
        "/api/hooks/deploy",
        &[("X-GitHub-Event", "push")],
        body,
    );
    assert_eq!(status, 401);
    let other = format!("sha256={}", sign(&[b"{}"]));
    let (status, _) = deliver(
        &server,
        "/api/hooks/deploy",
        &[("X-Hub-Signature-256", &other)],
        body,
    );
    assert_eq!(status, 401);
    assert_eq!(
        events(&server, "run-start").len(),
        1,
        "only the first delivery ran"
    );

    // A value that does not pass the argument's checks: 422 naming the field.
    let bad = r#"{"ref": "tags/v1"}"#;
    let signature = format!("sha256={}", sign(&[bad.as_bytes()]));
    let (status, answer) = deliver(
        &server,
        "/api/hooks/deploy",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Event", "push"),
        ],
        bad,
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer["fields"]["branch"].is_string(), "{answer}");
    // It did not run, so it was not used up: the sender's retry gets the same answer.
    let (status, _) = deliver(
        &server,
        "/api/hooks/deploy",
        &[
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Event", "push"),
        ],
        bad,
    );
    assert_eq!(status, 422, "a retry of a delivery that did not run");
    // An unknown tool and a tool without a webhook are the same 404.
    assert_eq!(deliver(&server, "/api/hooks/nope", &[], "{}").0, 404);
}

#[test]
fn signed_timestamps_expire_and_payload_objects_are_not_values() {
    let server = server();
    let body = r#"{"repository": {"name": "app"}}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp = now.to_string();
    let signature = sign(&[stamp.as_bytes(), b".", body.as_bytes()]);
    let headers = [
        ("X-Signature", signature.as_str()),
        ("X-Timestamp", stamp.as_str()),
    ];
    let (status, answer) = deliver(&server, "/api/hooks/stamped", &headers, body);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["fields"]["branch"]
            .as_str()
            .unwrap()
            .contains("payload.repository is an object"),
        "{answer}"
    );
    // Ten minutes old, correctly signed: outside the five-minute window.
    let old = (now - 600).to_string();
    let signature = sign(&[old.as_bytes(), b".", body.as_bytes()]);
    let headers = [
        ("X-Signature", signature.as_str()),
        ("X-Timestamp", old.as_str()),
    ];
    let (status, answer) = deliver(&server, "/api/hooks/stamped", &headers, body);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("replay window"),
        "{answer}"
    );

    // GitLab's shared token, compared whole; the value from the query.
    let (status, _) = deliver(
        &server,
        "/api/hooks/lab?branch=dev",
        &[("X-Gitlab-Token", "nope")],
        "{}",
    );
    assert_eq!(status, 401);
    let (status, run) = deliver(
        &server,
        "/api/hooks/lab?branch=dev&wait=true",
        &[("X-Gitlab-Token", SECRET)],
        "{}",
    );
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["output"], "dev|by alice\n");
    eventually("the refusals are audited", || {
        events(&server, "webhook-refused").len() == 2
    });
}

#[test]
fn ftw_check_refuses_a_webhook_without_a_private_secret() {
    let manifest = format!(
        r#"
[auth.users]
alice = "{HASH_A}"

[tools.a]
command = ["echo", "{{x}}"]
[tools.a.args.x]
type = "select"
options = ["1"]
[tools.a.webhook]
signature = "github"
user = "alice"

[tools.b]
command = ["echo"]
[tools.b.webhook]
secret_file = "open.secret"
signature = "gihub"
user = "alise"
args = {{ y = "payload.y", x = "body.x" }}
"#
    );
    let test = Test::new()
        .manifest(&manifest)
        .file("open.secret", "a-long-webhook-secret-for-tests\n");
    std::fs::set_permissions(
        test.path().join("open.secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = test.args(&["check", "tools.toml"]).run();
    out.code(2);
    out.stderr_has("a webhook needs `secret_file`: without a secret anyone could start the tool");
    out.stderr_has("other users can read the webhook secret \"open.secret\" (mode 644)");
    out.stderr_has("`signature` \"gihub\" is not a scheme ftw checks; did you mean \"github\"?");
    out.stderr_has("the webhook runs as \"alise\", who is not a user of this manifest");
    out.stderr_has("the webhook fills `y`, which is not an argument of this tool");
}
