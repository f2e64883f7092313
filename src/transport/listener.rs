//! Listening sockets for a thread-per-core server.
//!
//! Role: every worker thread binds its *own* listener on the shared port with
//! SO_REUSEPORT, so the kernel spreads incoming connections across workers and no accept
//! lock or cross-thread hand-off exists. SO_REUSEADDR lets a restarted process rebind
//! while old connections sit in TIME_WAIT.
//!
//! Errors: socket and bind failures are returned as-is (e.g. `AddrInUse` when another
//! process holds the port without SO_REUSEPORT). Perf: accepted streams get TCP_NODELAY,
//! because responses are written whole and Nagle would only delay the last segment.

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

/// Disables Nagle's algorithm on an accepted (or connected) stream.
pub fn set_nodelay(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

/// Accepts one connection and applies [`set_nodelay`]; a failure to set the option is
/// not fatal for the connection, so it is ignored.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
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
    }
}
