//! `ftw hash-password`: argon2id PHC strings for `[auth.users]`, and `--verify` to check
//! a password against one. On a terminal the password is typed twice without echo; from
//! a pipe it is the first line of standard input, so scripts can use it.

use std::io::{BufRead, IsTerminal};

use crate::error::{Error, Result};
use crate::password;

pub fn run(verify: Option<&str>) -> Result<()> {
    match verify {
        Some(hash) => run_verify(hash),
        None => run_hash(),
    }
}

fn run_hash() -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let password = if interactive {
        let first = prompt("Password: ")?;
        password::check_length(first.as_bytes()).map_err(refused)?;
        let second = prompt("Repeat it: ")?;
        if first != second {
            return Err(Error::usage("the two passwords differ; nothing was hashed"));
        }
        first
    } else {
        read_line()?
    };
    password::check_length(password.as_bytes()).map_err(refused)?;
    let length = password.chars().count();
    if length < 12 {
        eprintln!(
            "warning: this password is only {length} characters long; 12 or more resist guessing far better"
        );
    }
    let hash = password::hash(password.as_bytes()).map_err(Error::runtime)?;
    println!("{hash}");
    if interactive {
        eprintln!("Paste it into the manifest, e.g. under [auth.users]:  alice = \"{hash}\"");
    }
    Ok(())
}

fn run_verify(hash: &str) -> Result<()> {
    password::check_hash(hash)
        .map_err(|why| Error::usage(format!("the hash given to --verify is not usable: {why}")))?;
    let password = if std::io::stdin().is_terminal() {
        prompt("Password: ")?
    } else {
        read_line()?
    };
    if password::verify(password.as_bytes(), hash) {
        eprintln!("ok: the password matches the hash");
        Ok(())
    } else {
        Err(Error::runtime("the password does not match the hash"))
    }
}

fn refused(why: String) -> Error {
    Error::usage(format!("{why}; nothing was hashed"))
}

fn prompt(text: &str) -> Result<String> {
    rpassword::prompt_password(text)
        .map_err(|e| Error::runtime(format!("cannot read the password from the terminal: {e}")))
}

/// The first line of standard input, without its line ending.
fn read_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::usage(format!("cannot read the password from standard input: {e}")))?;
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}
