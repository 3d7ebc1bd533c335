//! Relay protocol version 2 on a single relay (PROTOCOL.md §9.3, §9.6):
//! allocated nameplates, and version negotiation both ways. Loopback only,
//! every test bounded.

use std::net::SocketAddr;
use std::time::Duration;

use pqdrop_relay::{
    hello_bytes, hello_v2_bytes, read_status, rendezvous, ClientTimeouts, Relay, RelayConfig, RelayError, Rendezvous, Role,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

fn np(s: &str) -> pqdrop_proto::code::Nameplate {
    pqdrop_proto::code::Nameplate::from_wire(s.as_bytes()).expect("a nameplate")
}

async fn start() -> SocketAddr {
    let config = RelayConfig { join_rate_per_sec: 1000.0, join_burst: 1000, max_pending_per_ip: 100, ..RelayConfig::default() };
    let relay = Relay::bind("127.0.0.1:0".parse().unwrap(), config).await.expect("bind");
    let addr = relay.local_addr();
    tokio::spawn(relay.run(std::future::pending()));
    addr
}

async fn status(s: &mut TcpStream) -> (u64, String) {
    timeout(Duration::from_secs(10), read_status(s)).await.expect("status in time").expect("status")
}

/// A raw version-2 sender asking for a nameplate: returns it, still waiting.
async fn allocate(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&hello_v2_bytes(None, Role::Sender, false).unwrap()).await.unwrap();
    let (code, np) = status(&mut s).await;
    assert_eq!(code, 2, "{np}");
    assert_eq!(status(&mut s).await.0, 0);
    (s, np)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smallest_free_nameplate_is_allocated_and_reused() {
    timeout(LIMIT, async {
        let addr = start().await;
        // A claimed room takes its number out of the pool.
        let mut claimed = TcpStream::connect(addr).await.unwrap();
        claimed.write_all(&hello_bytes("2", Role::Receiver).unwrap()).await.unwrap();
        assert_eq!(status(&mut claimed).await.0, 0);
        let (a, np_a) = allocate(addr).await;
        let (_b, np_b) = allocate(addr).await;
        let (_c, np_c) = allocate(addr).await;
        assert_eq!((np_a.as_str(), np_b.as_str(), np_c.as_str()), ("1", "3", "4"));
        drop(a);
        // The freed room is handed out again (once the relay sees the close).
        let mut got = String::new();
        for _ in 0..50 {
            let (s, np) = allocate(addr).await;
            got = np;
            if got == "1" {
                break;
            }
            drop(s);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got, "1");

        // A receiver pairs with an allocated room by its number.
        let (mut sender, np) = allocate(addr).await;
        let mut receiver = TcpStream::connect(addr).await.unwrap();
        receiver.write_all(&hello_v2_bytes(Some(&np), Role::Receiver, false).unwrap()).await.unwrap();
        assert_eq!(status(&mut receiver).await.0, 1);
        assert_eq!(status(&mut sender).await.0, 1);
        sender.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        receiver.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_learns_its_allocated_nameplate() {
    timeout(LIMIT, async {
        let addr = start().await.to_string();
        let waited = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let w = waited.clone();
        let a = addr.clone();
        let sender = tokio::spawn(async move {
            rendezvous(
                &a,
                Rendezvous::Allocate { fallback: np("999") },
                Role::Sender,
                move |n| *w.lock().unwrap() = n.to_string(),
                ClientTimeouts::default(),
            )
            .await
        });
        for _ in 0..100 {
            if !waited.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = waited.lock().unwrap().clone();
        assert_eq!(got, "1", "the relay's number, not the fallback");
        let r = rendezvous(&addr, Rendezvous::Claim(np(&got)), Role::Receiver, |_| {}, ClientTimeouts::default()).await.expect("receiver");
        let s = sender.await.unwrap().expect("sender");
        assert_eq!((s.nameplate, r.nameplate), (np("1"), np("1")));
    })
    .await
    .expect("test timed out");
}

/// A relay from before version 2: it answers any version-2 hello with status
/// 21, and serves version 1 (waiting, then paired at once).
async fn old_relay() -> (SocketAddr, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut hellos = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            hellos.push(buf[..n].to_vec());
            if buf[4] == 2 {
                let msg = b"bad hello: unsupported protocol version (this relay speaks version 1)";
                let mut out = vec![21u8, msg.len() as u8];
                out.extend_from_slice(msg);
                s.write_all(&out).await.unwrap();
            } else {
                s.write_all(b"\x00\x07waiting\x01\x06paired").await.unwrap();
                return hellos;
            }
        }
        hellos
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_falls_back_to_version_1_on_an_old_relay() {
    timeout(LIMIT, async {
        let (addr, relay) = old_relay().await;
        let mut seen = None;
        let p = rendezvous(
            &addr.to_string(),
            Rendezvous::Allocate { fallback: np("321") },
            Role::Sender,
            |n| seen = Some(n),
            ClientTimeouts::default(),
        )
        .await
        .expect("paired through the old relay");
        assert_eq!(p.nameplate, np("321"), "an old relay cannot allocate: the fallback is claimed");
        assert_eq!(seen, Some(np("321")));
        let hellos = relay.await.unwrap();
        assert_eq!(hellos, vec![hello_v2_bytes(None, Role::Sender, false).unwrap(), hello_bytes("321", Role::Sender).unwrap()]);
    })
    .await
    .expect("test timed out");
}

/// A relay that redirects to `to` every time.
async fn redirecting_relay(to: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let target = if to.is_empty() { addr.to_string() } else { to.to_string() };
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            let mut out = vec![3u8, target.len() as u8];
            out.extend_from_slice(target.as_bytes());
            let _ = s.write_all(&out).await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_once_and_checked() {
    timeout(LIMIT, async {
        // To itself: the second redirect is refused, not followed forever.
        let loops = redirecting_relay("").await;
        let e = rendezvous(&loops.to_string(), Rendezvous::Claim(np("5")), Role::Receiver, |_| {}, ClientTimeouts::default())
            .await
            .unwrap_err();
        assert!(matches!(e, RelayError::Protocol("redirected a second time")), "{e}");
        // Not host:port.
        let bad = redirecting_relay("no port here").await;
        let e =
            rendezvous(&bad.to_string(), Rendezvous::Claim(np("5")), Role::Receiver, |_| {}, ClientTimeouts::default()).await.unwrap_err();
        assert!(matches!(e, RelayError::Protocol("redirect address is not host:port")), "{e}");
    })
    .await
    .expect("test timed out");
}
