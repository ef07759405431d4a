//! The errors a command can end with, split by what the user should do next. The split
//! decides the exit code (STYLE.md): 2 when the input was wrong (flags, manifest), 1 when
//! the input was fine but the work failed (a file could not be written, a port was taken).

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The command line asked for something that cannot be done as asked.
    Usage(String),
    /// The manifest has problems; holds the rendered diagnostics, every one of them.
    Manifest(String),
    /// The work itself failed.
    Runtime(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Manifest(_) => 2,
            Error::Runtime(_) => 1,
        }
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        Error::Runtime(message.into())
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => write!(f, "error: {m}"),
            Error::Manifest(report) => f.write_str(report.trim_end()),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
