//! Knowing a run's processes again after ftw itself was killed. Each run's program
//! leads a process group of its own; ftw records the group id with the leader's start
//! time (clock ticks after boot) and the boot id. A start that finds runs still marked
//! running kills what is left of their groups, but only processes that are provably
//! that run's: process ids are reused, so a group whose leader started at another
//! time, or anything from before a reboot, is left alone.

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

/// Sends SIGKILL to what is left of a marked group; returns how many processes were
/// signalled.
///
/// The rules: after a reboot nothing is left. If the leader is alive, the group is
/// the run's only if the leader started exactly when recorded. If the leader is gone,
/// the group can only still exist through processes that were in it all along (a
/// group id is not reused while any member lives), and they started no earlier than
/// the leader; those are killed.
pub fn kill_leftovers(mark: &ProcessMark) -> usize {
    if boot_id().as_deref() != Some(mark.boot_id.as_str()) || mark.pgid <= 1 {
        return 0;
    }
    let own_pid = std::process::id() as i32;
    let members: Vec<(i32, Stat)> = all_pids()
        .filter(|&pid| pid != own_pid)
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .filter(|(_, stat)| stat.pgrp == mark.pgid)
        .collect();
    let leader = members.iter().find(|(pid, _)| *pid == mark.pgid);
    let ours: Vec<i32> = match leader {
        Some((_, stat)) if stat.start_ticks != mark.start_ticks => return 0,
        Some(_) => members.iter().map(|(pid, _)| *pid).collect(),
        None => members
            .iter()
            .filter(|(_, stat)| stat.start_ticks >= mark.start_ticks)
            .map(|(pid, _)| *pid)
            .collect(),
    };
    for pid in &ours {
        // SAFETY: kill(2) only sends a signal to a process checked above.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    ours.len()
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
        assert_eq!(kill_leftovers(&stranger), 0, "another start time: not ours");
        let rebooted = ProcessMark {
            boot_id: "another boot".into(),
            ..mark.clone()
        };
        assert_eq!(kill_leftovers(&rebooted), 0, "another boot: not ours");
        assert!(child.try_wait().unwrap().is_none(), "still running");

        assert_eq!(kill_leftovers(&mark), 1);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
