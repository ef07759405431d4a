//! `[tools.ID.webhook]`: a secret read from a private file (required: a webhook without
//! one is refused), the signature scheme and its headers, the user the runs belong to,
//! and where each argument's value comes from (`payload.a.b`, `header.Name`,
//! `query.name`), each naming an argument of the tool that is not a file.

use std::ops::Range;

use toml::Spanned;

use crate::manifest::arg::{Arg, Kind};
use crate::manifest::diagnostic::{quoted, suggestion};
use crate::manifest::raw::RawWebhook;
use crate::manifest::{
    DEFAULT_REPLAY_WINDOW, DEFAULT_WEBHOOK_BODY, Signature, ValueSource as Source, Webhook,
};

use super::{Checker, Declared};

impl Checker<'_> {
    pub(super) fn webhook(
        &mut self,
        raw: Spanned<RawWebhook>,
        args: &[(Range<usize>, Arg)],
        declared: &Declared,
    ) -> Option<Webhook> {
        let span = raw.span();
        let raw = raw.into_inner();
        let secret = match &raw.secret_file {
            None => {
                self.error_help(
                    span.clone(),
                    "a webhook needs `secret_file`: without a secret anyone could start the tool".into(),
                    "put a long random secret in a file only ftw's user can read (`ftw gen-secret > hook.secret; chmod 600 hook.secret`) and name it here".into(),
                );
                None
            }
            Some(file) => self.webhook_secret(file),
        };
        let signature = self.signature(&raw, &span);
        let user = match &raw.user {
            None => {
                self.error(
                    span.clone(),
                    "a webhook needs `user`: the user its runs belong to".into(),
                );
                None
            }
            Some(user) if declared.open || declared.users.iter().any(|u| u == user.get_ref()) => {
                Some(user.get_ref().clone())
            }
            Some(user) => {
                let hint = suggestion(
                    user.get_ref(),
                    declared.users.iter().map(String::as_str),
                    |s| format!("\"{s}\""),
                );
                self.error(
                    user.span(),
                    format!(
                        "the webhook runs as {}, who is not a user of this manifest{hint}",
                        quoted(user.get_ref())
                    ),
                );
                None
            }
        };
        let mut sources = indexmap::IndexMap::new();
        let mut ok = true;
        for (name, from) in raw.args {
            let Some((_, arg)) = args.iter().find(|(_, a)| a.name == *name.get_ref()) else {
                let hint = suggestion(
                    name.get_ref(),
                    args.iter().map(|(_, a)| a.name.as_str()),
                    |s| format!("`{s}`"),
                );
                self.error(
                    name.span(),
                    format!(
                        "the webhook fills `{}`, which is not an argument of this tool{hint}",
                        name.get_ref()
                    ),
                );
                ok = false;
                continue;
            };
            if matches!(arg.kind, Kind::File { .. }) {
                self.error(
                    name.span(),
                    format!("a webhook cannot fill the file `{}`", arg.name),
                );
                ok = false;
                continue;
            }
            match source(from.get_ref()) {
                Some(source) => {
                    if !matches!(source, Source::Payload(_)) {
                        self.warning(
                            from.span(),
                            format!("{} is not covered by the signature: whoever relays a delivery can change it; prefer a payload value", quoted(from.get_ref())),
                        );
                    }
                    sources.insert(arg.name.clone(), source);
                }
                None => {
                    self.error_help(
                        from.span(),
                        format!("{} is not where a value can come from", quoted(from.get_ref())),
                        "write payload.PATH (e.g. \"payload.ref\", \"payload.commits.0.id\"), header.NAME or query.NAME".into(),
                    );
                    ok = false;
                }
            }
        }
        let replay_window =
            self.duration(raw.replay_window, "replay_window", DEFAULT_REPLAY_WINDOW);
        let max_body = self.size(raw.max_body, "max_body", DEFAULT_WEBHOOK_BODY);
        let (Some(secret), Some(signature), Some(user), true) = (secret, signature, user, ok)
        else {
            return None;
        };
        Some(Webhook {
            secret,
            signature,
            replay_window,
            max_body,
            user,
            args: sources,
        })
    }

    fn webhook_secret(&mut self, file: &Spanned<String>) -> Option<Vec<u8>> {
        let secret = self.private_file(file, "the webhook secret")?;
        if secret.len() < 16 {
            self.error(
                file.span(),
                format!(
                    "the webhook secret in {} is {} bytes; use at least 16 (`ftw gen-secret` makes 64)",
                    quoted(file.get_ref()),
                    secret.len()
                ),
            );
            return None;
        }
        Some(secret.into_bytes())
    }

    fn signature(&mut self, raw: &RawWebhook, span: &Range<usize>) -> Option<Signature> {
        let Some(kind) = &raw.signature else {
            self.error_help(
                span.clone(),
                "a webhook needs `signature`".into(),
                "\"github\", \"gitlab\" or \"hmac-sha256\"".into(),
            );
            return None;
        };
        let header_name = |h: &Spanned<String>| {
            let ok = !h.get_ref().is_empty()
                && h.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            ok.then(|| h.get_ref().clone())
        };
        match kind.get_ref().as_str() {
            "github" => Some(Signature::GitHub),
            "gitlab" => Some(Signature::GitLab),
            "hmac-sha256" => {
                let Some(header) = raw.header.as_ref().and_then(header_name) else {
                    self.error(
                        kind.span(),
                        "`hmac-sha256` needs `header`, the header name that carries the signature"
                            .into(),
                    );
                    return None;
                };
                let timestamp_header = raw.timestamp_header.as_ref().and_then(header_name);
                Some(Signature::Hmac {
                    header,
                    timestamp_header,
                })
            }
            other => {
                let hint = suggestion(other, ["github", "gitlab", "hmac-sha256"], |s| {
                    format!("\"{s}\"")
                });
                self.error(
                    kind.span(),
                    format!(
                        "`signature` {} is not a scheme ftw checks{hint}",
                        quoted(other)
                    ),
                );
                None
            }
        }
    }
}

/// `payload.a.0.b`, `header.X-Name` or `query.name`.
fn source(text: &str) -> Option<Source> {
    let (kind, rest) = text.split_once('.')?;
    if rest.is_empty() {
        return None;
    }
    match kind {
        "payload" => {
            let path: Vec<String> = rest.split('.').map(str::to_string).collect();
            path.iter()
                .all(|p| !p.is_empty())
                .then_some(Source::Payload(path))
        }
        "header" => Some(Source::Header(rest.to_string())),
        "query" => Some(Source::Query(rest.to_string())),
        _ => None,
    }
}
