//! The real `ftw serve`, spawned with `--port 0`: its `listening on` line is read from
//! stdout, the process is killed when the handle drops, and a tiny HTTP/1.1 client
//! (plain or rustls) talks to it over real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio_rustls::rustls;

use super::Test;

pub struct Server {
    pub child: Child,
    /// e.g. `http://127.0.0.1:41234/`
    pub url: String,
    pub port: u16,
    /// Everything printed on stdout up to and including the `listening on` line.
    pub stdout: Vec<String>,
    pub stderr: Arc<Mutex<String>>,
    pub test: Test,
}

impl Server {
    /// Starts `ftw serve tools.toml --port 0 EXTRA...` in the test's folder.
    pub fn start(test: Test, extra: &[&str]) -> Server {
        Server::try_start(test, extra)
            .unwrap_or_else(|(code, err)| panic!("ftw serve exited with {code}:\n{err}"))
    }

    /// Like `start`, but returns the exit code and stderr when ftw does not come up.
    pub fn try_start(test: Test, extra: &[&str]) -> Result<Server, (i32, String)> {
        let mut cmd = test.command();
        cmd.args(["serve", "tools.toml", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ftw serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = Arc::clone(&stderr);
            let mut pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let done = line.starts_with("ftw: listening on ");
                    lines.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let code = wait_at_most(&mut child, Duration::from_secs(30))
                        .and_then(|s| s.code())
                        .unwrap_or(-1);
                    std::thread::sleep(Duration::from_millis(100));
                    return Err((code, stderr.lock().unwrap().clone()));
                }
            }
        }
        let url = lines
            .last()
            .unwrap()
            .trim_start_matches("ftw: listening on ")
            .to_string();
        let port = url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .parse()
            .unwrap();
        Ok(Server {
            child,
            url,
            port,
            stdout: lines,
            stderr,
            test,
        })
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The records of the audit log `name` in the test folder (`--audit-log name`).
    pub fn audit(&self, name: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.test.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Sends a signal and goes on (a reload, say).
    pub fn signal_only(&self, signal: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Sends a signal and waits (at most 60 s) for the exit code.
    pub fn signal(&mut self, signal: i32) -> i32 {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
        let status = wait_at_most(&mut self.child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("ftw did not exit within 60 s of signal {signal}"));
        status.code().unwrap_or(-1)
    }

    /// Stops this server with `signal` and hands its test folder back, so the next
    /// server starts on the same files (and state folder). Returns the exit code too.
    pub fn stop(mut self, signal: i32) -> (i32, Test) {
        let code = self.signal(signal);
        let test = std::mem::replace(&mut self.test, Test::new());
        (code, test)
    }

    /// One request over a fresh connection.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Wire {
        http(&mut self.connect(), method, path, headers, body)
    }

    /// Signs in over plain HTTP; returns the session cookie pair (`name=value`).
    pub fn sign_in(&self, user: &str, password: &str) -> Option<String> {
        self.sign_in_with(user, password, &[])
    }

    /// `sign_in` with extra headers on the POST (`X-Forwarded-For` through a trusted
    /// proxy, say).
    pub fn sign_in_with(
        &self,
        user: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Option<String> {
        let form = self.request("GET", "/login", &[], "");
        let login_cookie = cookie_pair(form.header("set-cookie")?).to_string();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("_csrf", &csrf(&form.body))
            .append_pair("username", user)
            .append_pair("password", password)
            .append_pair("next", "/")
            .finish();
        let mut headers = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", login_cookie.as_str()),
            ("Origin", "http://localhost"),
        ];
        headers.extend_from_slice(extra);
        let r = self.request("POST", "/login", &headers, &body);
        if r.status != 303 {
            return None;
        }
        r.all("set-cookie")
            .into_iter()
            .find(|c| c.contains("ftw_session="))
            .map(|c| cookie_pair(c).to_string())
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }
}

/// The value of a `name="_csrf"` field.
pub fn csrf(body: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = body.find(marker).expect("a CSRF field") + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_string()
}

/// `name=value` of a Set-Cookie header.
pub fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// The child's exit status, if it exits within `limit` (it is killed if not).
pub fn wait_at_most(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub struct Wire {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Wire {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole response.
pub fn http(
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Wire {
    http_to("localhost", stream, method, path, headers, body)
}

/// `http` with another `Host`.
pub fn http_to(
    host: &str,
    stream: &mut (impl Read + Write),
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Wire {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse(&raw)
}

pub fn parse(raw: &[u8]) -> Wire {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Wire {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A rustls client that trusts exactly `cert_pem`, speaking only `versions`, offering
/// `alpn`.
pub fn tls_client(
    cert_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub fn tls_connect(
    server: &Server,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream, std::io::Error> {
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, server.connect());
    // Drive the handshake to completion now, so failures show up here.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}
