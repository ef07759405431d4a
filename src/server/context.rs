//! Where a request comes from, decided once per request: the client's address, whether
//! it arrived over HTTPS, and which host it was sent to. `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host` are believed only when the connection's
//! peer is one of `[server] trusted_proxies`; from anyone else they are ignored, so a
//! client cannot pick its own address for throttling and the audit log.
//!
//! Two refusals happen here, before any route reads the request: a request that repeats
//! a header ftw trusts (`Authorization`, `X-CSRF-Token`, `Host`, the forward-auth
//! headers, ...) is a 400, since two values mean somebody added one and ftw would have
//! to guess which; and a request for a host ftw does not answer to is a 421 (see
//! `hosts`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;
use http::header::{HOST, ORIGIN};
use ipnet::IpNet;
use warp::Filter;
use warp::host::Authority;

use super::State;
use super::problem::Problem;

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

/// The client when a trusted proxy's `X-Forwarded-For` names something that is not an
/// address: unknown, and never the proxy itself.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Headers ftw believes, which a request may carry at most once each.
const SINGLE_HEADERS: [&str; 5] = [
    "authorization",
    "x-csrf-token",
    "host",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// Extracts a `Ctx` for every request: 400 when `Host` and the URI disagree or a trusted
/// header comes twice, 421 for a host ftw does not answer to.
pub fn ctx(state: Arc<State>) -> impl Filter<Extract = (Ctx,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<ClientAddr>())
        .and(warp::host::optional())
        .and_then(
            move |headers: HeaderMap, peer: Option<ClientAddr>, authority: Option<Authority>| {
                let state = Arc::clone(&state);
                async move {
                    let manifest = state.manifest();
                    if let Some(name) = repeated_header(&headers, &manifest.auth) {
                        return Err(warp::reject::custom(Problem::RepeatedHeader(name)));
                    }
                    let proxies = &manifest.server.trusted_proxies;
                    let mut ctx = Ctx::new(headers, peer.map(|p| p.0), proxies, state.tls);
                    if let Some(a) = authority {
                        ctx.authority = Some(a.to_string());
                    }
                    let allowed = &manifest.server.allowed_hosts;
                    let forwarded = ctx
                        .proxied
                        .then(|| last_value(&ctx.headers, "x-forwarded-host"))
                        .flatten();
                    for host in ctx.authority.iter().map(String::as_str).chain(forwarded) {
                        if !state.hosts.allows(allowed, host) {
                            return Err(warp::reject::custom(Problem::UnknownHost(
                                host.chars().take(100).collect(),
                            )));
                        }
                    }
                    Ok(ctx)
                }
            },
        )
}

/// The first header ftw trusts that the request repeats.
fn repeated_header(headers: &HeaderMap, auth: &crate::manifest::Auth) -> Option<String> {
    let identity = [
        auth.trusted_header.as_deref(),
        auth.trusted_groups_header.as_deref(),
    ];
    SINGLE_HEADERS
        .iter()
        .copied()
        .chain(identity.into_iter().flatten())
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
        .map(str::to_string)
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

    /// `scheme://host` as the browser addressed ftw (the host passed the allowed-hosts
    /// check): the base of callback URLs and WebAuthn's relying party.
    pub fn origin(&self) -> Option<String> {
        let scheme = if self.secure { "https" } else { "http" };
        Some(format!("{scheme}://{}", self.host()?))
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
/// were written by whoever sent the request and prove nothing. A hop may carry a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`); one that is not an address at all is where
/// the trustworthy part ends, so the client is unknown (`UNKNOWN_CLIENT`), never the
/// proxy. When every hop is a trusted proxy, the leftmost is the client. `None`
/// without the header.
fn forwarded_client(headers: &HeaderMap, trusted: &impl Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    // Split the raw bytes: one byte that is not text spoils only its own hop, not the
    // address the proxy appended after it.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|hop| std::str::from_utf8(hop).unwrap_or("").trim())
        .collect();
    let mut leftmost = None;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if trusted(&ip) => leftmost = Some(ip),
            Some(ip) => return Some(ip),
            None => return Some(UNKNOWN_CLIENT),
        }
    }
    leftmost
}

/// One `X-Forwarded-For` hop: an address, with or without a port, IPv6 bracketed or not.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
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
        assert_eq!(garbage.client, UNKNOWN_CLIENT, "never the proxy");
    }

    #[test]
    fn one_bad_hop_does_not_make_the_proxy_the_client() {
        let client = |xff: &str| {
            ctx(
                &[("x-forwarded-for", xff)],
                "127.0.0.1:1",
                &["127.0.0.1/32", "10.0.0.0/8"],
            )
            .client
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client("garbage, 6.6.6.6"), ip("6.6.6.6"));
        assert_eq!(client("6.6.6.6:1234"), ip("6.6.6.6"));
        assert_eq!(client("[2001:db8::7]:443, 10.0.0.2"), ip("2001:db8::7"));
        assert_eq!(client("[2001:db8::7]"), ip("2001:db8::7"));
        assert_eq!(client("1.1.1.1, garbage, 10.0.0.2"), UNKNOWN_CLIENT);
        assert_eq!(client("10.0.0.3, 10.0.0.2"), ip("10.0.0.3"));
        assert_eq!(client("::ffff:6.6.6.6"), ip("6.6.6.6"));
        let raw = HeaderMap::from_iter([(
            http::header::HeaderName::from_static("x-forwarded-for"),
            http::HeaderValue::from_bytes(b"\x80, 6.6.6.6").unwrap(),
        )]);
        let trusted = |ip: &IpAddr| ip.is_loopback();
        assert_eq!(forwarded_client(&raw, &trusted), Some(ip("6.6.6.6")));
        let none = ctx(&[], "127.0.0.1:1", &["127.0.0.1/32"]);
        assert_eq!(none.client, ip("127.0.0.1"), "the proxy's own request");
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
