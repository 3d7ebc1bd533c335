//! A load client for `pqdrop relay` (one instance or a fleet): it speaks the
//! relay protocol of PROTOCOL.md §9 and, once paired, moves and verifies
//! bytes itself (a relay only splices after pairing, so the pqdrop handshake
//! is not needed to load it). `scripts/bench-relay.sh` drives it; see
//! BENCHMARKS.md.
//!
//! ```text
//! relay-load pairs   --relays A,B,C --pairs 1000 --mib 4 [--idle-secs 3] [--pids P1,P2,P3]
//! relay-load waiting --relays A,B,C --rooms 10000 [--pids ...]
//! relay-load attack  --relays A,B,C --kind slow|bad --attackers 128 --per-attacker 16 --honest 100 [--secs 12]
//! ```
//!
//! Honest clients spread over source addresses 127.10-249.x.1 and attackers
//! over 127.2.x.1, one /24 each, so that per-address and per-network limits
//! apply as they would on the internet. Every phase is bounded in count and in time. Output is
//! one JSON object on stdout.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pqdrop_relay::{hello_v2_bytes, read_status, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

const PHASE_LIMIT: Duration = Duration::from_secs(300);

struct Args {
    mode: String,
    relays: Vec<SocketAddr>,
    pairs: usize,
    mib: usize,
    idle_secs: u64,
    rooms: usize,
    pids: Vec<u32>,
    kind: String,
    attackers: usize,
    per_attacker: usize,
    honest: usize,
    secs: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("usage: relay-load pairs|waiting|attack --relays A,B,C ...")?;
    let mut a = Args {
        mode,
        relays: Vec::new(),
        pairs: 1000,
        mib: 4,
        idle_secs: 3,
        rooms: 10_000,
        pids: Vec::new(),
        kind: "slow".into(),
        attackers: 128,
        per_attacker: 16,
        honest: 100,
        secs: 12,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|_| format!("{flag}: not a number"));
        match flag.as_str() {
            "--relays" => {
                a.relays = v.split(',').map(|s| s.parse().map_err(|_| format!("bad relay address {s}"))).collect::<Result<_, _>>()?
            }
            "--pairs" => a.pairs = num(&v)?,
            "--mib" => a.mib = num(&v)?,
            "--idle-secs" => a.idle_secs = num(&v)? as u64,
            "--rooms" => a.rooms = num(&v)?,
            "--pids" => a.pids = v.split(',').map(|s| s.parse().map_err(|_| "bad pid".to_string())).collect::<Result<_, _>>()?,
            "--kind" => a.kind = v,
            "--attackers" => a.attackers = num(&v)?,
            "--per-attacker" => a.per_attacker = num(&v)?,
            "--honest" => a.honest = num(&v)?,
            "--secs" => a.secs = num(&v)? as u64,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.relays.is_empty() {
        return Err("--relays is required".into());
    }
    if a.pairs > 20_000 || a.rooms > 50_000 || a.attackers > 250 || a.per_attacker > 64 || a.mib > 256 {
        return Err("counts are bounded: pairs ≤ 20000, rooms ≤ 50000, attackers ≤ 250, per-attacker ≤ 64, mib ≤ 256".into());
    }
    Ok(a)
}

/// The i-th honest source address, each in a /24 of its own (as distinct
/// users are): 127.(10 + i / 250).(i % 250).1.
fn honest_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, (10 + i / 250 % 240) as u8, (i % 250) as u8, 1)
}

/// Resident memory of `pid` in KiB (VmRSS), 0 if unreadable.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn rss_all(pids: &[u32]) -> Vec<u64> {
    pids.iter().map(|&p| rss_kib(p)).collect()
}

/// Samples the peak RSS of `pids` every 50 ms until dropped.
struct PeakSampler {
    peaks: Arc<Vec<AtomicU64>>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakSampler {
    fn start(pids: &[u32]) -> PeakSampler {
        let peaks: Arc<Vec<AtomicU64>> = Arc::new(pids.iter().map(|_| AtomicU64::new(0)).collect());
        let (p, pids) = (peaks.clone(), pids.to_vec());
        let task = tokio::spawn(async move {
            loop {
                for (i, &pid) in pids.iter().enumerate() {
                    p[i].fetch_max(rss_kib(pid), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        PeakSampler { peaks, task }
    }

    fn stop(self) -> Vec<u64> {
        self.task.abort();
        self.peaks.iter().map(|a| a.load(Ordering::Relaxed)).collect()
    }
}

async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind((from, 0).into())?;
    let s = sock.connect(to).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Hello, then statuses until paired; follows one redirect. Returns the
/// stream and the nameplate; `on_room` hears the nameplate once it is ours.
async fn rendezvous(from: Ipv4Addr, to: SocketAddr, np: Option<&str>, role: Role, on_room: impl FnOnce(&str)) -> Result<TcpStream, String> {
    let mut to = to;
    let mut redirected = false;
    let mut on_room = Some(on_room);
    let mut name = np.map(str::to_owned);
    loop {
        let mut s = connect_from(from, to).await.map_err(|e| format!("connect: {e}"))?;
        s.write_all(&hello_v2_bytes(name.as_deref(), role, redirected).map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
        loop {
            let (code, msg) = read_status(&mut s).await.map_err(|e| e.to_string())?;
            match code {
                0 => {
                    if let (Some(f), Some(n)) = (on_room.take(), name.as_deref()) {
                        f(n);
                    }
                }
                1 => return Ok(s),
                2 => name = Some(msg),
                3 if !redirected => {
                    to = msg.parse().map_err(|_| format!("bad redirect {msg}"))?;
                    redirected = true;
                    break;
                }
                _ => return Err(format!("status {code}: {msg}")),
            }
        }
    }
}

/// One honest pair from source address `from`: a sender that has relay `sr`
/// allocate its room, then a receiver that claims it at relay `rr` (and is
/// redirected in a fleet). Returns both streams, paired, and the receiver's
/// pairing latency.
async fn honest_pair(from: Ipv4Addr, sr: SocketAddr, rr: SocketAddr) -> Result<(TcpStream, TcpStream, Duration), String> {
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let sender = tokio::spawn(async move {
        rendezvous(from, sr, None, Role::Sender, move |np| {
            let _ = tx.send(np.to_owned());
        })
        .await
    });
    let Ok(np) = rx.await else {
        return Err(match sender.await {
            Ok(Err(e)) => format!("sender: {e}"),
            _ => "sender got no room".to_string(),
        });
    };
    let start = Instant::now();
    let recv = rendezvous(from, rr, Some(&np), Role::Receiver, |_| {}).await?;
    let send = sender.await.map_err(|e| e.to_string())??;
    Ok((send, recv, start.elapsed()))
}

/// Deterministic bytes for pair `i`, offset `off`.
fn fill(i: usize, off: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        let x = (off + k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        *b = (x >> 29) as u8;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// N pairs across the relays: pair all, hold them idle, then move `mib` MiB
/// each way sender → receiver, verified; memory at each step.
async fn pairs(a: &Args) -> serde_json::Value {
    let n = a.pairs;
    let bytes = (a.mib as u64) << 20;
    let base = rss_all(&a.pids);
    let paired_barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let go = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut set = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..n {
        let (sr, rr) = (a.relays[i % a.relays.len()], a.relays[(i + 1) % a.relays.len()]);
        let (pb, go) = (paired_barrier.clone(), go.clone());
        set.spawn(async move {
            let r = honest_pair(honest_addr(i), sr, rr).await;
            pb.wait().await;
            let (mut send, mut recv, latency) = match r {
                Ok(v) => v,
                Err(e) => {
                    go.wait().await;
                    return Err(e);
                }
            };
            go.wait().await;
            let writer = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut off = 0u64;
                while off < bytes {
                    let k = (bytes - off).min(buf.len() as u64) as usize;
                    fill(i, off, &mut buf[..k]);
                    send.write_all(&buf[..k]).await?;
                    off += k as u64;
                }
                send.shutdown().await?;
                Ok::<_, std::io::Error>(send)
            });
            let mut got = vec![0u8; 64 * 1024];
            let mut want = vec![0u8; 64 * 1024];
            let mut off = 0u64;
            loop {
                let k = recv.read(&mut got).await.map_err(|e| e.to_string())?;
                if k == 0 {
                    break;
                }
                fill(i, off, &mut want[..k]);
                if got[..k] != want[..k] {
                    return Err(format!("pair {i}: corrupted at {off}"));
                }
                off += k as u64;
            }
            let _ = writer.await;
            if off != bytes {
                return Err(format!("pair {i}: got {off} of {bytes} bytes"));
            }
            Ok(latency)
        });
    }
    let r = timeout(PHASE_LIMIT, async {
        paired_barrier.wait().await;
        let paired_at = t0.elapsed();
        tokio::time::sleep(Duration::from_secs(a.idle_secs)).await;
        let idle = rss_all(&a.pids);
        let sampler = PeakSampler::start(&a.pids);
        let t1 = Instant::now();
        go.wait().await;
        let mut lat = Vec::new();
        let mut failures = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(l)) => lat.push(l.as_secs_f64() * 1000.0),
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(e.to_string()),
            }
        }
        let moved = t1.elapsed();
        let peak = sampler.stop();
        // Sessions end as both sides close; give the relays a moment.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_all(&a.pids);
        (paired_at, idle, peak, moved, lat, failures, after)
    })
    .await;
    let Ok((paired_at, idle, peak, moved, mut lat, failures, after)) = r else {
        return serde_json::json!({"mode": "pairs", "error": "timed out"});
    };
    lat.sort_by(f64::total_cmp);
    let ok = lat.len();
    let total_mib = (ok as f64) * a.mib as f64;
    let per =
        |v: &[u64]| -> Vec<f64> { v.iter().zip(&base).map(|(x, b)| (*x as f64 - *b as f64) * a.relays.len() as f64 / n as f64).collect() };
    serde_json::json!({
        "mode": "pairs", "pairs": n, "mib_each": a.mib, "ok": ok, "failures": failures.len(),
        "first_failures": failures.iter().take(5).collect::<Vec<_>>(),
        "pairing_all_s": paired_at.as_secs_f64(),
        "pairing_latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99)},
        "transfer_s": moved.as_secs_f64(), "throughput_mib_s": total_mib / moved.as_secs_f64(),
        "rss_kib": {"base": base, "idle_paired": idle, "peak_active": peak, "after": after},
        "kib_per_idle_session_per_instance": per(&idle),
        "kib_per_active_session_per_instance": per(&peak),
    })
}

/// `rooms` waiting rooms across the relays: the memory each takes.
async fn waiting(a: &Args) -> serde_json::Value {
    let base = rss_all(&a.pids);
    let mut held = Vec::with_capacity(a.rooms);
    let t0 = Instant::now();
    let mut failures = 0usize;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..a.rooms {
        let to = a.relays[i % a.relays.len()];
        set.spawn(async move {
            let mut s = connect_from(honest_addr(i), to).await.ok()?;
            s.write_all(&hello_v2_bytes(None, Role::Sender, false).ok()?).await.ok()?;
            let (c1, _) = read_status(&mut s).await.ok()?;
            let (c2, _) = read_status(&mut s).await.ok()?;
            (c1 == 2 && c2 == 0).then_some(s)
        });
        // Bounded concurrency of connection setup.
        if set.len() >= 512 {
            if let Some(r) = set.join_next().await {
                match r.ok().flatten() {
                    Some(s) => held.push(s),
                    None => failures += 1,
                }
            }
        }
        if t0.elapsed() > PHASE_LIMIT {
            break;
        }
    }
    while let Some(r) = set.join_next().await {
        match r.ok().flatten() {
            Some(s) => held.push(s),
            None => failures += 1,
        }
    }
    let setup = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let full = rss_all(&a.pids);
    let n = held.len();
    drop(held);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_all(&a.pids);
    let per: Vec<f64> = full.iter().zip(&base).map(|(x, b)| (*x as f64 - *b as f64) * a.relays.len() as f64 / n.max(1) as f64).collect();
    serde_json::json!({
        "mode": "waiting", "rooms": n, "failures": failures, "setup_s": setup.as_secs_f64(),
        "rss_kib": {"base": base, "waiting": full, "after": after}, "kib_per_room_per_instance": per,
    })
}

/// Attackers hold hello-phase slots (slowly dripped hellos, or bad hellos
/// kept open 3 s) while honest pairs come and go; counts honest pairs paired
/// within 1 s.
async fn attack(a: &Args) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(a.secs);
    let attempts = Arc::new(AtomicU64::new(0));
    let mut attackers = tokio::task::JoinSet::new();
    for x in 0..a.attackers {
        for c in 0..a.per_attacker {
            let to = a.relays[(x + c) % a.relays.len()];
            let from = Ipv4Addr::new(127, 2, x as u8, 1);
            let (kind, attempts) = (a.kind.clone(), attempts.clone());
            attackers.spawn(async move {
                let hello = hello_v2_bytes(Some("4242"), Role::Sender, false).unwrap_or_default();
                while Instant::now() < deadline {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    let Ok(mut s) = connect_from(from, to).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    if kind == "slow" {
                        for b in &hello {
                            if Instant::now() >= deadline || s.write_all(&[*b]).await.is_err() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    } else {
                        let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                }
            });
        }
    }
    // Let the attack fill the relays first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut honest = tokio::task::JoinSet::new();
    let spacing = Duration::from_secs(a.secs.saturating_sub(4).max(1)) / a.honest.max(1) as u32;
    for i in 0..a.honest {
        let (sr, rr) = (a.relays[i % a.relays.len()], a.relays[(i + 1) % a.relays.len()]);
        honest.spawn(async move {
            let start = Instant::now();
            let r = timeout(Duration::from_secs(1), async { honest_pair(honest_addr(i), sr, rr).await.map(|_| ()) }).await;
            let why = match &r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.clone()),
                Err(_) => Some("not paired within 1 s".to_string()),
            };
            (why, start.elapsed())
        });
        tokio::time::sleep(spacing).await;
    }
    let mut ok = 0usize;
    let mut lat = Vec::new();
    let mut why = Vec::new();
    while let Some(r) = honest.join_next().await {
        match r {
            Ok((None, l)) => {
                ok += 1;
                lat.push(l.as_secs_f64() * 1000.0);
            }
            Ok((Some(e), _)) => why.push(e),
            Err(e) => why.push(e.to_string()),
        }
    }
    attackers.abort_all();
    lat.sort_by(f64::total_cmp);
    serde_json::json!({
        "mode": "attack", "kind": a.kind, "attacker_addresses": a.attackers, "connections_each": a.per_attacker,
        "attack_connections_made": attempts.load(Ordering::Relaxed),
        "honest_pairs": a.honest, "honest_paired_within_1s": ok,
        "honest_success_pct": 100.0 * ok as f64 / a.honest.max(1) as f64,
        "first_failures": why.iter().take(5).collect::<Vec<_>>(),
        "honest_latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99)},
    })
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("relay-load: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relay-load: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let out = rt.block_on(async {
        match a.mode.as_str() {
            "pairs" => pairs(&a).await,
            "waiting" => waiting(&a).await,
            "attack" => attack(&a).await,
            m => serde_json::json!({"error": format!("unknown mode {m}")}),
        }
    });
    println!("{out}");
}
