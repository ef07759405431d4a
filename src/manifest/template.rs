//! Argv templates: one element of a tool's `command`, with `{name}` placeholders.
//!
//! The rules are manifest.md's: a value fills its placeholder inside that one element and
//! never splits it; an element that is exactly `{name}` for a multiselect becomes one
//! element per chosen option; an element that mentions a value the user left out is
//! dropped whole; `{{` and `}}` are literal braces. There is no shell anywhere, so there
//! is nothing to quote.

use std::ops::Range;

/// One parsed `command` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Literal(String),
    /// `{name}`, with the byte range of the whole placeholder in the element's text.
    Placeholder {
        name: String,
        at: Range<usize>,
    },
}

/// A template syntax problem, with the byte range in the element's text.
#[derive(Debug, PartialEq)]
pub struct SyntaxError {
    pub at: Range<usize>,
    pub message: String,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, SyntaxError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((i, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|&(_, c)| c) == Some('{') => {
                    rest.next();
                    literal.push('{');
                }
                '}' if rest.peek().map(|&(_, c)| c) == Some('}') => {
                    rest.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(SyntaxError {
                        at: i..i + 1,
                        message: "a lone `}`; write `}}` for a literal brace".into(),
                    });
                }
                '{' => {
                    let Some(close) = text[i..].find('}').map(|n| i + n) else {
                        return Err(SyntaxError {
                            at: i..text.len(),
                            message: "a `{` that is never closed; write `{{` for a literal brace"
                                .into(),
                        });
                    };
                    let name = &text[i + 1..close];
                    if !is_name(name) {
                        return Err(SyntaxError {
                            at: i..close + 1,
                            message: format!(
                                "`{{{name}}}` is not a placeholder: write `{{name}}` with an \
                                 argument's name, or `{{{{` for a literal brace"
                            ),
                        });
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Placeholder {
                        name: name.to_string(),
                        at: i..close + 1,
                    });
                    while rest.peek().is_some_and(|&(j, _)| j <= close) {
                        rest.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    pub fn placeholders(&self) -> impl Iterator<Item = (&str, &Range<usize>)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder { name, at } => Some((name.as_str(), at)),
            Part::Literal(_) => None,
        })
    }

    /// The placeholder's name when the element is exactly one placeholder.
    pub fn lone_placeholder(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Placeholder { name, .. }] => Some(name),
            _ => None,
        }
    }

    /// Appends this element's argv elements for one run. `fill` gives each
    /// placeholder's texts: none (no value: the element is dropped), one, or several
    /// (a multiselect: one element each, when the element is exactly the placeholder).
    pub fn expand<'a>(&self, fill: impl Fn(&str) -> Vec<&'a str>, argv: &mut Vec<String>) {
        if let Some(name) = self.lone_placeholder() {
            argv.extend(fill(name).into_iter().map(str::to_string));
            return;
        }
        let mut element = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => element.push_str(text),
                Part::Placeholder { name, .. } => match fill(name).as_slice() {
                    [value] => element.push_str(value),
                    // A list inside a larger element is refused when the manifest loads.
                    _ => return,
                },
            }
        }
        argv.push(element);
    }
}

/// Argument names: a letter, then letters, digits or `_` (they become form field names
/// and `FTW_ARG_<NAME>` variables).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str, fill: impl Fn(&str) -> Vec<&'static str>) -> Vec<String> {
        let mut argv = Vec::new();
        Template::parse(text).unwrap().expand(fill, &mut argv);
        argv
    }

    #[test]
    fn a_value_stays_one_element() {
        let hostile = "a b; $(id) `id` | x\n'\"";
        assert_eq!(
            expand("--label={label}", |_| vec![hostile]),
            vec![format!("--label={hostile}")]
        );
    }

    #[test]
    fn absent_values_drop_the_whole_element() {
        assert!(expand("--label={label}", |_| vec![]).is_empty());
        assert!(expand("{label}", |_| vec![]).is_empty());
        assert!(expand("{a}-{b}", |n| if n == "a" { vec!["x"] } else { vec![] }).is_empty());
    }

    #[test]
    fn a_lone_list_placeholder_becomes_one_element_per_value() {
        assert_eq!(expand("{tags}", |_| vec!["a", "b c"]), ["a", "b c"]);
        assert!(
            expand("--tag={tags}", |_| vec!["a", "b"]).is_empty(),
            "never joined"
        );
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(
            Template::parse("{{x}} {{").unwrap().parts,
            vec![Part::Literal("{x} {".into())]
        );
        assert_eq!(expand("{{{a}}}", |_| vec!["v"]), vec!["{v}"]);
    }

    #[test]
    fn syntax_errors_point_at_the_culprit() {
        assert_eq!(Template::parse("a}b").unwrap_err().at, 1..2);
        assert_eq!(Template::parse("x{ab").unwrap_err().at, 1..4);
        assert_eq!(Template::parse("{a b}").unwrap_err().at, 0..5);
        assert_eq!(Template::parse("{}").unwrap_err().at, 0..2);
    }

    #[test]
    fn empty_element_is_kept() {
        assert_eq!(expand("", |_| vec![]), vec![String::new()]);
    }
}
