//! Where to go after signing in. Only a relative, same-site path under the base path is
//! followed; anything else (`https://evil`, `//evil`, `/\evil`, `javascript:`, control
//! characters, paths outside the base) falls back to the index page.

/// The safe target for `next`, given the base path ("/" or "/tools").
pub fn safe_next(next: Option<&str>, base_path: &str) -> String {
    let home = home(base_path);
    let Some(next) = next else { return home };
    let within_base =
        base_path == "/" || next == base_path || next.starts_with(&format!("{base_path}/"));
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && within_base
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        // Non-ASCII letters are fine in a path but not in a `Location` header.
        percent_encoding::utf8_percent_encode(next, percent_encoding::CONTROLS).to_string()
    } else {
        home
    }
}

/// The index page: the base path with a trailing slash.
pub fn home(base_path: &str) -> String {
    if base_path == "/" {
        "/".into()
    } else {
        format!("{base_path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_same_site_paths_are_followed() {
        for good in ["/", "/tools/backup", "/runs/abc?x=1#y"] {
            assert_eq!(safe_next(Some(good), "/"), good);
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/x\r\nSet-Cookie: a=b",
            "/a b",
            "",
            "tools",
            "/%0d%0a",
        ] {
            let got = safe_next(Some(bad), "/");
            assert!(
                got == "/" || got == bad && bad == "/%0d%0a",
                "{bad:?} -> {got:?}"
            );
        }
        assert_eq!(safe_next(None, "/"), "/");
    }

    #[test]
    fn non_ascii_paths_are_percent_encoded() {
        assert_eq!(
            safe_next(Some("/tools/é?q=ü"), "/"),
            "/tools/%C3%A9?q=%C3%BC"
        );
    }

    #[test]
    fn targets_stay_under_the_base_path() {
        assert_eq!(safe_next(Some("/ops/tools/x"), "/ops"), "/ops/tools/x");
        assert_eq!(safe_next(Some("/other"), "/ops"), "/ops/");
        assert_eq!(safe_next(Some("/opsx"), "/ops"), "/ops/");
        assert_eq!(safe_next(None, "/ops"), "/ops/");
    }
}
