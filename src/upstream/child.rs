//! stdio downstreams: a child process speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! Key items: [`spawn`] starts the child (its own process group, stdin/stdout as socketpairs wrapped
//! in monoio `UnixStream`s, stderr drained line by line into the log by a plain thread) and two tasks
//! on the calling runtime (the control thread): a writer that owns stdin and the routing table, and a
//! reader that owns stdout. Any worker reaches the child by sending a [`MuxMsg`] on the channel in
//! the link; responses come back on the caller's own channel, matched by the (gateway-minted, hence
//! unique) id; progress notifications by their (gateway-minted) token.
//!
//! Invariants: one reader per child (an io_uring read is never dropped mid-flight except at exit);
//! a line longer than the cap is discarded with a log, not buffered without bound; when the child
//! exits every pending request gets [`MuxEvent::Closed`] at once (no hangs) and `exited` fires.
//! [`terminate`] shuts a child down: close stdin, wait, SIGTERM the group, wait, SIGKILL the group.
//! A child inherits only its stdin/stdout/stderr: every other descriptor is marked close-on-exec in
//! the child before `exec` ([`inherit_only_stdio`]), because sockets accepted through io_uring are
//! not close-on-exec when created, and a client connection held by a child stays open (no FIN)
//! after the gateway closed it, for as long as the child lives.
//!
//! `unsafe` is allowed in this module for that one `pre_exec` hook (see its SAFETY note).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::UnixStream;

use super::mux::{dispatch, Routes};
use crate::config::ServerConfig;
use crate::session::downstream::{MuxChannel, MuxMsg};

/// Bytes read from the child's stdout per read call.
const READ_CHUNK: usize = 64 * 1024;
/// How long a child may take to exit after its stdin closes, and again after SIGTERM.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A started child.
pub struct Spawned {
    /// How workers reach it.
    pub channel: Arc<MuxChannel>,
    /// Fires once, with a reason, when the child has exited or its stdout closed.
    pub exited: async_channel::Receiver<String>,
}

/// Starts the configured command. `unsolicited` receives every message that is not about a pending
/// request (list_changed and other server notifications). `lane` is the worker index of a stateless
/// server's child (its logs say which child). Must run inside a monoio runtime.
pub fn spawn(
    config: &ServerConfig,
    max_line: usize,
    unsolicited: Rc<dyn Fn(Bytes)>,
    lane: Option<usize>,
) -> std::io::Result<Spawned> {
    let (parent_in, child_in) = StdUnixStream::pair()?;
    let (parent_out, child_out) = StdUnixStream::pair()?;
    let program = config.command.as_deref().unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.args(&config.args)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(OwnedFd::from(child_in)))
        .stdout(Stdio::from(OwnedFd::from(child_out)))
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = &config.cwd {
        cmd.current_dir(cwd);
    }
    inherit_only_stdio(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let name = match lane {
        Some(i) => format!("{}#{i}", config.name),
        None => config.name.clone(),
    };
    if let Some(stderr) = child.stderr.take() {
        let name = name.clone();
        std::thread::Builder::new()
            .name(format!("stderr-{name}"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log::info!(
                        "server '{name}' stderr: {}",
                        line.chars().take(2000).collect::<String>()
                    );
                }
            })?;
    }
    let (exit_tx, exited) = async_channel::bounded(2);
    {
        let exit_tx = exit_tx.clone();
        std::thread::Builder::new()
            .name(format!("reap-{name}"))
            .spawn(move || {
                let status = child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string());
                let _ = exit_tx.try_send(format!("process exited ({status})"));
            })?;
    }
    parent_in.set_nonblocking(true)?;
    parent_out.set_nonblocking(true)?;
    let stdin = UnixStream::from_std(parent_in)?;
    let stdout = UnixStream::from_std(parent_out)?;
    let (tx, rx) = async_channel::unbounded();
    let routes = Rc::new(RefCell::new(Routes::default()));
    monoio::spawn(write_loop(stdin, rx, routes.clone()));
    monoio::spawn(read_loop(
        stdout,
        routes,
        tx.clone(),
        max_line,
        unsolicited,
        exit_tx,
        name,
    ));
    Ok(Spawned {
        channel: Arc::new(MuxChannel { tx, pid }),
        exited,
    })
}

/// Marks every descriptor above stderr close-on-exec in the child, after its stdio is set up and
/// just before `exec`, so it inherits nothing else of the gateway's (client connections, listeners,
/// other children's pipes). `CLOSE_RANGE_CLOEXEC` rather than closing: std's own exec-error pipe
/// must stay open until `exec`. On kernels without `close_range` (before 5.11) the call fails and
/// is ignored: descriptors the gateway made close-on-exec itself are still not inherited. Public so
/// that anything else in this process that spawns (the integration tests) leaks nothing either.
pub fn inherit_only_stdio(cmd: &mut Command) {
    // SAFETY: the hook runs in the forked child before `exec`. It makes one raw system call,
    // which is async-signal-safe, allocates nothing, takes no lock and touches no Rust state.
    unsafe {
        cmd.pre_exec(|| {
            let _ = libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
}

/// Owns stdin: registers routes, writes one line per message. Ends when every sender is gone or
/// the channel is closed (the child is being stopped), which closes stdin.
async fn write_loop(
    mut stdin: UnixStream,
    rx: async_channel::Receiver<MuxMsg>,
    routes: Rc<RefCell<Routes>>,
) {
    while let Ok(msg) = rx.recv().await {
        let Some(body) = routes.borrow_mut().accept(msg) else {
            continue;
        };
        // Newlines only occur between JSON tokens (inside strings they are escaped), so flattening
        // them keeps the message identical in meaning and makes it one line.
        let mut line = Vec::with_capacity(body.len() + 1);
        line.extend(
            body.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
        line.push(b'\n');
        let (res, _) = stdin.write_all(line).await;
        if res.is_err() {
            break;
        }
    }
}

/// Owns stdout: splits lines (capped), routes responses and progress, answers the child's requests.
async fn read_loop(
    mut stdout: UnixStream,
    routes: Rc<RefCell<Routes>>,
    tx: async_channel::Sender<MuxMsg>,
    max_line: usize,
    unsolicited: Rc<dyn Fn(Bytes)>,
    exit_tx: async_channel::Sender<String>,
    name: String,
) {
    let mut pending = BytesMut::with_capacity(READ_CHUNK);
    // Bytes at the start of `pending` already known to hold no newline (each byte is scanned once,
    // however long the line grows).
    let mut scanned = 0;
    // Inside a line over the cap: its bytes are dropped as they arrive, up to its newline.
    let mut discarding = false;
    let reason = loop {
        let buf = Vec::with_capacity(READ_CHUNK);
        let (res, buf) = stdout.read(buf).await;
        let mut fresh = match res {
            Ok(0) => break "stdout closed".to_string(),
            Err(e) => break format!("stdout read failed: {e}"),
            Ok(_) => &buf[..],
        };
        if discarding {
            match fresh.iter().position(|&b| b == b'\n') {
                Some(end) => (discarding, fresh) = (false, &fresh[end + 1..]),
                None => continue,
            }
        }
        pending.extend_from_slice(fresh);
        while let Some(off) = pending[scanned..].iter().position(|&b| b == b'\n') {
            let line = pending.split_to(scanned + off + 1).freeze();
            scanned = 0;
            let line = line.slice(..line.len() - 1);
            if !line.iter().all(u8::is_ascii_whitespace) {
                dispatch(line, &routes, &tx, &unsolicited, &name);
            }
        }
        scanned = pending.len();
        if pending.len() > max_line {
            log::warn!("server '{name}': stdout line over {max_line} bytes discarded");
            pending.clear();
            scanned = 0;
            discarding = true;
        }
    };
    routes.borrow_mut().fail_all(&reason);
    tx.close();
    let _ = exit_tx.try_send(reason);
}

/// Stops a child: close its channel (stdin closes), wait for `exited`, then SIGTERM and SIGKILL its
/// process group if it lingers.
pub async fn terminate(channel: &MuxChannel, exited: &async_channel::Receiver<String>) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    channel.tx.close();
    let waited = monoio::time::timeout(EXIT_GRACE, exited.recv()).await;
    // pid 0 is an HTTP+SSE session, not a process (and killpg(0) would signal our own group).
    if waited.is_ok() || channel.pid == 0 {
        return;
    }
    let pgid = Pid::from_raw(channel.pid as i32);
    let _ = killpg(pgid, Signal::SIGTERM);
    if monoio::time::timeout(EXIT_GRACE, exited.recv())
        .await
        .is_ok()
    {
        return;
    }
    let _ = killpg(pgid, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_child_inherits_no_descriptor_but_its_stdio() {
        // A socket that is not close-on-exec, as io_uring's accept creates them.
        let (a, _b) = StdUnixStream::pair().expect("socketpair");
        let fd = a.as_raw_fd();
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear cloexec");
        let open_in_child = |restrict: bool| {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &format!("test -e /proc/self/fd/{fd} && echo open")]);
            if restrict {
                inherit_only_stdio(&mut cmd);
            }
            let out = cmd.output().expect("run sh");
            String::from_utf8_lossy(&out.stdout).contains("open")
        };
        assert!(
            open_in_child(false),
            "the check sees an inherited descriptor"
        );
        assert!(!open_in_child(true), "inherited despite inherit_only_stdio");
    }
}
