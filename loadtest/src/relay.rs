//! The bare TCP relay: the physical floor of "one more hop".
//!
//! One thread with its own monoio runtime (io_uring where available), pinned like the gateway.
//! Each accepted connection gets a fresh upstream connection, `TCP_NODELAY` on both, and two
//! copy loops (one per direction) on the same thread: a read completion is followed by a write of
//! exactly those bytes, with no thread hand-off, no parsing and no extra buffering. Whatever the
//! gateway adds beyond this relay is the cost of being an MCP gateway rather than a wire.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::{TcpListener, TcpStream};

/// Copy buffer per direction: one read moves up to this many bytes.
const BUF: usize = 64 * 1024;

/// Starts the relay thread, listening on an ephemeral loopback port, forwarding to `upstream`.
/// Returns the address it listens on once it is accepting.
/// `cpus` is the relay thread's CPU set (empty: inherit).
pub fn start(upstream: SocketAddr, cpus: Vec<usize>) -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
    std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            if !cpus.is_empty() {
                if let Err(e) = crate::sys::pin_thread(0, &cpus) {
                    eprintln!("relay: cannot pin to CPUs {cpus:?}: {e}");
                }
            }
            let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build();
            let mut rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match TcpListener::bind("127.0.0.1:0") {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(listener.local_addr());
                accept_loop(listener, upstream).await;
            });
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("relay thread ended before listening"))?
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                monoio::spawn(async move {
                    if let Err(e) = relay(client, upstream).await {
                        if e.kind() != io::ErrorKind::ConnectionReset {
                            eprintln!("relay: connection ended: {e}");
                        }
                    }
                });
            }
            Err(e) => {
                eprintln!("relay: accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    client.set_nodelay(true)?;
    let server = TcpStream::connect_addr(upstream).await?;
    server.set_nodelay(true)?;
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = monoio::spawn(copy(client_r, server_w));
    let down = copy(server_r, client_w).await;
    let up = up.await;
    down.and(up)
}

/// Moves bytes from `r` to `w` until `r` ends, then shuts `w` down.
async fn copy<R: AsyncReadRent, W: AsyncWriteRent>(mut r: R, mut w: W) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(BUF);
    loop {
        buf.clear();
        let (res, b) = r.read(buf).await;
        buf = b;
        match res {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = w.shutdown().await;
                return Err(e);
            }
        }
        let (res, b) = w.write_all(buf).await;
        buf = b;
        res?;
    }
    w.shutdown().await
}
