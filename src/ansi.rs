//! Tool output to HTML, as it streams: every character escaped, ANSI colours and styles
//! (SGR) turned into `<span class>`es, every other escape sequence dropped.
//!
//! Output arrives in arbitrary chunks that can split a UTF-8 character or an escape
//! sequence, and colours carry over from one chunk to the next; `vte` (the parser behind
//! Alacritty) keeps that state, so each chunk converts to a self-contained fragment that
//! can be appended to the page. Classes, not `style=` attributes, carry the colours: the
//! CSP allows no inline styles. Truecolor is mapped to the nearest of xterm's 256 colours,
//! which the stylesheet defines.

use std::fmt::Write as _;

use vte::{Params, Parser, Perform};

/// A streaming converter; one per output stream being rendered.
pub struct AnsiHtml {
    parser: Parser,
    sink: Sink,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct Style {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    strike: bool,
    /// The text came from stderr (not an SGR attribute: resets keep it).
    stderr: bool,
}

#[derive(Default)]
struct Sink {
    out: String,
    style: Style,
    /// The style of the span currently open in `out`, if one is.
    open: Option<Style>,
    /// A `\r` waits to see whether `\n` follows.
    pending_cr: bool,
}

impl Default for AnsiHtml {
    fn default() -> Self {
        AnsiHtml {
            parser: Parser::new(),
            sink: Sink::default(),
        }
    }
}

impl AnsiHtml {
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts the next chunk; the result closes every span it opens.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.push_stream(bytes, false)
    }

    /// Converts the next chunk, from stderr if `stderr` (its text gets class `e`).
    pub fn push_stream(&mut self, bytes: &[u8], stderr: bool) -> String {
        self.sink.style.stderr = stderr;
        self.parser.advance(&mut self.sink, bytes);
        self.sink.close();
        std::mem::take(&mut self.sink.out)
    }

    /// Converts a whole buffer with a fresh converter.
    pub fn convert(bytes: &[u8]) -> String {
        AnsiHtml::new().push(bytes)
    }
}

impl Sink {
    fn text(&mut self, c: char) {
        if self.pending_cr {
            self.pending_cr = false;
            self.text('\n');
        }
        if self.open != Some(self.style) {
            self.close();
            if self.style != Style::default() {
                self.out.push_str("<span class=\"");
                self.style.write_classes(&mut self.out);
                self.out.push_str("\">");
                self.open = Some(self.style);
            }
        }
        match c {
            '<' => self.out.push_str("&lt;"),
            '>' => self.out.push_str("&gt;"),
            '&' => self.out.push_str("&amp;"),
            '"' => self.out.push_str("&quot;"),
            '\'' => self.out.push_str("&#39;"),
            c => self.out.push(c),
        }
    }

    fn close(&mut self) {
        if self.open.take().is_some_and(|s| s != Style::default()) {
            self.out.push_str("</span>");
        }
    }

    fn sgr(&mut self, params: &Params) {
        let codes: Vec<u16> = params.iter().flatten().copied().collect();
        let reset = Style {
            stderr: self.style.stderr,
            ..Style::default()
        };
        if codes.is_empty() {
            self.style = reset;
            return;
        }
        let mut i = 0;
        while i < codes.len() {
            let s = &mut self.style;
            match codes[i] {
                0 => *s = reset,
                1 => s.bold = true,
                2 => s.dim = true,
                3 => s.italic = true,
                4 => s.underline = true,
                9 => s.strike = true,
                22 => (s.bold, s.dim) = (false, false),
                23 => s.italic = false,
                24 => s.underline = false,
                29 => s.strike = false,
                n @ 30..=37 => s.fg = Some((n - 30) as u8),
                n @ 90..=97 => s.fg = Some((n - 90 + 8) as u8),
                39 => s.fg = None,
                n @ 40..=47 => s.bg = Some((n - 40) as u8),
                n @ 100..=107 => s.bg = Some((n - 100 + 8) as u8),
                49 => s.bg = None,
                n @ (38 | 48) => {
                    let (colour, used) = extended_colour(&codes[i + 1..]);
                    if n == 38 {
                        s.fg = colour.or(s.fg);
                    } else {
                        s.bg = colour.or(s.bg);
                    }
                    i += used;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// `5;N` (256 colours) or `2;R;G;B` (truecolor, mapped to the nearest of the 256); the
/// colour and how many codes it used.
fn extended_colour(rest: &[u16]) -> (Option<u8>, usize) {
    match rest {
        [5, n, ..] => (u8::try_from(*n).ok(), 2),
        [2, r, g, b, ..] => {
            let c = |v: &u16| (*v).min(255) as u8;
            (Some(nearest_256(c(r), c(g), c(b))), 4)
        }
        _ => (None, rest.len()),
    }
}

/// The xterm-256 index closest to an RGB colour (the 6x6x6 cube or the grey ramp).
pub fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let level = |v: u8| {
        LEVELS
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| (i32::from(**l) - i32::from(v)).abs())
            .map_or(0, |(i, _)| i as u8)
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = 16 + 36 * ri + 6 * gi + bi;
    let cube_rgb = (
        LEVELS[ri as usize],
        LEVELS[gi as usize],
        LEVELS[bi as usize],
    );
    let grey_avg = (u16::from(r) + u16::from(g) + u16::from(b)) / 3;
    let grey_i = ((grey_avg.saturating_sub(3)) / 10).min(23) as u8;
    let grey_v = 8 + 10 * grey_i;
    let dist = |(a, b2, c): (u8, u8, u8)| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        d(a, r) + d(b2, g) + d(c, b)
    };
    if dist((grey_v, grey_v, grey_v)) < dist(cube_rgb) {
        232 + grey_i
    } else {
        cube
    }
}

impl Style {
    fn write_classes(&self, out: &mut String) {
        let mut classes: Vec<String> = Vec::new();
        if let Some(fg) = self.fg {
            classes.push(format!("f{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("g{bg}"));
        }
        for (on, class) in [
            (self.bold, "b"),
            (self.dim, "d"),
            (self.italic, "i"),
            (self.underline, "u"),
            (self.strike, "s"),
            (self.stderr, "e"),
        ] {
            if on {
                classes.push(class.into());
            }
        }
        out.push_str(&classes.join(" "));
    }
}

impl Perform for Sink {
    fn print(&mut self, c: char) {
        self.text(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                self.pending_cr = false;
                self.text('\n');
            }
            b'\t' => self.text('\t'),
            // A lone carriage return (progress bars) starts a new line; CR LF is one.
            b'\r' => {
                if self.pending_cr {
                    self.text('\n');
                }
                self.pending_cr = true;
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        if action == 'm' && intermediates.is_empty() && !ignore {
            self.sgr(params);
        }
    }
}

/// The stylesheet rules for the 256 colour classes (`.fN` foreground, `.gN` background)
/// and the text styles, appended to the embedded stylesheet.
pub fn palette_css() -> String {
    const BASIC: [&str; 16] = [
        "#1d1f21", "#cc342b", "#2f9e44", "#c99e00", "#3971ed", "#a36ac7", "#1f9ea5", "#c5c8c6",
        "#7a7f87", "#ff5f56", "#5bd75b", "#f5d94a", "#6b9cff", "#d08cff", "#4fd6de", "#ffffff",
    ];
    let mut css = String::from(
        ".output .b{font-weight:700}.output .d{opacity:.7}.output .i{font-style:italic}\
         .output .u{text-decoration:underline}.output .s{text-decoration:line-through}\
         .output .e{color:var(--stderr)}\n",
    );
    for n in 0..=255u16 {
        let colour = match n {
            0..=15 => BASIC[n as usize].to_string(),
            16..=231 => {
                const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
                let i = n - 16;
                let (r, g, b) = (
                    LEVELS[(i / 36) as usize],
                    LEVELS[(i / 6 % 6) as usize],
                    LEVELS[(i % 6) as usize],
                );
                format!("#{r:02x}{g:02x}{b:02x}")
            }
            _ => {
                let v = 8 + 10 * (n - 232);
                format!("#{v:02x}{v:02x}{v:02x}")
            }
        };
        let _ = writeln!(
            css,
            ".output .f{n}{{color:{colour}}}.output .g{n}{{background:{colour}}}"
        );
    }
    css
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_output_is_escaped() {
        assert_eq!(
            AnsiHtml::convert(b"<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn colours_become_classes_and_reset() {
        let cases: [(&[u8], &str); 4] = [
            (
                b"a\x1b[1;31mred\x1b[0m b",
                r#"a<span class="f1 b">red</span> b"#,
            ),
            (b"\x1b[38;5;208mo", r#"<span class="f208">o</span>"#),
            (b"\x1b[38;2;30;144;255mx", r#"<span class="f33">x</span>"#),
            (b"\x1b[92;44mx", r#"<span class="f10 g4">x</span>"#),
        ];
        for (input, html) in cases {
            assert_eq!(AnsiHtml::convert(input), html, "{input:?}");
        }
    }

    #[test]
    fn stderr_is_its_own_class_and_survives_resets() {
        let mut c = AnsiHtml::new();
        assert_eq!(c.push_stream(b"ok ", false), "ok ");
        assert_eq!(
            c.push_stream(b"bad\x1b[31m red\x1b[0m plain", true),
            r#"<span class="e">bad</span><span class="f1 e"> red</span><span class="e"> plain</span>"#
        );
        assert_eq!(c.push_stream(b"ok", false), "ok");
    }

    #[test]
    fn state_and_sequences_carry_across_chunks() {
        let mut c = AnsiHtml::new();
        let first = c.push(b"\x1b[3");
        let second = c.push(b"2mgre");
        let third = c.push(b"en\xe2\x9c");
        let fourth = c.push(b"\x93\x1b[0m.");
        assert_eq!(first, "");
        assert_eq!(second, "<span class=\"f2\">gre</span>");
        assert_eq!(third, "<span class=\"f2\">en</span>");
        assert_eq!(fourth, "<span class=\"f2\">\u{2713}</span>.");
    }

    #[test]
    fn other_escapes_and_controls_are_dropped() {
        assert_eq!(
            AnsiHtml::convert(b"a\x1b[2Jb\x1b]0;title\x07c\x07d\x08e"),
            "abcde"
        );
        assert_eq!(AnsiHtml::convert(b"1\r\n2\r3"), "1\n2\n3");
        assert_eq!(AnsiHtml::convert(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn escaped_output_cannot_open_a_span() {
        let html = AnsiHtml::convert(b"\x1b[31m<span class=\"x\" onclick=alert(1)>");
        assert!(!html.contains("<span class=\"x\""));
        assert!(html.contains("&lt;span class=&quot;x&quot;"));
    }

    #[test]
    fn palette_has_every_class() {
        let css = palette_css();
        assert!(css.contains(".output .f0{") && css.contains(".output .g255{"));
    }
}
