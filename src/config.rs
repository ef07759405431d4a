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
    pub keep_runs: usize,
    pub max_connections: usize,
    pub client_timeout: Duration,
    /// Set when the manifest has no users: the password of the one-time `admin`.
    pub one_time_password: Option<String>,
    /// Things the operator should hear about at start-up (manifest warnings included).
    pub warnings: Vec<String>,
}

impl Config {
    /// Call while the process has one thread: it overwrites `FTW_SECRET_KEY` in place.
    pub fn from_args(args: ServeArgs) -> Result<(Config, Manifest)> {
        let env_key = std::env::var("FTW_SECRET_KEY").ok();
        scrub_env_value("FTW_SECRET_KEY");
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

        let forward_auth = manifest.auth.trusted_header.is_some();
        let one_time_password = if manifest.auth.users.is_empty() && !forward_auth {
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

        let config = Config {
            manifest_path: args.manifest,
            base_path: manifest.server.base_path.clone(),
            audit_log: args.audit_log.or(manifest.server.audit_log.clone()),
            addr: SocketAddr::new(ip, port),
            tls,
            keys,
            shutdown_grace: args.shutdown_grace,
            max_runs: args.max_runs.into(),
            keep_runs: args.keep_runs as usize,
            max_connections: args.max_connections as usize,
            client_timeout: args.client_timeout,
            one_time_password,
            warnings,
        };
        Ok((config, manifest))
    }

    /// The address people should open, as printed in the `listening on` line.
    pub fn url(&self, local: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = match local.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        format!(
            "{scheme}://{host}:{}{}",
            local.port(),
            crate::auth::next::home(&self.base_path)
        )
    }
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
