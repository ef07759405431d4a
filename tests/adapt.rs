//! Forms that adapt (issue 15), in-process with real options commands: options from a
//! command with labels and a cache, submissions checked against what the server
//! computes, dependent choices through the options endpoint and through the "Update
//! choices" button, `show_if`, hostile options output, and the manifest's rules.

use crate::support::app::{App, Browser};
use crate::support::{HASH_A, Test};

const ALICE_PW: &str = "hunter2-but-longer";

/// Lists databases for an environment (one call is one line in `calls`); labels after a
/// tab. Anything else is refused on stderr.
const LIST_SH: &str = r#"#!/bin/sh
echo "$FTW_USER $*" >> calls
case "$1" in
  prod) printf 'orders\tOrders (prod)\nusers\n' ;;
  staging) echo scratch ;;
  *) echo "unknown env $1" >&2; exit 3 ;;
esac
"#;

/// Prints whatever `$1` names: the hostile outputs.
const HOSTILE_SH: &str = r#"#!/bin/sh
case "$1" in
  nul) printf 'ok\nbad\000value\n' ;;
  long) echo ok; head -c 100000 /dev/zero | tr '\0' x; echo ;;
  echo) printf '%s\n' "$2" ;;
  json) echo '[{"value": "a", "label": "<b>A</b>"}, "b"]' ;;
  slow) exec sleep 30 ;;
  *) exit 1 ;;
esac
"#;

fn manifest() -> String {
    format!(
        r#"
[auth.users]
alice = "{HASH_A}"

[tools.restore]
command = ["./show.sh", "{{env}}", "{{db}}", "{{level}}"]

[tools.restore.args.env]
type = "select"
options = ["prod", "staging"]

[tools.restore.args.db]
type = "select"
options_from = ["./list.sh", "{{env}}"]
options_ttl = "1h"

[tools.restore.args.mode]
type = "select"
options = ["simple", "advanced"]
default = "simple"

[tools.restore.args.level]
type = "int"
show_if = {{ field = "mode", equals = "advanced" }}

[tools.flags]
command = ["./show.sh", "{{extra}}"]

[tools.flags.args.verbose]
type = "bool"
default = true

[tools.flags.args.extra]
type = "text"
show_if = {{ field = "verbose", equals = true }}

[tools.hostile]
command = ["./show.sh", "{{pick}}"]

[tools.hostile.args.kind]
type = "text"

[tools.hostile.args.what]
type = "text"
required = false

[tools.hostile.args.pick]
type = "select"
options_from = ["./hostile.sh", "{{kind}}", "{{what}}"]
"#
    )
}

fn app() -> App {
    App::with_files(
        &manifest(),
        &[
            ("list.sh", LIST_SH),
            ("hostile.sh", HOSTILE_SH),
            ("show.sh", "#!/bin/sh\necho \"$#: $*\"\n"),
        ],
    )
}

async fn signed_in(app: &App) -> Browser<'_> {
    let mut b = app.browser();
    assert_eq!(b.login("alice", ALICE_PW).await.status, 303);
    b
}

fn calls(app: &App) -> Vec<String> {
    std::fs::read_to_string(app.dir.path().join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The values of the `<option>`s of select `name` on a page.
fn options_of(page: &str, name: &str) -> Vec<String> {
    let start = page
        .find(&format!("<select id=\"f-{name}\""))
        .unwrap_or_else(|| panic!("no select {name}"));
    let end = start + page[start..].find("</select>").unwrap();
    page[start..end]
        .split("<option value=\"")
        .skip(1)
        .map(|o| o[..o.find('"').unwrap()].to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

#[tokio::test]
async fn options_come_from_the_command_and_a_submission_is_checked_against_them() {
    let app = app();
    let mut b = signed_in(&app).await;
    let form = b.get("/tools/restore?env=prod").await;
    assert_eq!(form.status, 200);
    assert_eq!(options_of(&form.body, "db"), ["orders", "users"]);
    assert!(
        form.body.contains(">Orders (prod)</option>"),
        "labels are shown"
    );
    assert!(form.body.contains("data-options-from=\"env\""));
    // Shown again: the answer is kept (options_ttl), per user and values.
    b.get("/tools/restore?env=prod").await;
    assert_eq!(calls(&app), ["alice prod"]);

    // A value the browser may have been shown for another environment is refused: the
    // server checks against the options for the values sent, computed by itself.
    let csrf = form.csrf();
    let refused = b
        .post(
            "/tools/restore",
            &[("_csrf", &csrf), ("env", "prod"), ("db", "scratch")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("must be one of the options"),
        "{}",
        refused.body
    );
    let ok = b
        .post(
            "/tools/restore",
            &[("_csrf", &csrf), ("env", "staging"), ("db", "scratch")],
        )
        .await;
    let run = app.finished(&Browser::run_id(&ok)).await;
    assert_eq!(
        run.output(),
        b"2: staging scratch\n",
        "level is hidden: not passed"
    );
    assert_eq!(calls(&app), ["alice prod", "alice staging"]);
}

#[tokio::test]
async fn dependent_choices_come_from_the_options_endpoint_with_the_csrf_header() {
    let app = app();
    let mut b = signed_in(&app).await;
    let csrf = b.get("/tools/restore").await.csrf();
    let ask = |env: &'static str| vec![("env", env), ("mode", "simple")];
    let r = b
        .post_with(
            "/api/tools/restore/options",
            &ask("staging"),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        answer["fields"]["db"]["options"],
        serde_json::json!([{ "value": "scratch", "label": "scratch" }])
    );
    assert_eq!(answer["hidden"], serde_json::json!(["level"]));
    // Nothing chosen yet: the answer says what to do, and nothing ran for it.
    let r = b
        .post_with(
            "/api/tools/restore/options",
            &ask(""),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(answer["fields"]["db"]["problem"], "choose Env first");
    assert_eq!(calls(&app), ["alice staging"]);
    // It runs commands: without the session's CSRF header it is refused.
    let r = b.post("/api/tools/restore/options", &ask("prod")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(calls(&app), ["alice staging"]);
}

#[tokio::test]
async fn without_javascript_update_choices_shows_the_form_again_and_runs_nothing() {
    let app = app();
    let mut b = signed_in(&app).await;
    let form = b.get("/tools/restore").await;
    assert!(
        form.body.contains("name=\"_refresh\""),
        "the button is offered"
    );
    assert_eq!(options_of(&form.body, "db"), Vec::<String>::new());
    assert!(form.body.contains("No options: choose Env first."));
    let csrf = form.csrf();
    let again = b
        .post(
            "/tools/restore",
            &[
                ("_csrf", &csrf),
                ("env", "prod"),
                ("mode", "advanced"),
                ("_refresh", "1"),
            ],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(options_of(&again.body, "db"), ["orders", "users"]);
    assert!(
        again.body.contains("<option value=\"prod\" selected>"),
        "values kept"
    );
    // The advanced field is shown now (not hidden and disabled).
    let level = &again.body[again.body.find("id=\"field-level\"").unwrap()..];
    assert!(
        !level[..level.find('>').unwrap()].contains("hidden"),
        "{level:.200}"
    );
    assert!(app.all_runs().await.is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_hidden_field_is_neither_required_nor_passed_and_a_shown_one_is_checked() {
    let app = app();
    let mut b = signed_in(&app).await;
    let form = b.get("/tools/restore").await;
    let level = &form.body[form
        .body
        .find("<fieldset class=\"field\" id=\"field-level\"")
        .unwrap()..];
    assert!(level[..level.find('>').unwrap()].contains("hidden disabled"));
    assert!(level.contains("data-show-equals=\"advanced\""));
    let csrf = form.csrf();
    // Sent anyway for a hidden field, even invalid: ignored, not passed.
    let ok = b
        .post(
            "/tools/restore",
            &[
                ("_csrf", &csrf),
                ("env", "prod"),
                ("db", "users"),
                ("level", "abc"),
            ],
        )
        .await;
    let run = app.finished(&Browser::run_id(&ok)).await;
    assert_eq!(run.output(), b"2: prod users\n");
    // Shown: required and checked like any field.
    let fields = [
        ("_csrf", csrf.as_str()),
        ("env", "prod"),
        ("db", "users"),
        ("mode", "advanced"),
    ];
    let refused = b.post("/tools/restore", &fields).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("Level is required."),
        "{}",
        refused.body
    );
    let mut with_level = fields.to_vec();
    with_level.push(("level", "7"));
    let ok = b.post("/tools/restore", &with_level).await;
    let run = app.finished(&Browser::run_id(&ok)).await;
    assert_eq!(run.output(), b"3: prod users 7\n");
}

#[tokio::test]
async fn an_unticked_box_hides_its_field_even_when_its_default_is_ticked() {
    let app = app();
    let mut b = signed_in(&app).await;
    let off = b.run_tool("flags", &[("extra", "x")]).await;
    let run = app.finished(&Browser::run_id(&off)).await;
    assert_eq!(
        run.output(),
        b"0: \n",
        "unticked: extra is hidden, not passed"
    );
    let on = b
        .run_tool("flags", &[("verbose", "true"), ("extra", "x")])
        .await;
    let run = app.finished(&Browser::run_id(&on)).await;
    assert_eq!(run.output(), b"1: x\n");
}

#[tokio::test]
async fn hostile_options_output_is_refused_whole_and_values_reach_it_as_one_element() {
    let app = app();
    let mut b = signed_in(&app).await;
    let nul = b.get("/tools/hostile?kind=nul").await;
    assert!(
        nul.body
            .contains("No options: its command printed a NUL character on line 2."),
        "{}",
        nul.body
    );
    assert!(options_of(&nul.body, "pick").is_empty(), "not half a list");
    let long = b.get("/tools/hostile?kind=long").await;
    assert!(
        long.body.contains("100000 bytes on line 2"),
        "{}",
        long.body
    );
    let failed = b.get("/tools/hostile?kind=other").await;
    assert!(failed.body.contains("its command failed (exit code 1)"));
    let slow = b.get("/tools/hostile?kind=slow").await;
    assert!(
        slow.body.contains("its command took longer than 5 s"),
        "{}",
        slow.body
    );
    // Submitting anyway: refused with the reason, nothing runs.
    let csrf = nul.csrf();
    let r = b
        .post(
            "/tools/hostile",
            &[("_csrf", &csrf), ("kind", "nul"), ("pick", "ok")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("has no options: its command printed a NUL"),
        "{}",
        r.body
    );
    // A value with shell syntax is one argv element of the options command, and the
    // option it prints is one element of the run.
    let sneaky = "$(id); rm -rf / `x` 'q\"";
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("kind", "echo")
        .append_pair("what", sneaky)
        .finish();
    let page = b.get(&format!("/tools/hostile?{query}")).await;
    assert_eq!(options_of(&page.body, "pick").len(), 1, "{}", page.body);
    let r = b
        .post(
            "/tools/hostile",
            &[
                ("_csrf", &csrf),
                ("kind", "echo"),
                ("what", sneaky),
                ("pick", sneaky),
            ],
        )
        .await;
    let run = app.finished(&Browser::run_id(&r)).await;
    assert_eq!(run.output(), format!("1: {sneaky}\n").as_bytes());
    // JSON labels are escaped on the page.
    let json = b.get("/tools/hostile?kind=json").await;
    assert_eq!(options_of(&json.body, "pick"), ["a", "b"], "{}", json.body);
    assert!(
        json.body.contains("&#60;b&#62;A&#60;/b&#62;"),
        "{}",
        json.body
    );
    assert!(!json.body.contains("<b>A</b>"));
}

#[test]
fn the_manifest_check_explains_adapting_fields() {
    let manifest = r#"
[tools.t]
command = ["echo", "{a}", "{b}", "{c}", "{d}", "{e}", "{f}"]

[tools.t.args.a]
type = "select"
options = ["x"]
options_from = ["echo", "x"]

[tools.t.args.b]
type = "select"
options_from = ["echo", "{b}", "{secret}"]

[tools.t.args.secret]
type = "password"

[tools.t.args.c]
type = "text"
show_if = { field = "modes", equals = "x" }

[tools.t.args.d]
type = "text"
show_if = { field = "a", equals = "y" }

[tools.t.args.mode]
type = "select"
options = ["simple", "advanced"]

[tools.t.args.h]
type = "text"
show_if = { field = "mode", equals = "y" }

[tools.t.args.e]
type = "select"
options_from = ["echo", "{f}"]

[tools.t.args.f]
type = "text"
show_if = { field = "e", equals = "1" }

[tools.t.args.g]
type = "int"
options_ttl = "5s"
"#;
    let out = Test::new()
        .manifest(manifest)
        .args(&["check", "tools.toml"])
        .run();
    out.code(2);
    out.stderr_has("`options` and `options_from` are both given");
    out.stderr_has("`options_from` of `b` cannot use `{b}`");
    out.stderr_has("cannot use `{secret}`: a password goes to the run only");
    out.stderr_has(
        "`show_if` names \"modes\", which is not an argument of this tool; did you mean `mode`?",
    );
    assert!(
        !out.stderr.contains("names \"a\""),
        "a is declared (and wrong elsewhere)"
    );
    out.stderr_has("`mode` has no option \"y\"");
    out.stderr_has("these fields wait on each other (e -> f -> e)");
    out.stderr_has("`options_ttl` does not apply to type \"int\"");
}
