//! Hardening of the real server over real sockets: HTTP/2 sign-in over TLS, slow
//! clients, what a tool can read of ftw, the audit log file, and hot reload while a
//! tool runs.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls;

use crate::support::server::{Server, http};
use crate::support::{HASH_A, Test};

const ALICE_PW: &str = "hunter2-but-longer";

fn manifest(tools: &str) -> String {
    format!("[auth.users]\nalice = \"{HASH_A}\"\n\n{tools}")
}

fn csrf(body: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_string()
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Signs in over HTTP/1.1; returns the session cookie pair.
fn sign_in(server: &Server) -> String {
    let form = http(&mut server.connect(), "GET", "/login", &[], "");
    let login = pair(form.header("set-cookie").unwrap());
    let body = format!(
        "_csrf={}&username=alice&password={ALICE_PW}&next=%2F",
        csrf(&form.body)
    );
    let r = http(
        &mut server.connect(),
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &login),
        ],
        &body,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    pair(
        r.all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("ftw_session"))
            .unwrap(),
    )
}

/// Starts a tool over HTTP/1.1; returns the run's path.
fn start_tool(server: &Server, cookie: &str, tool: &str) -> String {
    let page = http(
        &mut server.connect(),
        "GET",
        &format!("/tools/{tool}"),
        &[("Cookie", cookie)],
        "",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let r = http(
        &mut server.connect(),
        "POST",
        &format!("/tools/{tool}"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookie),
        ],
        &format!("_csrf={}", csrf(&page.body)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    r.header("location").unwrap().to_string()
}

/// Reads a run's event stream to its end (the `end` event).
fn wait_for_end(server: &Server, cookie: &str, run: &str) -> String {
    http(
        &mut server.connect(),
        "GET",
        &format!("{run}/events"),
        &[("Cookie", cookie)],
        "",
    )
    .body
}

// ---- HTTP/2 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_posting_forms_works_over_http2() {
    let made = Test::new().args(&["cert", "--self-signed"]).run();
    let cert = std::fs::read_to_string(made.path("cert.pem")).unwrap();
    let key = std::fs::read_to_string(made.path("key.pem")).unwrap();
    let test = Test::new()
        .manifest(&manifest(
            "[tools.hello]\ncommand = [\"/bin/echo\", \"hi\"]\n",
        ))
        .file("cert.pem", &cert)
        .file("key.pem", &key);
    let server = Server::start(test, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let port = server.port;

    let config = crate::support::server::tls_client(&cert, &[&rustls::version::TLS13], &[b"h2"]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);

    use http_body_util::Full;
    let origin = format!("https://localhost:{port}");
    let uri = |path: &str| format!("https://localhost:{port}{path}");
    let (parts, body) = h2_send(
        &mut sender,
        http::Request::get(uri("/login"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(parts.version, http::Version::HTTP_2);
    let login_cookie = pair(parts.headers["set-cookie"].to_str().unwrap());
    let form = format!(
        "_csrf={}&username=alice&password={ALICE_PW}&next=%2F",
        csrf(&body)
    );
    let (parts, body) = h2_send(
        &mut sender,
        http::Request::post(uri("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &login_cookie)
            .header("origin", &origin)
            .body(Full::new(bytes::Bytes::from(form)))
            .unwrap(),
    )
    .await;
    assert_eq!(
        parts.status, 303,
        "a browser's sign-in over h2 (no Host header): {body}"
    );
    let session = parts
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("__Host-ftw_session="))
        .map(pair)
        .unwrap();
    let (parts, _) = h2_send(
        &mut sender,
        http::Request::get(uri("/"))
            .header("cookie", &session)
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 200);
    // A cross-site Origin is still refused over h2.
    let (parts, _) = h2_send(
        &mut sender,
        http::Request::post(uri("/logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &session)
            .header("origin", "https://evil.example")
            .body(Full::new(bytes::Bytes::from("_csrf=x")))
            .unwrap(),
    )
    .await;
    assert_eq!(parts.status, 403);
}

async fn h2_send(
    sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    req: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> (http::response::Parts, String) {
    use http_body_util::BodyExt;
    sender.ready().await.unwrap();
    let (parts, body) = sender.send_request(req).await.unwrap().into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts, String::from_utf8_lossy(&body).into_owned())
}

// ---- slow clients ----

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    let server = Server::start(
        Test::new().manifest(&manifest("[tools.t]\ncommand = [\"/bin/true\"]\n")),
        &["--client-timeout", "1s"],
    );
    let mut silent = server.connect();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the server kept a silent connection"
    );
}

#[test]
fn a_body_that_stops_arriving_is_dropped() {
    let server = Server::start(
        Test::new().manifest(&manifest("[tools.t]\ncommand = [\"/bin/true\"]\n")),
        &["--client-timeout", "1s"],
    );
    let mut slow = server.connect();
    slow.write_all(b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuser").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reply = Vec::new();
    let started = Instant::now();
    let _ = slow.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

// ---- what a tool can see of ftw ----

#[test]
fn a_tool_cannot_read_the_signing_key_from_proc() {
    let key = "c0ffee".repeat(11);
    let tools = "[tools.peek]\ncommand = [\"/bin/sh\", \"-c\", \"cat /proc/$PPID/environ; echo; cat /proc/$PPID/cmdline >/dev/null; echo done\"]\n";
    let server = Server::start(
        Test::new()
            .manifest(&manifest(tools))
            .env("FTW_SECRET_KEY", &key),
        &[],
    );
    let cookie = sign_in(&server);
    let run = start_tool(&server, &cookie, "peek");
    let events = wait_for_end(&server, &cookie, &run);
    assert!(events.contains("done"), "{events}");
    assert!(
        !events.contains(&key),
        "the key leaked through /proc: {events}"
    );
}

#[test]
fn a_low_soft_limit_on_open_files_is_raised_at_start() {
    let tools = "[tools.limit]\ncommand = [\"/bin/sh\", \"-c\", \"echo soft=$(ulimit -S -n) hard=$(ulimit -H -n)\"]\n";
    let server = Server::start(
        Test::new().manifest(&manifest(tools)).soft_fd_limit(256),
        &[],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_ne!(numbers[0], "256", "{line}");
    assert!(
        numbers[0] == numbers[1] || numbers[0] == "1048576",
        "soft limit raised to the hard one: {line}"
    );
    let cookie = sign_in(&server);
    let run = start_tool(&server, &cookie, "limit");
    let events = wait_for_end(&server, &cookie, &run);
    assert!(
        events.contains(&format!("soft={}", numbers[0])),
        "tools inherit it: {events}"
    );
}

// ---- the audit log file ----

#[test]
fn the_audit_log_flag_writes_json_lines() {
    let server = Server::start(
        Test::new().manifest(&manifest("[tools.t]\ncommand = [\"/bin/true\"]\n")),
        &["--audit-log", "audit.jsonl"],
    );
    let cookie = sign_in(&server);
    let run = start_tool(&server, &cookie, "t");
    wait_for_end(&server, &cookie, &run);
    let text = std::fs::read_to_string(server.test.path().join("audit.jsonl")).unwrap();
    let events: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(events, ["sign-in", "run-start", "run-end"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.test.path().join("audit.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

// ---- hot reload ----

use crate::support::eventually as wait_until;

#[test]
fn a_valid_manifest_is_reloaded_while_a_tool_runs_and_an_invalid_one_is_refused() {
    let slow = "[tools.slow]\ncommand = [\"/bin/sh\", \"-c\", \"sleep 3; echo finished\"]\n";
    let test = Test::new().manifest(&manifest(slow));
    let path = test.path().join("tools.toml");
    let server = Server::start(test, &[]);
    let cookie = sign_in(&server);
    let run = start_tool(&server, &cookie, "slow");

    // A new tool appears without a restart.
    std::fs::write(
        &path,
        manifest(&format!("{slow}[tools.added]\ncommand = [\"/bin/true\"]\n")),
    )
    .unwrap();
    wait_until("the new tool", || {
        http(
            &mut server.connect(),
            "GET",
            "/tools/added",
            &[("Cookie", &cookie)],
            "",
        )
        .status
            == 200
    });

    // A broken manifest is refused; the last good one keeps serving.
    std::fs::write(
        &path,
        manifest("[tools.added]\ncommand = [\"/bin/true\"]\ntiemout = \"1m\"\n"),
    )
    .unwrap();
    wait_until("the refusal in the log", || {
        server
            .stderr()
            .contains("is not valid; ftw keeps serving the previous version")
    });
    assert!(
        server
            .stderr()
            .contains("unknown key `tiemout` in [tools.added]; did you mean `timeout`?"),
        "{}",
        server.stderr()
    );
    assert_eq!(
        http(
            &mut server.connect(),
            "GET",
            "/tools/added",
            &[("Cookie", &cookie)],
            ""
        )
        .status,
        200
    );

    // The tool that was running when all this happened finishes normally.
    let events = wait_for_end(&server, &cookie, &run);
    assert!(
        events.contains("finished") && events.contains("\"exit_code\":0"),
        "{events}"
    );
}

#[test]
fn sighup_reloads_and_removed_users_lose_their_sessions() {
    let tools = "[tools.t]\ncommand = [\"/bin/true\"]\n";
    let test = Test::new().manifest(&manifest(tools));
    let path = test.path().join("tools.toml");
    let mut server = Server::start(test, &[]);
    let cookie = sign_in(&server);
    assert_eq!(
        http(
            &mut server.connect(),
            "GET",
            "/",
            &[("Cookie", &cookie)],
            ""
        )
        .status,
        200
    );
    let bob = crate::support::HASH_B;
    std::fs::write(&path, format!("[auth.users]\nbob = \"{bob}\"\n\n{tools}")).unwrap();
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGHUP);
    }
    wait_until("alice signed out", || {
        http(
            &mut server.connect(),
            "GET",
            "/",
            &[("Cookie", &cookie)],
            "",
        )
        .status
            == 303
    });
    assert_eq!(
        server.signal(libc::SIGTERM),
        0,
        "SIGHUP did not stop the server"
    );
}
