//! The hostile-input corpus: every bad input named in security.md, sent to the real
//! `ftw serve` over real sockets, one table row each. Each row says what the response
//! must be and whether a program may run; every run the tools make is recorded in
//! `ran.log`, so "nothing ran" is checked on disk, and a shell that interpreted a value
//! would leave a `pwned` file behind.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

mod attacks;

use crate::support::server::{Server, Wire};
use crate::support::{HASH_A, HASH_B, Test};

pub(super) const ALICE_PW: &str = "hunter2-but-longer";
pub(super) const BOB_PW: &str = "second";

/// Appends one line per run to `ran.log`: every argument hex-encoded, so the test sees
/// exactly which bytes arrived as which element.
pub(super) const RECORD_SH: &str = r#"#!/bin/sh
for a in "$@"; do
  printf '%s ' "$(printf '%s' "$a" | od -An -v -tx1 | tr -d ' \n')"
done >> ran.log
printf '\n' >> ran.log
"#;

/// Records the stored upload's path and contents.
pub(super) const UPLOAD_SH: &str = r#"#!/bin/sh
printf 'upload %s %s\n' "$1" "$(cat "$1")" >> ran.log
"#;

pub(super) fn manifest() -> String {
    format!(
        r#"
[auth.users]
alice = "{HASH_A}"
bob = "{HASH_B}"

[tools.t]
command = ["./record.sh", "--", "{{name}}", "{{code}}", "{{n}}", "{{pick}}", "{{day}}"]
[tools.t.args.name]
type = "text"
max_length = 64
required = false
[tools.t.args.code]
type = "text"
pattern = "[a-z]{{3}}"
default = "abc"
[tools.t.args.n]
type = "int"
min = 1
max = 10
default = 5
[tools.t.args.pick]
type = "select"
options = ["a", "b"]
default = "a"
[tools.t.args.day]
type = "date"
required = false

[tools.up]
command = ["./upload.sh", "{{file}}"]
[tools.up.args.file]
type = "file"
max_size = "1KB"

[tools.mine]
command = ["./record.sh", "alice-only"]
allow = ["alice"]
"#
    )
}

/// Who sends a request, as which session cookie.
#[derive(Clone, Copy, Debug, PartialEq)]
enum As {
    Alice,
    Bob,
    Nobody,
    /// Alice's cookie with one character changed in the middle.
    Tampered,
    /// Alice's cookie with its last characters cut off.
    Truncated,
    /// Alice's cookie value under another cookie name.
    Renamed,
    /// A cookie that was valid until alice signed out.
    SignedOut,
}

/// The CSRF token a request carries.
#[derive(Clone, Copy, Debug)]
enum Csrf {
    /// The sender's own token.
    Own,
    None,
    /// Bob's token on alice's request.
    Foreign,
    Wrong,
}

/// What must have run once the response is in.
#[derive(Clone, Debug)]
enum Ran {
    Nothing,
    /// `record.sh` ran with exactly these arguments.
    Argv(Vec<String>),
    /// `upload.sh` ran with a stored file holding these contents.
    Upload(&'static str),
}

#[derive(Clone, Debug)]
struct Case {
    what: String,
    method: &'static str,
    path: String,
    who: As,
    csrf: Csrf,
    content_type: &'static str,
    /// Raw body (the CSRF field is added for forms and multipart).
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    /// Declared Content-Length when the body itself is not sent.
    declared: Option<u64>,
    status: u16,
    location: Option<&'static str>,
    ran: Ran,
}

fn case(what: impl Into<String>, method: &'static str, path: &str) -> Case {
    Case {
        what: what.into(),
        method,
        path: path.into(),
        who: As::Alice,
        csrf: Csrf::Own,
        content_type: "",
        body: Vec::new(),
        headers: Vec::new(),
        declared: None,
        status: 0,
        location: None,
        ran: Ran::Nothing,
    }
}

/// A form post to tool `t` with these fields.
fn form(what: impl Into<String>, fields: &[(&str, &str)]) -> Case {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    Case {
        content_type: "application/x-www-form-urlencoded",
        body: body.into_bytes(),
        ..case(what, "POST", "/tools/t")
    }
}

/// An upload to tool `up` under this client file name.
fn upload(what: impl Into<String>, filename: &str, contents: &str) -> Case {
    let part = format!(
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n{contents}\r\n--B--\r\n"
    );
    Case {
        content_type: "multipart/form-data; boundary=B",
        body: part.into_bytes(),
        ..case(what, "POST", "/tools/up")
    }
}

/// A JSON API call creating a run of tool `t`.
fn api(what: impl Into<String>, json: &str) -> Case {
    Case {
        content_type: "application/json",
        body: json.as_bytes().to_vec(),
        ..case(what, "POST", "/api/tools/t/runs")
    }
}

impl Case {
    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    fn who(mut self, who: As) -> Self {
        self.who = who;
        self
    }
    fn csrf(mut self, csrf: Csrf) -> Self {
        self.csrf = csrf;
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn urlencoded(mut self) -> Self {
        self.content_type = "application/x-www-form-urlencoded";
        self
    }
    fn location(mut self, location: &'static str) -> Self {
        self.location = Some(location);
        self
    }
    fn runs(mut self, name: &str) -> Self {
        self.ran = Ran::Argv(
            ["--", name, "abc", "5", "a"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        self
    }
    fn stores(mut self, contents: &'static str) -> Self {
        self.ran = Ran::Upload(contents);
        self
    }
    fn declared(mut self, length: u64) -> Self {
        self.declared = Some(length);
        self
    }
}

/// Values a shell would act on; each must reach the program as one plain argument.
const SHELL: &[&str] = &[
    "$(touch pwned)",
    "`touch pwned`",
    ";touch pwned",
    "|touch pwned",
    "&&touch pwned",
    "x\ntouch pwned",
    "x\r\ntouch pwned",
    "'; touch pwned; '",
    "\"; touch pwned; \"",
    "${IFS}touch${IFS}pwned",
    "$HOME ${PATH}",
    ">pwned",
    "<pwned",
    "*",
    "~",
    "\\",
];

/// Values a program would take for options; after the manifest's `--`, just text.
const OPTIONS: &[&str] = &[
    "--help",
    "-rf",
    "--output=pwned",
    "-",
    "--",
    "-e touch pwned",
];

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();

    // 20: shell metacharacters and option injection: one plain argv element each.
    for value in SHELL.iter().chain(OPTIONS) {
        cases.push(
            form(format!("text {value:?}"), &[("name", value)])
                .status(303)
                .runs(value),
        );
        cases.push(
            api(
                format!("API text {value:?}"),
                &serde_json::json!({ "args": { "name": value } }).to_string(),
            )
            .status(201)
            .runs(value),
        );
    }
    for value in [
        "ünïcødé ✓ 日本",
        "\u{202e}evil",
        "\u{feff}bom",
        "a\u{7f}b",
        "\t",
    ] {
        cases.push(
            form(format!("text {value:?}"), &[("name", value)])
                .status(303)
                .runs(value),
        );
    }

    // 20: NUL is refused, in forms and in JSON.
    cases.push(form("NUL in text", &[("name", "a\0b")]).status(422));
    cases.push(form("NUL alone", &[("name", "\0")]).status(422));
    cases.push(api("NUL in JSON", r#"{"args":{"name":"a\u0000b"}}"#).status(422));
    cases.push(form("invalid UTF-8", &[]).status(400));
    let last = cases.last_mut().unwrap();
    last.body = b"name=%FF%FE".to_vec();

    // 22: huge values and every type checked by the server.
    let long = "x".repeat(65);
    cases.push(form("text over max_length", &[("name", &long)]).status(422));
    let huge = "y".repeat(900_000);
    cases.push(form("900 KB value", &[("name", &huge)]).status(422));
    for code in [
        "abcd", "xabc", "abc\n", "\nabc", "ab", "ABC", "a.c", "abc\0", "ab c",
    ] {
        cases.push(form(format!("partial regex match {code:?}"), &[("code", code)]).status(422));
    }
    for n in [
        "0",
        "11",
        "-1",
        "5.0",
        "1e1",
        "0x5",
        " 5",
        "5 ",
        "5abc",
        "٥",
        "99999999999999999999999",
    ] {
        cases.push(form(format!("int {n:?}"), &[("n", n)]).status(422));
    }
    // An explicit plus sign is read as the number; the program gets "5".
    let mut plus = form("int \"+5\"", &[("n", "+5")]).status(303);
    plus.ran = Ran::Argv(["--", "abc", "5", "a"].map(String::from).to_vec());
    cases.push(plus);
    for pick in ["A", "a ", " a", "c", "a\0", "a,b"] {
        cases.push(form(format!("select {pick:?}"), &[("pick", pick)]).status(422));
    }
    for day in [
        "2026-02-30",
        "2026-13-01",
        "yesterday",
        "2026-1-1",
        "2026-01-01T00:00",
    ] {
        cases.push(form(format!("date {day:?}"), &[("day", day)]).status(422));
    }
    cases.push(
        form(
            "two values for one text field",
            &[("name", "a"), ("name", "b")],
        )
        .status(422),
    );

    // 22: undeclared fields are refused, never passed on.
    for field in [
        "evil",
        "--verbose",
        "name[]",
        "Name",
        "__proto__",
        "_csrf2",
        "",
    ] {
        cases.push(form(format!("undeclared field {field:?}"), &[(field, "1")]).status(422));
    }
    cases.push(api("undeclared JSON field", r#"{"args":{"evil":"1"}}"#).status(422));
    cases.push(api("array for a text field", r#"{"args":{"name":["a","b"]}}"#).status(422));
    cases.push(api("object for a text field", r#"{"args":{"name":{"a":1}}}"#).status(400));
    cases.push(api("not JSON", "name=x").status(400));
    cases.push(api("truncated JSON", r#"{"args":{"name":"#).status(400));
    cases.push(api("args not an object", r#"{"args":["x"]}"#).status(400));
    cases.push(api("unknown top-level key", r#"{"args":{},"cmd":"id"}"#).status(400));

    // 27: traversal file names land under a name ftw chose, inside the run's folder.
    for name in [
        "../../pwned",
        "/etc/passwd",
        "..\\..\\pwned",
        "%2e%2e%2fpwned",
        ".",
        "..",
    ] {
        cases.push(
            upload(format!("upload named {name:?}"), name, "hello")
                .status(303)
                .stores("hello"),
        );
    }
    // A NUL cannot be in a header: the part is refused. A line break ends the part's
    // header early, so the field is no file at all; an empty name means no file chosen.
    cases.push(upload("upload named \"a\\0b\"", "a\0b", "x").status(400));
    cases.push(upload("upload name with CRLF", "pwned\r\nX-Evil: 1", "x").status(422));
    cases.push(upload("upload with an empty name", "", "x").status(422));
    let long_name = "n".repeat(10_000);
    cases.push(
        upload("upload with a 10 KB name", &long_name, "hi")
            .status(303)
            .stores("hi"),
    );
    cases.push(upload("upload over max_size", "big.txt", &"z".repeat(2000)).status(413));
    cases.push(
        form("text sent for a file field", &[("file", "/etc/passwd")])
            .status(422)
            .with_path("/tools/up"),
    );

    // 15: open redirects after sign-in fall back to "/".
    for next in [
        "javascript:alert(1)",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        " //evil.example",
        "/\t/evil.example",
    ] {
        cases.push(
            case(format!("sign-in with next {next:?}"), "POST", "/login")
                .who(As::Nobody)
                .login_next(next)
                .status(303)
                .location("/"),
        );
    }

    // Encoded line breaks stay encoded: a same-site path, no header injection.
    cases.push(
        case(
            "sign-in with next \"/%0d%0aSet-Cookie:x=1\"",
            "POST",
            "/login",
        )
        .who(As::Nobody)
        .login_next("/%0d%0aSet-Cookie:x=1")
        .status(303)
        .location("/%0d%0aSet-Cookie:x=1"),
    );

    // 4, 6: cookies that are not a current session carry no rights.
    for who in [As::Tampered, As::Truncated, As::Renamed, As::SignedOut] {
        cases.push(
            form(format!("form post with a {who:?} cookie"), &[("name", "x")])
                .who(who)
                .csrf(Csrf::Wrong)
                .status(303)
                .location("/login?next=%2Ftools%2Ft"),
        );
        cases.push(
            api(format!("API call with a {who:?} cookie"), "{}")
                .who(who)
                .csrf(Csrf::Wrong)
                .status(401),
        );
    }

    // 16: cross-site posts and missing or wrong CSRF tokens.
    cases.push(
        form("no CSRF token", &[("name", "x")])
            .csrf(Csrf::None)
            .status(403),
    );
    cases.push(
        form("wrong CSRF token", &[("name", "x")])
            .csrf(Csrf::Wrong)
            .status(403),
    );
    cases.push(
        form("another session's CSRF token", &[("name", "x")])
            .csrf(Csrf::Foreign)
            .status(403),
    );
    cases.push(
        form("cross-site Origin", &[("name", "x")])
            .header("Origin", "https://evil.example")
            .status(403),
    );
    cases.push(
        form("null Origin", &[("name", "x")])
            .header("Origin", "null")
            .status(403),
    );
    cases.push(
        form("Sec-Fetch-Site: cross-site", &[("name", "x")])
            .header("Sec-Fetch-Site", "cross-site")
            .status(403),
    );
    cases.push(
        api("API write without X-CSRF-Token", "{}")
            .csrf(Csrf::None)
            .status(403),
    );
    cases.push(
        case("cross-site sign-in", "POST", "/login")
            .who(As::Nobody)
            .login_next("/")
            .header("Origin", "https://evil.example")
            .status(403),
    );
    cases.push(
        case("cancel without CSRF token", "POST", "/runs/RUN/cancel")
            .urlencoded()
            .csrf(Csrf::None)
            .status(403),
    );
    // No GET runs anything.
    cases.push(
        case(
            "GET with form values in the query",
            "GET",
            "/tools/t?name=x",
        )
        .status(200),
    );
    cases.push(case("GET on the API's run route", "GET", "/api/tools/t/runs").status(405));

    // 25: a tool bob may not run is 404 everywhere; so are alice's runs.
    cases.push(
        form("bob posts to alice's tool", &[])
            .with_path("/tools/mine")
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        case("bob opens alice's tool", "GET", "/tools/mine")
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        api("bob calls alice's tool over the API", "{}")
            .with_path("/api/tools/mine/runs")
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        case("bob opens alice's run", "GET", "/runs/RUN")
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        case("bob streams alice's run", "GET", "/runs/RUN/events")
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        case("bob cancels alice's run", "POST", "/runs/RUN/cancel")
            .urlencoded()
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        case("bob reads alice's run", "GET", "/api/runs/RUN")
            .who(As::Bob)
            .status(404),
    );
    cases.push(
        case(
            "a run id that does not exist",
            "GET",
            "/runs/AAAAAAAAAAAAAAAAAAAAAA",
        )
        .status(404),
    );
    cases.push(case("a run id with traversal", "GET", "/runs/..%2F..%2Fetc").status(404));
    // 28: only files inside the run's output folder.
    for file in ["..%2F..%2Fetc%2Fpasswd", "..", "%2Fetc%2Fpasswd", "x%00y"] {
        cases.push(
            case(
                format!("run file {file:?}"),
                "GET",
                &format!("/runs/RUN/files/{file}"),
            )
            .status(404),
        );
    }

    // 26: oversized bodies are refused before authentication and parsing.
    cases.push(
        form("2 MB declared form body", &[])
            .declared(2_000_000)
            .status(413),
    );
    cases.push(
        form("2 MB declared, signed out", &[])
            .who(As::Nobody)
            .csrf(Csrf::None)
            .declared(2_000_000)
            .status(413),
    );
    cases.push(
        case("2 MB declared sign-in", "POST", "/login")
            .who(As::Nobody)
            .csrf(Csrf::None)
            .declared(2_000_000)
            .status(413),
    );
    cases.push(
        upload("100 MB declared upload", "big.txt", "")
            .declared(100_000_000)
            .status(413),
    );
    cases.push(
        api("2 MB declared API body", "")
            .declared(2_000_000)
            .status(413),
    );
    cases.push(
        case("a 70 KB header", "GET", "/")
            .header("X-Filler", &"h".repeat(70_000))
            .status(431),
    );
    cases.push(
        case("a 40 KB header, signed out", "GET", "/login")
            .who(As::Nobody)
            .header("X-Filler", &"h".repeat(40_000))
            .header("X-Filler2", &"h".repeat(40_000))
            .status(431),
    );
    cases.push(case("a 20 KB URL", "GET", &format!("/?q={}", "u".repeat(20_000))).status(414));
    cases.push(case("a 70 KB URL", "GET", &format!("/?q={}", "u".repeat(70_000))).status(414));

    cases
}

impl Case {
    fn with_path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }
    /// A sign-in form for alice with this `next`.
    fn login_next(mut self, next: &str) -> Self {
        self.content_type = "application/x-www-form-urlencoded";
        self.body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("username", "alice")
            .append_pair("password", ALICE_PW)
            .append_pair("next", next)
            .finish()
            .into_bytes();
        self
    }
}

/// A signed-in user's cookie pair and CSRF token.
#[derive(Clone)]
pub(super) struct Session {
    pub(super) cookie: String,
    pub(super) csrf: String,
}

pub(super) fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

pub(super) fn csrf_in(body: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker).expect("a CSRF field") + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_string()
}

/// Sends raw bytes and reads the response; the body, if any, is written on another
/// thread so a server that answers early is read, not fought.
pub(super) fn exchange(server: &Server, head: String, body: Vec<u8>) -> Wire {
    let mut stream = server.connect();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
        let _ = writer.flush();
    });
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    sender.join().unwrap();
    crate::support::server::parse(&raw)
}

pub(super) fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Wire {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    exchange(server, head, body.to_vec())
}

pub(super) fn sign_in(server: &Server, user: &str, password: &str) -> Session {
    let form = request(server, "GET", "/login", &[], b"");
    let login = pair(form.header("set-cookie").unwrap());
    let body = format!(
        "_csrf={}&username={user}&password={password}&next=%2F",
        csrf_in(&form.body)
    );
    let r = request(
        server,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &login),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 303, "sign-in as {user}: {}", r.body);
    let cookie = pair(
        r.all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("ftw_session"))
            .unwrap(),
    );
    let page = request(server, "GET", "/tools/t", &[("Cookie", &cookie)], b"");
    assert_eq!(page.status, 200, "{}", page.body);
    Session {
        csrf: csrf_in(&page.body),
        cookie,
    }
}

/// The lines of `ran.log` so far.
fn ran(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ran.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Starts a run of `t` as alice and waits for it to end; returns its id.
pub(super) fn finished_run(server: &Server, alice: &Session) -> String {
    let body = format!("_csrf={}&name=sentinel", alice.csrf);
    let r = request(
        server,
        "POST",
        "/tools/t",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &alice.cookie),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let run = r.header("location").unwrap().to_string();
    wait_for_end(server, alice, &run);
    run.trim_start_matches("/runs/").to_string()
}

pub(super) fn wait_for_end(server: &Server, session: &Session, run: &str) {
    let events = request(
        server,
        "GET",
        &format!("{run}/events"),
        &[("Cookie", &session.cookie)],
        b"",
    );
    assert!(events.body.contains("event:end"), "{}", events.body);
}

#[test]
fn every_hostile_input_is_refused_or_stays_plain_text() {
    let test = Test::new()
        .manifest(&manifest())
        .exec("record.sh", RECORD_SH)
        .exec("upload.sh", UPLOAD_SH);
    let server = Server::start(test, &[]);
    let dir = server.test.path().to_path_buf();
    let alice = sign_in(&server, "alice", ALICE_PW);
    let bob = sign_in(&server, "bob", BOB_PW);
    let gone = sign_in(&server, "alice", ALICE_PW);
    let r = request(
        &server,
        "POST",
        "/logout",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &gone.cookie),
        ],
        format!("_csrf={}", gone.csrf).as_bytes(),
    );
    assert_eq!(r.status, 303, "sign-out: {}", r.body);
    // A finished run of alice's, for the rows that reach for someone else's run.
    let run = finished_run(&server, &alice);
    let mut expected_lines = ran(&dir).len();
    assert_eq!(expected_lines, 1);

    let mut failures = Vec::new();
    let cases = corpus();
    for case in &cases {
        let before = ran(&dir);
        let (cookie, token) = match case.who {
            As::Alice => (alice.cookie.clone(), alice.csrf.clone()),
            As::Bob => (bob.cookie.clone(), bob.csrf.clone()),
            As::Nobody => (String::new(), String::new()),
            As::Tampered => {
                let mut bytes = alice.cookie.clone().into_bytes();
                let i = bytes.len() / 2;
                bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                (String::from_utf8(bytes).unwrap(), alice.csrf.clone())
            }
            As::Truncated => (
                alice.cookie[..alice.cookie.len() - 6].to_string(),
                alice.csrf.clone(),
            ),
            As::Renamed => (
                alice.cookie.replacen("ftw_session", "ftw_other", 1),
                alice.csrf.clone(),
            ),
            As::SignedOut => (gone.cookie.clone(), gone.csrf.clone()),
        };
        let token = match case.csrf {
            Csrf::Own => token,
            Csrf::None => String::new(),
            Csrf::Foreign => bob.csrf.clone(),
            Csrf::Wrong => "A".repeat(token.len().max(16)),
        };
        let path = case.path.replace("RUN", &run);
        let mut body = case.body.clone();
        let mut headers = case.headers.clone();
        if !cookie.is_empty() {
            headers.push(("Cookie".into(), cookie));
        }
        if path == "/login" && case.who == As::Nobody && case.declared.is_none() {
            // A fresh sign-in form: its own cookie and token.
            let page = request(&server, "GET", "/login", &[], b"");
            headers.push(("Cookie".into(), pair(page.header("set-cookie").unwrap())));
            body = [format!("_csrf={}&", csrf_in(&page.body)).into_bytes(), body].concat();
        } else if !token.is_empty() {
            if case
                .content_type
                .starts_with("application/x-www-form-urlencoded")
            {
                body = [format!("_csrf={token}&").into_bytes(), body].concat();
            } else if case.content_type.starts_with("multipart/") {
                body = [
                    format!(
                        "--B\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n"
                    )
                    .into_bytes(),
                    body,
                ]
                .concat();
            } else {
                headers.push(("X-CSRF-Token".into(), token));
            }
        }
        if !case.content_type.is_empty() {
            headers.push(("Content-Type".into(), case.content_type.into()));
        }
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
            case.method
        );
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(length) = case.declared {
            head.push_str(&format!("Content-Length: {length}\r\n"));
            body.clear();
        } else if case.method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let reply = exchange(&server, head, body);

        let mut problems = Vec::new();
        if reply.status != case.status {
            problems.push(format!("status {} (wanted {})", reply.status, case.status));
        }
        if let Some(want) = case.location {
            let got = reply.header("location").unwrap_or("");
            if got != want {
                problems.push(format!("Location {got:?} (wanted {want:?})"));
            }
        }
        // A run the reply started, wanted or not, is waited for, so its line lands
        // in this row and not a later one.
        let started = match reply.header("location") {
            Some(l) if l.starts_with("/runs/") => Some(l.to_string()),
            _ => serde_json::from_str::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|json| json["id"].as_str().map(|id| format!("/runs/{id}"))),
        };
        if let Some(run) = started {
            wait_for_end(&server, &alice, &run);
        }
        if !matches!(case.ran, Ran::Nothing) {
            expected_lines += 1;
        }
        let after = ran(&dir);
        let new: Vec<&String> = after.iter().skip(before.len()).collect();
        match (&case.ran, new.as_slice()) {
            (Ran::Nothing, []) => {}
            (Ran::Nothing, lines) => problems.push(format!("a program ran: {lines:?}")),
            (Ran::Argv(argv), [line]) => {
                let want: Vec<String> = argv.iter().map(|a| hex(a)).collect();
                let got: Vec<&str> = line.split_whitespace().collect();
                if got != want {
                    problems.push(format!("argv {got:?} (wanted {want:?})"));
                }
            }
            (Ran::Upload(contents), [line]) => {
                let mut parts = line.splitn(3, ' ');
                let (_, path, got) = (parts.next(), parts.next().unwrap_or(""), parts.next());
                let stored = Path::new(path);
                let name = stored.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let safe_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && !name.contains("pwned")
                    && !name.contains("passwd");
                if !safe_name || !stored.is_absolute() || path.contains("..") {
                    problems.push(format!("stored as {path:?}"));
                }
                if got != Some(contents) {
                    problems.push(format!("stored contents {got:?}"));
                }
            }
            (_, lines) => problems.push(format!("wanted one run, saw {lines:?}")),
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.what, problems.join("; ")));
        }
    }

    // Anything started late by a refused request shows up before this run ends.
    finished_run(&server, &alice);
    expected_lines += 1;
    assert!(
        failures.is_empty(),
        "{} of {} hostile inputs misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        ran(&dir).len(),
        expected_lines,
        "runs on disk: {:#?}",
        ran(&dir)
    );
    assert!(!dir.join("pwned").exists(), "a shell ran a value");
    assert!(!dir.parent().unwrap().join("pwned").exists());
}
