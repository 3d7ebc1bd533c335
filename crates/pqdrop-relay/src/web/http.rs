//! A minimal HTTP/1.1 server for the page: `GET`/`HEAD` of its files, and
//! the WebSocket upgrade at `/ws`, and a WebSocket's downstream at
//! `/down/TOKEN` (see `down`). One request per connection (the page has
//! a handful of files), every response with the security headers below.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::debug;

use super::assets::{content_type, Assets};
use super::HEAD_TIMEOUT;

/// A request head larger than this is refused (431).
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// The page loads only its own files and talks only to its own origin; no
/// inline script or style, no frames, no forms, no plugins. In a fleet the
/// page may also have to follow a redirect to another instance's WebSocket
/// (PROTOCOL.md §9.8), whose origin is known only then: `connect_extra` adds
/// the WebSocket scheme for it.
pub(crate) fn csp(connect_extra: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'{connect_extra}; \
worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

pub(crate) struct Context {
    pub(crate) assets: Arc<Assets>,
    pub(crate) page_url: String,
    pub(crate) tls: bool,
    /// The Content-Security-Policy of every response.
    pub(crate) csp: String,
    pub(crate) inject: mpsc::Sender<(TcpStream, SocketAddr)>,
    /// Downstream tokens handed out on WebSockets, waiting for their request.
    pub(crate) downstreams: super::down::Downstreams,
    /// Proxies whose `X-Forwarded-For` names the client (see `WebConfig`).
    pub(crate) trusted_proxies: Vec<std::net::IpAddr>,
}

/// What a request asks for.
struct Request {
    head_only: bool,
    path: String,
    /// The WebSocket asks for its downstream over HTTP (`?down=http`).
    down_http: bool,
    /// The last address of `X-Forwarded-For`: `None` without the header,
    /// `Some(None)` when it does not end in an address.
    forwarded_for: Option<Option<std::net::IpAddr>>,
    upgrade: Option<String>,
    origin_ok: bool,
}

pub(crate) async fn serve<S>(ctx: &Context, mut io: S, addr: SocketAddr, permit: OwnedSemaphorePermit)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (req, _rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut io, &ctx.page_url)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return,
        Ok(Err(status)) => return respond(ctx, &mut io, status, "text/plain; charset=utf-8", reason(status).as_bytes(), false).await,
        Err(_) => return respond(ctx, &mut io, 408, "text/plain; charset=utf-8", b"request head not received in time", false).await,
    };
    let last = req.path.rsplit('/').next().unwrap_or("");
    if last == "ws" {
        let Some(key) = req.upgrade else {
            return respond(ctx, &mut io, 426, "text/plain; charset=utf-8", b"this is pqdrop's WebSocket endpoint", req.head_only).await;
        };
        if !req.origin_ok {
            debug!(peer = %addr, "web: WebSocket from another origin refused");
            return respond(ctx, &mut io, 403, "text/plain; charset=utf-8", b"WebSocket from another origin", false).await;
        }
        // Behind a trusted proxy, the browser's own address is the one the
        // proxy put last in X-Forwarded-For.
        let trusted = ctx.trusted_proxies.iter().any(|p| p.to_canonical() == addr.ip().to_canonical());
        let addr = match (trusted, req.forwarded_for) {
            (false, _) | (true, None) => addr,
            (true, Some(Some(ip))) => SocketAddr::new(ip, addr.port()),
            (true, Some(None)) => {
                debug!(peer = %addr, "web: a trusted proxy sent an X-Forwarded-For that does not end in an address");
                return respond(ctx, &mut io, 400, "text/plain; charset=utf-8", b"X-Forwarded-For does not end in an address", false).await;
            }
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        if io.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        // A WebSocket is counted by the relay's own limits once bridged.
        drop(permit);
        let downstreams = req.down_http.then_some(&ctx.downstreams);
        return super::bridge::run(io, addr, &ctx.inject, downstreams).await;
    }
    if let Some(token) = req.path.rsplit_once("/down/").map(|(_, t)| t).filter(|t| !t.contains('/')) {
        let bridge = if req.head_only { None } else { ctx.downstreams.claim(token) };
        let Some(bridge) = bridge else {
            return respond(
                ctx,
                &mut io,
                404,
                "text/plain; charset=utf-8",
                b"no such downstream (it was used, or it expired)",
                req.head_only,
            )
            .await;
        };
        // No length: the body is the relay's bytes until the session ends,
        // in chunks, and no proxy may hold them back (X-Accel-Buffering is
        // nginx's per-response switch for that).
        let head =
            format!("{}Transfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n\r\n", head(ctx, 200, "application/octet-stream", None));
        if io.write_all(head.as_bytes()).await.is_err() || io.flush().await.is_err() {
            return;
        }
        drop(permit);
        // The bridge stopped waiting: dropping the writer closes the response.
        let _ = bridge.send(Box::new(io));
        return;
    }
    let name = if last.is_empty() { "index.html" } else { last };
    match ctx.assets.get(name) {
        Some(body) => respond(ctx, &mut io, 200, content_type(name), &body, req.head_only).await,
        None => respond(ctx, &mut io, 404, "text/plain; charset=utf-8", b"not found", req.head_only).await,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// A response head without its final empty line: the status, the security
/// headers of every response, and the length when there is one (a
/// downstream has none, and must never be cached).
fn head(ctx: &Context, status: u16, ctype: &str, length: Option<usize>) -> String {
    let hsts = if ctx.tls { "Strict-Transport-Security: max-age=31536000\r\n" } else { "" };
    let allow = if status == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    let (length, cache) = match length {
        Some(n) => (format!("Content-Length: {n}\r\n"), "no-cache"),
        None => (String::new(), "no-store"),
    };
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\n{length}Content-Security-Policy: {}\r\n\
X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\nCross-Origin-Opener-Policy: same-origin\r\n\
Cross-Origin-Resource-Policy: same-origin\r\nPermissions-Policy: camera=(), microphone=(), geolocation=()\r\n\
Cache-Control: {cache}\r\n{hsts}{allow}Connection: close\r\n",
        reason(status),
        ctx.csp
    )
}

async fn respond<S: AsyncWrite + Unpin>(ctx: &Context, io: &mut S, status: u16, ctype: &str, body: &[u8], head_only: bool) {
    let head = format!("{}\r\n", head(ctx, status, ctype, Some(body.len())));
    let _ = io.write_all(head.as_bytes()).await;
    if !head_only {
        let _ = io.write_all(body).await;
    }
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// Reads and parses one request head. `Ok(None)`: the client closed first.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, page_url: &str) -> Result<Option<(Request, Vec<u8>)>, u16> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let n = io.read(&mut buf[len..]).await.map_err(|_| 400u16)?;
        if n == 0 {
            return if len == 0 { Ok(None) } else { Err(400) };
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(used)) => {
                let parsed = interpret(&req, page_url)?;
                return Ok(Some((parsed, buf[used..len].to_vec())));
            }
            Ok(httparse::Status::Partial) if len == buf.len() => return Err(431),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(431),
            Err(_) => return Err(400),
        }
    }
}

fn interpret(req: &httparse::Request<'_, '_>, page_url: &str) -> Result<Request, u16> {
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Err(405),
    };
    let target = req.path.ok_or(400u16)?;
    let path = target.split(['?', '#']).next().unwrap_or("").to_string();
    let query = target.split('#').next().unwrap_or("").split_once('?').map_or("", |(_, q)| q);
    let down_http = query.split('&').any(|kv| kv == "down=http");
    if !path.starts_with('/') {
        return Err(400);
    }
    let header = |name: &str| {
        req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).and_then(|h| std::str::from_utf8(h.value).ok()).map(str::trim)
    };
    let has_token = |name: &str, token: &str| header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)));
    let upgrade =
        (has_token("upgrade", "websocket") && has_token("connection", "upgrade") && header("sec-websocket-version") == Some("13"))
            .then(|| header("sec-websocket-key").map(str::to_string))
            .flatten();
    // Browsers always send Origin on a WebSocket; it must be this host or
    // the public URL's (a page elsewhere must not use a visitor's browser
    // against this relay). Tools that send no Origin are not browsers.
    let public_origin = page_url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let origin_ok = match header("origin") {
        None => true,
        Some(origin) => {
            origin.eq_ignore_ascii_case(&public_origin)
                || header("host").is_some_and(|host| origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(host)))
        }
    };
    // Several headers are one list (RFC 9110 §5.3): the last one counts.
    let forwarded_for = req.headers.iter().rev().find(|h| h.name.eq_ignore_ascii_case("x-forwarded-for")).map(|h| {
        std::str::from_utf8(h.value).ok().and_then(|v| v.rsplit(',').next()).and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
    });
    Ok(Request { head_only, path, down_http, forwarded_for, upgrade, origin_ok })
}
