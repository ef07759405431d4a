//! Where a request comes from, decided once per request: the client's address, whether
//! it arrived over HTTPS, and which host it was sent to. `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host` are believed only when the connection's
//! peer is one of `[server] trusted_proxies`; from anyone else they are ignored, so a
//! client cannot pick its own address for throttling and the audit log.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;
use http::header::{HOST, ORIGIN};
use ipnet::IpNet;
use warp::Filter;
use warp::host::Authority;

use super::State;

/// The peer address of the connection, put into each request by the accept loop (warp's
/// own remote address is empty behind a custom acceptor such as TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// A request's origin, as far as ftw believes it.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub headers: HeaderMap,
    /// The client: the peer, or what a trusted proxy says the client is.
    pub client: IpAddr,
    /// Served over TLS, by ftw or by a trusted proxy in front of it.
    pub secure: bool,
    /// The peer is a trusted proxy.
    pub proxied: bool,
    /// The host the request was sent to: the `Host` header (HTTP/1.1) or the URI's
    /// authority (HTTP/2 has no `Host`, only `:authority`).
    pub authority: Option<String>,
}

/// Extracts a `Ctx` for every request (400 when `Host` and the URI disagree).
pub fn ctx(state: Arc<State>) -> impl Filter<Extract = (Ctx,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<ClientAddr>())
        .and(warp::host::optional())
        .map(
            move |headers: HeaderMap, peer: Option<ClientAddr>, authority: Option<Authority>| {
                let proxies = state.manifest().server.trusted_proxies.clone();
                let mut ctx = Ctx::new(headers, peer.map(|p| p.0), &proxies, state.tls);
                ctx.authority = authority.map(|a| a.to_string());
                ctx
            },
        )
}

impl Ctx {
    pub fn new(headers: HeaderMap, peer: Option<SocketAddr>, proxies: &[IpNet], tls: bool) -> Ctx {
        let peer_ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
        let trusted = |ip: &IpAddr| proxies.iter().any(|net| net.contains(ip));
        let proxied = peer.is_some() && trusted(&peer_ip);
        let authority = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let mut ctx = Ctx {
            client: peer_ip,
            secure: tls,
            proxied,
            authority,
            headers,
        };
        if proxied {
            ctx.client = forwarded_client(&ctx.headers, &trusted).unwrap_or(peer_ip);
            ctx.secure = tls
                || last_value(&ctx.headers, "x-forwarded-proto")
                    .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        }
        ctx
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body size the client declared, if it did (checked against limits before
    /// anything is read).
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.parse().ok()
    }

    /// The host the browser addressed: `X-Forwarded-Host` from a trusted proxy, else
    /// the request's own authority.
    pub fn host(&self) -> Option<&str> {
        if self.proxied
            && let Some(host) = last_value(&self.headers, "x-forwarded-host")
        {
            return Some(host);
        }
        self.authority.as_deref()
    }

    /// The same-origin rule for state-changing requests: a browser's `Origin` must name
    /// this very host (and https when the request came over TLS), and
    /// `Sec-Fetch-Site: cross-site` is always refused. Requests without either header
    /// (curl, scripts) pass this check and still need a CSRF or a bearer token.
    pub fn same_origin(&self) -> bool {
        if self
            .header("sec-fetch-site")
            .is_some_and(|s| s.eq_ignore_ascii_case("cross-site"))
        {
            return false;
        }
        let Some(origin) = self.headers.get(ORIGIN) else {
            return true;
        };
        let (Ok(origin), Some(host)) = (origin.to_str(), self.host()) else {
            return false;
        };
        let Ok(url) = url::Url::parse(origin) else {
            return false; // includes "null"
        };
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => !self.secure,
            _ => false,
        };
        let authority = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return false,
        };
        scheme_ok && authority.eq_ignore_ascii_case(host)
    }
}

/// The last (closest to ftw) value of a header that proxies append to.
fn last_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

/// The client according to `X-Forwarded-For`: walking from the right (the hop nearest
/// ftw), the first address that is not itself a trusted proxy. Entries further left
/// were written by whoever sent the request and prove nothing.
fn forwarded_client(headers: &HeaderMap, trusted: &impl Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .ok()?;
    hops.iter()
        .rev()
        .find(|ip| !trusted(ip))
        .or(hops.first())
        .copied()
}

/// Headers from (name, value) pairs, for unit tests.
#[cfg(test)]
pub fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&'static str, &str)], peer: &str, proxies: &[&str]) -> Ctx {
        let nets: Vec<IpNet> = proxies.iter().map(|p| p.parse().unwrap()).collect();
        Ctx::new(headers(pairs), Some(peer.parse().unwrap()), &nets, false)
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let xff = [
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ];
        let direct = ctx(&xff, "9.9.9.9:5000", &["127.0.0.1/32"]);
        assert_eq!(direct.client, "9.9.9.9".parse::<IpAddr>().unwrap());
        assert!(!direct.secure && !direct.proxied);
        let proxied = ctx(&xff, "127.0.0.1:5000", &["127.0.0.1/32"]);
        assert_eq!(
            proxied.client,
            "1.2.3.4".parse::<IpAddr>().unwrap(),
            "rightmost untrusted hop"
        );
        assert!(proxied.secure && proxied.proxied);
    }

    #[test]
    fn chains_of_trusted_proxies_are_walked() {
        let two = ctx(
            &[("x-forwarded-for", "1.2.3.4, 10.0.0.5")],
            "10.0.0.9:1",
            &["10.0.0.0/8"],
        );
        assert_eq!(two.client, "1.2.3.4".parse::<IpAddr>().unwrap());
        let garbage = ctx(
            &[("x-forwarded-for", "not-an-ip")],
            "10.0.0.9:1",
            &["10.0.0.0/8"],
        );
        assert_eq!(garbage.client, "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn origin_rules() {
        let c = |pairs: &[(&'static str, &str)], tls| {
            Ctx::new(headers(pairs), Some("1.1.1.1:1".parse().unwrap()), &[], tls)
        };
        let host = ("host", "ftw.lan:8000");
        assert!(c(&[host], false).same_origin(), "no Origin: curl");
        assert!(c(&[host, ("origin", "http://ftw.lan:8000")], false).same_origin());
        assert!(!c(&[host, ("origin", "http://evil.lan:8000")], false).same_origin());
        assert!(!c(&[host, ("origin", "null")], false).same_origin());
        assert!(
            !c(&[host, ("origin", "http://ftw.lan:8000")], true).same_origin(),
            "downgrade"
        );
        assert!(!c(&[host, ("sec-fetch-site", "cross-site")], false).same_origin());
        assert!(c(&[host, ("sec-fetch-site", "same-origin")], false).same_origin());
        assert!(c(&[("host", "ftw.lan"), ("origin", "https://ftw.lan")], true).same_origin());
    }

    #[test]
    fn a_trusted_proxy_may_name_the_public_host() {
        let behind = ctx(
            &[
                ("host", "127.0.0.1:8000"),
                ("x-forwarded-host", "tools.example.com"),
                ("x-forwarded-proto", "https"),
                ("origin", "https://tools.example.com"),
            ],
            "127.0.0.1:3000",
            &["127.0.0.1/32"],
        );
        assert!(behind.same_origin());
    }
}
