//! Schedules (issue 15) on the real `ftw serve`: a seconds-resolution cron expression
//! runs the tool as its user, as ordinary runs in the history, once per tick; the
//! `/schedules` page shows it; an admin pauses and resumes it; `ftw check` explains a
//! broken schedule.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::server::{Server, csrf};
use crate::support::{HASH_A, HASH_B, Test, eventually};

const ALICE_PW: &str = "hunter2-but-longer";

fn manifest(cron: &str) -> String {
    format!(
        r#"
[auth]
admins = ["alice"]

[auth.users]
alice = "{HASH_A}"
bob = "{HASH_B}"

[tools.tick]
command = ["./tick.sh", "{{word}}"]
allow = ["alice"]

[tools.tick.args.word]
type = "text"
max_length = 20

[tools.tick.schedule.often]
cron = "{cron}"
user = "alice"
args = {{ word = "from-schedule" }}
"#
    )
}

/// The runs alice sees, newest first, through the API with her session.
fn runs(server: &Server, cookie: &str) -> Vec<Value> {
    let r = server.request("GET", "/api/runs", &[("Cookie", cookie)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let json: Value = serde_json::from_str(&r.body).unwrap();
    json["runs"].as_array().unwrap().clone()
}

#[test]
fn a_schedule_runs_its_tool_once_per_tick_and_an_admin_can_pause_it() {
    let test = Test::new()
        .manifest(&manifest("*/2 * * * * *"))
        .exec("tick.sh", "#!/bin/sh\necho \"$1 as $FTW_USER\"\n");
    let server = Server::start(test, &["--audit-log", "audit.log"]);
    let cookie = server.sign_in("alice", ALICE_PW).expect("alice signs in");
    eventually("two scheduled runs", || runs(&server, &cookie).len() >= 2);
    let list = runs(&server, &cookie);
    for run in &list {
        assert_eq!(run["via"], "schedule", "{run}");
        assert_eq!(run["user"], "alice");
        assert_eq!(run["args"]["word"], "from-schedule", "{run}");
    }
    let id = list[0]["id"].as_str().unwrap();
    let r = server.request(
        "GET",
        &format!("/api/runs/{id}"),
        &[("Cookie", &cookie)],
        "",
    );
    let run: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(run["output"], "from-schedule as alice\n", "{run}");
    // One run per tick: every two seconds, never two for one tick.
    let starts: Vec<Value> = server
        .audit("audit.log")
        .into_iter()
        .filter(|e| e["event"] == "run-start")
        .collect();
    assert!(
        starts
            .iter()
            .all(|e| e["schedule"] == "often" && e["via"] == "schedule")
    );
    let mut seconds: Vec<String> = list
        .iter()
        .map(|r| r["started"].as_str().unwrap()[..19].to_string())
        .collect();
    let all = seconds.len();
    seconds.dedup();
    assert_eq!(seconds.len(), all, "two runs in one tick: {list:?}");

    // The page lists it with its last run; an admin pauses it, and it stops.
    let page = server.request("GET", "/schedules", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<code>*/2 * * * * *</code>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/runs/"),
        "the last run is linked"
    );
    let token = csrf(&page.body);
    let pause = |action: &str| {
        let body = format!("_csrf={token}&action={action}");
        server.request(
            "POST",
            "/schedules/tick/often",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "http://localhost"),
            ],
            &body,
        )
    };
    assert_eq!(pause("pause").status, 303);
    let page = server.request("GET", "/schedules", &[("Cookie", &cookie)], "");
    assert!(page.body.contains("paused by alice"), "{}", page.body);
    // A tick may have been claimed just before the pause: let it land, then count.
    std::thread::sleep(Duration::from_millis(2500));
    let paused_at = runs(&server, &cookie).len();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        runs(&server, &cookie).len(),
        paused_at,
        "a paused schedule ran"
    );
    assert_eq!(pause("resume").status, 303);
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs(&server, &cookie).len() == paused_at {
        assert!(
            Instant::now() < deadline,
            "the resumed schedule did not run"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let audit = server.audit("audit.log");
    assert!(
        audit
            .iter()
            .any(|e| e["event"] == "schedule-paused" && e["user"] == "alice")
    );

    // bob may not pause (the route does not exist for him) and sees no schedule of a
    // tool he may not run.
    let bob = server.sign_in("bob", "second").expect("bob signs in");
    let page = server.request("GET", "/schedules", &[("Cookie", &bob)], "");
    assert!(page.body.contains("No schedules"), "{}", page.body);
}

#[test]
fn ftw_check_explains_a_broken_schedule() {
    let broken = manifest("*/2 * * * * *")
        .replace("cron = \"*/2 * * * * *\"", "cron = \"61 * * * *\"")
        .replace("user = \"alice\"", "user = \"alise\"")
        + "\n[tools.tick.schedule.wrong]\ncron = \"0 3 * * *\"\nuser = \"alice\"\nargs = { wrd = \"x\" }\n\n[tools.tick.schedule.long]\ncron = \"0 3 * * *\"\nuser = \"alice\"\nargs = { word = \"far too long for twenty\" }\n\n[tools.tick.schedule.none]\ncron = \"0 3 * * *\"\nuser = \"alice\"\n";
    let out = Test::new()
        .manifest(&broken)
        .exec("tick.sh", "#!/bin/sh\n")
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    out.stderr_has("`cron` \"61 * * * *\" is not a cron expression");
    out.stderr_has("the schedule runs as \"alise\", who is not a user of this manifest; did you mean \"alice\"?");
    out.stderr_has("the schedule's `args` name `wrd`, which is not an argument of this tool; did you mean `word`?");
    out.stderr_has("the schedule's `word` must be at most 20 characters");
    out.stderr_has("the schedule's `args` lack `word`, which is required");
}
