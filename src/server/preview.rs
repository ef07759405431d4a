//! Rich results: a run's `*.csv` file, or `*.json` file holding an array of objects, is
//! shown on its run page as a table (sortable by the page's script); a `*.md` file as
//! Markdown. Everything a tool wrote is text to escape: the table's cells go through
//! the page template's escaping, and Markdown is rendered with its raw HTML turned into
//! text, images into their alt text, and links kept only to `http(s):` and `mailto:`.
//! Files over `MAX_BYTES` and rows past `MAX_ROWS` are left to the download link.

use std::io::Read;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use serde_json::Value as Json;

use super::State;
use crate::runs::{OutputFile, Run};

/// A file as the run page lists it.
pub struct FileView {
    pub name: String,
    pub size: u64,
    /// A raster image, shown inline.
    pub image: bool,
    pub preview: Option<Preview>,
}

/// The run's files with the previews their names ask for (read off the async threads).
pub async fn views(state: &State, run: &Run, files: Vec<OutputFile>) -> Vec<FileView> {
    let mut views = Vec::with_capacity(files.len());
    let mut previews = 0;
    for file in files {
        let preview = if previews < MAX_PREVIEWS && wanted(&file) {
            previews += 1;
            match state.runs.file(run, &file.name).await {
                Some((_, opened)) => {
                    let name = file.name.clone();
                    tokio::task::spawn_blocking(move || read(&name, opened))
                        .await
                        .ok()
                        .flatten()
                }
                None => None,
            }
        } else {
            None
        };
        views.push(FileView {
            name: file.name,
            size: file.size,
            image: file.image,
            preview,
        });
    }
    views
}

/// The largest file shown in the page.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// Rows of a table shown; the rest is in the file.
pub const MAX_ROWS: usize = 500;
/// Columns of a table shown.
pub const MAX_COLUMNS: usize = 50;
/// Files of one run shown as tables or Markdown; the rest are links only.
pub const MAX_PREVIEWS: usize = 5;

/// What the run page shows of a file, besides its link.
pub enum Preview {
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
        /// Rows in the file (more than `rows` when cut at `MAX_ROWS`).
        total: usize,
        /// Columns left out past `MAX_COLUMNS`.
        more_columns: usize,
    },
    /// Rendered Markdown, safe to put in the page as is (see the module comment).
    Markdown(String),
}

/// The kind of preview a file's name asks for, if any.
pub fn wanted(file: &OutputFile) -> bool {
    file.size <= MAX_BYTES && kind(&file.name).is_some()
}

#[derive(Clone, Copy)]
enum Kind {
    Csv,
    Json,
    Markdown,
}

fn kind(name: &str) -> Option<Kind> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(Kind::Csv),
        "json" => Some(Kind::Json),
        "md" | "markdown" => Some(Kind::Markdown),
        _ => None,
    }
}

/// The preview of `file` (named `name`), or `None` when it has none: not a kind that
/// has one, too large, not UTF-8, or not shaped as a table. Blocks on the disk.
pub fn read(name: &str, file: std::fs::File) -> Option<Preview> {
    let kind = kind(name)?;
    let mut text = String::new();
    file.take(MAX_BYTES + 1).read_to_string(&mut text).ok()?;
    if text.len() as u64 > MAX_BYTES {
        return None;
    }
    match kind {
        Kind::Csv => csv_table(&text),
        Kind::Json => json_table(&text),
        Kind::Markdown => Some(Preview::Markdown(markdown(&text))),
    }
}

fn csv_table(text: &str) -> Option<Preview> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let first = records.next()?.ok()?;
    let mut width = first.len();
    let head: Vec<String> = first.iter().take(MAX_COLUMNS).map(str::to_string).collect();
    let mut rows = Vec::new();
    let mut total = 0;
    for record in records {
        let record = record.ok()?;
        total += 1;
        width = width.max(record.len());
        if rows.len() < MAX_ROWS {
            rows.push(
                record
                    .iter()
                    .take(MAX_COLUMNS)
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    Some(table(head, rows, total, width))
}

fn json_table(text: &str) -> Option<Preview> {
    let Json::Array(items) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let objects: Vec<&serde_json::Map<String, Json>> =
        items.iter().map(Json::as_object).collect::<Option<_>>()?;
    // The first columns in order of appearance; the rest only counted (a set, so a file
    // of many distinct keys costs linear time, not quadratic).
    let mut head: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for object in &objects {
        for key in object.keys() {
            if seen.insert(key.as_str()) && head.len() < MAX_COLUMNS {
                head.push(key.clone());
            }
        }
    }
    let rows = objects
        .iter()
        .take(MAX_ROWS)
        .map(|o| head.iter().map(|k| cell(o.get(k))).collect())
        .collect();
    Some(table(head, rows, objects.len(), seen.len()))
}

/// A JSON value as a cell: strings as they are, `null` and missing keys empty, the
/// rest as compact JSON.
fn cell(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A table of at most `MAX_COLUMNS` columns (`head` and `rows` are cut to them
/// already) out of `width` in the file.
fn table(mut head: Vec<String>, mut rows: Vec<Vec<String>>, total: usize, width: usize) -> Preview {
    let shown = width.min(MAX_COLUMNS);
    head.resize(shown, String::new());
    for row in &mut rows {
        row.resize(shown, String::new());
    }
    Preview::Table {
        head,
        rows,
        total,
        more_columns: width - shown,
    }
}

/// Markdown as HTML with nothing a tool could use to put markup, scripts or remote
/// content in the page.
fn markdown(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut links_kept: Vec<bool> = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let kept = safe_link(&dest_url);
            links_kept.push(kept);
            kept.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => links_kept.pop().unwrap_or(false).then_some(event),
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn safe_link(url: &CowStr) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(preview: &Preview) -> (&[String], &[Vec<String>], usize) {
        match preview {
            Preview::Table {
                head, rows, total, ..
            } => (head, rows, *total),
            Preview::Markdown(_) => panic!("not a table"),
        }
    }

    #[test]
    fn csv_keeps_quotes_commas_and_uneven_rows() {
        let t = csv_table("name,note\n\"Ada, L\",\"said \"\"hi\"\"\"\nBob\n").unwrap();
        let (head, body, total) = rows(&t);
        assert_eq!(head, ["name", "note"]);
        assert_eq!(body[0], ["Ada, L", "said \"hi\""]);
        assert_eq!(body[1], ["Bob", ""]);
        assert_eq!(total, 2);
    }

    #[test]
    fn json_tables_are_arrays_of_objects_only() {
        let t = json_table(r#"[{"a": 1, "b": "x"}, {"b": null, "c": {"d": [1]}}]"#).unwrap();
        let (head, body, _) = rows(&t);
        assert_eq!(head, ["a", "b", "c"]);
        assert_eq!(body[0], ["1", "x", ""]);
        assert_eq!(body[1], ["", "", "{\"d\":[1]}"]);
        assert!(json_table("[1, 2]").is_none());
        assert!(json_table(r#"{"a": 1}"#).is_none());
    }

    #[test]
    fn wide_tables_are_cut_to_their_first_columns() {
        let keys: Vec<String> = (0..5000).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("[{{{}}}, {{\"z\": 1}}]", keys.join(", "));
        let Preview::Table {
            head,
            rows,
            more_columns,
            ..
        } = json_table(&text).unwrap()
        else {
            panic!("not a table");
        };
        assert_eq!(
            (head.len(), rows[0].len(), more_columns),
            (MAX_COLUMNS, MAX_COLUMNS, 5001 - MAX_COLUMNS)
        );
        let csv: String = (0..300).map(|i| format!("c{i},")).collect::<String>() + "\n1,2\n";
        let Preview::Table {
            head, more_columns, ..
        } = csv_table(&csv).unwrap()
        else {
            panic!("not a table");
        };
        assert_eq!((head.len(), more_columns), (MAX_COLUMNS, 301 - MAX_COLUMNS));
    }

    #[test]
    fn long_tables_are_cut_and_counted() {
        let text: String = std::iter::once("n\n".to_string())
            .chain((0..MAX_ROWS + 7).map(|i| format!("{i}\n")))
            .collect();
        let t = csv_table(&text).unwrap();
        let (_, body, total) = rows(&t);
        assert_eq!((body.len(), total), (MAX_ROWS, MAX_ROWS + 7));
    }

    #[test]
    fn markdown_never_carries_markup_scripts_or_remote_content() {
        let html = markdown(
            "# Title\n\n<script>alert(1)</script>\n\nHi <b onclick=x>there</b> \
             [ok](https://example.com) [bad](javascript:alert(1)) ![pic](https://evil/p.png)\n",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;b onclick=x&gt;"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com\">ok</a>"),
            "{html}"
        );
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("pic"), "the alt text stays: {html}");
    }
}
