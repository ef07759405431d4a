//! The command line, as clap types. Doc comments here are the help text, the man page and
//! the shell completions, so they are written for users. Nothing outside `lib.rs` and
//! `cmd/` sees these types: each command turns them into its own settings first.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Turn scripts and executables into authenticated web forms.
///
/// Write a TOML manifest that maps commands with typed arguments to forms, run
/// `ftw serve tools.toml`, and let colleagues sign in through a browser, fill in a form
/// and watch the command run live. No shell is ever involved: every form value reaches
/// the program as exactly one argument.
#[derive(Debug, Parser)]
#[command(name = "ftw", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the tools of a manifest as authenticated web forms
    Serve(Box<ServeArgs>),
    /// Validate a manifest and report every problem in it at once
    ///
    /// Exits 0 and prints one line per tool (id, number of arguments, who may run it)
    /// when the manifest is valid; exits 2 with every problem on stderr when it is not.
    Check {
        /// The manifest to check, e.g. tools.toml
        #[arg(value_name = "MANIFEST", value_hint = clap::ValueHint::FilePath)]
        manifest: PathBuf,
    },
    /// Print a new random signing key for session cookies
    ///
    /// The bytes come from the operating system's CSPRNG. Store the output in a file
    /// readable only by ftw and point `--secret-key-file` or `[auth] secret_key_file`
    /// at it: `ftw gen-secret > ftw.secret && chmod 600 ftw.secret`.
    GenSecret {
        /// How many random bytes to generate (16 to 1024; ftw serve needs at least 32)
        #[arg(long, value_name = "N", default_value_t = 32,
              value_parser = clap::value_parser!(u16).range(16..=1024))]
        bytes: u16,
        /// Print base64 instead of hex
        #[arg(long)]
        base64: bool,
    },
    /// Make an API token: printed once, with the manifest lines that hold its hash
    ///
    /// Scripts call the JSON API with `Authorization: Bearer TOKEN` and have the rights
    /// of `--user`. The first line of output is the token alone.
    GenToken {
        /// The token's name in [auth.tokens]
        #[arg(long, value_name = "NAME", default_value = "api")]
        name: String,
        /// The user whose rights the token has
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// Hash a password with argon2id for the manifest's [auth.users]
    ///
    /// On a terminal it asks twice without echo; otherwise it reads one line from
    /// standard input, so scripts can pipe a password in:
    /// `printf '%s\n' "$PW" | ftw hash-password`.
    HashPassword {
        /// Check a password against this hash instead (exit 0 if it matches, 1 if not)
        #[arg(long, value_name = "HASH")]
        verify: Option<String>,
    },
    /// Create TLS certificate and key files for `ftw serve`
    Cert(CertArgs),
    /// Make a TOTP secret so a user signs in with a code from an authenticator app
    ///
    /// Prints the secret, the otpauth:// URI, a QR code to scan, and the line to put in
    /// the manifest. The user then enters a six-digit code after their password.
    TotpSetup {
        /// The user name, as in [auth.users]
        #[arg(value_name = "USER")]
        user: String,
        /// The name authenticator apps show for this account
        #[arg(long, value_name = "NAME", default_value = "ftw")]
        issuer: String,
    },
    /// Print a shell completion script
    ///
    /// bash: `ftw completions bash > ~/.local/share/bash-completion/completions/ftw`
    Completions {
        /// The shell to generate completions for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on standard output
    ///
    /// View it with `ftw man | man -l -`.
    Man,
}

/// Flags of `ftw serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The manifest that lists the tools, e.g. tools.toml
    #[arg(value_name = "MANIFEST", value_hint = clap::ValueHint::FilePath)]
    pub manifest: PathBuf,
    /// Address to listen on [default: [server] host, else 127.0.0.1]
    #[arg(long, env = "FTW_HOST", value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks any free port [default: [server] port, else 8000]
    #[arg(long, env = "FTW_PORT", value_name = "PORT")]
    pub port: Option<u16>,
    /// PEM certificate chain; with --tls-key, serve HTTPS
    #[arg(long, env = "FTW_TLS_CERT", value_name = "FILE", requires = "tls_key",
          value_hint = clap::ValueHint::FilePath)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "FTW_TLS_KEY", value_name = "FILE", requires = "tls_cert",
          value_hint = clap::ValueHint::FilePath)]
    pub tls_key: Option<PathBuf>,
    /// File holding the key that signs session cookies (from `ftw gen-secret`)
    ///
    /// Takes precedence over the FTW_SECRET_KEY environment variable, which holds the
    /// key itself, and over `[auth] secret_key_file`.
    #[arg(long, env = "FTW_SECRET_KEY_FILE", value_name = "FILE",
          value_hint = clap::ValueHint::FilePath)]
    pub secret_key_file: Option<PathBuf>,
    /// Append one JSON line per sign-in, sign-out and run to this file
    #[arg(long, env = "FTW_AUDIT_LOG", value_name = "FILE",
          value_hint = clap::ValueHint::FilePath)]
    pub audit_log: Option<PathBuf>,
    /// Runs that may execute at once, over all tools (more wait in a short queue)
    #[arg(long, env = "FTW_MAX_RUNS", value_name = "N", default_value_t = crate::runs::DEFAULT_MAX_RUNS,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_runs: u16,
    /// How long a client may take to send its request headers, or pause while sending a
    /// body, before ftw drops it
    #[arg(long, env = "FTW_CLIENT_TIMEOUT", value_name = "DURATION", default_value = "10s",
          value_parser = parse_duration)]
    pub client_timeout: Duration,
    /// Open connections at most (live output pages count); more wait to be accepted
    #[arg(long, env = "FTW_MAX_CONNECTIONS", value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(16..))]
    pub max_connections: u32,
    /// Open connections at most from one address (IPv6: one /64); trusted proxies are
    /// not capped [default: an eighth of --max-connections, from 4 to 64]
    #[arg(long, env = "FTW_MAX_CONNECTIONS_PER_CLIENT", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: Option<u32>,
    /// Host names ftw answers to besides its own, comma-separated (e.g. the name users
    /// open in a container or behind a proxy); adds to [server] allowed_hosts
    #[arg(long, env = "FTW_ALLOWED_HOSTS", value_name = "NAMES", value_delimiter = ',',
          value_parser = parse_host)]
    pub allowed_hosts: Vec<String>,
    /// Live output streams (run pages, API event streams) one user may have open at once
    #[arg(long, env = "FTW_MAX_STREAMS_PER_USER", value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_user: u32,
    /// Folder for ftw's database, runs, their output and files (made mode 0700)
    /// [default: [server] state_dir, else $STATE_DIRECTORY (systemd), else
    /// $XDG_STATE_HOME/ftw, else ~/.local/state/ftw]
    #[arg(long, env = "FTW_STATE_DIR", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub state_dir: Option<PathBuf>,
    /// A PostgreSQL database shared by several ftw replicas, e.g.
    /// postgres://ftw@db.internal/ftw?sslmode=require [default: [server] database, else
    /// SQLite in the state folder]
    #[arg(
        long,
        env = "FTW_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// A file (mode 0600) with the database user's password [default: [server]
    /// database_password_file]
    #[arg(long, env = "FTW_DATABASE_PASSWORD_FILE", value_name = "FILE",
          value_hint = clap::ValueHint::FilePath)]
    pub database_password_file: Option<PathBuf>,
    /// Finished runs kept in the history, with their output and files [default:
    /// [server] keep_runs, else 10000]
    #[arg(long, env = "FTW_KEEP_RUNS", value_name = "N")]
    pub keep_runs: Option<u32>,
    /// Remove finished runs older than this, e.g. "30d" [default: [server] keep_for, else
    /// keep them]
    #[arg(long, env = "FTW_KEEP_FOR", value_name = "DURATION", value_parser = parse_duration)]
    pub keep_for: Option<Duration>,
    /// The most the state folder may take; the oldest runs go first [default: [server]
    /// max_state_size, else 5GB]
    #[arg(long, env = "FTW_MAX_STATE_SIZE", value_name = "SIZE", value_parser = parse_size)]
    pub max_state_size: Option<u64>,
    /// Runs one user may have queued or running at once [default: [server]
    /// max_runs_per_user, else 8]
    #[arg(long, env = "FTW_MAX_RUNS_PER_USER", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_runs_per_user: Option<u16>,
    /// On SIGINT/SIGTERM, how long running tools may finish before they are killed
    #[arg(long, env = "FTW_SHUTDOWN_GRACE", value_name = "DURATION", default_value = "10s",
          value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// Flags of `ftw cert`.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Make a self-signed certificate (for a LAN, a lab, or a first try)
    #[arg(long)]
    pub self_signed: bool,
    /// A DNS name or IP address the certificate is valid for, besides localhost,
    /// 127.0.0.1 and ::1 (repeatable)
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Leave localhost, 127.0.0.1 and ::1 out: only the --san names
    #[arg(long, requires = "sans")]
    pub no_default_sans: bool,
    /// How many days the certificate stays valid
    #[arg(long, value_name = "N", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Folder to write cert.pem and key.pem into
    #[arg(long, value_name = "DIR", default_value = ".", value_hint = clap::ValueHint::DirPath)]
    pub out_dir: PathBuf,
    /// Replace cert.pem and key.pem if they exist
    #[arg(long)]
    pub force: bool,
}

/// Parses one `--allowed-hosts` name (as `[server] allowed_hosts` takes them).
fn parse_host(text: &str) -> Result<String, String> {
    crate::manifest::host_pattern(text).map_err(str::to_string)
}

/// Parses "10s", "2m", "1h 30m" (humantime) for duration flags.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; write a duration such as \"10s\", \"2m\" or \"1h\""))
}

/// Parses "500MB", "5GB", "2GiB" for size flags.
pub fn parse_size(text: &str) -> Result<u64, String> {
    match parse_size::parse_size(text) {
        Ok(0) => Err("must be larger than zero".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}; write a size such as \"500MB\" or \"5GB\"")),
    }
}

/// The clap command tree, for completions and the man page.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}
