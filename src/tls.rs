//! TLS for `ftw serve`: rustls on the ring provider only, TLS 1.2 and 1.3, ALPN h2 and
//! http/1.1. The provider is installed explicitly (two providers in one process make
//! rustls panic at start-up). Bad paths, files without a certificate or key, and a key
//! that does not belong to the certificate are start-up errors that name the file.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

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
                "the key {} does not fit the certificate {}: {e}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
