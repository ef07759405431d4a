//! A minimal keep-alive HTTP/1.1 client for the benchmark: enough to sign in, load
//! pages, submit a form and read an event stream to its end, with no dependencies that
//! could dominate what is measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub struct Conn {
    port: u16,
    reader: BufReader<TcpStream>,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split(';').next().unwrap_or(""))
    }
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn {
            port,
            reader: BufReader::new(stream),
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        match self.try_request(method, path, headers, body) {
            Some(r) => r,
            None => {
                // The server closed an idle keep-alive connection: reconnect once.
                *self = Conn::open(self.port);
                self.try_request(method, path, headers, body)
                    .expect("a response")
            }
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<Response> {
        self.send(method, path, headers, body).ok()?;
        let mut response = self.read_head()?;
        let mut body = Vec::new();
        if response.chunked() {
            while let Some(chunk) = self.next_chunk()? {
                body.extend_from_slice(&chunk);
            }
        } else if let Some(n) = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
        {
            body = vec![0u8; n];
            self.reader.read_exact(&mut body).ok()?;
        }
        response.body = String::from_utf8_lossy(&body).into_owned();
        Some(response)
    }

    /// Writes one request.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<()> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.reader.get_mut().write_all(req.as_bytes())
    }

    /// Reads a response's status line and headers (the body is left to read).
    pub fn read_head(&mut self) -> Option<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).ok()?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Some(Response {
            status,
            headers,
            body: String::new(),
        })
    }

    /// The next chunk of a chunked body: `Some(None)` at its end, `None` on an error.
    pub fn next_chunk(&mut self) -> Option<Option<Vec<u8>>> {
        let mut line = String::new();
        self.reader.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.trim(), 16).ok()?;
        let mut chunk = vec![0u8; size + 2];
        self.reader.read_exact(&mut chunk).ok()?;
        chunk.truncate(size);
        Some((size > 0).then_some(chunk))
    }
}

impl Response {
    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
    }
}

/// The value of the first `_csrf` hidden field in a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"_csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs in; returns the session cookie (`name=value`).
pub fn sign_in(conn: &mut Conn, user: &str, password: &str) -> Option<String> {
    let page = conn.request("GET", "/login", &[], "");
    let login_cookie = page.set_cookies().next()?.to_string();
    let body = form(&[
        ("_csrf", &csrf_of(&page.body)),
        ("username", user),
        ("password", password),
        ("next", "/"),
    ]);
    let r = conn.request("POST", "/login", &[("Cookie", &login_cookie)], &body);
    if r.status != 303 {
        return None;
    }
    r.set_cookies()
        .find(|c| c.contains("ftw_session=") && !c.ends_with('='))
        .map(str::to_string)
}

/// Starts a tool with no arguments; returns its run's path (`/runs/ID`).
pub fn start(conn: &mut Conn, cookie: &str, csrf: &str, tool: &str) -> String {
    let r = conn.request(
        "POST",
        &format!("/tools/{tool}"),
        &[("Cookie", cookie)],
        &format!("_csrf={csrf}"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    r.header("location").expect("a run").to_string()
}

/// Starts the trivial tool and reads its event stream until the run has ended.
pub fn run_and_wait(conn: &mut Conn, cookie: &str, csrf: &str) {
    let run = start(conn, cookie, csrf, "echo");
    let events = conn.request("GET", &format!("{run}/events"), &[("Cookie", cookie)], "");
    assert!(events.body.contains("\"exit_code\":0"), "{}", events.body);
}

/// Starts the trivial tool through the API and waits for it in the same request
/// (`?wait=true`): one round trip from POST to exit code. `auth` are the headers that
/// say who calls (a session cookie and its CSRF token, or a bearer token).
pub fn api_run_and_wait(conn: &mut Conn, auth: &[(&str, &str)]) {
    let mut headers = auth.to_vec();
    headers.push(("Content-Type", "application/json"));
    let r = conn.request("POST", "/api/tools/echo/runs?wait=true", &headers, "{}");
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("\"exit_code\":0"), "{}", r.body);
}

/// The CSRF token of a signed-in session (from a tool's form).
pub fn csrf(conn: &mut Conn, cookie: &str) -> String {
    csrf_of(
        &conn
            .request("GET", "/tools/echo", &[("Cookie", cookie)], "")
            .body,
    )
}
