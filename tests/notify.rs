//! Notifications (issue 15) on the real `ftw serve`: a run's end is POSTed (signed) to
//! a real HTTP receiver in the test, which refuses the first try, so the retry is seen;
//! and mailed to a real SMTP server (Python's aiosmtpd, a Maildir sink); `notify_on`
//! decides which endings are told. Without aiosmtpd the mail test says so and passes,
//! unless `FTW_REQUIRE_ALL=1` (as in CI).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::server::Server;
use crate::support::{HASH_A, Test, eventually};

const ALICE_PW: &str = "hunter2-but-longer";
const SECRET: &str = "notify-secret-for-the-test";

/// A request as the receiver got it: headers (names lower-cased) and body.
type Request = (Vec<(String, String)>, String);

/// A receiver that answers 500 to the first request and 200 after, keeping what came.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Request>>> = Arc::default();
        let kept = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let first = {
                    let mut got = kept.lock().unwrap();
                    got.push((headers, String::from_utf8(body).unwrap()));
                    got.len() == 1
                };
                let status = if first { "500 Not Yet" } else { "200 OK" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, got }
    }
}

/// aiosmtpd writing every mail to a Maildir; killed on drop.
struct MailSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl MailSink {
    fn start() -> Option<MailSink> {
        let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
            Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let Some(python) = python else {
            let required = std::env::var_os("FTW_REQUIRE_ALL").is_some();
            assert!(
                !required,
                "aiosmtpd is not installed (apt install python3-aiosmtpd)"
            );
            eprintln!("SKIPPED: aiosmtpd is not installed (apt install python3-aiosmtpd)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(MailSink {
            child,
            port,
            maildir,
            _dir: dir,
        })
    }

    fn mails(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manifest(hook_port: u16, smtp_port: u16) -> String {
    format!(
        r#"
[auth.users]
alice = "{HASH_A}"

[notify.hook]
url = "http://127.0.0.1:{hook_port}/ftw"
secret_file = "notify.secret"

[notify.ops]
smtp = "smtp://127.0.0.1:{smtp_port}"
from = "ftw <ftw@example.com>"
to = ["ops@example.com"]

[tools.job]
command = ["./job.sh", "{{outcome}}"]
notify = ["hook", "ops"]
notify_on = ["failure"]

[tools.job.args.outcome]
type = "select"
options = ["pass", "fail"]
"#
    )
}

fn run(server: &Server, cookie: &str, outcome: &str) {
    let form = server.request("GET", "/tools/job", &[("Cookie", cookie)], "");
    let token = crate::support::server::csrf(&form.body);
    let r = server.request(
        "POST",
        "/tools/job",
        &[
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://localhost"),
        ],
        &format!("_csrf={token}&outcome={outcome}"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn a_failed_run_is_posted_signed_and_mailed_and_a_good_one_is_not() {
    let Some(sink) = MailSink::start() else {
        return;
    };
    let receiver = Receiver::start();
    let test = Test::new()
        .manifest(&manifest(receiver.port, sink.port))
        .exec("job.sh", "#!/bin/sh\n[ \"$1\" = pass ]\n")
        .file("notify.secret", SECRET);
    std::fs::set_permissions(
        test.path().join("notify.secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let server = Server::start(test, &["--audit-log", "audit.log"]);
    let cookie = server.sign_in("alice", ALICE_PW).expect("alice signs in");
    run(&server, &cookie, "pass");
    run(&server, &cookie, "fail");
    // The receiver refused the first try; the second (a second later) is taken.
    eventually("the failure is posted again after a refusal", || {
        receiver.got.lock().unwrap().len() >= 2
    });
    let got = receiver.got.lock().unwrap().clone();
    let (headers, body) = &got[1];
    let news: Value = serde_json::from_str(body).unwrap();
    assert_eq!(news["run"]["status"], "failed", "{news}");
    assert_eq!(news["run"]["exit_code"], 1);
    assert_eq!(news["run"]["user"], "alice");
    let signature = headers
        .iter()
        .find(|(k, _)| k == "x-ftw-signature")
        .map(|(_, v)| v.clone())
        .expect("signed");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature, format!("sha256={expected}"));
    // One mail, for the failure only.
    eventually("the failure is mailed", || !sink.mails().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("Subject: [ftw] job: failed"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains("To: ops@example.com"), "{}", mails[0]);
    assert_eq!(got.len(), 2, "the success was not posted");
    // Nothing failed for good.
    let audit = server.audit("audit.log");
    assert!(
        !audit.iter().any(|e| e["event"] == "notify-failed"),
        "{audit:?}"
    );
}

#[test]
fn an_unreachable_target_is_retried_then_audited_and_the_run_is_not_held_up() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manifest = format!(
        "[auth.users]\nalice = \"{HASH_A}\"\n\n[notify.gone]\nurl = \"http://127.0.0.1:{dead}/\"\n\n[tools.job]\ncommand = [\"false\"]\nnotify = [\"gone\"]\n"
    );
    let server = Server::start(
        Test::new().manifest(&manifest),
        &["--audit-log", "audit.log"],
    );
    let cookie = server.sign_in("alice", ALICE_PW).expect("alice signs in");
    let form = server.request("GET", "/tools/job", &[("Cookie", &cookie)], "");
    let token = crate::support::server::csrf(&form.body);
    let started = Instant::now();
    let r = server.request(
        "POST",
        "/tools/job",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://localhost"),
        ],
        &format!("_csrf={token}"),
    );
    assert_eq!(r.status, 303);
    let page = r.header("location").unwrap().to_string();
    eventually("the run's page says it failed", || {
        server
            .request("GET", &page, &[("Cookie", &cookie)], "")
            .body
            .contains("failed")
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the run waited for its notification"
    );
    // Four tries, 1 + 2 + 4 s apart, then the audit log says so.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let audit = server.audit("audit.log");
        if let Some(e) = audit.iter().find(|e| e["event"] == "notify-failed") {
            assert_eq!(e["target"], "gone");
            break;
        }
        assert!(Instant::now() < deadline, "no notify-failed in {audit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    eventually("each try is in the log", || {
        server.stderr().contains("attempt=4")
    });
}

#[test]
fn ftw_check_explains_notification_mistakes() {
    let manifest = r#"
[notify.a]
url = "http://hooks.example.com/x"

[notify.b]
smtp = "smtp://mail.example.com"
to = ["ops@example.com"]

[notify.c]

[tools.t]
command = ["true"]
notify = ["a", "d"]
notify_on = ["failures"]
"#;
    let out = Test::new()
        .manifest(manifest)
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    out.stderr_has("would send run details in the clear; use https://");
    out.stderr_has("mail needs `from`");
    out.stderr_has("[notify.c] needs `url` (a webhook) or `smtp` (mail)");
    out.stderr_has("`notify` names \"d\", which is not a [notify.NAME] target");
    out.stderr_has(
        "`notify_on` \"failures\" is not \"success\" or \"failure\"; did you mean \"failure\"?",
    );
}
