//! Replicas waking each other: whenever the writer commits something about a run
//! (output, its start, its end, a cancel), it sends `NOTIFY ftw_runs, 'RUN_ID'` in the
//! same transaction, so PostgreSQL delivers it on commit and never for a write that
//! rolled back. Each replica keeps one connection that `LISTEN`s and hands the ids to
//! whoever subscribed (replicas following a run, the owner of a run asked to cancel).
//! If the connection drops, it is made again; followers also look every second, so a
//! lost notification only delays them.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::Target;

pub const CHANNEL: &str = "ftw_runs";

/// Listens until the runtime stops, reconnecting after a second when the connection
/// fails.
pub async fn listen(target: Target, changes: broadcast::Sender<String>) {
    loop {
        match target.config.connect(target.tls.clone()).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = tx.send(n.payload().to_string());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        while let Some(id) = rx.recv().await {
                            let _ = changes.send(id);
                        }
                    }
                    Err(e) => tracing::warn!("cannot listen for other replicas: {e}"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!("cannot listen for other replicas: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
