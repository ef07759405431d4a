//! Form decoding to argv: any set of submitted fields is either refused or becomes an
//! argv in which the program and fixed options are the manifest's, every single value
//! is exactly one element, every multiselect choice one element, and free text arrives
//! byte for byte as it was sent (a textarea's CRLF as LF).

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ftw::exec::{Plan, RunInfo};
use ftw::form::{Submission, check};
use ftw::manifest::{Tool, Value};
use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;

const MANIFEST: &str = r#"
[tools.t]
command = ["/bin/echo", "fixed", "--", "{text}", "--text={text}", "{n}", "{x}", "{sel}",
           "{multi}", "{flag}", "{yes}", "{day}", "{mail}", "{area}", "{pw}", "{color}",
           "{link}", "{clock}", "{stamp}", "{pat}", "{{literal}}", "{n}{sel}"]
[tools.t.args.text]
type = "text"
required = false
[tools.t.args.n]
type = "int"
min = -5
max = 1000
default = 1
[tools.t.args.x]
type = "float"
default = 0.5
[tools.t.args.sel]
type = "select"
options = ["a", "b c", "$(id)"]
default = "a"
[tools.t.args.multi]
type = "multiselect"
options = ["x", "y;z", "-w"]
required = false
[tools.t.args.flag]
type = "bool"
flag = "--flag"
[tools.t.args.yes]
type = "bool"
[tools.t.args.day]
type = "date"
required = false
[tools.t.args.mail]
type = "email"
required = false
[tools.t.args.area]
type = "textarea"
required = false
[tools.t.args.pw]
type = "password"
required = false
[tools.t.args.color]
type = "color"
required = false
[tools.t.args.link]
type = "url"
required = false
[tools.t.args.clock]
type = "time"
required = false
[tools.t.args.stamp]
type = "datetime"
required = false
[tools.t.args.pat]
type = "text"
pattern = "[a-z]+(-[a-z]+)*"
required = false
"#;

/// The elements of `MANIFEST`'s command after the program.
const TEMPLATE: &[&str] = &[
    "fixed",
    "--",
    "{text}",
    "--text={text}",
    "{n}",
    "{x}",
    "{sel}",
    "{multi}",
    "{flag}",
    "{yes}",
    "{day}",
    "{mail}",
    "{area}",
    "{pw}",
    "{color}",
    "{link}",
    "{clock}",
    "{stamp}",
    "{pat}",
    "{{literal}}",
    "{n}{sel}",
];

fn tool() -> &'static Tool {
    static TOOL: OnceLock<(tempfile::TempDir, Tool)> = OnceLock::new();
    let (_, tool) = TOOL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let loaded = ftw::manifest::load_str("fuzz.toml", MANIFEST.into(), dir.path())
            .unwrap_or_else(|report| panic!("{report}"));
        let tool = loaded.manifest.tools["t"].clone();
        (dir, tool)
    });
    tool
}

#[derive(Arbitrary, Debug)]
enum Name {
    Declared(u8),
    Csrf,
    Other(String),
}

fuzz_target!(|fields: Vec<(Name, String)>| {
    let tool = tool();
    let fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(name, value)| {
            let name = match name {
                Name::Declared(i) => tool.args[usize::from(i) % tool.args.len()].name.clone(),
                Name::Csrf => "_csrf".into(),
                Name::Other(name) => name,
            };
            (name, value)
        })
        .collect();
    let submission = Submission {
        fields: fields.clone(),
        uploads: Vec::new(),
    };
    let Ok(checked) = check(tool, &submission) else {
        return;
    };
    // Every field that was sent is declared (or the CSRF token).
    for (name, _) in &fields {
        assert!(
            name == "_csrf" || tool.arg(name).is_some(),
            "{name} got through"
        );
    }
    let no_files = IndexMap::new();
    let plan = Plan::new(
        tool,
        &checked.values,
        &RunInfo {
            id: "run",
            output_dir: std::path::Path::new("/nonexistent"),
            file_names: &no_files,
        },
    );
    assert_eq!(plan.program, std::path::Path::new("/bin/echo"));
    assert_eq!(
        plan.args,
        expected_argv(tool, &checked.values),
        "{fields:?}"
    );
    assert!(plan.args.iter().all(|a| !a.contains('\0')));

    // Free text is passed through untouched.
    let sent = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(text) = sent("text").filter(|t| !t.is_empty()) {
        assert_eq!(checked.values["text"], Value::One(text));
    }
    if let Some(area) = sent("area").filter(|t| !t.is_empty()) {
        assert_eq!(
            checked.values["area"],
            Value::One(area.replace("\r\n", "\n"))
        );
    }
});

/// The argv by manifest.md's rules, written out the long way.
fn expected_argv(tool: &Tool, values: &IndexMap<String, Value>) -> Vec<String> {
    let one = |name: &str| -> Option<String> {
        match (&values[name], &tool.arg(name).unwrap().kind) {
            (Value::One(v), _) => Some(v.clone()),
            (Value::Bool(true), ftw::manifest::Kind::Bool { flag: Some(f) }) => Some(f.clone()),
            (Value::Bool(false), ftw::manifest::Kind::Bool { flag: Some(_) }) => None,
            (Value::Bool(b), _) => Some(b.to_string()),
            (Value::Absent, _) => None,
            (Value::Many(_), _) => panic!("{name} is not a multiselect"),
        }
    };
    let mut argv = Vec::new();
    for element in TEMPLATE {
        match *element {
            "--text={text}" => argv.extend(one("text").map(|t| format!("--text={t}"))),
            "{{literal}}" => argv.push("{literal}".into()),
            "{n}{sel}" => {
                if let (Some(n), Some(sel)) = (one("n"), one("sel")) {
                    argv.push(format!("{n}{sel}"));
                }
            }
            "{multi}" => match &values["multi"] {
                Value::Many(chosen) => argv.extend(chosen.iter().cloned()),
                Value::Absent => {}
                other => panic!("multi is {other:?}"),
            },
            lone if lone.starts_with('{') => {
                argv.extend(one(&lone[1..lone.len() - 1]));
            }
            fixed => argv.push(fixed.into()),
        }
    }
    argv
}
