//! A task try's child process: it dies with its worker, and is killed with its own children.
//! The one place in hushflow with `unsafe`: `pre_exec` runs code between fork and exec.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Asks the kernel to kill the child when the worker that started it dies (a worker killed
/// with SIGKILL cannot clean up), and refuses to run if the worker is already gone.
#[allow(unsafe_code)] // `pre_exec` is unsafe: the closure runs between fork and exec.
pub(super) fn die_with_parent(cmd: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure calls only prctl and getppid (async-signal-safe system calls through
    // rustix, no allocation, no lock), and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The worker died before the line above took effect: do not run orphaned.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("the worker is gone"));
            }
            Ok(())
        });
    }
}

/// Asks the child's whole process group to stop (SIGTERM): a `sql` task cancels its statement
/// on the server, anything else ends at once.
pub(super) fn terminate_group(child: &mut Child) {
    let group = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
    }
}

/// Kills the child's whole process group (the child leads it: see `process_group(0)`).
pub(super) fn kill_group(child: &mut Child) {
    let group = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    match group {
        Some(group) => {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        None => {
            let _ = child.kill();
        }
    }
}
