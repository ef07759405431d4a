//! `ftw completions` and `ftw man`: generated from the clap types in `cli.rs`, so help,
//! completions and the manual cannot disagree. The checked-in copies under
//! `completions/` and `man/` are compared with this output by a test.
//!
//! clap_mangen renders one page per command; ftw's page puts every subcommand's synopsis
//! and options in a COMMANDS section, so `man ftw` is the whole reference.

use std::io::Write;

use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};

use crate::cli;
use crate::error::{Error, Result};

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli::command(), "ftw", &mut out);
    write_stdout(&out)
}

pub fn man() -> Result<()> {
    write_stdout(&man_page())
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| Error::runtime(format!("cannot write to standard output: {e}")))
}

/// The whole manual page, as roff.
pub fn man_page() -> Vec<u8> {
    let mut cmd = cli::command().disable_help_subcommand(true);
    cmd.build();
    // A fixed date keeps the page reproducible; the version says which ftw it is.
    let man = Man::new(cmd.clone())
        .date("")
        .source(format!("ftw {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    type Section = fn(&Man, &mut dyn Write) -> std::io::Result<()>;
    let sections: [Section; 4] = [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
    ];
    for section in sections {
        section(&man, &mut out).expect("writing to a Vec cannot fail");
    }

    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        let name = format!("ftw {}", sub.get_name());
        out.extend_from_slice(format!(".SS \"{name}\"\n").as_bytes());
        let page = Man::new(sub.clone());
        let mut body = Vec::new();
        page.render_synopsis_section(&mut body).expect("vec");
        page.render_description_section(&mut body).expect("vec");
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(&mut body).expect("vec");
        }
        // Each part starts with its own `.SH` heading; inside COMMANDS they are paragraphs.
        for line in String::from_utf8_lossy(&body).lines() {
            let line = match line {
                l if l.starts_with(".SH ") => ".PP",
                l => l,
            };
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }

    let mut extra = Roff::default();
    extra.control("SH", ["EXIT STATUS"]);
    extra.text([roman(
        "0 on success; 1 when the work failed (a file could not be written, a password did \
         not match); 2 when the command line or the manifest is wrong.",
    )]);
    extra.control("SH", ["ENVIRONMENT"]);
    extra.text([roman(
        "FTW_SECRET_KEY holds the session signing key itself (hex or base64, at least 32 \
         bytes). The flags of ftw serve can also be set with FTW_HOST, FTW_PORT, \
         FTW_TLS_CERT, FTW_TLS_KEY, FTW_SECRET_KEY_FILE, FTW_AUDIT_LOG and \
         FTW_SHUTDOWN_GRACE.",
    )]);
    extra.control("SH", ["EXAMPLES"]);
    for line in [
        "ftw check tools.toml",
        "ftw gen-secret > ftw.secret && chmod 600 ftw.secret",
        "ftw hash-password",
        "ftw cert --self-signed --san ftw.example.lan",
        "ftw serve tools.toml --tls-cert cert.pem --tls-key key.pem --secret-key-file ftw.secret",
    ] {
        extra.control("PP", []);
        extra.text([roman(line)]);
    }
    extra.control("SH", ["SEE ALSO"]);
    extra.text([roman(
        "The README and the manifest reference in the ftw source tree.",
    )]);
    out.extend_from_slice(extra.render().as_bytes());
    out
}
