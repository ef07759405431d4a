//! Manifest parsing: any text, valid TOML or not, is either a manifest or a report of
//! diagnostics; never a panic. Every diagnostic renders with its caret, whatever the
//! characters around it (tabs, wide characters, lines without an end).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// An empty folder for relative paths (`workdir`, `users_file`) to point into.
fn base_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fuzz_target!(|text: &str| {
    match ftw::manifest::load_str("fuzz.toml", text.to_string(), base_dir()) {
        Ok(loaded) => {
            for tool in loaded.manifest.tools.values() {
                // Every placeholder of a valid manifest names an argument.
                for template in &tool.args_template {
                    for (name, _) in template.placeholders() {
                        assert!(tool.arg(name).is_some(), "{name} is not an argument");
                    }
                }
            }
        }
        Err(report) => assert!(!report.is_empty()),
    }
});
