//! The relay server: accept, hello, rooms, pairing, sessions, shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::directory::fleet::Fleet;
use crate::directory::NameplatePool;
use crate::limits::{IpKey, PerIpCounter, RateDecision, RateLimiter};
use crate::wire::{parse_hello, status_bytes, Decoded, Hello, Room, ERROR_CODES, MAX_HELLO_READ};
use crate::{RelayConfig, RelayError, Role, StatusCode};

mod rooms;
mod upkeep;

use rooms::join;

/// After an error status, how long the relay keeps draining what the client
/// still sends (so the status is not lost to a TCP reset) before closing.
const LINGER: Duration = Duration::from_secs(2);
/// The same while the relay is shutting down, so that it stops quickly.
const LINGER_SHUTDOWN: Duration = Duration::from_millis(300);
/// At most this many bytes are drained after an error status.
const LINGER_BYTES: usize = 64 * 1024;

/// A relay server bound to a listening socket. See the crate docs for the
/// protocol.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    /// `--web`: the page and its WebSocket, served beside the TCP listener.
    web: Option<crate::web::WebServer>,
}

#[derive(Debug)]
struct Shared {
    config: RelayConfig,
    /// Lock order: `state` before `per_ip` (never the other way round).
    state: Mutex<State>,
    /// Taken on its own by [`HandshakeSlot`] and [`SessionSlot`] on drop, so
    /// no slot may be dropped while it is held.
    per_ip: Mutex<PerIpCounts>,
    sessions: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    counters: Counters,
    /// In a fleet: the shared directory.
    fleet: Option<Arc<Fleet>>,
    /// The browser page's public URL, once `--web` is set up (status 4).
    page_url: std::sync::OnceLock<String>,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    paired: AtomicU64,
    /// Connections evicted from the hello phase for a newer one.
    evicted: AtomicU64,
    bytes: AtomicU64,
    refusals: [AtomicU64; ERROR_CODES],
}

#[derive(Debug)]
struct State {
    rooms: HashMap<Room, Waiter>,
    pending_per_ip: PerIpCounter,
    /// Which canonical nameplates the rooms use (for allocation).
    pool: NameplatePool,
    rate: RateLimiter,
    next_id: u64,
}

impl State {
    fn add_room(&mut self, room: Room, w: Waiter) {
        self.pending_per_ip.increment_with_net(w.key);
        if let Some(np) = room.nameplate() {
            self.pool.take(np);
        }
        self.rooms.insert(room, w);
    }

    fn remove_room(&mut self, room: Room) -> Option<Waiter> {
        let w = self.rooms.remove(&room)?;
        crate::limits::shrink_if_sparse(&mut self.rooms);
        self.pending_per_ip.decrement_with_net(w.key);
        if let Some(np) = room.nameplate() {
            self.pool.put_back(np);
        }
        Some(w)
    }
}

/// Per-address counts of connections in the hello phase and of paired
/// sessions (entries are removed when they reach zero).
#[derive(Debug, Default)]
struct PerIpCounts {
    handshakes: PerIpCounter,
    sessions: PerIpCounter,
    /// Connections in the hello phase by order of arrival (oldest first).
    hello_phase: std::collections::BTreeMap<u64, InHello>,
    next_seq: u64,
}

/// A connection's place in the hello phase: one of the `max_handshakes`
/// permits (kept in [`HelloPhase`], so that it can be taken away) and one of
/// its address's `max_handshakes_per_ip`. Both are given back on drop, unless
/// the connection was evicted, which gave them away already.
#[derive(Debug)]
struct HandshakeSlot {
    shared: Arc<Shared>,
    seq: u64,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip();
        if let Some(e) = per_ip.hello_phase.remove(&self.seq) {
            per_ip.handshakes.decrement_with_net(e.key);
        }
    }
}

/// A connection in the hello phase, as the admission of others sees it.
#[derive(Debug)]
struct InHello {
    since: Instant,
    key: IpKey,
    permit: OwnedSemaphorePermit,
    /// Tells the connection's task it was evicted.
    evict: oneshot::Sender<()>,
}

/// A paired session's place: one of the `max_sessions` permits, and one of
/// `max_sessions_per_ip` for each distinct address of its two peers. All are
/// given back on drop.
#[derive(Debug)]
struct SessionSlot {
    shared: Arc<Shared>,
    key: IpKey,
    /// The other peer's address, if it is a different one.
    other_key: Option<IpKey>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip();
        per_ip.sessions.decrement(self.key);
        if let Some(k) = self.other_key {
            per_ip.sessions.decrement(k);
        }
    }
}

/// The waiting peer of a room, as seen by others.
#[derive(Debug)]
struct Waiter {
    id: u64,
    role: Role,
    key: IpKey,
    tx: oneshot::Sender<Arrival>,
    /// In a fleet: the room's value in the shared directory.
    value: Option<String>,
}

/// A connection that has sent a valid hello.
#[derive(Debug)]
struct Peer {
    stream: TcpStream,
    addr: SocketAddr,
    key: IpKey,
    hello: Hello,
    /// Bytes received after the hello, before pairing.
    prepair: Vec<u8>,
    /// A WebSocket peer of the page (bridged): redirected to a page URL.
    web: bool,
}

/// A peer handed to a waiting peer's task to pair with, with its session slot.
#[derive(Debug)]
struct Arrival {
    peer: Peer,
    slot: SessionSlot,
}

/// What a connection task does next after handling one peer.
enum Next {
    Done,
    /// Handle this peer (handed over in a race with the waiting peer's exit).
    Adopt(Peer),
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock; if one ever did, the
        // state is still consistent enough to keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn per_ip(&self) -> MutexGuard<'_, PerIpCounts> {
        // As for `state`: nothing panics while holding it.
        self.per_ip.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn count_refusal(&self, code: StatusCode) {
        if let Some(i) = code.error_index() {
            self.counters.refusals[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes `room` if it is still waiter `id`'s.
    fn remove_room_if(&self, room: Room, id: u64) {
        let removed = {
            let mut st = self.state();
            if st.rooms.get(&room).map(|w| w.id) == Some(id) {
                st.remove_room(room)
            } else {
                None
            }
        };
        if let Some(w) = removed {
            self.release_in_directory(room, &w);
        }
    }

    /// Frees a removed room in the fleet's directory (in the background: a
    /// release that fails leaves only a lease that runs out by itself).
    fn release_in_directory(&self, room: Room, w: &Waiter) {
        if let (Some(fleet), Some(value)) = (&self.fleet, &w.value) {
            let (fleet, value) = (Arc::clone(fleet), value.clone());
            tokio::spawn(async move {
                let _ = fleet.release(room, &value).await;
            });
        }
    }
}

/// A point-in-time view of a relay's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Rooms with a waiting peer now.
    pub pending_rooms: usize,
    /// Paired sessions now.
    pub active_sessions: usize,
    /// Pairings since start.
    pub sessions_paired: u64,
    /// Bytes relayed between peers since start (finished and running sessions,
    /// including forwarded pre-pairing bytes).
    pub bytes_relayed: u64,
    refusals: [u64; ERROR_CODES],
    /// In a fleet: the shared directory's figures.
    pub directory: Option<DirectoryStats>,
    /// Whether the relay is shutting down (draining).
    pub shutting_down: bool,
    /// Connections evicted from the hello phase to make room for newer ones.
    pub hello_evictions: u64,
}

/// A fleet instance's figures about its shared directory (Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryStats {
    /// Whether the instance is connected to Redis now.
    pub up: bool,
    /// Script calls since start.
    pub calls: u64,
    /// Calls that failed or timed out.
    pub errors: u64,
    /// Total round-trip time of the calls that succeeded, in microseconds.
    pub rtt_micros_total: u64,
    /// Clients sent to another instance (status 3).
    pub redirects: u64,
}

impl RelayStats {
    /// How many times the relay has sent error status `code` since start.
    pub fn refusals(&self, code: StatusCode) -> u64 {
        code.error_index().map_or(0, |i| self.refusals[i])
    }
}

/// A cheap, cloneable handle for reading a relay's [`RelayStats`], usable
/// while [`Relay::run`] owns the relay.
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Shared>);

impl StatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> RelayStats {
        let s = &self.0;
        let pending_rooms = s.state().rooms.len();
        let c = &s.counters;
        RelayStats {
            connections_accepted: c.accepted.load(Ordering::Relaxed),
            pending_rooms,
            active_sessions: s.config.max_sessions.saturating_sub(s.sessions.available_permits()),
            sessions_paired: c.paired.load(Ordering::Relaxed),
            bytes_relayed: c.bytes.load(Ordering::Relaxed),
            refusals: std::array::from_fn(|i| c.refusals[i].load(Ordering::Relaxed)),
            directory: s.fleet.as_ref().map(|f| {
                let st = &f.stats;
                DirectoryStats {
                    up: st.up.load(Ordering::Relaxed),
                    calls: st.calls.load(Ordering::Relaxed),
                    errors: st.errors.load(Ordering::Relaxed),
                    rtt_micros_total: st.rtt_micros_total.load(Ordering::Relaxed),
                    redirects: st.redirects.load(Ordering::Relaxed),
                }
            }),
            shutting_down: s.shutting_down(),
            hello_evictions: c.evicted.load(Ordering::Relaxed),
        }
    }
}

impl Relay {
    /// Binds the relay's listening socket.
    pub async fn bind(addr: SocketAddr, config: RelayConfig) -> Result<Relay, RelayError> {
        config.validate()?;
        let listener = listen(addr).map_err(|source| RelayError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| RelayError::Bind { addr, source })?;
        let (shutdown, _) = watch::channel(false);
        let fleet = match &config.fleet {
            Some(f) => Some(Arc::new(Fleet::new(f.clone())?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rooms: HashMap::new(),
                pending_per_ip: PerIpCounter::default(),
                pool: NameplatePool::default(),
                rate: RateLimiter::new(config.join_rate_per_sec, config.join_burst, config.max_tracked_addresses),
                next_id: 0,
            }),
            per_ip: Mutex::new(PerIpCounts::default()),
            sessions: Arc::new(Semaphore::new(config.max_sessions)),
            handshakes: Arc::new(Semaphore::new(config.max_handshakes)),
            shutdown,
            counters: Counters::default(),
            fleet,
            config,
            page_url: std::sync::OnceLock::new(),
        });
        if let Some(fleet) = &shared.fleet {
            // One attempt now, so that a fleet whose Redis is up serves from
            // the first connection; later ones are made by the upkeep task.
            if !fleet.reconnect().await {
                warn!("relay directory (Redis) unreachable at start; refusing new rooms until it is reachable");
            }
        }
        Ok(Relay { listener, local_addr, shared, web: None })
    }

    /// Also serves the browser page and its WebSocket on `addr` (PROTOCOL.md
    /// §9.8). Returns the address it listens on. Call before [`Relay::run`].
    pub async fn serve_web(&mut self, addr: SocketAddr, config: crate::WebConfig) -> Result<SocketAddr, RelayError> {
        let web = crate::web::WebServer::bind(addr, &config, self.shared.fleet.is_some()).await?;
        let local = web.local_addr();
        if self.shared.page_url.set(web.page_url().to_string()).is_err() {
            return Err(RelayError::Config("the web page is served once per relay"));
        }
        if let Some(fleet) = &self.shared.fleet {
            let _ = fleet.page_url.set(web.page_url().to_string());
        }
        self.web = Some(web);
        Ok(local)
    }

    /// The browser page's URL, when [`Relay::serve_web`] was called.
    pub fn page_url(&self) -> Option<&str> {
        self.shared.page_url.get().map(String::as_str)
    }

    /// The address the relay listens on (with the real port if bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for reading the relay's counters.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.shared))
    }

    /// Serves until `shutdown` resolves; then stops accepting, tells waiting
    /// peers (and connections still in the hello phase) code 22, and lets paired
    /// sessions finish for up to `config.shutdown_grace` before cutting them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
        let Relay { listener, shared, web, .. } = self;
        info!(addr = %self.local_addr, "relay listening");
        let mut tasks = JoinSet::new();
        let upkeep = shared.fleet.as_ref().map(|_| tokio::spawn(upkeep::fleet(Arc::clone(&shared))));
        // WebSocket peers, bridged to loopback TCP, arrive here with their
        // browser's address and are accepted like any connection.
        let (inject, mut bridged) = tokio::sync::mpsc::channel(64);
        let has_web = web.is_some();
        let web_task = web.map(|w| tokio::spawn(w.run(inject, shared.shutdown.subscribe())));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some((stream, addr)) = bridged.recv(), if has_web => accept(&shared, &mut tasks, stream, addr, true),
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => accept(&shared, &mut tasks, stream, addr, false),
                    Err(e) => {
                        // Typically EMFILE/ENFILE: back off instead of spinning.
                        warn!(error_kind = ?e.kind(), "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = joined {
                        warn!(panicked = e.is_panic(), "connection task failed");
                    }
                }
            }
        }
        drop(listener);
        shared.shutdown.send_replace(true);
        if let Some(t) = web_task {
            let _ = t.await;
        }
        drop(bridged);
        info!(tasks = tasks.len(), "relay shutting down");
        let drained = tokio::time::timeout(shared.config.shutdown_grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            info!(cut = tasks.len(), "shutdown grace over; closing remaining sessions");
            tasks.shutdown().await;
        }
        if let Some(u) = upkeep {
            u.abort();
        }
        if let Some(fleet) = &shared.fleet {
            fleet.leave().await;
        }
        info!("relay stopped");
        Ok(())
    }
}

/// How many connections the kernel may queue before `accept` (capped by
/// `net.core.somaxconn`, 4096 by default on Linux). tokio's default of 1024
/// overflows when a thousand peers arrive at once, and each overflowed SYN
/// costs its client a one-second retransmission.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    #[cfg(unix)]
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(LISTEN_BACKLOG)
}

fn accept(shared: &Arc<Shared>, tasks: &mut JoinSet<()>, stream: TcpStream, addr: SocketAddr, web: bool) {
    shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let (slot, evicted) = match admit_handshake(shared, addr) {
        Ok(s) => s,
        Err((code, msg)) => return refuse_now(shared, stream, addr, code, &msg),
    };
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        let mut next = handle_new(&shared, stream, addr, web, slot, evicted).await;
        while let Next::Adopt(peer) = next {
            next = join(&shared, peer).await;
        }
    });
}

/// The checks a new connection must pass before it may send its hello, all
/// without waiting and before it holds anything: the join rate of its address,
/// then its address's connections in the hello phase, then all of them. A
/// connection refused here never takes a hello-phase slot (so refusals cannot
/// crowd out other clients) and gets no task.
fn admit_handshake(shared: &Arc<Shared>, addr: SocketAddr) -> Result<(HandshakeSlot, oneshot::Receiver<()>), (StatusCode, String)> {
    let cfg = &shared.config;
    let key = IpKey::of(addr.ip());
    let decision = shared.state().rate.check(key, Instant::now());
    match decision {
        RateDecision::Allow => {}
        RateDecision::Limited => {
            let msg = format!(
                "too many connections from your address (limit {} per second, burst {}); wait a few seconds and try again",
                cfg.join_rate_per_sec, cfg.join_burst
            );
            return Err((StatusCode::RateLimited, msg));
        }
        RateDecision::TableFull => {
            let msg = "relay is full (too many client addresses); try again in a minute or use another relay";
            return Err((StatusCode::RelayFull, msg.to_owned()));
        }
    }
    let mut per_ip = shared.per_ip();
    if per_ip.handshakes.get(key) >= cfg.max_handshakes_per_ip {
        // Code 19: like the join rate, this is about how many connections one
        // address makes, and the cure is the same (wait, then try again).
        let msg = format!(
            "too many connections from your address still being set up (limit {} at once); close unused ones, wait a few seconds and try again",
            cfg.max_handshakes_per_ip
        );
        return Err((StatusCode::RateLimited, msg));
    }
    if per_ip.handshakes.get(key.net()) >= cfg.max_handshakes_per_net {
        let msg = format!(
            "too many connections from your network still being set up (limit {} at once per IPv4 /24 or IPv6 /48); wait a few seconds and try again",
            cfg.max_handshakes_per_net
        );
        return Err((StatusCode::RateLimited, msg));
    }
    let now = Instant::now();
    let permit = match Arc::clone(&shared.handshakes).try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            // All slots are taken: the oldest connection, if it has had
            // `hello_evict_after` and still sent no hello, gives its slot to
            // this one. An honest client sends its hello in one round trip,
            // so slow or silent connections cannot keep it out.
            let oldest = per_ip.hello_phase.first_key_value().map(|(&seq, e)| (seq, e.since));
            match oldest {
                Some((seq, since)) if now.saturating_duration_since(since) >= cfg.hello_evict_after => {
                    let Some(e) = per_ip.hello_phase.remove(&seq) else {
                        return Err((StatusCode::RelayFull, MSG_FULL_HANDSHAKES.to_owned()));
                    };
                    per_ip.handshakes.decrement_with_net(e.key);
                    let _ = e.evict.send(());
                    shared.counters.evicted.fetch_add(1, Ordering::Relaxed);
                    e.permit
                }
                _ => return Err((StatusCode::RelayFull, MSG_FULL_HANDSHAKES.to_owned())),
            }
        }
    };
    per_ip.handshakes.increment_with_net(key);
    let seq = per_ip.next_seq;
    per_ip.next_seq += 1;
    let (evict, evicted) = oneshot::channel();
    per_ip.hello_phase.insert(seq, InHello { since: now, key, permit, evict });
    drop(per_ip);
    Ok((HandshakeSlot { shared: Arc::clone(shared), seq }, evicted))
}

/// Refuses a connection at accept time: no task, no waiting, no linger. The
/// status is written straight to the socket (a new socket's send buffer takes
/// it at once; tokio's `try_write` would report "would block" on a socket its
/// reactor has not polled yet). Whatever the client has already sent (usually
/// its hello) is read and dropped, so that closing sends a FIN rather than a
/// reset that could destroy the status before the client reads it.
fn refuse_now(shared: &Shared, stream: TcpStream, addr: SocketAddr, code: StatusCode, msg: &str) {
    use std::io::{Read as _, Write as _};

    shared.count_refusal(code);
    debug!(peer = %addr, code = code.code(), "refused at accept");
    let sock = socket2::SockRef::from(&stream);
    let _ = (&*sock).write(&status_bytes(code, msg));
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match (&*sock).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    drop(stream);
}

const MSG_FULL_HANDSHAKES: &str = "relay is full (too many connections being set up); try again in a minute or use another relay";
const MSG_SHUTDOWN: &str = "relay is shutting down; try again in a moment or use another relay";

/// Sends an error status, then closes gracefully: shut down our side and drain
/// what the client still sends for a short while, so it can read the status.
async fn refuse(shared: &Shared, stream: &mut TcpStream, addr: SocketAddr, code: StatusCode, msg: &str) {
    shared.count_refusal(code);
    debug!(peer = %addr, code = code.code(), "refused");
    let bytes = status_bytes(code, msg);
    let mut shutdown = shared.shutdown.subscribe();
    let _ = tokio::time::timeout(LINGER, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await?;
        let drain = async {
            let mut sink = [0u8; 4096];
            let mut drained = 0usize;
            while drained < LINGER_BYTES {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            Ok::<(), std::io::Error>(())
        };
        // Shutting down: linger only briefly, so the relay stops quickly.
        let cut_short = async {
            shutdown_signal(&mut shutdown).await;
            tokio::time::sleep(LINGER_SHUTDOWN).await;
        };
        tokio::select! {
            r = drain => r,
            () = cut_short => Ok(()),
        }
    })
    .await;
}

/// Hello (holding the connection's hello-phase `slot`), then join.
async fn handle_new(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    addr: SocketAddr,
    web: bool,
    slot: HandshakeSlot,
    mut evicted: oneshot::Receiver<()>,
) -> Next {
    let cfg = &shared.config;
    let key = IpKey::of(addr.ip());
    let mut shutdown = shared.shutdown.subscribe();
    let hello = tokio::select! {
        r = tokio::time::timeout(cfg.hello_timeout, read_hello(&mut stream)) => r,
        () = shutdown_signal(&mut shutdown) => {
            drop(slot);
            refuse(shared, &mut stream, addr, StatusCode::ShuttingDown, MSG_SHUTDOWN).await;
            return Next::Done;
        }
        Ok(()) = &mut evicted => {
            let msg = format!(
                "bad hello: not received within {} ms while the relay was busy; try again",
                cfg.hello_evict_after.as_millis()
            );
            refuse_now(shared, stream, addr, StatusCode::BadHello, &msg);
            return Next::Done;
        }
    };
    // A refused connection lingers without its slot: refusals cannot crowd
    // out anyone.
    drop(slot);
    let (hello, prepair) = match hello {
        Ok(Ok(h)) => h,
        Ok(Err(HelloError::Closed)) => {
            debug!(peer = %addr, "closed before hello");
            return Next::Done;
        }
        Ok(Err(HelloError::Bad(reason))) => {
            let msg = format!("bad hello: {reason}; check the relay address and update pqdrop");
            refuse(shared, &mut stream, addr, StatusCode::BadHello, &msg).await;
            return Next::Done;
        }
        Err(_elapsed) => {
            let msg =
                format!("bad hello: not received within {} s; check the relay address and your network", cfg.hello_timeout.as_secs_f64());
            refuse(shared, &mut stream, addr, StatusCode::BadHello, &msg).await;
            return Next::Done;
        }
    };
    if hello.page {
        // Status 4 comes first (PROTOCOL.md §9.2): the page's URL, or empty.
        let url = shared.page_url.get().map(String::as_str).unwrap_or("");
        let sent = tokio::time::timeout(cfg.hello_timeout, stream.write_all(&status_bytes(StatusCode::Page, url))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Next::Done;
        }
    }
    join(shared, Peer { stream, addr, key, hello, prepair, web }).await
}

/// Resolves once the relay is shutting down (or its handle is gone).
async fn shutdown_signal(rx: &mut watch::Receiver<bool>) {
    // The `Ref` must not live across an await of the caller.
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

enum HelloError {
    Closed,
    Bad(&'static str),
}

/// Reads at most [`MAX_HELLO_READ`] bytes until they hold a hello; returns it
/// and whatever followed it.
async fn read_hello(stream: &mut TcpStream) -> Result<(Hello, Vec<u8>), HelloError> {
    let mut buf = [0u8; MAX_HELLO_READ];
    let mut len = 0usize;
    loop {
        match parse_hello(&buf[..len]) {
            Decoded::Done(h, used) => return Ok((h, buf[used..len].to_vec())),
            Decoded::Invalid(reason) => return Err(HelloError::Bad(reason)),
            Decoded::Incomplete => {}
        }
        if len == buf.len() {
            return Err(HelloError::Bad("hello too long"));
        }
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return Err(HelloError::Closed),
            Ok(n) => len += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{hello_bytes, read_status};

    async fn status(s: &mut TcpStream) -> u64 {
        tokio::time::timeout(Duration::from_secs(10), read_status(s)).await.expect("status in time").expect("status").0
    }

    /// Polls (bounded) until `f` holds for the relay's per-address counts.
    async fn eventually(shared: &Shared, what: &str, f: impl Fn(&PerIpCounts, &State) -> bool) {
        for _ in 0..200 {
            let ok = {
                let st = shared.state();
                f(&shared.per_ip(), &st)
            };
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("never reached: {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn per_address_counts_are_dropped_at_zero() {
        let test = async {
            let config = RelayConfig { join_rate_per_sec: 1000.0, join_burst: 1000, max_handshakes_per_ip: 2, ..RelayConfig::default() };
            let relay = Relay::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
            let addr = relay.local_addr();
            let shared = Arc::clone(&relay.stats().0);
            let (stop, stopped) = oneshot::channel::<()>();
            let run = tokio::spawn(relay.run(async move {
                let _ = stopped.await;
            }));
            let key = IpKey::of(addr.ip());

            // Hello phase: counted while idle, refused beyond the limit, and
            // dropped when the connection leaves.
            let h1 = TcpStream::connect(addr).await.unwrap();
            let h2 = TcpStream::connect(addr).await.unwrap();
            eventually(&shared, "two in hello phase", |p, _| p.handshakes.get(key) == 2).await;
            let mut refused = TcpStream::connect(addr).await.unwrap();
            assert_eq!(status(&mut refused).await, 19);
            assert_eq!(shared.per_ip().handshakes.get(key), 2);
            drop((h1, h2, refused));
            eventually(&shared, "hello phase empty", |p, _| p.handshakes.tracked() == 0).await;

            // A session between two peers of one address counts once.
            let mut a = TcpStream::connect(addr).await.unwrap();
            a.write_all(&hello_bytes("5", Role::Sender).unwrap()).await.unwrap();
            assert_eq!(status(&mut a).await, 0);
            assert_eq!(shared.state().pending_per_ip.get(key), 1);
            let mut b = TcpStream::connect(addr).await.unwrap();
            b.write_all(&hello_bytes("5", Role::Receiver).unwrap()).await.unwrap();
            assert_eq!(status(&mut b).await, 1);
            assert_eq!(status(&mut a).await, 1);
            eventually(&shared, "one session", |p, st| p.sessions.get(key) == 1 && st.pending_per_ip.tracked() == 0).await;
            drop((a, b));
            eventually(&shared, "all per-address state gone", |p, st| {
                p.sessions.tracked() == 0 && p.handshakes.tracked() == 0 && st.pending_per_ip.tracked() == 0
            })
            .await;

            let _ = stop.send(());
            run.await.unwrap().unwrap();
        };
        tokio::time::timeout(Duration::from_secs(30), test).await.expect("test timed out");
    }
}
