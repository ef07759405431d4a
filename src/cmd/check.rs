//! `ftw check`: load a manifest exactly as `ftw serve` would and say what it holds, or
//! report every problem in it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, Tool};

pub fn run(path: &Path) -> Result<()> {
    let loaded = manifest::load(path).map_err(Error::Manifest)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    print!("{}", summary(&loaded.manifest));
    print!("{}", providers(&loaded.manifest));
    Ok(())
}

/// What to register at each identity provider.
fn providers(manifest: &Manifest) -> String {
    let base = crate::auth::next::home(&manifest.server.base_path);
    manifest
        .auth
        .oidc
        .iter()
        .map(|p| {
            format!(
                "sign-in `{}`: at {}, register the redirect URL https://YOUR-FTW{base}login/oidc/{}/callback\n",
                p.name, p.issuer, p.name
            )
        })
        .chain(manifest.auth.github.iter().map(|g| {
            format!(
                "sign-in `github`: at {}/settings/developers, register the callback URL https://YOUR-FTW{base}login/github/callback\n",
                g.url
            )
        }))
        .collect()
}

/// One line per tool: id, number of arguments, who may run it; columns aligned.
pub fn summary(manifest: &Manifest) -> String {
    let width = manifest.tools.keys().map(|id| id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for tool in manifest.tools.values() {
        let args = match tool.args.len() {
            1 => "1 arg".to_string(),
            n => format!("{n} args"),
        };
        out.push_str(&format!("{:<width$}  {args:<8}  {}\n", tool.id, who(tool)));
    }
    out
}

fn who(tool: &Tool) -> String {
    match &tool.allow {
        None => "every signed-in user".into(),
        Some(list) if list.is_empty() => "nobody (allow = [])".into(),
        Some(list) => list
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}
