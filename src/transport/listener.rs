//! Listening sockets for a thread-per-core server.
//!
//! Role: every worker thread binds its *own* listener on the shared port with
//! SO_REUSEPORT, so the kernel spreads incoming connections across workers and no accept
//! lock or cross-thread hand-off exists. SO_REUSEADDR lets a restarted process rebind
//! while old connections sit in TIME_WAIT.
//!
//! [`bind_group`] binds one such listener per worker, the first one exclusively (so a second
//! process cannot silently share the port); startup and a hot reload that moves
//! `gateway.listen` both use it, so every listener of a group is bound before any is served.
//!
//! Accepted sockets are made close-on-exec ([`set_cloexec`]): io_uring's accept (monoio 0.2.4)
//! does not ask for `SOCK_CLOEXEC`, and a stdio child spawned later would otherwise inherit every
//! open client connection, keeping it open (no FIN) after the gateway closed it, until the child
//! exits.
//!
//! Errors: socket and bind failures are returned as-is (e.g. `AddrInUse` when another
//! process holds the port without SO_REUSEPORT). Perf: accepted streams get TCP_NODELAY,
//! because responses are written whole and Nagle would only delay the last segment.

use std::net::TcpListener as StdListener;
use std::os::fd::AsRawFd;
use std::{io, net::SocketAddr};

use monoio::net::{ListenerOpts, TcpListener, TcpStream};

/// Binds a listener with SO_REUSEPORT + SO_REUSEADDR and the given accept backlog; call it
/// once per worker thread with the same address to share the port.
pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(backlog);
    TcpListener::bind_with_config(addr, &opts)
}

/// Binds `count` (at least one) non-blocking SO_REUSEPORT listeners on `addr`, one per worker.
/// SO_REUSEPORT would let a second gateway process silently share the port (and split traffic
/// between two session keys), so the address is first claimed without it: if anything else holds
/// it, this fails with `AddrInUse`. Port 0 is resolved once, so the whole group shares one port.
pub fn bind_group(addr: SocketAddr, count: usize) -> io::Result<Vec<StdListener>> {
    let probe = StdListener::bind(addr)?;
    let resolved = probe.local_addr()?;
    drop(probe);
    (0..count.max(1)).map(|_| bind_std(resolved)).collect()
}

/// One non-blocking SO_REUSEPORT + SO_REUSEADDR listener (std, to be handed to a worker thread).
fn bind_std(addr: SocketAddr) -> io::Result<StdListener> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Binds a non-blocking listener for a single-threaded server (the admin endpoint): no
/// SO_REUSEPORT, so an address held by anyone else fails with `AddrInUse`.
pub fn bind_single(addr: SocketAddr) -> io::Result<StdListener> {
    let l = StdListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Disables Nagle's algorithm on an accepted (or connected) stream.
pub fn set_nodelay(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

/// Marks an accepted socket close-on-exec, so child processes never inherit it (see the module
/// header). Accepted sockets are marked at once; a child spawned by another thread in between
/// could still inherit one, which only delays that connection's close until the child exits.
pub fn set_cloexec(stream: &impl AsRawFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(stream.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Accepts one connection and applies [`set_cloexec`] and [`set_nodelay`]; a failure to set
/// an option is not fatal for the connection, so it is ignored.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    let _ = set_cloexec(&stream);
    let _ = set_nodelay(&stream);
    Ok((stream, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[monoio::test(enable_timer = true)]
    async fn two_listeners_share_a_port_and_accept() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let first = bind_reuseport(any, 128).expect("bind first");
        let addr = first.local_addr().expect("local addr");
        let second = bind_reuseport(addr, 128).expect("bind second on the same port");
        let conn = crate::transport::http::connect(addr)
            .await
            .expect("connect");
        // The kernel picks either listener's queue for the connection.
        let (accepted, peer) = monoio::select! {
            r = accept(&first) => r,
            r = accept(&second) => r,
        }
        .expect("accept");
        assert_eq!(peer, conn.get_ref().local_addr().expect("client addr"));
        assert_eq!(accepted.local_addr().expect("server addr"), addr);
        // Never inherited by a child process.
        let flags =
            nix::fcntl::fcntl(accepted.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).expect("fcntl");
        assert!(
            nix::fcntl::FdFlag::from_bits_truncate(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC)
        );
    }

    #[test]
    fn a_group_shares_one_port_and_a_held_port_is_refused() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let group = bind_group(any, 3).expect("bind group");
        assert_eq!(group.len(), 3);
        let port = group[0].local_addr().expect("addr").port();
        assert_ne!(port, 0);
        assert!(group
            .iter()
            .all(|l| l.local_addr().is_ok_and(|a| a.port() == port)));
        // The group holds the port: another group (another process) may not join it.
        let taken = group[0].local_addr().expect("addr");
        let err = bind_group(taken, 1).expect_err("port already in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let err = bind_single(taken).expect_err("port already in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
