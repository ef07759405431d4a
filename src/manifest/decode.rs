//! First pass: TOML text to the raw structs of `raw.rs`, keeping going after a problem.
//!
//! serde stops at the first error, but `ftw check` must report every problem at once. So
//! the document is parsed into toml's spanned tree (`DeTable`) and every table that can
//! fail on its own (`[server]`, `[auth]`, each user, each tool, each argument) is handed
//! to serde separately. Before serde sees a table, its keys are compared with the fields
//! of the target struct: every unknown key is reported with a did-you-mean, then dropped.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostic::{Diagnostics, Source, suggestion, tick};
use super::raw::{RawArg, RawAuth, RawNotify, RawServer, RawTool, RawUser};

/// The whole manifest after the first pass. `None` marks a table that could not be
/// decoded; its problems are already in the diagnostics.
#[derive(Debug, Default)]
pub struct RawManifest {
    pub title: Option<Spanned<String>>,
    pub server: Option<RawServer>,
    pub auth: Option<RawAuth>,
    /// `None` when the manifest has no `[auth.users]` table at all.
    pub users: Option<Vec<RawUserEntry>>,
    pub tools: Vec<RawToolEntry>,
    /// `[notify.NAME]`, in the order written.
    pub notify: Vec<(Spanned<String>, RawNotify)>,
}

#[derive(Debug)]
pub struct RawUserEntry {
    pub name: Spanned<String>,
    /// The file this user was written in (the manifest or its users file).
    pub source: Arc<Source>,
    /// What was written for them (a bare hash is a user without groups or TOTP).
    pub user: RawUser,
}

#[derive(Debug)]
pub struct RawToolEntry {
    pub id: Spanned<String>,
    pub tool: Option<RawTool>,
    pub args: Vec<RawArgEntry>,
}

#[derive(Debug)]
pub struct RawArgEntry {
    pub name: Spanned<String>,
    pub arg: Option<RawArg>,
}

const TOP_LEVEL_KEYS: &[&str] = &["title", "server", "auth", "tools", "notify"];

/// Decodes the manifest text. Syntax errors end the pass: what follows them is guesswork.
pub fn manifest(source: &Arc<Source>, diags: &mut Diagnostics) -> RawManifest {
    let mut raw = RawManifest::default();
    let Some(root) = parse_document(source, diags) else {
        return raw;
    };
    let mut d = Decoder { source, diags };
    for (key, value) in root {
        match key.get_ref().as_ref() {
            "title" => raw.title = d.value(value, "`title`"),
            "server" => raw.server = d.table(value, "[server]"),
            "auth" => {
                let Some(mut auth) = d.expect_table(value, "[auth]") else {
                    continue;
                };
                if let Some(users) = auth.get_mut().remove("users") {
                    raw.users = Some(d.users(users, "[auth.users]"));
                }
                raw.auth = d.table(as_value(auth), "[auth]");
            }
            "tools" => {
                if let Some(tools) = d.expect_table(value, "[tools]") {
                    for (id, tool) in tools.into_inner() {
                        raw.tools.push(d.tool(id, tool));
                    }
                }
            }
            "notify" => {
                if let Some(targets) = d.expect_table(value, "[notify]") {
                    for (name, target) in targets.into_inner() {
                        let name = owned(name);
                        let context = format!("[notify.{}]", name.get_ref());
                        if let Some(target) = d.table(target, &context) {
                            raw.notify.push((name, target));
                        }
                    }
                }
            }
            other => d.unknown_key(other, key.span(), "the top level", TOP_LEVEL_KEYS),
        }
    }
    raw
}

/// Decodes a users file: the same shape as `[auth.users]`, at its top level.
pub fn users_file(source: &Arc<Source>, diags: &mut Diagnostics) -> Vec<RawUserEntry> {
    let Some(root) = parse_document(source, diags) else {
        return Vec::new();
    };
    let span = 0..source.text.len();
    let mut d = Decoder { source, diags };
    d.users(Spanned::new(span, DeValue::Table(root)), "the users file")
}

fn parse_document<'i>(source: &'i Arc<Source>, diags: &mut Diagnostics) -> Option<DeTable<'i>> {
    let (root, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        for e in errors {
            diags.error(
                source,
                e.span(),
                format!("invalid TOML: {}", e.message().trim()),
            );
        }
        return None;
    }
    Some(root.into_inner())
}

fn as_value(table: Spanned<DeTable<'_>>) -> Spanned<DeValue<'_>> {
    let span = table.span();
    Spanned::new(span, DeValue::Table(table.into_inner()))
}

fn owned(key: Spanned<Cow<'_, str>>) -> Spanned<String> {
    let span = key.span();
    Spanned::new(span, key.into_inner().into_owned())
}

struct Decoder<'a, 'i> {
    source: &'i Arc<Source>,
    diags: &'a mut Diagnostics,
}

impl<'i> Decoder<'_, 'i> {
    fn tool(&mut self, id: Spanned<Cow<'i, str>>, value: Spanned<DeValue<'i>>) -> RawToolEntry {
        let id = owned(id);
        let context = format!("[tools.{}]", id.get_ref());
        let mut entry = RawToolEntry {
            id,
            tool: None,
            args: Vec::new(),
        };
        let Some(mut table) = self.expect_table(value, &context) else {
            return entry;
        };
        if let Some(args) = table.get_mut().remove("args") {
            let args_context = format!("{context}.args");
            if let Some(args) = self.expect_table(args, &args_context) {
                for (name, arg) in args.into_inner() {
                    let name = owned(name);
                    let arg_context =
                        format!("[tools.{}.args.{}]", entry.id.get_ref(), name.get_ref());
                    self.require_key(&arg, "type", &arg_context);
                    let arg = self.table(arg, &arg_context);
                    entry.args.push(RawArgEntry { name, arg });
                }
            }
        }
        let table = as_value(table);
        self.require_key(&table, "command", &context);
        entry.tool = self.table(table, &context);
        entry
    }

    /// Reports a required key that a table lacks. Those keys are `Option`s in the raw
    /// structs, so one missing key does not hide the table's other problems.
    fn require_key(&mut self, table: &Spanned<DeValue<'i>>, key: &str, context: &str) {
        let DeValue::Table(t) = table.get_ref() else {
            return;
        };
        if t.contains_key(key) {
            return;
        }
        self.diags.error_help(
            self.source,
            Some(table.span()),
            format!("{context} has no `{key}`"),
            missing_key_help(key),
        );
    }

    fn users(&mut self, value: Spanned<DeValue<'i>>, context: &str) -> Vec<RawUserEntry> {
        let mut users = Vec::new();
        let Some(table) = self.expect_table(value, context) else {
            return users;
        };
        for (name, value) in table.into_inner() {
            let name = owned(name);
            let user_context = format!("user `{}`", name.get_ref());
            let user = if value.get_ref().is_str() {
                self.value::<Spanned<String>>(value, &user_context)
                    .map(|password| RawUser {
                        password,
                        groups: Vec::new(),
                        totp: None,
                    })
            } else {
                self.table::<RawUser>(value, &user_context)
            };
            let Some(user) = user else { continue };
            users.push(RawUserEntry {
                name,
                source: Arc::clone(self.source),
                user,
            });
        }
        users
    }

    /// The value as a table, or a diagnostic saying that it should be one.
    fn expect_table(
        &mut self,
        value: Spanned<DeValue<'i>>,
        context: &str,
    ) -> Option<Spanned<DeTable<'i>>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(t) => Some(Spanned::new(span, t)),
            other => {
                self.diags.error(
                    self.source,
                    Some(span),
                    format!("{context} must be a table, not {}", other.type_str()),
                );
                None
            }
        }
    }

    /// Decodes a table into `T`, reporting unknown keys and serde's own complaint.
    fn table<T: DeserializeOwned>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        context: &str,
    ) -> Option<T> {
        let mut table = self.expect_table(value, context)?;
        let known = field_names::<T>();
        let unknown: Vec<(String, Range<usize>)> = table
            .get_ref()
            .keys()
            .filter(|k| !known.contains(&k.get_ref().as_ref()))
            .map(|k| (k.get_ref().to_string(), k.span()))
            .collect();
        for (key, span) in unknown {
            table.get_mut().remove(key.as_str());
            self.unknown_key(&key, span, context, known);
        }
        self.value(as_value(table), context)
    }

    /// Decodes any value into `T`; a type mismatch becomes a diagnostic.
    fn value<T: DeserializeOwned>(
        &mut self,
        value: Spanned<DeValue<'i>>,
        context: &str,
    ) -> Option<T> {
        let span = value.span();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                let message = e.message().trim();
                let span = e.span().or(Some(span));
                if let Some(field) = message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.strip_suffix('`'))
                {
                    let message = format!("{context} has no `{field}`");
                    self.diags
                        .error_help(self.source, span, message, missing_key_help(field));
                } else {
                    let message = format!("{} (in {context})", plain_serde_message(message));
                    self.diags.error(self.source, span, message);
                }
                None
            }
        }
    }

    fn unknown_key(&mut self, name: &str, span: Range<usize>, context: &str, known: &[&str]) {
        let hint = suggestion(name, known.iter().copied(), tick);
        self.diags.error_help(
            self.source,
            Some(span),
            format!("unknown key `{name}` in {context}{hint}"),
            format!("known keys here: {}", known.join(", ")),
        );
    }
}

/// What to write when a required key is missing.
fn missing_key_help(key: &str) -> String {
    match key {
        "command" => "`command` lists the program and its arguments, such as \
                      command = [\"./backup.sh\", \"--db\", \"{db}\"]"
            .to_string(),
        "type" => format!("types: {}", super::arg::TYPE_NAMES.join(", ")),
        _ => format!("add `{key} = ...`"),
    }
}

/// The field names serde expects for `T`, found by asking its `Deserialize` impl with a
/// deserializer that only records what it is asked for.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// serde's messages speak Rust ("expected u16"); say it in the manifest's terms.
fn plain_serde_message(message: &str) -> String {
    const EXPECTED: [(&str, &str); 6] = [
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected a boolean", "expected true or false"),
        (
            "expected a sequence",
            "expected an array, such as [\"a\", \"b\"]",
        ),
        ("expected a string", "expected a string in quotes"),
        ("expected a map", "expected a table"),
    ];
    let mut text = message.replace("invalid type: ", "wrong type: ");
    for (rust, plain) in EXPECTED {
        text = text.replace(rust, plain);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table of the manifest with the keys the parser takes there (sub-tables named
    /// as keys: `users`, `tokens`, `args`). `docs/manifest.md` is tested against it.
    fn tables() -> Vec<(&'static str, Vec<&'static str>)> {
        let with = |keys: &[&'static str], more: &[&'static str]| {
            keys.iter().chain(more).copied().collect::<Vec<_>>()
        };
        vec![
            ("Top level", TOP_LEVEL_KEYS.to_vec()),
            ("`[server]`", field_names::<RawServer>().to_vec()),
            ("`[auth]`", with(field_names::<RawAuth>(), &["users"])),
            ("`[auth.users]`", field_names::<RawUser>().to_vec()),
            (
                "`[auth.tokens.NAME]`",
                field_names::<crate::manifest::raw::RawToken>().to_vec(),
            ),
            (
                "`[auth.oidc.NAME]`",
                field_names::<crate::manifest::raw::RawOidc>().to_vec(),
            ),
            (
                "`[auth.github]`",
                field_names::<crate::manifest::raw::RawGitHub>().to_vec(),
            ),
            (
                "`[auth.ldap]`",
                field_names::<crate::manifest::raw::RawLdap>().to_vec(),
            ),
            ("`[tools.ID]`", with(field_names::<RawTool>(), &["args"])),
            ("`[tools.ID.args.NAME]`", field_names::<RawArg>().to_vec()),
            (
                "`[tools.ID.schedule.NAME]`",
                field_names::<crate::manifest::raw::RawSchedule>().to_vec(),
            ),
            (
                "`[tools.ID.webhook]`",
                field_names::<crate::manifest::raw::RawWebhook>().to_vec(),
            ),
            ("`[notify.NAME]`", field_names::<RawNotify>().to_vec()),
        ]
    }

    /// The lines of the section whose heading contains `title`, up to the next heading
    /// of the same or a higher level.
    fn section<'a>(doc: &'a str, title: &str) -> Vec<&'a str> {
        let level = |l: &str| l.chars().take_while(|&c| c == '#').count();
        let mut lines = doc
            .lines()
            .skip_while(|l| !(l.starts_with('#') && l.contains(title)));
        let Some(heading) = lines.next() else {
            return Vec::new();
        };
        let depth = level(heading);
        lines
            .take_while(|l| !(l.starts_with('#') && level(l) <= depth))
            .collect()
    }

    #[test]
    fn the_reference_names_every_key_the_parser_takes() {
        let doc = include_str!("../../docs/manifest.md");
        let mut missing = Vec::new();
        for (table, keys) in tables() {
            let text = section(doc, table).join("\n");
            assert!(!text.is_empty(), "docs/manifest.md has no section {table}");
            for key in keys {
                // `key`, `[key]`, or inside a table name: `[key.X]`, `[X.key]`, `[X.key.Y]`.
                let forms = [
                    format!("`{key}`"),
                    format!("`[{key}]`"),
                    format!("[{key}."),
                    format!(".{key}]"),
                    format!(".{key}."),
                ];
                let named = forms.iter().any(|form| text.contains(form.as_str()));
                if !named {
                    missing.push(format!("{table}: {key}"));
                }
            }
        }
        assert!(missing.is_empty(), "not in docs/manifest.md: {missing:?}");
    }
}
