//! Connection slots and how each connection is driven to its end.
//!
//! **Slots.** At most `--max-connections` connections are served at once, and at most
//! `--max-connections-per-client` from one address (IPv6 by its /64; trusted proxies
//! carry many clients and are not capped), so one client cannot take every slot before
//! anyone has signed in. A few slots more are kept for health checks: when every slot
//! is taken, a new connection still gets one of them, but it answers only `/healthz`
//! (anything else is a 503 and the connection closes), so a load balancer can still tell
//! that ftw is alive while it is busy.
//!
//! **Idle HTTP/2 connections** are closed (GOAWAY) once they have had no open stream for
//! the client timeout: pings alone do not keep one. HTTP/1.1 has the same rule through
//! hyper's header-read timeout.
//!
//! **Stalled connections** are cut: one whose writes have been blocked (the client
//! stopped reading, e.g. after pipelining thousands of requests) or whose response
//! bodies have not been asked for their next piece (an HTTP/2 client that keeps its
//! flow-control window shut) for `stall_limit` (three client timeouts, at least 20 s,
//! longer than the 15 s between an event stream's keep-alives). Graceful closing would
//! wait for those very responses, so these connections are dropped.
//!
//! **Shutdown** closes every connection gracefully: requests in progress finish, then
//! the connection ends.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use hyper::body::{Body, Frame, Incoming};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::per_key::{PerKey, Place};
use super::respond;

/// Slots kept for `/healthz` beyond `--max-connections`.
pub const HEALTH_SLOTS: usize = 4;

/// The default per-client cap: an eighth of all slots, between 4 and 64.
pub fn default_per_client(max_connections: usize) -> usize {
    (max_connections / 8).clamp(4, 64)
}

/// The connection slots (see the module's documentation).
#[derive(Debug)]
pub struct Slots {
    main: Arc<Semaphore>,
    health: Arc<Semaphore>,
    max: usize,
    by_client: PerKey,
}

/// A taken slot, given back when the connection ends.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    /// Only `/healthz` is answered on this connection.
    pub health_only: bool,
    _client: Option<Place>,
}

impl Slots {
    pub fn new(max: usize, per_client: usize) -> Slots {
        Slots {
            main: Arc::new(Semaphore::new(max)),
            health: Arc::new(Semaphore::new(HEALTH_SLOTS)),
            max,
            by_client: PerKey::new(per_client),
        }
    }

    /// Waits until a slot, even one for health checks only, is free: until then new
    /// connections wait in the kernel's backlog.
    pub async fn free(&self) {
        if self.main.available_permits() > 0 || self.health.available_permits() > 0 {
            return;
        }
        tokio::select! {
            p = Arc::clone(&self.main).acquire_owned() => drop(p),
            p = Arc::clone(&self.health).acquire_owned() => drop(p),
        }
    }

    /// A slot for a connection from `peer` (`trusted`: a proxy, not capped), or `None`
    /// when that client already has its share or every slot is taken.
    pub fn take(&self, peer: IpAddr, trusted: bool) -> Option<Slot> {
        let (permit, health_only) = match Arc::clone(&self.main).try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => (Arc::clone(&self.health).try_acquire_owned().ok()?, true),
        };
        let client = if trusted {
            None
        } else {
            let key = crate::auth::throttle::address_key(peer);
            Some(self.by_client.take(key)?)
        };
        Some(Slot {
            _permit: permit,
            health_only,
            _client: client,
        })
    }

    /// Waits until every connection has ended (at shutdown), at most `grace`; false if
    /// some were still open.
    pub async fn all_closed(&self, grace: Duration) -> bool {
        let all = async {
            let _main = self.main.acquire_many(self.max as u32).await;
            let _health = self.health.acquire_many(HEALTH_SLOTS as u32).await;
        };
        tokio::time::timeout(grace, all).await.is_ok()
    }
}

/// The answer on a health-check-only connection to anything but `/healthz`.
pub fn busy() -> warp::reply::Response {
    let mut r = respond::text(
        StatusCode::SERVICE_UNAVAILABLE,
        "ftw has as many connections as it takes; try again in a moment.\n",
    );
    r.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

/// How long a connection may make no progress (see the module's documentation).
pub fn stall_limit(client_timeout: Duration) -> Duration {
    (client_timeout * 3).max(Duration::from_secs(20))
}

/// Open streams of one connection and when that number last changed, and what makes
/// a connection stalled.
#[derive(Debug, Clone)]
pub struct Activity(Arc<watch::Sender<(usize, Instant)>>, Arc<Progress>);

/// Times in milliseconds since `start` (0: not set).
#[derive(Debug)]
struct Progress {
    start: Instant,
    /// Response bodies alive, and when one was last asked for a piece.
    bodies: AtomicUsize,
    body_polled: AtomicU64,
    /// Since when the connection's writes have been blocked.
    write_blocked: AtomicU64,
}

impl Progress {
    fn now(&self) -> u64 {
        (self.start.elapsed().as_millis() as u64).max(1)
    }
}

impl Default for Activity {
    fn default() -> Self {
        let start = Instant::now();
        Activity(
            Arc::new(watch::Sender::new((0, start))),
            Arc::new(Progress {
                start,
                bodies: AtomicUsize::new(0),
                body_polled: AtomicU64::new(1),
                write_blocked: AtomicU64::new(0),
            }),
        )
    }
}

impl Activity {
    /// Resolves once the connection is stalled for `limit`: writes blocked, or
    /// response bodies left unasked.
    pub async fn stalled_for(&self, limit: Duration) {
        let limit_ms = limit.as_millis() as u64;
        loop {
            tokio::time::sleep(limit / 4).await;
            let p = &self.1;
            let now = p.now();
            let blocked = p.write_blocked.load(Ordering::SeqCst);
            let writes_stuck = blocked != 0 && now.saturating_sub(blocked) > limit_ms;
            let bodies_stuck = p.bodies.load(Ordering::SeqCst) > 0
                && now.saturating_sub(p.body_polled.load(Ordering::SeqCst)) > limit_ms;
            if writes_stuck || bodies_stuck {
                return;
            }
        }
    }

    /// A request began; its stream stays open until the guard (moved into the response
    /// body) drops.
    pub fn begin(&self) -> StreamOpen {
        self.0.send_modify(|(n, at)| {
            *n += 1;
            *at = Instant::now();
        });
        StreamOpen(self.clone())
    }

    /// Resolves once the connection has had no open stream for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut changes = self.0.subscribe();
        loop {
            let (open, at) = *changes.borrow_and_update();
            if open == 0 {
                tokio::select! {
                    () = tokio::time::sleep_until(at + timeout) => return,
                    _ = changes.changed() => {}
                }
            } else if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// One open stream of a connection.
#[derive(Debug)]
pub struct StreamOpen(Activity);

impl Drop for StreamOpen {
    fn drop(&mut self) {
        self.0.0.send_modify(|(n, at)| {
            *n = n.saturating_sub(1);
            *at = Instant::now();
        });
    }
}

/// A response body that keeps its stream counted as open until it is sent or dropped,
/// and notes each time it is asked for a piece.
pub struct Tracked<B> {
    inner: Pin<Box<B>>,
    open: StreamOpen,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, open: StreamOpen) -> Tracked<B> {
        let p = &open.0.1;
        if p.bodies.fetch_add(1, Ordering::SeqCst) == 0 {
            p.body_polled.store(p.now(), Ordering::SeqCst);
        }
        Tracked {
            inner: Box::pin(inner),
            open,
        }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        let p = &self.open.0.1;
        p.bodies.fetch_sub(1, Ordering::SeqCst);
        p.body_polled.store(p.now(), Ordering::SeqCst);
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let p = &self.open.0.1;
        p.body_polled.store(p.now(), Ordering::SeqCst);
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's stream, noting when its writes block and when they move again.
pub struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: &Activity) -> Watched<S> {
        Watched {
            inner,
            activity: activity.clone(),
        }
    }

    fn note<T>(&self, poll: &Poll<std::io::Result<T>>) {
        let p = &self.activity.1;
        match poll {
            Poll::Pending => {
                let _ = p.write_blocked.compare_exchange(
                    0,
                    p.now(),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
            Poll::Ready(_) => p.write_blocked.store(0, Ordering::SeqCst),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A hyper connection that can be asked to finish gracefully.
pub trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = B, Error = Infallible>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S, B, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = B, Error = Infallible>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

/// Drives a connection to its end: gracefully when ftw shuts down, and (HTTP/2) when it
/// has had no open stream for `idle`; at once when it is stalled for `stall`.
pub async fn drive<C, E>(
    conn: C,
    mut shutdown: watch::Receiver<bool>,
    activity: &Activity,
    idle: Option<Duration>,
    stall: Duration,
) where
    C: Graceful<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let idle_end = async {
        match idle {
            Some(timeout) => activity.idle_for(timeout).await,
            None => std::future::pending().await,
        }
    };
    let mut idle_end = std::pin::pin!(idle_end);
    let stalled = activity.stalled_for(stall);
    let mut stalled = std::pin::pin!(stalled);
    loop {
        tokio::select! {
            () = &mut stalled => {
                tracing::debug!("dropping a stalled connection");
                return;
            }
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended with an error: {e}");
                }
                return;
            }
            _ = shutdown.wait_for(|stop| *stop), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut idle_end, if !closing => {
                tracing::debug!("closing an idle HTTP/2 connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_gets_its_share_and_health_checks_keep_a_few_slots() {
        let slots = Slots::new(8, 3);
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let mine: Vec<Slot> = (0..3).filter_map(|_| slots.take(attacker, false)).collect();
        assert_eq!(mine.len(), 3);
        assert!(
            slots.take(attacker, false).is_none(),
            "a fourth from one client"
        );
        // A trusted proxy is not capped; others fill the rest.
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let rest: Vec<Slot> = (0..5).filter_map(|_| slots.take(proxy, true)).collect();
        assert_eq!(rest.len(), 5);
        let health: Vec<Slot> = (0..HEALTH_SLOTS)
            .filter_map(|_| slots.take(proxy, true))
            .collect();
        assert!(health.iter().all(|s| s.health_only));
        assert_eq!(health.len(), HEALTH_SLOTS);
        assert!(slots.take(proxy, true).is_none());
        drop(mine);
        assert!(slots.take(attacker, false).is_some_and(|s| !s.health_only));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_means_no_open_stream_for_the_whole_timeout() {
        let activity = Activity::default();
        let open = activity.begin();
        let idle = activity.idle_for(Duration::from_secs(10));
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), &mut idle)
                .await
                .is_err(),
            "an open stream keeps it"
        );
        drop(open);
        let start = Instant::now();
        idle.await;
        assert!(start.elapsed() >= Duration::from_secs(10));
    }
}
