//! The server loop: HTTP/1 connections with a header-read timeout, at most
//! `GANTRY_MAX_CONNECTIONS_PER_IP` open per client address (past the cap a
//! new connection is closed at once, so one address holding hundreds of
//! slow connections cannot use up the server's sockets and tasks for
//! everybody else), and a graceful shutdown. `axum::serve` offers neither
//! a header timeout nor a per-address cap.

use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Longest a client may take to send a request's headers, counted from
/// the end of the previous response on a kept-alive connection (so it also
/// closes connections idle that long).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serve `app` on `listener` until `shutdown` completes; then `stop` is
/// cancelled (ending event streams and asking every connection to finish
/// its request) and the call returns once every connection closed.
pub(crate) async fn serve(
    mut listener: CappedListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let tasks = tokio_util::task::TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Client addresses key the rate limits and the failed-login count.
        let svc = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(addr));
                req
            },
        );
        let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, %addr, "connection ended with an error");
            }
        });
    }
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

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
