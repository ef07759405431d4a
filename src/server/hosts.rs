//! Which host names ftw answers to. A request whose `Host` (or, from a trusted proxy,
//! `X-Forwarded-Host`) names another host is refused with 421 before any route looks at
//! it: that is how a DNS-rebinding page (a site whose name now resolves to 127.0.0.1)
//! is kept from talking to ftw as if it were ftw's own origin, with headers it chose,
//! such as a forward-auth `Remote-User`.
//!
//! Always allowed: the loopback names, the address ftw listens on (every address of
//! this machine when it listens on all of them), the machine's host name, and the
//! names in the TLS certificate; `[server] allowed_hosts` adds more (`"ftw.example.com"`,
//! `"*.example.com"`, or `"*"` for any). Ports are not compared.

use std::net::IpAddr;

use crate::config::Config;

/// The names allowed whatever the manifest says, worked out once at start.
#[derive(Debug, Default)]
pub struct AllowedHosts {
    names: Vec<String>,
    /// `--allowed-hosts *`: any host.
    any: bool,
}

impl AllowedHosts {
    /// Loopback names, the listening address (or this machine's addresses), the host
    /// name, and the certificate's names.
    pub fn for_config(config: &Config) -> AllowedHosts {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let bound = config.addr.ip();
        if bound.is_unspecified() {
            names.extend(interface_addresses().iter().map(IpAddr::to_string));
        } else {
            names.push(bound.to_string());
        }
        if let Some(name) = host_name() {
            names.push(name);
        }
        if let Some(files) = &config.tls
            && let Ok(cert) = crate::tls::certificate_names(&files.cert)
        {
            names.extend(cert);
        }
        let any = config.allowed_hosts.iter().any(|h| h == "*");
        names.extend(config.allowed_hosts.iter().cloned());
        names.sort();
        names.dedup();
        AllowedHosts { names, any }
    }

    /// Whether `authority` (`host`, `host:port`, `[v6]:port`) names an allowed host:
    /// one of the defaults or of `extra` (the manifest's `allowed_hosts`).
    pub fn allows(&self, extra: &[String], authority: &str) -> bool {
        if self.any || extra.iter().any(|h| h == "*") {
            return true;
        }
        let host = host_part(authority);
        crate::tls::covers(&self.names, host) || crate::tls::covers(extra, host)
    }
}

/// The host of an authority, without its port (`[::1]:80` -> `[::1]`).
fn host_part(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
    .trim_end_matches('.')
}

/// This machine's host name, lower case.
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0)?;
    let name = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Every address of this machine's interfaces.
fn interface_addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list that freeifaddrs releases; each entry's
    // address is read according to its family.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut at = list;
        while !at.is_null() {
            let addr = (*at).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*addr.cast::<libc::sockaddr_in>();
                        found.push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*addr.cast::<libc::sockaddr_in6>();
                        found.push(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            at = (*at).ifa_next;
        }
        libc::freeifaddrs(list);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> AllowedHosts {
        AllowedHosts {
            names: names.iter().map(|s| (*s).to_string()).collect(),
            any: false,
        }
    }

    #[test]
    fn ports_do_not_matter_and_names_do() {
        let h = hosts(&["localhost", "127.0.0.1", "::1"]);
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(h.allows(&[], ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.2",
            "",
        ] {
            assert!(!h.allows(&[], bad), "{bad}");
        }
    }

    #[test]
    fn the_manifest_adds_names_wildcards_or_everything() {
        let h = hosts(&["localhost"]);
        let extra = vec!["ftw.example.com".to_string(), "*.corp.example".to_string()];
        assert!(h.allows(&extra, "ftw.example.com:443"));
        assert!(h.allows(&extra, "a.corp.example"));
        assert!(!h.allows(&extra, "corp.example"));
        assert!(!h.allows(&extra, "evil.example.com"));
        assert!(h.allows(&["*".to_string()], "anything.example"));
    }

    #[test]
    fn this_machine_has_addresses() {
        assert!(interface_addresses().iter().any(IpAddr::is_loopback));
    }
}
