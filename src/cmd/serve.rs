//! `ftw serve`: turn the flags and the manifest into a `Config`, then serve it.

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::Result;

pub fn run(args: ServeArgs) -> Result<()> {
    keep_inherited_fds_from_tools();
    crate::logging::init();
    let (config, manifest) = Config::from_args(args)?;
    crate::server::run(config, manifest)
}

/// Marks every descriptor ftw inherited above stderr close-on-exec, before any thread
/// starts: whatever started ftw (a shell, a supervisor, a CI runner) may have left
/// files or sockets open, and tools must not get them. ftw's own descriptors are
/// close-on-exec already. Done once here rather than in each child, so spawning keeps
/// its fast path (a `pre_exec` hook would force a full fork per run).
fn keep_inherited_fds_from_tools() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    if done {
        return;
    }
    // Kernels before 5.11: the descriptors that are open, one by one.
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number; a closed one just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}
