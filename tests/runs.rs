//! Forms that run commands, in-process with real processes: argv safety (security.md
//! 20-22), the scrubbed environment and process groups (24), output escaping (23), run
//! visibility (25), uploads and downloads (27, 28), validation, cancel and history.

use std::time::Duration;

use crate::support::app::{App, Browser};
use crate::support::{HASH_A, HASH_B, sse};

const ALICE_PW: &str = "hunter2-but-longer";
const BOB_PW: &str = "second";

/// Prints its arguments as a JSON array of hex-encoded strings, one per argument, so
/// the test sees exactly which bytes arrived as which element.
const ARGV_SH: &str = r#"#!/bin/sh
printf '['
sep=
for a in "$@"; do
  printf '%s"%s"' "$sep" "$(printf '%s' "$a" | od -An -v -tx1 | tr -d ' \n')"
  sep=,
done
printf ']\n'
"#;

fn users() -> String {
    format!(
        "[auth]\nadmins = [\"alice\"]\n\n[auth.users]\nalice = {{ password = \"{HASH_A}\", groups = [\"ops\"] }}\nbob = \"{HASH_B}\"\n"
    )
}

fn app(tools: &str, files: &[(&str, &str)]) -> App {
    let mut all = vec![("argv.sh", ARGV_SH)];
    all.extend_from_slice(files);
    App::with_files(&format!("{}\n{tools}", users()), &all)
}

async fn alice(app: &App) -> Browser<'_> {
    let mut b = app.browser();
    assert_eq!(b.login("alice", ALICE_PW).await.status, 303);
    b
}

async fn bob(app: &App) -> Browser<'_> {
    let mut b = app.browser();
    assert_eq!(b.login("bob", BOB_PW).await.status, 303);
    b
}

/// The argv the helper script printed, decoded.
fn argv_of(output: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(output);
    let json: Vec<String> =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    json.iter()
        .map(|hex| {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

async fn run_output(
    app: &App,
    b: &mut Browser<'_>,
    tool: &str,
    fields: &[(&str, &str)],
) -> Vec<u8> {
    let reply = b.run_tool(tool, fields).await;
    let id = Browser::run_id(&reply);
    let run = app.finished(&id).await;
    run.output()
}

// ---- 20, 21, 22: argv ----

#[tokio::test]
async fn hostile_values_arrive_as_exactly_one_argv_element() {
    let app = app(
        r#"
[tools.argv]
command = ["./argv.sh", "fixed", "--", "{v}", "--opt={v}"]
[tools.argv.args.v]
type = "text"
"#,
        &[],
    );
    let mut b = alice(&app).await;
    for hostile in [
        "$(id)",
        "`id`",
        ";id",
        "|id",
        "a\nb\nc",
        "'\"quotes\"'",
        "with spaces  and\ttabs",
        "ünïcødé ✓ 日本",
        "--help",
        "-rf /",
        "&& rm -rf ~ ||",
        "$HOME ${PATH}",
        "*",
        "> /tmp/x",
    ] {
        let out = run_output(&app, &mut b, "argv", &[("v", hostile)]).await;
        assert_eq!(
            argv_of(&out),
            ["fixed", "--", hostile, &format!("--opt={hostile}")],
            "value {hostile:?}"
        );
    }
}

#[tokio::test]
async fn nul_is_refused_with_422_and_nothing_runs() {
    let app = app(
        "[tools.argv]\ncommand = [\"./argv.sh\", \"{v}\"]\n[tools.argv.args.v]\ntype = \"text\"\n",
        &[],
    );
    let mut b = alice(&app).await;
    let r = b.run_tool("argv", &[("v", "a\0b")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("must not contain NUL characters"),
        "{}",
        r.body
    );
    assert!(app.all_runs().await.is_empty(), "nothing ran");
}

#[tokio::test]
async fn template_rules_multiselect_optional_bool_and_braces() {
    let app = app(
        r#"
[tools.t]
command = ["./argv.sh", "{tags}", "--label={label}", "{verbose}", "{dry}", "{{literal}}", "n={n}"]
[tools.t.args.tags]
type = "multiselect"
options = ["a b", "c;d", "e"]
required = false
[tools.t.args.label]
type = "text"
required = false
[tools.t.args.verbose]
type = "bool"
flag = "--verbose"
[tools.t.args.dry]
type = "bool"
[tools.t.args.n]
type = "int"
default = 7
"#,
        &[],
    );
    let mut b = alice(&app).await;
    let out = run_output(
        &app,
        &mut b,
        "t",
        &[
            ("tags", "a b"),
            ("tags", "c;d"),
            ("verbose", "true"),
            ("dry", "true"),
            ("n", "3"),
        ],
    )
    .await;
    assert_eq!(
        argv_of(&out),
        ["a b", "c;d", "--verbose", "true", "{literal}", "n=3"]
    );
    // Nothing chosen, no label, boxes unticked, n left empty: the default.
    let out = run_output(&app, &mut b, "t", &[("label", ""), ("n", "")]).await;
    assert_eq!(argv_of(&out), ["false", "{literal}", "n=7"]);
}

#[tokio::test]
async fn every_type_is_checked_on_the_server() {
    let app = app(
        r#"
[tools.t]
command = ["./argv.sh"]
[tools.t.args.code]
type = "text"
pattern = "[a-z]{3}"
[tools.t.args.n]
type = "int"
min = 1
max = 10
[tools.t.args.x]
type = "float"
[tools.t.args.pick]
type = "select"
options = ["a", "b"]
[tools.t.args.day]
type = "date"
[tools.t.args.mail]
type = "email"
[tools.t.args.site]
type = "url"
[tools.t.args.secret]
type = "password"
min_length = 8
"#,
        &[],
    );
    let mut b = alice(&app).await;
    let r = b
        .run_tool(
            "t",
            &[
                ("code", "abcd"),
                ("n", "11"),
                ("x", "NaN"),
                ("pick", "c"),
                ("day", "2026-13-01"),
                ("mail", "not-an-email"),
                ("site", "javascript:alert(1)"),
                ("secret", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    for (field, message) in [
        ("code", "must match the pattern [a-z]{3}"),
        ("n", "must be between 1 and 10"),
        ("x", "must be a number"),
        ("pick", "must be one of the options, not &#34;c&#34;"),
        ("day", "must be a date such as 2026-11-22"),
        ("mail", "must be an e-mail address"),
        ("site", "must be a web address"),
        ("secret", "must be at least 8 characters long"),
    ] {
        // Each error sits in its own field's block, right under the input.
        let block_start = r.body.find(&format!("id=\"field-{field}\"")).unwrap();
        let block =
            &r.body[block_start..block_start + r.body[block_start..].find("</div>").unwrap()];
        assert!(block.contains(message), "{field}: {message} not in {block}");
        assert!(block.contains("aria-invalid=\"true\""), "{block}");
    }
    // Values are kept, except the password.
    assert!(r.body.contains("value=\"abcd\"") && r.body.contains("value=\"11\""));
    assert!(!r.body.contains("short"), "a password is never echoed back");
    assert!(app.all_runs().await.is_empty());
}

#[tokio::test]
async fn undeclared_fields_are_refused() {
    let app = app("[tools.t]\ncommand = [\"./argv.sh\"]\n", &[]);
    let mut b = alice(&app).await;
    let r = b.run_tool("t", &[("extra", "1"), ("../x", "2")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body
            .contains("The form had fields this tool does not take: ../x, extra."),
        "{}",
        r.body
    );
    assert!(app.all_runs().await.is_empty());
}

#[tokio::test]
async fn the_form_needs_its_csrf_token_and_same_origin() {
    let app = app("[tools.t]\ncommand = [\"./argv.sh\"]\n", &[]);
    let mut b = alice(&app).await;
    assert_eq!(b.post("/tools/t", &[]).await.status, 403);
    assert_eq!(b.post("/tools/t", &[("_csrf", "nope")]).await.status, 403);
    let csrf = b.get("/tools/t").await.csrf();
    b.origin = Some("https://evil.example".into());
    assert_eq!(b.post("/tools/t", &[("_csrf", &csrf)]).await.status, 403);
    b.origin = None;
    let r = b
        .post_with("/tools/t", &[], &[("x-csrf-token", &csrf)])
        .await;
    assert_eq!(r.status, 303, "the header works for fetch");
    assert_eq!(app.all_runs().await.len(), 1);
}

// ---- 24: environment and process groups ----

#[tokio::test]
async fn the_child_environment_is_scrubbed() {
    // SAFETY: set before the server spawns anything in this test process.
    unsafe {
        std::env::set_var("FTW_TEST_SERVER_SECRET", "leaked");
    }
    let app = app(
        r#"
[tools.env]
command = ["/usr/bin/env"]
env = { GREETING = "hi" }
[tools.env.args.who]
type = "text"
"#,
        &[],
    );
    let mut b = alice(&app).await;
    let out =
        String::from_utf8(run_output(&app, &mut b, "env", &[("who", "world")]).await).unwrap();
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    let expected_some = [
        "FTW_ARG_WHO",
        "FTW_OUTPUT_DIR",
        "FTW_RUN_ID",
        "FTW_TOOL",
        "FTW_USER",
        "GREETING",
        "LANG",
        "PATH",
    ];
    for name in expected_some {
        assert!(names.contains(&name), "{name} missing in {out}");
    }
    for name in &names {
        assert!(
            expected_some.contains(name) || *name == "HOME",
            "unexpected variable {name} reached the child:\n{out}"
        );
    }
    assert!(out.contains("FTW_ARG_WHO=world\n") && out.contains("FTW_USER=alice\n"));
    assert!(!out.contains("leaked") && !out.contains("4242"), "{out}");
}

/// Waits (up to 2 s: a killed process closes its files a moment before it is a zombie)
/// until `pid` is gone.
async fn wait_gone(pid: i32) -> bool {
    for _ in 0..100 {
        if gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn gone(pid: i32) -> bool {
    // A zombie no one has reaped yet (containers often lack a reaping init) is dead too.
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group_grandchildren_too() {
    let script = "#!/bin/sh\nsleep 300 &\necho $! > grandchild.pid\necho started\nwait\n";
    let app = app(
        "[tools.slow]\ncommand = [\"./slow.sh\"]\ntimeout = \"1s\"\n",
        &[("slow.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("slow", &[]).await);
    let run = app.finished(&id).await;
    assert!(
        matches!(run.status(), ftw::runs::Status::TimedOut(_)),
        "{:?}",
        run.status()
    );
    let pid: i32 = std::fs::read_to_string(app.dir.path().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_gone(pid).await,
        "grandchild {pid} survived the timeout"
    );
    assert!(String::from_utf8_lossy(&run.output()).contains("started"));
}

#[tokio::test]
async fn strays_are_killed_when_the_program_ends() {
    let script = "#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > stray.pid\necho bye\n";
    let app = app(
        "[tools.t]\ncommand = [\"./stray.sh\"]\n",
        &[("stray.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    assert_eq!(
        app.finished(&id).await.status(),
        ftw::runs::Status::Succeeded
    );
    let pid: i32 = std::fs::read_to_string(app.dir.path().join("stray.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_gone(pid).await,
        "the background child {pid} outlived its run"
    );
}

#[tokio::test]
async fn cancel_ends_the_process_group() {
    let script = "#!/bin/sh\nsleep 300 &\necho $! > child.pid\necho waiting\nwait\n";
    let app = app(
        "[tools.t]\ncommand = [\"./wait.sh\"]\n",
        &[("wait.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let run = app.state.runs.get(&id).await.unwrap();
    let mut changes = run.watch();
    while !String::from_utf8_lossy(&run.output()).contains("waiting") {
        changes.changed().await.unwrap();
    }
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(page.body.contains("Cancel"));
    let r = b
        .post(&format!("/runs/{id}/cancel"), &[("_csrf", &page.csrf())])
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, format!("/runs/{id}").as_str())
    );
    let run = app.finished(&id).await;
    assert!(
        matches!(run.status(), ftw::runs::Status::Cancelled(Some(_))),
        "{:?}",
        run.status()
    );
    let pid: i32 = std::fs::read_to_string(app.dir.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_gone(pid).await);
}

#[tokio::test]
async fn separate_stderr_is_tinted_on_the_page_and_kept_in_the_download() {
    let script = "#!/bin/sh\necho out1\necho 'err <1>' >&2\nexit 3\n";
    let app = app(
        "[tools.t]\ncommand = [\"./mix.sh\"]\nstderr = \"separate\"\n",
        &[("mix.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let run = app.finished(&id).await;
    let mut lines: Vec<String> = String::from_utf8(run.output())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["err <1>", "out1"], "both streams, whole");
    let page = b.get(&format!("/runs/{id}")).await.body;
    assert!(
        page.contains(r#"<span class="e">err &lt;1&gt;"#),
        "stderr in its own class, escaped: {page}"
    );
    assert!(!page.contains(r#"<span class="e">out1"#));
}

#[tokio::test]
async fn stdout_and_stderr_keep_their_order() {
    let script = "#!/bin/sh\nfor i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done\nexit 3\n";
    let app = app(
        "[tools.t]\ncommand = [\"./mix.sh\"]\n",
        &[("mix.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let run = app.finished(&id).await;
    assert_eq!(
        String::from_utf8(run.output()).unwrap(),
        "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\n"
    );
    assert_eq!(run.status(), ftw::runs::Status::Failed(3));
}

#[tokio::test]
async fn output_beyond_max_output_is_cut_with_a_marker_and_the_program_finishes() {
    let script =
        "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' 'x'\necho\necho finished > done.txt\n";
    let app = app(
        "[tools.t]\ncommand = [\"./flood.sh\"]\nmax_output = \"10KB\"\n",
        &[("flood.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let run = app.finished(&id).await;
    let snap = run.snapshot();
    let output = run.output();
    assert_eq!(snap.status, ftw::runs::Status::Succeeded);
    assert_eq!(snap.output_len, output.len() as u64);
    assert!(output.len() < 10_000 + 200, "kept {} bytes", output.len());
    assert!(
        String::from_utf8_lossy(&output)
            .contains("[ftw: output cut here: it reached max_output (10000 bytes)")
    );
    assert_eq!(snap.dropped, 300_001 - 10_000);
    assert!(
        app.dir.path().join("done.txt").exists(),
        "the program ran to its end"
    );
}

#[tokio::test]
async fn a_missing_program_is_a_clear_run_error() {
    let app = app(
        "[tools.t]\ncommand = [\"./gone.sh\"]\n",
        &[("gone.sh", "#!/bin/sh\necho\n")],
    );
    std::fs::remove_file(app.dir.path().join("gone.sh")).unwrap();
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let run = app.finished(&id).await;
    assert!(
        matches!(run.status(), ftw::runs::Status::Error(ref why) if why.contains("no such program"))
    );
}

// ---- 23: output is text ----

#[tokio::test]
async fn markup_in_output_is_escaped_on_the_page_and_in_the_event_stream() {
    let script = "#!/bin/sh\nprintf '<script>alert(1)</script>\\n\\033[31m<img src=x onerror=alert(2)>\\033[0m\\n'\n";
    let app = app(
        "[tools.t]\ncommand = [\"./xss.sh\"]\n",
        &[("xss.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    app.finished(&id).await;
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        page.body
            .contains("<span class=\"f1\">&lt;img src=x onerror=alert(2)&gt;</span>")
    );

    let events = b.get(&format!("/runs/{id}/events")).await;
    assert_eq!(
        events.header("content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert!(!events.body.contains("<script>") && !events.body.contains("<img"));
    assert!(
        events
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
}

#[tokio::test]
async fn the_event_stream_ends_with_the_exit_code() {
    let app = app(
        "[tools.t]\ncommand = [\"/bin/sh\", \"-c\", \"echo one; exit 4\"]\n",
        &[],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    app.finished(&id).await;
    let events = b.get(&format!("/runs/{id}/events")).await;
    let parsed = sse::parse(&events.body);
    let kinds: Vec<&str> = parsed.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["snapshot", "end"], "{}", events.body);
    assert_eq!(parsed[0].data, "one\n");
    let data: serde_json::Value = serde_json::from_str(&parsed[1].data).unwrap();
    assert_eq!(data["exit_code"], 4);
    assert_eq!(data["status"], "failed");
}

// ---- 25: who sees what ----

#[tokio::test]
async fn bob_gets_404_for_admins_runs_and_for_ops_tools_on_every_route() {
    let app = app(
        r#"
[tools.shared]
command = ["/bin/sh", "-c", "echo made > \"$FTW_OUTPUT_DIR/r.txt\""]
[tools.ops]
command = ["/bin/echo", "ops"]
allow = ["@ops"]
"#,
        &[],
    );
    let mut alice = alice(&app).await;
    let mine = Browser::run_id(&alice.run_tool("shared", &[]).await);
    let ops_run = Browser::run_id(&alice.run_tool("ops", &[]).await);
    app.finished(&mine).await;
    app.finished(&ops_run).await;
    let mut bob = bob(&app).await;
    let csrf = bob.get("/").await.csrf();
    for run in [&mine, &ops_run] {
        assert_eq!(bob.get(&format!("/runs/{run}")).await.status, 404);
        assert_eq!(bob.get(&format!("/runs/{run}/events")).await.status, 404);
        assert_eq!(
            bob.get(&format!("/runs/{run}/files/r.txt")).await.status,
            404
        );
        assert_eq!(
            bob.post(&format!("/runs/{run}/cancel"), &[("_csrf", &csrf)])
                .await
                .status,
            404
        );
    }
    assert_eq!(bob.get("/tools/ops").await.status, 404);
    assert_eq!(
        bob.post("/tools/ops", &[("_csrf", &csrf)]).await.status,
        404
    );
    let not_found = bob.get("/tools/ops").await.body;
    assert_eq!(
        not_found,
        bob.get("/tools/nonexistent").await.body,
        "indistinguishable from no tool"
    );
    assert!(!bob.get("/runs").await.body.contains(&mine));
    // Alice, an admin, sees everyone's runs; bob's own run is his.
    let bobs = Browser::run_id(&bob.run_tool("shared", &[]).await);
    app.finished(&bobs).await;
    assert_eq!(bob.get(&format!("/runs/{bobs}")).await.status, 200);
    assert_eq!(alice.get(&format!("/runs/{bobs}")).await.status, 200);
    let all = alice.get("/runs").await.body;
    assert!(all.contains(&bobs) && all.contains(&mine) && all.contains("All runs"));
}

// ---- 27, 28: uploads and downloads ----

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn uploads_land_inside_their_run_folder_whatever_their_name() {
    let app = app(
        "[tools.up]\ncommand = [\"./argv.sh\", \"{doc}\"]\n[tools.up.args.doc]\ntype = \"file\"\nmax_size = \"1KB\"\n",
        &[],
    );
    let mut b = alice(&app).await;
    for hostile in [
        "../../x",
        "/etc/passwd",
        "..\\..\\x.txt",
        "../.bashrc",
        &"n".repeat(10_000),
    ] {
        let csrf = b.get("/tools/up").await.csrf();
        let body = multipart(
            "XyZ",
            &[
                ("_csrf", None, csrf.as_bytes()),
                ("doc", Some(hostile), b"hello"),
            ],
        );
        let r = b.post_multipart("/tools/up", "XyZ", body).await;
        let id = Browser::run_id(&r);
        let run = app.finished(&id).await;
        let argv = argv_of(&run.output());
        let path = std::path::Path::new(&argv[0]);
        let uploads = run.dir.uploads();
        assert_eq!(
            path.parent().unwrap(),
            uploads,
            "{hostile:?} -> {}",
            path.display()
        );
        assert_eq!(std::fs::read(path).unwrap(), b"hello");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= 30 && !name.contains(".."), "{name}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(run.dir.uploads())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the uploads folder is private");
        let mode = std::fs::metadata(run.dir.output())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the output folder is private");
    }
    // A NUL in the part's header is not valid multipart at all.
    let runs_before = app.all_runs().await.len();
    let csrf = b.get("/tools/up").await.csrf();
    let body = multipart(
        "XyZ",
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("doc", Some("a\u{0}b.txt"), b"hello"),
        ],
    );
    assert_eq!(b.post_multipart("/tools/up", "XyZ", body).await.status, 400);
    assert_eq!(app.all_runs().await.len(), runs_before, "nothing ran");
}

#[tokio::test]
async fn uploads_over_max_size_are_413() {
    let app = app(
        "[tools.up]\ncommand = [\"./argv.sh\", \"{doc}\"]\n[tools.up.args.doc]\ntype = \"file\"\nmax_size = \"1KB\"\n",
        &[],
    );
    let mut b = alice(&app).await;
    let csrf = b.get("/tools/up").await.csrf();
    let body = multipart(
        "B",
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("doc", Some("big.txt"), &[b'x'; 2000]),
        ],
    );
    assert_eq!(b.post_multipart("/tools/up", "B", body).await.status, 413);
    // Too many parts is refused too.
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("_csrf", None, csrf.as_bytes())];
    for _ in 0..50 {
        parts.push(("doc", None, b""));
    }
    let r = b
        .post_multipart("/tools/up", "B", multipart("B", &parts))
        .await;
    assert_eq!(r.status, 413);
    assert!(app.all_runs().await.is_empty());
}

#[tokio::test]
async fn output_files_are_offered_for_download_and_only_they() {
    let script = "#!/bin/sh\nprintf 'a,b\\n' > \"$FTW_OUTPUT_DIR/data.csv\"\nprintf 'PNG' > \"$FTW_OUTPUT_DIR/chart.png\"\nprintf x > \"$FTW_OUTPUT_DIR/na me \\\"q\\\".txt\"\nln -s /etc/passwd \"$FTW_OUTPUT_DIR/link.txt\"\nmkdir \"$FTW_OUTPUT_DIR/sub\"\n";
    let app = app(
        "[tools.t]\ncommand = [\"./files.sh\"]\n",
        &[("files.sh", script)],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let run = app.finished(&id).await;
    let names: Vec<String> = run
        .snapshot()
        .files
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(
        names,
        ["chart.png", "data.csv", "na me \"q\".txt"],
        "no symlinks, no folders"
    );

    let csv = b.get(&format!("/runs/{id}/files/data.csv")).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body, "a,b\n");
    assert_eq!(
        csv.header("content-disposition"),
        "attachment; filename=\"data.csv\"; filename*=UTF-8''data%2Ecsv"
    );
    assert_eq!(csv.header("content-type"), "application/octet-stream");
    assert!(csv.header("content-security-policy").contains("sandbox"));
    let png = b.get(&format!("/runs/{id}/files/chart.png")).await;
    assert_eq!(png.header("content-type"), "image/png");
    assert!(png.header("content-disposition").starts_with("inline;"));
    let odd = b
        .get(&format!("/runs/{id}/files/na%20me%20%22q%22.txt"))
        .await;
    assert_eq!(odd.status, 200);
    assert!(odd.header("content-disposition").starts_with(
        "attachment; filename=\"na me _q_.txt\"; filename*=UTF-8''na%20me%20%22q%22%2Etxt"
    ));
    for bad in [
        "link.txt",
        "..%2F..%2Ftools.toml",
        "%2Fetc%2Fpasswd",
        "sub",
        "..",
        "missing.txt",
    ] {
        assert_eq!(
            b.get(&format!("/runs/{id}/files/{bad}")).await.status,
            404,
            "{bad}"
        );
    }
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(
        page.body
            .contains(&format!("<img src=\"/runs/{id}/files/chart.png\"")),
        "{}",
        page.body
    );
}

// ---- history, retention, concurrency ----

#[tokio::test]
async fn history_keeps_the_newest_runs_and_removes_the_folders_of_older_ones() {
    let app = app("[tools.t]\ncommand = [\"/bin/true\"]\n", &[]);
    let mut b = alice(&app).await;
    let mut ids = Vec::new();
    // Old runs go in batches, once the history is over its limit by 10 runs.
    for _ in 0..31 {
        let id = Browser::run_id(&b.run_tool("t", &[]).await);
        let run = app.finished(&id).await;
        ids.push((id, run.dir.output().to_path_buf()));
    }
    // keep_runs is 20 in the test app; older runs go in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.all_runs().await.len() > 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.all_runs().await.len(), 20);
    for (id, dir) in &ids[..11] {
        assert!(app.state.runs.get(id).await.is_none());
        // Folders are removed by the sweeper, off the request threads.
        while dir.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!dir.exists(), "{} kept", dir.display());
    }
    assert!(ids[11].1.exists());
    let page = b.get("/runs").await.body;
    assert!(page.contains(&ids[30].0) && !page.contains(&ids[0].0));
}

/// Waits (at most 30 s) until the run is running.
async fn until_running(app: &App, id: &str) {
    let run = app.state.runs.get(id).await.unwrap();
    let mut changes = run.watch();
    tokio::time::timeout(Duration::from_secs(30), async {
        while run.status() != ftw::runs::Status::Running {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("running within 30 s");
}

#[tokio::test]
async fn one_tools_backlog_fills_only_its_own_queue() {
    let app = app(
        "[tools.t]\ncommand = [\"/bin/sleep\", \"30\"]\nmax_concurrent = 1\n\n\
         [tools.quick]\ncommand = [\"/bin/echo\", \"done\"]\n\n\
         [server]\nmax_runs_per_user = 100\n",
        &[],
    );
    let mut b = alice(&app).await;
    let first = Browser::run_id(&b.run_tool("t", &[]).await);
    until_running(&app, &first).await;
    let mut ids = vec![first];
    for _ in 0..ftw::runs::MAX_QUEUED {
        ids.push(Browser::run_id(&b.run_tool("t", &[]).await));
    }
    assert_eq!(
        app.state.runs.get(&ids[1]).await.unwrap().status(),
        ftw::runs::Status::Queued,
        "max_concurrent = 1: the second waits"
    );
    let refused = b.run_tool("t", &[]).await;
    assert_eq!(refused.status, 429, "t's queue is full");
    assert!(!refused.header("retry-after").is_empty());
    assert!(
        refused.body.contains("waiting to start"),
        "{}",
        refused.body
    );
    // Global slots are free: another tool runs at once, backlog or not.
    let quick = Browser::run_id(&b.run_tool("quick", &[]).await);
    let run = app.finished(&quick).await;
    assert_eq!(run.status(), ftw::runs::Status::Succeeded);
    for id in &ids {
        app.state.runs.get(id).await.unwrap().cancel();
    }
}

#[tokio::test]
async fn a_user_has_at_most_max_runs_per_user_runs_at_once() {
    let app = app(
        "[tools.t]\ncommand = [\"/bin/sleep\", \"30\"]\n\n[server]\nmax_runs_per_user = 3\n",
        &[],
    );
    let mut a = alice(&app).await;
    let ids: Vec<String> = start_runs(&mut a, 3).await;
    let refused = a.run_tool("t", &[]).await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("max_runs_per_user"),
        "{}",
        refused.body
    );
    let mut b = bob(&app).await;
    let bobs = Browser::run_id(&b.run_tool("t", &[]).await);
    // One of alice's ends: she may start another.
    let one = app.state.runs.get(&ids[0]).await.unwrap();
    one.cancel();
    tokio::time::timeout(Duration::from_secs(30), one.finished())
        .await
        .expect("cancelled within 30 s");
    let again = a.run_tool("t", &[]).await;
    assert_eq!(again.status, 303, "{}", again.body);
    for id in ids.iter().chain([&bobs, &Browser::run_id(&again)]) {
        app.state.runs.get(id).await.unwrap().cancel();
    }
}

/// Starts `n` runs of `t`, one after another.
async fn start_runs(b: &mut Browser<'_>, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(Browser::run_id(&b.run_tool("t", &[]).await));
    }
    ids
}

// ---- the form page ----

#[tokio::test]
async fn the_form_mirrors_constraints_and_prefills_from_the_query_string() {
    let app = app(
        r#"
[tools.f]
command = ["./argv.sh"]
[tools.f.args.name]
type = "text"
min_length = 2
max_length = 10
pattern = "[a-z]+"
placeholder = "ada"
help = "Lower case."
[tools.f.args.n]
type = "int"
min = 1
max = 9
step = 2
default = 3
[tools.f.args.x]
type = "float"
[tools.f.args.pick]
type = "select"
options = ["a", "b"]
[tools.f.args.tags]
type = "multiselect"
options = ["t1", "t2"]
required = false
[tools.f.args.on]
type = "bool"
[tools.f.args.day]
type = "date"
min = 2026-01-01
[tools.f.args.doc]
type = "file"
accept = ".txt"
required = false
[tools.f.args.pw]
type = "password"
required = false
"#,
        &[],
    );
    let mut b = alice(&app).await;
    let page = b
        .get("/tools/f?name=bo&pick=b&tags=t2&on=true&pw=secret&n=5&unknown=1")
        .await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    for expected in [
        "enctype=\"multipart/form-data\"",
        "<input id=\"f-name\" name=\"name\" type=\"text\" class=\"w-medium\" value=\"bo\" placeholder=\"ada\" minlength=\"2\" maxlength=\"10\" pattern=\"[a-z]+\" required>",
        "<input id=\"f-n\" name=\"n\" type=\"number\" class=\"w-narrow\" value=\"5\" min=\"1\" max=\"9\" step=\"2\">",
        "<input id=\"f-x\" name=\"x\" type=\"number\" class=\"w-narrow\" step=\"any\" required>",
        "<option value=\"b\" selected>b</option>",
        "<input type=\"checkbox\" name=\"tags\" value=\"t2\" checked>",
        "<input type=\"checkbox\" id=\"f-on\" name=\"on\" value=\"true\" checked>",
        "<input id=\"f-day\" name=\"day\" type=\"date\" class=\"w-narrow\" min=\"2026-01-01\" required>",
        "<input id=\"f-doc\" name=\"doc\" type=\"file\" class=\"w-wide\" accept=\".txt\">",
        "<span class=\"help\">Lower case.</span>",
    ] {
        assert!(body.contains(expected), "missing {expected}\n{body}");
    }
    assert!(!body.contains("secret"), "a password is never pre-filled");
    // Without a query, the default shows.
    let plain = b.get("/tools/f").await;
    assert!(
        plain
            .body
            .contains("name=\"n\" type=\"number\" class=\"w-narrow\" value=\"3\"")
    );
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_login_and_back_to_the_form() {
    let app = app("[tools.t]\ncommand = [\"./argv.sh\"]\n", &[]);
    let mut b = app.browser();
    let r = b.get("/tools/t?x=1").await;
    assert_eq!(r.header("location"), "/login?next=%2Ftools%2Ft%3Fx%3D1");
    assert_eq!(b.get("/runs").await.status, 303);
    assert_eq!(b.get("/runs/whatever").await.status, 303);
}

#[tokio::test]
async fn the_run_page_works_without_javascript() {
    let app = app("[tools.t]\ncommand = [\"/bin/sleep\", \"30\"]\n", &[]);
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("t", &[]).await);
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(
        page.body
            .contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>")
    );
    assert!(page.body.contains("action=\"/runs/") && page.body.contains("/cancel\""));
    app.state.runs.get(&id).await.unwrap().cancel();
    app.finished(&id).await;
    let done = b.get(&format!("/runs/{id}")).await;
    assert!(
        !done.body.contains("http-equiv=\"refresh\""),
        "no refresh once finished"
    );
    assert!(done.body.contains("cancelled"));
}

#[tokio::test]
async fn a_run_that_could_not_start_looks_like_an_error_with_nothing_to_download() {
    let app = app(
        "[tools.gone]\ncommand = [\"./gone.sh\"]\n",
        &[("gone.sh", "#!/bin/sh\necho hi\n")],
    );
    std::fs::remove_file(app.dir.path().join("gone.sh")).unwrap();
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("gone", &[]).await);
    app.finished(&id).await;
    let page = b.get(&format!("/runs/{id}")).await.body;
    assert!(page.contains(r#"<main class="run problem""#), "{page}");
    assert!(
        page.contains("This run could not start: cannot start"),
        "{page}"
    );
    assert!(page.contains(r#"<pre class="output" data-output aria-live="polite" hidden>"#));
    assert!(page.contains(r#"data-download hidden>Download output"#));
    assert!(
        page.contains(r#"data-no-output hidden>"#),
        "no 'printed nothing' either"
    );
}

#[tokio::test]
async fn a_failed_run_is_marked_and_a_silent_success_says_so() {
    let app = app(
        "[tools.fail]\ncommand = [\"/bin/sh\", \"-c\", \"echo oops >&2; exit 4\"]\n\n[tools.quiet]\ncommand = [\"/bin/true\"]\n",
        &[],
    );
    let mut b = alice(&app).await;
    let id = Browser::run_id(&b.run_tool("fail", &[]).await);
    app.finished(&id).await;
    let page = b.get(&format!("/runs/{id}")).await.body;
    assert!(page.contains(r#"<main class="run problem""#));
    assert!(page.contains("This run failed (exit code 4)."), "{page}");
    assert!(page.contains("oops"));

    let id = Browser::run_id(&b.run_tool("quiet", &[]).await);
    app.finished(&id).await;
    let page = b.get(&format!("/runs/{id}")).await.body;
    assert!(page.contains(r#"<main class="run""#));
    assert!(page.contains(r#"data-problem hidden>"#));
    assert!(page.contains(r#"<p class="empty" data-no-output>The tool printed nothing.</p>"#));
}

#[tokio::test]
async fn forms_say_their_constraints_and_mark_what_is_required() {
    let app = app(
        r#"
[tools.t]
command = ["/bin/echo", "{n}", "{tags}", "{label}"]
[tools.t.args.n]
type = "int"
min = 1
max = 60
step = 5
[tools.t.args.tags]
type = "multiselect"
options = ["a", "b", "c"]
max = 2
required = false
[tools.t.args.label]
type = "text"
min_length = 2
max_length = 8
required = false
"#,
        &[],
    );
    let mut b = alice(&app).await;
    let page = b.get("/tools/t").await.body;
    assert!(
        page.contains(r#"<span class="rules">A whole number, from 1 to 60, in steps of 5.</span>"#),
        "{page}"
    );
    assert!(page.contains(r#"<span class="rules">Choose at most 2.</span>"#));
    assert!(page.contains(r#"<span class="rules">2 to 8 characters.</span>"#));
    assert!(page.contains(r#"class="w-narrow""#) && page.contains(r#"class="w-medium""#));
    // n is required (no default): marked, and the legend explains the mark.
    assert!(
        page.contains(r#"N <span class="req" aria-hidden="true">*</span></label>"#),
        "{page}"
    );
    assert!(page.contains(r#"<p class="legend">"#));
}
