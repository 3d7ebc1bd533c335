//! Hello-phase admission under attack (PROTOCOL.md §9.5): connections that
//! send no hello give their slot to newer ones, and a refused connection
//! lingers without one. Loopback only, every test bounded.

use std::time::Duration;

use pqdrop_relay::{hello_bytes, read_status, Relay, RelayConfig, Role};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

async fn start(config: RelayConfig) -> (std::net::SocketAddr, pqdrop_relay::StatsHandle) {
    let relay = Relay::bind("127.0.0.1:0".parse().unwrap(), config).await.expect("bind");
    let (addr, stats) = (relay.local_addr(), relay.stats());
    tokio::spawn(relay.run(std::future::pending()));
    (addr, stats)
}

fn cfg(slots: usize) -> RelayConfig {
    RelayConfig {
        join_rate_per_sec: 1000.0,
        join_burst: 1000,
        max_handshakes: slots,
        max_handshakes_per_ip: 100,
        hello_evict_after: Duration::from_millis(200),
        ..RelayConfig::default()
    }
}

async fn status(s: &mut TcpStream) -> u64 {
    timeout(Duration::from_secs(10), read_status(s)).await.expect("status in time").expect("status").0
}

/// Pairs two peers on `np`; both must see "paired".
async fn honest_pair(addr: std::net::SocketAddr, np: &str) {
    let mut a = TcpStream::connect(addr).await.unwrap();
    a.write_all(&hello_bytes(np, Role::Sender).unwrap()).await.unwrap();
    assert_eq!(status(&mut a).await, 0, "the honest sender waits");
    let mut b = TcpStream::connect(addr).await.unwrap();
    b.write_all(&hello_bytes(np, Role::Receiver).unwrap()).await.unwrap();
    assert_eq!(status(&mut b).await, 1);
    assert_eq!(status(&mut a).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_give_their_slots_to_new_ones() {
    timeout(LIMIT, async {
        let (addr, stats) = start(cfg(4)).await;
        // Four connections that never send a hello hold every slot.
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Young ones are not evicted: the next connection is refused (18).
        let mut early = TcpStream::connect(addr).await.unwrap();
        assert_eq!(status(&mut early).await, 18);
        // Once they have had their time, honest peers get in.
        tokio::time::sleep(Duration::from_millis(250)).await;
        honest_pair(addr, "7").await;
        // The oldest silent one gave its slot to the honest sender (whose own
        // slot the receiver then took) and was told why, at once.
        let told = timeout(Duration::from_secs(1), read_status(&mut silent[0])).await.expect("told at once").expect("status");
        assert_eq!(told.0, 21, "{}", told.1);
        let snap = stats.snapshot();
        assert_eq!(snap.hello_evictions, 1, "{snap:?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_lingers_without_a_slot() {
    timeout(LIMIT, async {
        let (addr, _) = start(RelayConfig { hello_evict_after: Duration::from_secs(60), ..cfg(2) }).await;
        // Two bad hellos, kept open (the relay lingers on them for 2 s).
        let mut bad = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            assert_eq!(status(&mut s).await, 21);
            bad.push(s);
        }
        // Both slots are free again at once.
        honest_pair(addr, "8").await;
    })
    .await
    .expect("test timed out");
}

/// Connects from `from` (a loopback source address of the test's choosing).
async fn connect_from(from: [u8; 4], to: std::net::SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((std::net::Ipv4Addr::from(from), 0).into()).expect("bind a loopback source address");
    sock.connect(to).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_rooms_are_capped_per_network() {
    timeout(LIMIT, async {
        let (addr, _) = start(RelayConfig { max_pending_per_net: 2, ..cfg(64) }).await;
        let mut held = Vec::new();
        for (i, host) in [1u8, 2].into_iter().enumerate() {
            let mut s = connect_from([127, 0, 9, host], addr).await;
            s.write_all(&hello_bytes(&(300 + i).to_string(), Role::Sender).unwrap()).await.unwrap();
            assert_eq!(status(&mut s).await, 0);
            held.push(s);
        }
        // A third address of the same /24 is refused; another /24 is not.
        let mut s = connect_from([127, 0, 9, 3], addr).await;
        s.write_all(&hello_bytes("302", Role::Sender).unwrap()).await.unwrap();
        let (code, msg) = timeout(Duration::from_secs(10), read_status(&mut s)).await.unwrap().unwrap();
        assert_eq!(code, 17, "{msg}");
        assert!(msg.contains("your network"), "{msg}");
        let mut s = connect_from([127, 0, 10, 1], addr).await;
        s.write_all(&hello_bytes("303", Role::Sender).unwrap()).await.unwrap();
        assert_eq!(status(&mut s).await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_in_the_hello_phase_are_capped_per_network() {
    timeout(LIMIT, async {
        let (addr, _) = start(RelayConfig { max_handshakes_per_net: 2, hello_evict_after: Duration::from_secs(60), ..cfg(64) }).await;
        let _a = connect_from([127, 0, 11, 1], addr).await;
        let _b = connect_from([127, 0, 11, 2], addr).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = connect_from([127, 0, 11, 3], addr).await;
        assert_eq!(status(&mut c).await, 19, "a third silent connection from the /24");
        let mut d = connect_from([127, 0, 12, 1], addr).await;
        d.write_all(&hello_bytes("304", Role::Sender).unwrap()).await.unwrap();
        assert_eq!(status(&mut d).await, 0, "another /24 is not affected");
    })
    .await
    .expect("test timed out");
}
