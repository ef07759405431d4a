//! Whole-value regular expressions for `pattern`: anchored for the server, and
//! translated for the browser's `pattern` attribute only where it would read them the
//! same way.

use regex::Regex;

/// A whole-value regular expression: `source` as the manifest wrote it, `regex` anchored.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }
}

impl Pattern {
    /// The pattern for the HTML `pattern` attribute, or `None` when the browser would not
    /// read it the same way. Browsers compile `pattern` with JavaScript's `v` flag, where
    /// a bare `-`, `(`, `)`, `{`, `}`, `/` or `|` inside `[...]` is a syntax error that
    /// silently switches the check off; those are escaped. Rust-only syntax (inline flags
    /// such as `(?i)`, `\A`, `\z`, POSIX classes) leaves the check to the server alone.
    pub fn for_html(&self) -> Option<String> {
        let src = self.source.as_str();
        if src.contains("(?") && !src.contains("(?:")
            || src.contains("(?P")
            || src.contains("(?i")
            || src.contains("\\A")
            || src.contains("\\z")
            || src.contains("[:")
        {
            return None;
        }
        let chars: Vec<char> = src.chars().collect();
        let mut out = String::with_capacity(src.len() + 8);
        let mut in_class = false;
        let mut class_start = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 2;
                continue;
            }
            if !in_class {
                if c == '[' {
                    in_class = true;
                    out.push(c);
                    if chars.get(i + 1) == Some(&'^') {
                        out.push('^');
                        i += 1;
                    }
                    class_start = i + 1;
                } else {
                    out.push(c);
                }
                i += 1;
                continue;
            }
            match c {
                ']' if i > class_start => {
                    in_class = false;
                    out.push(']');
                }
                ']' => out.push_str("\\]"),
                '-' => {
                    let first = i == class_start;
                    let last = chars.get(i + 1) == Some(&']');
                    if first || last {
                        out.push_str("\\-");
                    } else if chars.get(i + 1) == Some(&'-') {
                        return None; // `--` is set subtraction in the v flag
                    } else {
                        out.push('-');
                    }
                }
                '(' | ')' | '{' | '}' | '/' | '|' | '[' => {
                    out.push('\\');
                    out.push(c);
                }
                '&' if chars.get(i + 1) == Some(&'&') => return None,
                c => out.push(c),
            }
            i += 1;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_made_safe_for_the_browser() {
        let html = |p: &str| Pattern::new(p).unwrap().for_html();
        assert_eq!(
            html("[a-z0-9-]{1,32}").as_deref(),
            Some("[a-z0-9\\-]{1,32}")
        );
        assert_eq!(
            html("[A-Za-z0-9 ,.'-]+").as_deref(),
            Some("[A-Za-z0-9 ,.'\\-]+")
        );
        assert_eq!(html("[-_a-z]+").as_deref(), Some("[\\-_a-z]+"));
        assert_eq!(html("[^(){}]+").as_deref(), Some("[^\\(\\)\\{\\}]+"));
        assert_eq!(html("[]a]").as_deref(), Some("[\\]a]"));
        assert_eq!(html("(?:ab|cd)\\d+").as_deref(), Some("(?:ab|cd)\\d+"));
        assert_eq!(html("(?i)abc"), None);
        assert_eq!(html("[[:alpha:]]+"), None);
    }
}
