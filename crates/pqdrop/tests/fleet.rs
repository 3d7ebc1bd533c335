//! A relay fleet: three real `pqdrop relay` instances sharing one real
//! `redis-server`, each test with its own Redis on a free loopback port.
//!
//! Peers are the real `pqdrop` binary where a transfer is checked, and raw
//! relay-protocol clients (PROTOCOL.md §9) where many rooms are needed at once
//! or where the relay's answers themselves are the point. Raw clients bind
//! their own source addresses in 127.0.0.0/8 where per-address limits are
//! tested. Instances run with a 3 s room lease so that expiry is tested in
//! seconds.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream as StdTcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pqdrop_relay::{hello_v2_bytes, read_status, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The lease the test instances use (`--fleet-lease`).
const LEASE: Duration = Duration::from_secs(3);
const BIG: Duration = Duration::from_secs(240);

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> u16 {
    TcpListener::bind((LOOPBACK, 0)).and_then(|l| l.local_addr()).expect("probe a free TCP port").port()
}

/// A `redis-server` of this test's own, on loopback, with no persistence.
struct Redis {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let mut r = Redis { port: free_tcp_port(), child: None, dir: temp_dir("pqdrop-redis-") };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers PING.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}): install it (Debian: apt-get install redis-server); .ci/run does"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.pings() {
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING within 20 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = StdTcpStream::connect((LOOPBACK, self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three instances (or more) of one fleet, and the harness whose `send`
/// and `receive` the transfers use.
struct Fleet {
    h: Harness,
    redis: Redis,
    addrs: Vec<SocketAddr>,
    /// Each instance's `--metrics` address.
    metrics: Vec<SocketAddr>,
    procs: Vec<Proc>,
    /// With [`Fleet::start_web`]: each instance's `--web` address.
    webs: Vec<SocketAddr>,
}

impl Fleet {
    fn start(n: usize, extra: &[&str]) -> Fleet {
        Fleet::start_with(n, extra, None)
    }

    /// Instances that also serve the page (`--web`, files from `root`).
    fn start_web(n: usize, root: &std::path::Path) -> Fleet {
        Fleet::start_with(n, &[], Some(root))
    }

    fn start_with(n: usize, extra: &[&str], web_root: Option<&std::path::Path>) -> Fleet {
        let h = Harness::new(Net::Lan);
        let redis = Redis::start();
        let mut f = Fleet { h, redis, addrs: Vec::new(), metrics: Vec::new(), procs: Vec::new(), webs: Vec::new() };
        for i in 0..n {
            let addr: SocketAddr = (Ipv4Addr::LOCALHOST, free_tcp_port()).into();
            let metrics: SocketAddr = (Ipv4Addr::LOCALHOST, free_tcp_port()).into();
            let mut web_args = Vec::new();
            if let Some(root) = web_root {
                let web: SocketAddr = (Ipv4Addr::LOCALHOST, free_tcp_port()).into();
                web_args = vec!["--web".to_string(), web.to_string(), "--web-root".into(), path_str(root).to_string()];
                f.webs.push(web);
            }
            let mut p =
                f.h.command("relay")
                    .args(["--listen", &addr.to_string(), "--advertise", &addr.to_string(), "--redis", &f.redis.url()])
                    .args(["--metrics", &metrics.to_string()])
                    .args(["--fleet-lease", &LEASE.as_secs().to_string()])
                    .args(extra)
                    .args(web_args.iter().map(String::as_str))
                    .spawn(&format!("instance {}", i + 1));
            p.wait_for_stderr_line("pqdrop relay listening on ", Duration::from_secs(30));
            p.wait_for_stderr_line("relay directory (Redis) connected", Duration::from_secs(30));
            f.addrs.push(addr);
            f.metrics.push(metrics);
            f.procs.push(p);
        }
        f
    }

    /// `pqdrop send --relay INSTANCE`.
    fn send(&self, i: usize) -> Spawn {
        self.h.command("send").args(["--relay", &self.addrs[i].to_string()])
    }

    fn receive(&self, i: usize) -> Spawn {
        self.h.command("receive").args(["--relay", &self.addrs[i].to_string()])
    }
}

/// `GET path` from instance `i`'s metrics server: (status line, body).
fn http_get(f: &Fleet, i: usize, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = StdTcpStream::connect(f.metrics[i]).expect("connect to --metrics");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

/// The value of metric line `name` (with its labels) in a Prometheus text body.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// A raw relay client: connects to `to` from source address `from`, sends a
/// version-2 hello and returns the stream with the first status.
async fn hello(to: SocketAddr, from: Ipv4Addr, nameplate: Option<&str>, role: Role) -> (TcpStream, u64, String) {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind((from, 0).into()).expect("bind a loopback source address");
    let mut s = tokio::time::timeout(Duration::from_secs(10), sock.connect(to)).await.expect("connect in time").expect("connect");
    s.write_all(&hello_v2_bytes(nameplate, role, false).expect("hello")).await.expect("send hello");
    let (code, msg) = next_status(&mut s).await;
    (s, code, msg)
}

async fn next_status(s: &mut TcpStream) -> (u64, String) {
    tokio::time::timeout(Duration::from_secs(10), read_status(s)).await.expect("a status within 10 s").expect("a status")
}

/// Allocates a room as a sender: returns the stream (waiting) and nameplate.
async fn allocate(to: SocketAddr, from: Ipv4Addr) -> (TcpStream, String) {
    let (mut s, code, np) = hello(to, from, None, Role::Sender).await;
    assert_eq!(code, 2, "allocation answered with {code}: {np}");
    let (code, msg) = next_status(&mut s).await;
    assert_eq!(code, 0, "after the allocation: {code} {msg}");
    (s, np)
}

/// Parses `Code: N-word-word` from a sender's stderr.
fn code_of(p: &mut Proc) -> String {
    let line = p.wait_for_stderr_line("Code: ", Duration::from_secs(30));
    line.trim().trim_start_matches("Code: ").to_string()
}

/// 64 MiB from a sender on instance 1 to a receiver on instance 3, in both
/// orders of arrival: the second peer always reaches the "wrong" instance
/// first and is redirected.
#[test]
fn transfer_across_instances_in_both_orders() {
    let f = Fleet::start(3, &[]);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("big.bin");
    write_pseudo_random_file(&file, 64, 64 * MIB as u64);

    // Sender first: the nameplate comes from the fleet (the smallest free).
    let out = temp_dir("pqdrop-out-");
    let mut s = f.send(0).arg(&file).spawn("sender");
    let code = code_of(&mut s);
    assert!(code.starts_with("1-"), "the first room of a fresh fleet is nameplate 1, got {code}");
    let mut r = f.receive(2).args(["--yes", "-o", path_str(out.path()), &code]).spawn("receiver");
    let [s1, r1] = wait_all([&mut s, &mut r], BIG);
    s1.assert_code(exit::OK);
    r1.assert_code(exit::OK);
    assert_same_file(&file, &out.path().join("big.bin"));

    // Receiver first, with a chosen code; the sender reaches instance 1.
    let out = temp_dir("pqdrop-out-");
    let code = "5-lemon-tiger";
    let mut r = f.receive(2).args(["--yes", "-o", path_str(out.path()), code]).spawn("receiver");
    r.wait_for_stderr_line("Waiting", Duration::from_secs(30));
    let mut s = f.send(0).args(["--code", code]).arg(&file).spawn("sender");
    let [s2, r2] = wait_all([&mut s, &mut r], BIG);
    s2.assert_code(exit::OK);
    r2.assert_code(exit::OK);
    assert_same_file(&file, &out.path().join("big.bin"));
    let redirected: usize = f.procs.iter().map(|p| p.stderr_now().matches("redirected").count()).sum();
    assert!(redirected >= 2, "both transfers should have needed a redirect, saw {redirected}");
}

/// 1,000 allocations at once, spread over the three instances: every
/// nameplate is unique, they are the smallest ones (1..=1000, so at most 4
/// digits), and freed ones are handed out again.
#[test]
fn a_thousand_allocations_are_unique_small_and_reused() {
    let limits = [
        "--max-pending-per-ip",
        "5000",
        "--max-pending-per-net",
        "5000",
        "--join-rate",
        "100000",
        "--join-burst",
        "100000",
        "--max-handshakes-per-ip",
        "2000",
        "--max-handshakes-per-net",
        "2000",
    ];
    let f = Fleet::start(3, &limits);
    let rt = runtime();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..1000usize {
            let to = f.addrs[i % 3];
            set.spawn(allocate(to, Ipv4Addr::LOCALHOST));
        }
        let mut held = Vec::new();
        while let Some(r) = set.join_next().await {
            held.push(r.expect("allocation task"));
        }
        let nps: BTreeSet<u32> = held.iter().map(|(_, np)| np.parse().expect("decimal")).collect();
        assert_eq!(nps.len(), 1000, "nameplates must be unique");
        assert_eq!(nps, (1..=1000).collect::<BTreeSet<u32>>(), "the smallest free nameplates are handed out");

        // Free 100 rooms (every tenth); the next 100 allocations reuse them.
        let mut freed = BTreeSet::new();
        held.sort_by_key(|(_, np)| np.parse::<u32>().unwrap_or(0));
        for (s, np) in held.iter_mut().filter(|(_, np)| np.parse::<u32>().unwrap_or(0) % 10 == 0) {
            let _ = s.shutdown().await;
            freed.insert(np.parse::<u32>().unwrap_or(0));
        }
        held.retain(|(_, np)| !freed.contains(&np.parse::<u32>().unwrap_or(0)));
        // A waiting room is freed when its instance sees the connection close.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut again = BTreeSet::new();
        for i in 0..100usize {
            let (s, np) = allocate(f.addrs[i % 3], Ipv4Addr::LOCALHOST).await;
            again.insert(np.parse::<u32>().expect("decimal"));
            held.push((s, np));
        }
        assert_eq!(again, freed, "freed nameplates are reused first");
    });
}

/// Two senders claim one nameplate at two instances at the same moment:
/// exactly one owns the room, the other is told it is taken (16).
#[test]
fn two_claims_at_two_instances_one_owner() {
    let f = Fleet::start(2, &["--max-pending-per-ip", "100", "--join-burst", "200"]);
    let rt = runtime();
    rt.block_on(async {
        for n in 0..30u32 {
            let np = (100 + n).to_string();
            let (a, b) = tokio::join!(
                hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some(&np), Role::Sender),
                hello(f.addrs[1], Ipv4Addr::LOCALHOST, Some(&np), Role::Sender)
            );
            let mut codes = [a.1, b.1];
            codes.sort_unstable();
            assert_eq!(codes, [0, 16], "nameplate {np}: one waits, one is refused ({} / {})", a.2, b.2);
        }
        // A version-1 client cannot follow a redirect: it is told so (25).
        let (_w, code, _) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some("900"), Role::Sender).await;
        assert_eq!(code, 0);
        let mut old = TcpStream::connect(f.addrs[1]).await.expect("connect");
        old.write_all(&pqdrop_relay::hello_bytes("900", Role::Receiver).expect("hello")).await.expect("hello");
        let (code, msg) = next_status(&mut old).await;
        assert_eq!(code, 25, "{msg}");
        assert!(msg.contains("update pqdrop"), "{msg}");
    });
}

/// Contact rooms (PROTOCOL.md §9.1 flag 2) across the fleet: a receiver
/// waits in one at instance 1, a sender reaches instance 2, is redirected and
/// pairs; a second contact room never meets the first; a contact room never
/// takes a nameplate (a fresh allocation still gets nameplate 1), and the same
/// role twice is refused as room taken.
#[test]
fn contact_rooms_pair_across_instances_and_take_no_nameplate() {
    let f = Fleet::start(3, &[]);
    let rt = runtime();
    rt.block_on(async {
        let room: [u8; 16] = core::array::from_fn(|i| 0xa0 ^ i as u8);
        let other: [u8; 16] = core::array::from_fn(|i| 0x50 ^ i as u8);
        let (tx, waiting) = tokio::sync::oneshot::channel();
        let a0 = f.addrs[0].to_string();
        let receiver = tokio::spawn(async move {
            pqdrop_relay::rendezvous_contact(
                &a0,
                room,
                Role::Receiver,
                move || {
                    let _ = tx.send(());
                },
                Default::default(),
            )
            .await
        });
        tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the receiver waits in time").expect("waiting");
        let (mut stranger, code, msg) = contact_hello(f.addrs[2], &other, Role::Sender).await;
        assert_eq!(code, 0, "another contact room waits on its own: {msg}");
        let (_twice, code, msg) = contact_hello(f.addrs[1], &room, Role::Receiver).await;
        assert_eq!(code, 16, "{msg}");
        assert!(msg.contains("contact room"), "{msg}");
        let (_alloc, np) = allocate(f.addrs[2], Ipv4Addr::LOCALHOST).await;
        assert_eq!(np, "1", "contact rooms must not take nameplates");

        let mut sender = pqdrop_relay::rendezvous_contact(&f.addrs[1].to_string(), room, Role::Sender, || {}, Default::default())
            .await
            .expect("the sender pairs through a redirect");
        let mut receiver = receiver.await.expect("task").expect("the receiver pairs");
        sender.write_all(b"hello over a contact room").await.expect("write");
        let mut got = [0u8; 25];
        tokio::time::timeout(Duration::from_secs(10), receiver.read_exact(&mut got)).await.expect("in time").expect("read");
        assert_eq!(&got, b"hello over a contact room");
        let mut b = [0u8; 1];
        assert!(tokio::time::timeout(Duration::from_millis(300), stranger.read(&mut b)).await.is_err(), "the other room stays quiet");
    });
    let redirected: usize = f.procs.iter().map(|p| p.stderr_now().matches("redirected").count()).sum();
    assert!(redirected >= 1, "the sender should have been redirected");
}

async fn contact_hello(to: SocketAddr, room: &[u8; 16], role: Role) -> (TcpStream, u64, String) {
    let mut s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(to)).await.expect("connect in time").expect("connect");
    s.write_all(&pqdrop_relay::hello_contact_bytes(room, role, false)).await.expect("send hello");
    let (code, msg) = next_status(&mut s).await;
    (s, code, msg)
}

/// `kill -9` of an instance with waiting peers: they see a clear error, its
/// rooms are free within the lease, and the other instances pair as before.
#[test]
fn a_killed_instance_frees_its_rooms_within_the_lease() {
    let mut f = Fleet::start(3, &["--max-pending-per-ip", "100", "--join-burst", "200"]);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("note.txt");
    std::fs::write(&file, b"hello fleet").expect("write");
    // A real sender waiting on instance 2, and raw rooms there too.
    let mut waiting = f.send(1).arg(&file).spawn("sender on instance 2");
    let code = code_of(&mut waiting);
    let rt = runtime();
    let held: Vec<String> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..5 {
            let (s, np) = allocate(f.addrs[1], Ipv4Addr::LOCALHOST).await;
            std::mem::forget(s); // keep them open until the instance dies
            v.push(np);
        }
        v
    });
    let killed_at = Instant::now();
    f.procs[1].kill();
    let gone = waiting.wait(Duration::from_secs(20));
    gone.assert_code(exit::UNREACHABLE);
    assert!(gone.stderr.contains("closed the connection before pairing"), "stderr: {}", gone.stderr);

    // Each room is free again (claimable at instance 1) within the lease
    // plus one renewal period.
    let nameplate = code.split('-').next().unwrap_or_default().to_string();
    rt.block_on(async {
        for np in held.iter().chain(std::iter::once(&nameplate)) {
            loop {
                let (_s, status, msg) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some(np), Role::Receiver).await;
                if status == 0 {
                    break;
                }
                assert!(
                    killed_at.elapsed() < LEASE + LEASE / 5 + Duration::from_secs(2),
                    "room {np} still taken {:?} after the kill: {status} {msg}",
                    killed_at.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // Pairing through the surviving instances works.
    let out = temp_dir("pqdrop-out-");
    let mut s = f.send(0).arg(&file).spawn("sender");
    let code = code_of(&mut s);
    let mut r = f.receive(2).args(["--yes", "-o", path_str(out.path()), &code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], Duration::from_secs(60));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(std::fs::read(out.path().join("note.txt")).expect("received"), b"hello fleet");
}

/// Redis stops: new rooms are refused at once with status 24, a paired
/// session keeps moving bytes; Redis starts again: the instances serve again
/// by themselves, and a room that waited through the outage is kept.
#[test]
fn redis_down_then_back() {
    let mut f = Fleet::start(2, &["--max-pending-per-ip", "100", "--join-burst", "200"]);
    let rt = runtime();
    rt.block_on(async {
        // A paired session (both peers on instance 1) and a waiting room.
        let (mut a, code, _) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some("77"), Role::Sender).await;
        assert_eq!(code, 0);
        let (mut b, code, _) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some("77"), Role::Receiver).await;
        assert_eq!(code, 1);
        assert_eq!(next_status(&mut a).await.0, 1);
        let (mut w, code, _) = hello(f.addrs[1], Ipv4Addr::LOCALHOST, Some("88"), Role::Sender).await;
        assert_eq!(code, 0);

        assert_eq!(http_get(&f, 0, "/healthz").0, "HTTP/1.1 200 OK");
        f.redis.stop();
        let t0 = Instant::now();
        let (_s, code, msg) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some("99"), Role::Sender).await;
        assert_eq!(code, 24, "a new room while Redis is down: {msg}");
        let (line, _) = http_get(&f, 0, "/healthz");
        assert_eq!(line, "HTTP/1.1 503 Service Unavailable", "health while Redis is down");
        let (_, body) = http_get(&f, 0, "/metrics");
        assert_eq!(metric(&body, "pqdrop_relay_directory_up"), 0.0);
        assert!(metric(&body, "pqdrop_relay_refusals_total{code=\"24\"}") >= 1.0);
        assert_eq!(metric(&body, "pqdrop_relay_sessions_active"), 1.0);
        assert!(msg.contains("relay directory unavailable"), "{msg}");
        assert!(t0.elapsed() < Duration::from_secs(5), "the refusal took {:?}", t0.elapsed());
        // The running session is untouched.
        for round in 0..20u8 {
            a.write_all(&[round; 1000]).await.expect("a writes");
            let mut got = [0u8; 1000];
            tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut got)).await.expect("in time").expect("b reads");
            assert!(got.iter().all(|&x| x == round));
        }

        let connected = |p: &Proc| p.stderr_now().matches("relay directory (Redis) connected").count();
        f.redis.restart();
        // Both instances reconnect by themselves (backoff at most 5 s), and
        // renew their rooms at once.
        let deadline = Instant::now() + Duration::from_secs(15);
        while connected(&f.procs[0]) < 2 || connected(&f.procs[1]) < 2 {
            assert!(Instant::now() < deadline, "the instances did not reconnect within 15 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Serving again within the reconnect backoff (at most 5 s) and a renewal.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (_s, code, msg) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some("99"), Role::Sender).await;
            if code == 0 {
                break;
            }
            assert_eq!(code, 24, "{msg}");
            assert!(Instant::now() < deadline, "still refusing 15 s after Redis came back");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The room that waited through the outage was taken back: its receiver,
        // arriving at the other instance, is sent there and pairs.
        let (mut r, code, msg) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some("88"), Role::Receiver).await;
        assert_eq!((code, msg.as_str()), (3, f.addrs[1].to_string().as_str()), "room 88 is registered again, at instance 2");
        let _ = r.shutdown().await;
        let mut r = {
            let sock = TcpSocket::new_v4().expect("socket");
            let mut s = sock.connect(f.addrs[1]).await.expect("connect");
            s.write_all(&hello_v2_bytes(Some("88"), Role::Receiver, true).expect("hello")).await.expect("hello");
            s
        };
        assert_eq!(next_status(&mut r).await.0, 1, "the redirected receiver pairs");
        assert_eq!(next_status(&mut w).await.0, 1, "the waiting sender pairs");
        assert_eq!(http_get(&f, 0, "/healthz").0, "HTTP/1.1 200 OK");
        let (_, body) = http_get(&f, 0, "/metrics");
        assert_eq!(metric(&body, "pqdrop_relay_directory_up"), 1.0);
        assert!(metric(&body, "pqdrop_relay_redirects_total") >= 1.0);
        assert!(metric(&body, "pqdrop_relay_directory_rtt_seconds_count") >= 1.0);
    });
}

/// Per-address limits count across the fleet: waiting rooms per address and
/// the join rate.
#[test]
fn per_address_limits_hold_across_the_fleet() {
    let f = Fleet::start(3, &["--max-pending-per-ip", "3", "--join-rate", "0.01", "--join-burst", "8"]);
    let rt = runtime();
    rt.block_on(async {
        let a = Ipv4Addr::new(127, 0, 3, 1);
        let mut held = Vec::new();
        for i in 0..3usize {
            held.push(allocate(f.addrs[i], a).await);
        }
        let (_s, code, msg) = hello(f.addrs[0], a, None, Role::Sender).await;
        assert_eq!(code, 17, "a fourth waiting room from one address, on another instance: {msg}");
        // Another address is not affected.
        let b = Ipv4Addr::new(127, 0, 4, 1);
        held.push(allocate(f.addrs[1], b).await);

        // Join rate: 8 joins in all from one address, whichever instances.
        let c = Ipv4Addr::new(127, 0, 5, 1);
        let mut refused = 0;
        for i in 0..9usize {
            let np = (500 + i).to_string();
            let (s, code, msg) = hello(f.addrs[i % 3], c, Some(&np), Role::Receiver).await;
            match code {
                0 => held.push((s, np)),
                19 => refused += 1,
                17 => {} // three rooms from c already wait
                _ => panic!("join {i}: {code} {msg}"),
            }
        }
        // Joins 1-3 wait, 4-8 hit the pending limit (17) but still count as
        // joins, the 9th is over the fleet-wide burst of 8.
        assert_eq!(refused, 1, "exactly the ninth join is over the fleet-wide rate");
    });
}

/// SIGTERM drains an instance: its waiting peers are told (22) and its rooms
/// are free at once (not after the lease), a running transfer finishes, and
/// the instance exits once it has.
#[test]
fn sigterm_drains_an_instance() {
    let mut f = Fleet::start(2, &["--max-pending-per-ip", "100", "--join-burst", "200", "--shutdown-grace", "20"]);
    let rt = runtime();
    rt.block_on(async {
        let (mut w, np) = allocate(f.addrs[1], Ipv4Addr::LOCALHOST).await;
        let (mut a, code, _) = hello(f.addrs[1], Ipv4Addr::LOCALHOST, Some("61"), Role::Sender).await;
        assert_eq!(code, 0);
        let (mut b, code, _) = hello(f.addrs[1], Ipv4Addr::LOCALHOST, Some("61"), Role::Receiver).await;
        assert_eq!(code, 1);
        assert_eq!(next_status(&mut a).await.0, 1);

        let pid = f.procs[1].pid();
        let term = Command::new("/bin/sh").arg("-c").arg(format!("kill -TERM {pid}")).status().expect("kill -TERM");
        assert!(term.success());
        assert_eq!(next_status(&mut w).await.0, 22, "the waiting peer is told the relay is shutting down");
        let t0 = Instant::now();
        loop {
            let (_s, code, msg) = hello(f.addrs[0], Ipv4Addr::LOCALHOST, Some(&np), Role::Receiver).await;
            if code == 0 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(2), "room {np} not freed at once on SIGTERM: {code} {msg}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The running session goes on while the instance drains.
        for round in 0..10u8 {
            a.write_all(&[round; 4096]).await.expect("a writes");
            let mut got = [0u8; 4096];
            tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut got)).await.expect("in time").expect("b reads");
            assert!(got.iter().all(|&x| x == round));
        }
        let _ = a.shutdown().await;
        let _ = b.shutdown().await;
        drop((a, b));
    });
    let done = f.procs[1].wait(Duration::from_secs(15));
    done.assert_code(0);
}

/// A browser peer (a WebSocket, PROTOCOL.md §9.8) that reaches the wrong
/// instance is redirected to the other instance's page, follows it and pairs
/// with the TCP sender waiting there; a TCP peer is still sent to the TCP
/// address.
#[test]
fn a_websocket_peer_is_redirected_to_the_other_instance_page() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let root = temp_dir("pqdrop-page-");
    std::fs::write(root.path().join("index.html"), "<!doctype html>").unwrap();
    let f = Fleet::start_web(2, root.path());
    {
        // The page may follow a redirect to another instance's WebSocket.
        use std::io::{Read, Write};
        let mut c = StdTcpStream::connect(f.webs[0]).expect("connect to --web");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        write!(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
        let mut resp = String::new();
        c.read_to_string(&mut resp).expect("response");
        assert!(resp.contains("connect-src 'self' ws: wss:;"), "{resp}");
    }
    // Let both instances advertise their pages (renewed every lease / 5).
    std::thread::sleep(LEASE);
    runtime().block_on(async {
        tokio::time::timeout(BIG, async {
            let (mut sender, np) = allocate(f.addrs[0], Ipv4Addr::LOCALHOST).await;
            let (_tcp, code, to) = hello(f.addrs[1], Ipv4Addr::LOCALHOST, Some(&np), Role::Receiver).await;
            assert_eq!((code, to.as_str()), (3, f.addrs[0].to_string().as_str()), "a TCP peer goes to the TCP address");

            let np = np.as_str();
            let ws_hello = |web: SocketAddr, redirected: bool| async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{web}/ws")).await.expect("WebSocket");
                let h = hello_v2_bytes(Some(np), Role::Receiver, redirected).expect("hello");
                ws.send(Message::Binary(h.into())).await.expect("hello sent");
                let mut buf = Vec::new();
                let status = loop {
                    let mut cur: &[u8] = &buf;
                    if let Ok(Ok(st)) = tokio::time::timeout(Duration::from_millis(5), read_status(&mut cur)).await {
                        let used = buf.len() - cur.len();
                        buf.drain(..used);
                        break st;
                    }
                    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message in time") {
                        Some(Ok(Message::Binary(b))) => buf.extend_from_slice(&b),
                        other => panic!("unexpected {other:?}"),
                    }
                };
                (ws, status)
            };
            let (_first, (code, page)) = ws_hello(f.webs[1], false).await;
            assert_eq!((code, page.clone()), (3, format!("http://{}/", f.webs[0])), "a browser goes to the page");
            let (mut ws, (code, _)) = ws_hello(f.webs[0], true).await;
            assert_eq!(code, 1, "paired after the redirect");
            assert_eq!(next_status(&mut sender).await.0, 1);
            sender.write_all(b"from the sender").await.unwrap();
            ws.send(Message::Binary(b"from the browser".to_vec().into())).await.unwrap();
            let mut got = [0u8; 16];
            sender.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"from the browser");
            let mut back = Vec::new();
            while back.len() < 15 {
                match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("in time") {
                    Some(Ok(Message::Binary(b))) => back.extend_from_slice(&b),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(back, b"from the sender");
        })
        .await
        .expect("in time");
    });
}
