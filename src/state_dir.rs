//! The state folder: where ftw keeps what a restart must not lose (the database, each
//! run's output and files). It is made mode 0700 (a wider folder that ftw owns is
//! narrowed, with a warning), and one ftw at a time holds it: a second `ftw serve` on
//! the same folder would take the first one's running runs for interrupted ones and
//! kill them, so it is refused with the first one's process id.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "ftw.lock";

/// The state folder, held by this ftw until it is dropped.
#[derive(Debug)]
pub struct StateDir {
    pub path: PathBuf,
    /// Holds the lock (`flock`) for as long as it is open.
    _lock: File,
}

impl StateDir {
    /// Makes the folder (and its parents) if need be, checks it is private, and takes
    /// its lock. Returns warnings for the operator beside it.
    pub fn open(path: &Path) -> Result<(StateDir, Vec<String>), String> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let shown = path.display();
        let fail = |what: &str, e: std::io::Error| {
            format!(
                "cannot {what} the state folder {shown}: {}. Pick another with --state-dir \
                 (or FTW_STATE_DIR, or [server] state_dir)",
                crate::manifest::io_reason(&e)
            )
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail("make", e))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(fail("make", e));
            }
            _ => {}
        }
        let meta = std::fs::metadata(&path).map_err(|e| fail("read", e))?;
        if !meta.is_dir() {
            return Err(format!(
                "the state folder {shown} is not a folder. Pick another with --state-dir"
            ));
        }
        let mut warnings = Vec::new();
        if meta.mode() & 0o077 != 0 {
            let narrowed = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
            warnings.push(match narrowed {
                Ok(()) => format!(
                    "the state folder {shown} was open to other users (mode {:o}); ftw made it 0700",
                    meta.mode() & 0o777
                ),
                Err(e) => format!(
                    "the state folder {shown} is open to other users (mode {:o}) and ftw cannot \
                     change that ({}); run files inside stay private (0700)",
                    meta.mode() & 0o777,
                    crate::manifest::io_reason(&e)
                ),
            });
        }
        let lock = take_lock(&path.join(LOCK_FILE)).map_err(|e| match e {
            Locked::Held(pid) => format!(
                "another ftw{} is using the state folder {shown}. Stop it, or give this one \
                 its own folder with --state-dir",
                pid.map(|p| format!(" (process {p})")).unwrap_or_default()
            ),
            Locked::Io(e) => fail("lock", e),
        })?;
        Ok((StateDir { path, _lock: lock }, warnings))
    }
}

enum Locked {
    Held(Option<u32>),
    Io(std::io::Error),
}

/// Opens the lock file and takes an exclusive `flock` without waiting; writes this
/// process's id into it for the message a second ftw prints.
fn take_lock(path: &Path) -> Result<File, Locked> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(Locked::Io)?;
    // SAFETY: flock(2) on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(Locked::Held(text.trim().parse().ok()));
        }
        return Err(Locked::Io(e));
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    written.map_err(Locked::Io)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_private_and_held_by_one_ftw() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("deep/state");
        let (held, warnings) = StateDir::open(&path).unwrap();
        assert!(warnings.is_empty());
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // flock locks belong to the open file: a second open in this process conflicts
        // just as a second ftw would.
        let err = StateDir::open(&path).unwrap_err();
        assert!(err.contains("another ftw"), "{err}");
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(held);
        StateDir::open(&path).expect("free again once the first lets go");
    }

    #[test]
    fn a_folder_open_to_others_is_narrowed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_held, warnings) = StateDir::open(&path).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("made it 0700"));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o700);
    }
}
