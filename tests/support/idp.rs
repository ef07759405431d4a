//! The real OpenID provider of the tests: `oidc-provider` under Node
//! (`tests/idp/provider.mjs`), on a loopback port, and a browser-like walk through its
//! redirects with a cookie jar.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::external;
use super::server::{Server, Wire, cookie_pair, csrf, http_to};

pub struct Idp {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn idp_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Idp {
    /// Starts the provider on `port` with these clients and accounts; `None` (after a
    /// visible SKIPPED line) when Node or `oidc-provider` is not installed.
    pub fn start(port: u16, clients: Value, accounts: Value) -> Option<Idp> {
        let node = external::find("FTW_NODE", "/usr/bin/node", "node");
        let installed = idp_folder().join("node_modules/oidc-provider").is_dir();
        if !external::available(
            "oidc-provider",
            node.is_some() && installed,
            "install Node.js, then run `npm ci --prefix tests/idp`",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("idp.json");
        let body = serde_json::json!({ "port": port, "clients": clients, "accounts": accounts });
        std::fs::write(&config, body.to_string()).unwrap();
        let mut child = Command::new(node.unwrap())
            .arg(idp_folder().join("provider.mjs"))
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("FTW_IDP_DEBUG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("listening ") => break,
                Some(Ok(_)) => continue,
                _ => panic!("the test provider did not start"),
            }
        }
        // Whatever it prints later must not meet a closed pipe (EPIPE ends node).
        std::thread::spawn(move || lines.for_each(drop));
        Some(Idp {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn request(&self, method: &str, path: &str, jar: &Jar, body: &str) -> Wire {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let cookie = jar.header();
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        let host = format!("127.0.0.1:{}", self.port);
        http_to(&host, &mut stream, method, path, &headers, body)
    }

    /// The next sign-in at the provider is `account`'s, without its sign-in page.
    pub fn sign_in_as(&self, account: &str) {
        let r = self.request(
            "POST",
            &format!("/__test/login?account={account}"),
            &Jar::default(),
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// The next token response carries an ID token forged as `mode` (see provider.mjs).
    pub fn forge_next_token(&self, mode: &str) {
        let r = self.request(
            "POST",
            &format!("/__test/forge?mode={mode}"),
            &Jar::default(),
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Follows the provider's redirects from `url` (an address of this provider) until
    /// one leaves it; that `Location`.
    pub fn walk(&self, url: &str) -> String {
        let mut jar = Jar::default();
        let mut location = url.to_string();
        for _ in 0..10 {
            let Some(path) = location.strip_prefix(&self.issuer()) else {
                return location;
            };
            let r = self.request("GET", path, &jar, "");
            jar.take(&r);
            assert_eq!(
                r.status, 303,
                "the provider answered {}: {}",
                r.status, r.body
            );
            location = r.header("location").unwrap().to_string();
            if location.starts_with('/') {
                location = format!("{}{location}", self.issuer());
            }
        }
        panic!("the provider redirected more than 10 times");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser's cookies, for one host.
#[derive(Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Keeps the cookies a response sets; drops the ones it expires.
    pub fn take(&mut self, r: &Wire) {
        for set in r.all("set-cookie") {
            let (name, value) = cookie_pair(set).split_once('=').unwrap();
            let expired = set.to_ascii_lowercase().contains("max-age=0")
                || set.contains("expires=Thu, 01 Jan 1970");
            if expired || value.is_empty() {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), value.to_string());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A sign-in with provider `name` of ftw, from its sign-in page to the provider and back
/// to the callback; the callback's response and the browser's cookies for ftw.
pub struct Journey {
    pub jar: Jar,
    /// The path and query of ftw's callback that the provider redirected to.
    pub callback: String,
}

impl Journey {
    /// Presses the provider's button on ftw's sign-in page and walks the provider as
    /// `account`; stops before the callback.
    pub fn to_callback(server: &Server, idp: &Idp, name: &str, account: &str) -> Journey {
        let mut jar = Jar::default();
        let page = server.request("GET", "/login", &[], "");
        jar.take(&page);
        let body = format!("_csrf={}&next=%2F", csrf(&page.body));
        let cookie = jar.header();
        let start = server.request(
            "POST",
            &format!("/login/oidc/{name}"),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &cookie),
                ("Origin", "http://localhost"),
            ],
            &body,
        );
        assert_eq!(start.status, 303, "{}", start.body);
        jar.take(&start);
        idp.sign_in_as(account);
        let back = idp.walk(start.header("location").unwrap());
        let callback = back
            .strip_prefix("http://localhost")
            .unwrap_or_else(|| panic!("the provider sent the browser to {back}"))
            .to_string();
        Journey { jar, callback }
    }

    /// Calls ftw's callback with this browser's cookies.
    pub fn finish(&mut self, server: &Server) -> Wire {
        let cookie = self.jar.header();
        let r = server.request("GET", &self.callback, &[("Cookie", &cookie)], "");
        self.jar.take(&r);
        r
    }

    /// The session cookie pair, if the browser has one.
    pub fn session(&self) -> Option<String> {
        self.jar
            .get("ftw_session")
            .map(|v| format!("ftw_session={v}"))
    }
}
