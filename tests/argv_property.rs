//! A property, checked on thousands of generated values: whatever value a form or the
//! API sends, if the server accepts it, it reaches the program as exactly one argv
//! element (one per chosen option of a multiselect), in its place, and free text
//! arrives byte for byte.

use ftw::exec::{Plan, RunInfo};
use ftw::form::{Submission, check};
use ftw::manifest::{Tool, Value};
use indexmap::IndexMap;
use proptest::prelude::*;

/// One tool per type, its argument optional: `prog -- {v} --v={v}`.
fn tool(kind: &str) -> Tool {
    let extra = match kind {
        "select" => "options = [\"a\", \"b c\", \"$(id)\", \"-x\"]\nrequired = false\n",
        "multiselect" => "options = [\"a\", \"b c\", \"$(id)\", \"-x\"]\nrequired = false\n",
        "bool" => "flag = \"--on\"\n",
        _ => "required = false\n",
    };
    let command = if kind == "multiselect" {
        r#"["/bin/echo", "--", "{v}"]"#
    } else {
        r#"["/bin/echo", "--", "{v}", "--v={v}"]"#
    };
    let text =
        format!("[tools.t]\ncommand = {command}\n[tools.t.args.v]\ntype = \"{kind}\"\n{extra}");
    let dir = tempfile::tempdir().unwrap();
    let loaded = ftw::manifest::load_str("t.toml", text, dir.path()).unwrap();
    loaded.manifest.tools["t"].clone()
}

/// The argv for `values` sent as field `v`, or `None` when the server refuses them.
fn argv(tool: &Tool, values: &[String]) -> Option<(Value, Vec<String>)> {
    let submission = Submission {
        fields: values
            .iter()
            .map(|v| ("v".to_string(), v.clone()))
            .collect(),
        uploads: Vec::new(),
    };
    let checked = check(tool, &submission).ok()?;
    let no_files = IndexMap::new();
    let plan = Plan::new(
        tool,
        &checked.values,
        &RunInfo {
            id: "r",
            output_dir: std::path::Path::new("/nonexistent"),
            file_names: &no_files,
        },
    );
    Some((checked.values["v"].clone(), plan.args))
}

/// Text a user (or an attacker) might send: any characters at all, and pieces that
/// mean something to a shell, an option parser or a browser.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "$(id)",
        "`id`",
        ";",
        "|",
        "&&",
        "\n",
        "\r\n",
        "'",
        "\"",
        " ",
        "\t",
        "--",
        "-",
        "=",
        "{v}",
        "{{",
        "}}",
        "\\",
        "*",
        "~",
        "$HOME",
        "<script>",
        "\u{202e}",
        "日本",
        "\u{0}",
        "%00",
        "a",
        "1",
        "@",
        ":",
        "/",
        ".",
        "#",
        "e",
        "2026-11-22",
        "T",
        "http://",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(pieces, 0..8).prop_map(|p| p.concat()),
    ]
}

const SINGLE: &[&str] = &[
    "text", "textarea", "password", "email", "url", "int", "float", "select", "date", "time",
    "datetime", "color",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_accepted_value_is_exactly_one_argv_element(
        kind in prop::sample::select(SINGLE),
        value in hostile_text(),
    ) {
        let tool = tool(kind);
        if let Some((checked, args)) = argv(&tool, std::slice::from_ref(&value)) {
            match checked {
                Value::One(v) => {
                    prop_assert_eq!(&args, &vec!["--".to_string(), v.clone(), format!("--v={v}")]);
                    prop_assert!(!v.contains('\0'));
                    match kind {
                        "text" | "password" => prop_assert_eq!(v, value),
                        "textarea" => prop_assert_eq!(v, value.replace("\r\n", "\n")),
                        _ => {}
                    }
                }
                // Left empty with no default: every element naming it is dropped.
                Value::Absent => prop_assert_eq!(args, vec!["--".to_string()]),
                other => prop_assert!(false, "{kind} gave {other:?}"),
            }
        } else {
            prop_assert!(!value.is_empty(), "an empty optional {kind} was refused");
        }
    }

    #[test]
    fn each_chosen_option_is_exactly_one_argv_element(
        values in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!["a", "b c", "$(id)", "-x"]).prop_map(String::from),
                hostile_text(),
            ],
            0..6,
        ),
    ) {
        let tool = tool("multiselect");
        if let Some((checked, args)) = argv(&tool, &values) {
            let chosen: Vec<String> = values.iter().filter(|v| !v.is_empty()).cloned().collect();
            match checked {
                Value::Many(many) => {
                    prop_assert_eq!(&many, &chosen);
                    prop_assert_eq!(args, [vec!["--".to_string()], chosen].concat());
                }
                Value::Absent => prop_assert_eq!(args, vec!["--".to_string()]),
                other => prop_assert!(false, "multiselect gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_checkbox_is_its_flag_or_nothing(value in hostile_text()) {
        let tool = tool("bool");
        if let Some((checked, args)) = argv(&tool, std::slice::from_ref(&value)) {
            match checked {
                Value::Bool(true) => prop_assert_eq!(args, vec!["--", "--on", "--v=--on"]),
                Value::Bool(false) => prop_assert_eq!(args, vec!["--"]),
                other => prop_assert!(false, "bool gave {other:?}"),
            }
        }
    }
}
