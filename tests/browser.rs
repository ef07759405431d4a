//! The pages in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! against the real `ftw serve` on the bundled example manifest. One walk through what a
//! user does: sign in, search, fill every control type, meet a validation error next to
//! its field, run, watch live output, cancel, upload, download, sign out and find the
//! old pages locked. Screenshots land in `target/screenshots/`.
//!
//! Without `chromium` and `chromedriver` the test says so on the terminal and passes;
//! with `FTW_REQUIRE_BROWSER=1` or `FTW_REQUIRE_ALL=1` (set by `.ci/run`) a missing
//! browser is a failure.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::Test;
use crate::support::external::{self, find};
use crate::support::idp::{Idp, free_port};
use crate::support::server::Server;

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(chromedriver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("started successfully") => break,
            Ok(_) => {}
            Err(_) => panic!("chromedriver did not start within 30 s"),
        }
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// The bundled example, copied into a fresh folder (scripts keep their mode).
fn example() -> Test {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let test = Test::new();
    std::fs::copy(root.join("tools.toml"), test.path().join("tools.toml")).unwrap();
    std::fs::create_dir(test.path().join("scripts")).unwrap();
    for entry in std::fs::read_dir(root.join("scripts")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            test.path().join("scripts").join(entry.file_name()),
        )
        .unwrap();
    }
    test
}

struct Walk {
    client: Client,
    base: String,
    shots: PathBuf,
    taken: usize,
}

impl Walk {
    async fn shot(&mut self, name: &str) {
        self.taken += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.shots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&path, png).unwrap();
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{}", self.base, path.trim_start_matches('/')))
            .await
            .unwrap();
    }

    async fn css(&self, selector: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
    }

    /// Presses the header's sign-out button.
    async fn sign_out(&self) {
        self.css("header .who button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The visible text of `selector`. The live output replaces its HTML when the event
    /// stream's snapshot arrives, so an element found a moment before can go stale: look
    /// it up again then.
    async fn text(&self, selector: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.css(selector).await.text().await {
                Ok(text) => return text,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("no text for {selector}: {e}"),
            }
        }
    }

    /// The run's output exactly as the page holds it (WebDriver's visible text folds
    /// runs of spaces).
    async fn output(&self) -> String {
        let pre = self.css("[data-output]").await;
        pre.prop("textContent").await.unwrap().unwrap_or_default()
    }

    /// Types into a field, replacing what it held.
    async fn fill(&self, name: &str, value: &str) {
        let field = self.css(&format!("[name=\"{name}\"]")).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Sets a field the way its picker would (date, time and colour pickers take
    /// keystrokes in the browser's locale format, so the value is set directly and the
    /// `input` event fired).
    async fn pick(&self, name: &str, value: &str) {
        let field = self.css(&format!("[name=\"{name}\"]")).await;
        self.client
            .execute(
                "arguments[0].value = arguments[1];\
                 arguments[0].dispatchEvent(new Event('input', {bubbles: true}));\
                 return arguments[0].value;",
                vec![serde_json::to_value(&field).unwrap(), json!(value)],
            )
            .await
            .unwrap();
    }

    async fn submit(&self) {
        self.css("form.stack button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
    }

    /// Waits until `check` holds for the text of `selector`.
    async fn wait_text(&self, selector: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text(selector).await;
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{what}: {selector} is {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_walks_through_the_example_in_chromium() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let server = Server::start(example(), &[]);
    let password = server.stdout[2].trim().to_string();
    let (mut walk, driver, dirs) = browser.open(&server.url).await;

    // Signed out, a tool's page leads to the sign-in form, and back after it.
    walk.goto("/tools/greet").await;
    assert_eq!(walk.path().await, "/login?next=%2Ftools%2Fgreet");
    walk.shot("login").await;
    walk.fill("username", "admin").await;
    walk.fill("password", "wrong password").await;
    walk.submit().await;
    let notice = walk.text(".notice.error").await;
    assert!(notice.contains("Wrong user name or password"), "{notice}");
    walk.fill("username", "admin").await;
    walk.fill("password", &password).await;
    walk.submit().await;
    walk.css("form.stack [name=name]").await;
    assert_eq!(walk.path().await, "/tools/greet");

    // The index lists the tools, and the search box filters them as you type.
    walk.goto("/").await;
    let cards = walk
        .client
        .find_all(Locator::Css("[data-tool]"))
        .await
        .unwrap();
    assert_eq!(cards.len(), 7);
    walk.shot("index").await;
    walk.css("[data-tool-search]")
        .await
        .send_keys("slow")
        .await
        .unwrap();
    let visible = walk
        .client
        .execute(
            "return [...document.querySelectorAll('[data-tool]')].filter(c => !c.hidden).length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(visible, json!(1));

    // A tool without arguments runs from the index with one click (a POST with the
    // CSRF token); its stderr is tinted.
    walk.goto("/").await;
    walk.css("[data-tool] form button")
        .await
        .click()
        .await
        .unwrap();
    walk.wait_text("[data-status]", "status finishes", |s| {
        s.contains("succeeded")
    })
    .await;
    assert!(walk.path().await.starts_with("/runs/"));
    let tinted = walk.text("[data-output] .e").await;
    assert!(
        tinted.contains("warning: this is an example tool"),
        "{tinted}"
    );
    walk.shot("status-run").await;

    // A form says its constraints in words and marks what is required.
    walk.goto("/tools/disk-usage").await;
    let rules = walk.text("#field-top .rules").await;
    assert_eq!(rules, "A whole number, from 1 to 50, in steps of 1.");

    // greet: text, select, number, checkbox, colour; the output arrives on the run page.
    walk.goto("/tools/greet").await;
    walk.fill("name", "Ada $(id) `x` <b>bold</b>").await;
    walk.css("[name=greeting]")
        .await
        .select_by_value("Ahoy")
        .await
        .unwrap();
    walk.fill("times", "2").await;
    walk.css("[name=shout]").await.click().await.unwrap();
    walk.pick("color", "#ff8800").await;
    walk.shot("greet-form").await;
    walk.submit().await;
    let output = walk
        .wait_text("[data-status]", "greet finishes", |s| {
            s.contains("succeeded")
        })
        .await;
    assert!(output.contains("exit code 0"), "{output}");
    let output = walk.output().await;
    assert_eq!(
        output.trim(),
        "AHOY, ADA $(ID) `X` <B>BOLD</B>!\nAHOY, ADA $(ID) `X` <B>BOLD</B>!"
    );
    let bold = walk
        .client
        .find_all(Locator::Css("[data-output] b"))
        .await
        .unwrap();
    assert!(bold.is_empty(), "tool output became markup");
    walk.shot("greet-run").await;

    // peek: a choice whose options a script prints, asked for again when the folder
    // changes, and a field shown only for one value of another.
    walk.goto("/tools/peek").await;
    let options = |name: &'static str| {
        let client = walk.client.clone();
        async move {
            let script = format!(
                "return [...document.querySelectorAll('[name={name}] option')].map(o => o.value)"
            );
            client.execute(&script, vec![]).await.unwrap().to_string()
        }
    };
    let shown = |id: &'static str| {
        let client = walk.client.clone();
        async move {
            let script = format!("return !document.getElementById('{id}').hidden");
            client.execute(&script, vec![]).await.unwrap() == json!(true)
        }
    };
    assert!(options("file").await.contains("greet.sh"));
    assert!(
        !shown("field-lines").await,
        "lines is hidden for the whole file"
    );
    walk.css("[name=folder]")
        .await
        .select_by_value(".")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !options("file").await.contains("tools.toml") {
        assert!(
            Instant::now() < deadline,
            "the file list did not follow the folder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!options("file").await.contains("greet.sh"));
    walk.css("[name=part]")
        .await
        .select_by_value("the first lines")
        .await
        .unwrap();
    assert!(
        shown("field-lines").await,
        "lines is shown for the first lines"
    );
    walk.fill("lines", "2").await;
    walk.css("[name=file]")
        .await
        .select_by_value("tools.toml")
        .await
        .unwrap();
    walk.shot("peek-form").await;
    walk.submit().await;
    walk.wait_text("[data-status]", "peek finishes", |s| {
        s.contains("succeeded")
    })
    .await;
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tools.toml"))
            .unwrap();
    let first_two: Vec<&str> = manifest.lines().take(2).collect();
    assert_eq!(
        walk.output().await,
        format!(
            "== the first 2 lines of ./tools.toml\n{}\n",
            first_two.join("\n")
        )
    );

    // report: every remaining control. Four sections where three are allowed is
    // refused by the server, with the message next to the field and values kept.
    walk.goto("/tools/report").await;
    walk.fill("title", "Quarterly numbers").await;
    walk.pick("from", "2026-01-01").await;
    walk.pick("until", "2026-03-31").await;
    walk.pick("at", "09:30").await;
    walk.pick("due", "2026-04-02T17:00").await;
    walk.fill("ratio", "0.75").await;
    for section in ["Revenue", "Costs", "Headcount"] {
        walk.css(&format!("[name=sections][value={section}]"))
            .await
            .click()
            .await
            .unwrap();
    }
    walk.fill("notify", "ops@example.com").await;
    walk.fill("link", "https://example.com/q1").await;
    walk.pick("accent", "#336699").await;
    walk.fill("notes", "First line\nSecond line").await;
    walk.fill("api_token", "s3cret-token").await;
    walk.shot("report-form").await;
    walk.submit().await;
    let error = walk.text("#field-sections .error").await;
    assert!(error.contains("at most 3"), "{error}");
    let notice = walk.text("[data-errors]").await;
    assert_eq!(notice, "Please correct this field: Sections.");
    let focused = walk
        .client
        .execute("return document.activeElement.name", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("sections"), "the marked field has the focus");
    assert_eq!(
        walk.css("#f-title")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Quarterly numbers"),
        "values are kept"
    );
    assert_eq!(
        walk.css("#f-api_token")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(""),
        "a password is never sent back"
    );
    walk.shot("report-invalid").await;
    walk.css("[name=sections][value=Summary]")
        .await
        .click()
        .await
        .unwrap();
    walk.fill("api_token", "s3cret-token").await;
    walk.submit().await;
    walk.wait_text("[data-status]", "report finishes", |s| {
        s.contains("succeeded")
    })
    .await;
    let output = walk.output().await;
    for line in [
        "Report: Quarterly numbers",
        "Period: 2026-01-01 to 2026-03-31",
        "Daily at: 09:30",
        "Deadline: 2026-04-02T17:00",
        "Ratio: 0.75",
        "  - Revenue",
        "  - Costs",
        "  - Headcount",
        "Notify: ops@example.com",
        "Link: https://example.com/q1",
        "Accent colour: #336699",
        "Include totals: true",
        "API token: given (not shown)",
        "First line\nSecond line",
    ] {
        assert!(output.contains(line), "{line:?} missing from:\n{output}");
    }
    assert!(!output.contains("s3cret-token"));
    // The CSV is a table on the page (the server's, fetched once the run ended) that
    // sorts by a column: by value, then by value backwards.
    walk.css("[data-files] table[data-sortable]").await;
    let days = || {
        let client = walk.client.clone();
        async move {
            client
                .execute(
                    "return [...document.querySelectorAll('[data-files] tbody tr')].map(r => r.cells[0].textContent).join(',')",
                    vec![],
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(days().await, json!("1,2,3"));
    let value = walk.css("[data-files] th:nth-child(2)").await;
    value.clone().click().await.unwrap();
    assert_eq!(days().await, json!("1,3,2"), "ascending by value");
    value.click().await.unwrap();
    assert_eq!(days().await, json!("2,3,1"), "descending by value");
    let chart = walk.css("[data-files] img").await;
    let loaded = walk
        .client
        .execute(
            "return arguments[0].complete && arguments[0].naturalWidth",
            vec![serde_json::to_value(&chart).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(loaded, json!(48), "the chart shows inline");
    walk.shot("report-run").await;

    // Download: the CSV lands in the browser's download folder, byte for byte.
    walk.client
        .find(Locator::LinkText("data.csv"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let csv = dirs.downloads.path().join("data.csv");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !csv.exists() {
        assert!(Instant::now() < deadline, "data.csv was not downloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "day,value\n1,3\n2,5\n3,4\n"
    );

    // wordcount: a file upload.
    let upload = tempfile::tempdir().unwrap();
    let text_file = upload.path().join("notes.txt");
    std::fs::write(&text_file, "the cat and the hat\nthe end\n").unwrap();
    walk.goto("/tools/wordcount").await;
    walk.css("[name=file]")
        .await
        .send_keys(&text_file.display().to_string())
        .await
        .unwrap();
    walk.submit().await;
    walk.wait_text("[data-status]", "wordcount finishes", |s| {
        s.contains("succeeded")
    })
    .await;
    let output = walk.output().await;
    assert!(output.contains("Counting notes.txt"), "{output}");
    assert!(output.contains("words: 7"), "{output}");
    assert!(output.contains("3 the"), "{output}");

    // slow-counter: ticks arrive one by one while it runs; then it is cancelled.
    walk.goto("/tools/slow-counter").await;
    walk.fill("seconds", "30").await;
    walk.submit().await;
    walk.wait_text("[data-output]", "the first tick", |o| {
        o.contains("tick 1 of 30")
    })
    .await;
    walk.wait_text("[data-status]", "the status to read running", |s| {
        s.contains("running")
    })
    .await;
    walk.wait_text("[data-output]", "a later tick, live", |o| {
        o.contains("tick 2 of 30")
    })
    .await;
    walk.wait_text("[data-duration]", "a live timer", |d| {
        d.starts_with("running for ") && !d.ends_with(" 0 s")
    })
    .await;
    let green = walk
        .client
        .find_all(Locator::Css("[data-output] span"))
        .await
        .unwrap();
    assert!(!green.is_empty(), "ANSI colour became a styled span");
    walk.shot("slow-counter-live").await;
    let run_page = walk.path().await;
    walk.css("[data-cancel] button")
        .await
        .click()
        .await
        .unwrap();
    walk.wait_text("[data-status]", "the run is cancelled", |s| {
        s.contains("cancelled (stopped by SIGTERM)")
    })
    .await;
    walk.shot("slow-counter-cancelled").await;

    // On a phone (390 px wide): nothing is wider than the screen, and long output
    // lines wrap instead of scrolling sideways.
    walk.client.set_window_size(390, 844).await.unwrap();
    for page in ["/", "/runs", "/tools/report", run_page.as_str()] {
        walk.goto(page).await;
        let overflow = walk
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "{page} is wider than the screen");
    }
    let wraps = walk
        .client
        .execute(
            "const o = document.querySelector('[data-output]'); \
             o.append('x'.repeat(400) + ' ' + 'y'.repeat(300)); \
             return o.scrollWidth <= o.clientWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wraps, json!(true), "long output lines wrap");
    let header = walk
        .client
        .execute(
            "return document.querySelector('header.bar').getBoundingClientRect().height",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        header.as_f64().unwrap() < 100.0,
        "the header stays compact: {header}"
    );
    walk.shot("phone-run").await;
    walk.goto("/runs").await;
    walk.shot("phone-runs").await;
    walk.client.set_window_size(1100, 900).await.unwrap();

    // Sign out: the old pages are locked, going back included.
    walk.sign_out().await;
    walk.css("#username").await;
    assert!(walk.path().await.starts_with("/login"));
    walk.client.back().await.unwrap();
    walk.css("#username").await;
    let after_back = walk.path().await;
    assert!(after_back.starts_with("/login"), "{after_back}");
    walk.goto(&run_page).await;
    walk.css("#username").await;
    assert!(walk.path().await.starts_with("/login?next="));
    let body = walk.text("body").await;
    assert!(
        !body.contains("tick 1"),
        "the old run's output after sign-out"
    );
    walk.shot("signed-out").await;

    walk.client.close().await.unwrap();
    drop(driver);
}

/// Chromium and chromedriver, when installed.
struct Browser {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Folders a browser session uses: its profile and its downloads.
struct Dirs {
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

impl Browser {
    /// `None` after a visible SKIPPED line when the browser is missing (a failure when
    /// it is required).
    fn find() -> Option<Browser> {
        let chromium = find("FTW_CHROMIUM", "/usr/bin/chromium", "chromium");
        let chromedriver = find("FTW_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver");
        let present = chromium.is_some() && chromedriver.is_some();
        let install = "sudo apt-get install chromium chromium-driver";
        if !external::available("browser", present, install) {
            return None;
        }
        Some(Browser {
            chromium: chromium?,
            chromedriver: chromedriver?,
        })
    }

    /// A headless Chromium session that starts at `base`.
    async fn open(&self, base: &str) -> (Walk, Driver, Dirs) {
        let driver = start_driver(&self.chromedriver);
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1100,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&driver.url)
            .await
            .expect("a WebDriver session in Chromium");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let walk = Walk {
            client,
            base: base.to_string(),
            shots,
            taken: 0,
        };
        let dirs = Dirs {
            _profile: profile,
            downloads,
        };
        (walk, driver, dirs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_with_the_identity_provider_in_chromium() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let idp_port = free_port();
    let manifest = crate::support::unindent(&format!(
        r#"
        [auth.oidc.corp]
        issuer = "http://127.0.0.1:{idp_port}"
        client_id = "ftw"
        client_secret = "corp-secret"
        allowed_domains = ["example.com"]
        label = "Sign in with Example SSO"
        [tools.hello]
        command = ["echo", "hello"]
        "#
    ));
    let server = Server::start(Test::new().manifest(&manifest), &[]);
    let base = server.url.trim_end_matches('/');
    let clients = json!([{
        "client_id": "ftw",
        "client_secret": "corp-secret",
        "redirect_uris": [format!("{base}/login/oidc/corp/callback")],
        "post_logout_redirect_uris": [format!("{base}/login")],
    }]);
    let accounts = json!({
        "alice": { "email": "alice@example.com", "email_verified": true, "preferred_username": "alice" },
    });
    let Some(_idp) = Idp::start(idp_port, clients, accounts) else {
        return;
    };
    let (mut walk, driver, _dirs) = browser.open(&server.url).await;

    // A tool's page, signed out: the sign-in page has only the provider's button.
    walk.goto("/tools/hello").await;
    walk.css("#provider-corp").await;
    assert!(walk.client.find(Locator::Css("#password")).await.is_err());
    walk.shot("sso-login").await;
    walk.css("#provider-corp").await.click().await.unwrap();

    // The provider's own sign-in page, then back to the tool that was asked for.
    walk.css("#login").await.send_keys("alice").await.unwrap();
    walk.shot("sso-provider").await;
    walk.css("#submit").await.click().await.unwrap();
    walk.css("form.stack").await;
    assert_eq!(walk.path().await, "/tools/hello");
    let who = walk.text("header .who").await;
    assert!(who.contains("alice"), "{who}");
    walk.shot("sso-signed-in").await;

    // Sign-out goes through the provider's sign-out page and back to ftw's sign-in.
    walk.sign_out().await;
    walk.css("button[name=logout]").await.click().await.unwrap();
    walk.css("#provider-corp").await;
    assert!(walk.path().await.starts_with("/login"));
    walk.goto("/tools/hello").await;
    walk.css("#provider-corp").await;
    walk.shot("sso-signed-out").await;

    walk.client.close().await.unwrap();
    drop(driver);
}

/// WebDriver's virtual authenticator (W3C WebAuthn, "Add Virtual Authenticator"): a
/// platform authenticator that keeps discoverable keys, verifies the user and says yes.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_are_made_on_the_account_page_and_sign_in_in_chromium() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let manifest = crate::support::unindent(&format!(
        r#"
        [auth]
        passkey_sign_in = true
        [auth.users]
        alice = "{hash}"
        [tools.hello]
        command = ["echo", "hello"]
        "#,
        hash = crate::support::HASH_A
    ));
    let server = Server::start(Test::new().manifest(&manifest), &[]);
    // WebAuthn wants a domain for the relying party: localhost, not 127.0.0.1.
    let base = format!("http://localhost:{}/", server.port);
    let (mut walk, driver, _dirs) = browser.open(&base).await;
    walk.client
        .issue_cmd(AddVirtualAuthenticator)
        .await
        .expect("a virtual authenticator");

    let sign_in_with_password = async |walk: &Walk| {
        walk.goto("/login").await;
        walk.fill("username", "alice").await;
        walk.fill("password", "hunter2-but-longer").await;
        walk.submit().await;
    };
    sign_in_with_password(&walk).await;
    walk.css("header .who").await;
    walk.goto("/account").await;
    assert_eq!(walk.text("#account-user").await, "alice");
    walk.css("#no-passkeys").await;
    walk.fill("name", "laptop").await;
    walk.css("#add-passkey button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let name = walk
        .wait_text(".passkey-name", "the new passkey", |t| t == "laptop")
        .await;
    assert_eq!(name, "laptop");
    walk.shot("account-passkey").await;

    // With a passkey, the password is not enough any more: the passkey is asked for.
    walk.sign_out().await;
    walk.css("#username").await;
    sign_in_with_password(&walk).await;
    walk.css("#use-passkey").await;
    assert!(walk.path().await.starts_with("/login/2fa"));
    walk.shot("passkey-second-step").await;
    walk.css("#use-passkey").await.click().await.unwrap();
    walk.css("header .who").await;
    assert_eq!(walk.path().await, "/");

    // And alone, where the manifest allows it.
    walk.sign_out().await;
    walk.css("#passkey-sign-in").await.click().await.unwrap();
    walk.css("header .who").await;
    assert!(walk.text("header .who").await.contains("alice"));

    // Removed, it is gone from the page and from sign-in.
    walk.goto("/account").await;
    walk.css("table.passkeys button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    walk.css("#no-passkeys").await;
    walk.css("#sign-out-everywhere")
        .await
        .click()
        .await
        .unwrap();
    walk.css("#username").await;
    walk.goto("/account").await;
    walk.css("#username").await;

    walk.client.close().await.unwrap();
    drop(driver);
}
