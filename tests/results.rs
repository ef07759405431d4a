//! Rich results (issue 15): a run's CSV, JSON (array of objects) and Markdown files on
//! its page, from a real tool's files: tables escaped and cut, Markdown without markup,
//! scripts or remote content, and everything else left to its download link.

use crate::support::HASH_A;
use crate::support::app::{App, Browser};

const ALICE_PW: &str = "hunter2-but-longer";

/// Writes one file of each kind, hostile where it can be.
const WRITE_SH: &str = r#"#!/bin/sh
cd "$FTW_OUTPUT_DIR"
printf 'name,note\n"Ada, L","<script>alert(1)</script>"\nBob,plain\n' > people.csv
printf '[{"host": "a", "load": 0.5}, {"host": "<b>b</b>", "extra": {"x": 1}}]\n' > hosts.json
printf '{"not": "a table"}\n' > object.json
printf '# Report\n\n<img src=x onerror=alert(1)>\n\n[site](https://example.com) [bad](javascript:alert(1))\n' > notes.md
i=0
{ echo n; while [ "$i" -lt 600 ]; do echo "$i"; i=$((i+1)); done; } > long.csv
echo done
"#;

#[tokio::test]
async fn csv_json_and_markdown_files_are_shown_escaped_on_the_run_page() {
    let manifest = format!(
        "[auth.users]\nalice = \"{HASH_A}\"\n\n[tools.write]\ncommand = [\"./write.sh\"]\n"
    );
    let app = App::with_files(&manifest, &[("write.sh", WRITE_SH)]);
    let mut b = app.browser();
    assert_eq!(b.login("alice", ALICE_PW).await.status, 303);
    let reply = b.run_tool("write", &[]).await;
    let id = Browser::run_id(&reply);
    app.finished(&id).await;
    let page = b.get(&format!("/runs/{id}")).await.body;

    // CSV: a table, quotes and commas kept, markup escaped.
    assert!(
        page.contains("<th scope=\"col\">name</th><th scope=\"col\">note</th>"),
        "{page}"
    );
    assert!(
        page.contains("<td>Ada, L</td><td>&#60;script&#62;alert(1)&#60;/script&#62;</td>"),
        "{page}"
    );
    assert!(
        !page.contains("<script>alert(1)"),
        "tool output became markup"
    );
    // JSON: the union of the keys, nested values as JSON text.
    assert!(
        page.contains(
            "<th scope=\"col\">host</th><th scope=\"col\">load</th><th scope=\"col\">extra</th>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<td>&#60;b&#62;b&#60;/b&#62;</td><td></td><td>{&#34;x&#34;:1}</td>"),
        "{page}"
    );
    // A JSON object is not a table: only its link.
    let object = &page[page.find(">object.json</a>").unwrap()..];
    let next = object.find("class=\"file\"").unwrap_or(object.len());
    assert!(!object[..next].contains("<table"), "{}", &object[..next]);
    // Markdown: rendered, with its HTML as text and no script link or remote image.
    assert!(page.contains("<h1>Report</h1>"), "{page}");
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(page.contains("<a href=\"https://example.com\">site</a>"));
    assert!(!page.contains("javascript:alert"), "{page}");
    // 600 rows: 500 shown, and the page says so.
    assert!(page.contains("Showing 500 of 600 rows"), "{page}");
    // The files stay downloadable as they are.
    let csv = b.get(&format!("/runs/{id}/files/people.csv")).await;
    assert!(csv.body.contains("<script>alert(1)</script>"));
}
