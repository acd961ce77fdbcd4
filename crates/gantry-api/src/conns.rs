//! A listener that caps open connections per client address
//! (`GANTRY_MAX_CONNECTIONS_PER_IP`): past the cap a new connection is
//! closed at once, so one address holding hundreds of slow connections
//! cannot use up the server's sockets and tasks for everybody else.

use axum::serve::Listener;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// [`TcpListener`] with at most `per_ip` connections open per address.
pub(crate) struct CappedListener {
    inner: TcpListener,
    per_ip: usize,
    counts: Counts,
}

impl CappedListener {
    pub(crate) fn new(inner: TcpListener, per_ip: usize) -> Self {
        Self {
            inner,
            per_ip: per_ip.max(1),
            counts: Counts::default(),
        }
    }
}

impl Listener for CappedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // axum's own accept retries (and backs off on) accept errors.
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let ip = addr.ip();
            {
                let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
                let n = counts.entry(ip).or_insert(0);
                if *n >= self.per_ip {
                    drop(counts);
                    tracing::debug!(%ip, limit = self.per_ip, "connection refused: too many from one address");
                    drop(stream);
                    continue;
                }
                *n += 1;
            }
            let _ = stream.set_nodelay(true);
            let stream = CountedStream {
                inner: stream,
                _slot: Slot {
                    ip,
                    counts: self.counts.clone(),
                },
            };
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Gives its address's slot back when the connection ends.
struct Slot {
    ip: IpAddr,
    counts: Counts,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream holding its address's slot.
pub(crate) struct CountedStream {
    inner: TcpStream,
    /// Held for its `Drop`.
    _slot: Slot,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
