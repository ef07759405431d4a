//! `ftw gen-token`: a new API token, shown once, and the manifest lines that hold only
//! its hash.

use crate::auth::tokens;
use crate::error::{Error, Result};

pub fn run(name: &str, user: &str) -> Result<()> {
    let valid = |s: &str, extra: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c) || extra.contains(c))
    };
    if !valid(name, "") {
        return Err(Error::usage(format!(
            "--name {name:?}: a token name may only use letters, digits, `-` and `_`"
        )));
    }
    if !valid(user, ".@") {
        return Err(Error::usage(format!(
            "--user {user:?} is not a user name ftw accepts"
        )));
    }
    let (token, hash) = tokens::generate();
    println!("{token}");
    println!();
    println!("The token is shown only now. Put this in the manifest (it holds only the hash):");
    println!();
    println!("[auth.tokens.{name}]");
    println!("hash = \"{}\"", tokens::manifest_form(&hash));
    println!("user = \"{user}\"");
    println!();
    println!("Then call the API with:  Authorization: Bearer {token}");
    Ok(())
}
