//! `[notify.NAME]` targets (a URL, or SMTP mail) and each tool's `notify` and
//! `notify_on`. Secrets come from private files; a URL or mail server across the
//! network must use TLS (clear text is for loopback only, as for the database).

use indexmap::IndexMap;
use toml::Spanned;

use crate::manifest::diagnostic::{quoted, suggestion};
use crate::manifest::raw::RawNotify;
use crate::manifest::{NotifyOn, NotifyTarget};

use super::Checker;

impl Checker<'_> {
    pub(super) fn notify_targets(
        &mut self,
        raw: Vec<(Spanned<String>, RawNotify)>,
    ) -> IndexMap<String, NotifyTarget> {
        let mut targets = IndexMap::new();
        for (name, target) in raw {
            if !self.name_follows(&crate::manifest::names::TOOL_ID, &name) {
                continue;
            }
            let span = name.span();
            let checked = match (&target.url, &target.smtp) {
                (Some(url), None) => self.notify_webhook(url, &target),
                (None, Some(smtp)) => self.notify_mail(smtp, &target),
                _ => {
                    self.error_help(
                        span,
                        format!("[notify.{}] needs `url` (a webhook) or `smtp` (mail), one of them", name.get_ref()),
                        "url = \"https://hooks.example.com/ftw\", or smtp = \"smtps://mail.example.com\" with `from` and `to`".into(),
                    );
                    None
                }
            };
            if let Some(target) = checked {
                targets.insert(name.into_inner(), target);
            }
        }
        targets
    }

    fn notify_webhook(&mut self, url: &Spanned<String>, raw: &RawNotify) -> Option<NotifyTarget> {
        let parsed = match url::Url::parse(url.get_ref()) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && loopback(u.host_str())) => u,
            Ok(u) if u.scheme() == "http" => {
                self.error(url.span(), format!("{} would send run details in the clear; use https:// (http:// only to this machine)", quoted(url.get_ref())));
                return None;
            }
            _ => {
                self.error(
                    url.span(),
                    format!("`url` {} is not an http(s) URL", quoted(url.get_ref())),
                );
                return None;
            }
        };
        let secret = match &raw.secret_file {
            Some(file) => Some(
                self.private_file(file, "the notification secret")?
                    .into_bytes(),
            ),
            None => None,
        };
        Some(NotifyTarget::Webhook {
            url: parsed.to_string(),
            secret,
        })
    }

    fn notify_mail(&mut self, smtp: &Spanned<String>, raw: &RawNotify) -> Option<NotifyTarget> {
        let ok_url = match url::Url::parse(smtp.get_ref()) {
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                self.error(
                    smtp.span(),
                    "`smtp` must not hold a user name or password; use `username` and `password_file`".into(),
                );
                return None;
            }
            Ok(u) if u.scheme() == "smtps" || u.scheme() == "smtp" => u.host_str().is_some(),
            _ => false,
        };
        if !ok_url {
            self.error_help(
                smtp.span(),
                format!("`smtp` {} is not a mail server address", quoted(smtp.get_ref())),
                "smtps://host[:465] (TLS), or smtp://host[:587] (STARTTLS; clear text only to this machine)".into(),
            );
            return None;
        }
        let Some(from) = &raw.from else {
            self.error(
                smtp.span(),
                "mail needs `from`, the sender's address".into(),
            );
            return None;
        };
        if raw.to.is_empty() {
            self.error(smtp.span(), "mail needs `to`, a list of addresses".into());
            return None;
        }
        let mut ok = true;
        for address in std::iter::once(from).chain(&raw.to) {
            if address
                .get_ref()
                .parse::<lettre::message::Mailbox>()
                .is_err()
            {
                self.error(
                    address.span(),
                    format!("{} is not a mail address", quoted(address.get_ref())),
                );
                ok = false;
            }
        }
        let credentials = match (&raw.username, &raw.password_file) {
            (Some(user), Some(file)) => Some((
                user.get_ref().clone(),
                self.private_file(file, "the mail password")?,
            )),
            (None, None) => None,
            _ => {
                self.error(
                    smtp.span(),
                    "give both `username` and `password_file`, or neither".into(),
                );
                return None;
            }
        };
        ok.then(|| NotifyTarget::Mail {
            smtp: smtp.get_ref().clone(),
            from: from.get_ref().clone(),
            to: raw.to.iter().map(|t| t.get_ref().clone()).collect(),
            credentials,
        })
    }

    /// A tool's `notify` (names of targets) and `notify_on` (default: failures).
    pub(super) fn tool_notify(
        &mut self,
        names: Option<Spanned<Vec<Spanned<String>>>>,
        on: Option<Spanned<Vec<Spanned<String>>>>,
        targets: &[String],
    ) -> (Vec<String>, NotifyOn) {
        let mut chosen = Vec::new();
        for name in names.map(Spanned::into_inner).unwrap_or_default() {
            if targets.iter().any(|t| t == name.get_ref()) {
                chosen.push(name.into_inner());
            } else {
                let hint = suggestion(name.get_ref(), targets.iter().map(String::as_str), |s| {
                    format!("\"{s}\"")
                });
                self.error(
                    name.span(),
                    format!(
                        "`notify` names {}, which is not a [notify.NAME] target{hint}",
                        quoted(name.get_ref())
                    ),
                );
            }
        }
        let mut when = NotifyOn {
            success: false,
            failure: true,
        };
        if let Some(on) = on {
            when.failure = false;
            for word in on.into_inner() {
                match word.get_ref().as_str() {
                    "success" => when.success = true,
                    "failure" => when.failure = true,
                    other => {
                        let hint =
                            suggestion(other, ["success", "failure"], |s| format!("\"{s}\""));
                        self.error(
                            word.span(),
                            format!(
                                "`notify_on` {} is not \"success\" or \"failure\"{hint}",
                                quoted(other)
                            ),
                        );
                    }
                }
            }
        }
        (chosen, when)
    }
}

fn loopback(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]" | "::1"))
}
