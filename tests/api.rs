//! The JSON API end to end, in-process with real runs: a bearer token and a session
//! cookie with `X-CSRF-Token`; list, run, wait, stream, cancel; 401/403/404/422/429;
//! the OpenAPI description checked against real responses; `/metrics`.

use serde_json::{Value, json};

use crate::support::app::{App, Browser, Reply};
use crate::support::sse;
use crate::support::{HASH_A, HASH_B};

const ALICE_PW: &str = "hunter2-but-longer";
const BOB_PW: &str = "second";

struct Api {
    app: App,
    token: String,
    bob_token: String,
}

fn api(extra: &str) -> Api {
    api_app(extra, false)
}

/// `api`, writing its audit log to `audit.log` (`App::audit` reads it).
fn api_app(extra: &str, audit: bool) -> Api {
    let (token, hash) = ftw::auth::tokens::generate();
    let (bob_token, bob_hash) = ftw::auth::tokens::generate();
    let manifest = format!(
        r#"
[server]
metrics_allow = ["127.0.0.1"]

[auth.users]
alice = {{ password = "{HASH_A}", groups = ["ops"] }}
bob = "{HASH_B}"

[auth.tokens.ci]
hash = "{}"
user = "alice"

[auth.tokens.bobs]
hash = "{}"
user = "bob"

[tools.greet]
title = "Greet"
command = ["/bin/sh", "-c", "echo \"hello $1\"; [ -n \"$2\" ] && echo loud; exit 0", "sh", "{{name}}", "{{loud}}"]
[tools.greet.args.name]
type = "text"
max_length = 10
[tools.greet.args.loud]
type = "bool"
flag = "yes"
default = true

[tools.fail]
command = ["/bin/sh", "-c", "echo failing >&2; exit 3"]

[tools.slow]
command = ["/bin/sleep", "30"]

[tools.ops]
command = ["/bin/echo", "ops"]
allow = ["@ops"]

[tools.count]
command = ["/bin/sh", "-c", "wc -c < \"$FTW_ARG_DOC\""]
[tools.count.args.doc]
type = "file"
{extra}
"#,
        ftw::auth::tokens::manifest_form(&hash),
        ftw::auth::tokens::manifest_form(&bob_hash),
    );
    Api {
        app: if audit {
            App::with_audit(&manifest, &[])
        } else {
            App::new(&manifest)
        },
        token,
        bob_token,
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (Reply, Value) {
        let mut req = warp::test::request().method(method).path(path);
        if let Some(body) = body {
            req = req.json(&body);
        } else if method == "POST" {
            req = req.header("content-length", "0");
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let reply = self.app.send(req).await;
        let json = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        (reply, json)
    }

    async fn run(&self, tool: &str, args: Value, wait: bool) -> (Reply, Value) {
        let path = format!(
            "/api/tools/{tool}/runs{}",
            if wait { "?wait=true" } else { "" }
        );
        self.call(
            "POST",
            &path,
            Some(&self.token),
            Some(json!({ "args": args })),
        )
        .await
    }
}

#[tokio::test]
async fn a_token_lists_runs_waits_and_reads() {
    let api = api("");
    let (r, tools) = api.call("GET", "/api/tools", Some(&api.token), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    let ids: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["greet", "fail", "slow", "ops", "count"]);
    let greet = &tools["tools"][0];
    assert_eq!(greet["args"]["properties"]["name"]["maxLength"], 10);
    assert_eq!(greet["args"]["required"], json!(["name"]));

    let (r, run) = api.run("greet", json!({ "name": "Ada" }), true).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["exit_code"], 0, "exit_code 0 is present, not left out");
    assert!(run.as_object().unwrap().contains_key("exit_code"));
    assert_eq!(
        run["output"], "hello Ada\nloud\n",
        "the bool took its default"
    );

    let (r, failed) = api.run("fail", json!({}), true).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        (failed["status"].as_str(), failed["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    let (_, again) = api
        .call(
            "GET",
            &format!("/api/runs/{}", failed["id"].as_str().unwrap()),
            Some(&api.token),
            None,
        )
        .await;
    assert_eq!(again["exit_code"], 3);
    assert_eq!(again["output"], "failing\n");
}

#[tokio::test]
async fn starting_without_wait_returns_at_once_and_the_stream_ends_with_the_code() {
    let api = api("");
    let (r, started) = api
        .run("greet", json!({ "name": "Bo", "loud": false }), false)
        .await;
    assert_eq!(r.status, 201);
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["url"], format!("/api/runs/{id}"));
    api.app.finished(&id).await;
    let (events, _) = api
        .call(
            "GET",
            &format!("/api/runs/{id}/events"),
            Some(&api.token),
            None,
        )
        .await;
    assert_eq!(events.status, 200);
    let parsed = sse::parse(&events.body);
    assert_eq!(parsed[0].event, "snapshot");
    assert_eq!(parsed[0].data, "hello Bo\n", "text, not HTML");
    let end = parsed.iter().find(|e| e.event == "end").unwrap();
    let end: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(end["exit_code"], 0);
}

#[tokio::test]
async fn a_stream_opened_mid_run_reports_the_status_before_more_output() {
    // A page rendered while the run was queued learns it is running from the stream,
    // even when the stream opens after the run started.
    let api = api(r#"
[tools.pause]
command = ["/bin/sh", "-c", "echo one; sleep 1; echo two"]
"#);
    let (_, started) = api.run("pause", json!({}), false).await;
    let id = started["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no output within 30 s"
        );
        let (_, run) = api
            .call("GET", &format!("/api/runs/{id}"), Some(&api.token), None)
            .await;
        if run["output"] == "one\n" {
            assert_eq!(run["status"], "running");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (events, _) = api
        .call(
            "GET",
            &format!("/api/runs/{id}/events"),
            Some(&api.token),
            None,
        )
        .await;
    let parsed = sse::parse(&events.body);
    let names: Vec<&str> = parsed.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["snapshot", "status", "output", "end"]);
    assert_eq!(parsed[0].data, "one\n");
    assert!(parsed[1].data.contains("\"running\""), "{}", parsed[1].data);
    assert_eq!(parsed[2].data, "two\n");
}

#[tokio::test]
async fn long_output_streams_whole_and_stays_out_of_the_json() {
    let api = api(r#"
[tools.long]
command = ["seq", "1", "200000"]
max_output = "5MB"
"#);
    let expected: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
    assert!(expected.len() as u64 > ftw::server::INLINE_OUTPUT);
    let (_, started) = api.run("long", json!({}), false).await;
    let id = started["id"].as_str().unwrap().to_string();
    api.app.finished(&id).await;

    let (_, run) = api
        .call("GET", &format!("/api/runs/{id}"), Some(&api.token), None)
        .await;
    assert_eq!(run["output"], Value::Null, "too long to inline");
    assert_eq!(run["output_bytes"], expected.len());
    let url = run["output_url"].as_str().unwrap();
    let (whole, _) = api.call("GET", url, Some(&api.token), None).await;
    assert_eq!(whole.status, 200);
    assert!(whole.body == expected, "the download is the whole output");

    // The event stream hands it over in several events that add up to all of it.
    let (events, _) = api
        .call(
            "GET",
            &format!("/api/runs/{id}/events"),
            Some(&api.token),
            None,
        )
        .await;
    let parsed = sse::parse(&events.body);
    let pieces: Vec<&sse::Event> = parsed.iter().filter(|e| e.event != "end").collect();
    assert!(pieces.len() > 1, "{} events", pieces.len());
    let joined: String = pieces.iter().map(|e| e.data.as_str()).collect();
    assert!(joined == expected, "the events add up to the output");

    let mut browser = api.app.browser();
    assert_eq!(browser.login("alice", ALICE_PW).await.status, 303);
    let page = browser.get(&format!("/runs/{id}/output")).await;
    assert!(page.body == expected, "the page's download too");
}

#[tokio::test]
async fn indented_lines_and_carriage_returns_survive_the_event_stream() {
    let api = api(r#"
[tools.tricky]
command = ["/bin/sh", "-c", "printf '  two spaces\n\tTab\r\nprogress 1\rprogress 2\revent: end\rid: 999\n'"]
"#);
    let (_, started) = api.run("tricky", json!({}), false).await;
    let id = started["id"].as_str().unwrap().to_string();
    api.app.finished(&id).await;
    let mut browser = api.app.browser();
    assert_eq!(browser.login("alice", ALICE_PW).await.status, 303);
    for (path, bearer) in [
        (format!("/api/runs/{id}/events"), true),
        (format!("/runs/{id}/events"), false),
    ] {
        let events = if bearer {
            api.call("GET", &path, Some(&api.token), None).await.0
        } else {
            let reply = browser.get(&path).await;
            assert_eq!(reply.status, 200);
            reply
        };
        let parsed = sse::parse(&events.body);
        let kinds: Vec<&str> = parsed.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(kinds, ["snapshot", "end"], "{path}: {}", events.body);
        assert_eq!(
            parsed[0].data, "  two spaces\n\tTab\nprogress 1\nprogress 2\nevent: end\nid: 999\n",
            "{path}"
        );
        assert_ne!(parsed[0].id.as_deref(), Some("999"));
    }
}

#[tokio::test]
async fn cancel_through_the_api() {
    let api = api("");
    let (_, started) = api.run("slow", json!({}), false).await;
    let id = started["id"].as_str().unwrap().to_string();
    let live = api.app.state.runs.get(&id).await.unwrap();
    let mut changes = live.watch();
    let running = async {
        while live.status() != ftw::runs::Status::Running {
            changes.changed().await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("running within 30 s");
    let (r, run) = api
        .call("GET", &format!("/api/runs/{id}"), Some(&api.token), None)
        .await;
    assert_eq!(r.status, 200);
    assert!(run["exit_code"].is_null(), "null while running");
    let (r, body) = api
        .call(
            "POST",
            &format!("/api/runs/{id}/cancel"),
            Some(&api.token),
            None,
        )
        .await;
    // The answer waits for the run to end and says how: SIGTERM ended `sleep`.
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["signal"], libc::SIGTERM, "{body}");
    assert!(body["exit_code"].is_null());
    let run = api.app.finished(&id).await;
    assert_eq!(
        run.status(),
        ftw::runs::Status::Cancelled(Some(ftw::exec::Exit::Signal(libc::SIGTERM)))
    );
    let (_, again) = api
        .call("GET", &format!("/api/runs/{id}"), Some(&api.token), None)
        .await;
    assert_eq!(
        (again["signal"].clone(), again["exit_code"].clone()),
        (json!(15), json!(null))
    );
}

#[tokio::test]
async fn invalid_arguments_are_422_with_a_message_per_field() {
    let api = api("");
    let (r, body) = api
        .run(
            "greet",
            json!({ "name": "far too long a name", "extra": 1 }),
            false,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(body["fields"]["name"], "must be at most 10 characters long");
    assert!(body["fields"]["_form"].as_str().unwrap().contains("extra"));
    let (r, body) = api.run("greet", json!({}), false).await;
    assert_eq!(
        (r.status, body["fields"]["name"].as_str()),
        (422, Some("is required"))
    );
    let (r, body) = api
        .call(
            "POST",
            "/api/tools/greet/runs",
            Some(&api.token),
            Some(json!({ "args": [1] })),
        )
        .await;
    assert_eq!(r.status, 400, "{body}");
    assert!(api.app.all_runs().await.is_empty());
}

#[tokio::test]
async fn who_may_do_what() {
    let api = api("");
    let (r, body) = api.call("GET", "/api/tools", None, None).await;
    assert_eq!((r.status, r.header("www-authenticate")), (401, "Bearer"));
    assert!(body["error"].is_string());
    // bob may not run @ops tools, nor see alice's runs.
    let (r, _) = api
        .call(
            "POST",
            "/api/tools/ops/runs",
            Some(&api.bob_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 404);
    let (_, started) = api.run("greet", json!({ "name": "x" }), true).await;
    let id = started["id"].as_str().unwrap();
    for (method, path) in [
        ("GET", format!("/api/runs/{id}")),
        ("GET", format!("/api/runs/{id}/events")),
        ("POST", format!("/api/runs/{id}/cancel")),
    ] {
        let (r, _) = api.call(method, &path, Some(&api.bob_token), None).await;
        assert_eq!(r.status, 404, "{method} {path}");
    }
    let (r, _) = api
        .call("GET", "/api/runs/nonexistent", Some(&api.token), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn bad_tokens_are_401_then_throttled() {
    let api = api("");
    for _ in 0..5 {
        let (r, _) = api
            .call("GET", "/api/tools", Some("ftw_not-a-token"), None)
            .await;
        assert_eq!(r.status, 401);
    }
    let (r, body) = api.call("GET", "/api/tools", Some(&api.token), None).await;
    assert_eq!(
        r.status, 429,
        "the address is blocked, even with a good token: {body}"
    );
    assert!(!r.header("retry-after").is_empty());
    // The user behind the token is not locked out elsewhere.
    let mut b = api.app.browser();
    b.peer = "10.9.9.9:1".parse().unwrap();
    assert_eq!(b.login("alice", ALICE_PW).await.status, 303);
}

#[tokio::test]
async fn a_session_needs_the_csrf_header_for_writes() {
    let api = api("");
    let mut b = api.app.browser();
    b.login("alice", ALICE_PW).await;
    let csrf = b.get("/").await.csrf();
    let body = serde_json::to_vec(&json!({ "args": { "name": "Se" } })).unwrap();
    let post = |b: &Browser<'_>, headers: Vec<(&'static str, String)>| {
        let mut req = warp::test::request()
            .method("POST")
            .path("/api/tools/greet/runs?wait=true")
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string())
            .header(
                "cookie",
                b.cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
            .body(body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req
    };
    let r = api.app.send(post(&b, vec![])).await;
    assert_eq!(r.status, 403, "no X-CSRF-Token");
    let r = api
        .app
        .send(post(
            &b,
            vec![
                ("x-csrf-token", csrf.clone()),
                ("origin", "https://evil.example".into()),
            ],
        ))
        .await;
    assert_eq!(r.status, 403, "cross-site");
    let r = api.app.send(post(&b, vec![("x-csrf-token", csrf)])).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let run: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(run["user"], "alice");
    // Reads need no token.
    let get = warp::test::request()
        .path(&format!("/api/runs/{}", run["id"].as_str().unwrap()))
        .header(
            "cookie",
            b.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
    assert_eq!(api.app.send(get).await.status, 200);
}

#[tokio::test]
async fn files_go_up_as_multipart() {
    let api = api("");
    let boundary = "APIBOUNDARY";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"notes.txt\"\r\n\r\n12345\r\n--{boundary}--\r\n"
    );
    let req = warp::test::request()
        .method("POST")
        .path("/api/tools/count/runs?wait=true")
        .header("authorization", format!("Bearer {}", api.token))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", body.len().to_string())
        .body(body);
    let r = api.app.send(req).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let run: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(run["output"], "5\n");
}

#[tokio::test]
async fn the_openapi_description_matches_real_responses() {
    let api = api("");
    let (r, doc) = api
        .call("GET", "/api/openapi.json", Some(&api.bob_token), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/tools/greet/runs"));
    assert!(
        !paths.contains_key("/api/tools/ops/runs"),
        "bob's description leaves out tools he may not run"
    );
    for (path, method, ok) in [
        ("/api/tools", "get", "200"),
        ("/api/runs", "get", "200"),
        ("/api/runs/{id}", "get", "200"),
        ("/api/runs/{id}/events", "get", "200"),
        ("/api/runs/{id}/output", "get", "200"),
        ("/api/runs/{id}/cancel", "post", "200"),
        ("/api/runs/{id}/cancel", "post", "202"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(
            responses[ok].is_object(),
            "{path} {method} {ok}: {responses}"
        );
    }

    // Every schema reference resolves inside the document.
    let schemas = doc["components"]["schemas"].clone();
    let with_defs = |schema: &Value| {
        let mut s = schema.clone();
        s["$defs"] = schemas.clone();
        let text = serde_json::to_string(&s)
            .unwrap()
            .replace("#/components/schemas/", "#/$defs/");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let run_schema = jsonschema::validator_for(&with_defs(&schemas["Run"])).unwrap();
    let started_schema = jsonschema::validator_for(&with_defs(&schemas["RunStarted"])).unwrap();
    let args_schema = jsonschema::validator_for(&with_defs(&schemas["GreetArgs"])).unwrap();

    let args = json!({ "name": "Ada", "loud": false });
    assert!(args_schema.is_valid(&args));
    assert!(!args_schema.is_valid(&json!({ "name": "far too long a name" })));
    assert!(!args_schema.is_valid(&json!({ "name": "x", "nope": 1 })));

    let (_, started) = api
        .call(
            "POST",
            "/api/tools/greet/runs",
            Some(&api.bob_token),
            Some(json!({ "args": args })),
        )
        .await;
    assert!(started_schema.is_valid(&started), "{started}");
    let id = started["id"].as_str().unwrap();
    api.app.finished(id).await;
    let (_, run) = api
        .call(
            "GET",
            &format!("/api/runs/{id}"),
            Some(&api.bob_token),
            None,
        )
        .await;
    let errors: Vec<String> = run_schema
        .iter_errors(&run)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{run}");

    let list_schema = jsonschema::validator_for(&with_defs(
        &doc["paths"]["/api/runs"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"],
    ))
    .unwrap();
    let (_, list) = api
        .call("GET", "/api/runs", Some(&api.bob_token), None)
        .await;
    let errors: Vec<String> = list_schema
        .iter_errors(&list)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{list}");
    assert_eq!(list["runs"][0]["id"], id);
    assert_eq!(list["runs"][0]["args"]["name"], "Ada");
}

// ---- metrics ----

fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text")
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_with_runs() {
    let api = api("");
    let mut b = api.app.browser();
    b.login("alice", ALICE_PW).await;
    let before = parse_metrics(&b.get("/metrics").await.body);
    assert_eq!(
        sample(&before, "ftw_runs_started_total", ("tool", "greet")),
        0.0
    );
    assert_eq!(
        sample(&before, "ftw_sign_ins_total", ("result", "success")),
        1.0
    );

    api.run("greet", json!({ "name": "m" }), true).await;
    api.run("fail", json!({}), true).await;
    let metrics = b.get("/metrics").await;
    assert!(
        metrics
            .header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let after = parse_metrics(&metrics.body);
    assert_eq!(
        sample(&after, "ftw_runs_started_total", ("tool", "greet")),
        1.0
    );
    assert_eq!(
        sample(&after, "ftw_runs_finished_total", ("outcome", "failed")),
        1.0
    );
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "ftw_run_duration_seconds"
                || s.metric.starts_with("ftw_run_duration_seconds"))
    );
    assert!(after.samples.iter().any(|s| s.metric == "ftw_runs_active"));
}

#[tokio::test]
async fn metrics_are_off_by_default_and_limited_when_on() {
    let off = App::new(&format!(
        "[auth.users]\nalice = \"{HASH_A}\"\n[tools.t]\ncommand = [\"/bin/true\"]\n"
    ));
    assert_eq!(off.browser().get("/metrics").await.status, 404);

    let (token, hash) = ftw::auth::tokens::generate();
    let on = App::new(&format!(
        "[server]\nmetrics_allow = [\"10.0.0.0/8\"]\nmetrics_token = \"{}\"\n[auth.users]\nalice = \"{HASH_A}\"\n[tools.t]\ncommand = [\"/bin/true\"]\n",
        ftw::auth::tokens::manifest_form(&hash)
    ));
    let mut outsider = on.browser();
    assert_eq!(outsider.get("/metrics").await.status, 403);
    outsider
        .headers
        .push(("authorization".into(), format!("Bearer {token}")));
    assert_eq!(
        outsider.get("/metrics").await.status,
        200,
        "the metrics token works anywhere"
    );
    let mut inside = on.browser();
    inside.peer = "10.1.2.3:9".parse().unwrap();
    assert_eq!(inside.get("/metrics").await.status, 200);
}

#[tokio::test]
async fn the_audit_log_says_how_each_caller_signed_in() {
    let api = api_app("", true);
    let (r, _) = api.run("greet", json!({ "name": "Ada" }), true).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut b = api.app.browser();
    b.login("alice", ALICE_PW).await;
    let csrf = b.get("/tools/greet").await.csrf();
    let r = b
        .post_with(
            "/api/tools/greet/runs",
            &[("name", "Bo")],
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (r, _) = api.call("GET", "/api/tools", Some("ftw_wrong"), None).await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("token was refused"), "{}", r.body);

    let audit = api.app.audit();
    let starts: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e["event"] == "run-start")
        .map(|e| (e["user"].as_str().unwrap(), e["via"].as_str().unwrap()))
        .collect();
    assert_eq!(starts, [("alice", "token:ci"), ("alice", "session")]);
    let failed = audit.iter().find(|e| e["event"] == "token-failed").unwrap();
    assert_eq!(failed["client"], "127.0.0.1");
}

// ---- history ----

/// The ids of a `GET /api/runs` answer, and its `next` cursor.
fn page_of(json: &Value) -> (Vec<String>, Option<String>) {
    let ids = json["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{json}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    (ids, json["next"].as_str().map(str::to_string))
}

#[tokio::test]
async fn the_history_pages_by_cursor_and_filters_what_each_caller_may_see() {
    let api = api("[auth]\nadmins = [\"alice\"]\n");
    let run = |token: String, tool: &'static str, args: Value| {
        let api = &api;
        async move {
            let (r, json) = api
                .call(
                    "POST",
                    &format!("/api/tools/{tool}/runs?wait=true"),
                    Some(&token),
                    Some(json!({ "args": args })),
                )
                .await;
            assert_eq!(r.status, 201, "{json}");
            json["id"].as_str().unwrap().to_string()
        }
    };
    let mut bobs = Vec::new();
    for i in 0..5 {
        bobs.push(
            run(
                api.bob_token.clone(),
                "greet",
                json!({ "name": format!("n{i}") }),
            )
            .await,
        );
    }
    for _ in 0..2 {
        bobs.push(run(api.bob_token.clone(), "fail", json!({})).await);
    }
    let alices = [
        run(api.token.clone(), "ops", json!({})).await,
        run(api.token.clone(), "greet", json!({ "name": "al" })).await,
    ];
    let newest_first: Vec<String> = bobs.iter().rev().cloned().collect();
    let get = |path: &str, token: &str| {
        let (path, token) = (path.to_string(), token.to_string());
        let api = &api;
        async move { api.call("GET", &path, Some(&token), None).await }
    };

    // bob, three at a time: his own runs only, newest first, every one once.
    let mut seen = Vec::new();
    let mut path = "/api/runs?limit=3".to_string();
    loop {
        let (r, json) = get(&path, &api.bob_token).await;
        assert_eq!(r.status, 200, "{json}");
        let (ids, next) = page_of(&json);
        assert!(ids.len() <= 3);
        seen.extend(ids);
        let Some(cursor) = next else { break };
        path = format!("/api/runs?limit=3&cursor={cursor}");
    }
    assert_eq!(seen, newest_first);

    let (_, json) = get("/api/runs", &api.bob_token).await;
    let first = &json["runs"][2];
    assert_eq!(first["args"]["name"], "n4");
    assert_eq!(first["via"], "token:bobs");
    for (query, expected) in [
        (
            "tool=fail",
            bobs[5..].iter().rev().cloned().collect::<Vec<_>>(),
        ),
        ("status=failed", bobs[5..].iter().rev().cloned().collect()),
        (
            "status=succeeded&tool=greet",
            bobs[..5].iter().rev().cloned().collect(),
        ),
        ("since=2000-01-01", newest_first.clone()),
        ("until=2000-01-01", Vec::new()),
        ("user=alice", newest_first.clone()),
        // A tool bob may not run: his runs of it (none), never whether it exists.
        ("tool=ops", Vec::new()),
    ] {
        let (r, json) = get(&format!("/api/runs?{query}"), &api.bob_token).await;
        assert_eq!((r.status, page_of(&json).0), (200, expected), "{query}");
    }
    for (query, says) in [
        ("status=fine", "status must be one of"),
        ("since=yesterday", "is not a date"),
        ("cursor=abc", "not a cursor"),
        ("limit=0", "limit must be"),
    ] {
        let (r, json) = get(&format!("/api/runs?{query}"), &api.bob_token).await;
        assert_eq!(r.status, 400, "{query}: {json}");
        assert!(
            json["error"].as_str().unwrap().contains(says),
            "{query}: {json}"
        );
    }

    // alice is an admin: everyone's runs, or one user's.
    let (_, json) = get("/api/runs", &api.token).await;
    assert_eq!(page_of(&json).0.len(), 9);
    assert_eq!(page_of(&json).0[0], alices[1]);
    let (_, json) = get("/api/runs?user=bob", &api.token).await;
    assert_eq!(page_of(&json).0, newest_first);

    // The page: filters, arguments, and a link to older runs.
    let mut b = api.app.browser();
    assert_eq!(b.login("bob", BOB_PW).await.status, 303);
    let page = b.get("/runs?limit=2&tool=greet").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Name: n4") && page.body.contains("Name: n3"));
    assert!(!page.body.contains("Name: n2"), "two a page");
    assert!(page.body.contains("<option value=\"greet\" selected>"));
    let older = page
        .body
        .split("href=\"")
        .find(|s| s.contains("rel=\"next\"") || s.contains("before="))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        older.contains("tool=greet") && older.contains("before="),
        "{older}"
    );
    let next = b.get(&older).await;
    assert!(next.body.contains("Name: n2") && !next.body.contains("Name: n4"));
    assert!(next.body.contains("Newest runs"));
    let none = b.get("/runs?status=killed").await;
    assert!(none.body.contains("No runs match these filters."));
    assert_eq!(b.get("/runs?since=soon").await.status, 400);
}
