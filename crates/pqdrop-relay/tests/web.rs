//! `--web`: the page over HTTP with its security headers, and WebSocket
//! peers that run the relay protocol inside binary messages (PROTOCOL.md
//! §9.8) and pair with TCP peers. Loopback only; every wait bounded.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pqdrop_relay::{
    hello_v2_bytes, hello_v2_page_bytes, read_status, rendezvous_page, Relay, RelayConfig, RelayError, Rendezvous, Role, WebConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(30);

struct Running {
    tcp: SocketAddr,
    web: Option<SocketAddr>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _root: tempfile::TempDir,
}

async fn start(web: bool) -> Running {
    start_with(web, RelayConfig::default(), Vec::new()).await
}

async fn start_with(web: bool, config: RelayConfig, trusted_proxies: Vec<std::net::IpAddr>) -> Running {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("index.html"), b"<!doctype html><title>pqdrop</title>").unwrap();
    std::fs::write(root.path().join("app.js"), b"console.log(1)").unwrap();
    let config = RelayConfig { join_rate_per_sec: 1000.0, join_burst: 1000, ..config };
    let mut relay = Relay::bind("127.0.0.1:0".parse().unwrap(), config).await.expect("bind");
    let web = match web {
        true => {
            let cfg = WebConfig { root: Some(root.path().to_path_buf()), trusted_proxies, ..WebConfig::default() };
            Some(relay.serve_web("127.0.0.1:0".parse().unwrap(), cfg).await.expect("web"))
        }
        false => None,
    };
    let tcp = relay.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(async move {
        let _ = rx.await;
    }));
    Running { tcp, web, _stop: tx, _root: root }
}

/// One raw HTTP/1.1 request; the whole response as text.
async fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("response in time").expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_with_a_strict_policy_and_nothing_else_is() {
    timeout(LIMIT, async {
        let r = start(true).await;
        let web = r.web.unwrap();
        let index = http(web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(index.starts_with("HTTP/1.1 200 "), "{index}");
        assert!(index.contains("Content-Type: text/html; charset=utf-8"), "{index}");
        assert!(index.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"), "{index}");
        assert!(index.contains("X-Content-Type-Options: nosniff") && index.contains("Referrer-Policy: no-referrer"), "{index}");
        assert!(index.ends_with("<!doctype html><title>pqdrop</title>"), "{index}");
        let js = http(web, "GET /app.js?v=1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(js.contains("text/javascript") && js.ends_with("console.log(1)"), "{js}");
        let head = http(web, "HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
        for path in ["/nope.js", "/..%2fetc%2fpasswd", "/../index.html/..", "/.hidden"] {
            let resp = http(web, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
            assert!(resp.starts_with("HTTP/1.1 404 "), "{path}: {resp}");
        }
        let post = http(web, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert!(http(web, &huge).await.starts_with("HTTP/1.1 431 "));
        let plain = http(web, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");
    })
    .await
    .expect("in time");
}

/// A WebSocket to `web` at `path` (with its query), from the page's own
/// origin as a browser would send it, with `headers` added.
async fn ws_connect(
    web: SocketAddr,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let stream = TcpStream::connect(web).await.expect("connect");
    let mut req = format!("ws://{web}/{path}").into_client_request()?;
    req.headers_mut().insert("Origin", format!("http://{web}").parse().expect("header"));
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().expect("header"));
    }
    Ok(tokio_tungstenite::client_async(req, stream).await?.0)
}

/// Reads relay statuses out of WebSocket messages (their boundaries mean nothing).
struct WsStatuses {
    buf: Vec<u8>,
}

impl WsStatuses {
    async fn next<S>(&mut self, ws: &mut S) -> (u64, String)
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        loop {
            let mut cur: &[u8] = &self.buf;
            let before = cur.len();
            if let Ok(Ok(st)) = timeout(Duration::from_millis(1), read_status(&mut cur)).await {
                let used = before - cur.len();
                self.buf.drain(..used);
                return st;
            }
            match timeout(Duration::from_secs(10), ws.next()).await.expect("a message in time") {
                Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_sender_pairs_with_a_tcp_receiver_and_bytes_flow_both_ways() {
    timeout(LIMIT, async {
        let r = start(true).await;
        let web = r.web.unwrap();
        let ws = ws_connect(web, "ws", &[]).await.expect("upgrade");
        let (mut tx, mut rx) = ws.split();
        // Sent in two messages: boundaries carry no meaning.
        let hello = hello_v2_page_bytes(None, Role::Sender, false, true).unwrap();
        tx.send(Message::Binary(hello[..3].to_vec().into())).await.unwrap();
        tx.send(Message::Binary(hello[3..].to_vec().into())).await.unwrap();
        let mut st = WsStatuses { buf: Vec::new() };
        assert_eq!(st.next(&mut rx).await, (4, format!("http://{web}/")), "the page URL comes first");
        let (code, np) = st.next(&mut rx).await;
        assert_eq!((code, np.as_str()), (2, "1"), "allocated");
        assert_eq!(st.next(&mut rx).await.0, 0, "waiting");
        let mut recv = TcpStream::connect(r.tcp).await.unwrap();
        recv.write_all(&hello_v2_bytes(Some(&np), Role::Receiver, false).unwrap()).await.unwrap();
        assert_eq!(read_status(&mut recv).await.unwrap().0, 1);
        assert_eq!(st.next(&mut rx).await.0, 1, "paired");
        // 3 MiB each way.
        let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
        for c in data.chunks(1 << 20) {
            tx.send(Message::Binary(c.to_vec().into())).await.unwrap();
        }
        let mut got = vec![0u8; data.len()];
        recv.read_exact(&mut got).await.unwrap();
        assert!(got == data, "browser to TCP");
        recv.write_all(&data).await.unwrap();
        recv.shutdown().await.unwrap();
        let mut back = st.buf.clone();
        while let Some(m) = timeout(Duration::from_secs(10), rx.next()).await.expect("in time") {
            match m {
                Ok(Message::Binary(b)) => back.extend_from_slice(&b),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert!(back == data, "TCP to browser, then a close");
    })
    .await
    .expect("in time");
}

/// The body of a chunked HTTP/1.1 response (RFC 9112 §7.1), decoded as it comes.
struct ChunkedBody<S> {
    io: S,
    raw: Vec<u8>,
    /// Decoded bytes not yet taken.
    body: Vec<u8>,
    complete: bool,
}

impl<S: tokio::io::AsyncRead + Unpin> ChunkedBody<S> {
    /// Reads the head (it is checked by the caller).
    async fn open(mut io: S) -> (ChunkedBody<S>, String) {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = timeout(Duration::from_secs(10), io.read(&mut buf)).await.expect("head in time").unwrap();
            assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        raw.drain(..end);
        (ChunkedBody { io, raw, body: Vec::new(), complete: false }, head)
    }

    /// Decodes what whole chunks `raw` holds; true once the last chunk came.
    fn decode(&mut self) {
        while !self.complete {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else { return };
            let size = usize::from_str_radix(std::str::from_utf8(&self.raw[..eol]).unwrap(), 16).expect("chunk size");
            if size == 0 {
                self.complete = self.raw.len() >= eol + 4;
                return;
            }
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            assert_eq!(&self.raw[eol + 2 + size..eol + 4 + size], b"\r\n");
            self.body.extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
            self.raw.drain(..eol + 4 + size);
        }
    }

    /// At least `n` decoded bytes (or all there are once the body ended).
    async fn fill(&mut self, n: usize) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.decode();
            if self.body.len() >= n || self.complete {
                return;
            }
            let got = timeout(Duration::from_secs(10), self.io.read(&mut buf)).await.expect("body in time").unwrap();
            if got == 0 {
                return;
            }
            self.raw.extend_from_slice(&buf[..got]);
        }
    }

    async fn status(&mut self) -> (u64, String) {
        loop {
            let mut cur: &[u8] = &self.body;
            let before = cur.len();
            if let Ok(Ok(st)) = timeout(Duration::from_millis(1), read_status(&mut cur)).await {
                let used = before - cur.len();
                self.body.drain(..used);
                return st;
            }
            let want = self.body.len() + 1;
            self.fill(want).await;
            assert!(self.body.len() >= want, "the body ended before a status");
        }
    }
}

/// `?down=http`: the relay's bytes come as a streamed (chunked) HTTP
/// response at `down/TOKEN`, the token being the WebSocket's first (text)
/// message; the WebSocket carries the browser's bytes. The response ends
/// with its last chunk when the session does, and a token serves one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_peer_may_read_the_relay_from_a_streamed_http_response() {
    timeout(LIMIT, async {
        let r = start(true).await;
        let web = r.web.unwrap();
        let ws = ws_connect(web, "ws?down=http", &[]).await.expect("upgrade");
        let (mut tx, mut rx) = ws.split();
        let token = match timeout(Duration::from_secs(10), rx.next()).await.expect("the token in time") {
            Some(Ok(Message::Text(t))) => t.as_str().strip_prefix("down ").expect("down TOKEN").to_string(),
            other => panic!("expected the token first, got {other:?}"),
        };
        assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        // The hello may go before the downstream is requested.
        tx.send(Message::Binary(hello_v2_bytes(None, Role::Sender, false).unwrap().into())).await.unwrap();
        let mut get = TcpStream::connect(web).await.unwrap();
        get.write_all(format!("GET /down/{token} HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes()).await.unwrap();
        let (mut body, head) = ChunkedBody::open(get).await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        for h in
            ["Transfer-Encoding: chunked", "Cache-Control: no-store", "X-Accel-Buffering: no", "Content-Type: application/octet-stream"]
        {
            assert!(head.contains(h), "{h}: {head}");
        }
        let again = http(web, &format!("GET /down/{token} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
        assert!(again.starts_with("HTTP/1.1 404 "), "a token serves one request: {again}");
        let (code, np) = body.status().await;
        assert_eq!(code, 2, "allocated");
        assert_eq!(body.status().await.0, 0, "waiting");
        let mut recv = TcpStream::connect(r.tcp).await.unwrap();
        recv.write_all(&hello_v2_bytes(Some(&np), Role::Receiver, false).unwrap()).await.unwrap();
        assert_eq!(read_status(&mut recv).await.unwrap().0, 1);
        assert_eq!(body.status().await.0, 1, "paired");
        let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i * 13 % 251) as u8).collect();
        for c in data.chunks(1 << 20) {
            tx.send(Message::Binary(c.to_vec().into())).await.unwrap();
        }
        let mut got = vec![0u8; data.len()];
        recv.read_exact(&mut got).await.unwrap();
        assert!(got == data, "browser to TCP over the WebSocket");
        recv.write_all(&data).await.unwrap();
        recv.shutdown().await.unwrap();
        body.fill(usize::MAX).await;
        assert!(body.complete, "the response ends with its last chunk");
        assert!(body.body == data, "TCP to browser over HTTP ({} bytes)", body.body.len());
        // Nothing but the close came on the WebSocket.
        while let Some(m) = timeout(Duration::from_secs(10), rx.next()).await.expect("in time") {
            match m {
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Binary(b)) => panic!("{} bytes on the WebSocket with the downstream over HTTP", b.len()),
                Ok(_) => {}
            }
        }
        let unknown = http(web, "GET /down/00000000000000000000000000000000 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(unknown.starts_with("HTTP/1.1 404 "), "{unknown}");
    })
    .await
    .expect("in time");
}

/// A WebSocket through `--web` with `X-Forwarded-For`, as a proxy sends it;
/// returns the first status the relay gives an allocating sender. The
/// connection (and the room it waits in) stays open as long as `keep`.
async fn ws_sender_status(web: SocketAddr, forwarded_for: &str, keep: &mut Vec<Box<dyn std::any::Any + Send>>) -> Result<u64, String> {
    let ws = ws_connect(web, "ws", &[("X-Forwarded-For", forwarded_for)]).await.map_err(|e| e.to_string())?;
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Binary(hello_v2_bytes(None, Role::Sender, false).unwrap().into())).await.unwrap();
    let mut st = WsStatuses { buf: Vec::new() };
    let (code, _) = st.next(&mut rx).await;
    keep.push(Box::new((tx, rx)));
    Ok(code)
}

/// Behind a trusted proxy each browser counts under the address the proxy
/// put last in `X-Forwarded-For`; from anyone else the header means nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_browser_has_its_own_limits() {
    timeout(LIMIT, async {
        let mut keep = Vec::new();
        let one_room = RelayConfig { max_pending_per_ip: 1, ..RelayConfig::default() };
        let r = start_with(true, one_room.clone(), vec!["127.0.0.1".parse().unwrap()]).await;
        let web = r.web.unwrap();
        assert_eq!(ws_sender_status(web, "198.51.100.1, 203.0.113.7", &mut keep).await, Ok(2), "allocated for .7");
        assert_eq!(ws_sender_status(web, "203.0.113.8", &mut keep).await, Ok(2), "another browser has its own room limit");
        // The proxy's own entry is the last: what the client wrote before it counts for nothing.
        assert_eq!(ws_sender_status(web, "203.0.113.8, 203.0.113.7", &mut keep).await, Ok(17), "a second room for .7 is refused");
        let bad = ws_sender_status(web, "203.0.113.9, unknown", &mut keep).await;
        assert!(bad.as_ref().is_err_and(|e| e.contains("400")), "a header that does not end in an address: {bad:?}");

        // Without --trusted-proxy the header is ignored: all come from 127.0.0.1.
        let r2 = start_with(true, one_room, Vec::new()).await;
        let web2 = r2.web.unwrap();
        assert_eq!(ws_sender_status(web2, "203.0.113.7", &mut keep).await, Ok(2));
        assert_eq!(ws_sender_status(web2, "203.0.113.8", &mut keep).await, Ok(17), "one address, one room");
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_from_another_origin_is_refused() {
    timeout(LIMIT, async {
        let r = start(true).await;
        let web = r.web.unwrap();
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let resp = http(
            web,
            &format!("GET /ws HTTP/1.1\r\nHost: {web}\r\nOrigin: https://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"),
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 403 "), "{resp}");
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_learns_the_page_url_and_a_relay_without_a_page_says_so() {
    timeout(LIMIT, async {
        let with = start(true).await;
        let fallback = "999".parse().unwrap();
        let addr = with.tcp.to_string();
        let waiting = tokio::spawn(async move {
            let mut told = None;
            let r = rendezvous_page(
                &addr,
                Rendezvous::Allocate { fallback },
                Role::Sender,
                |np, url| told = Some((np.to_string(), url.to_string())),
                Default::default(),
            )
            .await;
            (r.map(|(p, url)| (p.nameplate.to_string(), url)), told)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut recv = TcpStream::connect(with.tcp).await.unwrap();
        recv.write_all(&hello_v2_bytes(Some("1"), Role::Receiver, false).unwrap()).await.unwrap();
        assert_eq!(read_status(&mut recv).await.unwrap().0, 1);
        let (r, told) = waiting.await.unwrap();
        let url = format!("http://{}/", with.web.unwrap());
        assert_eq!(r.expect("paired"), ("1".to_string(), url.clone()));
        assert_eq!(told, Some(("1".to_string(), url)));

        let without = start(false).await;
        let err = rendezvous_page(&without.tcp.to_string(), Rendezvous::Allocate { fallback }, Role::Sender, |_, _| {}, Default::default())
            .await
            .expect_err("no page");
        assert!(matches!(err, RelayError::NoWebPage { .. }), "{err}");
    })
    .await
    .expect("in time");
}

/// `--tls-cert`/`--tls-key`: the page and the WebSocket over HTTPS, checked
/// by a rustls client that trusts only the test's own certificate (made by
/// `openssl`, which every Debian has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_a_websocket_with_its_downstream_are_served_over_https() {
    use tokio_rustls::rustls;

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian: apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    timeout(LIMIT, async {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("index.html"), b"<!doctype html>tls").unwrap();
        let mut relay = Relay::bind("127.0.0.1:0".parse().unwrap(), RelayConfig::default()).await.unwrap();
        let tls = Some(pqdrop_relay::TlsFiles { cert: cert.clone(), key: key.clone() });
        let web = relay
            .serve_web("127.0.0.1:0".parse().unwrap(), WebConfig { root: Some(root.path().into()), tls, ..WebConfig::default() })
            .await
            .unwrap();
        assert_eq!(relay.page_url(), Some(format!("https://{web}/").as_str()));
        let relay_tcp = relay.local_addr();
        let (_tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(relay.run(async move {
            let _ = rx.await;
        }));

        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_file(&cert).unwrap()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = TcpStream::connect(web).await.unwrap();
        let mut s = connector.connect("127.0.0.1".try_into().unwrap(), tcp).await.expect("TLS handshake");
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 ") && text.contains("Strict-Transport-Security") && text.ends_with("tls"), "{text}");

        // Plain HTTP to the TLS port gets no page.
        let plain = http(web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(!plain.contains("200 OK"), "{plain}");

        // A WebSocket over TLS with its downstream over HTTPS, paired with a
        // TCP peer: every chunk must leave TLS's buffers at once.
        let tls_ws = connector.connect("127.0.0.1".try_into().unwrap(), TcpStream::connect(web).await.unwrap()).await.unwrap();
        let mut req = format!("wss://127.0.0.1:{}/ws?down=http", web.port()).into_client_request().unwrap();
        req.headers_mut().insert("Origin", format!("https://127.0.0.1:{}", web.port()).parse().unwrap());
        let (ws, _) = tokio_tungstenite::client_async(req, tls_ws).await.expect("upgrade over TLS");
        let (mut tx, mut rx) = ws.split();
        let token = match timeout(Duration::from_secs(10), rx.next()).await.expect("the token in time") {
            Some(Ok(Message::Text(t))) => t.as_str().strip_prefix("down ").expect("down TOKEN").to_string(),
            other => panic!("expected the token first, got {other:?}"),
        };
        tx.send(Message::Binary(hello_v2_bytes(Some("77"), Role::Sender, false).unwrap().into())).await.unwrap();
        let mut get = connector.connect("127.0.0.1".try_into().unwrap(), TcpStream::connect(web).await.unwrap()).await.unwrap();
        get.write_all(format!("GET /down/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.unwrap();
        let (mut body, head) = ChunkedBody::open(get).await;
        assert!(head.starts_with("HTTP/1.1 200 ") && head.contains("Transfer-Encoding: chunked"), "{head}");
        assert_eq!(body.status().await.0, 0, "waiting");
        let mut recv = TcpStream::connect(relay_tcp).await.unwrap();
        recv.write_all(&hello_v2_bytes(Some("77"), Role::Receiver, false).unwrap()).await.unwrap();
        assert_eq!(read_status(&mut recv).await.unwrap().0, 1);
        assert_eq!(body.status().await.0, 1, "paired");
        // A few bytes must arrive without more behind them (no buffering).
        recv.write_all(b"ping").await.unwrap();
        body.fill(4).await;
        assert_eq!(body.body, b"ping");
        let data: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
        recv.write_all(&data).await.unwrap();
        recv.shutdown().await.unwrap();
        body.fill(usize::MAX).await;
        assert!(body.complete && body.body[4..] == data[..], "TCP to browser over HTTPS ({} bytes)", body.body.len());
        tx.send(Message::Binary(b"pong".to_vec().into())).await.unwrap();
        let mut pong = [0u8; 4];
        recv.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"pong");
    })
    .await
    .expect("in time");
}
