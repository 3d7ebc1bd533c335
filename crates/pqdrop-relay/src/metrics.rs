//! `--metrics`: Prometheus text metrics and a health check over plain HTTP.
//!
//! A deliberately small HTTP/1.0-style responder: one request per
//! connection, a bounded request head, a deadline, and two paths. It is meant
//! for a scraper on a private network, not for the public.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::wire::ERROR_CODES;
use crate::{RelayError, RelayStats, StatsHandle, StatusCode};

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// A scraper has this long to send its request.
const DEADLINE: Duration = Duration::from_secs(5);

/// Binds the metrics listener (so that a bad address fails at start).
pub async fn bind_metrics(addr: SocketAddr) -> Result<TcpListener, RelayError> {
    TcpListener::bind(addr).await.map_err(|source| RelayError::Bind { addr, source })
}

/// Serves `GET /metrics` (Prometheus text format) and `GET /healthz` (200
/// when serving, 503 while draining or while a fleet instance cannot reach
/// its directory) on `listener` until `shutdown` resolves.
pub async fn serve_metrics(listener: TcpListener, stats: StatsHandle, shutdown: impl Future<Output = ()>) {
    if let Ok(addr) = listener.local_addr() {
        info!(addr = %addr, "metrics listening");
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let stats = stats.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(DEADLINE, answer(stream, &stats)).await;
                    });
                }
                Err(e) => {
                    warn!(error_kind = ?e.kind(), "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn answer(mut stream: TcpStream, stats: &StatsHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let snap = stats.snapshot();
    let (status, body, kind) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", render(&snap), "text/plain; version=0.0.4"),
        (b"GET", b"/healthz") => {
            let healthy = !snap.shutting_down && snap.directory.as_ref().is_none_or(|d| d.up);
            if healthy {
                ("200 OK", "ok\n".to_owned(), "text/plain")
            } else if snap.shutting_down {
                ("503 Service Unavailable", "draining\n".to_owned(), "text/plain")
            } else {
                ("503 Service Unavailable", "directory unavailable\n".to_owned(), "text/plain")
            }
        }
        (b"GET", _) => ("404 Not Found", "not found: try /metrics or /healthz\n".to_owned(), "text/plain"),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned(), "text/plain"),
    };
    let resp = format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

/// The Prometheus text exposition of `s`.
pub(crate) fn render(s: &RelayStats) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP pqdrop_relay_{name} {help}\n# TYPE pqdrop_relay_{name} {kind}\npqdrop_relay_{name} {value}");
    };
    metric("rooms_waiting", "gauge", "Rooms with a peer waiting on this instance.", s.pending_rooms.to_string());
    metric("sessions_active", "gauge", "Paired sessions running on this instance.", s.active_sessions.to_string());
    metric("sessions_paired_total", "counter", "Pairings since start.", s.sessions_paired.to_string());
    metric("connections_accepted_total", "counter", "Connections accepted since start.", s.connections_accepted.to_string());
    metric("bytes_relayed_total", "counter", "Bytes relayed between peers by sessions that ended.", s.bytes_relayed.to_string());
    metric(
        "hello_evictions_total",
        "counter",
        "Connections without a hello evicted to make room for newer ones.",
        s.hello_evictions.to_string(),
    );
    metric("draining", "gauge", "1 while the relay shuts down.", u8::from(s.shutting_down).to_string());
    let _ = writeln!(out, "# HELP pqdrop_relay_refusals_total Error statuses sent, by code.\n# TYPE pqdrop_relay_refusals_total counter");
    for code in StatusCode::ALL.into_iter().filter(|c| c.error_index().is_some_and(|i| i < ERROR_CODES)) {
        let _ = writeln!(out, "pqdrop_relay_refusals_total{{code=\"{}\"}} {}", code.code(), s.refusals(code));
    }
    if let Some(d) = &s.directory {
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP pqdrop_relay_{name} {help}\n# TYPE pqdrop_relay_{name} {kind}\npqdrop_relay_{name} {value}");
        };
        metric("directory_up", "gauge", "1 when this instance reaches the fleet's Redis.", u8::from(d.up).to_string());
        metric("directory_errors_total", "counter", "Redis calls that failed or timed out.", d.errors.to_string());
        metric("redirects_total", "counter", "Clients sent to another instance.", d.redirects.to_string());
        let ok = d.calls.saturating_sub(d.errors);
        let _ = writeln!(
            out,
            "# HELP pqdrop_relay_directory_rtt_seconds Round-trip time of Redis calls that succeeded.\n# TYPE pqdrop_relay_directory_rtt_seconds summary\npqdrop_relay_directory_rtt_seconds_sum {:.6}\npqdrop_relay_directory_rtt_seconds_count {ok}",
            d.rtt_micros_total as f64 / 1e6
        );
    }
    out
}
