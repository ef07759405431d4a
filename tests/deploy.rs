//! The deployment examples do what they say: `examples/deploy/ftw-api.sh` (curl) runs,
//! starts and cancels tools of the bundled `examples/tools.toml` through the API, with
//! a token made by `ftw gen-token`, exactly as the README shows.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Test;
use crate::support::server::Server;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The bundled example, plus a token for `admin` appended the way the README says.
fn example_server() -> (Server, String) {
    let test = Test::new();
    copy_dir(&examples(), test.path());
    let made = Test::new()
        .args(&["gen-token", "--user", "admin", "--name", "readme"])
        .run();
    made.success();
    let token = made.stdout.lines().next().unwrap().to_string();
    let block: String = made
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("[auth.tokens"))
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let manifest = test.path().join("tools.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push('\n');
    text.push_str(&block);
    std::fs::write(&manifest, text).unwrap();
    (Server::start(test, &[]), token)
}

fn client(server: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("sh")
        .arg(examples().join("deploy/ftw-api.sh"))
        .args(args)
        .env("FTW_URL", format!("http://127.0.0.1:{}", server.port))
        .env("FTW_TOKEN", token)
        .output()
        .expect("sh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn have_curl() -> bool {
    let found = Command::new("curl").arg("--version").output().is_ok();
    crate::support::external::available("curl", found, "sudo apt-get install curl")
}

#[test]
fn the_api_client_runs_starts_and_cancels_example_tools() {
    if !have_curl() {
        return;
    }
    let (server, token) = example_server();

    let (code, out, err) = client(
        &server,
        &token,
        &["run", "greet", "name=Ada \"the\" $(first)", "times:=2"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Hello, Ada \\\"the\\\" $(first)!")
            || out.contains("Hello, Ada \"the\" $(first)!"),
        "{out}"
    );

    let (code, out, _) = client(&server, &token, &["tools"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"id\":\"slow-counter\""), "{out}");

    let (code, id, err) = client(&server, &token, &["start", "slow-counter", "seconds:=30"]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    assert!(!id.is_empty());
    let (code, out, _) = client(&server, &token, &["cancel", &id]);
    assert_eq!(code, 0);
    assert!(out.contains(&id), "{out}");
    let (code, out, _) = client(&server, &token, &["follow", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("\"status\":\"cancelled\""), "{out}");

    // A tool that fails hands its exit code to the shell.
    let (code, out, _) = client(&server, &token, &["run", "greet", "times:=9"]);
    assert_ne!(code, 0, "{out}");
}

#[test]
fn curl_uploads_a_file_as_the_readme_shows() {
    if !have_curl() {
        return;
    }
    let (server, token) = example_server();
    let out = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .args([
            "-F",
            &format!("file=@{}", examples().join("tools.toml").display()),
        ])
        .arg(format!(
            "http://127.0.0.1:{}/api/tools/wordcount/runs?wait=true",
            server.port
        ))
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["exit_code"], 0, "{body}");
    assert!(
        body["output"]
            .as_str()
            .unwrap()
            .contains("Counting tools.toml"),
        "{body}"
    );
}
