//! The names a manifest gives things (tool ids, user names, group names, token names)
//! and the one rule for each. The manifest checks, forward auth and the helper commands
//! all ask here, and each rule carries the sentence that explains it, so every message
//! about a bad name lists the same allowed characters.

/// Which characters a kind of name may use, and how to say so.
pub struct NameRule {
    /// What is named, for messages: "user name", "tool id", ...
    pub what: &'static str,
    /// Allowed besides ASCII letters and digits.
    extra: &'static str,
}

/// The longest name of any kind.
pub const MAX_NAME: usize = 64;

pub const TOOL_ID: NameRule = NameRule::new("tool id", "-_");
pub const USER: NameRule = NameRule::new("user name", "._-@");
/// `/` for GitHub teams (`@org/team`).
pub const GROUP: NameRule = NameRule::new("group name", "._-/");
pub const TOKEN: NameRule = NameRule::new("token name", "-_");
/// An identity provider's name: part of its callback URL.
pub const PROVIDER: NameRule = NameRule::new("provider name", "-_");

impl NameRule {
    const fn new(what: &'static str, extra: &'static str) -> NameRule {
        NameRule { what, extra }
    }

    pub fn allows(&self, name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || self.extra.contains(c))
    }

    /// The rule in words: "letters, digits, `.`, `_`, `-` and `@` (at most 64)".
    pub fn describe(&self) -> String {
        let mut parts = vec!["letters".to_string(), "digits".to_string()];
        parts.extend(self.extra.chars().map(|c| format!("`{c}`")));
        let last = parts.pop().unwrap_or_default();
        format!("{} and {last} (at most {MAX_NAME})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_allows_its_own_characters_only() {
        assert!(USER.allows("alice.o'neil".replace('\'', "").as_str()));
        assert!(USER.allows("ops@example.com"));
        assert!(!USER.allows("a b") && !USER.allows("") && !USER.allows(&"a".repeat(65)));
        assert!(!GROUP.allows("ops@x") && GROUP.allows("ops.eu-1"));
        assert!(TOOL_ID.allows("back_up-db") && !TOOL_ID.allows("back.up"));
        assert!(TOKEN.allows("ci-1") && !TOKEN.allows("ci:1"));
        assert_eq!(
            USER.describe(),
            "letters, digits, `.`, `_`, `-` and `@` (at most 64)"
        );
    }
}
