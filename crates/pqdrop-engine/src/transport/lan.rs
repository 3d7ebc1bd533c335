//! LAN mode: find the other side on the local network without any server.
//!
//! The sender (who made the code, e.g. `7-ocean-tiger`) listens on an ephemeral
//! TCP port and announces its public *nameplate* (`7`) together with that port
//! over UDP. The receiver listens for announcements of the nameplate it was
//! told and connects to the first sender it finds. This module only discovers
//! and connects: everything after the TCP connect is end-to-end encrypted and
//! authenticated by the caller, so a wrong or hostile peer found here can cost
//! a failed handshake but never a secret.
//!
//! # What an announcement carries
//!
//! Nothing secret: a magic string, a protocol version, the nameplate (already
//! public), the TCP port and a random 8-byte instance id (so a receiver can
//! tell two senders with the same nameplate apart). See [`Announcement`] for
//! the exact 32-byte layout.
//!
//! # Addressing
//!
//! Both sides take a [`LanConfig`]; they must use the same `bind` *kind* and
//! the same discovery `port`.
//!
//! * **Loopback `bind`** (`127.x.y.z` or `::1`): the TCP listener binds
//!   `bind:0`, announcements are sent by *unicast* UDP from `bind:0` to
//!   `bind:port`, and the receiver binds its UDP socket to `bind:port`
//!   (`SO_REUSEADDR` + `SO_REUSEPORT`). Nothing ever leaves the loopback
//!   interface, which is what tests and single-host use need.
//! * **Any other IPv4 `bind`** (a specific address, or `0.0.0.0` meaning every
//!   interface): announcements go to the administratively scoped multicast
//!   group [`MULTICAST_GROUP_V4`] (`239.255.48.73`, RFC 2365 "IPv4 local
//!   scope", chosen to spell the default port) on `port`, with TTL 1 so no
//!   router forwards them, `IP_MULTICAST_LOOP` on so a receiver on the same
//!   host hears them, and `IP_MULTICAST_IF = bind` when `bind` is specific.
//!   The receiver binds `0.0.0.0:port` (`SO_REUSEADDR` + `SO_REUSEPORT`) and
//!   joins the group on the interface owning `bind` (or `INADDR_ANY`, which
//!   lets the kernel pick the interface from the routing table). The TCP
//!   listener binds `bind:0`.
//! * **IPv6 other than `::1`** is refused with a clear error: IPv6 multicast
//!   discovery is not implemented (it needs an interface index per link, which
//!   `std` cannot enumerate without `unsafe`).
//!
//! The receiver connects only to the *source address* of an announcement
//! datagram plus the announced port, never to an address written inside the
//! datagram, so an announcement cannot point the receiver at a third host.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Error, Result};

/// The UDP port announcements are sent to when nothing else is configured.
/// It is a fixed, well-known value so that two machines agree without talking.
pub const DEFAULT_DISCOVERY_PORT: u16 = 48733;

/// The IPv4 multicast group announcements go to in non-loopback mode.
///
/// It lies in `239.255.0.0/16`, the IPv4 Local Scope of RFC 2365, which routers
/// are expected not to forward beyond the site; together with TTL 1 this keeps
/// announcements on the local link. The last two octets echo the default port.
pub const MULTICAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 48, 73);

/// How often the sender repeats its announcement. Short enough that a receiver
/// started after the sender finds it almost at once, long enough to be
/// negligible traffic (160 bytes/s).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(200);

/// How long [`LanListener::bind`] keeps announcing (and [`LanListener::accept`]
/// keeps waiting) before giving up, so a forgotten sender does not announce
/// forever.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// Environment variable read by [`LanConfig::from_env`] for the bind address.
pub const ENV_BIND: &str = "PQDROP_LAN_BIND";

/// Environment variable read by [`LanConfig::from_env`] for the discovery port.
pub const ENV_PORT: &str = "PQDROP_LAN_PORT";

use super::announce::{encode_query, invalid_input, parse_query, MAX_DATAGRAM};
/// The datagrams of PROTOCOL.md §10 (their layouts live in `announce`).
pub use super::announce::{Announcement, LanRoom, ANNOUNCE_LEN, CONTACT_ANNOUNCE_LEN, MAX_NAMEPLATE_LEN};

/// Upper bound for one TCP connect attempt by the receiver, so one dead or
/// firewalled sender cannot eat the whole search time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where LAN discovery happens: the local address to use and the UDP port on
/// which announcements are exchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LanConfig {
    /// Local address to use. `0.0.0.0` (the default) means every interface; a
    /// specific address pins discovery and the connection to one interface; a
    /// loopback address keeps everything on this host (see the module docs).
    pub bind: IpAddr,
    /// UDP discovery port ([`DEFAULT_DISCOVERY_PORT`] unless overridden).
    pub port: u16,
}

impl Default for LanConfig {
    fn default() -> Self {
        LanConfig { bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED), port: DEFAULT_DISCOVERY_PORT }
    }
}

impl LanConfig {
    /// Reads [`ENV_BIND`] (`PQDROP_LAN_BIND`) and [`ENV_PORT`]
    /// (`PQDROP_LAN_PORT`); unset or empty variables keep the defaults.
    ///
    /// The CLI's `--lan-bind` flag, when given, should override `bind` after
    /// this call.
    pub fn from_env() -> Result<Self> {
        let bind = env_value(ENV_BIND)?;
        let port = env_value(ENV_PORT)?;
        Self::parse(bind.as_deref(), port.as_deref())
    }

    /// Builds a config from the textual values of the bind address and port,
    /// `None` (or an empty string) meaning "use the default". Split out of
    /// [`LanConfig::from_env`] so it can be tested without touching the
    /// process environment.
    pub fn parse(bind: Option<&str>, port: Option<&str>) -> Result<Self> {
        let mut cfg = LanConfig::default();
        if let Some(b) = bind.map(str::trim).filter(|s| !s.is_empty()) {
            cfg.bind = b.parse().map_err(|_| {
                invalid_input(format!("{ENV_BIND}={b:?} is not an IP address (expected e.g. 0.0.0.0, 192.168.1.20 or 127.0.0.1)"))
            })?;
        }
        if let Some(p) = port.map(str::trim).filter(|s| !s.is_empty()) {
            cfg.port = match p.parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(invalid_input(format!("{ENV_PORT}={p:?} is not a UDP port number (expected 1-65535)"))),
            };
        }
        Ok(cfg)
    }
}

/// Reads one environment variable; absence is not an error, non-UTF-8 is.
fn env_value(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(invalid_input(format!("{name} is not valid UTF-8; unset it or give an IP address / port number")))
        }
    }
}

/// How discovery traffic is addressed for a given `bind` (see module docs).
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Unicast on the loopback interface, to and from this address.
    Loopback(IpAddr),
    /// IPv4 multicast, pinned to the interface owning the address if `Some`.
    Multicast(Option<Ipv4Addr>),
}

impl Mode {
    fn of(bind: IpAddr) -> Result<Mode> {
        // `::ffff:127.0.0.1` and friends mean the IPv4 address.
        let bind = bind.to_canonical();
        if bind.is_loopback() {
            return Ok(Mode::Loopback(bind));
        }
        match bind {
            IpAddr::V4(v4) if v4.is_unspecified() => Ok(Mode::Multicast(None)),
            IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => Err(invalid_input(format!(
                "LAN bind address {v4} is a multicast/broadcast address; give the address of a local interface, 0.0.0.0, or 127.0.0.1"
            ))),
            IpAddr::V4(v4) => Ok(Mode::Multicast(Some(v4))),
            IpAddr::V6(v6) => Err(Error::Io {
                path: None,
                err: io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("LAN discovery over IPv6 only works on ::1 (loopback), not {v6}; give an IPv4 interface address or 0.0.0.0"),
                ),
            }),
        }
    }

    /// Address for the sender's TCP listener (port chosen by the OS).
    fn tcp_bind(self) -> SocketAddr {
        match self {
            Mode::Loopback(ip) => SocketAddr::new(ip, 0),
            Mode::Multicast(iface) => SocketAddr::new(IpAddr::V4(iface.unwrap_or(Ipv4Addr::UNSPECIFIED)), 0),
        }
    }

    /// Where the sender sends announcements.
    fn announce_dest(self, port: u16) -> SocketAddr {
        match self {
            Mode::Loopback(ip) => SocketAddr::new(ip, port),
            Mode::Multicast(_) => SocketAddr::new(IpAddr::V4(MULTICAST_GROUP_V4), port),
        }
    }

    /// The sender's UDP socket. It is bound to `bind` when that is specific so
    /// the datagram's source address, which the receiver will connect to, is
    /// an address the TCP listener actually listens on.
    fn announce_socket(self) -> io::Result<UdpSocket> {
        let sock = match self {
            Mode::Loopback(ip) => {
                let s = Socket::new(Domain::for_address(SocketAddr::new(ip, 0)), Type::DGRAM, Some(Protocol::UDP))?;
                s.bind(&SocketAddr::new(ip, 0).into())?;
                s
            }
            Mode::Multicast(iface) => {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                let local = iface.unwrap_or(Ipv4Addr::UNSPECIFIED);
                s.bind(&SocketAddr::new(IpAddr::V4(local), 0).into())?;
                if let Some(i) = iface {
                    s.set_multicast_if_v4(&i)?;
                }
                // TTL 1: never routed off the local link.
                s.set_multicast_ttl_v4(1)?;
                // Loop on: a receiver on this very host must hear us too.
                s.set_multicast_loop_v4(true)?;
                s
            }
        };
        into_tokio_udp(sock)
    }

    /// The receiver's UDP socket, bound to the discovery port and, in
    /// multicast mode, joined to the group.
    fn discovery_socket(self, port: u16) -> io::Result<UdpSocket> {
        let local = match self {
            Mode::Loopback(ip) => SocketAddr::new(ip, port),
            Mode::Multicast(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        };
        let s = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
        // Several receivers (or a receiver and a leftover one) on one host must
        // be able to share the well-known port.
        s.set_reuse_address(true)?;
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
        s.set_reuse_port(true)?;
        if local.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.bind(&local.into())?;
        if let Mode::Multicast(iface) = self {
            s.join_multicast_v4(&MULTICAST_GROUP_V4, &iface.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
            // Only deliver the group we joined on this socket, not every group
            // some other program on the host joined on this port.
            #[cfg(target_os = "linux")]
            s.set_multicast_all_v4(false)?;
        }
        into_tokio_udp(s)
    }

    /// Local address the receiver's TCP connection should come from, if any.
    fn connect_from(self) -> Option<IpAddr> {
        match self {
            Mode::Loopback(ip) => Some(ip),
            Mode::Multicast(iface) => iface.map(IpAddr::V4),
        }
    }
}

fn into_tokio_udp(s: Socket) -> io::Result<UdpSocket> {
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Aborts the announcing task when the listener goes away, however that
/// happens (accept, error, or the caller dropping it).
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sender side: the TCP listener plus a background task announcing it every
/// [`ANNOUNCE_INTERVAL`]. Announcing stops when [`LanListener::accept`]
/// returns, when the listener is dropped, or after the maximum wait.
#[derive(Debug)]
pub struct LanListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    nameplate: String,
    deadline: Instant,
    max_wait: Duration,
    _announcer: AbortOnDrop,
}

impl LanListener {
    /// Binds the TCP listener and starts announcing `nameplate`, for at most
    /// [`DEFAULT_MAX_WAIT`].
    pub async fn bind(cfg: &LanConfig, nameplate: &str) -> Result<LanListener> {
        Self::bind_room(cfg, LanRoom::nameplate(nameplate)?, DEFAULT_MAX_WAIT).await
    }

    /// Like [`LanListener::bind`], but announces (and lets `accept` wait) for
    /// at most `max_wait`.
    ///
    /// The first announcement is sent before returning, so a configuration
    /// that cannot send at all (e.g. no route for multicast on `0.0.0.0`)
    /// fails here with the OS error instead of silently finding nobody; later
    /// send errors are logged and retried, as interfaces may come and go.
    pub async fn bind_with_max_wait(cfg: &LanConfig, nameplate: &str, max_wait: Duration) -> Result<LanListener> {
        Self::bind_room(cfg, LanRoom::nameplate(nameplate)?, max_wait).await
    }

    /// [`LanListener::bind_with_max_wait`] for any room: a nameplate, or a
    /// contact room (a contact receiver listens and announces).
    pub async fn bind_room(cfg: &LanConfig, room: LanRoom, max_wait: Duration) -> Result<LanListener> {
        if cfg.port == 0 {
            return Err(invalid_input("LAN discovery port must not be 0".into()));
        }
        let mode = Mode::of(cfg.bind)?;
        let listener = TcpListener::bind(mode.tcp_bind()).await?;
        let local_addr = listener.local_addr()?;

        let mut instance = [0u8; 8];
        OsRng.try_fill_bytes(&mut instance).map_err(|e| Error::from(io::Error::other(e.to_string())))?;
        let datagram = Announcement::for_room(room.clone(), local_addr.port(), instance)?.encode();

        let sock = mode.announce_socket()?;
        let dest = mode.announce_dest(cfg.port);
        sock.send_to(&datagram, dest).await?;
        tracing::debug!(%dest, %local_addr, %room, instance = %hex::encode(instance), "LAN: announcing");

        // Receivers ask on the port above the discovery port; we answer at
        // once, so finding us does not wait for the next periodic announcement.
        let queries = match query_port(cfg.port) {
            Some(qp) => mode.discovery_socket(qp).map_err(|e| tracing::debug!(error = %e, "LAN: not answering queries")).ok(),
            None => None,
        };
        let deadline = Instant::now() + max_wait;
        let label = room.to_string();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(ANNOUNCE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; we already sent
            let mut qbuf = [0u8; MAX_DATAGRAM + 1];
            let want = room.clone();
            loop {
                let asked = async {
                    match &queries {
                        Some(q) => q.recv_from(&mut qbuf).await.ok(),
                        None => std::future::pending().await,
                    }
                };
                let to = tokio::select! {
                    t = tokio::time::timeout_at(deadline, tick.tick()) => {
                        if t.is_err() {
                            tracing::debug!("LAN: stopped announcing (maximum wait reached)");
                            return;
                        }
                        dest
                    }
                    Some((len, src)) = asked => {
                        if parse_query(&qbuf[..len]).as_ref() != Some(&want) {
                            continue;
                        }
                        src
                    }
                };
                if let Err(e) = sock.send_to(&datagram, to).await {
                    tracing::debug!(%to, error = %e, "LAN: announcement not sent");
                }
            }
        });

        Ok(LanListener { listener, local_addr, nameplate: label, deadline, max_wait, _announcer: AbortOnDrop(task) })
    }

    /// The address the TCP listener is bound to (its port is announced).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits for one receiver to connect; stops announcing. Returns the stream
    /// (with `TCP_NODELAY` set, as the protocol exchanges small handshake
    /// messages) and the peer address.
    ///
    /// Fails with a `TimedOut` I/O error if nobody connects before the maximum
    /// wait given at bind time has elapsed.
    pub async fn accept(self) -> Result<(TcpStream, SocketAddr)> {
        let accepted = tokio::time::timeout_at(self.deadline, self.listener.accept()).await;
        // `self` (and with it the announcer) is dropped on return either way.
        match accepted {
            Ok(Ok((stream, peer))) => {
                stream.set_nodelay(true)?;
                tracing::debug!(%peer, "LAN: receiver connected");
                Ok((stream, peer))
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(Error::Io {
                path: None,
                err: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no receiver connected for code number {} within {} s", self.nameplate, self.max_wait.as_secs()),
                ),
            }),
        }
    }
}

/// Receiver side: listens for announcements of `nameplate` for up to
/// `timeout` and connects to the first sender found (TCP to the datagram's
/// source IP and the announced port). If a connect fails, it keeps listening
/// for other announcements until the timeout, skipping senders it already
/// failed to reach. Fails with [`Error::LanNotFound`] on timeout.
///
/// The returned stream has `TCP_NODELAY` set.
pub async fn find(cfg: &LanConfig, nameplate: &str, timeout: Duration) -> Result<TcpStream> {
    find_room(cfg, &LanRoom::nameplate(nameplate)?, timeout).await
}

/// [`find`] for any room: a nameplate, or a contact room (a contact sender
/// looks for its receiver's announcement).
pub async fn find_room(cfg: &LanConfig, room: &LanRoom, timeout: Duration) -> Result<TcpStream> {
    if cfg.port == 0 {
        return Err(invalid_input("LAN discovery port must not be 0".into()));
    }
    let mode = Mode::of(cfg.bind)?;
    let sock = mode.discovery_socket(cfg.port)?;
    let deadline = Instant::now() + timeout;
    let not_found = || Error::LanNotFound { nameplate: room.to_string(), secs: timeout.as_secs_f64().ceil() as u64 };
    // Keyed by (instance id, source IP, port) rather than the id alone, so a
    // spoofed announcement reusing a genuine sender's id from a dead address
    // cannot make us ignore the genuine sender afterwards.
    let mut failed: HashSet<([u8; 8], IpAddr, u16)> = HashSet::new();
    // One spare byte so an oversized datagram shows up as the wrong length
    // instead of being silently truncated to a valid-looking prefix.
    let mut buf = [0u8; MAX_DATAGRAM + 1];
    // Ask senders to announce now (answers come back to `asker`), so we do not
    // wait for the next periodic announcement. Repeated every second.
    let asker = mode.announce_socket().ok();
    let query = encode_query(room);
    let mut ask_tick = tokio::time::interval(Duration::from_secs(1));

    loop {
        let got = async {
            let mut abuf = [0u8; MAX_DATAGRAM + 1];
            loop {
                tokio::select! {
                    r = sock.recv_from(&mut buf) => return (r, None),
                    r = async {
                        match &asker {
                            Some(a) => a.recv_from(&mut abuf).await,
                            None => std::future::pending().await,
                        }
                    } => return (r, Some(abuf)),
                    _ = ask_tick.tick() => {
                        if let (Some(a), Some(qp)) = (&asker, query_port(cfg.port)) {
                            let _ = a.send_to(&query, mode.announce_dest(qp)).await;
                        }
                    }
                }
            }
        };
        let (r, answer) = match tokio::time::timeout_at(deadline, got).await {
            Err(_) => return Err(not_found()),
            Ok(x) => x,
        };
        if let (Ok((len, _)), Some(a)) = (&r, answer) {
            buf[..*len].copy_from_slice(&a[..*len]);
        }
        let (len, src) = match r {
            Ok(r) => r,
            Err(e) => {
                // Transient per-datagram errors (e.g. ICMP-induced) must not
                // end the search; pause briefly so a persistent one cannot spin.
                tracing::debug!(error = %e, "LAN: receive error");
                if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(50))).await.is_err() {
                    return Err(not_found());
                }
                continue;
            }
        };
        let ann = match Announcement::parse(&buf[..len]) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(%src, len, why, "LAN: ignoring datagram");
                continue;
            }
        };
        if ann.room() != room {
            tracing::debug!(%src, other = %ann.room(), "LAN: announcement for another room");
            continue;
        }
        let ip = src.ip().to_canonical();
        if ip.is_unspecified() || ip.is_multicast() {
            tracing::debug!(%src, "LAN: ignoring announcement from unusable source address");
            continue;
        }
        let key = (ann.instance(), ip, ann.port());
        if failed.contains(&key) {
            continue;
        }
        let target = SocketAddr::new(ip, ann.port());
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt = remaining.min(CONNECT_TIMEOUT);
        tracing::debug!(%target, instance = %hex::encode(ann.instance()), "LAN: connecting to sender");
        match tokio::time::timeout(attempt, connect(mode, target)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => tracing::debug!(%target, error = %e, "LAN: connect failed"),
            Err(_) => tracing::debug!(%target, "LAN: connect timed out"),
        }
        failed.insert(key);
    }
}

/// The UDP port senders listen on for queries: the one above the discovery port.
fn query_port(port: u16) -> Option<u16> {
    port.checked_add(1)
}

/// Connects to `target`, from the configured interface address when `bind`
/// names one, so the connection takes the same interface as discovery did.
async fn connect(mode: Mode, target: SocketAddr) -> io::Result<TcpStream> {
    let sock = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(local) = mode.connect_from() {
        if local.is_ipv4() == target.is_ipv4() {
            sock.bind(SocketAddr::new(local, 0))?;
        }
    }
    let stream = sock.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let m = |s: &str| Mode::of(s.parse().expect("ip"));
        assert!(matches!(m("127.0.0.1"), Ok(Mode::Loopback(_))));
        assert!(matches!(m("127.3.4.5"), Ok(Mode::Loopback(_))));
        assert!(matches!(m("::1"), Ok(Mode::Loopback(IpAddr::V6(_)))));
        assert!(matches!(m("::ffff:127.0.0.1"), Ok(Mode::Loopback(IpAddr::V4(_)))));
        assert!(matches!(m("0.0.0.0"), Ok(Mode::Multicast(None))));
        assert!(matches!(m("10.1.2.3"), Ok(Mode::Multicast(Some(_)))));
        assert!(m("239.255.48.73").is_err());
        assert!(m("255.255.255.255").is_err());
        assert!(m("::").is_err());
        assert!(m("fe80::1").is_err());
    }
}
