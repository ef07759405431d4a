//! A stand-in for GitHub's OAuth and REST endpoints (github.com cannot be reached from
//! the test machines): `/login/oauth/authorize` approves at once as the account the test
//! chose, `/login/oauth/access_token` checks the client secret, the code (once), the
//! redirect URL and the PKCE verifier as GitHub does, and `/api/v3/user`, `/user/orgs`,
//! `/user/teams` answer for the token's account. Real HTTP on a loopback port.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "gh-client";
pub const CLIENT_SECRET: &str = "gh-secret";

/// An account: its organisations, and its teams as `(org, slug)`.
#[derive(Clone)]
pub struct Account {
    pub orgs: Vec<&'static str>,
    pub teams: Vec<(&'static str, &'static str)>,
}

#[derive(Default)]
struct Inner {
    accounts: HashMap<String, Account>,
    next: Option<String>,
    /// code -> (login, PKCE challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    tokens: HashMap<String, String>,
    counter: u64,
}

pub struct GitHub {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl GitHub {
    pub fn start(accounts: HashMap<String, Account>) -> GitHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Mutex::new(Inner {
            accounts,
            ..Inner::default()
        }));
        let shared = Arc::clone(&inner);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        GitHub { port, inner }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next authorization is `login`'s.
    pub fn sign_in_as(&self, login: &str) {
        self.inner.lock().unwrap().next = Some(login.to_string());
    }
}

fn serve(mut stream: TcpStream, inner: &Mutex<Inner>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let url = url::Url::parse(&format!("http://x{target}")).unwrap();
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let bearer = headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer ").or(a.strip_prefix("bearer ")))
        .map(str::to_string);
    let mut inner = inner.lock().unwrap();
    let (status, location, reply) = match (method, url.path()) {
        ("GET", "/login/oauth/authorize") => {
            let login = inner.next.clone().expect("the test chose an account");
            inner.counter += 1;
            let code = format!("code-{}", inner.counter);
            let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
            let challenge = query.get("code_challenge").cloned().unwrap_or_default();
            assert_eq!(query.get("client_id").map(String::as_str), Some(CLIENT_ID));
            inner
                .codes
                .insert(code.clone(), (login, challenge, redirect.clone()));
            let mut back = url::Url::parse(&redirect).unwrap();
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", query.get("state").map_or("", String::as_str));
            (302, Some(back.to_string()), Value::Null)
        }
        ("POST", "/login/oauth/access_token") => {
            let refused =
                |why: &str| json!({ "error": "bad_verification_code", "error_description": why });
            let code = form.get("code").cloned().unwrap_or_default();
            let reply = match inner.codes.remove(&code) {
                _ if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) => {
                    refused("wrong client secret")
                }
                None => refused("unknown or used code"),
                Some((_, _, redirect)) if form.get("redirect_uri") != Some(&redirect) => {
                    refused("redirect_uri mismatch")
                }
                Some((login, challenge, _)) => {
                    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                    let digest = Sha256::digest(verifier.as_bytes());
                    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                    if computed != challenge {
                        refused("PKCE verifier does not match")
                    } else {
                        inner.counter += 1;
                        let token = format!("gho_{}", inner.counter);
                        inner.tokens.insert(token.clone(), login);
                        json!({ "access_token": token, "token_type": "bearer", "scope": "read:org" })
                    }
                }
            };
            (200, None, reply)
        }
        ("GET", path) if path.starts_with("/api/v3/") => {
            let login = bearer.and_then(|t| inner.tokens.get(&t).cloned());
            match (login, path) {
                (None, _) => (401, None, json!({ "message": "Bad credentials" })),
                (Some(login), "/api/v3/user") => (200, None, json!({ "login": login, "id": 7 })),
                (Some(login), "/api/v3/user/orgs") => {
                    let orgs = &inner.accounts[&login].orgs;
                    (
                        200,
                        None,
                        json!(
                            orgs.iter()
                                .map(|o| json!({ "login": o }))
                                .collect::<Vec<_>>()
                        ),
                    )
                }
                (Some(login), "/api/v3/user/teams") => {
                    let teams = &inner.accounts[&login].teams;
                    let list: Vec<Value> = teams
                        .iter()
                        .map(
                            |(org, slug)| json!({ "slug": slug, "organization": { "login": org } }),
                        )
                        .collect();
                    (200, None, json!(list))
                }
                _ => (404, None, json!({ "message": "Not Found" })),
            }
        }
        _ => (404, None, json!({ "message": "Not Found" })),
    };
    drop(inner);
    let body = if reply.is_null() {
        String::new()
    } else {
        reply.to_string()
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(location) = location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
}
