//! Nothing lost on restart: the real `ftw serve` is stopped with SIGTERM and killed
//! with SIGKILL, then started again on the same state folder, and the history, the
//! output bytes, the files, logouts, throttle blocks and the audit log's pairs of
//! run-start and run-end are checked on the wire and on disk.

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::server::{Server, Wire, csrf};
use crate::support::{HASH_A, HASH_B, Test, eventually, gone};

const ALICE_PW: &str = "hunter2-but-longer";
const BOB_PW: &str = "second";
const KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Prints N lines (4000 make about 90 KB, past what is kept in memory), one line on
/// stderr, and leaves a CSV file.
const REPORT_SH: &str = r#"#!/bin/sh
i=0
while [ "$i" -lt "$1" ]; do echo "line $i of the report"; i=$((i+1)); done
echo "to stderr" >&2
printf 'a,b\n1,2\n' > "$FTW_OUTPUT_DIR/report.csv"
"#;

/// Leaves a child behind in its process group, says where, and waits.
const HANG_SH: &str = r#"#!/bin/sh
sleep 300 &
echo $! > hang.pid
echo started
wait
"#;

/// Exits cleanly on SIGTERM, leaving a mark.
const TRAP_SH: &str = r#"#!/bin/sh
trap 'echo "got TERM"; echo term > trapped.txt; exit 0' TERM
echo ready
while :; do sleep 1 & wait $!; done
"#;

struct Fixture {
    test: Test,
    token: String,
}

fn fixture(extra: &str) -> Fixture {
    let (token, hash) = ftw::auth::tokens::generate();
    let manifest = format!(
        r#"
[auth]
admins = ["alice"]

[auth.users]
alice = "{HASH_A}"
bob = "{HASH_B}"

[auth.tokens.ci]
hash = "{}"
user = "alice"

[tools.report]
command = ["./report.sh", "{{lines}}"]
stderr = "separate"

[tools.report.args.lines]
type = "int"
min = 0
max = 100000

[tools.hang]
command = ["./hang.sh"]

[tools.trap]
command = ["./trap.sh"]

{extra}
"#,
        ftw::auth::tokens::manifest_form(&hash)
    );
    let test = Test::new()
        .manifest(&manifest)
        .exec("report.sh", REPORT_SH)
        .exec("hang.sh", HANG_SH)
        .exec("trap.sh", TRAP_SH)
        .file("ftw.secret", KEY);
    Fixture { test, token }
}

const FLAGS: &[&str] = &[
    "--secret-key-file",
    "ftw.secret",
    "--audit-log",
    "audit.log",
];

fn api(server: &Server, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    let r = server.request(method, path, &headers, body);
    let json = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, json)
}

fn start_run(server: &Server, token: &str, tool: &str, args: &str, wait: bool) -> String {
    let path = format!(
        "/api/tools/{tool}/runs{}",
        if wait { "?wait=true" } else { "" }
    );
    let (status, json) = api(
        server,
        token,
        "POST",
        &path,
        &format!("{{\"args\": {args}}}"),
    );
    assert_eq!(status, 201, "{json}");
    json["id"].as_str().unwrap().to_string()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn get(server: &Server, path: &str, cookie: &str) -> Wire {
    server.request("GET", path, &[("Cookie", cookie)], "")
}

fn audit(test: &Test) -> Vec<Value> {
    std::fs::read_to_string(test.path().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (run-start, run-end) records of one run in the audit log.
fn audit_pair(records: &[Value], run: &str) -> (usize, Vec<Value>) {
    let of = |event: &str| {
        records
            .iter()
            .filter(|r| r["event"] == event && r["run"] == run)
            .cloned()
            .collect::<Vec<_>>()
    };
    (of("run-start").len(), of("run-end"))
}

/// How many output chunks of a run the state database holds.
fn stored_chunks(db: &std::path::Path, run: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT count(*) FROM output_chunks WHERE run = ?1",
        [run],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn history_output_files_logouts_and_blocks_survive_sigterm_and_sigkill() {
    // Sign-ins come through a trusted proxy, so they can come from many addresses.
    let Fixture { test, token } = fixture("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n");
    let mut server = Server::start(test, FLAGS);
    let small = start_run(&server, &token, "report", r#"{"lines": 3}"#, true);
    let large = start_run(&server, &token, "report", r#"{"lines": 4000}"#, true);
    let output = |server: &Server, id: &str| {
        server
            .request(
                "GET",
                &format!("/api/runs/{id}/output"),
                &[("Authorization", &format!("Bearer {token}"))],
                "",
            )
            .body
    };
    let small_out = output(&server, &small);
    let large_out = output(&server, &large);
    assert!(small_out.contains("line 2 of the report") && small_out.contains("to stderr"));
    assert!(large_out.len() > 64 * 1024, "{}", large_out.len());
    let sums = (sha256(small_out.as_bytes()), sha256(large_out.as_bytes()));

    // Two sessions of alice: one logs out, one stays.
    let gone_cookie = server.sign_in("alice", ALICE_PW).unwrap();
    let kept_cookie = server.sign_in("alice", ALICE_PW).unwrap();
    let page = get(&server, "/", &gone_cookie);
    let out = server.request(
        "POST",
        "/logout",
        &[
            ("Cookie", &gone_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://localhost"),
        ],
        &format!("_csrf={}", csrf(&page.body)),
    );
    assert_eq!(out.status, 303);
    assert_eq!(get(&server, "/", &gone_cookie).status, 303, "logged out");
    // bob is guessed at from five addresses: his name is blocked. One address guesses
    // five names: it is blocked.
    let from = |ip: &str| [("X-Forwarded-For", ip.to_string())];
    let sign_in_from = |server: &Server, user: &str, pw: &str, ip: &str| {
        let [(k, v)] = from(ip);
        server.sign_in_with(user, pw, &[(k, v.as_str())])
    };
    for i in 1..=5 {
        assert!(sign_in_from(&server, "bob", "wrong", &format!("10.0.0.{i}")).is_none());
        assert!(sign_in_from(&server, &format!("nobody{i}"), "x", "10.9.9.9").is_none());
    }
    let blocked = |server: &Server| {
        (
            sign_in_from(server, "bob", BOB_PW, "10.0.1.1").is_none(),
            sign_in_from(server, "alice", ALICE_PW, "10.9.9.9").is_none(),
            sign_in_from(server, "alice", ALICE_PW, "10.0.1.2").is_some(),
        )
    };
    assert_eq!(
        blocked(&server),
        (true, true, true),
        "bob and 10.9.9.9 blocked"
    );

    let file = get(
        &server,
        &format!("/runs/{large}/files/report.csv"),
        &kept_cookie,
    );
    assert_eq!(file.body, "a,b\n1,2\n");

    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let (_, test) = server.stop(signal);
        server = Server::start(test, FLAGS);
        let (status, list) = api(&server, &token, "GET", "/api/runs", "");
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [large.as_str(), small.as_str()],
            "after signal {signal}"
        );
        assert_eq!(list["runs"][0]["status"], "succeeded");
        assert_eq!(list["runs"][0]["args"]["lines"], "4000");
        assert_eq!(
            (
                sha256(output(&server, &small).as_bytes()),
                sha256(output(&server, &large).as_bytes())
            ),
            sums,
            "the same output bytes after signal {signal}"
        );
        let (_, run) = api(&server, &token, "GET", &format!("/api/runs/{large}"), "");
        assert_eq!(run["exit_code"], 0);
        assert_eq!(run["files"][0]["name"], "report.csv");
        let file = get(
            &server,
            &format!("/runs/{large}/files/report.csv"),
            &kept_cookie,
        );
        assert_eq!((file.status, file.body.as_str()), (200, "a,b\n1,2\n"));
        let page = get(&server, &format!("/runs/{small}"), &kept_cookie);
        assert!(page.body.contains("succeeded"), "{}", page.body);
        assert!(
            page.body.contains("class=\"e\">to stderr"),
            "stderr still told apart: {}",
            page.body
        );
        let history = get(&server, "/runs", &kept_cookie);
        assert!(history.body.contains(&large) && history.body.contains("Lines: 4000"));
        assert_eq!(
            get(&server, "/", &kept_cookie).status,
            200,
            "still signed in"
        );
        assert_eq!(
            get(&server, "/", &gone_cookie).status,
            303,
            "a logout outlives signal {signal}"
        );
        assert_eq!(
            blocked(&server),
            (true, true, true),
            "the blocks outlive signal {signal}"
        );
    }
}

#[test]
fn a_crash_leaves_runs_interrupted_and_no_process_behind() {
    let Fixture { test, token } = fixture("");
    let server = Server::start(test, FLAGS);
    let id = start_run(&server, &token, "hang", "{}", false);
    let pid_file = server.test.path().join("hang.pid");
    eventually("the tool started its child", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the output arrived", || {
        api(&server, &token, "GET", &format!("/api/runs/{id}"), "").1["output"] == "started\n"
    });
    // Output in memory is stored a few times a second; wait until it is on disk.
    let db = server.test.path().join("state/ftw.db");
    eventually("the output is stored", || stored_chunks(&db, &id) > 0);

    let (_, test) = server.stop(libc::SIGKILL);
    assert!(!gone(pid), "the tool's child outlives a killed ftw");
    let server = Server::start(test, FLAGS);
    assert!(gone(pid), "the next start killed what was left of the run");
    let (_, run) = api(&server, &token, "GET", &format!("/api/runs/{id}"), "");
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["output"], "started\n", "its output so far is kept");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("ftw stopped while it ran"),
        "{run}"
    );
    assert!(run["duration_ms"].is_u64());
    let records = audit(&server.test);
    let (starts, ends) = audit_pair(&records, &id);
    assert_eq!(starts, 1);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["status"], "interrupted");
    assert_eq!(ends[0]["reason"], "crash");
    // A clean stop and start later: nothing more to close.
    let (_, test) = server.stop(libc::SIGTERM);
    let server = Server::start(test, FLAGS);
    assert_eq!(audit_pair(&audit(&server.test), &id).1.len(), 1);
}

#[test]
fn every_run_start_has_exactly_one_run_end() {
    let Fixture { test, token } = fixture(
        r#"
[tools.slow]
command = ["/bin/sleep", "30"]
max_concurrent = 1

[tools.missing]
command = ["./gone.sh"]

[tools.quick]
command = ["/bin/echo", "done"]
"#,
    );
    let test = test.exec("gone.sh", "#!/bin/sh\n");
    let server = Server::start(test, &[FLAGS, &["--shutdown-grace", "3s"]].concat());
    // It was there when ftw checked the manifest; it is not when the run starts.
    std::fs::remove_file(server.test.path().join("gone.sh")).unwrap();
    let quick = start_run(&server, &token, "quick", "{}", true);
    let missing = start_run(&server, &token, "missing", "{}", true);
    let running = start_run(&server, &token, "slow", "{}", false);
    eventually("the first slow run started", || {
        api(&server, &token, "GET", &format!("/api/runs/{running}"), "").1["status"] == "running"
    });
    let queued = start_run(&server, &token, "slow", "{}", false);
    let cancelled = start_run(&server, &token, "slow", "{}", false);
    let (status, json) = api(
        &server,
        &token,
        "POST",
        &format!("/api/runs/{cancelled}/cancel"),
        "",
    );
    assert_eq!((status, &json["status"]), (200, &Value::from("cancelled")));

    let (code, test) = server.stop(libc::SIGTERM);
    assert_eq!(code, 0);
    let records = audit(&test);
    let expected = [
        (&quick, "succeeded"),
        (&missing, "error"),
        (&running, "interrupted"),
        (&queued, "interrupted"),
        (&cancelled, "cancelled"),
    ];
    for (id, status) in expected {
        let (starts, ends) = audit_pair(&records, id);
        assert_eq!((starts, ends.len()), (1, 1), "{status}: {ends:?}");
        assert_eq!(ends[0]["status"], status);
    }
    let (_, running_end) = audit_pair(&records, &running);
    assert_eq!(running_end[0]["signal"], libc::SIGTERM, "SIGTERM first");
    assert_eq!(running_end[0]["reason"], "shutdown");

    // The next start finds nothing left to close, and shows how each ended.
    let test = test.exec("gone.sh", "#!/bin/sh\n");
    let server = Server::start(test, FLAGS);
    let records = audit(&server.test);
    for (id, _) in expected {
        assert_eq!(audit_pair(&records, id).1.len(), 1);
    }
    let (_, run) = api(&server, &token, "GET", &format!("/api/runs/{queued}"), "");
    assert_eq!(run["status"], "interrupted");
    assert!(
        run["error"].as_str().unwrap().contains("before it started"),
        "{run}"
    );
}

#[test]
fn a_tool_that_traps_sigterm_gets_it_at_shutdown() {
    let Fixture { test, token } = fixture("");
    let server = Server::start(test, &[FLAGS, &["--shutdown-grace", "20s"]].concat());
    let id = start_run(&server, &token, "trap", "{}", false);
    eventually("the tool is ready", || {
        api(&server, &token, "GET", &format!("/api/runs/{id}"), "").1["output"] == "ready\n"
    });
    let began = Instant::now();
    let (code, test) = server.stop(libc::SIGTERM);
    assert_eq!(code, 0);
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "ftw waited for the tool, not for the whole grace"
    );
    assert_eq!(
        std::fs::read_to_string(test.path().join("trapped.txt")).unwrap(),
        "term\n"
    );
    let server = Server::start(test, FLAGS);
    let (_, run) = api(&server, &token, "GET", &format!("/api/runs/{id}"), "");
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["exit_code"], 0, "it exited on its own after the TERM");
    let output = run["output"].as_str().unwrap();
    assert!(
        output.starts_with("ready\n") && output.ends_with("got TERM\n"),
        "{output}"
    );
}

#[test]
fn one_state_folder_serves_one_ftw() {
    let Fixture { test, .. } = fixture("");
    let first = Server::start(test, &[]);
    let state = first.test.path().join("state");
    let second = fixture("")
        .test
        .env("FTW_STATE_DIR", state.to_str().unwrap());
    let refused = Server::try_start(second, &[]).err().expect("refused");
    assert_eq!(refused.0, 1, "{}", refused.1);
    assert!(
        refused.1.contains(&format!(
            "another ftw (process {}) is using the state folder",
            first.child.id()
        )),
        "{}",
        refused.1
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("ftw.db")), 0o600);
    assert_eq!(mode(&state.join("runs")), 0o700);
}

#[test]
fn the_state_folder_follows_systemd_then_xdg() {
    for (var, sub) in [("STATE_DIRECTORY", ""), ("XDG_STATE_HOME", "ftw")] {
        let Fixture { test, .. } = fixture("");
        let base = test.path().join("elsewhere");
        let test = test
            .without_env("FTW_STATE_DIR")
            .without_env("STATE_DIRECTORY")
            .without_env("XDG_STATE_HOME")
            .env(var, base.to_str().unwrap());
        let server = Server::start(test, &[]);
        let db = base.join(sub).join("ftw.db");
        assert!(db.is_file(), "{var}: no {}", db.display());
        drop(server);
    }
}

#[test]
fn the_audit_log_follows_rotation_and_deletion() {
    let Fixture { test, token } = fixture("");
    let server = Server::start(test, FLAGS);
    let log = server.test.path().join("audit.log");
    let first = start_run(&server, &token, "report", r#"{"lines": 1}"#, true);
    // logrotate's way: move the file, make a new one, send SIGHUP.
    std::fs::rename(&log, server.test.path().join("audit.log.1")).unwrap();
    std::fs::write(&log, "").unwrap();
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGHUP);
    }
    let second = start_run(&server, &token, "report", r#"{"lines": 1}"#, true);
    std::fs::remove_file(&log).unwrap();
    let third = start_run(&server, &token, "report", r#"{"lines": 1}"#, true);
    let read = |name: &str| std::fs::read_to_string(server.test.path().join(name)).unwrap();
    assert!(read("audit.log.1").contains(&first));
    assert!(!read("audit.log.1").contains(&second));
    let now = read("audit.log");
    assert!(now.contains(&third) && now.contains("\"run-end\""), "{now}");
    eventually("the warning is logged", || {
        server.stderr().contains("was deleted; ftw made it again")
    });
}

/// Whether this machine lets a test mount a file system of its own (a tmpfs in a new
/// user and mount namespace), to make a disk that fills up.
fn can_mount_tmpfs() -> bool {
    std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /tmp"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_disk_cuts_output_with_a_reason_answers_507_and_recovers() {
    if !crate::support::external::available(
        "unshare",
        can_mount_tmpfs(),
        "util-linux's unshare with user namespaces, to mount a small tmpfs",
    ) {
        return;
    }
    let Fixture { test, token } = fixture(
        r#"
[tools.flood]
command = ["/bin/sh", "-c", "head -c 12000000 /dev/zero | tr '\\0' x; echo; echo after"]
max_output = "20MB"

[tools.upload]
command = ["/bin/echo", "stored"]
[tools.upload.args.doc]
type = "file"
max_size = "5MB"
"#,
    );
    let state = test.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // ftw alone sees an 8 MB state folder (1 MB of it kept for its records).
    let mount = format!(
        "mount -t tmpfs -o size=8m,mode=0700 none '{}' && exec \"$0\" \"$@\"",
        state.display()
    );
    let test = test.wrapped_in(&["unshare", "-rm", "sh", "-c", &mount]);
    let server = Server::start(test, FLAGS);
    let flood = start_run(&server, &token, "flood", "{}", true);
    let (_, run) = api(&server, &token, "GET", &format!("/api/runs/{flood}"), "");
    assert_eq!(
        run["status"],
        "succeeded",
        "the program kept running: {}",
        server.stderr()
    );
    assert_eq!(run["output_cut"], true);
    let reason = run["output_cut_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the disk that holds ftw's state is nearly full"),
        "{reason}"
    );

    let upload = |server: &Server| {
        let boundary = "FULLDISK";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"big.txt\"\r\n\r\n{}\r\n--{boundary}--\r\n",
            "u".repeat(1_000_000)
        );
        let auth = format!("Bearer {token}");
        let kind = format!("multipart/form-data; boundary={boundary}");
        server.request(
            "POST",
            "/api/tools/upload/runs?wait=true",
            &[("Authorization", &auth), ("Content-Type", &kind)],
            &body,
        )
    };
    let full = upload(&server);
    assert_eq!(full.status, 507, "{}", full.body);
    assert!(
        full.body.contains("disk that holds ftw's state is full"),
        "{}",
        full.body
    );
    assert_eq!(server.request("GET", "/healthz", &[], "").status, 200);

    // Space comes back (through ftw's own view of its mounts): so does everything.
    let log = format!(
        "/proc/{}/root{}/runs/{flood}.log",
        server.child.id(),
        state.display()
    );
    std::fs::remove_file(&log).unwrap_or_else(|e| panic!("{log}: {e}"));
    let stored = upload(&server);
    assert_eq!(stored.status, 201, "{}", stored.body);
    let json: Value = serde_json::from_str(&stored.body).unwrap();
    assert_eq!(json["output"], "stored\n");
}

#[test]
fn old_runs_go_by_age_and_by_the_state_folders_size() {
    let Fixture { test, token } = fixture(
        r#"
[tools.big]
command = ["/bin/sh", "-c", "head -c 600000 /dev/zero > \"$FTW_OUTPUT_DIR/blob.bin\""]
"#,
    );
    // By size: two runs leave 600 KB each; the second puts the folder over 1 MB.
    let server = Server::start(test, &[FLAGS, &["--max-state-size", "1MB"]].concat());
    let first = start_run(&server, &token, "big", "{}", true);
    let blob = server
        .test
        .path()
        .join(format!("state/runs/{first}/blob.bin"));
    assert!(blob.exists());
    let second = start_run(&server, &token, "big", "{}", true);
    let status =
        |server: &Server, id: &str| api(server, &token, "GET", &format!("/api/runs/{id}"), "").0;
    eventually("the oldest run makes room", || {
        status(&server, &first) == 404
    });
    eventually("its files are gone", || !blob.exists());
    assert_eq!(status(&server, &second), 200);

    // By age: at start-up, runs older than keep_for go.
    let (_, test) = server.stop(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(1500));
    let server = Server::start(test, &[FLAGS, &["--keep-for", "1s"]].concat());
    eventually("the old run goes", || status(&server, &second) == 404);
    let fresh = start_run(&server, &token, "report", r#"{"lines": 1}"#, true);
    assert_eq!(status(&server, &fresh), 200);
}
