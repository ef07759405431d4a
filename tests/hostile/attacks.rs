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

/// POSTs the session's CSRF token to `path` as a form; it must answer 303, and the
/// place it sends the browser is returned.
fn post_form(server: &Server, session: &super::Session, path: &str) -> String {
    let r = request(
        server,
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &session.cookie),
        ],
        format!("_csrf={}", session.csrf).as_bytes(),
    );
    assert_eq!(r.status, 303, "POST {path}: {}", r.body);
    r.header("location").unwrap().to_string()
}

/// The whole event stream of a run (it ends with the run).
fn events_of(server: &Server, session: &super::Session, run: &str) -> Wire {
    let path = format!("{run}/events");
    request(server, "GET", &path, &[("Cookie", &session.cookie)], b"")
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

/// A forward-auth server behind a proxy on this machine, whose /metrics answers the
/// proxy's own address.
fn behind_a_proxy() -> Server {
    let test = Test::new().manifest(
        r#"
[server]
trusted_proxies = ["127.0.0.1"]
metrics_allow = ["127.0.0.1"]

[auth]
trusted_header = "Remote-User"
trusted_groups_header = "Remote-Groups"
admins = ["admin"]

[tools.t]
command = ["/bin/echo", "hi"]
"#,
    );
    Server::start(test, &[])
}

/// GET `path` with the Host header given and these headers (any may repeat).
fn get_as(server: &Server, host: &str, path: &str, headers: &[(&str, &str)]) -> Wire {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    super::exchange(server, head, Vec::new())
}

#[test]
fn a_rebound_host_cannot_speak_for_the_proxy() {
    let server = behind_a_proxy();
    let admin = [("Remote-User", "admin")];
    // The proxy's own request works...
    let r = get_as(&server, "localhost:8080", "/", &admin);
    assert_eq!(r.status, 200, "{}", r.body);
    // ...a page on another site whose name now points here does not.
    let r = get_as(&server, "attacker.example", "/", &admin);
    assert_eq!(r.status, 421, "{}", r.body);
    assert!(r.body.contains("allowed_hosts"), "{}", r.body);
    let r = get_as(
        &server,
        "localhost",
        "/",
        &[
            ("Remote-User", "admin"),
            ("X-Forwarded-Host", "attacker.example"),
        ],
    );
    assert_eq!(r.status, 421, "a forwarded host is checked too: {}", r.body);
    // /healthz answers whatever the host (load balancers probe by address).
    assert_eq!(get_as(&server, "10.9.9.9", "/healthz", &[]).status, 200);
}

#[test]
fn a_repeated_identity_header_is_refused() {
    let server = behind_a_proxy();
    for (first, second) in [
        (("Remote-User", "bob"), ("Remote-User", "admin")),
        (("Remote-Groups", "dev"), ("Remote-Groups", "admins")),
        (("Authorization", "Bearer a"), ("Authorization", "Bearer b")),
        (("X-CSRF-Token", "a"), ("X-CSRF-Token", "b")),
    ] {
        let r = get_as(&server, "localhost", "/", &[first, second]);
        assert_eq!(r.status, 400, "{}: {}", first.0, r.body);
        assert!(r.body.contains("more than one"), "{}", r.body);
    }
}

#[test]
fn an_unparsable_forwarded_hop_never_makes_the_proxy_the_client() {
    let server = behind_a_proxy();
    assert_eq!(get_as(&server, "localhost", "/metrics", &[]).status, 200);
    for xff in [
        "garbage, 6.6.6.6",
        "6.6.6.6:1234",
        "[2001:db8::6]:443",
        "garbage",
    ] {
        let r = get_as(
            &server,
            "localhost",
            "/metrics",
            &[("X-Forwarded-For", xff)],
        );
        assert_eq!(r.status, 403, "X-Forwarded-For: {xff}: {}", r.body);
    }
}

/// The corpus manifest without alice.
fn without_alice() -> String {
    manifest()
        .replace(&format!("alice = \"{}\"\n", crate::support::HASH_A), "")
        .replace("allow = [\"alice\"]", "allow = [\"bob\"]")
}

/// Whether this session cookie still opens the start page.
fn signed_in(server: &Server, cookie: &str) -> bool {
    request(server, "GET", "/", &[("Cookie", cookie)], b"").status == 200
}

#[test]
fn a_removed_user_added_back_does_not_revive_old_sessions() {
    let key = "k".repeat(64);
    let flags = ["--secret-key-file", "ftw.secret"];
    let test = Test::new()
        .manifest(&manifest())
        .exec("record.sh", RECORD_SH)
        .exec("upload.sh", UPLOAD_SH)
        .file("ftw.secret", &key);
    let path = test.path().join("tools.toml");
    let mut server = Server::start(test, &flags);
    let old = super::sign_in(&server, "alice", ALICE_PW).cookie;
    assert!(signed_in(&server, &old));

    // Removed by a reload, then added back with the same hash.
    let reload = |server: &mut Server, manifest: String| {
        std::fs::write(&path, manifest).unwrap();
        // SAFETY: kill sends a signal to the child ftw.
        unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    };
    reload(&mut server, without_alice());
    crate::support::eventually("alice signed out", || !signed_in(&server, &old));
    reload(&mut server, manifest());
    crate::support::eventually("alice back", || {
        login(&server, &format!("username=alice&password={ALICE_PW}")).status == 303
    });
    assert!(!signed_in(&server, &old), "an old session came back");
    let (_, test) = server.stop(libc::SIGTERM);
    let server = Server::start(test, &flags);
    assert!(!signed_in(&server, &old), "it came back after a restart");

    // Removed while ftw was down, then added back: the next start notices. (Floors
    // are in whole seconds: a session begun in the second of a removal ends with it.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let newer = super::sign_in(&server, "alice", ALICE_PW).cookie;
    let (_, test) = server.stop(libc::SIGTERM);
    std::fs::write(test.path().join("tools.toml"), without_alice()).unwrap();
    let server = Server::start(test, &flags);
    let (_, test) = server.stop(libc::SIGTERM);
    std::fs::write(test.path().join("tools.toml"), manifest()).unwrap();
    let server = Server::start(test, &flags);
    assert!(!signed_in(&server, &newer), "removed while ftw was down");
    assert!(!signed_in(&server, &old));
}

#[test]
fn runs_of_a_removed_tool_stay_visible_and_cancellable_and_admins_see_every_run() {
    let manifest = |slow_for: Option<&str>| {
        let slow = slow_for.map_or(String::new(), |who| {
            format!("[tools.slow]\ncommand = [\"/bin/sleep\", \"60\"]\nallow = [\"{who}\"]\n")
        });
        format!(
            "[auth]\nadmins = [\"alice\"]\n\n[auth.users]\nalice = \"{}\"\nbob = \"{}\"\n\n[tools.t]\ncommand = [\"/bin/true\"]\n\n{slow}",
            crate::support::HASH_A,
            crate::support::HASH_B,
        )
    };
    let test = Test::new().manifest(&manifest(Some("bob")));
    let path = test.path().join("tools.toml");
    let server = Server::start(test, &[]);
    let alice = super::sign_in(&server, "alice", ALICE_PW);
    let bob = super::sign_in(&server, "bob", super::BOB_PW);
    let run = post_form(&server, &bob, "/tools/slow");
    let page =
        |who: &super::Session| request(&server, "GET", &run, &[("Cookie", &who.cookie)], b"");
    // alice is an admin who may not run `slow`: she still sees bob's run of it.
    assert_eq!(page(&alice).status, 200, "admins see every run");
    assert!(!page(&alice).body.contains("Run again"));
    assert!(page(&bob).body.contains("Run again"));

    // SAFETY: kill sends a signal to the child ftw.
    let hangup = || unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    // bob may no longer run the tool: its runs are gone for him, not for admins.
    std::fs::write(&path, manifest(Some("alice"))).unwrap();
    hangup();
    crate::support::eventually("bob's access narrowed", || page(&bob).status == 404);
    assert_eq!(page(&alice).status, 200);

    // The tool goes: nobody could reach its run but its owner and admins, so bob sees
    // it again.
    std::fs::write(&path, manifest(None)).unwrap();
    hangup();
    crate::support::eventually("the tool removed", || {
        request(
            &server,
            "GET",
            "/tools/slow",
            &[("Cookie", &bob.cookie)],
            b"",
        )
        .status
            == 404
    });
    assert_eq!(page(&bob).status, 200);
    assert!(!page(&bob).body.contains("Run again"));
    post_form(&server, &bob, &format!("{run}/cancel"));
    super::wait_for_end(&server, &alice, &run);
    assert!(
        page(&alice).body.contains("ancelled"),
        "{}",
        page(&alice).body
    );
}

#[test]
fn descriptors_ftw_inherited_do_not_reach_tools() {
    let manifest = format!(
        "[auth.users]\nalice = \"{}\"\n\n[tools.t]\ncommand = [\"/bin/sh\", \"-c\", \"if [ -e /proc/self/fd/9 ]; then echo leaked; else echo clean; fi\"]\n",
        crate::support::HASH_A
    );
    // Whatever starts ftw leaves descriptor 9 open (not close-on-exec).
    let test = Test::new().manifest(&manifest).wrapped_in(&[
        "/bin/sh",
        "-c",
        "exec 9<tools.toml; exec \"$0\" \"$@\"",
    ]);
    let server = Server::start(test, &[]);
    let pid = server.child.id();
    assert!(
        std::fs::read_link(format!("/proc/{pid}/fd/9")).is_ok(),
        "the test's descriptor did not reach ftw"
    );
    let alice = super::sign_in(&server, "alice", ALICE_PW);
    let run = post_form(&server, &alice, "/tools/t");
    let events = events_of(&server, &alice, &run);
    assert!(events.body.contains("clean"), "{}", events.body);
    assert!(!events.body.contains("leaked"), "{}", events.body);
}

#[test]
fn hard_links_and_names_that_reorder_text_are_not_served() {
    let test = Test::new().file("secret.txt", "not for the viewer\n");
    let secret = test.path().join("secret.txt");
    let script = format!(
        "ln '{}' \"$FTW_OUTPUT_DIR/leak.txt\" && echo linked; printf ok > \"$FTW_OUTPUT_DIR/ok.txt\"; printf x > \"$FTW_OUTPUT_DIR/$(printf 'inv\\342\\200\\256txt.exe')\"",
        secret.display()
    );
    let manifest = format!(
        "[auth.users]\nalice = \"{}\"\n\n[tools.t]\ncommand = [\"/bin/sh\", \"-c\", {}]\n",
        crate::support::HASH_A,
        serde_json::to_string(&script).unwrap()
    );
    let server = Server::start(test.manifest(&manifest), &[]);
    let alice = super::sign_in(&server, "alice", ALICE_PW);
    let run = post_form(&server, &alice, "/tools/t");
    let events = events_of(&server, &alice, &run);
    assert!(
        events.body.contains("linked"),
        "the hard link was not made: {}",
        events.body
    );
    let file = |name: &str| {
        request(
            &server,
            "GET",
            &format!("{run}/files/{name}"),
            &[("Cookie", &alice.cookie)],
            b"",
        )
    };
    assert_eq!(file("ok.txt").status, 200);
    assert_eq!(file("leak.txt").status, 404, "a hard link is served");
    assert_eq!(file("inv%E2%80%AEtxt.exe").status, 404);
    let page = request(&server, "GET", &run, &[("Cookie", &alice.cookie)], b"").body;
    assert!(page.contains("ok.txt"), "{page}");
    assert!(
        !page.contains("leak.txt") && !page.contains('\u{202E}'),
        "{page}"
    );
}

#[test]
fn a_changed_signing_key_file_is_not_ignored_silently() {
    let test = Test::new()
        .manifest(&manifest())
        .exec("record.sh", RECORD_SH)
        .exec("upload.sh", UPLOAD_SH)
        .file("ftw.secret", &"a".repeat(64));
    let server = Server::start(test, &["--secret-key-file", "ftw.secret"]);
    let session = super::sign_in(&server, "alice", ALICE_PW);
    std::fs::write(server.test.path().join("ftw.secret"), "b".repeat(64)).unwrap();
    crate::support::eventually("the warning", || {
        server
            .stderr()
            .contains("ftw.secret changed; ftw keeps signing with the key it started with")
    });
    // Sessions signed with the key in force keep working.
    let page = request(&server, "GET", "/", &[("Cookie", &session.cookie)], b"");
    assert_eq!(page.status, 200);
}

/// A connection to the server from `source` (any 127.x.y.z address is this machine).
async fn connect_from(server: &Server, source: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket
        .connect(format!("127.0.0.1:{}", server.port).parse().unwrap())
        .await
        .unwrap()
}

/// A request sent whole from `source`, and the status line of the answer (within 10 s).
async fn status_from(server: &Server, source: &str, path: &str) -> String {
    try_status_from(server, source, path)
        .await
        .expect("no answer within 10 s: the server is starved")
}

/// Like `status_from`, `None` when the connection is refused or nothing comes back.
async fn try_status_from(server: &Server, source: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = connect_from(server, source).await;
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut answer),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&answer);
    Some(text.lines().next().unwrap_or("").to_string())
}

#[tokio::test]
async fn slow_bodies_from_one_client_cannot_hold_every_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = server(&["--max-connections", "16", "--client-timeout", "2s"]);
    // One client opens 16 sign-ins that promise a megabyte and send a byte a second.
    let mut slow = Vec::new();
    for _ in 0..16 {
        let mut conn = connect_from(&server, "127.0.0.2").await;
        slow.push(tokio::spawn(async move {
            let head = "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n";
            if conn.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let (mut reader, mut writer) = conn.into_split();
            let trickle = async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    if writer.write_all(b"a").await.is_err() {
                        break;
                    }
                }
            };
            let mut answer = Vec::new();
            tokio::select! {
                () = trickle => {}
                _ = reader.read_to_end(&mut answer) => {}
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Everyone else still gets in, and health checks answer.
    assert!(
        status_from(&server, "127.0.0.3", "/login")
            .await
            .contains(" 200 ")
    );
    assert!(
        status_from(&server, "127.0.0.4", "/healthz")
            .await
            .contains(" 200 ")
    );
    // The slow ones end: refused at once beyond the client's share, cut off by the
    // minimum rate otherwise.
    for task in slow {
        tokio::time::timeout(std::time::Duration::from_secs(30), task)
            .await
            .expect("a slow body still holds its connection after 30 s")
            .unwrap();
    }
}

#[test]
fn live_streams_are_capped_per_user() {
    use std::io::{Read, Write};
    let manifest = format!(
        "[auth.users]\nalice = \"{}\"\n\n[tools.t]\ncommand = [\"/bin/sleep\", \"30\"]\n",
        crate::support::HASH_A
    );
    let server = Server::start(
        Test::new().manifest(&manifest),
        &["--max-streams-per-user", "2"],
    );
    let alice = super::sign_in(&server, "alice", ALICE_PW);
    let run = post_form(&server, &alice, "/tools/t");
    let head = format!(
        "GET {run}/events HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\n\r\n",
        alice.cookie
    );
    // Two live pages open (each has its first event before the next one starts)...
    let open: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = server.connect();
            conn.write_all(head.as_bytes()).unwrap();
            let mut first = [0u8; 12];
            conn.read_exact(&mut first).unwrap();
            assert_eq!(&first, b"HTTP/1.1 200");
            conn
        })
        .collect();
    // ...and a third is refused.
    let third = request(
        &server,
        "GET",
        &format!("{run}/events"),
        &[("Cookie", &alice.cookie)],
        b"",
    );
    assert_eq!(third.status, 429, "{}", third.body);
    assert!(
        third.body.contains("max-streams-per-user"),
        "{}",
        third.body
    );
    drop(open);
}

/// A TLS server on the corpus manifest, and an HTTP/2 client connection to it that
/// pings every 200 ms (as a browser may) with this stream window (0: no response
/// body can come through).
async fn h2_client(
    window: u32,
) -> (
    Server,
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let made = Test::new().args(&["cert", "--self-signed"]).run();
    let cert = std::fs::read_to_string(made.path("cert.pem")).unwrap();
    let key = std::fs::read_to_string(made.path("key.pem")).unwrap();
    let test = Test::new()
        .manifest(&manifest())
        .exec("record.sh", RECORD_SH)
        .exec("upload.sh", UPLOAD_SH)
        .file("cert.pem", &cert)
        .file("key.pem", &key);
    let server = Server::start(
        test,
        &[
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--client-timeout",
            "1s",
        ],
    );
    let config = crate::support::server::tls_client(
        &cert,
        &[&tokio_rustls::rustls::version::TLS13],
        &[b"h2"],
    );
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(std::time::Duration::from_millis(200))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(window)
            .handshake::<_, http_body_util::Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    (server, sender, tokio::spawn(conn))
}

/// The time ftw has to close `connection`: it must end within `limit`.
async fn closes_within(
    connection: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    limit: u64,
    what: &str,
) {
    tokio::time::timeout(std::time::Duration::from_secs(limit), connection)
        .await
        .unwrap_or_else(|_| panic!("{what} was still open after {limit} s"))
        .unwrap()
        .ok();
}

/// GET `path` on the HTTP/2 connection; the answer's head.
async fn h2_get(
    server: &Server,
    sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    path: &str,
) -> http::Response<hyper::body::Incoming> {
    let uri = format!("https://localhost:{}{path}", server.port);
    let request = http::Request::get(uri)
        .body(http_body_util::Empty::new())
        .unwrap();
    sender.send_request(request).await.unwrap()
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let (server, mut sender, connection) = h2_client(65_535).await;
    let r = h2_get(&server, &mut sender, "/healthz").await;
    assert_eq!(r.status(), 200);
    drop(r);
    // No stream open now, only pings: the server closes it after the client timeout.
    closes_within(connection, 20, "an idle HTTP/2 connection").await;
}

#[tokio::test]
async fn an_http2_client_that_shuts_its_window_loses_the_connection() {
    let (server, mut sender, connection) = h2_client(0).await;
    // The answer's head arrives; its body never can.
    let r = h2_get(&server, &mut sender, "/login").await;
    assert_eq!(r.status(), 200);
    closes_within(connection, 60, "a connection with a shut window").await;
    drop(r);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_loses_its_connection() {
    use tokio::io::AsyncWriteExt;
    let server = server(&[
        "--client-timeout",
        "1s",
        "--max-connections-per-client",
        "1",
    ]);
    // Thousands of pipelined requests, and never a byte read back: the server's writes
    // block once the socket buffers fill.
    let mut hog = connect_from(&server, "127.0.0.5").await;
    let one = "GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(3000);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        hog.write_all(one.as_bytes()),
    )
    .await;
    // The same address gets its one connection back once the stalled one is cut.
    let start = std::time::Instant::now();
    loop {
        let reply = try_status_from(&server, "127.0.0.5", "/healthz").await;
        if reply.is_some_and(|status| status.contains(" 200 ")) {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "the stalled connection still holds the client's only slot"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    drop(hog);
}

#[test]
fn an_http11_request_without_a_host_is_refused() {
    let server = server(&[]);
    let r = super::exchange(
        &server,
        "GET /login HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
        Vec::new(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Host header"), "{}", r.body);
}

#[test]
fn hosts_can_be_allowed_from_the_command_line() {
    let server = server(&["--allowed-hosts", "ftw.example.com,*.corp.example"]);
    assert_eq!(
        get_as(&server, "ftw.example.com:8000", "/login", &[]).status,
        200
    );
    assert_eq!(get_as(&server, "a.corp.example", "/login", &[]).status, 200);
    assert_eq!(
        get_as(&server, "attacker.example", "/login", &[]).status,
        421
    );
    let refused = Test::new()
        .manifest(&manifest())
        .args(&[
            "serve",
            "tools.toml",
            "--allowed-hosts",
            "https://ftw.example.com",
        ])
        .run();
    refused
        .code(2)
        .stderr_has("must be a host name or an address, without a scheme or a port");
}
