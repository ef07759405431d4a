//! The checked-in completions and man page must match what the binary prints now. After
//! changing `cli.rs`, regenerate them with `FTW_BLESS=1 cargo test generated`.

use std::path::Path;

use crate::support::Test;

const FILES: [(&str, &[&str]); 6] = [
    ("completions/ftw.bash", &["completions", "bash"]),
    ("completions/_ftw", &["completions", "zsh"]),
    ("completions/ftw.fish", &["completions", "fish"]),
    ("completions/ftw.elv", &["completions", "elvish"]),
    ("completions/_ftw.ps1", &["completions", "powershell"]),
    ("man/ftw.1", &["man"]),
];

#[test]
fn generated_files_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("FTW_BLESS").is_some();
    for (file, args) in FILES {
        let out = Test::new().args(args).run();
        out.success();
        let path = root.join(file);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &out.stdout).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == out.stdout,
            "{file} is out of date: run `FTW_BLESS=1 cargo test generated` and commit it"
        );
    }
}

#[test]
fn man_page_documents_every_subcommand() {
    let out = Test::new().args(&["man"]).run();
    for sub in [
        "serve",
        "check",
        "gen-secret",
        "hash-password",
        "cert",
        "completions",
        "man",
    ] {
        out.stdout_has(&format!(".SS \"ftw {sub}\""));
    }
    out.stdout_has(".SH \"EXIT STATUS\"")
        .stdout_has("\\-\\-secret\\-key\\-file");
}
