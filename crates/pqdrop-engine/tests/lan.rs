//! LAN discovery tests.
//!
//! Every packet these tests send stays on loopback (`127.x`, `::1`) or inside
//! network namespaces the test creates itself: the host has a real interface,
//! and a test must never announce on it. Hence no test here uses `0.0.0.0`.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pqdrop_engine::lan::{self, Announcement, LanConfig, LanListener, ANNOUNCE_LEN};
use pqdrop_engine::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A discovery port nobody else uses right now: each test gets its own, so
/// tests running in parallel never hear each other's announcements.
fn free_udp_port(ip: IpAddr) -> u16 {
    let s = StdUdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind probe socket");
    s.local_addr().expect("probe addr").port()
}

fn loopback_cfg(ip: IpAddr) -> LanConfig {
    LanConfig { bind: ip, port: free_udp_port(ip) }
}

/// Bounds every await in the tests so a bug fails a test instead of hanging it.
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut).await.unwrap_or_else(|_| panic!("{what} took longer than 20 s"))
}

/// Sends `msg` each way and checks it arrives, proving the two ends are
/// connected to each other.
async fn exchange(sender: &mut TcpStream, receiver: &mut TcpStream) {
    receiver.write_all(b"ping from receiver").await.expect("write");
    let mut buf = [0u8; 18];
    sender.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping from receiver");
    sender.write_all(b"pong from sender").await.expect("write");
    let mut buf = [0u8; 16];
    receiver.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"pong from sender");
}

/// Runs a full discovery + connect + byte exchange on the given loopback cfg.
async fn roundtrip(cfg: LanConfig, nameplate: &str) {
    let listener = LanListener::bind(&cfg, nameplate).await.expect("bind sender");
    let listen_addr = listener.local_addr();
    assert_eq!(listen_addr.ip(), cfg.bind, "TCP listener binds the configured address");
    let np = nameplate.to_owned();
    let finder = tokio::spawn(async move { lan::find(&cfg, &np, Duration::from_secs(10)).await });
    let (mut s, peer) = bounded("accept", listener.accept()).await.expect("accept");
    let mut r = bounded("find", finder).await.expect("join").expect("find");
    assert_eq!(r.peer_addr().expect("peer"), listen_addr);
    assert_eq!(r.local_addr().expect("local"), peer);
    assert!(s.nodelay().expect("nodelay") && r.nodelay().expect("nodelay"));
    exchange(&mut s, &mut r).await;
}

#[tokio::test]
async fn loopback_v4_discovery_and_bytes() {
    roundtrip(loopback_cfg(LOCALHOST), "7").await;
}

#[tokio::test]
async fn other_loopback_address() {
    // All of 127.0.0.0/8 is loopback on Linux; other systems may only have
    // 127.0.0.1 configured, so skip if the address cannot be bound.
    let ip = IpAddr::V4(Ipv4Addr::new(127, 45, 0, 9));
    if StdUdpSocket::bind(SocketAddr::new(ip, 0)).is_err() {
        eprintln!("skip: {ip} is not usable on this host");
        return;
    }
    roundtrip(loopback_cfg(ip), "65535").await;
}

#[tokio::test]
async fn loopback_v6_discovery_and_bytes() {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if StdUdpSocket::bind(SocketAddr::new(ip, 0)).is_err() || std::net::TcpListener::bind(SocketAddr::new(ip, 0)).is_err() {
        eprintln!("skip: IPv6 loopback (::1) is not available on this host");
        return;
    }
    roundtrip(loopback_cfg(ip), "31").await;
}

#[tokio::test]
async fn different_nameplate_times_out() {
    let cfg = loopback_cfg(LOCALHOST);
    let _sender = LanListener::bind(&cfg, "7").await.expect("bind sender");
    let start = Instant::now();
    let res = lan::find(&cfg, "8", Duration::from_millis(700)).await;
    match res {
        Err(Error::LanNotFound { nameplate, secs }) => {
            assert_eq!(nameplate, "8");
            assert_eq!(secs, 1, "0.7 s rounds up for the message");
        }
        other => panic!("expected LanNotFound, got {other:?}"),
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(650), "returned early: {took:?}");
    assert!(took < Duration::from_secs(5), "timeout not honoured: {took:?}");
}

#[tokio::test]
async fn nobody_there_times_out() {
    let cfg = loopback_cfg(LOCALHOST);
    let res = lan::find(&cfg, "7", Duration::from_millis(300)).await;
    assert!(matches!(res, Err(Error::LanNotFound { .. })), "{res:?}");
}

/// A TCP port on `ip` with (very likely) nothing listening: bind, note, close.
fn closed_tcp_port(ip: IpAddr) -> u16 {
    let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

/// Datagrams that must all be ignored: noise, near-misses of the format, and a
/// well-formed announcement for the right nameplate whose port is closed (the
/// receiver must try it, fail, and keep listening).
fn garbage(nameplate: &str, dead_port: u16) -> Vec<Vec<u8>> {
    let good = Announcement::new(nameplate, 4242, [7; 8]).expect("valid").encode();
    let with = |i: usize, v: u8| {
        let mut w = good.clone();
        w[i] = v;
        w
    };
    let mut long = good.to_vec();
    long.push(0);
    vec![
        Vec::new(),
        b"hello".to_vec(),
        vec![0xff; ANNOUNCE_LEN],
        vec![0xa5; 1400],
        good[..ANNOUNCE_LEN - 1].to_vec(),
        long,
        with(0, b'p'),  // magic
        with(10, 99),   // version
        with(11, 0),    // nameplate length
        with(11, 200),  // nameplate length
        with(12, b'x'), // nameplate not a digit
        with(21, b'1'), // padding
        with(10, 2),    // version 2 (a contact room) at the length of version 1
        {
            let mut w = good.clone();
            w.resize(37, 0);
            w[10] = 1; // version 1 at the length of version 2
            w
        },
        {
            let mut w = good.clone();
            w[22] = 0;
            w[23] = 0; // port 0
            w.to_vec()
        },
        Announcement::new("99", 4242, [1; 8]).expect("valid").encode().to_vec(),
        Announcement::new(nameplate, dead_port, [2; 8]).expect("valid").encode().to_vec(),
    ]
}

#[tokio::test]
async fn garbage_is_ignored_and_discovery_still_works() {
    let cfg = loopback_cfg(LOCALHOST);
    let nameplate = "55";
    let noise = garbage(nameplate, closed_tcp_port(LOCALHOST));

    let finder = tokio::spawn(async move { lan::find(&cfg, nameplate, Duration::from_secs(10)).await });
    // Flood the port with noise for a while before the real sender appears.
    let spam = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind spam");
    let dest = SocketAddr::new(cfg.bind, cfg.port);
    for _ in 0..10 {
        for d in &noise {
            spam.send_to(d, dest).expect("send garbage");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(!finder.is_finished(), "receiver gave up or connected on garbage");

    let listener = LanListener::bind(&cfg, nameplate).await.expect("bind sender");
    let listen_addr = listener.local_addr();
    let (mut s, _) = bounded("accept", listener.accept()).await.expect("accept");
    let mut r = bounded("find", finder).await.expect("join").expect("find");
    assert_eq!(r.peer_addr().expect("peer"), listen_addr);
    exchange(&mut s, &mut r).await;
}

#[tokio::test]
async fn dead_sender_only_means_not_found() {
    // Only a well-formed announcement with a closed port: connect fails, the
    // receiver keeps listening (skipping that sender) and times out cleanly.
    let cfg = loopback_cfg(LOCALHOST);
    let dead = Announcement::new("3", closed_tcp_port(LOCALHOST), [3; 8]).expect("valid").encode();
    let finder = tokio::spawn(async move { lan::find(&cfg, "3", Duration::from_millis(1500)).await });
    let spam = StdUdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind spam");
    for _ in 0..10 {
        spam.send_to(&dead, (cfg.bind, cfg.port)).expect("send");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = bounded("find", finder).await.expect("join");
    assert!(matches!(res, Err(Error::LanNotFound { .. })), "{res:?}");
}

#[tokio::test]
async fn listener_gives_up_after_max_wait() {
    let cfg = loopback_cfg(LOCALHOST);
    let l = LanListener::bind_with_max_wait(&cfg, "7", Duration::from_millis(300)).await.expect("bind");
    let err = bounded("accept", l.accept()).await.expect_err("nobody connects");
    match err {
        Error::Io { err, .. } => assert_eq!(err.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_inputs_fail_before_any_packet() {
    let cfg = loopback_cfg(LOCALHOST);
    assert!(LanListener::bind(&cfg, "7a").await.is_err());
    assert!(LanListener::bind(&cfg, "").await.is_err());
    assert!(lan::find(&cfg, "12345678901", Duration::from_millis(10)).await.is_err());
    // Non-loopback IPv6 is refused up front (no IPv6 multicast support), so
    // this sends nothing anywhere.
    let v6 = LanConfig { bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED), port: cfg.port };
    assert!(LanListener::bind(&v6, "7").await.is_err());
    assert!(lan::find(&v6, "7", Duration::from_millis(10)).await.is_err());
}

#[test]
fn config_parsing() {
    let d = LanConfig::parse(None, None).expect("defaults");
    assert_eq!(d, LanConfig::default());
    assert_eq!(d.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(d.port, lan::DEFAULT_DISCOVERY_PORT);
    assert_eq!(LanConfig::parse(Some(""), Some(" ")).expect("empty = default"), d);

    let c = LanConfig::parse(Some("127.0.0.1"), Some("5000")).expect("valid");
    assert_eq!(c.bind, LOCALHOST);
    assert_eq!(c.port, 5000);
    let c = LanConfig::parse(Some("::1"), None).expect("valid");
    assert_eq!(c.bind, IpAddr::V6(Ipv6Addr::LOCALHOST));

    for (b, p) in [
        (Some("localhost"), None),
        (Some("10.0.0.300"), None),
        (None, Some("0")),
        (None, Some("65536")),
        (None, Some("-1")),
        (None, Some("http")),
    ] {
        let err = LanConfig::parse(b, p).expect_err("must be rejected");
        let msg = err.to_string();
        let var = if b.is_some() { "PQDROP_LAN_BIND" } else { "PQDROP_LAN_PORT" };
        assert!(msg.contains(var), "error names the variable: {msg}");
    }
}

// ---------------------------------------------------------------------------
// Two network namespaces joined by a veth pair: real multicast discovery.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "PQDROP_LAN_TEST_CHILD";
const CHILD_TEST: &str = "netns_child_mode";

/// Not a test on its own: when the netns test re-runs this binary inside a
/// namespace with `PQDROP_LAN_TEST_CHILD` set, this acts as the sender or the
/// receiver and exits. In a normal run it does nothing.
#[tokio::test]
async fn netns_child_mode() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let cfg =
        LanConfig { bind: var("PQDROP_LAN_TEST_BIND").parse().expect("bind"), port: var("PQDROP_LAN_TEST_PORT").parse().expect("port") };
    let nameplate = var("PQDROP_LAN_TEST_NAMEPLATE");
    let bound = |d: u64| Duration::from_secs(d);
    match role.as_str() {
        "sender" => {
            let l = LanListener::bind_with_max_wait(&cfg, &nameplate, bound(30)).await.expect("bind sender");
            println!("sender: listening on {}", l.local_addr());
            let (mut s, peer) = l.accept().await.expect("accept");
            println!("sender: receiver connected from {peer}");
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"hello");
            s.write_all(b"world").await.expect("write");
            // Wait for the receiver to close, so it has read everything.
            let _ = tokio::time::timeout(bound(5), s.read(&mut buf)).await;
        }
        "receiver" => {
            let mut r = lan::find(&cfg, &nameplate, bound(20)).await.expect("find");
            let peer = r.peer_addr().expect("peer");
            println!("receiver: connected to {peer}");
            assert_eq!(peer.ip().to_string(), var("PQDROP_LAN_TEST_EXPECT_PEER"));
            r.write_all(b"hello").await.expect("write");
            let mut buf = [0u8; 5];
            r.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"world");
        }
        other => panic!("unknown child role {other}"),
    }
}

/// Runs a short administrative command with a time bound; returns whether it
/// succeeded, plus its combined output for diagnostics.
fn run(args: &[&str]) -> (bool, String) {
    let Ok(mut child) = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
    else {
        return (false, format!("cannot run {}", args[0]));
    };
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    let out = collect_output(&mut child);
    (status == Some(true), out)
}

fn must(args: &[&str]) {
    let (ok, out) = run(args);
    assert!(ok, "`{}` failed: {out}", args.join(" "));
}

/// Polls until the child exits or `limit` passes (then kills it). Returns
/// `Some(success)` if it exited on its own.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<bool> {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st.success()),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn collect_output(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut s);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Deletes the namespaces (and with them the veth pair) however the test ends.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let (ok, out) = run(&["ip", "netns", "del", ns]);
            if !ok {
                eprintln!("warning: could not delete netns {ns}: {out}");
            }
        }
    }
}

/// Kills a child process if the test bails out while it still runs.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0")))
        .unwrap_or(false)
}

#[test]
fn netns_veth_multicast_discovery() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !effective_uid_is_root() {
        eprintln!("skip: the netns test needs root");
        return;
    }
    if !run(&["ip", "netns", "list"]).0 {
        eprintln!("skip: `ip netns` does not work here");
        return;
    }
    let pid = std::process::id();
    let (ns_a, ns_b) = (format!("pqdrop-t{pid}-a"), format!("pqdrop-t{pid}-b"));
    // Interface names are limited to 15 bytes.
    let (veth_a, veth_b) = (format!("pqd{pid}a"), format!("pqd{pid}b"));
    let subnet = pid % 250 + 1;
    let (ip_a, ip_b) = (format!("10.213.{subnet}.1"), format!("10.213.{subnet}.2"));

    let mut guard = Namespaces(Vec::new());
    for ns in [&ns_a, &ns_b] {
        let (ok, out) = run(&["ip", "netns", "add", ns]);
        if !ok {
            eprintln!("skip: cannot create network namespaces: {out}");
            return;
        }
        guard.0.push(ns.clone());
    }
    // Created directly inside the namespaces: the pair never exists in the
    // host's namespace, so nothing here can touch the real interface.
    must(&["ip", "-n", &ns_a, "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b, "netns", &ns_b]);
    for (ns, dev, ip) in [(&ns_a, &veth_a, &ip_a), (&ns_b, &veth_b, &ip_b)] {
        must(&["ip", "-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev]);
        must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        must(&["ip", "-n", ns, "link", "set", dev, "up"]);
    }

    let exe = std::env::current_exe().expect("test binary path");
    let exe = exe.to_str().expect("utf-8 path");
    let port = lan::DEFAULT_DISCOVERY_PORT.to_string(); // fresh namespaces: free
    let spawn = |ns: &str, role: &str, bind: &str| {
        Command::new("ip")
            .args(["netns", "exec", ns, exe, "--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, role)
            .env("PQDROP_LAN_TEST_BIND", bind)
            .env("PQDROP_LAN_TEST_PORT", &port)
            .env("PQDROP_LAN_TEST_NAMEPLATE", "4711")
            .env("PQDROP_LAN_TEST_EXPECT_PEER", &ip_a)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map(Reap)
            .expect("spawn child")
    };
    // Receiver first and sender second, then the other way round would also
    // work; this order checks that an already-listening receiver is found.
    let mut receiver = spawn(&ns_b, "receiver", &ip_b);
    std::thread::sleep(Duration::from_millis(300));
    let mut sender = spawn(&ns_a, "sender", &ip_a);

    let r_ok = wait_bounded(&mut receiver.0, Duration::from_secs(40));
    let s_ok = wait_bounded(&mut sender.0, Duration::from_secs(15));
    let r_out = collect_output(&mut receiver.0);
    let s_out = collect_output(&mut sender.0);
    eprintln!("--- receiver ({ns_b}, {ip_b}) ---\n{r_out}\n--- sender ({ns_a}, {ip_a}) ---\n{s_out}");
    assert_eq!(r_ok, Some(true), "receiver failed or timed out");
    assert_eq!(s_ok, Some(true), "sender failed or timed out");
    drop(receiver);
    drop(sender);
    drop(guard);
}
