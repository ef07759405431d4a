//! `ftw gen-token`: a new API token, shown once, and the manifest lines that hold only
//! its hash.

use crate::auth::tokens;
use crate::error::{Error, Result};
use crate::manifest::names;

pub fn run(name: &str, user: &str) -> Result<()> {
    if !names::TOKEN.allows(name) {
        return Err(Error::usage(format!(
            "--name {name:?} is not a token name ftw accepts: use {}",
            names::TOKEN.describe()
        )));
    }
    if !names::USER.allows(user) {
        return Err(Error::usage(format!(
            "--user {user:?} is not a user name ftw accepts: use {}",
            names::USER.describe()
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
