//! TLS for `ftw serve`: rustls on the ring provider only, TLS 1.2 and 1.3, ALPN h2 and
//! http/1.1. The provider is installed explicitly (two providers in one process make
//! rustls panic at start-up). Bad paths, files without a certificate or key, and a key
//! that does not belong to the certificate are start-up errors that name the file.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use x509_parser::extensions::GeneralName;

use crate::manifest::{TlsFiles, io_reason};

/// Makes ring the process-wide default provider (a no-op when it already is).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    install_provider();
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "the key {} does not fit the certificate {}: they are not one pair (the \
                 certificate was made for another key). Use the key file made together with \
                 this certificate, or make a new pair with `ftw cert --self-signed` \
                 (rustls said: {e})",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The names the certificate (the first of the chain) is valid for: its DNS names and
/// IP addresses, as text, in the order it lists them.
pub fn certificate_names(path: &Path) -> Result<Vec<String>, String> {
    let certs = load_certs(path)?;
    let (_, cert) = x509_parser::parse_x509_certificate(certs[0].as_ref())
        .map_err(|e| format!("the TLS certificate {} cannot be read: {e}", path.display()))?;
    let mut names = Vec::new();
    if let Ok(Some(alt)) = cert.subject_alternative_name() {
        for name in &alt.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(names)
}

/// Whether `host` (a name or an IP address) is one of `names`, wildcards included.
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    names.iter().any(|name| {
        if let Some(suffix) = name.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix))
        } else {
            match (name.parse::<IpAddr>(), host.parse::<IpAddr>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => name.eq_ignore_ascii_case(host),
            }
        }
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    check_readable(path, "TLS certificate")?;
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "the TLS certificate {} is not valid PEM: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (a PEM block `BEGIN CERTIFICATE`); `ftw cert --self-signed` makes one",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    check_readable(path, "TLS key")?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        format!(
            "{} holds no usable private key ({e}); `ftw cert --self-signed` makes one",
            path.display()
        )
    })
}

fn check_readable(path: &Path, what: &str) -> Result<(), String> {
    std::fs::File::open(path).map(drop).map_err(|e| {
        format!(
            "cannot read the {what} {}: {}",
            path.display(),
            io_reason(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_hosts_exactly_or_by_one_wildcard_label() {
        let names: Vec<String> = ["ftw.example.lan", "*.tools.lan", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(covers(&names, "FTW.example.lan"));
        assert!(covers(&names, "a.tools.lan") && !covers(&names, "a.b.tools.lan"));
        assert!(!covers(&names, "tools.lan"));
        assert!(covers(&names, "127.0.0.1") && covers(&names, "[::1]"));
        assert!(!covers(&names, "localhost") && !covers(&names, "10.0.0.1"));
    }
}
