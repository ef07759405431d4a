//! Notifications: when a run of a tool with `notify` ends as its `notify_on` says
//! (`success`: it succeeded; `failure`: it failed, timed out, could not start, or was
//! interrupted; a cancel is no news), each target is told: a URL gets the run as a
//! JSON POST (signed with `X-Ftw-Signature: sha256=<hex HMAC-SHA256>` when the target
//! has a secret), a mail target a short plain-text mail over SMTP (lettre; TLS, or
//! STARTTLS, except to this machine). Each delivery is its own task, tried up to
//! `ATTEMPTS` times with a doubling pause; a failure is logged each time and audited
//! (`notify-failed`) at the end. Nothing here holds up the run or its page.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value as Json, json};
use sha2::Sha256;

use crate::audit::Audit;
use crate::manifest::{NotifyOn, NotifyTarget};
use crate::runs::{Run, Status};

/// Tries per delivery.
pub const ATTEMPTS: u32 = 4;
/// The pause before the second try; it doubles after each.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// How long one try may take.
const TRY_FOR: Duration = Duration::from_secs(10);

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .timeout(TRY_FOR)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ftw/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain HTTP client")
});

/// Once `run` ends, tells `targets` if `on` asks for that ending.
pub fn when_done(
    run: Arc<Run>,
    targets: Vec<(String, NotifyTarget)>,
    on: NotifyOn,
    base: String,
    audit: Arc<Audit>,
) {
    if targets.is_empty() {
        return;
    }
    tokio::spawn(async move {
        run.finished().await;
        let status = run.status();
        let wanted = match status {
            Status::Succeeded => on.success,
            Status::Cancelled(_) | Status::Queued | Status::Running => false,
            _ => on.failure,
        };
        if !wanted {
            return;
        }
        let snap = run.snapshot();
        let news = json!({
            "event": "run-ended",
            "run": {
                "id": run.id,
                "tool": run.tool_id,
                "title": run.tool_title,
                "user": run.user,
                "status": status.word(),
                "text": super::format::status_text(&status),
                "exit_code": status.exit_code(),
                "duration_ms": snap.duration.map(|d| d.as_millis() as u64),
                "page": format!("{base}runs/{}", run.id),
            }
        });
        for (name, target) in targets {
            tokio::spawn(deliver(name, target, news.clone(), Arc::clone(&audit)));
        }
    });
}

/// One target, tried until it takes the news or the tries run out.
async fn deliver(name: String, target: NotifyTarget, news: Json, audit: Arc<Audit>) {
    let mut pause = FIRST_PAUSE;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match send(&target, &news).await {
            Ok(()) => return,
            Err(why) => {
                tracing::warn!(target = %name, attempt, "cannot notify: {why}");
                last = why;
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    audit.record(
        "notify-failed",
        json!({ "target": name, "run": news["run"]["id"], "reason": last }),
    );
}

async fn send(target: &NotifyTarget, news: &Json) -> Result<(), String> {
    match target {
        NotifyTarget::Webhook { url, secret } => {
            let body = news.to_string();
            let mut request = CLIENT
                .post(url)
                .header("Content-Type", "application/json")
                .body(body.clone());
            if let Some(secret) = secret {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
                mac.update(body.as_bytes());
                let signature = crate::auth::hex(&mac.finalize().into_bytes());
                request = request.header("X-Ftw-Signature", format!("sha256={signature}"));
            }
            // Never the whole URL in a message: webhook URLs often carry their secret.
            let shown = crate::manifest::url_origin(url);
            let answer = request
                .send()
                .await
                .map_err(|e| format!("{shown}: {}", e.without_url()))?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(format!("{shown} answered {}", answer.status()))
            }
        }
        NotifyTarget::Mail {
            smtp,
            from,
            to,
            credentials,
        } => mail(smtp, from, to, credentials.as_ref(), news).await,
    }
}

async fn mail(
    smtp: &str,
    from: &str,
    to: &[String],
    credentials: Option<&(String, String)>,
    news: &Json,
) -> Result<(), String> {
    let run = &news["run"];
    let text = |key: &str| run[key].as_str().unwrap_or_default().to_string();
    let mut message = Message::builder()
        .from(from.parse::<Mailbox>().map_err(|e| e.to_string())?)
        .subject(format!("[ftw] {}: {}", text("title"), text("text")));
    for address in to {
        message = message.to(address.parse::<Mailbox>().map_err(|e| e.to_string())?);
    }
    let body = format!(
        "{} ({}) {}.\n\nStarted by: {}\nRun: {}\nPage: {}\n",
        text("title"),
        text("tool"),
        text("text"),
        text("user"),
        text("id"),
        text("page"),
    );
    let message = message
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())?;
    let url = url::Url::parse(smtp).map_err(|e| e.to_string())?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let local = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1");
    let mut builder = match (url.scheme(), local) {
        ("smtps", _) => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(|e| e.to_string())?
        }
        (_, true) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| e.to_string())?,
    };
    if let Some(port) = url.port() {
        builder = builder.port(port);
    }
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = builder.timeout(Some(TRY_FOR)).build();
    transport
        .send(message)
        .await
        .map(drop)
        .map_err(|e| format!("{}: {e}", crate::manifest::url_origin(smtp)))
}
