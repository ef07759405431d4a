//! A run's output: in memory while it is small, then on disk in an unnamed file
//! (`O_TMPFILE`) in the runs' private folder, so no tool and no other user can open it
//! by name, and it is gone the moment the run is dropped. Most runs print a few lines;
//! they cost no file at all (a file per run is an inode made and freed per run, which
//! on ext4 was the largest cost of a trivial run). Past `SPILL_AT` the output moves to
//! the file and memory stays flat however much a tool prints; the kernel's page cache
//! does the buffering.
//!
//! Writes append under a lock; reads copy (from memory) or `pread` (from the file)
//! below the length seen under that lock, and the log only grows. Output beyond
//! `max_output` is counted, not kept, and a marker line says where it was cut. If the
//! disk refuses a write, the same happens with a marker that says so: the program keeps
//! running either way.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Output up to this size stays in memory.
pub const SPILL_AT: usize = 64 * 1024;

#[derive(Debug)]
pub struct OutputLog {
    /// Where the file goes when the output outgrows memory.
    spill_dir: PathBuf,
    max_kept: u64,
    state: Mutex<State>,
    stderr: Mutex<Stderr>,
}

#[derive(Debug)]
enum Store {
    Memory(Vec<u8>),
    File(File),
}

#[derive(Debug)]
struct State {
    store: Store,
    /// Bytes in the store: the kept output and any marker line.
    len: u64,
    /// Bytes of the tool's own output kept.
    kept: u64,
    /// Bytes the tool wrote that were not kept.
    dropped: u64,
    /// Kept bytes stop here (the cap, or a failed write).
    closed: bool,
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
    /// A new, empty log that keeps at most `max_kept` bytes of output, and puts its file
    /// (if it ever needs one) in `spill_dir`.
    pub fn create(spill_dir: &Path, max_kept: u64) -> std::io::Result<OutputLog> {
        Ok(OutputLog {
            spill_dir: spill_dir.to_path_buf(),
            max_kept,
            state: Mutex::new(State {
                store: Store::Memory(Vec::new()),
                len: 0,
                kept: 0,
                dropped: 0,
                closed: false,
            }),
            stderr: Mutex::new(Stderr::default()),
        })
    }

    /// Appends what the tool printed (on stderr if `stderr`), up to the cap.
    pub fn append(&self, bytes: &[u8], stderr: bool) {
        let mut st = self.state.lock().expect("log lock");
        if st.closed {
            st.dropped += bytes.len() as u64;
            return;
        }
        let room = self.max_kept.saturating_sub(st.kept);
        let keep = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if keep > 0 {
            if let Err(e) = self.write(&mut st, &bytes[..keep]) {
                tracing::warn!("cannot store a run's output: {e}");
                self.close(
                    &mut st,
                    &format!(
                        "\n[ftw: output cut here: it could not be stored ({}); the program keeps running]\n",
                        crate::manifest::io_reason(&e)
                    ),
                );
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
            let marker = format!(
                "\n[ftw: output cut here: it reached max_output ({} bytes); the program keeps running]\n",
                self.max_kept
            );
            self.close(&mut st, &marker);
            st.dropped += (bytes.len() - keep) as u64;
        }
    }

    /// Writes at the end of the store (`len` is the caller's to advance), moving it to
    /// a file first when memory would grow past `SPILL_AT`.
    fn write(&self, st: &mut State, bytes: &[u8]) -> std::io::Result<()> {
        let len = st.len;
        if let Store::Memory(buf) = &mut st.store {
            if buf.len() + bytes.len() <= SPILL_AT {
                buf.extend_from_slice(bytes);
                return Ok(());
            }
            let file = tempfile::tempfile_in(&self.spill_dir)?;
            file.write_all_at(buf, 0)?;
            st.store = Store::File(file);
        }
        match &st.store {
            Store::File(file) => file.write_all_at(bytes, len),
            Store::Memory(_) => unreachable!("moved to a file above"),
        }
    }

    fn close(&self, st: &mut State, marker: &str) {
        st.closed = true;
        if self.write(st, marker.as_bytes()).is_ok() {
            st.len += marker.len() as u64;
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

    /// (kept, dropped) bytes of the tool's own output.
    pub fn counts(&self) -> (u64, u64) {
        let st = self.state.lock().expect("log lock");
        (st.kept, st.dropped)
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
                Store::Memory(buf) => {
                    let at = from as usize;
                    return buf[at..at + want].to_vec();
                }
                // Read outside the lock: the bytes below `len` never change.
                Store::File(file) => file.try_clone().map(|f| (f, want)),
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
        let log = OutputLog::create(dir.path(), max).unwrap();
        (dir, log)
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
        assert_eq!(log.counts(), (12, 0));
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
        assert_eq!(log.counts(), (10, 7));
    }

    #[test]
    fn small_output_needs_no_file_and_large_output_a_nameless_one() {
        let (dir, log) = log(10 * SPILL_AT as u64);
        log.append(b"secret output", false);
        let big = vec![b'y'; SPILL_AT];
        log.append(&big, true);
        log.append(b"tail", false);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no name");
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
        let dir = tempfile::tempdir().unwrap();
        let log = OutputLog::create(dir.path(), 1000).unwrap();
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
