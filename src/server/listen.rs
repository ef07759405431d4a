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

use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;
use warp::reply::Response;

use super::connections::{self, Activity, Slots, Tracked, Watched};
use super::context::ClientAddr;
use super::{State, respond, routes};
use crate::config::{Addresses, Config};
use crate::error::{Error, Result};

/// Largest request head ftw reads (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest request target (path and query) ftw answers; its own URLs are far shorter.
const MAX_URI_BYTES: usize = 16 * 1024;
/// Requests at once on one HTTP/2 connection.
const MAX_STREAMS: u32 = 128;

pub async fn serve(config: Config, manifest: crate::manifest::Manifest) -> Result<()> {
    let (tls, cert_names) = match &config.tls {
        Some(files) => (
            Some(TlsAcceptor::from(
                crate::tls::server_config(files).map_err(Error::usage)?,
            )),
            crate::tls::certificate_names(&files.cert).map_err(Error::usage)?,
        ),
        None => (None, Vec::new()),
    };
    raise_fd_limit(config.max_connections);
    return_large_allocations();
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::runtime(bind_error(config.addr, &e)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::runtime(format!("cannot read the listening address: {e}")))?;

    // Signal handlers go in before the announcement: a SIGTERM sent the moment the
    // `listening on` line appears must shut down gracefully, not kill the process.
    let shutdown = shutdown_signal()?;
    let hangups = super::reload::hangups();
    let mut shutdown = std::pin::pin!(shutdown);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let addresses = config.addresses(local, &cert_names);
    let grace = config.shutdown_grace;
    let slots = Arc::new(Slots::new(
        config.max_connections,
        config.max_connections_per_client,
    ));
    let client_timeout = config.client_timeout;
    let announcement = announcement(&config, &addresses);
    let https_url = Arc::new(
        addresses
            .this_machine
            .clone()
            .unwrap_or_else(|| addresses.listening.clone()),
    );
    let state = Arc::new(State::assemble(config, manifest).await?);
    state.start_upkeep();
    state.warm_providers();
    tokio::spawn(super::scheduler::run(Arc::clone(&state)));
    let runs = Arc::clone(&state.runs);
    tokio::spawn(super::reload::watch(Arc::clone(&state), hangups));
    let service = warp::service(routes::routes(Arc::clone(&state)));
    let (stopping, stop_rx) = tokio::sync::watch::channel(false);
    print_now(&announcement);
    loop {
        // With every slot taken, stop accepting: new connections wait in the kernel's
        // backlog.
        tokio::select! {
            () = slots.free() => {}
            () = &mut shutdown => break,
        }
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
        // On a dual-stack socket an IPv4 client arrives as ::ffff:a.b.c.d: from here on
        // it is a.b.c.d, so `trusted_proxies = ["127.0.0.1"]` and the rest match it.
        let peer = std::net::SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let trusted = state
            .manifest()
            .server
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip()));
        let Some(slot) = slots.take(peer.ip(), trusted) else {
            // This client has its share of connections (or every slot is taken). Plain
            // HTTP gets a one-line answer saying so; TLS just closes (no handshake
            // is spent on it).
            tracing::debug!(%peer, "connection refused: too many from this client");
            if tls.is_none() {
                tokio::spawn(refuse_plain(stream));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let tls = tls.clone();
        let watcher = stop_rx.clone();
        let is_tls = tls.is_some();
        let https_url = https_url.clone();
        let activity = Activity::default();
        tokio::spawn(async move {
            let health_only = slot.health_only;
            let _slot = slot;
            let streams = activity.clone();
            let hyper_service =
                hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    let mut service = service.clone();
                    let open = streams.begin();
                    async move {
                        let path = req.uri().path();
                        let health = path.ends_with("/healthz") || path.ends_with("/readyz");
                        let response = if health_only && !health {
                            respond::secure_headers(connections::busy(), is_tls)
                        } else {
                            match bad_head(&req) {
                                Some(refusal) => respond::secure_headers(refusal, is_tls),
                                None => service.call(req).await.unwrap_or_else(|e| match e {}),
                            }
                        };
                        Ok::<_, Infallible>(response.map(|body| Tracked::new(body, open)))
                    }
                });
            let http1 = Http1 {
                shutdown: watcher.clone(),
                activity: activity.clone(),
                timeout: client_timeout,
                keep_alive: !health_only,
            };
            match tls {
                None => serve_http1(stream, hyper_service, http1).await,
                Some(acceptor) => {
                    // The hint and the handshake share one deadline.
                    let deadline = tokio::time::Instant::now() + client_timeout;
                    let Some(stream) = plain_http_to_tls(stream, &https_url, deadline).await else {
                        return;
                    };
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            if h2 {
                                // A health-check connection closes after its check.
                                let idle = if health_only {
                                    client_timeout.min(Duration::from_secs(1))
                                } else {
                                    client_timeout
                                };
                                serve_http2(stream, hyper_service, watcher, activity, idle).await;
                            } else {
                                serve_http1(stream, hyper_service, http1).await;
                            }
                        }
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
    let _ = stopping.send(true);
    let connections = async {
        if !slots.all_closed(grace + crate::exec::KILL_GRACE).await {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    };
    tokio::join!(runs.shutdown(grace), connections);
    Ok(())
}

/// Why ftw cannot listen, and what to do about it.
fn bind_error(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    let reason = crate::manifest::io_reason(e);
    let port = addr.port();
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "; another program (or another ftw) is using port {port}. Stop it, or pick \
             another port with --port (or [server] port; --port 0 takes any free one)"
        ),
        std::io::ErrorKind::PermissionDenied if port < 1024 => {
            "; ports below 1024 need privileges. Use a port such as 8443 with --port, or \
             give ftw CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=)"
                .to_string()
        }
        std::io::ErrorKind::AddrNotAvailable => format!(
            "; {} is not an address of this machine. Use one it has, 127.0.0.1 (this \
             machine only) or 0.0.0.0 (every interface) with --host",
            addr.ip()
        ),
        _ => String::new(),
    };
    format!("cannot listen on {addr}: {reason}{hint}")
}

/// Large allocations (argon2's working memory, 19 MiB at the default cost) come
/// straight from the kernel and go back to it when freed. glibc otherwise raises its
/// mmap threshold after the first such free and keeps later ones in its arenas, so
/// memory freed after a burst of sign-ins would never leave the process.
fn return_large_allocations() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads
    // allocate much.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Raises the open-file limit to its hard maximum: every connection is a descriptor,
/// and the usual soft default (1024) is far below `--max-connections`. Tools inherit
/// the raised limit. Warns when even the hard limit is too low.
fn raise_fd_limit(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a plain C struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let wanted = limit.rlim_max.min(1 << 20);
    if limit.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = wanted;
        }
    }
    // Runs, their pipes and files, and the log need some of their own.
    let needed = max_connections as u64 + 256;
    if limit.rlim_cur < needed {
        tracing::warn!(
            "the open-file limit is {}, too low for --max-connections {max_connections}; \
             raise it (systemd: LimitNOFILE=) or lower --max-connections",
            limit.rlim_cur
        );
    }
}

/// A plain-HTTP request sent to the TLS port gets a one-line hint instead of a closed
/// connection: a TLS connection starts with a handshake record (0x16), an HTTP/1
/// request with a method in capitals. Returns the stream unless it answered.
async fn plain_http_to_tls(
    mut stream: TcpStream,
    url: &str,
    deadline: tokio::time::Instant,
) -> Option<TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut head = [0u8; 2048];
    let Ok(Ok(n)) = tokio::time::timeout_at(deadline, stream.peek(&mut head)).await else {
        return Some(stream);
    };
    if n == 0 || !head[0].is_ascii_uppercase() {
        return Some(stream);
    }
    // The host the client asked for, if it is a plain host[:port]; else the URL ftw printed.
    let text = String::from_utf8_lossy(&head[..n]);
    let host = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        });
    let target = host.map_or_else(|| url.to_string(), |h| format!("https://{h}/"));
    let body = format!("This port speaks HTTPS, not plain HTTP: open {target}\n");
    let reply = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout_at(deadline, stream.write_all(reply.as_bytes())).await;
    let _ = stream.shutdown().await;
    None
}

/// Tells a plain-HTTP client over its connection cap to retry, without reading its
/// request, and closes.
async fn refuse_plain(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = "Too many connections from your address; try again in a moment.\n";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// hyper caps the head it buffers only while a head is incomplete, so one that arrives
/// whole in a large read can pass its limit: the exact limits are checked here, before
/// any filter sees the request. An HTTP/1.1 request must name its host (RFC 9112): one
/// without `Host` would pass the host check unchecked.
fn bad_head<B>(req: &http::Request<B>) -> Option<Response> {
    if req.version() == http::Version::HTTP_11
        && req.uri().authority().is_none()
        && !req.headers().contains_key(http::header::HOST)
    {
        return Some(respond::text(
            StatusCode::BAD_REQUEST,
            "An HTTP/1.1 request must have a Host header.\n",
        ));
    }
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(respond::text(
            StatusCode::URI_TOO_LONG,
            "The address is too long.\n",
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (uri + headers > MAX_HEAD_BYTES).then(|| {
        respond::text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request headers are too large.\n",
        )
    })
}

/// HTTP/1.1: the request head must arrive within `timeout` of the connection opening or
/// going idle (slowloris), and fit in `MAX_HEAD_BYTES`. Plain-text connections only ever
/// speak HTTP/1.1: browsers use HTTP/2 only over TLS.
/// How to drive an HTTP/1.1 connection.
struct Http1 {
    shutdown: tokio::sync::watch::Receiver<bool>,
    activity: Activity,
    timeout: Duration,
    keep_alive: bool,
}

async fn serve_http1<IO, S, B>(io: IO, service: S, how: Http1)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B, Error = Infallible>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(how.timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(how.keep_alive);
    let io = TokioIo::new(Watched::new(io, &how.activity));
    let connection = builder.serve_connection(io, service);
    let stall = connections::stall_limit(how.timeout);
    connections::drive(connection, how.shutdown, &how.activity, None, stall).await;
}

/// HTTP/2 (TLS with ALPN `h2`): pings find dead peers, headers and concurrent streams
/// are capped, and a connection without an open stream for `idle` is closed.
async fn serve_http2<IO, S, B>(
    io: IO,
    service: S,
    shutdown: tokio::sync::watch::Receiver<bool>,
    activity: Activity,
    idle: Duration,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let io = TokioIo::new(Watched::new(io, &activity));
    let connection = builder.serve_connection(io, service);
    let stall = connections::stall_limit(idle);
    connections::drive(connection, shutdown, &activity, Some(idle), stall).await;
}

/// The start-up lines for stdout: the one-time password (when there are no users), then
/// `ftw: listening on URL`, which scripts and tests wait for.
fn announcement(config: &Config, addresses: &Addresses) -> String {
    let mut text = String::new();
    if let Some(password) = &config.one_time_password {
        text.push_str(&format!(
            "ftw: {} has no users, so this run has one: sign in as \"admin\" with the one-time password\n\n    {password}\n\nftw: it changes every time ftw starts. To choose your own users, add [auth.users] (see `ftw hash-password`).\n",
            config.manifest_path.display()
        ));
    }
    text.push_str(&format!("ftw: listening on {}\n", addresses.listening));
    if let Some(local) = &addresses.this_machine {
        text.push_str(&format!(
            "ftw: on every interface; from this machine open {local}\n"
        ));
    }
    for url in &addresses.network {
        text.push_str(&format!("ftw: from other machines open {url}\n"));
    }
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
