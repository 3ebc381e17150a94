//! The connection loop: accept, cap, serve HTTP/1.1 with a header deadline, drain on shutdown.
//!
//! `axum::serve` builds hyper without a timer, so a client that never finishes its headers keeps
//! its connection (and a file descriptor) forever, it accepts without a cap, and its graceful
//! shutdown waits for every connection however long it takes. This loop is the same few lines
//! around hyper with those three limits: a header-read timeout, a most-connections cap, and a
//! drain bounded by the shutdown deadline. Handlers still see `ConnectInfo<SocketAddr>`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Largest request head (request line and headers) accepted; hyper answers 431 beyond it.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How connections are bounded.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// A client must send a request's whole head within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// After the shutdown signal, how long open connections may take to finish.
    pub shutdown_deadline: Duration,
}

/// How serving ended.
#[derive(Debug)]
pub struct Stopped {
    /// When the shutdown signal arrived: everything after it shares one deadline.
    pub signalled_at: Instant,
    /// Connections still open when the deadline passed (0: all drained in time).
    pub abandoned: usize,
}

/// Serves `router` until `shutdown` completes; then stops accepting, lets each connection finish
/// the request it is on (idle ones close at once) and waits for them until the deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let permits = limits.max_connections.min(Semaphore::MAX_PERMITS);
    let open = Arc::new(Semaphore::new(permits));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open");
            drop(stream);
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits.header_read_timeout,
            stopping.clone(),
            permit,
        ));
    }
    let signalled_at = Instant::now();
    drop(listener);
    stop.send_replace(true);
    let all = u32::try_from(permits).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout_at(
        signalled_at + limits.shutdown_deadline,
        open.acquire_many(all),
    )
    .await;
    let abandoned = match drained {
        Ok(_) => 0,
        Err(_) => permits - open.available_permits(),
    };
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            deadline_ms = limits.shutdown_deadline.as_millis() as u64,
            "shutdown deadline passed with connections still open; closing them"
        );
    }
    Stopped {
        signalled_at,
        abandoned,
    }
}

/// One client connection, holding its `permit` until it closes.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let service = TowerToHyperService::new(service);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut asked_to_stop = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stopping), if !asked_to_stop => {
                asked_to_stop = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the loop is gone, which also means stop.
    let _ = stopping.wait_for(|stop| *stop).await;
}
