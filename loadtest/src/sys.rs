//! Operating-system helpers: CPU affinity, RSS, free ports, machine description, and a yield.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin as StdPin;
use std::task::{Context, Poll, Waker};

/// CPUs this process may run on, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid (empty) value;
    // `sched_getaffinity` writes at most `size_of::<cpu_set_t>()` bytes into the set we own, and
    // `CPU_ISSET` reads in bounds because every index is below `CPU_SETSIZE`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Pins thread `tid` (0 = the calling thread) to the CPUs in `cpus`.
pub fn pin_thread(tid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() || cpus.iter().any(|&c| c >= libc::CPU_SETSIZE as usize) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CPU list empty or out of range",
        ));
    }
    // SAFETY: as above, an all-zero `cpu_set_t` is valid; `CPU_SET` stays in bounds (checked
    // above) and `sched_setaffinity` only reads the set we pass, with its exact size.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Pins every thread of process `pid` to `cpus` (for a child started without `taskset`).
pub fn pin_process(pid: u32, cpus: &[usize]) -> io::Result<()> {
    let mut any = false;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        {
            pin_thread(tid, cpus)?;
            any = true;
        }
    }
    if any {
        Ok(())
    } else {
        Err(io::Error::other("no threads found"))
    }
}

/// `0,1,3` for `taskset -c`.
pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The CPU affinity list of process `pid`'s first thread, as `taskset -c` would print it.
pub fn affinity_of(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

/// Resident set size of `pid` in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open file descriptors of `pid`: (all, sockets), from `/proc/PID/fd`.
pub fn open_fds(pid: u32) -> Option<(usize, usize)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let (mut all, mut sockets) = (0, 0);
    for entry in dir.flatten() {
        all += 1;
        if std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        {
            sockets += 1;
        }
    }
    Some((all, sockets))
}

/// `RLIMIT_NOFILE` of `pid` as (soft, hard), from `/proc/PID/limits` (`unlimited` as `u64::MAX`).
pub fn nofile(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    let mut it = rest.split_whitespace().map(|v| match v {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    });
    Some((it.next()??, it.next()??))
}

/// Whether this process runs with effective uid 0 (may raise hard limits).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Sets `RLIMIT_NOFILE` of process `pid` with util-linux `prlimit --pid PID --nofile=SOFT:HARD`.
pub fn set_nofile(pid: u32, soft: u64, hard: u64) -> Result<(), String> {
    let prlimit = which("prlimit").ok_or("prlimit (util-linux) is not on PATH")?;
    let out = std::process::Command::new(&prlimit)
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:{hard}"))
        .output()
        .map_err(|e| format!("{}: {e}", prlimit.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "prlimit --pid {pid} --nofile={soft}:{hard}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Raises the soft `RLIMIT_NOFILE` of `pid` to its hard limit, or (as root) both to `want` when the
/// hard limit is lower (up to `fs.nr_open`). Returns the limits in force afterwards; a failure
/// to raise them far enough comes back as the warning text.
pub fn raise_nofile(pid: u32, want: u64) -> (Option<(u64, u64)>, Option<String>) {
    let Some((soft, hard)) = nofile(pid) else {
        return (None, Some(format!("cannot read /proc/{pid}/limits")));
    };
    let mut tries: Vec<(u64, u64)> = Vec::new();
    if is_root() && hard < want {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(1 << 20);
        let to = want.min(nr_open);
        if to > hard {
            tries.push((to, to));
        }
    }
    if soft < hard {
        tries.push((hard, hard));
    }
    let mut failure = None;
    for (s, h) in tries {
        if s <= soft {
            continue;
        }
        match set_nofile(pid, s, h) {
            Ok(()) => break,
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let now = nofile(pid);
    // A failed attempt matters only when the limit in force still falls short.
    let short = now.is_none_or(|(s, _)| s < want);
    (now, failure.filter(|_| short))
}

/// A loopback port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Where `program` is on `PATH`, if anywhere.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// CPU model, core count and kernel, for the report.
pub fn machine() -> (String, usize, String) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
        .max(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    (model, cpus, kernel)
}

/// The real-time scheduling policy of this process, if any (set by `chrt`).
pub fn sched_policy() -> &'static str {
    // SAFETY: `sched_getscheduler(0)` only reads the calling process's policy.
    match unsafe { libc::sched_getscheduler(0) } {
        libc::SCHED_FIFO => "SCHED_FIFO",
        libc::SCHED_RR => "SCHED_RR",
        libc::SCHED_OTHER => "SCHED_OTHER",
        libc::SCHED_BATCH => "SCHED_BATCH",
        libc::SCHED_IDLE => "SCHED_IDLE",
        _ => "unknown",
    }
}

/// Whether the calling thread runs under a real-time policy (e.g. started by `chrt -f`).
pub fn is_realtime() -> bool {
    matches!(sched_policy(), "SCHED_FIFO" | "SCHED_RR")
}

/// Moves the calling thread back to `SCHED_OTHER`. The load generator spins between due
/// times; as a real-time thread it would starve its core and be throttled by the kernel's RT
/// limit (`sched_rt_runtime_us`: 50 ms of every second), which shows up as 50 ms stalls.
pub fn leave_realtime() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler(0, ..)` changes only the calling thread's policy; `param` is a
    // valid, initialized struct that outlives the call.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Yields once to the runtime: the task goes to the *back* of the run queue, and the runtime
/// reaps I/O completions before running it again.
///
/// A task that wakes itself while running is put at the *front* of monoio's queue (its
/// `yield_now` scheduling), so a spinning task would starve every other task. Instead the waker
/// is parked with a helper task, which wakes it from outside (a plain schedule: back of the queue).
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

pub struct YieldNow {
    yielded: bool,
}

#[derive(Default)]
struct Kicker {
    parked: Vec<Waker>,
    kicker: Option<Waker>,
    started: bool,
}

thread_local! {
    static KICKER: RefCell<Kicker> = RefCell::new(Kicker::default());
}

/// The helper: wakes every parked waker, then waits to be woken by the next yield.
fn kicker_task() -> impl Future<Output = ()> {
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let parked = KICKER.with(|k| {
            let mut k = k.borrow_mut();
            k.kicker = Some(cx.waker().clone());
            std::mem::take(&mut k.parked)
        });
        for w in parked {
            w.wake();
        }
        Poll::Pending
    })
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: StdPin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        let (kick, start) = KICKER.with(|k| {
            let mut k = k.borrow_mut();
            k.parked.push(cx.waker().clone());
            let start = !k.started;
            k.started = true;
            (k.kicker.take(), start)
        });
        if start {
            monoio::spawn(kicker_task());
        }
        if let Some(w) = kick {
            w.wake();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_facts_are_readable() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(!allowed_cpus().is_empty());
        assert!(affinity_of(me).is_some());
        assert!(free_port().unwrap() > 0);
        let (soft, hard) = nofile(me).unwrap();
        assert!(soft > 0 && soft <= hard);
        let (all, sockets) = open_fds(me).unwrap();
        assert!(all >= 3 && sockets <= all);
    }
}
