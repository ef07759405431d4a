//! A submitted form, checked against its tool: what the browser (or a script) sent, in,
//! and either the typed values for `exec::Plan` or one message per field, out. Every rule
//! lives in `manifest::arg`; this module applies them to a whole submission and refuses
//! what no argument declares.

use std::path::PathBuf;

use indexmap::IndexMap;

use crate::manifest::{Kind, Tool, Value};
use crate::runs::RunArg;

/// The hidden field that carries the CSRF token; the only name not declared by the tool
/// (besides `REFRESH_FIELD`).
pub const CSRF_FIELD: &str = "_csrf";
/// The form's "Update choices" button, for browsers without JavaScript: the form comes
/// back with choices and shown fields for what was sent, and nothing runs.
pub const REFRESH_FIELD: &str = "_refresh";
/// Where errors about the form as a whole go (not about one field).
pub const FORM_ERROR: &str = "";

/// What arrived: text fields in order, and stored uploads.
#[derive(Debug, Default)]
pub struct Submission {
    pub fields: Vec<(String, String)>,
    pub uploads: Vec<Upload>,
}

/// An uploaded file, already stored under a name ftw chose.
#[derive(Debug, Clone)]
pub struct Upload {
    pub field: String,
    /// The name the client gave, for display only (never a path).
    pub client_name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// A submission that passed every check.
#[derive(Debug)]
pub struct Checked {
    /// By argument name, in the tool's order.
    pub values: IndexMap<String, Value>,
    /// Each argument as the run keeps it (shown, and what "Run again" fills in).
    pub args: Vec<RunArg>,
}

/// Field name -> message; `FORM_ERROR` for problems with the whole form.
pub type Errors = IndexMap<String, String>;

impl Submission {
    /// Every text value sent under `name`.
    pub fn values_of(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The button that asks for the form again with updated choices was pressed.
    pub fn refresh(&self) -> bool {
        self.fields.iter().any(|(k, _)| k == REFRESH_FIELD)
    }

    /// The text values by field of `tool` (uploads are not among them). A checkbox or
    /// multiselect that sent nothing is there with no value: leaving a box unticked is
    /// a choice, not "use the default".
    pub fn given(&self, tool: &Tool) -> std::collections::HashMap<String, Vec<String>> {
        let mut given: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (k, v) in &self.fields {
            given.entry(k.clone()).or_default().push(v.clone());
        }
        for arg in &tool.args {
            if matches!(arg.kind, Kind::Bool { .. } | Kind::Multiselect { .. }) {
                given.entry(arg.name.clone()).or_default();
            }
        }
        given
    }

    pub fn csrf(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks a submission against `tool`.
pub fn check(tool: &Tool, submission: &Submission) -> Result<Checked, Errors> {
    let mut errors = Errors::new();
    let mut undeclared: Vec<&str> = submission
        .fields
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(submission.uploads.iter().map(|u| u.field.as_str()))
        .filter(|name| *name != CSRF_FIELD && tool.arg(name).is_none())
        .collect();
    undeclared.dedup();
    if !undeclared.is_empty() {
        let mut names: Vec<String> = undeclared.iter().map(|n| shorten(n)).collect();
        names.sort();
        names.dedup();
        errors.insert(
            FORM_ERROR.into(),
            format!(
                "The form had fields this tool does not take: {}.",
                names.join(", ")
            ),
        );
    }

    let mut values = IndexMap::new();
    let mut args = Vec::new();
    for arg in &tool.args {
        let texts = submission.values_of(&arg.name);
        let uploads: Vec<&Upload> = submission
            .uploads
            .iter()
            .filter(|u| u.field == arg.name)
            .collect();
        let result = match &arg.kind {
            Kind::File { .. } => check_file(arg.required, &texts, &uploads),
            _ if !uploads.is_empty() => Err("takes text, not a file".to_string()),
            _ => arg.parse(&texts),
        };
        match result {
            Ok(value) => {
                let secret = matches!(arg.kind, Kind::Password(_) | Kind::File { .. });
                args.push(RunArg {
                    name: arg.name.clone(),
                    label: arg.label.clone(),
                    shown: display(&arg.kind, &value, &uploads),
                    again: (!secret).then(|| value.clone()),
                });
                values.insert(arg.name.clone(), value);
            }
            Err(message) => {
                errors.insert(arg.name.clone(), message);
            }
        }
    }
    if errors.is_empty() {
        Ok(Checked { values, args })
    } else {
        Err(errors)
    }
}

fn check_file(required: bool, texts: &[String], uploads: &[&Upload]) -> Result<Value, String> {
    if texts.iter().any(|t| !t.is_empty()) {
        return Err("must be an uploaded file".into());
    }
    match uploads {
        [] if required => Err("needs a file".into()),
        [] => Ok(Value::Absent),
        [one] => Ok(Value::One(one.path.display().to_string())),
        _ => Err("takes one file".into()),
    }
}

/// How a value appears on the run page and in logs.
fn display(kind: &Kind, value: &Value, uploads: &[&Upload]) -> String {
    match (kind, value) {
        (_, Value::Absent) => String::new(),
        (Kind::Password(_), _) => "***".into(),
        (Kind::File { .. }, _) => uploads
            .first()
            .map(|u| format!("{} ({} bytes)", u.client_name, u.size))
            .unwrap_or_default(),
        (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (_, value) => value.texts().join(", "),
    }
}

/// A name as shown in an error: at most 40 characters, control characters escaped.
fn shorten(name: &str) -> String {
    let short: String = name
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect();
    if name.chars().count() > 40 {
        format!("{short}…")
    } else {
        short
    }
}

/// A safe file name extension from a client's file name (".csv"), or nothing: ASCII
/// letters and digits only, at most 10 of them. The client's name never becomes a path;
/// only this is kept, so tools that look at extensions still work.
pub fn safe_extension(client_name: &str) -> String {
    let base = client_name.rsplit(['/', '\\']).next().unwrap_or("");
    match base.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 10
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

/// The client's file name made safe to show: the last path component, no control
/// characters, at most 100 characters.
/// A character that must not appear in a file name shown on a page: a control
/// character, or one that reorders text (bidi overrides and isolates, which can make
/// `exe.txt` of `txt.exe`).
pub fn misleads(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub fn display_name(client_name: &str) -> String {
    let base = client_name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !misleads(*c)).take(100).collect();
    if clean.is_empty() {
        "upload".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_kept_only_when_harmless() {
        assert_eq!(safe_extension("report.CSV"), ".csv");
        assert_eq!(safe_extension("../../etc/passwd"), "");
        assert_eq!(safe_extension("..\\x.txt"), ".txt");
        assert_eq!(safe_extension(".bashrc"), "");
        assert_eq!(safe_extension("a.tar.gz"), ".gz");
        assert_eq!(safe_extension("x.sh;rm -rf"), "");
        assert_eq!(safe_extension("x.\0"), "");
        assert_eq!(safe_extension(&"a".repeat(10_000)), "");
    }

    #[test]
    fn display_names_lose_paths_and_controls() {
        assert_eq!(display_name("../../x"), "x");
        assert_eq!(display_name("C:\\evil\\a\nb.txt"), "ab.txt");
        assert_eq!(display_name(""), "upload");
        assert_eq!(display_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(display_name("\u{2066}a\u{2069}"), "a");
        assert_eq!(display_name(&"é".repeat(500)).chars().count(), 100);
    }
}
