//! Where the PostgreSQL database is and how to reach it: the URL (`postgres://USER@HOST:PORT/DB`),
//! the password from a file of ftw's own (never in the manifest), and TLS.
//!
//! Over a network the connection must be TLS (`sslmode=require`), and the server's
//! certificate is checked against the system's roots and Mozilla's: a database on
//! another machine holds every session revocation and every run's output. To a loopback
//! address or a Unix socket, nothing leaves the machine, so ftw connects in the clear
//! unless the URL asks for TLS.

use std::path::Path;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A database to connect to.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    /// The URL without its password, for messages and logs.
    pub shown: String,
    pub tls: MakeRustlsConnect,
}

/// The target of `url`, with the password read from `password_file` when given.
pub fn target(url: &str, password_file: Option<&Path>) -> Result<Target, String> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut config: tokio_postgres::Config = match url.parse() {
        Ok(config) if scheme_ok => config,
        Ok(_) => return Err(not_a_url("it does not start with postgres://")),
        Err(_) => return Err(not_a_url("it cannot be read")),
    };
    let shown = shown(&config);
    if let Some(path) = password_file {
        config.password(read_password(path)?);
    }
    if config.get_user().is_none() {
        return Err(format!(
            "the database URL {shown} names no user: write postgres://USER@HOST/DATABASE"
        ));
    }
    let explicit_ssl = url.contains("sslmode=");
    // `hostaddr`, when given, is the address actually dialled: it decides too.
    let local = !config.get_hosts().is_empty()
        && config.get_hosts().iter().all(is_local)
        && config.get_hostaddrs().iter().all(|ip| ip.is_loopback());
    if !local && config.get_ssl_mode() != SslMode::Require {
        return Err(format!(
            "the database {shown} is reached over the network, so ftw requires TLS: add \
             ?sslmode=require to the URL (the server's certificate is checked against the \
             system's trusted roots)"
        ));
    }
    if local && !explicit_ssl {
        config.ssl_mode(SslMode::Disable);
    }
    config
        .connect_timeout(Duration::from_secs(5))
        .application_name("ftw")
        // No statement runs for long; one that does is a stuck database, not work.
        .options("-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000");
    Ok(Target {
        config,
        shown,
        tls: MakeRustlsConnect::new(tls_config()),
    })
}

/// Why a URL is refused, without the URL or the parser's words about it: either may
/// hold a password.
fn not_a_url(why: &str) -> String {
    format!(
        "the database URL is not a PostgreSQL URL ({why}); write \
         postgres://USER@HOST:PORT/DATABASE and put the password in a file named by \
         --database-password-file"
    )
}

/// `postgres://user@host:port/db`, never with the password.
fn shown(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// The password in `path` (its first line), from a file no other user may read.
fn read_password(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| {
        format!(
            "cannot read the database password file {}: {}",
            path.display(),
            crate::manifest::io_reason(&e)
        )
    };
    let meta = std::fs::metadata(path).map_err(fail)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the database password file {} is readable by other users (mode {mode:o}); \
             run chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    let text = std::fs::read(path).map_err(fail)?;
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(format!(
            "the database password file {} is empty",
            path.display()
        ));
    }
    Ok(line.to_vec())
}

/// TLS on rustls and ring, trusting the system's roots and Mozilla's.
fn tls_config() -> tokio_rustls::rustls::ClientConfig {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_database_needs_tls_and_a_local_one_does_not() {
        let err = target("postgres://ftw@db.example.com/ftw", None)
            .err()
            .unwrap();
        assert!(err.contains("sslmode=require"), "{err}");
        let t = target("postgres://ftw@db.example.com/ftw?sslmode=require", None).unwrap();
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        let t = target("postgres://ftw@127.0.0.1:5433/ftw", None).unwrap();
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(t.shown, "postgres://ftw@127.0.0.1:5433/ftw");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        let t = target("postgres://ftw:hunter2@127.0.0.1/ftw", None).unwrap();
        assert!(!t.shown.contains("hunter2"));
        let err = target("mysql://ftw:hunter2@127.0.0.1/ftw", None)
            .err()
            .unwrap();
        assert!(!err.contains("hunter2"), "{err}");
        let err = target("postgres://127.0.0.1/ftw", None).err().unwrap();
        assert!(err.contains("names no user"), "{err}");
    }

    #[test]
    fn a_password_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = target("postgres://ftw@127.0.0.1/ftw", Some(&file))
            .err()
            .unwrap();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = target("postgres://ftw@127.0.0.1/ftw", Some(&file)).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
    }
}
