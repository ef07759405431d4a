//! Runs `ftw` on a real pseudo-terminal, for the prompts that only appear on a terminal
//! (`hash-password` asks twice without echo). The child gets the terminal as its
//! controlling tty and as stdin/stderr; stdout stays a pipe so the hash can be read.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Pty {
    master: File,
    output: mpsc::Receiver<u8>,
    /// Everything the terminal showed so far.
    pub screen: String,
    pub child: Child,
}

impl Pty {
    pub fn spawn(mut cmd: Command) -> Pty {
        let (mut master_fd, mut slave_fd) = (0, 0);
        let rc = unsafe {
            libc::openpty(
                &mut master_fd,
                &mut slave_fd,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        let slave = unsafe { OwnedFd::from_raw_fd(slave_fd) };
        let master = unsafe { File::from_raw_fd(master_fd) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::piped());
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a pty");
        drop(slave);
        let (tx, output) = mpsc::channel();
        let mut reader = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || buf[..n].iter().any(|b| tx.send(*b).is_err()) {
                    break;
                }
            }
        });
        Pty {
            master,
            output,
            screen: String::new(),
            child,
        }
    }

    /// Waits until the terminal shows `text` (10 s at most).
    pub fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.screen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(b) => self.screen.push(b as char),
                Err(_) => panic!(
                    "terminal never showed {text:?}; it showed {:?}",
                    self.screen
                ),
            }
        }
    }

    /// Waits until the terminal no longer echoes what is typed (the program turned echo
    /// off for a password prompt); panics after 10 s.
    pub fn expect_no_echo(&self) {
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: tcgetattr fills a plain C struct for a descriptor we own.
            let mut term: libc::termios = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut term) };
            if rc == 0 && term.c_lflag & libc::ECHO == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the terminal kept echoing");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Types a line, as a user would, ending with Enter.
    pub fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
        self.master.flush().unwrap();
    }

    /// Waits for the child and returns its exit code and what it printed on stdout.
    pub fn finish(mut self) -> (i32, String, String) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(b) = self.output.recv_timeout(Duration::from_millis(200)) {
            self.screen.push(b as char);
        }
        (status.code().unwrap_or(-1), stdout, self.screen)
    }
}
