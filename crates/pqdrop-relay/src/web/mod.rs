//! `pqdrop relay --web`: the browser page and its WebSocket.
//!
//! One listener serves the page (embedded at build time, or from a folder)
//! and, at `/ws`, a WebSocket whose binary messages carry exactly the bytes of
//! the relay protocol (PROTOCOL.md §9.8), as a TCP connection would. Each
//! WebSocket is bridged to the relay through a private loopback TCP pair, and
//! the relay side of that pair enters the relay like any accepted connection,
//! under the browser's own address: the same hello, limits, rooms, fleet and
//! splicing apply, and a browser pairs with a TCP peer.
//!
//! Browsers give WebCrypto only to secure contexts, so a page served to
//! anything but `localhost`/`127.0.0.1` needs HTTPS: either from a
//! certificate and key here ([`WebConfig::tls`], rustls), or from a reverse
//! proxy in front (then [`WebConfig::public_url`] says where users reach it).

mod assets;
mod bridge;
mod down;
mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, info, warn};

use crate::RelayError;

pub(crate) use assets::Assets;

/// How the page is served.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Where users reach the page, `http(s)://host[:port][/path]/`: told to
    /// senders that ask (`pqdrop send --web`) and, in a fleet, used in
    /// redirects of browser peers. Default: `http(s)://ADDR/` of the listener.
    pub public_url: Option<String>,
    /// Serve the page's files from this folder instead of the built-in copy.
    pub root: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: a WebSocket
    /// that comes from one of these addresses enters the relay under the
    /// last address of that header (the one the proxy added), so that the
    /// per-address limits count each browser, not the proxy. Empty (the
    /// default): the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// At most this many page requests (not WebSockets, which the relay's own
/// limits count once bridged) are served at once.
const MAX_PAGE_CONNECTIONS: usize = 256;
/// A request head must arrive within this time.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound web listener, ready to serve.
pub(crate) struct WebServer {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    assets: Arc<Assets>,
    page_url: String,
    local_addr: SocketAddr,
    csp: String,
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl std::fmt::Debug for WebServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebServer").field("local_addr", &self.local_addr).field("page_url", &self.page_url).finish()
    }
}

impl WebServer {
    /// Binds `addr` and loads what the page needs (TLS files, a page folder).
    pub(crate) async fn bind(addr: SocketAddr, config: &WebConfig, fleet: bool) -> Result<WebServer, RelayError> {
        let tls = match &config.tls {
            Some(files) => Some(load_tls(files)?),
            None => None,
        };
        let assets = Arc::new(Assets::load(config.root.as_deref())?);
        let listener = TcpListener::bind(addr).await.map_err(|source| RelayError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| RelayError::Bind { addr, source })?;
        let page_url = match &config.public_url {
            Some(u) => normalize_public_url(u)?,
            None => format!("{}://{local_addr}/", if tls.is_some() { "https" } else { "http" }),
        };
        // A fleet's page may be redirected to another instance's WebSocket.
        let connect_extra = match (fleet, page_url.starts_with("https://")) {
            (false, _) => "",
            (true, true) => " wss:",
            (true, false) => " ws: wss:",
        };
        let trusted_proxies = config.trusted_proxies.clone();
        Ok(WebServer { listener, tls, assets, page_url, local_addr, csp: http::csp(connect_extra), trusted_proxies })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub(crate) fn page_url(&self) -> &str {
        &self.page_url
    }

    /// Serves until `shutdown` says so. Bridged WebSockets are handed to the
    /// relay through `inject` with the browser's address.
    pub(crate) async fn run(self, inject: mpsc::Sender<(TcpStream, SocketAddr)>, mut shutdown: watch::Receiver<bool>) {
        info!(addr = %self.local_addr, url = %self.page_url, tls = self.tls.is_some(), "serving the browser page");
        let permits = Arc::new(Semaphore::new(MAX_PAGE_CONNECTIONS));
        let ctx = Arc::new(http::Context {
            assets: self.assets,
            page_url: self.page_url,
            tls: self.tls.is_some(),
            csp: self.csp,
            inject,
            downstreams: down::Downstreams::default(),
            trusted_proxies: self.trusted_proxies,
        });
        loop {
            let (stream, addr) = tokio::select! {
                () = stopping(&mut shutdown) => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error_kind = ?e.kind(), "web accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                debug!(peer = %addr, "web: too many page connections; closing");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let ctx = Arc::clone(&ctx);
            let tls = self.tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => http::serve(&ctx, s, addr, permit).await,
                        Ok(Err(e)) => debug!(peer = %addr, error = %e, "web: TLS handshake failed"),
                        Err(_) => debug!(peer = %addr, "web: TLS handshake timed out"),
                    },
                    None => http::serve(&ctx, stream, addr, permit).await,
                }
            });
        }
    }
}

/// Resolves once the relay is shutting down.
async fn stopping(rx: &mut watch::Receiver<bool>) {
    // The guard must not live across an await.
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// `http(s)://host[:port][/path]` with a trailing `/`, printable ASCII, no
/// query or fragment: the page's address as users reach it.
pub(crate) fn normalize_public_url(u: &str) -> Result<String, RelayError> {
    let u = u.trim();
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty() && !host.contains('@')
    }) && u.len() <= 400
        && u.bytes().all(|b| b.is_ascii_graphic())
        && !u.contains(['?', '#']);
    if !ok {
        return Err(RelayError::Config("--public-url must be http(s)://HOST[:PORT][/PATH] (no query, fragment or user name)"));
    }
    Ok(if u.ends_with('/') { u.to_string() } else { format!("{u}/") })
}

fn load_tls(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, RelayError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| RelayError::Tls(format!("{what} {}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad("cannot read the certificate file", &files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("cannot parse the certificate file", &files.cert, &e))?;
    if certs.is_empty() {
        return Err(RelayError::Tls(format!("no certificate in {}", files.cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("cannot read a private key from", &files.key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RelayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RelayError::Tls(format!("the certificate and key do not make a usable pair: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::normalize_public_url;

    #[test]
    fn public_urls_are_checked_and_end_in_a_slash() {
        assert_eq!(normalize_public_url("https://drop.example.org").unwrap(), "https://drop.example.org/");
        assert_eq!(normalize_public_url("http://127.0.0.1:8080/pq/").unwrap(), "http://127.0.0.1:8080/pq/");
        for bad in ["drop.example.org", "ftp://x/", "https://", "https://a b/", "https://x/?q", "https://x/#f", "https://u@x/"] {
            assert!(normalize_public_url(bad).is_err(), "{bad}");
        }
    }
}
