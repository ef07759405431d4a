//! Fields that adapt: a choice whose options come from a command (`options_from`), and
//! a field shown only while another field has a given value (`show_if`). The manifest
//! fixes both here; `crate::options` runs the commands and `form` applies the rules.

use std::path::PathBuf;
use std::time::Duration;

use super::Value;
use crate::manifest::template::Template;

/// How long computed options are reused when the manifest does not say.
pub const DEFAULT_OPTIONS_TTL: Duration = Duration::from_secs(30);

/// `options_from`: a command that prints a `select`'s or `multiselect`'s options, run
/// by the argv rules of `command` (a fixed program, one element per value, no shell).
#[derive(Debug, Clone)]
pub struct OptionsFrom {
    /// A bare name (looked up on PATH) or a path from the tool's workdir.
    pub program: PathBuf,
    /// The elements after the program; their placeholders name other arguments.
    pub args: Vec<Template>,
    /// How long one answer (for one user and the same values) is reused.
    pub ttl: Duration,
    /// The arguments its placeholders name, in order: the options change with them.
    pub depends_on: Vec<String>,
}

/// `show_if = { field = "mode", equals = "advanced" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowIf {
    pub field: String,
    /// Compared with the field's value as text (`true`/`false` for a checkbox).
    pub equals: String,
}

impl ShowIf {
    /// Whether the condition holds for the controlling field's checked value: its text
    /// equals `equals` (for a multiselect, one of its chosen options does).
    pub fn holds(&self, value: &Value) -> bool {
        value.texts().contains(&self.equals.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_compares_the_value_as_text() {
        let when = |equals: &str| ShowIf {
            field: "mode".into(),
            equals: equals.into(),
        };
        assert!(when("advanced").holds(&Value::One("advanced".into())));
        assert!(!when("advanced").holds(&Value::One("Advanced".into())));
        assert!(!when("advanced").holds(&Value::Absent));
        assert!(when("true").holds(&Value::Bool(true)));
        assert!(!when("true").holds(&Value::Bool(false)));
        let many = Value::Many(vec!["a".into(), "b".into()]);
        assert!(when("b").holds(&many));
    }
}
