//! Where runs keep their files: one private root per server (mode 0700, random name,
//! cleaned up after a crash), and in it, per run, the output folder the tool writes
//! into (`ID/`, its `FTW_OUTPUT_DIR`) and, only for runs that take uploads,
//! `ID.uploads/`. Each folder is an inode made and later freed; a trivial run makes
//! one. The tool runs as ftw's user and could swap its output folder for a symlink, so
//! every read of it goes through a descriptor that was checked to be the folder ftw
//! made, and never follows a link.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file the tool left in its output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub name: String,
    pub size: u64,
    /// A raster image that the run page may show inline.
    pub image: bool,
}

/// A run's private folders: the output folder, and the uploads folder once an upload
/// arrives. Removed with the run.
#[derive(Debug)]
pub struct RunDir {
    output: PathBuf,
    uploads: PathBuf,
    /// (device, inode) of the output folder as ftw made it. The tool runs as ftw's user
    /// and can swap the folder for a symlink; every later use checks it is still this.
    output_id: (u64, u64),
}

impl RunDir {
    /// Where uploads are stored (it exists once `make_uploads` made it).
    pub fn uploads(&self) -> &Path {
        &self.uploads
    }

    /// Makes the uploads folder (0700) if it is not there yet.
    pub fn make_uploads(&self) -> std::io::Result<&Path> {
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        match builder.create(&self.uploads) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(&self.uploads),
        }
    }

    /// The folder the tool writes its files into (`FTW_OUTPUT_DIR`).
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The output folder, opened without following a symlink, if it is still the
    /// folder ftw made.
    fn open_output(&self) -> Option<OwnedFd> {
        use std::os::unix::fs::MetadataExt;
        let path = CString::new(self.output.clone().into_os_string().into_vec()).ok()?;
        // SAFETY: a plain open(2) of a NUL-terminated path; the result is owned below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let meta = std::fs::File::from(fd.try_clone().ok()?).metadata().ok()?;
        ((meta.dev(), meta.ino()) == self.output_id).then_some(fd)
    }

    /// Regular files directly inside the output folder: no folders, no symlinks, UTF-8
    /// names only.
    pub(super) fn list_output(&self) -> Vec<OutputFile> {
        let Some(dir) = self.open_output() else {
            return Vec::new();
        };
        // Reading through the descriptor, not the path: the folder checked is the folder read.
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
            return Vec::new();
        };
        let mut files: Vec<OutputFile> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (is_file, size) = stat_at(&dir, &name)?;
                if !is_file {
                    return None;
                }
                let lower = name.to_ascii_lowercase();
                let image = [".png", ".jpg", ".jpeg", ".gif", ".webp"]
                    .iter()
                    .any(|ext| lower.ends_with(ext));
                Some(OutputFile { name, size, image })
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files
    }

    /// A regular file of the output folder, opened without following symlinks.
    pub fn open_output_file(&self, name: &str) -> Option<std::fs::File> {
        let dir = self.open_output()?;
        let c_name = CString::new(name).ok()?;
        // SAFETY: openat(2) relative to a directory descriptor we own.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c_name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.metadata().ok()?.is_file().then_some(file)
    }
}

/// (is a regular file, size) of `name` in `dir`, without following a symlink.
fn stat_at(dir: &OwnedFd, name: &str) -> Option<(bool, u64)> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: fstatat(2) fills a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c_name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (rc == 0).then_some((
        (st.st_mode & libc::S_IFMT) == libc::S_IFREG,
        st.st_size as u64,
    ))
}

impl Drop for RunDir {
    /// Removing a folder blocks on the disk, so inside the server it happens on the
    /// blocking pool, never on the threads that answer requests. Whatever is still
    /// there when ftw stops goes with the private root.
    fn drop(&mut self) {
        let output = std::mem::take(&mut self.output);
        let uploads = std::mem::take(&mut self.uploads);
        let remove = move || {
            let _ = std::fs::remove_dir_all(&output);
            let _ = std::fs::remove_dir_all(&uploads);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

impl RunDir {
    /// Makes the output folder `root/id` (0700); uploads go to `root/id.uploads`.
    pub fn create(root: &Path, id: &str) -> std::io::Result<RunDir> {
        let output = root.join(id);
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        builder.create(&output)?;
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&output)?;
        Ok(RunDir {
            uploads: root.join(format!("{id}.uploads")),
            output,
            output_id: (meta.dev(), meta.ino()),
        })
    }
}

const ROOT_PREFIX: &str = "ftw-runs-";
const ROOT_PID_FILE: &str = "ftw.pid";

/// Makes the private folder that holds every run's folder (mode 0700, random name), and
/// removes those a crashed ftw left behind (their `ftw.pid` names a dead process).
pub fn private_root() -> std::io::Result<PathBuf> {
    remove_stale_roots(&std::env::temp_dir());
    let dir = tempfile::Builder::new()
        .prefix(ROOT_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?
        .keep();
    std::fs::write(dir.join(ROOT_PID_FILE), std::process::id().to_string())?;
    Ok(dir)
}

fn remove_stale_roots(tmp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(ROOT_PREFIX) {
            continue;
        }
        let Ok(pid) = std::fs::read_to_string(entry.path().join(ROOT_PID_FILE)) else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<i32>() else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            tracing::info!("removing {} left by a stopped ftw", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
