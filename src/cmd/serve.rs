//! `ftw serve`: load and validate the manifest, then serve it.

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::manifest;

pub fn run(args: ServeArgs) -> Result<()> {
    let loaded = manifest::load(&args.manifest).map_err(Error::Manifest)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    Err(Error::runtime(
        "the manifest is valid, but this build of ftw cannot serve it yet",
    ))
}
