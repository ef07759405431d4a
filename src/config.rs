//! Everything `ftw serve` decides once at start-up: the command line and environment
//! merged over the manifest's `[server]` and `[auth]` (flags win), the signing key
//! found, the zero-config user made. Handlers only ever see this `Config`, never clap
//! types, and it does not change while serving.
//!
//! The manifest itself is not part of it: it can be reloaded while ftw runs, so
//! `Config::build` hands the first one back beside the `Config`, and from then on the
//! server's `State` owns the one in force. What a reload cannot change (address, TLS,
//! base path, audit log) is copied out here once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::keys::Keys;
use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, TlsFiles, User, ZERO_CONFIG_USER};
use crate::password;

pub const DEFAULT_PORT: u16 = 8000;
/// The state folder's size budget unless one is given: 5 GB.
pub const DEFAULT_MAX_STATE_SIZE: u64 = 5_000_000_000;

#[derive(Debug)]
pub struct Config {
    pub manifest_path: PathBuf,
    pub addr: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub keys: Keys,
    /// "/" or "/tools" (no trailing slash).
    pub base_path: String,
    pub shutdown_grace: Duration,
    pub audit_log: Option<PathBuf>,
    pub max_runs: usize,
    /// Where the database, the runs and their files live.
    pub state_dir: PathBuf,
    /// A PostgreSQL database shared with other replicas, instead of SQLite in the
    /// state folder.
    pub database: Option<Database>,
    pub keep_runs: u64,
    pub keep_for: Option<Duration>,
    pub max_state_size: u64,
    pub max_runs_per_user: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub max_streams_per_user: usize,
    /// Host names from `--allowed-hosts`, besides the manifest's.
    pub allowed_hosts: Vec<String>,
    pub client_timeout: Duration,
    /// Set when the manifest has no users: the password of the one-time `admin`.
    pub one_time_password: Option<String>,
    /// Things the operator should hear about at start-up (manifest warnings included).
    pub warnings: Vec<String>,
}

/// Where the shared database is: its URL and the file with its password.
#[derive(Clone)]
pub struct Database {
    pub url: String,
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for Database {
    // The URL may hold a password (from the command line or the environment).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Call while the process has one thread: it overwrites `FTW_SECRET_KEY` in place.
    pub fn from_args(args: ServeArgs) -> Result<(Config, Manifest)> {
        let env_key = std::env::var("FTW_SECRET_KEY").ok();
        scrub_env_value("FTW_SECRET_KEY");
        // The URL may carry a password; clap has read it already.
        scrub_env_value("FTW_DATABASE_URL");
        Config::build(args, env_key.as_deref())
    }

    /// `from_args` with the environment's `FTW_SECRET_KEY` passed in, for tests. Returns
    /// the settings and the manifest to start with.
    pub fn build(args: ServeArgs, env_key: Option<&str>) -> Result<(Config, Manifest)> {
        let loaded = manifest::load(&args.manifest).map_err(Error::Manifest)?;
        let mut manifest = loaded.manifest;
        let mut warnings = loaded.warnings;

        let host = args
            .host
            .or_else(|| manifest.server.host.clone())
            .unwrap_or_else(|| "127.0.0.1".into());
        let ip = parse_host(&host)?;
        let port = args.port.or(manifest.server.port).unwrap_or(DEFAULT_PORT);

        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            _ => manifest.server.tls.clone(),
        };

        let (keys, key_warning) = Keys::load(
            args.secret_key_file.as_deref(),
            env_key,
            manifest.auth.secret_key_file.as_deref(),
        )
        .map_err(Error::usage)?;
        warnings.extend(key_warning);

        let outside_users = manifest.auth.has_outside_users();
        let one_time_password = if manifest.auth.users.is_empty() && !outside_users {
            if !ip.is_loopback() {
                return Err(Error::usage(format!(
                    "refusing to listen on {host}: {} has no users, and ftw only serves its \
                     one-time `admin` password on this machine (loopback). Add users under \
                     [auth.users] (hash their passwords with `ftw hash-password`) to serve \
                     on a network",
                    args.manifest.display()
                )));
            }
            let password = crate::auth::b64(&crate::auth::random::<18>());
            let hash = password::hash(password.as_bytes()).map_err(Error::runtime)?;
            manifest.auth.users.insert(
                ZERO_CONFIG_USER.into(),
                User {
                    password_hash: hash,
                    ..User::synthesized(ZERO_CONFIG_USER)
                },
            );
            Some(password)
        } else {
            None
        };

        let state_dir = match args.state_dir.or(manifest.server.state_dir.clone()) {
            Some(dir) => dir,
            None => default_state_dir()?,
        };
        let database = match args.database.or(manifest.server.database.clone()) {
            Some(url) => Some(Database {
                url,
                password_file: args
                    .database_password_file
                    .or(manifest.server.database_password_file.clone()),
            }),
            None => None,
        };
        let config = Config {
            database,
            manifest_path: args.manifest,
            base_path: manifest.server.base_path.clone(),
            audit_log: args.audit_log.or(manifest.server.audit_log.clone()),
            addr: SocketAddr::new(ip, port),
            tls,
            keys,
            shutdown_grace: args.shutdown_grace,
            max_runs: args.max_runs.into(),
            state_dir,
            keep_runs: args
                .keep_runs
                .or(manifest.server.keep_runs)
                .unwrap_or(crate::runs::DEFAULT_KEEP_RUNS)
                .into(),
            keep_for: args.keep_for.or(manifest.server.keep_for),
            max_state_size: args
                .max_state_size
                .or(manifest.server.max_state_size)
                .unwrap_or(DEFAULT_MAX_STATE_SIZE),
            max_runs_per_user: args
                .max_runs_per_user
                .or(manifest.server.max_runs_per_user)
                .unwrap_or(crate::runs::DEFAULT_MAX_RUNS_PER_USER)
                .into(),
            max_connections: args.max_connections as usize,
            max_streams_per_user: args.max_streams_per_user as usize,
            allowed_hosts: args.allowed_hosts.clone(),
            max_connections_per_client: args.max_connections_per_client.map_or_else(
                || crate::server::default_per_client(args.max_connections as usize),
                |n| n as usize,
            ),
            client_timeout: args.client_timeout,
            one_time_password,
            warnings,
        };
        Ok((config, manifest))
    }

    /// The addresses to print at start-up. `cert_names` are the names the TLS
    /// certificate is valid for (none without TLS): an address is only offered if a
    /// browser will accept the certificate there.
    pub fn addresses(&self, local: SocketAddr, cert_names: &[String]) -> Addresses {
        let tls = self.tls.is_some();
        let url = |host: &str| {
            let scheme = if tls { "https" } else { "http" };
            let host = match host.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
                _ => host.to_string(),
            };
            let base = crate::auth::next::home(&self.base_path);
            format!("{scheme}://{host}:{}{base}", local.port())
        };
        let accepted = |host: &str| !tls || crate::tls::covers(cert_names, host);
        let loopback = ["127.0.0.1", "localhost", "::1"];
        let bound = local.ip();
        // The first name of this machine the certificate is for.
        let local_name = loopback.iter().copied().find(|h| accepted(h));
        // Names of this machine on the network the certificate is for (not wildcards).
        let network: Vec<String> = cert_names
            .iter()
            .filter(|n| !n.starts_with("*.") && !loopback.contains(&n.as_str()))
            .filter(|n| n.parse::<IpAddr>().map_or(true, |ip| !ip.is_loopback()))
            .map(|n| url(n))
            .collect();
        if bound.is_unspecified() {
            return Addresses {
                listening: url(&bound.to_string()),
                this_machine: local_name.map(url),
                network,
            };
        }
        let bound_text = bound.to_string();
        let listening = if accepted(&bound_text) {
            url(&bound_text)
        } else if bound.is_loopback()
            && let Some(name) = local_name
        {
            url(name)
        } else {
            network.first().cloned().unwrap_or_else(|| url(&bound_text))
        };
        Addresses {
            listening,
            this_machine: None,
            network: Vec::new(),
        }
    }
}

/// What `ftw serve` prints about where to find it.
#[derive(Debug, PartialEq, Eq)]
pub struct Addresses {
    /// The `listening on` URL (scripts read it).
    pub listening: String,
    /// When listening on every interface: the URL to open on this machine.
    pub this_machine: Option<String>,
    /// When listening on every interface with TLS: the certificate's other names.
    pub network: Vec<String>,
}

/// Overwrites an environment variable's value where the kernel shows it
/// (`/proc/<pid>/environ` reads the original environment block), so the key is not
/// left for anyone who can read that file. Children never see it either way: their
/// environment is built from scratch.
fn scrub_env_value(name: &str) {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: getenv returns a pointer into this process's environment (or null); the
    // value's bytes are overwritten in place, without changing its length, while no
    // other thread exists to read the environment.
    unsafe {
        let value = libc::getenv(c_name.as_ptr());
        if !value.is_null() {
            let len = libc::strlen(value);
            std::ptr::write_bytes(value, b'*', len);
        }
    }
}

/// Where state lives when neither a flag nor the manifest says: systemd's
/// `$STATE_DIRECTORY` (its first entry), else `$XDG_STATE_HOME/ftw`, else
/// `~/.local/state/ftw` (the XDG default).
fn default_state_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = var("STATE_DIRECTORY")
        && let Some(first) = std::env::split_paths(&dirs).next()
    {
        return Ok(first);
    }
    if let Some(xdg) = var("XDG_STATE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("ftw"));
    }
    match var("HOME").map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home.join(".local/state/ftw")),
        _ => Err(Error::usage(
            "cannot tell where to keep ftw's state: HOME is not set. Pick a folder with \
             --state-dir (or FTW_STATE_DIR, or [server] state_dir)",
        )),
    }
}

/// An IP address, or `localhost` (which means 127.0.0.1).
fn parse_host(host: &str) -> Result<IpAddr> {
    if host == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            Error::usage(format!(
                "--host {host:?} is not an IP address; use e.g. 127.0.0.1 (this machine only), \
                 0.0.0.0 (every IPv4 interface) or :: (every interface)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::KeySource;

    fn config(tls: bool) -> Config {
        Config {
            manifest_path: "tools.toml".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls: tls.then(|| TlsFiles {
                cert: "cert.pem".into(),
                key: "key.pem".into(),
            }),
            keys: Keys::from_secret(&[1; 32], KeySource::Ephemeral),
            base_path: "/".into(),
            shutdown_grace: Duration::from_secs(1),
            audit_log: None,
            max_runs: 1,
            state_dir: "state".into(),
            database: None,
            keep_runs: 1,
            keep_for: None,
            max_state_size: DEFAULT_MAX_STATE_SIZE,
            max_runs_per_user: 1,
            max_connections: 16,
            max_connections_per_client: 4,
            max_streams_per_user: 32,
            allowed_hosts: Vec::new(),
            client_timeout: Duration::from_secs(1),
            one_time_password: None,
            warnings: Vec::new(),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_printed_address_is_one_the_certificate_is_for() {
        let at = |ip: [u8; 4]| SocketAddr::from((ip, 8443));
        let lan_only = names(&["ftw.example.lan"]);
        let with_loopback = names(&["ftw.example.lan", "localhost", "127.0.0.1", "::1"]);
        let tls = config(true);
        assert_eq!(
            tls.addresses(at([127, 0, 0, 1]), &with_loopback).listening,
            "https://127.0.0.1:8443/"
        );
        assert_eq!(
            tls.addresses(at([127, 0, 0, 1]), &lan_only).listening,
            "https://ftw.example.lan:8443/",
            "not an address the certificate would fail on"
        );
        let everywhere = tls.addresses(at([0, 0, 0, 0]), &with_loopback);
        assert_eq!(everywhere.listening, "https://0.0.0.0:8443/");
        assert_eq!(
            everywhere.this_machine.as_deref(),
            Some("https://127.0.0.1:8443/")
        );
        assert_eq!(everywhere.network, ["https://ftw.example.lan:8443/"]);
        let only_localhost = tls.addresses(at([0, 0, 0, 0]), &names(&["localhost"]));
        assert_eq!(
            only_localhost.this_machine.as_deref(),
            Some("https://localhost:8443/")
        );
        let plain = config(false).addresses(at([0, 0, 0, 0]), &[]);
        assert_eq!(
            plain.this_machine.as_deref(),
            Some("http://127.0.0.1:8443/")
        );
        assert!(plain.network.is_empty());
    }
}
