//! Every manifest under `examples/` is valid, with nothing to warn about.

use std::path::Path;

use crate::support::Test;

#[test]
fn every_example_manifest_checks_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            seen += 1;
            let out = Test::new().args(&["check", path.to_str().unwrap()]).run();
            out.success().stderr_is("");
            assert!(!out.stdout.is_empty(), "{} lists no tools", path.display());
        }
    }
    assert!(seen >= 1, "no example manifests found");
}
