//! Several `ftw serve` on one PostgreSQL (issue 14): a throwaway cluster per test
//! (`support::postgres`), and two or three real replicas on loopback ports, each with
//! its own state folder and audit log, sharing the manifest and the signing key.

use std::time::Duration;

use serde_json::Value;

use crate::support::postgres::Postgres;
use crate::support::server::{Server, Wire, csrf};
use crate::support::{HASH_A, HASH_B, Test, eventually, gone};

const ALICE_PW: &str = "hunter2-but-longer";
const BOB_PW: &str = "second";
/// RFC 6238's SHA-1 test secret, "12345678901234567890", in base32.
const TOTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const KEY: &str = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a";

/// Ticks five times a second until stopped; says where it runs.
const TICKER_SH: &str = r#"#!/bin/sh
echo $$ > "$1"
i=0
while :; do echo "tick $i"; i=$((i+1)); sleep 0.2; done
"#;

/// About 200 KB of output (past what one ftw keeps in memory, and several chunks),
/// one line on stderr, and a file.
const REPORT_SH: &str = r#"#!/bin/sh
i=0
while [ "$i" -lt 8000 ]; do echo "line $i of the report"; i=$((i+1)); done
echo "to stderr" >&2
printf 'a,b\n1,2\n' > "$FTW_OUTPUT_DIR/report.csv"
"#;

/// Leaves a child behind in its process group, says where, and waits.
const HANG_SH: &str = r#"#!/bin/sh
sleep 300 &
echo $! > "$1"
echo started
wait
"#;

struct Cluster {
    pg: Postgres,
    token: String,
    manifest: String,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let pg = Postgres::start()?;
        let (token, hash) = ftw::auth::tokens::generate();
        let manifest = format!(
            r#"
[server]
trusted_proxies = ["127.0.0.1"]
max_runs_per_user = 3

[auth]
admins = ["alice"]
passkey_sign_in = true

[auth.users]
alice = "{HASH_A}"
bob = "{HASH_B}"
carol = {{ password = "{HASH_A}", totp = "{TOTP_SECRET}" }}

[auth.tokens.ci]
hash = "{}"
user = "alice"

[tools.echo]
command = ["echo", "{{word}}"]

[tools.echo.args.word]
type = "text"

[tools.hang]
command = ["./hang.sh", "{{pid_file}}"]

[tools.ticker]
command = ["./ticker.sh", "{{pid_file}}"]

[tools.ticker.args.pid_file]
type = "text"

[tools.report]
command = ["./report.sh"]

[tools.hang.args.pid_file]
type = "text"
"#,
            ftw::auth::tokens::manifest_form(&hash)
        );
        Some(Cluster {
            pg,
            token,
            manifest,
        })
    }

    /// A new replica: its own folder (state, audit log), the same manifest and key.
    fn replica(&self) -> Server {
        let test = Test::new()
            .manifest(&self.manifest)
            .exec("hang.sh", HANG_SH)
            .exec("ticker.sh", TICKER_SH)
            .exec("report.sh", REPORT_SH)
            .file("ftw.secret", KEY);
        Server::start(
            test,
            &[
                "--secret-key-file",
                "ftw.secret",
                "--audit-log",
                "audit.log",
                "--database",
                &self.pg.url,
            ],
        )
    }

    fn api(&self, server: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = server.request(method, path, &headers, body);
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    fn start_run(&self, server: &Server, tool: &str, args: &str, wait: bool) -> String {
        let path = format!(
            "/api/tools/{tool}/runs{}",
            if wait { "?wait=true" } else { "" }
        );
        let (status, json) = self.api(server, "POST", &path, &format!("{{\"args\": {args}}}"));
        assert_eq!(status, 201, "{json}");
        json["id"].as_str().unwrap().to_string()
    }
}

fn get(server: &Server, path: &str, cookie: &str) -> Wire {
    server.request("GET", path, &[("Cookie", cookie)], "")
}

#[test]
fn a_throwaway_postgresql_cluster_starts_answers_and_stops() {
    let Some(pg) = Postgres::start() else { return };
    assert_eq!(pg.psql("SELECT 1 + 1"), "2");
    assert_eq!(pg.psql("SELECT current_user"), "ftw");
    let port = pg.port;
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server outlived the test"
    );
}

#[test]
fn replicas_share_the_history_and_a_restart_loses_nothing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let a = cluster.replica();
    let b = cluster.replica();
    assert_eq!(b.request("GET", "/readyz", &[], "").status, 200);
    let id = cluster.start_run(&a, "echo", r#"{"word": "from-a"}"#, true);
    // B never ran it, and has it: record and output.
    let (status, run) = cluster.api(&b, "GET", &format!("/api/runs/{id}"), "");
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], "from-a\n");
    let (_, list) = cluster.api(&b, "GET", "/api/runs", "");
    assert!(list.to_string().contains(&id), "{list}");
    // A session made on A is good on B (same key), and B's pages show A's run.
    let cookie = a.sign_in("alice", ALICE_PW).expect("alice signs in on A");
    let page = get(&b, &format!("/runs/{id}"), &cookie);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("from-a"));
    // Both replicas stop and start again: the database kept everything.
    let (_, a_folder) = a.stop(libc::SIGTERM);
    let (_, b_folder) = b.stop(libc::SIGTERM);
    drop((a_folder, b_folder));
    let c = cluster.replica();
    let (_, run) = cluster.api(&c, "GET", &format!("/api/runs/{id}"), "");
    assert_eq!(run["output"], "from-a\n", "{run}");
    assert_eq!(
        cluster.pg.psql("SELECT count(*) FROM replicas"),
        "1",
        "replicas that stopped cleanly left the table"
    );
}

#[test]
fn a_schedule_on_several_replicas_runs_once_per_tick() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    cluster.manifest.push_str(
        "\n[tools.echo.schedule.every_second]\ncron = \"* * * * * *\"\nuser = \"bob\"\nargs = { word = \"tick\" }\n",
    );
    let replicas = [cluster.replica(), cluster.replica(), cluster.replica()];
    std::thread::sleep(Duration::from_secs(5));
    let (_, list) = cluster.api(&replicas[0], "GET", "/api/runs?limit=200", "");
    let runs = list["runs"].as_array().unwrap();
    let mut seconds: Vec<&str> = runs
        .iter()
        .filter(|r| r["via"] == "schedule")
        .map(|r| &r["started"].as_str().unwrap()[..19])
        .collect();
    assert!(seconds.len() >= 3, "{list}");
    let all = seconds.len();
    seconds.dedup();
    assert_eq!(seconds.len(), all, "a tick ran on two replicas: {list}");
    // Each tick's run was started by whichever replica claimed it.
    let claimed = cluster.pg.psql("SELECT last_tick_ms > 0 FROM schedules");
    assert_eq!(claimed, "t");
}

#[test]
fn a_killed_replicas_runs_are_closed_by_a_survivor() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let a = cluster.replica();
    let b = cluster.replica();
    let pid_file = a.test.path().join("hang.pid");
    let args = format!(r#"{{"pid_file": "{}"}}"#, pid_file.display());
    let id = cluster.start_run(&a, "hang", &args, false);
    eventually("the tool started its child", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("B sees the run running, with its output so far", || {
        let run = cluster.api(&b, "GET", &format!("/api/runs/{id}"), "").1;
        run["status"] == "running" && run["output"] == "started\n"
    });
    let (_, _a_folder) = a.stop(libc::SIGKILL);
    assert!(!gone(pid), "the tool's child outlives a killed replica");
    // B closes it once A's lease has run out (15 s), and kills what A left behind (one
    // machine, one boot: the process is provably the run's).
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let run = loop {
        let (_, run) = cluster.api(&b, "GET", &format!("/api/runs/{id}"), "");
        if run["status"] != "running" {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run still says running 45 s after its replica died"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["output"], "started\n", "its output so far is kept");
    eventually("the run's leftover process is killed", || gone(pid));
    let ends: Vec<Value> = b
        .audit("audit.log")
        .into_iter()
        .filter(|r| r["event"] == "run-end" && r["run"] == id.as_str())
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["reason"], "crash");
}

#[test]
fn a_sign_out_on_one_replica_is_refused_by_the_others_at_once() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let replicas = [cluster.replica(), cluster.replica(), cluster.replica()];
    let [a, b, c] = &replicas;
    let cookie = a.sign_in("alice", ALICE_PW).expect("alice signs in on A");
    let other = b.sign_in("alice", ALICE_PW).expect("and again on B");
    for server in &replicas {
        assert_eq!(get(server, "/", &cookie).status, 200);
    }
    let page = get(b, "/", &cookie);
    let out = a.request(
        "POST",
        "/logout",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://localhost"),
        ],
        &format!("_csrf={}", csrf(&page.body)),
    );
    assert_eq!(out.status, 303);
    // The very next request, on any replica: no waiting for anything to spread.
    for server in &replicas {
        let r = get(server, "/", &cookie);
        assert_eq!(
            r.status, 303,
            "a signed-out cookie still works on a replica"
        );
        assert!(r.header("location").unwrap().contains("/login"));
    }
    // Only that session ended.
    assert_eq!(get(c, "/", &other).status, 200);
}

#[test]
fn failures_spread_over_replicas_still_block() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let replicas = [cluster.replica(), cluster.replica(), cluster.replica()];
    let sign_in_from = |server: &Server, user: &str, pw: &str, ip: &str| {
        server.sign_in_with(user, pw, &[("X-Forwarded-For", ip)])
    };
    // Five wrong passwords for bob, from five addresses, round-robin over the replicas;
    // and five names guessed from one address, the same way.
    for i in 0..5 {
        let server = &replicas[i % 3];
        assert!(sign_in_from(server, "bob", "wrong", &format!("10.0.0.{i}")).is_none());
        assert!(sign_in_from(server, &format!("nobody{i}"), "x", "10.9.9.9").is_none());
    }
    for server in &replicas {
        assert!(
            sign_in_from(server, "bob", BOB_PW, "10.0.1.1").is_none(),
            "bob's name is blocked on every replica"
        );
        assert!(
            sign_in_from(server, "alice", ALICE_PW, "10.9.9.9").is_none(),
            "the guessing address is blocked on every replica"
        );
    }
    assert!(
        sign_in_from(&replicas[0], "alice", ALICE_PW, "10.0.1.2").is_some(),
        "others sign in"
    );
    let row = cluster
        .pg
        .psql("SELECT blocked_until_ms > 0 FROM throttle WHERE tbl = 'users' AND key = 'bob'");
    assert_eq!(row, "t", "the block is in the database");
    // The login page says how long, whichever replica is asked.
    let form = replicas[2].request("GET", "/login", &[], "");
    let cookie = crate::support::server::cookie_pair(form.header("set-cookie").unwrap());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("_csrf", &csrf(&form.body))
        .append_pair("username", "bob")
        .append_pair("password", BOB_PW)
        .finish();
    let r = replicas[2].request(
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookie),
            ("Origin", "http://localhost"),
        ],
        &body,
    );
    assert_eq!(r.status, 429, "{}", r.body);
}

#[test]
fn busy_colleagues_behind_one_address_are_not_throttled() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.replica(), cluster.replica());
    let (pair, cluster) = ([&a, &b], &cluster);
    std::thread::scope(|s| {
        // A CI job's parallel API calls with a right token: a hash compare each, not
        // sign-in attempts that could fill the address's count.
        let calls: Vec<_> = (0..16)
            .map(|i| {
                let server = pair[i % 2];
                s.spawn(move || cluster.api(server, "GET", "/api/runs", "").0)
            })
            .collect();
        // Sign-ins of one user on both replicas at once: each success clears the name's
        // failures while the others are being checked.
        let sign_ins: Vec<_> = (0..4)
            .map(|i| s.spawn(move || pair[i % 2].sign_in("alice", ALICE_PW).is_some()))
            .collect();
        for call in calls {
            assert_eq!(call.join().unwrap(), 200);
        }
        for sign_in in sign_ins {
            assert!(sign_in.join().unwrap(), "a right password was refused");
        }
    });
    // And a bad token still counts against the address, on every replica.
    let bad = "Bearer ftw_not-a-token";
    for i in 0..5 {
        let r = pair[i % 2].request("GET", "/api/runs", &[("Authorization", bad)], "");
        assert_eq!(r.status, 401);
    }
    for server in pair {
        let (status, _) = cluster.api(server, "GET", "/api/runs", "");
        assert_eq!(
            status, 429,
            "the address is blocked, even with a good token"
        );
    }
}

/// Carol's password step on `server`: the cookies it set and the code form's token.
fn password_step(server: &Server) -> (String, String) {
    use crate::support::server::cookie_pair;
    let form = server.request("GET", "/login", &[], "");
    let login = cookie_pair(form.header("set-cookie").unwrap()).to_string();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("_csrf", &csrf(&form.body))
        .append_pair("username", "carol")
        .append_pair("password", ALICE_PW)
        .append_pair("next", "/")
        .finish();
    let r = server.request(
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &login),
            ("Origin", "http://localhost"),
        ],
        &body,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let mut cookies = vec![login];
    cookies.extend(
        r.all("set-cookie")
            .into_iter()
            .map(|c| cookie_pair(c).to_string()),
    );
    let cookies = cookies.join("; ");
    let page = server.request(
        "GET",
        r.header("location").unwrap(),
        &[("Cookie", &cookies)],
        "",
    );
    (cookies, csrf(&page.body))
}

fn send_code(server: &Server, cookies: &str, token: &str, code: &str) -> Wire {
    server.request(
        "POST",
        "/login/2fa",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookies),
            ("Origin", "http://localhost"),
        ],
        &format!("_csrf={token}&code={code}&next=/"),
    )
}

#[test]
fn a_totp_code_used_on_one_replica_is_refused_on_another() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.replica(), cluster.replica());
    let code = ftw::auth::totp::code_at(b"12345678901234567890", ftw::auth::now());
    let (cookies, token) = password_step(&a);
    let r = send_code(&a, &cookies, &token, &code);
    assert_eq!(r.status, 303, "{}", r.body);
    // Seen over a shoulder, the same code is tried on the other replica at once.
    let (cookies, token) = password_step(&b);
    let r = send_code(&b, &cookies, &token, &code);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("That code was already used"), "{}", r.body);
}

#[test]
fn a_run_on_one_replica_is_streamed_read_and_cancelled_through_another() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.replica(), cluster.replica());
    let pid_file = a.test.path().join("ticker.pid");
    let args = format!(r#"{{"pid_file": "{}"}}"#, pid_file.display());
    let id = cluster.start_run(&a, "ticker", &args, false);
    // B follows the live stream of a run it does not run.
    let events = {
        let (port, token, path) = (
            b.port,
            cluster.token.clone(),
            format!("/api/runs/{id}/events"),
        );
        std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let auth = format!("Bearer {token}");
            crate::support::server::http_to(
                "localhost",
                &mut stream,
                "GET",
                &path,
                &[("Authorization", &auth)],
                "",
            )
        })
    };
    eventually("B sees the ticks", || {
        let run = cluster.api(&b, "GET", &format!("/api/runs/{id}"), "").1;
        run["status"] == "running" && run["output"].as_str().unwrap_or("").contains("tick 3\n")
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let started = std::time::Instant::now();
    let (status, body) = cluster.api(&b, "POST", &format!("/api/runs/{id}/cancel"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["status"], "cancelled",
        "B waited for A to stop it: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(gone(pid), "the cancel from B reached the process on A");
    // The stream B served ended with the run, output and all.
    let wire = events.join().unwrap();
    let events = crate::support::sse::parse(&wire.body);
    let output: String = events
        .iter()
        .filter(|e| e.event == "snapshot" || e.event == "output")
        .map(|e| e.data.clone())
        .collect();
    assert!(output.contains("tick 0\ntick 1\ntick 2\n"), "{output}");
    let end = events.last().expect("events");
    assert_eq!(end.event, "end", "{events:?}");
    assert!(end.data.contains("cancelled"), "{}", end.data);
    // What A kept is what B shows.
    let (_, on_a) = cluster.api(&a, "GET", &format!("/api/runs/{id}"), "");
    let (_, on_b) = cluster.api(&b, "GET", &format!("/api/runs/{id}"), "");
    assert_eq!(on_a["output"], on_b["output"]);
    assert_eq!(on_b["status"], "cancelled");
}

#[test]
fn long_output_and_files_of_a_run_are_read_through_another_replica() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.replica(), cluster.replica());
    let id = cluster.start_run(&a, "report", "{}", true);
    let auth = format!("Bearer {}", cluster.token);
    let whole = |server: &Server| {
        server
            .request(
                "GET",
                &format!("/api/runs/{id}/output"),
                &[("Authorization", &auth)],
                "",
            )
            .body
    };
    let on_a = whole(&a);
    assert!(on_a.len() > 150_000, "{}", on_a.len());
    assert_eq!(whole(&b), on_a, "B serves the whole output, past 64 KiB");
    assert!(on_a.ends_with("to stderr\n"));
    let cookie = b.sign_in("alice", ALICE_PW).expect("alice signs in on B");
    let file = get(&b, &format!("/runs/{id}/files/report.csv"), &cookie);
    assert_eq!((file.status, file.body.as_str()), (200, "a,b\n1,2\n"));
}

#[test]
fn a_users_cap_on_runs_counts_every_replica() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.replica(), cluster.replica());
    let start = |server: &Server, n: usize| {
        let pid_file = server.test.path().join(format!("ticker{n}.pid"));
        let args = format!(r#"{{"args": {{"pid_file": "{}"}}}}"#, pid_file.display());
        cluster.api(server, "POST", "/api/tools/ticker/runs", &args)
    };
    let mut ids = Vec::new();
    for (n, server) in [&a, &b, &a].into_iter().enumerate() {
        let (status, run) = start(server, n);
        assert_eq!(status, 201, "{run}");
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    // Three running (two on A, one on B): a fourth is refused on either replica.
    for server in [&a, &b] {
        let (status, body) = start(server, 9);
        assert_eq!(status, 429, "{body}");
    }
    // One ends (cancelled through B, though A runs it): there is room again.
    let (status, _) = cluster.api(&b, "POST", &format!("/api/runs/{}/cancel", ids[0]), "");
    assert_eq!(status, 200);
    let (status, run) = start(&b, 10);
    assert_eq!(status, 201, "{run}");
    ids.push(run["id"].as_str().unwrap().to_string());
    for id in &ids[1..] {
        let (status, _) = cluster.api(&a, "POST", &format!("/api/runs/{id}/cancel"), "");
        assert_eq!(status, 200);
    }
}

#[test]
fn a_passkey_ceremony_started_on_one_replica_is_answered_on_another_once() {
    use crate::support::server::cookie_pair;
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (a, b) = (cluster.replica(), cluster.replica());
    let form = a.request("GET", "/login", &[], "");
    let cookie = cookie_pair(form.header("set-cookie").unwrap()).to_string();
    let token = csrf(&form.body);
    let post = |server: &Server, path: &str, body: &str| {
        let r = server.request(
            "POST",
            path,
            &[
                ("Cookie", &cookie),
                ("Origin", "http://localhost"),
                ("Content-Type", "application/json"),
                ("X-CSRF-Token", &token),
            ],
            body,
        );
        (
            r.status,
            serde_json::from_str::<Value>(&r.body).unwrap_or(Value::Null),
        )
    };
    let (status, started) = post(&a, "/login/passkey/options", r#"{"mode": "passwordless"}"#);
    assert_eq!(status, 200, "{started}");
    let answer = serde_json::json!({
        "ceremony": started["ceremony"],
        "credential": {"not": "a passkey"},
        "next": "/",
    })
    .to_string();
    // B finds the ceremony A started (and then finds the answer is no passkey).
    let (status, reply) = post(&b, "/login/passkey", &answer);
    assert_eq!(status, 400);
    assert_eq!(
        reply["error"], "The browser's answer is not a passkey.",
        "{reply}"
    );
    // It was taken: neither replica has it any more.
    for server in [&a, &b] {
        let (_, reply) = post(server, "/login/passkey", &answer);
        assert_eq!(
            reply["error"], "This passkey request expired. Try again.",
            "{reply}"
        );
    }
}

#[test]
fn without_its_database_a_replica_is_not_ready_and_lets_no_session_through() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let a = cluster.replica();
    let cookie = a.sign_in("alice", ALICE_PW).expect("alice signs in");
    assert_eq!(get(&a, "/", &cookie).status, 200);
    assert_eq!(a.request("GET", "/readyz", &[], "").status, 200);
    let Cluster { pg, .. } = cluster;
    drop(pg);
    // Live, not ready: a load balancer sends its users elsewhere.
    eventually("/readyz fails", || {
        a.request("GET", "/readyz", &[], "").status == 503
    });
    assert_eq!(a.request("GET", "/healthz", &[], "").status, 200);
    // A sign-out elsewhere cannot be ruled out: the session is refused, not trusted.
    let r = get(&a, "/", &cookie);
    assert_eq!(
        r.status, 303,
        "a session passed without its revocation check"
    );
    assert!(r.header("location").unwrap().contains("/login"));
    // (Read as the pipe delivers it.)
    eventually("the log says why", || a.stderr().contains("refusing it"));
}
