//! The real `ftw serve` over real sockets: the `listening on` line, the one-time
//! password, TLS (with a rustls client), signing keys, and graceful shutdown.

use std::io::{Read, Write};

use tokio_rustls::rustls;

use crate::support::server::{Server, http, tls_client, tls_connect};
use crate::support::{HASH_A, Test};

const MANIFEST: &str = "[tools.hello]\ncommand = [\"/bin/echo\", \"hello\"]\n";

fn with_users() -> String {
    format!("[auth.users]\nalice = \"{HASH_A}\"\n\n{MANIFEST}")
}

/// Signs in over plain HTTP; returns the session cookie pair (`name=value`).
fn sign_in(server: &Server, user: &str, password: &str) -> Option<String> {
    server.sign_in(user, password)
}

#[test]
fn prints_the_listening_line_and_serves_plain_http() {
    let server = Server::start(Test::new().manifest(&with_users()), &[]);
    assert!(
        server.url.starts_with("http://127.0.0.1:") && server.url.ends_with('/'),
        "{}",
        server.url
    );
    let r = http(&mut server.connect(), "GET", "/healthz", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = http(&mut server.connect(), "GET", "/readyz", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    let r = http(&mut server.connect(), "GET", "/", &[], "");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/login?next=%2F"))
    );
    assert!(
        server.stderr().contains("no secret key is configured"),
        "{}",
        server.stderr()
    );
}

#[test]
fn zero_config_prints_a_one_time_password_that_works() {
    let server = Server::start(Test::new().manifest(MANIFEST), &[]);
    let all = server.stdout.join("\n");
    assert!(
        all.contains("sign in as \"admin\" with the one-time password"),
        "{all}"
    );
    let password = server.stdout[2].trim().to_string();
    assert!(password.len() >= 22, "{password:?}");
    assert!(sign_in(&server, "admin", &password).is_some());
    assert!(sign_in(&server, "admin", "admin").is_none());

    // A second start has another password.
    let again = Server::start(Test::new().manifest(MANIFEST), &[]);
    assert_ne!(again.stdout[2].trim(), password);
}

#[test]
fn zero_config_refuses_a_non_loopback_host() {
    let out = Test::new()
        .manifest(MANIFEST)
        .args(&["serve", "tools.toml", "--host", "0.0.0.0", "--port", "0"])
        .run();
    out.code(2)
        .stderr_has("refusing to listen on 0.0.0.0")
        .stderr_has("[auth.users]");
}

#[test]
fn sessions_survive_a_restart_when_the_key_is_configured() {
    let key = "ab".repeat(32);
    let test = Test::new().manifest(&with_users()).file("ftw.secret", &key);
    let first = Server::start(test, &["--secret-key-file", "ftw.secret"]);
    let cookie = sign_in(&first, "alice", "hunter2-but-longer").unwrap();
    let test = Test::new().manifest(&with_users());
    drop(first);
    let second = Server::start(test.env("FTW_SECRET_KEY", &key), &[]);
    let r = http(
        &mut second.connect(),
        "GET",
        "/",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(
        r.status, 200,
        "the same key, given another way, keeps the session"
    );
}

#[test]
fn a_short_secret_key_is_refused_with_a_pointer_to_gen_secret() {
    let out = Test::new()
        .manifest(&with_users())
        .file("short.secret", &"ab".repeat(16))
        .args(&[
            "serve",
            "tools.toml",
            "--port",
            "0",
            "--secret-key-file",
            "short.secret",
        ])
        .run();
    out.code(2)
        .stderr_has("is only 16 bytes long (written as 32 hex digits); ftw needs at least 32 bytes (64 hex digits)")
        .stderr_has("ftw gen-secret");
    Test::new()
        .manifest(&with_users())
        .env("FTW_SECRET_KEY", "too-short")
        .args(&["serve", "tools.toml", "--port", "0"])
        .run()
        .code(2)
        .stderr_has(
            "FTW_SECRET_KEY is only 9 bytes long (written as plain text, neither hex nor base64)",
        );
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start(
            Test::new().manifest(&with_users()),
            &["--shutdown-grace", "2s"],
        );
        // An idle keep-alive connection must not hold the shutdown up.
        let mut idle = server.connect();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = idle.read(&mut buf).unwrap();
        assert_eq!(server.signal(signal), 0, "{}", server.stderr());
        assert!(
            server.stderr().contains("shutting down"),
            "{}",
            server.stderr()
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(),
            "still accepting"
        );
    }
}

#[test]
fn a_slow_client_does_not_hold_shutdown_past_the_grace_period() {
    let mut server = Server::start(
        Test::new().manifest(&with_users()),
        &["--shutdown-grace", "1s"],
    );
    let mut slow = server.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap(); // never finishes
    assert_eq!(server.signal(libc::SIGTERM), 0);
}

// ---- TLS ----

fn tls_setup() -> (Test, String) {
    let test = Test::new().manifest(&with_users());
    let made = Test::new().args(&["cert", "--self-signed"]).run();
    made.success();
    let cert = std::fs::read_to_string(made.path("cert.pem")).unwrap();
    let key = std::fs::read_to_string(made.path("key.pem")).unwrap();
    (test.file("cert.pem", &cert).file("key.pem", &key), cert)
}

#[test]
fn tls_with_files_from_ftw_cert() {
    let (test, cert) = tls_setup();
    let server = Server::start(test, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut stream =
            tls_connect(&server, tls_client(&cert, &[version], &[b"http/1.1"])).unwrap();
        assert_eq!(stream.conn.protocol_version().unwrap(), version.version);
        let r = http(&mut stream, "GET", "/login", &[], "");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000")
        );
        let c = r.header("set-cookie").unwrap();
        assert!(
            c.starts_with("__Host-ftw_login=") && c.contains("; Secure") && c.contains("Path=/"),
            "{c}"
        );
    }
}

#[test]
fn tls_offers_http2_by_alpn() {
    let (test, cert) = tls_setup();
    let server = Server::start(test, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let stream = tls_connect(
        &server,
        tls_client(&cert, &[&rustls::version::TLS13], &[b"h2", b"http/1.1"]),
    )
    .unwrap();
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn tls_refuses_versions_before_1_2() {
    let (test, _) = tls_setup();
    let server = Server::start(test, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    // A minimal TLS 1.1 ClientHello: no supported_versions extension, so 1.1 is the most
    // this client can speak.
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[7u8; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two CBC suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);
    let mut stream = server.connect();
    stream.write_all(&record).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(!reply.is_empty(), "the server closed without an alert");
    assert_eq!(
        reply[0], 0x15,
        "expected a TLS alert record, got {reply:02x?}"
    );
    assert_eq!(reply[5], 0x02, "fatal");
    assert!(
        matches!(reply[6], 70 | 40),
        "protocol_version or handshake_failure, got {}",
        reply[6]
    );
}

#[test]
fn tls_keeps_the_client_address_for_handlers() {
    // Signing in over TLS goes through the same handlers as plain HTTP; the peer address
    // travels as a request extension, so nothing is lost behind the custom acceptor.
    // The audit log shows the address a handler saw: a refused API token is recorded
    // with the client's address (it would read 0.0.0.0 had the address been lost).
    let (test, cert) = tls_setup();
    let server = Server::start(
        test,
        &[
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
            "--audit-log",
            "audit.log",
        ],
    );
    let mut stream =
        tls_connect(&server, tls_client(&cert, &[&rustls::version::TLS13], &[])).unwrap();
    let r = http(
        &mut stream,
        "GET",
        "/api/tools",
        &[("Authorization", "Bearer ftw_not-a-token")],
        "",
    );
    assert_eq!(r.status, 401);
    let log = std::fs::read_to_string(server.test.path().join("audit.log")).unwrap();
    let record: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(record["event"], "token-failed");
    assert_eq!(record["client"], "127.0.0.1", "{log}");
}

#[test]
fn bad_tls_files_are_clear_start_up_errors() {
    let (test, _) = tls_setup();
    let out = test
        .args(&[
            "serve",
            "tools.toml",
            "--port",
            "0",
            "--tls-cert",
            "missing.pem",
            "--tls-key",
            "key.pem",
        ])
        .run();
    out.code(2)
        .stderr_has("cannot read the TLS certificate missing.pem: No such file or directory");

    // A key from another pair.
    let (test, _) = tls_setup();
    let other = Test::new().args(&["cert", "--self-signed"]).run();
    let other_key = std::fs::read_to_string(other.path("key.pem")).unwrap();
    let out = test
        .file("other-key.pem", &other_key)
        .args(&[
            "serve",
            "tools.toml",
            "--port",
            "0",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "other-key.pem",
        ])
        .run();
    out.code(2)
        .stderr_has(
            "the key other-key.pem does not fit the certificate cert.pem: they are not one pair",
        )
        .stderr_has("ftw cert --self-signed");

    let (test, _) = tls_setup();
    let out = test
        .file("empty.pem", "nothing here\n")
        .args(&[
            "serve",
            "tools.toml",
            "--port",
            "0",
            "--tls-cert",
            "empty.pem",
            "--tls-key",
            "key.pem",
        ])
        .run();
    out.code(2).stderr_has("empty.pem holds no certificate");
}

#[test]
fn tls_cert_without_key_is_a_usage_error() {
    Test::new()
        .manifest(&with_users())
        .args(&["serve", "tools.toml", "--tls-cert", "cert.pem"])
        .run()
        .code(2)
        .stderr_has("--tls-key");
}

#[test]
fn a_taken_port_is_a_runtime_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    Test::new()
        .manifest(&with_users())
        .args(&["serve", "tools.toml", "--port", &port])
        .run()
        .code(1)
        .stderr_has(&format!("cannot listen on 127.0.0.1:{port}"))
        .stderr_has(&format!(
            "another program (or another ftw) is using port {port}"
        ))
        .stderr_has("pick another port with --port");
}

#[test]
fn plain_http_to_the_tls_port_gets_a_hint() {
    let (test, _) = tls_setup();
    let server = Server::start(test, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let r = http(&mut server.connect(), "GET", "/runs", &[], "");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body, "This port speaks HTTPS, not plain HTTP: open https://localhost/\n",
        "the host the client asked for"
    );
}

#[test]
fn readyz_fails_when_the_database_is_gone_and_healthz_does_not() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    let server = Server::start(
        Test::new().manifest(&with_users()),
        &["--state-dir", dir.to_str().unwrap()],
    );
    let ready = || http(&mut server.connect(), "GET", "/readyz", &[], "").status;
    assert_eq!(ready(), 200);
    for name in ["ftw.db", "ftw.db-wal", "ftw.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    assert_eq!(ready(), 503, "the database file is gone");
    let r = http(&mut server.connect(), "GET", "/healthz", &[], "");
    assert_eq!(r.status, 200, "liveness is not readiness");
}
