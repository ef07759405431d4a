//! Knowing a run's processes again after ftw itself was killed. Each run's program
//! leads a process group of its own; ftw records the group id with the leader's start
//! time (clock ticks after boot) and the boot id. A start that finds runs still marked
//! running kills what is left of their groups, but only processes that are provably
//! that run's: process ids are reused, so a group whose leader started at another
//! time, or anything from before a reboot, is left alone, and once the leader is gone
//! a process must also carry the run's `FTW_RUN_ID` in its environment. Each process
//! is signalled through a pidfd opened before it is checked, so the process checked is
//! the process killed.

use crate::store::ProcessMark;

/// The mark of a program ftw just started (its pid is its process group id).
pub fn mark(pid: u32) -> Option<ProcessMark> {
    let pid = i32::try_from(pid).ok()?;
    let stat = read_stat(pid)?;
    Some(ProcessMark {
        pgid: pid,
        start_ticks: stat.start_ticks,
        boot_id: boot_id()?,
    })
}

/// Sends SIGKILL to what is left of run `run_id`'s marked group; returns how many
/// processes were signalled.
///
/// The rules: after a reboot nothing is left. If the leader is alive, the group is
/// the run's only if the leader started exactly when recorded; then every member is
/// (a group id is not reused while its leader lives). If the leader is gone, a
/// member is the run's only if it started no earlier than the leader and carries
/// `FTW_RUN_ID=<run_id>` (which every tool gets, and its children inherit): a pid reused
/// by some daemon's group does not. A process that scrubbed its environment after
/// its leader exited is left alone.
pub fn kill_leftovers(mark: &ProcessMark, run_id: &str) -> usize {
    if boot_id().as_deref() != Some(mark.boot_id.as_str()) || mark.pgid <= 1 {
        return 0;
    }
    let own_pid = std::process::id() as i32;
    let members: Vec<i32> = all_pids()
        .filter(|&pid| pid != own_pid)
        .filter(|&pid| read_stat(pid).is_some_and(|s| s.pgrp == mark.pgid))
        .collect();
    let leader_lives = match read_stat(mark.pgid) {
        Some(stat) if stat.pgrp == mark.pgid && stat.start_ticks != mark.start_ticks => return 0,
        Some(stat) => stat.pgrp == mark.pgid,
        None => false,
    };
    let marker = format!("FTW_RUN_ID={run_id}");
    let ours = |pid: i32| {
        let Some(stat) = read_stat(pid) else {
            return false;
        };
        let in_group = stat.pgrp == mark.pgid && stat.start_ticks >= mark.start_ticks;
        in_group && (leader_lives || carries(pid, &marker))
    };
    members
        .into_iter()
        .filter(|&pid| kill_checked(pid, &ours))
        .count()
}

/// SIGKILL for `pid` if `check` says it is the one: through a pidfd opened before the
/// check, so a process that exits and whose pid is reused in between is not hit.
fn kill_checked(pid: i32, check: &impl Fn(i32) -> bool) -> bool {
    // SAFETY: pidfd_open(2) takes a pid and flags, and returns a descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        // A kernel without pidfds (before 5.3): check, then signal by pid.
        if check(pid) {
            // SAFETY: kill(2) only sends a signal.
            return unsafe { libc::kill(pid, libc::SIGKILL) } == 0;
        }
        return false;
    }
    let killed = check(pid)
        // SAFETY: pidfd_send_signal(2) on the descriptor opened above.
        && unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
    // SAFETY: closing the descriptor opened above.
    unsafe {
        libc::close(fd);
    }
    killed
}

/// Whether `pid`'s environment holds exactly the entry `marker`.
fn carries(pid: i32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|&b| b == 0)
            .any(|entry| entry == marker.as_bytes())
    })
}

#[derive(Debug, Clone, Copy)]
struct Stat {
    pgrp: i32,
    start_ticks: u64,
}

/// Fields of `/proc/PID/stat` after the command name (which may hold spaces and
/// parentheses, so the split starts after its last `)`).
fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state): pgrp is field 5, starttime field 22.
    Some(Stat {
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

fn all_pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn a_marked_group_is_killed_and_a_reused_id_is_not() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let mark = mark(child.id()).expect("a mark for a live process");
        assert_eq!(mark.pgid, child.id() as i32);

        let stranger = ProcessMark {
            start_ticks: mark.start_ticks + 1,
            ..mark.clone()
        };
        assert_eq!(
            kill_leftovers(&stranger, "r"),
            0,
            "another start time: not ours"
        );
        let rebooted = ProcessMark {
            boot_id: "another boot".into(),
            ..mark.clone()
        };
        assert_eq!(kill_leftovers(&rebooted, "r"), 0, "another boot: not ours");
        assert!(child.try_wait().unwrap().is_none(), "still running");

        assert_eq!(
            kill_leftovers(&mark, "r"),
            1,
            "the leader lives: the group is ours"
        );
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn without_its_leader_a_process_must_carry_the_run_id() {
        // The leader starts a member and exits; the member keeps the group alive.
        let mut leader = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 30 >/dev/null & echo $!"])
            .env("FTW_RUN_ID", "run-one")
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mark = mark(leader.id()).unwrap();
        let mut pid = String::new();
        use std::io::Read;
        leader
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut pid)
            .unwrap();
        leader.wait().unwrap();
        let member: i32 = pid.trim().parse().unwrap();
        assert_eq!(read_stat(member).unwrap().pgrp, mark.pgid);

        assert_eq!(
            kill_leftovers(&mark, "run-two"),
            0,
            "another run's id: left alone"
        );
        assert!(read_stat(member).is_some());
        assert_eq!(kill_leftovers(&mark, "run-one"), 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read_stat(member).is_some_and(|_| !is_zombie(member)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the member still runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    }
}
