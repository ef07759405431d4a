//! One file per subcommand. Each takes its clap arguments, does its work, and returns an
//! `Error` whose kind sets the exit code; none of them calls `process::exit`.

mod cert;
mod check;
mod docs;
mod gen_secret;
mod gen_token;
mod hash_password;
mod serve;
mod totp_setup;

use crate::cli::Command;
use crate::error::Result;

pub fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve::run(*args),
        Command::Check { manifest } => check::run(&manifest),
        Command::GenSecret { bytes, base64 } => gen_secret::run(bytes.into(), base64),
        Command::HashPassword { verify } => hash_password::run(verify.as_deref()),
        Command::GenToken { name, user } => gen_token::run(&name, &user),
        Command::Cert(args) => cert::run(args),
        Command::TotpSetup { user, issuer } => totp_setup::run(&user, &issuer),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man => docs::man(),
    }
}
