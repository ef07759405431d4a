//! Where runs keep their files: `runs/` in the state folder (mode 0700), and in it,
//! per run, the output folder the tool writes into (`ID/`, its `FTW_OUTPUT_DIR`),
//! only for runs that take uploads `ID.uploads/`, and only for long output `ID.log`.
//! Each is an inode made and later freed; a trivial run makes one. They stay as long
//! as the run stays in the history, and retention removes them with its record.
//!
//! The tool runs as ftw's user and could swap its output folder for a symlink, so
//! every read of it goes through the descriptor ftw opened when it made the folder (or,
//! for a run from the history, opened without following links), and never follows a
//! link.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A file the tool left in its output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub name: String,
    pub size: u64,
    /// A raster image that the run page may show inline.
    pub image: bool,
}

/// A run's private folders: the output folder, and the uploads folder once an upload
/// arrives. A folder made for a submission that never became a run is removed when
/// this is dropped; a run's folders stay until retention removes the run.
#[derive(Debug)]
pub struct RunDir {
    output: PathBuf,
    uploads: PathBuf,
    /// The output folder as ftw made it, held open for the run's life. The tool runs as
    /// ftw's user and can swap the folder for a symlink; every listing and every file
    /// read goes through this descriptor, so it always reads the folder ftw made.
    /// `None` for a run from the history whose folder is gone.
    dir: Option<OwnedFd>,
    /// Kept with the run (set when the run is stored).
    kept: AtomicBool,
    sweeper: Arc<Sweeper>,
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

    /// Where the run's output goes once it outgrows memory (`ID.log`).
    pub fn log_path(&self) -> PathBuf {
        self.output.with_extension("log")
    }

    /// The folders stay with the run (until retention removes it).
    pub fn keep(&self) {
        self.kept.store(true, Ordering::SeqCst);
    }

    /// Bytes of the uploads the run received.
    pub fn uploads_size(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.uploads) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    /// Regular files directly inside the output folder: no folders, no symlinks, no
    /// hard links (a tool could link a file it may read but the viewer should not),
    /// UTF-8 names without control or bidi characters only.
    pub(super) fn list_output(&self) -> Vec<OutputFile> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let mut files: Vec<OutputFile> = entry_names(dir)
            .into_iter()
            .filter(|name| !name.chars().any(crate::form::misleads))
            .filter_map(|name| {
                let (is_file, size) = stat_at(dir, &name)?;
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

    /// A regular file of the output folder with one link and a name `list_output`
    /// shows, opened without following symlinks.
    pub fn open_output_file(&self, name: &str) -> Option<std::fs::File> {
        if name.chars().any(crate::form::misleads) {
            return None;
        }
        let c_name = CString::new(name).ok()?;
        let dir = self.dir.as_ref()?;
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
        let meta = file.metadata().ok()?;
        (meta.is_file() && std::os::unix::fs::MetadataExt::nlink(&meta) == 1).then_some(file)
    }
}

/// The UTF-8 names in a folder, read through its descriptor (not `.` and `..`).
fn entry_names(dir: &OwnedFd) -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: fdopendir takes ownership of a fresh duplicate of our descriptor (closed by
    // closedir); readdir's entries are valid until the next readdir on that stream.
    unsafe {
        let fd = libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0);
        if fd < 0 {
            return names;
        }
        let stream = libc::fdopendir(fd);
        if stream.is_null() {
            libc::close(fd);
            return names;
        }
        // A duplicate shares the read position: start from the beginning every time.
        libc::rewinddir(stream);
        loop {
            let entry = libc::readdir(stream);
            if entry.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*entry).d_name.as_ptr());
            if let Ok(name) = name.to_str()
                && name != "."
                && name != ".."
            {
                names.push(name.to_string());
            }
        }
        libc::closedir(stream);
    }
    names
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
        (st.st_mode & libc::S_IFMT) == libc::S_IFREG && st.st_nlink == 1,
        st.st_size as u64,
    ))
}

impl Drop for RunDir {
    /// A folder that never became a run goes. Removing a folder blocks on the disk, so
    /// it never happens on the threads that answer requests: the sweeper removes it a
    /// moment later.
    fn drop(&mut self) {
        if !self.kept.load(Ordering::SeqCst) {
            let log = self.log_path();
            let output = std::mem::take(&mut self.output);
            let uploads = std::mem::take(&mut self.uploads);
            self.sweeper.bury([output, uploads, log]);
        }
    }
}

/// Folders of runs that left the history, removed in batches by a thread of their own
/// every `SWEEP_EVERY`: one wake-up per batch instead of one blocking task per run.
#[derive(Debug, Default)]
pub struct Sweeper {
    queue: Mutex<Vec<PathBuf>>,
}

const SWEEP_EVERY: Duration = Duration::from_millis(500);

impl Sweeper {
    /// A sweeper and its thread, which ends once the sweeper is dropped.
    pub fn start() -> Arc<Sweeper> {
        let sweeper = Arc::new(Sweeper::default());
        let weak = Arc::downgrade(&sweeper);
        let spawned = std::thread::Builder::new()
            .name("ftw-sweeper".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(SWEEP_EVERY);
                    let Some(sweeper) = weak.upgrade() else {
                        return;
                    };
                    let batch = std::mem::take(&mut *sweeper.queue.lock().expect("sweep lock"));
                    drop(sweeper);
                    remove_all(&batch);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot start the thread that removes old run folders ({e}); they go when ftw stops"
            );
        }
        sweeper
    }

    /// Removes these files and folders a moment later, on the sweeper's thread.
    pub fn bury(&self, paths: impl IntoIterator<Item = PathBuf>) {
        self.queue.lock().expect("sweep lock").extend(paths);
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        remove_all(self.queue.get_mut().expect("sweep lock"));
    }
}

fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let removed = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
            Ok(_) => std::fs::remove_file(path),
            Err(_) => Ok(()),
        };
        if let Err(e) = removed {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

/// Everything a run keeps on disk under `root`: its output folder, uploads and log.
pub fn run_paths(root: &Path, id: &str) -> [PathBuf; 3] {
    [
        root.join(id),
        root.join(format!("{id}.uploads")),
        root.join(format!("{id}.log")),
    ]
}

impl RunDir {
    /// Makes the output folder `root/id` (0700); uploads go to `root/id.uploads`.
    pub fn create(root: &Path, id: &str, sweeper: &Arc<Sweeper>) -> std::io::Result<RunDir> {
        let output = root.join(id);
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        builder.create(&output)?;
        let path = CString::new(output.clone().into_os_string().into_vec())
            .map_err(std::io::Error::other)?;
        // SAFETY: a plain open(2) of a NUL-terminated path; the result is owned below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RunDir {
            uploads: root.join(format!("{id}.uploads")),
            output,
            // SAFETY: fd was just opened and is owned by nothing else.
            dir: Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            kept: AtomicBool::new(false),
            sweeper: Arc::clone(sweeper),
        })
    }

    /// The folders of a run from the history, opened without following a symlink
    /// (the folder may be gone: then it lists no files).
    pub fn existing(root: &Path, id: &str, sweeper: &Arc<Sweeper>) -> RunDir {
        let output = root.join(id);
        let dir = CString::new(output.clone().into_os_string().into_vec())
            .ok()
            .and_then(|path| {
                // SAFETY: a plain open(2) of a NUL-terminated path; owned below.
                let fd = unsafe {
                    libc::open(
                        path.as_ptr(),
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    )
                };
                // SAFETY: fd was just opened and is owned by nothing else.
                (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
            });
        RunDir {
            uploads: root.join(format!("{id}.uploads")),
            output,
            dir,
            kept: AtomicBool::new(true),
            sweeper: Arc::clone(sweeper),
        }
    }
}

/// Makes (or opens) `runs/` in the state folder, mode 0700.
pub fn runs_root(state_dir: &Path) -> std::io::Result<PathBuf> {
    let root = state_dir.join("runs");
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    match builder.create(&root) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
    Ok(root)
}
