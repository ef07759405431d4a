//! A run's output: in memory while it is small, then in a file in the runs' folder
//! (`ID.log`, mode 0600, beside the tool's output folder, so the tool cannot list or
//! replace it from there). Most runs print a few lines; they cost no file at all (a
//! file per run is an inode made and freed per run, which on ext4 was the largest cost
//! of a trivial run): while in memory, what is new is stored in the state database as
//! chunks a few times a second (`unsaved_chunks`), so a crash loses at most the last
//! moment of it, and a run that ends before then costs no write of its own (its
//! whole output is stored with its ending). Past `SPILL_AT` the output moves to the
//! file and memory stays flat however much a tool prints; the kernel's page cache does
//! the buffering, and a killed ftw loses nothing written.
//!
//! Writes append under a lock; reads copy (from memory) or `pread` (from the file)
//! below the length seen under that lock, and the log only grows. Output beyond
//! `max_output` is counted, not kept, and a marker line says where it was cut. If the
//! disk refuses a write, the same happens with a marker that says so: the program keeps
//! running either way, and the run says why its output was cut.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::store::Chunk;

/// Output up to this size stays in memory.
pub const SPILL_AT: usize = 64 * 1024;

pub struct OutputLog {
    /// The file the output moves to when it outgrows memory.
    path: PathBuf,
    max_kept: u64,
    state: Mutex<State>,
    stderr: Mutex<Stderr>,
}

impl std::fmt::Debug for OutputLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a log holds, for the page, the API and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Bytes readers can read (kept output and markers).
    pub len: u64,
    /// Bytes of the tool's own output kept, and not kept.
    pub kept: u64,
    pub dropped: u64,
    /// Why output was cut, when it was.
    pub cut: Option<String>,
    /// The output is in the log file.
    pub in_file: bool,
    /// Bytes the log file takes.
    pub disk_bytes: u64,
}

#[derive(Debug)]
enum Place {
    Memory(Vec<u8>),
    File(File),
}

#[derive(Debug)]
struct State {
    store: Place,
    /// Bytes in the store: the kept output and any marker line.
    len: u64,
    /// Bytes of the tool's own output kept.
    kept: u64,
    /// Bytes the tool wrote that were not kept.
    dropped: u64,
    /// Kept bytes stop here (the cap, or a failed write): why.
    cut: Option<String>,
    /// Bytes of in-memory output already handed out as chunks to store.
    saved: u64,
}

/// Where stderr's bytes are in the log: adjacent pieces merged, at most `MAX_SWITCHES`
/// ranges (beyond that, later stderr is kept but no longer told apart).
#[derive(Debug, Default)]
struct Stderr {
    ranges: Vec<Range<u64>>,
}

/// How many stdout/stderr switches a run's log remembers.
pub const MAX_SWITCHES: usize = 10_000;

impl Stderr {
    fn add(&mut self, range: Range<u64>) {
        if let Some(last) = self.ranges.last_mut()
            && last.end == range.start
        {
            last.end = range.end;
        } else if self.ranges.len() < MAX_SWITCHES {
            self.ranges.push(range);
        }
    }

    /// The stderr ranges inside `within`, cut to it.
    fn within(&self, within: Range<u64>) -> Vec<Range<u64>> {
        let first = self.ranges.partition_point(|r| r.end <= within.start);
        self.ranges[first..]
            .iter()
            .take_while(|r| r.start < within.end)
            .map(|r| r.start.max(within.start)..r.end.min(within.end))
            .collect()
    }
}

impl OutputLog {
    /// A new, empty log that keeps at most `max_kept` bytes of output and moves to the
    /// file `path` if it outgrows memory.
    pub fn create(path: PathBuf, max_kept: u64) -> OutputLog {
        OutputLog {
            path,
            max_kept,
            state: Mutex::new(State {
                store: Place::Memory(Vec::new()),
                len: 0,
                kept: 0,
                dropped: 0,
                cut: None,
                saved: 0,
            }),
            stderr: Mutex::new(Stderr::default()),
        }
    }

    /// A finished run's log read back from stored chunks; its stderr ranges are the
    /// chunks' own, unless `ranges` gives them.
    pub fn from_chunks(
        chunks: Vec<Chunk>,
        dropped: u64,
        cut: Option<String>,
        ranges: Vec<Range<u64>>,
    ) -> OutputLog {
        let mut bytes = Vec::new();
        let mut stderr = Stderr::default();
        for chunk in chunks {
            // Chunks are contiguous; anything else is damage, and is skipped.
            if chunk.offset != bytes.len() as u64 {
                continue;
            }
            let at = bytes.len() as u64;
            if chunk.stderr {
                stderr.add(at..at + chunk.bytes.len() as u64);
            }
            bytes.extend_from_slice(&chunk.bytes);
        }
        if !ranges.is_empty() {
            stderr = Stderr { ranges };
        }
        let len = bytes.len() as u64;
        OutputLog::finished(Place::Memory(bytes), len, dropped, cut, stderr)
    }

    /// A finished run's log read back from its file (the first `len` bytes of it).
    pub fn from_file(
        file: File,
        len: u64,
        dropped: u64,
        cut: Option<String>,
        stderr: Vec<Range<u64>>,
    ) -> OutputLog {
        OutputLog::finished(
            Place::File(file),
            len,
            dropped,
            cut,
            Stderr { ranges: stderr },
        )
    }

    fn finished(
        store: Place,
        len: u64,
        dropped: u64,
        cut: Option<String>,
        stderr: Stderr,
    ) -> OutputLog {
        OutputLog {
            path: PathBuf::new(),
            max_kept: len,
            state: Mutex::new(State {
                store,
                len,
                kept: len,
                dropped,
                cut,
                saved: len,
            }),
            stderr: Mutex::new(stderr),
        }
    }

    /// Appends what the tool printed (on stderr if `stderr`), up to the cap.
    pub fn append(&self, bytes: &[u8], stderr: bool) {
        let mut st = self.state.lock().expect("log lock");
        if st.cut.is_some() {
            st.dropped += bytes.len() as u64;
            return;
        }
        let room = self.max_kept.saturating_sub(st.kept);
        let keep = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if keep > 0 {
            if let Err(e) = self.write(&mut st, &bytes[..keep], true) {
                tracing::warn!("cannot store a run's output: {e}");
                let why = if e.kind() == std::io::ErrorKind::StorageFull {
                    e.to_string()
                } else {
                    format!(
                        "it could not be stored ({})",
                        crate::manifest::io_reason(&e)
                    )
                };
                self.close(&mut st, why);
                st.dropped += bytes.len() as u64;
                return;
            }
            if stderr {
                let at = st.len;
                self.stderr
                    .lock()
                    .expect("log lock")
                    .add(at..at + keep as u64);
            }
            st.len += keep as u64;
            st.kept += keep as u64;
        }
        if keep < bytes.len() {
            self.close(
                &mut st,
                format!("it reached max_output ({} bytes)", self.max_kept),
            );
            st.dropped += (bytes.len() - keep) as u64;
        }
    }

    /// Writes at the end of the store (`len` is the caller's to advance), moving it to
    /// the file first when memory would grow past `SPILL_AT`. `guarded`: refuse to write
    /// to the disk when it is nearly full (the cut marker is written regardless).
    fn write(&self, st: &mut State, bytes: &[u8], guarded: bool) -> std::io::Result<()> {
        let len = st.len;
        // The disk is looked at only for writes that may be refused.
        let room = || {
            let full = guarded
                .then(|| self.path.parent().and_then(super::space::nearly_full))
                .flatten();
            full.map_or(Ok(()), |why| {
                Err(std::io::Error::new(std::io::ErrorKind::StorageFull, why))
            })
        };
        if let Place::Memory(buf) = &mut st.store {
            if buf.len() + bytes.len() <= SPILL_AT {
                buf.extend_from_slice(bytes);
                return Ok(());
            }
            room()?;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)?;
            file.write_all_at(buf, 0)?;
            st.store = Place::File(file);
        }
        match &st.store {
            Place::File(file) => {
                room()?;
                file.write_all_at(bytes, len)
            }
            Place::Memory(_) => unreachable!("moved to a file above"),
        }
    }

    fn close(&self, st: &mut State, why: String) {
        let marker = format!("\n[ftw: output cut here: {why}; the program keeps running]\n");
        st.cut = Some(why);
        if self.write(st, marker.as_bytes(), false).is_ok() {
            st.len += marker.len() as u64;
        }
    }

    /// The output not yet stored, as chunks (at most `CHUNK` bytes each) split where
    /// stderr starts and ends. Once the output is in its file it needs no copy, and
    /// none is made unless `from_file` (replicas: other replicas read the database,
    /// never this one's file). What it returns counts as stored from then on.
    pub fn unsaved_chunks(&self, from_file: bool) -> Vec<Chunk> {
        let (from, to) = {
            let mut st = self.state.lock().expect("log lock");
            let (from, to) = (st.saved, st.len);
            if from >= to || (matches!(st.store, Place::File(_)) && !from_file) {
                return Vec::new();
            }
            st.saved = to;
            (from, to)
        };
        // Bytes below `len` never change: read them outside the lock.
        let mut cuts = vec![from, to];
        cuts.extend((from..to).step_by(super::CHUNK).skip(1));
        let stderr = self.stderr.lock().expect("log lock");
        for range in stderr.within(from..to) {
            cuts.extend([range.start, range.end]);
        }
        cuts.sort_unstable();
        cuts.dedup();
        let pieces: Vec<(u64, u64, bool)> = cuts
            .windows(2)
            .map(|w| (w[0], w[1], !stderr.within(w[0]..w[1]).is_empty()))
            .collect();
        drop(stderr);
        pieces
            .into_iter()
            .map(|(start, end, stderr)| Chunk {
                offset: start,
                stderr,
                bytes: self.read(start, end, (end - start) as usize),
            })
            .collect()
    }

    /// A log that follows a run another replica is running: what it stored so far,
    /// and more as `follow` adds it.
    pub fn following(chunks: Vec<Chunk>, dropped: u64, cut: Option<String>) -> OutputLog {
        let log = OutputLog::from_chunks(Vec::new(), dropped, cut, Vec::new());
        for chunk in &chunks {
            log.follow(chunk);
        }
        log
    }

    /// Adds a chunk another replica stored, if it is the next one (others are already
    /// here, or damage). Returns whether it was added.
    pub fn follow(&self, chunk: &Chunk) -> bool {
        let mut st = self.state.lock().expect("log lock");
        if chunk.offset != st.len || chunk.bytes.is_empty() {
            return false;
        }
        let Place::Memory(buf) = &mut st.store else {
            return false;
        };
        buf.extend_from_slice(&chunk.bytes);
        let at = st.len;
        let len = chunk.bytes.len() as u64;
        st.len += len;
        st.kept += len;
        st.saved = st.len;
        if chunk.stderr {
            self.stderr.lock().expect("log lock").add(at..at + len);
        }
        true
    }

    /// The cut and dropped bytes another replica reported at the run's end.
    pub fn follow_end(&self, dropped: u64, cut: Option<String>) {
        let mut st = self.state.lock().expect("log lock");
        st.dropped = dropped;
        st.cut = cut;
    }

    /// The whole output while it is kept in memory (`None` once it is in the file).
    pub fn in_memory(&self) -> Option<Vec<u8>> {
        match &self.state.lock().expect("log lock").store {
            Place::Memory(buf) => Some(buf.clone()),
            Place::File(_) => None,
        }
    }

    /// What the log holds now.
    pub fn facts(&self) -> Facts {
        let st = self.state.lock().expect("log lock");
        let in_file = matches!(st.store, Place::File(_));
        Facts {
            len: st.len,
            kept: st.kept,
            dropped: st.dropped,
            cut: st.cut.clone(),
            in_file,
            disk_bytes: if in_file { st.len } else { 0 },
        }
    }

    /// Which bytes of `within` came from stderr.
    pub fn stderr_within(&self, within: Range<u64>) -> Vec<Range<u64>> {
        self.stderr.lock().expect("log lock").within(within)
    }

    /// Bytes readers can read (kept output and markers).
    pub fn len(&self) -> u64 {
        self.state.lock().expect("log lock").len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `max` bytes from offset `from`, no further than `until` (a length seen
    /// earlier, so a reader can pair it with other state read at that moment).
    pub fn read(&self, from: u64, until: u64, max: usize) -> Vec<u8> {
        let file = {
            let st = self.state.lock().expect("log lock");
            let until = until.min(st.len);
            if from >= until {
                return Vec::new();
            }
            let want = usize::try_from(until - from).unwrap_or(usize::MAX).min(max);
            match &st.store {
                Place::Memory(buf) => {
                    let at = from as usize;
                    return buf[at..at + want].to_vec();
                }
                // Read outside the lock: the bytes below `len` never change.
                Place::File(file) => file.try_clone().map(|f| (f, want)),
            }
        };
        let (file, want) = match file {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("cannot read a run's output: {e}");
                return Vec::new();
            }
        };
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match file.read_at(&mut buf[got..], from + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!("cannot read a run's output: {e}");
                    break;
                }
            }
        }
        buf.truncate(got);
        buf
    }

    /// Everything kept so far (bounded by `max_output`).
    pub fn read_all(&self) -> Vec<u8> {
        let len = self.len();
        self.read(0, len, usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// Where to start showing the last `max` bytes: just after a line break if there
    /// is one in the first part of that window, so the page starts on a whole line.
    pub fn tail_start(&self, max: u64) -> u64 {
        let len = self.len();
        if len <= max {
            return 0;
        }
        let from = len - max;
        let window = self.read(from, len, 4096);
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => from + i as u64 + 1,
            None => from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(max: u64) -> (tempfile::TempDir, OutputLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = OutputLog::create(dir.path().join("run.log"), max);
        (dir, log)
    }

    fn counts(log: &OutputLog) -> (u64, u64) {
        let facts = log.facts();
        (facts.kept, facts.dropped)
    }

    #[test]
    fn appends_and_reads_back_in_pieces() {
        let (_dir, log) = log(1000);
        log.append(b"hello ", false);
        log.append(b"world\n", false);
        assert_eq!(log.read_all(), b"hello world\n");
        assert_eq!(log.read(6, log.len(), 3), b"wor");
        assert_eq!(log.read(6, 8, 100), b"wo", "never past `until`");
        assert_eq!(log.read(50, 60, 10), b"");
        assert_eq!(counts(&log), (12, 0));
    }

    #[test]
    fn output_past_the_cap_is_counted_and_marked_once() {
        let (_dir, log) = log(10);
        log.append(b"0123456", false);
        log.append(b"789abc", false);
        log.append(b"more", false);
        let text = String::from_utf8(log.read_all()).unwrap();
        assert!(
            text.starts_with("0123456789\n[ftw: output cut here: it reached max_output (10 bytes)")
        );
        assert_eq!(text.matches("[ftw:").count(), 1);
        assert_eq!(counts(&log), (10, 7));
        assert_eq!(
            log.facts().cut.as_deref(),
            Some("it reached max_output (10 bytes)")
        );
    }

    #[test]
    fn small_output_needs_no_file_and_large_output_a_private_one() {
        let (dir, log) = log(10 * SPILL_AT as u64);
        log.append(b"secret output", false);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file yet"
        );
        assert!(!log.facts().in_file);
        let big = vec![b'y'; SPILL_AT];
        log.append(&big, true);
        log.append(b"tail", false);
        let path = dir.path().join("run.log");
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            meta.len(),
            13 + SPILL_AT as u64 + 4,
            "all of it, from the start"
        );
        assert!(log.facts().in_file);
        let all = log.read_all();
        assert_eq!(all.len(), 13 + SPILL_AT + 4);
        assert!(all.starts_with(b"secret output") && all.ends_with(b"ytail"));
        assert_eq!(
            log.read(13 + SPILL_AT as u64 - 2, log.len(), 100),
            b"yytail"
        );
        let stderr = log.stderr_within(0..log.len());
        assert_eq!(stderr.len(), 1);
        assert_eq!(stderr[0], 13..13 + SPILL_AT as u64);
    }

    #[test]
    fn unsaved_output_comes_out_once_split_where_stderr_is() {
        let (_dir, log) = log(1000);
        log.append(b"out ", false);
        log.append(b"err ", true);
        log.append(b"out", false);
        let chunks = log.unsaved_chunks(false);
        let parts: Vec<(u64, bool, &[u8])> = chunks
            .iter()
            .map(|c| (c.offset, c.stderr, c.bytes.as_slice()))
            .collect();
        assert_eq!(
            parts,
            [
                (0, false, &b"out "[..]),
                (4, true, &b"err "[..]),
                (8, false, &b"out"[..])
            ]
        );
        assert!(log.unsaved_chunks(false).is_empty(), "each byte once");
        log.append(b"!", false);
        assert_eq!(log.unsaved_chunks(false)[0].offset, 11);
        let restored = OutputLog::from_chunks(chunks, 0, None, Vec::new());
        assert_eq!(restored.read_all(), b"out err out");
        assert_eq!(restored.stderr_within(0..11), vec![4..8]);
    }

    #[test]
    fn with_replicas_output_past_memory_is_handed_out_too_and_followed_elsewhere() {
        let (_dir, log) = log(1 << 20);
        log.append(b"start\n", false);
        let first = log.unsaved_chunks(true);
        log.append(&vec![b'x'; SPILL_AT], false);
        log.append(b"oops\n", true);
        assert!(log.facts().in_file);
        assert!(
            log.unsaved_chunks(false).is_empty(),
            "one ftw reads its file"
        );
        log.append(b"end\n", false);
        let rest = log.unsaved_chunks(true);
        assert!(rest.iter().all(|c| c.bytes.len() <= crate::runs::CHUNK));
        // Another replica follows: chunks in order, a repeat ignored.
        let other = OutputLog::following(first.clone(), 0, None);
        assert!(
            !other.follow(&first[0]),
            "a chunk it has is not added twice"
        );
        for chunk in &rest {
            assert!(other.follow(chunk));
        }
        assert_eq!(other.read_all(), log.read_all());
        let oops = 6 + SPILL_AT as u64;
        assert_eq!(other.stderr_within(0..other.len()), vec![oops..oops + 5]);
    }

    #[test]
    fn the_tail_starts_on_a_whole_line() {
        let (_dir, log) = log(1000);
        log.append(b"aaaa\nbbbb\ncccc\n", false);
        assert_eq!(log.tail_start(100), 0);
        assert_eq!(log.tail_start(7), 10, "after the break inside the window");
        let (_dir, long) = self::log(1000);
        long.append(&[b'x'; 50], false);
        assert_eq!(long.tail_start(10), 40, "no break: cut mid-line");
    }

    #[test]
    fn stderr_ranges_merge_and_cut_to_the_window() {
        let (_dir, log) = log(1000);
        log.append(b"out1\n", false);
        log.append(b"err1\n", true);
        log.append(b"err2\n", true);
        log.append(b"out2\n", false);
        log.append(b"err3\n", true);
        assert_eq!(log.stderr_within(0..25), [5..15, 20..25]);
        assert_eq!(log.stderr_within(7..22), [7..15, 20..22]);
        assert!(log.stderr_within(15..20).is_empty());
    }
}
