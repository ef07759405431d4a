//! Room left on the disk that holds the state folder. Long output and uploads stop
//! before they take the last of it: a reserve stays free for the database, so that
//! how each run ended (and every sign-out) can still be recorded when a tool floods
//! the disk. The reserve is 5% of the file system, at least 1 MiB and at most 64 MiB.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MIN_RESERVE: u64 = 1 << 20;
const MAX_RESERVE: u64 = 64 << 20;

/// Why nothing more should be written to the file system of `path`, if it is nearly
/// full.
pub fn nearly_full(path: &Path) -> Option<String> {
    let (free, total) = room(path)?;
    let reserve = (total / 20).clamp(MIN_RESERVE, MAX_RESERVE);
    (free < reserve).then(|| {
        format!(
            "the disk that holds ftw's state is nearly full ({} left, {} kept free for ftw's records)",
            crate::manifest::human_size(free),
            crate::manifest::human_size(reserve)
        )
    })
}

/// (bytes free for ftw's user, total bytes) of the file system `path` is on.
fn room(path: &Path) -> Option<(u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(2) fills a plain C struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let unit = st.f_frsize as u64;
    Some((st.f_bavail as u64 * unit, st.f_blocks as u64 * unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_folder_has_room() {
        let dir = tempfile::tempdir().unwrap();
        let (free, total) = room(dir.path()).unwrap();
        assert!(free <= total && total > 0);
        assert_eq!(room(&dir.path().join("missing")), None);
    }
}
