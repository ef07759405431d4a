//! `ftw serve`: turn the flags and the manifest into a `Config`, then serve it.

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::Result;

pub fn run(args: ServeArgs) -> Result<()> {
    crate::logging::init();
    let (config, manifest) = Config::from_args(args)?;
    crate::server::run(config, manifest)
}
