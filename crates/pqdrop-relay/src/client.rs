//! The client side of the relay protocol, used by the pqdrop engine.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use pqdrop_proto::code::Nameplate;

use crate::wire::{
    hello_bytes, hello_contact_bytes, hello_v2_page_bytes, nameplate_of, read_status, CONTACT_ROOM_LEN, PROTOCOL_VERSION,
    PROTOCOL_VERSION_1,
};
use crate::{RelayError, Role, StatusCode};

/// The relay client's deadlines. Nothing it does waits without one: a relay
/// that accepts and never answers, or whose host vanished, is reported in
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// For the TCP connection. Default 10 s.
    pub connect: Duration,
    /// From the hello to the relay's first status. Default 10 s.
    pub first_status: Duration,
    /// From the first "waiting" to pairing. The relay itself gives up after
    /// its waiting timeout (30 min by default, status 20); this bounds a relay
    /// that keeps saying "waiting". Default 31 min.
    pub pairing: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts { connect: Duration::from_secs(10), first_status: Duration::from_secs(10), pairing: Duration::from_secs(31 * 60) }
    }
}

/// What a client asks the relay for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendezvous {
    /// The room of this nameplate: a receiver, or a sender given a code.
    Claim(Nameplate),
    /// A sender without a code: a free nameplate chosen by the relay, the
    /// smallest one free. A relay that speaks only version 1 cannot allocate;
    /// then `fallback` (chosen by the client) is claimed instead.
    Allocate {
        /// The nameplate to claim from a version-1 relay.
        fallback: Nameplate,
    },
}

/// A paired relay connection.
#[derive(Debug)]
pub struct Paired {
    /// The connection; its next byte is the first byte from the other peer.
    pub stream: TcpStream,
    /// The nameplate of the room: the one claimed, or the one allocated.
    pub nameplate: Nameplate,
}

/// Connects to the relay at `addr` (`host:port`), sends the hello for
/// `nameplate` and `role`, and waits until paired: status 0 ("waiting") calls
/// `on_waiting` (once, however many the relay sends); status 1 returns the
/// stream, ready for the end-to-end protocol (its next byte is the first byte
/// from the other peer). Any other status is returned as
/// [`RelayError::Refused`] with the relay's code and message.
///
/// The nameplate must be canonical decimal, 1 to 65535
/// ([`RelayError::InvalidNameplate`] otherwise; nothing is sent). `TCP_NODELAY` and TCP keepalive are set from
/// the first byte, so a relay host that vanishes while we wait is noticed.
/// Deadlines are [`ClientTimeouts::default`]; see [`connect_with`].
pub async fn connect(addr: &str, nameplate: &str, role: Role, on_waiting: impl FnOnce()) -> Result<TcpStream, RelayError> {
    connect_with(addr, nameplate, role, on_waiting, ClientTimeouts::default()).await
}

/// [`connect`] with explicit deadlines.
pub async fn connect_with(
    addr: &str,
    nameplate: &str,
    role: Role,
    on_waiting: impl FnOnce(),
    limits: ClientTimeouts,
) -> Result<TcpStream, RelayError> {
    let np = nameplate_of(nameplate).ok_or(RelayError::InvalidNameplate)?;
    Ok(rendezvous(addr, Rendezvous::Claim(np), role, |_| on_waiting(), limits).await?.stream)
}

/// The whole client side of PROTOCOL.md §9: connects to `addr`, asks for
/// `request` in a version-2 hello, follows at most one redirect to another
/// instance of a fleet, falls back to a version-1 hello when the relay does
/// not know version 2, and waits until paired. `on_waiting` is called once,
/// with the room's nameplate, when the relay first says "waiting" (for an
/// allocation, after it has said which nameplate).
pub async fn rendezvous(
    addr: &str,
    request: Rendezvous,
    role: Role,
    on_waiting: impl FnOnce(Nameplate),
    limits: ClientTimeouts,
) -> Result<Paired, RelayError> {
    let ask = Ask::of(request, role)?;
    // A nameplate request always has its nameplate when the relay says "waiting".
    let tell = move |room: Option<Nameplate>| {
        if let Some(n) = room {
            on_waiting(n);
        }
    };
    let (stream, room, _) = run(addr, ask, role, false, |np, _| tell(np), limits).await?;
    let nameplate = room.ok_or(RelayError::Protocol("paired without a nameplate"))?;
    Ok(Paired { stream, nameplate })
}

/// [`rendezvous`], also asking the relay for the URL of its browser page
/// (PROTOCOL.md §9.1 flag 4, answered by status 4), so that a sender can
/// print a link that opens the page with the code (`pqdrop send --web`).
/// `on_waiting` hears the nameplate and the page's URL. There is no
/// fallback: a relay that serves no page, or is too old to say, fails with
/// [`RelayError::NoWebPage`] before anything is waited for.
pub async fn rendezvous_page(
    addr: &str,
    request: Rendezvous,
    role: Role,
    on_waiting: impl FnOnce(Nameplate, &str),
    limits: ClientTimeouts,
) -> Result<(Paired, String), RelayError> {
    let ask = Ask::of(request, role)?;
    let mut url = None;
    let tell = |room: Option<Nameplate>, page: Option<&str>| {
        if let (Some(n), Some(p)) = (room, page) {
            url = Some(p.to_string());
            on_waiting(n, p);
        }
    };
    let (stream, room, page) = run(addr, ask, role, true, tell, limits).await?;
    let nameplate = room.ok_or(RelayError::Protocol("paired without a nameplate"))?;
    let page = url.or(page).ok_or(RelayError::Protocol("no page URL (status 4) before pairing"))?;
    Ok((Paired { stream, nameplate }, page))
}

/// Meets the other contact in contact room `room` (PROTOCOL.md §9.1 flag 2,
/// §13.7), as `role`, and waits until paired; `on_waiting` is called once
/// when the relay first says "waiting". Follows at most one redirect. There
/// is no fallback: a relay that does not know contact rooms refuses the hello
/// and this fails with [`RelayError::NoContactRooms`].
pub async fn rendezvous_contact(
    addr: &str,
    room: [u8; CONTACT_ROOM_LEN],
    role: Role,
    on_waiting: impl FnOnce(),
    limits: ClientTimeouts,
) -> Result<TcpStream, RelayError> {
    Ok(run(addr, Ask::Contact(room), role, false, |_, _| on_waiting(), limits).await?.0)
}

/// What the hello asks for.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Claim(Nameplate),
    /// An allocation; the nameplate to claim from a version-1 relay.
    Allocate(Nameplate),
    Contact([u8; CONTACT_ROOM_LEN]),
}

impl Ask {
    /// A nameplate request; only a sender may ask for an allocation.
    fn of(request: Rendezvous, role: Role) -> Result<Ask, RelayError> {
        match request {
            Rendezvous::Claim(np) => Ok(Ask::Claim(np)),
            Rendezvous::Allocate { fallback } if role == Role::Sender => Ok(Ask::Allocate(fallback)),
            Rendezvous::Allocate { .. } => Err(RelayError::InvalidNameplate),
        }
    }
}

/// The client loop for any hello: redirect, version-1 fallback (nameplates
/// only), statuses until paired. Returns the stream, the nameplate of the
/// room (`None` for a contact room) and, when `page` asked for it, the page
/// URL of status 4.
async fn run(
    addr: &str,
    ask: Ask,
    role: Role,
    page: bool,
    on_waiting: impl FnOnce(Option<Nameplate>, Option<&str>),
    limits: ClientTimeouts,
) -> Result<(TcpStream, Option<Nameplate>, Option<String>), RelayError> {
    let (mut claim, allocate) = match ask {
        Ask::Claim(np) => (Some(np), false),
        Ask::Allocate(fallback) => (Some(fallback), true),
        Ask::Contact(_) => (None, false),
    };
    let digits = |n: Option<Nameplate>| n.map(|n| n.to_string()).unwrap_or_default();
    let mut addr = addr.to_owned();
    let mut version = PROTOCOL_VERSION;
    let mut redirected = false;
    let mut on_waiting = Some(on_waiting);
    let mut page_url: Option<String> = None;
    'connection: loop {
        let hello = match ask {
            Ask::Contact(room) => hello_contact_bytes(&room, role, redirected),
            _ if version == PROTOCOL_VERSION => hello_v2_page_bytes((!allocate).then(|| digits(claim)).as_deref(), role, redirected, page)?,
            _ => hello_bytes(&digits(claim), role)?,
        };
        let mut stream = open(&addr, &hello, limits).await?;
        let late = |what: &'static str, d: Duration| RelayError::Timeout { addr: addr.clone(), what, secs: d.as_secs_f64() };
        let mut deadline = Instant::now() + limits.first_status;
        let mut what = ("to answer the hello", limits.first_status);
        let mut first = true;
        loop {
            let (code, message) = timeout_at(deadline, read_status(&mut stream)).await.map_err(|_| late(what.0, what.1))??;
            let was_first = std::mem::replace(&mut first, false);
            match StatusCode::from_code(code) {
                // The page's URL comes first; an allocation or redirect may
                // still follow it as the "first" status.
                Some(StatusCode::Page) if page && was_first => {
                    if message.is_empty() {
                        return Err(RelayError::NoWebPage { addr, message: "it serves none".into() });
                    }
                    if !valid_page_url(&message) {
                        return Err(RelayError::Protocol("page URL (status 4) is not an http(s) URL"));
                    }
                    page_url = Some(message);
                    first = true;
                }
                _ if page && page_url.is_none() && !StatusCode::from_code(code).is_some_and(StatusCode::is_error) => {
                    return Err(RelayError::Protocol("the relay did not answer the page flag with status 4 first"));
                }
                Some(StatusCode::BadHello) if page && was_first => {
                    return Err(RelayError::NoWebPage { addr, message: format!("it is too old to say: {message}") });
                }
                Some(StatusCode::Waiting) => {
                    if let Some(f) = on_waiting.take() {
                        f(claim, page_url.as_deref());
                        deadline = Instant::now() + limits.pairing;
                        what = ("to pair us with the other side", limits.pairing);
                    }
                }
                Some(StatusCode::Paired) => return Ok((stream, claim, page_url)),
                Some(StatusCode::Allocated) if allocate && version == PROTOCOL_VERSION && was_first => {
                    claim =
                        Some(nameplate_of(&message).ok_or(RelayError::Protocol("allocated nameplate is not a nameplate (1 to 65535)"))?);
                }
                Some(StatusCode::Redirect) if version == PROTOCOL_VERSION && was_first => {
                    if redirected {
                        return Err(RelayError::Protocol("redirected a second time"));
                    }
                    if !valid_redirect(&message) {
                        return Err(RelayError::Protocol("redirect address is not host:port"));
                    }
                    tracing::debug!(from = %addr, to = %message, "redirected to another relay instance");
                    addr = message;
                    redirected = true;
                    page_url = None;
                    continue 'connection;
                }
                // A relay from before contact rooms refuses the flag with
                // "bad hello": there is nothing to fall back to.
                Some(StatusCode::BadHello) if matches!(ask, Ask::Contact(_)) && was_first => {
                    return Err(RelayError::NoContactRooms { addr, message });
                }
                // A relay from before version 2 answers a version-2 hello with
                // "bad hello" and nothing else: say it again in version 1.
                Some(StatusCode::BadHello) if version == PROTOCOL_VERSION && was_first && !redirected => {
                    tracing::debug!(relay = %addr, "relay does not speak version 2; falling back to version 1");
                    version = PROTOCOL_VERSION_1;
                    continue 'connection;
                }
                _ => return Err(RelayError::Refused { code, message }),
            }
        }
    }
}

/// `http://` or `https://` and a host, printable ASCII, at most 512 bytes.
fn valid_page_url(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
        && s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// `host:port` with a port, printable ASCII, at most 255 bytes.
fn valid_redirect(s: &str) -> bool {
    s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_graphic())
        && s.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

/// Connects, tunes the socket and sends `hello`, within the deadlines.
async fn open(addr: &str, hello: &[u8], limits: ClientTimeouts) -> Result<TcpStream, RelayError> {
    let late = |what: &'static str, d: Duration| RelayError::Timeout { addr: addr.to_owned(), what, secs: d.as_secs_f64() };
    let mut stream = timeout(limits.connect, TcpStream::connect(addr))
        .await
        .map_err(|_| late("to accept the connection", limits.connect))?
        .map_err(|source| RelayError::Connect { addr: addr.to_owned(), source })?;
    // Best effort: a failure only costs latency, or a later notice of a dead host.
    let _ = stream.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(15)).with_interval(Duration::from_secs(5));
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    timeout(limits.first_status, stream.write_all(hello)).await.map_err(|_| late("to take the hello", limits.first_status))??;
    Ok(stream)
}
