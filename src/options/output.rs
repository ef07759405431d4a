//! What an options command printed, read as options: one per line (`value`, or
//! `value<TAB>label`), or a JSON array of strings or of `{"value", "label"}` objects.
//! Every value is checked like a manifest's `options` entry: non-empty, no control
//! characters (so no NUL), at most `MAX_VALUE` bytes, none twice. One bad value refuses
//! the whole list, with the line it is on: a half list would hide the mistake.

use serde_json::Value as Json;

/// One option: what is submitted and passed, and what the form shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// The longest value or label, in bytes.
pub const MAX_VALUE: usize = 1024;
/// The most options one command may print.
pub const MAX_OPTIONS: usize = 5000;

/// The options in `stdout`, or what is wrong with it.
pub fn parse(stdout: &[u8]) -> Result<Vec<Choice>, String> {
    let text = std::str::from_utf8(stdout).map_err(|e| {
        format!(
            "printed bytes that are not UTF-8 (at byte {})",
            e.valid_up_to()
        )
    })?;
    let choices = if text.trim_start().starts_with('[') {
        json(text)?
    } else {
        lines(text)?
    };
    if choices.len() > MAX_OPTIONS {
        return Err(format!("printed more than {MAX_OPTIONS} options"));
    }
    for (i, choice) in choices.iter().enumerate() {
        if choices[..i].iter().any(|c| c.value == choice.value) {
            return Err(format!(
                "printed the option {:?} twice",
                short(&choice.value)
            ));
        }
    }
    Ok(choices)
}

fn lines(text: &str) -> Result<Vec<Choice>, String> {
    let mut choices = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (value, label) = line.split_once('\t').unwrap_or((line, line));
        let at = format!("line {}", n + 1);
        choices.push(choice(value, label, &at)?);
    }
    Ok(choices)
}

fn json(text: &str) -> Result<Vec<Choice>, String> {
    let items: Vec<Json> = serde_json::from_str(text)
        .map_err(|e| format!("printed JSON that is not an array of options ({e})"))?;
    let mut choices = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let at = format!("item {}", n + 1);
        let (value, label) = match item {
            Json::String(s) => (s.as_str(), s.as_str()),
            Json::Object(o) => {
                let Some(Json::String(value)) = o.get("value") else {
                    return Err(format!("{at} has no \"value\" string"));
                };
                match o.get("label") {
                    None | Some(Json::Null) => (value.as_str(), value.as_str()),
                    Some(Json::String(label)) => (value.as_str(), label.as_str()),
                    Some(_) => return Err(format!("{at}: \"label\" must be a string")),
                }
            }
            _ => {
                return Err(format!(
                    "{at} is not a string or a {{\"value\", \"label\"}} object"
                ));
            }
        };
        choices.push(choice(value, label, &at)?);
    }
    Ok(choices)
}

fn choice(value: &str, label: &str, at: &str) -> Result<Choice, String> {
    for (what, text) in [("value", value), ("label", label)] {
        if text.len() > MAX_VALUE {
            return Err(format!(
                "printed a {what} of {} bytes on {at} (at most {MAX_VALUE})",
                text.len()
            ));
        }
        if text.contains('\0') {
            return Err(format!("printed a NUL character on {at}"));
        }
        if text.chars().any(char::is_control) {
            return Err(format!("printed a control character on {at}"));
        }
    }
    if value.trim().is_empty() {
        return Err(format!("printed an empty value on {at}"));
    }
    Ok(Choice {
        value: value.to_string(),
        label: label.to_string(),
    })
}

/// A value as named in a message: at most 40 characters.
fn short(value: &str) -> String {
    value.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(choices: &[Choice]) -> Vec<(&str, &str)> {
        choices
            .iter()
            .map(|c| (c.value.as_str(), c.label.as_str()))
            .collect()
    }

    #[test]
    fn lines_with_optional_labels() {
        let choices = parse(b"prod\r\nstaging\tStaging (eu)\n\n").unwrap();
        assert_eq!(
            values(&choices),
            [("prod", "prod"), ("staging", "Staging (eu)")]
        );
        assert_eq!(parse(b"").unwrap(), Vec::new());
    }

    #[test]
    fn json_strings_and_objects() {
        let choices = parse(br#" ["a", {"value": "b", "label": "Bee"}, {"value": "c"}]"#).unwrap();
        assert_eq!(values(&choices), [("a", "a"), ("b", "Bee"), ("c", "c")]);
        assert!(
            parse(br#"[{"label": "x"}]"#)
                .unwrap_err()
                .contains("item 1")
        );
        assert!(parse(br#"[{"value": {"deep": 1}}]"#).is_err());
        assert!(parse(b"[1, 2]").unwrap_err().contains("not a string"));
        assert!(parse(b"[oops").unwrap_err().contains("not an array"));
    }

    #[test]
    fn hostile_output_refuses_the_whole_list_and_says_where() {
        assert_eq!(
            parse(b"ok\nbad\0value\n").unwrap_err(),
            "printed a NUL character on line 2"
        );
        let long = format!("ok\n{}\n", "x".repeat(100_000));
        assert!(
            parse(long.as_bytes())
                .unwrap_err()
                .contains("100000 bytes on line 2")
        );
        assert!(
            parse(b"a\x1b[31m\n")
                .unwrap_err()
                .contains("control character")
        );
        assert!(parse(b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert!(parse(b"a\nb\na\n").unwrap_err().contains("twice"));
        assert!(parse(b" \n").unwrap_err().contains("empty value"));
        let many: String = (0..=MAX_OPTIONS).map(|i| format!("o{i}\n")).collect();
        assert!(parse(many.as_bytes()).unwrap_err().contains("more than"));
    }
}
