//! Accepting connections: bind, say where ftw listens, serve each connection with
//! hyper-util (HTTP/1.1 and HTTP/2, over TLS when configured), and on SIGINT/SIGTERM
//! stop accepting, let open requests finish for the grace period, then return.
//!
//! warp's own server cannot do TLS, so the filter becomes a service (`warp::service`)
//! and each request gets the peer address as a `ClientAddr` extension on the way in.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use super::context::ClientAddr;
use super::{State, routes};
use crate::audit::Audit;
use crate::auth::passwords::Verifier;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runs::Runs;

/// How long a client may take to send its request headers (slowloris) or finish a TLS
/// handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head ftw reads (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

pub async fn serve(config: Config) -> Result<()> {
    let tls = match &config.tls {
        Some(files) => Some(TlsAcceptor::from(
            crate::tls::server_config(files).map_err(Error::usage)?,
        )),
        None => None,
    };
    let listener = TcpListener::bind(config.addr).await.map_err(|e| {
        Error::runtime(format!(
            "cannot listen on {}: {}",
            config.addr,
            crate::manifest::io_reason(&e)
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::runtime(format!("cannot read the listening address: {e}")))?;

    // Signal handlers go in before the announcement: a SIGTERM sent the moment the
    // `listening on` line appears must shut down gracefully, not kill the process.
    let shutdown = shutdown_signal()?;
    let mut shutdown = std::pin::pin!(shutdown);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let url = config.url(local);
    let grace = config.shutdown_grace;
    let announcement = announcement(&config, &url);
    let root = crate::runs::private_root()
        .map_err(|e| Error::runtime(format!("cannot make a private folder for runs: {e}")))?;
    let audit = Arc::new(Audit::open(config.audit_log.as_deref()).map_err(Error::runtime)?);
    let runs = Arc::new(Runs::new(
        root,
        config.max_runs,
        config.keep_runs,
        Arc::clone(&audit),
    ));
    let state = Arc::new(State::new(
        config,
        Verifier::for_this_machine(),
        Arc::clone(&runs),
        audit,
    ));
    let service = warp::service(routes::routes(state));
    let graceful = GracefulShutdown::new();
    print_now(&announcement);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let hyper_service =
                hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    let mut service = service.clone();
                    async move { service.call(req).await }
                });
            match tls {
                None => serve_connection(stream, hyper_service, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, hyper_service, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }

    drop(listener);
    tracing::info!(
        "shutting down: no new connections or runs; waiting up to {grace:?} for running tools and open requests"
    );
    // When the runs end, their live pages' event streams end too, and so do those
    // connections.
    let connections = async {
        if tokio::time::timeout(grace + crate::exec::KILL_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    };
    tokio::join!(runs.shutdown(grace), connections);
    Ok(())
}

async fn serve_connection<IO, S>(io: IO, service: S, watcher: hyper_util::server::graceful::Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = warp::reply::Response,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!("connection ended with an error: {e}");
    }
}

/// The start-up lines for stdout: the one-time password (when there are no users), then
/// `ftw: listening on URL`, which scripts and tests wait for.
fn announcement(config: &Config, url: &str) -> String {
    let mut text = String::new();
    if let Some(password) = &config.one_time_password {
        text.push_str(&format!(
            "ftw: {} has no users, so this run has one: sign in as \"admin\" with the one-time password\n\n    {password}\n\nftw: it changes every time ftw starts. To choose your own users, add [auth.users] (see `ftw hash-password`).\n",
            config.manifest_path.display()
        ));
    }
    text.push_str(&format!("ftw: listening on {url}\n"));
    text
}

fn print_now(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Registers SIGINT and SIGTERM now; the returned future ends when either arrives.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    let fail = |e: std::io::Error| Error::runtime(format!("cannot handle SIGINT/SIGTERM: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(fail)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(fail)?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}
