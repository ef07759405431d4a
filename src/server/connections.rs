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
//! **Shutdown** closes every connection gracefully: requests in progress finish, then
//! the connection ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use hyper::body::{Body, Frame, Incoming};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::respond;

/// Slots kept for `/healthz` beyond `--max-connections`.
pub const HEALTH_SLOTS: usize = 4;

/// The default per-client cap: an eighth of all slots, between 4 and 64.
pub fn default_per_client(max_connections: usize) -> usize {
    (max_connections / 8).clamp(4, 64)
}

/// Connections open, by client address key.
type ByClient = Arc<Mutex<HashMap<String, usize>>>;

/// The connection slots (see the module's documentation).
#[derive(Debug)]
pub struct Slots {
    main: Arc<Semaphore>,
    health: Arc<Semaphore>,
    max: usize,
    per_client: usize,
    by_client: ByClient,
}

/// A taken slot, given back when the connection ends.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    /// Only `/healthz` is answered on this connection.
    pub health_only: bool,
    client: Option<(ByClient, String)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((map, key)) = &self.client {
            let mut map = map.lock().expect("slots lock");
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

impl Slots {
    pub fn new(max: usize, per_client: usize) -> Slots {
        Slots {
            main: Arc::new(Semaphore::new(max)),
            health: Arc::new(Semaphore::new(HEALTH_SLOTS)),
            max,
            per_client: per_client.max(1),
            by_client: Arc::new(Mutex::new(HashMap::new())),
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
            let mut map = self.by_client.lock().expect("slots lock");
            let n = map.entry(key.clone()).or_insert(0);
            if *n >= self.per_client {
                return None;
            }
            *n += 1;
            Some((Arc::clone(&self.by_client), key))
        };
        Some(Slot {
            _permit: permit,
            health_only,
            client,
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

/// Open streams of one connection and when that number last changed.
#[derive(Debug, Clone)]
pub struct Activity(Arc<watch::Sender<(usize, Instant)>>);

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(watch::Sender::new((0, Instant::now()))))
    }
}

impl Activity {
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

/// A response body that keeps its stream counted as open until it is sent or dropped.
pub struct Tracked<B> {
    inner: Pin<Box<B>>,
    _open: StreamOpen,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, open: StreamOpen) -> Tracked<B> {
        Tracked {
            inner: Box::pin(inner),
            _open: open,
        }
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
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
/// has had no open stream for `idle`.
pub async fn drive<C, E>(
    conn: C,
    mut shutdown: watch::Receiver<bool>,
    idle: Option<(Activity, Duration)>,
) where
    C: Graceful<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let idle_end = async {
        match &idle {
            Some((activity, timeout)) => activity.idle_for(*timeout).await,
            None => std::future::pending().await,
        }
    };
    let mut idle_end = std::pin::pin!(idle_end);
    loop {
        tokio::select! {
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
