//! Diagnostics: one problem in a manifest (or the users file beside it), where it is, and
//! how to fix it. They are collected, never thrown, so a single run of `ftw check` can
//! report every problem at once; rendering follows compilers users already know:
//!
//! ```text
//! tools.toml:12:8: error: unknown type "integer"; did you mean "int"?
//!    |
//! 12 | type = "integer"
//!    |        ^^^^^^^^^
//!    = help: ...
//! ```

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

/// A file the diagnostics point into: its name as the user gave it, and its text.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub source: Arc<Source>,
    /// Byte range in `source.text`; `None` for problems with the file as a whole.
    pub span: Option<Range<usize>>,
    pub message: String,
    pub help: Option<String>,
}

/// Every problem found so far, in the order found.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, source: &Arc<Source>, span: Option<Range<usize>>, message: String) {
        self.push(Severity::Error, source, span, message, None);
    }

    pub fn error_help(
        &mut self,
        source: &Arc<Source>,
        span: Option<Range<usize>>,
        message: String,
        help: String,
    ) {
        self.push(Severity::Error, source, span, message, Some(help));
    }

    pub fn warning(&mut self, source: &Arc<Source>, span: Option<Range<usize>>, message: String) {
        self.push(Severity::Warning, source, span, message, None);
    }

    fn push(
        &mut self,
        severity: Severity,
        source: &Arc<Source>,
        span: Option<Range<usize>>,
        message: String,
        help: Option<String>,
    ) {
        self.list.push(Diagnostic {
            severity,
            source: Arc::clone(source),
            span,
            message,
            help,
        });
    }

    pub fn error_count(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter().filter(|d| d.severity == Severity::Warning)
    }

    /// All diagnostics in the order of the text (file by file, as first met), then a
    /// one-line summary naming the file.
    pub fn render_report(&self, file: &str) -> String {
        let mut files: Vec<&str> = Vec::new();
        for d in &self.list {
            if !files.contains(&d.source.name.as_str()) {
                files.push(&d.source.name);
            }
        }
        let mut sorted: Vec<&Diagnostic> = self.list.iter().collect();
        sorted.sort_by_key(|d| {
            let file = files.iter().position(|f| *f == d.source.name);
            (file, d.span.as_ref().map(|s| s.start))
        });
        let mut out = String::new();
        for d in sorted {
            out.push_str(&d.render());
            out.push('\n');
        }
        let errors = self.error_count();
        let warnings = self.list.len() - errors;
        let _ = write!(
            out,
            "{file}: {}{}",
            plural(errors, "error"),
            if warnings > 0 {
                format!(", {}", plural(warnings, "warning"))
            } else {
                String::new()
            }
        );
        out
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl Diagnostic {
    /// `FILE:LINE:COL: error: message`, then the source line with a caret under the
    /// culprit, then the help line if there is one.
    pub fn render(&self) -> String {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        let Some(span) = &self.span else {
            let _ = write!(out, "{}: {label}: {}", self.source.name, self.message);
            if let Some(help) = &self.help {
                let _ = write!(out, "\n  = help: {help}");
            }
            return out;
        };
        let text = &self.source.text;
        let start = char_boundary(text, span.start);
        let (line_no, line_start) = line_of(text, start);
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line = text[line_start..line_end].trim_end_matches('\r');
        let col = text[line_start..start].chars().count() + 1;
        // A span can start on the line's `\r` (or past the end of the text): the caret
        // then sits just after the last visible character.
        let start = start.min(line_start + line.len());
        let _ = write!(
            out,
            "{}:{line_no}:{col}: {label}: {}",
            self.source.name, self.message
        );

        // The caret covers the span on its first line, at least one character.
        let end = char_boundary(text, span.end.clamp(start, line_start + line.len()));
        let shown = |s: &str| s.replace('\t', "    ");
        let pad = shown(&text[line_start..start]).chars().count();
        let width = shown(&text[start..end]).chars().count().max(1);
        let gutter = line_no.to_string().len();
        let blank = " ".repeat(gutter);
        let _ = write!(
            out,
            "\n{blank} |\n{line_no} | {}\n{blank} | {}{}",
            shown(line),
            " ".repeat(pad),
            "^".repeat(width)
        );
        if let Some(help) = &self.help {
            let _ = write!(out, "\n{blank} = help: {help}");
        }
        out
    }
}

/// `offset` within `text`, moved back to the start of the character it falls in.
fn char_boundary(text: &str, offset: usize) -> usize {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// 1-based line number of byte `offset`, and the byte where that line starts.
fn line_of(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line_no, line_start)
}

/// The closest candidate to `wrong`, if one is close enough to be a likely typo:
/// edit distance under 3 (Damerau-Levenshtein, so "bd" finds "db"; just uses 3 too, and less than the candidate's length), or
/// one word a prefix of the other ("integer" -> "int", "max" -> "max_length").
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wrong = wrong.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_ascii_lowercase();
            let distance = strsim::damerau_levenshtein(&wrong, &lower);
            let prefix = wrong.len().min(lower.len()) >= 3
                && (wrong.starts_with(&lower) || lower.starts_with(&wrong));
            if distance < 3 && distance < lower.len() {
                Some((distance, c))
            } else if prefix {
                Some((wrong.len().abs_diff(lower.len()) + 3, c))
            } else {
                None
            }
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, c)| c)
}

/// `; did you mean X?` with X formatted by `quote`, or nothing.
pub fn suggestion<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    quote: fn(&str) -> String,
) -> String {
    did_you_mean(wrong, candidates)
        .map(|s| format!("; did you mean {}?", quote(s)))
        .unwrap_or_default()
}

/// A name as written in TOML keys and commands: `name`.
pub fn tick(s: &str) -> String {
    format!("`{s}`")
}

/// A string value as written in TOML: "value".
pub fn quoted(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Arc<Source> {
        Arc::new(Source {
            name: "t.toml".into(),
            text: text.into(),
        })
    }

    /// A diagnostic pointing at the first `needle` in `text`.
    fn at(text: &str, needle: &str, severity: Severity, message: &str) -> Diagnostic {
        let source = source(text);
        let start = source.text.find(needle).unwrap();
        Diagnostic {
            severity,
            source,
            span: Some(start..start + needle.len()),
            message: message.into(),
            help: None,
        }
    }

    #[test]
    fn renders_line_column_snippet_and_caret() {
        let message = "unknown type \"integer\"; did you mean \"int\"?";
        let d = at(
            "a = 1\n[x]\ntype = \"integer\"\n",
            "\"integer\"",
            Severity::Error,
            message,
        );
        assert_eq!(
            d.render(),
            "t.toml:3:8: error: unknown type \"integer\"; did you mean \"int\"?\n  |\n3 | type = \"integer\"\n  |        ^^^^^^^^^"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let d = Diagnostic {
            help: Some("h".into()),
            ..at("title = \"héllo\" x\n", "x", Severity::Warning, "m")
        };
        let out = d.render();
        assert!(out.starts_with("t.toml:1:17: warning: m"), "{out}");
        assert!(out.ends_with("  |                 ^\n  = help: h"), "{out}");
    }

    /// Found by the manifest fuzzer: a span on a line's `\r` made the caret range
    /// run backwards.
    #[test]
    fn spans_on_a_carriage_return_or_inside_a_character_still_render() {
        for (text, span) in [
            ("\r", 1..1),
            ("\r", 0..1),
            ("a = 1\r\nb", 5..7),
            ("x = \"é\"", 6..6),
            ("", 3..9),
        ] {
            let d = Diagnostic {
                severity: Severity::Error,
                source: source(text),
                span: Some(span.clone()),
                message: "m".into(),
                help: None,
            };
            let out = d.render();
            assert!(out.ends_with('^'), "{text:?} {span:?}: {out}");
        }
        let d = Diagnostic {
            severity: Severity::Error,
            source: source("a = 1\r\n"),
            span: Some(5..6),
            message: "m".into(),
            help: None,
        };
        assert_eq!(
            d.render(),
            "t.toml:1:6: error: m\n  |\n1 | a = 1\n  |      ^"
        );
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(did_you_mean("integer", ["int", "text"]), Some("int"));
        assert_eq!(did_you_mean("colour", ["int", "text"]), None);
        assert_eq!(
            did_you_mean("tiemout", ["timeout", "title"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("Optoins", ["options"]), Some("options"));
        assert_eq!(did_you_mean("x", ["y"]), None);
    }
}
