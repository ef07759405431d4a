//! ftw's routes in-process, through `warp::test`: no sockets, but the real filter tree,
//! the real state and the real templates. `Browser` keeps cookies like a browser does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftw::auth::keys::{KeySource, Keys};
use ftw::auth::session::{Codec, Session};
use ftw::cli::ServeArgs;
use ftw::config::Config;
use ftw::server::{ClientAddr, State};
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// The secret every in-process test signs with (hex of 32 bytes of 0x42).
pub const TEST_SECRET_HEX: &str =
    "4242424242424242424242424242424242424242424242424242424242424242";

pub struct App {
    pub state: Arc<State>,
    pub routes: BoxedFilter<(Response,)>,
    pub dir: tempfile::TempDir,
    /// The flags it was built from, to build it again (`restart`).
    args: ServeArgs,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The value of `name=` in the `value="..."` of a hidden `_csrf` input.
    pub fn csrf(&self) -> String {
        let marker = "name=\"_csrf\" value=\"";
        let start = self.body.find(marker).expect("a _csrf field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

impl App {
    /// An app serving `manifest` (written to a temp folder), plain HTTP.
    pub fn new(manifest: &str) -> App {
        App::with(manifest, false)
    }

    /// An app whose folder also holds `files` (name, contents); `.sh` files are made
    /// executable.
    pub fn with_files(manifest: &str, files: &[(&str, &str)]) -> App {
        App::build(manifest, false, files)
    }

    /// `tls: true` builds the state as if serving HTTPS (cookies Secure + __Host-, HSTS),
    /// with a freshly made self-signed pair.
    pub fn with(manifest: &str, tls: bool) -> App {
        App::build(manifest, tls, &[])
    }

    /// An app that writes its audit log to `audit.log` in its folder.
    pub fn with_audit(manifest: &str, files: &[(&str, &str)]) -> App {
        App::build_full(manifest, false, files, true)
    }

    /// The audit log's records, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn build(manifest: &str, tls: bool, files: &[(&str, &str)]) -> App {
        App::build_full(manifest, tls, files, false)
    }

    fn build_full(manifest: &str, tls: bool, files: &[(&str, &str)], audit: bool) -> App {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in files {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            if name.ends_with(".sh") {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let path = dir.path().join("tools.toml");
        std::fs::write(&path, manifest).unwrap();
        let (cert, key) = if tls {
            let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            std::fs::write(&cert, made.cert.pem()).unwrap();
            std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
            (Some(cert), Some(key))
        } else {
            (None, None)
        };
        let args = ServeArgs {
            manifest: path,
            host: Some("127.0.0.1".into()),
            port: Some(0),
            tls_cert: cert,
            tls_key: key,
            secret_key_file: None,
            audit_log: audit.then(|| dir.path().join("audit.log")),
            max_runs: 4,
            state_dir: Some(dir.path().join("state")),
            database: None,
            database_password_file: None,
            keep_runs: Some(20),
            keep_for: None,
            max_state_size: None,
            max_runs_per_user: None,
            max_connections: 64,
            max_connections_per_client: None,
            max_streams_per_user: 32,
            allowed_hosts: Vec::new(),
            client_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(1),
        };
        App::from_args(args, dir)
    }

    /// An app from full `serve` flags (the manifest must be in `dir`).
    pub fn from_args(args: ServeArgs, dir: tempfile::TempDir) -> App {
        let saved = args.clone();
        let (config, manifest) =
            Config::build(args, Some(TEST_SECRET_HEX)).expect("valid test manifest");
        let state = Arc::new(assemble(config, manifest));
        App {
            routes: ftw::server::routes::routes(Arc::clone(&state)),
            state,
            dir,
            args: saved,
        }
    }

    /// The same app started again on the same folder and state, as a restart of
    /// `ftw serve` would.
    pub fn restart(self) -> App {
        let App {
            state,
            routes,
            dir,
            args,
        } = self;
        drop(routes);
        assert_eq!(Arc::strong_count(&state), 1, "nothing else holds the state");
        drop(state);
        App::from_args(args, dir)
    }

    /// Waits (at most 30 s) until the run has finished; returns it.
    pub async fn finished(&self, id: &str) -> Arc<ftw::runs::Run> {
        let run = self.state.runs.get(id).await.expect("the run exists");
        tokio::time::timeout(Duration::from_secs(30), run.finished())
            .await
            .expect("the run finished within 30 s");
        run
    }

    /// Every run in the history, newest first.
    pub async fn all_runs(&self) -> Vec<ftw::store::RunRecord> {
        self.state
            .runs
            .list(ftw::store::RunQuery {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .expect("the history")
    }

    /// The codec the app signs sessions with, for forging cookies in tests.
    pub fn codec(&self) -> Codec {
        let keys = Keys::from_secret(&[0x42; 32], KeySource::Env);
        Codec::new(keys.session)
    }

    /// The name of the session cookie (plain HTTP unless the app serves TLS).
    pub fn session_name(&self) -> &'static str {
        ftw::server::identity::CookieName::Session.name(self.state.tls)
    }

    pub fn forge(&self, session: &Session) -> String {
        self.codec().seal(self.session_name(), session)
    }

    /// Opens a session cookie value the way the app does.
    pub fn open(&self, value: &str) -> Session {
        self.codec()
            .open(self.session_name(), value)
            .expect("a valid session cookie")
    }

    pub fn fingerprint(&self, user: &str) -> [u8; 16] {
        let manifest = self.state.manifest();
        self.codec()
            .fingerprint(&manifest.auth.users[user].password_hash)
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookies: BTreeMap::new(),
            origin: Some("http://localhost".into()),
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            headers: Vec::new(),
        }
    }

    pub async fn send(&self, req: warp::test::RequestBuilder) -> Reply {
        self.send_from(req, SocketAddr::from(([127, 0, 0, 1], 40000)))
            .await
    }

    /// Sends a request as if from the peer `peer`. The whole answer (an event stream
    /// included) must arrive within a minute.
    pub async fn send_from(&self, req: warp::test::RequestBuilder, peer: SocketAddr) -> Reply {
        let req = req.header("host", "localhost").extension(ClientAddr(peer));
        let res = tokio::time::timeout(Duration::from_secs(60), req.reply(&self.routes))
            .await
            .expect("the answer came within 60 s");
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: String::from_utf8_lossy(res.body()).into_owned(),
        }
    }
}

/// A cookie jar and an Origin, like a browser on the same site.
pub struct Browser<'a> {
    pub app: &'a App,
    pub cookies: BTreeMap<String, String>,
    /// Sent as `Origin` on POSTs; `None` sends none (like curl).
    pub origin: Option<String>,
    /// The connection's peer address.
    pub peer: SocketAddr,
    /// Extra headers on every request (e.g. `X-Forwarded-For`).
    pub headers: Vec<(String, String)>,
}

impl Browser<'_> {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, reply: &Reply) {
        for set in reply.set_cookies() {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.into(), value.into());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let mut req = warp::test::request().method("GET").path(path);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let reply = self.send(req).await;
        self.absorb(&reply);
        reply
    }

    async fn send(&self, mut req: warp::test::RequestBuilder) -> Reply {
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        self.app.send_from(req, self.peer).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_with(path, fields, &[]).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post_typed(path, "application/x-www-form-urlencoded", body, headers)
            .await
    }

    async fn post_typed(
        &mut self,
        path: &str,
        content_type: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = warp::test::request()
            .method("POST")
            .path(path)
            .header("content-type", content_type)
            .header("content-length", body.len().to_string())
            .body(body);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        if let Some(origin) = &self.origin {
            req = req.header("origin", origin.as_str());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let reply = self.send(req).await;
        self.absorb(&reply);
        reply
    }

    /// Posts a JSON body with this browser's cookies, origin and `headers`.
    pub async fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.post_typed(path, "application/json", body.to_string(), headers)
            .await
    }

    /// Posts a multipart body (built by the caller) with this browser's cookies.
    pub async fn post_multipart(&mut self, path: &str, boundary: &str, body: Vec<u8>) -> Reply {
        let mut req = warp::test::request()
            .method("POST")
            .path(path)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("content-length", body.len().to_string())
            .body(body);
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        if let Some(origin) = &self.origin {
            req = req.header("origin", origin.as_str());
        }
        let reply = self.send(req).await;
        self.absorb(&reply);
        reply
    }

    /// Opens a tool's form and submits `fields` with its CSRF token; returns the reply.
    pub async fn run_tool(&mut self, tool: &str, fields: &[(&str, &str)]) -> Reply {
        let path = format!("/tools/{tool}");
        let form = self.get(&path).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        let mut all = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(&path, &all).await
    }

    /// Loads the login form and signs in; returns the reply to the POST.
    pub async fn login(&mut self, user: &str, password: &str) -> Reply {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("_csrf", &csrf),
                ("username", user),
                ("password", password),
                ("next", "/"),
            ],
        )
        .await
    }

    /// The run id a successful submission redirected to.
    pub fn run_id(reply: &Reply) -> String {
        assert_eq!(
            reply.status, 303,
            "expected a redirect to the run: {}",
            reply.body
        );
        reply
            .header("location")
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    }

    /// The session cookie's value, whatever its name.
    pub fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k.ends_with("ftw_session"))
            .map(|(_, v)| v.clone())
    }
}

/// `State::assemble` from synchronous code that may run inside a test's runtime: on a
/// thread of its own with a runtime of its own (the state's database has its own
/// thread, so nothing it made depends on that runtime). Retention's background loop is
/// started in the test's runtime, if there is one.
fn assemble(config: Config, manifest: ftw::manifest::Manifest) -> State {
    let state = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(State::assemble(config, manifest))
                    .expect("the state")
            })
            .join()
            .unwrap()
    });
    if tokio::runtime::Handle::try_current().is_ok() {
        state.start_upkeep();
    }
    state
}
