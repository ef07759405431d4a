//! Programs some tests need from the machine (curl, Chromium and chromedriver, ...).
//! A test whose program is missing says so on the terminal and passes, so `cargo test`
//! works anywhere; CI sets `FTW_REQUIRE_ALL=1` (or `FTW_REQUIRE_<NAME>=1` for one) and
//! then a missing program fails the test instead of skipping it silently.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether a test that needs `component` should run: `true` when `present`. When it is
/// absent: a visible SKIPPED line and `false`, or a failure when it is required.
#[track_caller]
pub fn available(component: &str, present: bool, install: &str) -> bool {
    if present {
        return true;
    }
    let var = format!("FTW_REQUIRE_{}", component.to_ascii_uppercase());
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| v != "0");
    assert!(
        !set("FTW_REQUIRE_ALL") && !set(&var),
        "{component} is required here (FTW_REQUIRE_ALL or {var}) but missing; {install}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {component} is not installed ({install})"
    );
    false
}

/// Finds a program: `$VAR`, then a fixed path (Debian's), then `PATH`.
pub fn find(var: &str, fixed: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    if Path::new(fixed).exists() {
        return Some(fixed.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
