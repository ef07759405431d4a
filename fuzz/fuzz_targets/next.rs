//! `next` after sign-in: whatever the client sends, the redirect stays on this site and
//! under the base path.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, bool)| {
    let (next, with_base) = input;
    let base = if with_base { "/ops" } else { "/" };
    let target = ftw::auth::next::safe_next(Some(next), base);
    assert!(target.starts_with('/'), "{target:?}");
    assert!(!target.starts_with("//"), "{target:?}");
    assert!(
        target.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'),
        "{target:?} must be printable ASCII without backslashes"
    );
    // Resolved the way a browser resolves a `Location`, it is the same site...
    let page = url::Url::parse("https://ftw.example/ops/login").unwrap();
    let resolved = page.join(&target).expect("a relative reference");
    assert_eq!(resolved.scheme(), "https", "{target:?}");
    assert_eq!(resolved.host_str(), Some("ftw.example"), "{target:?}");
    assert_eq!(resolved.port(), None, "{target:?}");
    assert!(resolved.username().is_empty() && resolved.password().is_none());
    // ...and inside the base path.
    if with_base {
        assert!(
            target == "/ops" || target.starts_with("/ops/"),
            "{target:?} left the base path"
        );
    }
});
