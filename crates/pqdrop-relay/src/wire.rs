//! The relay's messages: the hello and the status messages (PROTOCOL.md §9),
//! over the protocol core's IxiVarUInt codec and nameplate rule.

use pqdrop_proto::code::Nameplate;
use pqdrop_proto::codec::{decode_varuint_partial, put_varuint, varuint_len_from_first, Partial};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::RelayError;

/// The 4 magic bytes that start every hello.
pub const MAGIC: [u8; 4] = *b"pqdr";
/// The newest relay protocol version this crate speaks. A relay also accepts
/// version-1 hellos, and a client falls back to version 1 when a relay does
/// not know version 2 (PROTOCOL.md §9.6).
pub const PROTOCOL_VERSION: u64 = 2;
/// The first relay protocol version: a nameplate chosen by the client, no
/// redirects.
pub const PROTOCOL_VERSION_1: u64 = 1;
/// Longest nameplate, in ASCII digits (PROTOCOL.md §9.1: canonical decimal,
/// 1 to 65535).
pub const MAX_NAMEPLATE_LEN: usize = Nameplate::MAX_DIGITS;
/// The relay reads at most this many bytes while looking for a hello.
pub const MAX_HELLO_READ: usize = 64;
/// Longest human-readable status message, in bytes.
pub const MAX_STATUS_MESSAGE_LEN: usize = 512;

/// Which side of a transfer a peer is. A room pairs one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The sender / accepter (wire value 1).
    Sender,
    /// The receiver / requester (wire value 2).
    Receiver,
}

impl Role {
    /// The role's value in the hello.
    pub const fn wire_value(self) -> u64 {
        match self {
            Role::Sender => 1,
            Role::Receiver => 2,
        }
    }

    /// The role for a hello value, if it is one.
    pub const fn from_wire(v: u64) -> Option<Role> {
        match v {
            1 => Some(Role::Sender),
            2 => Some(Role::Receiver),
            _ => None,
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

/// A relay status code (see the protocol table in the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusCode {
    /// 0: waiting for the other peer.
    Waiting,
    /// 1: paired; the connection is now a byte pipe to the other peer.
    Paired,
    /// 2 (version 2 only): the relay allocated a nameplate for this sender;
    /// the message field is that nameplate in decimal. "Waiting" follows.
    Allocated,
    /// 3 (version 2 only): the other peer waits at another instance of the
    /// fleet; the message field is its address, `host:port`. The relay
    /// closes; the client connects there once, with the redirected flag.
    Redirect,
    /// 4 (version 2, only to a hello with the page flag): the message field
    /// is the URL of the relay's browser page, or empty when it serves none.
    /// It comes first, before any other status.
    Page,
    /// 16: a peer with the same role is already waiting on that nameplate.
    RoomTaken,
    /// 17: too many pending rooms from this address.
    TooManyPendingFromAddress,
    /// 18: the relay is full.
    RelayFull,
    /// 19: too many joins from this address (rate limited).
    RateLimited,
    /// 20: timed out waiting for the other peer.
    WaitTimeout,
    /// 21: the hello was malformed or too slow.
    BadHello,
    /// 22: the relay is shutting down.
    ShuttingDown,
    /// 23: too many bytes sent before pairing.
    TooManyPrepairBytes,
    /// 24: the fleet's shared directory (Redis) cannot be reached.
    DirectoryUnavailable,
    /// 25: the other peer waits at another instance, and this client cannot
    /// be sent there (a version-1 client, or one already redirected once).
    CannotRedirect,
}

impl StatusCode {
    /// All codes, in wire order.
    pub const ALL: [StatusCode; 15] = [
        StatusCode::Waiting,
        StatusCode::Paired,
        StatusCode::Allocated,
        StatusCode::Redirect,
        StatusCode::Page,
        StatusCode::RoomTaken,
        StatusCode::TooManyPendingFromAddress,
        StatusCode::RelayFull,
        StatusCode::RateLimited,
        StatusCode::WaitTimeout,
        StatusCode::BadHello,
        StatusCode::ShuttingDown,
        StatusCode::TooManyPrepairBytes,
        StatusCode::DirectoryUnavailable,
        StatusCode::CannotRedirect,
    ];

    /// The numeric code on the wire.
    pub const fn code(self) -> u64 {
        match self {
            StatusCode::Waiting => 0,
            StatusCode::Paired => 1,
            StatusCode::Allocated => 2,
            StatusCode::Redirect => 3,
            StatusCode::Page => 4,
            StatusCode::RoomTaken => 16,
            StatusCode::TooManyPendingFromAddress => 17,
            StatusCode::RelayFull => 18,
            StatusCode::RateLimited => 19,
            StatusCode::WaitTimeout => 20,
            StatusCode::BadHello => 21,
            StatusCode::ShuttingDown => 22,
            StatusCode::TooManyPrepairBytes => 23,
            StatusCode::DirectoryUnavailable => 24,
            StatusCode::CannotRedirect => 25,
        }
    }

    /// The status for a numeric code, if this crate knows it.
    pub fn from_code(code: u64) -> Option<StatusCode> {
        StatusCode::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether this status is a refusal (the relay closes after it).
    pub const fn is_error(self) -> bool {
        !matches!(self, StatusCode::Waiting | StatusCode::Paired | StatusCode::Allocated | StatusCode::Redirect | StatusCode::Page)
    }

    /// Index of an error code in `0..ERROR_CODES` (codes 16..=25), for counters.
    pub(crate) fn error_index(self) -> Option<usize> {
        let c = self.code();
        if (16..16 + ERROR_CODES as u64).contains(&c) {
            usize::try_from(c - 16).ok()
        } else {
            None
        }
    }
}

/// How many error codes there are (16..=25), for counters.
pub(crate) const ERROR_CODES: usize = 10;

/// Result of decoding from a possibly incomplete prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<T> {
    /// More bytes are needed (and nothing seen so far is invalid).
    Incomplete,
    /// Invalid; the reason is safe to show to the peer.
    Invalid(&'static str),
    /// The value and how many bytes it took.
    Done(T, usize),
}

/// Decodes an IxiVarUInt from the front of `buf` (the core's codec).
pub(crate) fn get_varuint(buf: &[u8]) -> Decoded<u64> {
    match decode_varuint_partial(buf) {
        Ok(Partial::Done(v, n)) => Decoded::Done(v, n),
        Ok(Partial::NeedMore) => Decoded::Incomplete,
        Err(pqdrop_proto::Error::Decode { why, .. }) => Decoded::Invalid(why),
        Err(_) => Decoded::Invalid("malformed IxiVarUInt"),
    }
}

/// Length of a contact room identifier, in bytes (PROTOCOL.md §13.7).
pub const CONTACT_ROOM_LEN: usize = 16;

/// The room a hello names: a code's nameplate, or (version 2, flag 2) a
/// contact room, the 16-byte identifier both contacts compute
/// (PROTOCOL.md §13.7). Contact rooms never take a nameplate, so code
/// transfers and contact transfers cannot meet by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Room {
    Nameplate(Nameplate),
    Contact([u8; CONTACT_ROOM_LEN]),
}

impl Room {
    /// The room's name in the fleet's directory: the nameplate in decimal,
    /// or `c` and the contact room in lowercase hex (never a nameplate).
    pub(crate) fn key(&self) -> String {
        match self {
            Room::Nameplate(n) => n.to_string(),
            Room::Contact(id) => format!("c{}", hex(id)),
        }
    }

    /// The room a directory name names (the inverse of [`Room::key`]).
    pub(crate) fn from_key(s: &str) -> Option<Room> {
        match s.strip_prefix('c') {
            Some(h) => contact_room_of(h.as_bytes()).map(Room::Contact),
            None => nameplate_of(s).map(Room::Nameplate),
        }
    }

    /// The nameplate, for a code's room.
    pub(crate) fn nameplate(&self) -> Option<Nameplate> {
        match self {
            Room::Nameplate(n) => Some(*n),
            Room::Contact(_) => None,
        }
    }
}

/// For logs: a nameplate in full; a contact room by its first 4 bytes, enough
/// to follow it through a log without writing down the whole identifier.
impl std::fmt::Display for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Room::Nameplate(n) => write!(f, "{n}"),
            Room::Contact(id) => write!(f, "contact:{}", hex(&id[..4])),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The contact room 32 lowercase hex digits name.
pub(crate) fn contact_room_of(h: &[u8]) -> Option<[u8; CONTACT_ROOM_LEN]> {
    if h.len() != 2 * CONTACT_ROOM_LEN || !h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let digit = |c: u8| if c.is_ascii_digit() { c - b'0' } else { c - b'a' + 10 };
    let mut out = [0u8; CONTACT_ROOM_LEN];
    for (o, pair) in out.iter_mut().zip(h.chunks_exact(2)) {
        *o = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Some(out)
}

/// A parsed hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    /// 1 or 2.
    pub(crate) version: u64,
    pub(crate) role: Role,
    /// `None`: a version-2 sender asks the relay to allocate a nameplate.
    pub(crate) room: Option<Room>,
    /// Version 2: this connection follows a redirect (never redirect it again).
    pub(crate) redirected: bool,
    /// Version 2, flag 4: the client asks for the browser page's URL (status 4).
    pub(crate) page: bool,
}

/// The nameplate `s` names, if it is one in canonical form (PROTOCOL.md §9.1).
pub(crate) fn nameplate_of(s: &str) -> Option<Nameplate> {
    Nameplate::from_wire(s.as_bytes())
}

/// Version-2 hello flag: this connection follows a redirect.
const FLAG_REDIRECTED: u64 = 1;
/// Version-2 hello flag: the room is a contact room (32 lowercase hex digits).
const FLAG_CONTACT: u64 = 2;
/// Version-2 hello flag: tell me the browser page's URL (status 4 first).
const FLAG_PAGE: u64 = 4;

/// One IxiVarUInt at `*pos`, advancing it.
fn field(buf: &[u8], pos: &mut usize) -> Decoded<u64> {
    match get_varuint(&buf[*pos..]) {
        Decoded::Done(v, n) => {
            *pos += n;
            Decoded::Done(v, n)
        }
        other => other,
    }
}

/// Parses a hello (version 1 or 2) from the front of `buf`, rejecting invalid
/// input as early as the bytes seen so far allow.
pub(crate) fn parse_hello(buf: &[u8]) -> Decoded<Hello> {
    macro_rules! next {
        ($pos:expr) => {
            match field(buf, &mut $pos) {
                Decoded::Done(v, _) => v,
                Decoded::Incomplete => return Decoded::Incomplete,
                Decoded::Invalid(e) => return Decoded::Invalid(e),
            }
        };
    }
    let seen = buf.len().min(MAGIC.len());
    if buf[..seen] != MAGIC[..seen] {
        return Decoded::Invalid("wrong magic (not a pqdrop relay client?)");
    }
    if buf.len() < MAGIC.len() {
        return Decoded::Incomplete;
    }
    let mut pos = MAGIC.len();
    let version = next!(pos);
    if version != PROTOCOL_VERSION_1 && version != PROTOCOL_VERSION {
        return Decoded::Invalid("unsupported protocol version (this relay speaks versions 1 and 2)");
    }
    let Some(role) = Role::from_wire(next!(pos)) else {
        return Decoded::Invalid("unknown role");
    };
    let (mut redirected, mut contact, mut page) = (false, false, false);
    if version == PROTOCOL_VERSION {
        let flags = next!(pos);
        if flags & !(FLAG_REDIRECTED | FLAG_CONTACT | FLAG_PAGE) != 0 {
            return Decoded::Invalid("unknown hello flags");
        }
        redirected = flags & FLAG_REDIRECTED != 0;
        contact = flags & FLAG_CONTACT != 0;
        page = flags & FLAG_PAGE != 0;
        if contact && page {
            return Decoded::Invalid("the page flag is only for a code's room, not a contact room");
        }
    }
    let len = next!(pos);
    if contact {
        if len != 2 * CONTACT_ROOM_LEN as u64 {
            return Decoded::Invalid("contact room must be 32 lowercase hex digits");
        }
        let avail = &buf[pos..];
        let got = &avail[..avail.len().min(2 * CONTACT_ROOM_LEN)];
        if !got.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Decoded::Invalid("contact room must be 32 lowercase hex digits");
        }
        return match contact_room_of(got) {
            Some(id) => Decoded::Done(Hello { version, role, room: Some(Room::Contact(id)), redirected, page }, pos + got.len()),
            None => Decoded::Incomplete,
        };
    }
    let min = if version == PROTOCOL_VERSION && role == Role::Sender { 0 } else { 1 };
    let len = match usize::try_from(len) {
        Ok(l) if (min..=MAX_NAMEPLATE_LEN).contains(&l) => l,
        _ if min == 0 => return Decoded::Invalid("nameplate must be empty (allocate one) or 1 to 5 digits"),
        _ => return Decoded::Invalid("nameplate must be 1 to 5 digits"),
    };
    let avail = &buf[pos..];
    let got = &avail[..avail.len().min(len)];
    if !got.iter().all(u8::is_ascii_digit) {
        return Decoded::Invalid("nameplate must be ASCII digits");
    }
    if got.first() == Some(&b'0') {
        return Decoded::Invalid("nameplate must not start with 0");
    }
    if got.len() < len {
        return Decoded::Incomplete;
    }
    let room = match len {
        0 => None,
        _ => match Nameplate::from_wire(got) {
            Some(n) => Some(Room::Nameplate(n)),
            None => return Decoded::Invalid("nameplate must be at most 65535"),
        },
    };
    Decoded::Done(Hello { version, role, room, redirected, page }, pos + len)
}

/// Encodes the version-2 hello of a contact room (flag 2): `room` as 32
/// lowercase hex digits, for either role; `redirected` when this connection
/// follows a redirect.
pub fn hello_contact_bytes(room: &[u8; CONTACT_ROOM_LEN], role: Role, redirected: bool) -> Vec<u8> {
    let h = hex(room);
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + h.len());
    out.extend_from_slice(&MAGIC);
    put_varuint(&mut out, PROTOCOL_VERSION);
    put_varuint(&mut out, role.wire_value());
    put_varuint(&mut out, FLAG_CONTACT | if redirected { FLAG_REDIRECTED } else { 0 });
    put_varuint(&mut out, h.len() as u64);
    out.extend_from_slice(h.as_bytes());
    out
}

/// Encodes the version-2 hello: a claim of `nameplate`, or (`None`, senders
/// only) a request for the relay to allocate one; `redirected` when this
/// connection follows a redirect.
///
/// Fails with [`RelayError::InvalidNameplate`] unless `nameplate` is a
/// canonical nameplate (1 to 65535, no leading zero), or `None` for a sender.
pub fn hello_v2_bytes(nameplate: Option<&str>, role: Role, redirected: bool) -> Result<Vec<u8>, RelayError> {
    hello_v2_page_bytes(nameplate, role, redirected, false)
}

/// [`hello_v2_bytes`], and with `page` the flag that asks for the URL of the
/// relay's browser page (PROTOCOL.md §9.1, flag 4; answered by status 4).
pub fn hello_v2_page_bytes(nameplate: Option<&str>, role: Role, redirected: bool, page: bool) -> Result<Vec<u8>, RelayError> {
    let np = nameplate.unwrap_or("");
    if !(nameplate_of(np).is_some() || (np.is_empty() && role == Role::Sender)) {
        return Err(RelayError::InvalidNameplate);
    }
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + np.len());
    out.extend_from_slice(&MAGIC);
    put_varuint(&mut out, PROTOCOL_VERSION);
    put_varuint(&mut out, role.wire_value());
    put_varuint(&mut out, if redirected { FLAG_REDIRECTED } else { 0 } | if page { FLAG_PAGE } else { 0 });
    put_varuint(&mut out, np.len() as u64);
    out.extend_from_slice(np.as_bytes());
    Ok(out)
}

/// Encodes the version-1 hello for `nameplate` and `role` (what clients
/// before version 2 send; the relay still serves them).
///
/// Fails with [`RelayError::InvalidNameplate`] unless `nameplate` is a
/// canonical nameplate (1 to 65535, no leading zero).
pub fn hello_bytes(nameplate: &str, role: Role) -> Result<Vec<u8>, RelayError> {
    if nameplate_of(nameplate).is_none() {
        return Err(RelayError::InvalidNameplate);
    }
    let mut out = Vec::with_capacity(MAGIC.len() + 3 + nameplate.len());
    out.extend_from_slice(&MAGIC);
    put_varuint(&mut out, PROTOCOL_VERSION_1);
    put_varuint(&mut out, role.wire_value());
    put_varuint(&mut out, nameplate.len() as u64);
    out.extend_from_slice(nameplate.as_bytes());
    Ok(out)
}

/// Encodes a status message; `message` is cut (at a character boundary) to
/// [`MAX_STATUS_MESSAGE_LEN`] bytes.
pub(crate) fn status_bytes(code: StatusCode, message: &str) -> Vec<u8> {
    let mut end = message.len().min(MAX_STATUS_MESSAGE_LEN);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let msg = &message.as_bytes()[..end];
    let mut out = Vec::with_capacity(msg.len() + 4);
    put_varuint(&mut out, code.code());
    put_varuint(&mut out, msg.len() as u64);
    out.extend_from_slice(msg);
    out
}

/// For tests and vectors: how the relay reads `buf` as a hello: `Ok(Some(n))`
/// a complete hello of `n` bytes, `Ok(None)` incomplete so far, `Err` refused.
#[doc(hidden)]
pub fn check_hello(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    match parse_hello(buf) {
        Decoded::Done(_, n) => Ok(Some(n)),
        Decoded::Incomplete => Ok(None),
        Decoded::Invalid(e) => Err(e),
    }
}

/// For the fuzz target: parses `buf` as a hello and, when one parses, checks
/// that it took at most 40 bytes and that encoding it again gives exactly
/// those bytes (one encoding per hello). Panics if not.
#[doc(hidden)]
pub fn fuzz_hello(buf: &[u8]) {
    if let Decoded::Done(h, used) = parse_hello(buf) {
        assert!(used <= buf.len() && used <= 40, "a hello is at most 40 bytes");
        let np = match h.room {
            Some(Room::Contact(id)) => {
                assert_eq!(hello_contact_bytes(&id, h.role, h.redirected), &buf[..used], "a contact hello re-encodes to its bytes");
                return;
            }
            Some(Room::Nameplate(n)) => Some(n.to_string()),
            None => None,
        };
        let again = if h.version == PROTOCOL_VERSION_1 {
            hello_bytes(np.as_deref().unwrap_or(""), h.role)
        } else {
            hello_v2_page_bytes(np.as_deref(), h.role, h.redirected, h.page)
        };
        assert_eq!(again.ok().as_deref(), Some(&buf[..used]), "a parsed hello re-encodes to its bytes");
    }
}

/// Reads one IxiVarUInt from `r` without reading past it.
async fn read_varuint<R: AsyncRead + Unpin>(r: &mut R) -> Result<u64, RelayError> {
    let mut buf = [0u8; 9];
    read_exact_or_closed(r, &mut buf[..1]).await?;
    let len = varuint_len_from_first(buf[0]).map_err(|_| RelayError::Protocol("reserved IxiVarUInt prefix"))?;
    read_exact_or_closed(r, &mut buf[1..len]).await?;
    match get_varuint(&buf[..len]) {
        Decoded::Done(v, _) => Ok(v),
        Decoded::Invalid(why) => Err(RelayError::Protocol(why)),
        Decoded::Incomplete => Err(RelayError::Protocol("malformed IxiVarUInt")),
    }
}

async fn read_exact_or_closed<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), RelayError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(RelayError::Closed),
        Err(e) => Err(RelayError::Io(e)),
    }
}

/// Reads one status message (`code`, human message) from a relay connection,
/// without reading any byte past it (so that after status 1 the stream is
/// positioned at the first byte from the other peer).
///
/// The message is decoded leniently (invalid UTF-8 is replaced) and control
/// characters are replaced by `?`, so it is safe to print to a terminal. Fails
/// with [`RelayError::Closed`] if the relay closed first, or
/// [`RelayError::Protocol`] on a malformed message. It has no timeout of its own.
pub async fn read_status<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u64, String), RelayError> {
    let code = read_varuint(r).await?;
    let len = read_varuint(r).await?;
    let len = match usize::try_from(len) {
        Ok(l) if l <= MAX_STATUS_MESSAGE_LEN => l,
        _ => return Err(RelayError::Protocol("status message longer than 512 bytes")),
    };
    let mut msg = [0u8; MAX_STATUS_MESSAGE_LEN];
    read_exact_or_closed(r, &mut msg[..len]).await?;
    let text = String::from_utf8_lossy(&msg[..len]).chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    Ok((code, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        use pqdrop_proto::codec::put_varuint;
        let mut out = Vec::new();
        put_varuint(&mut out, v);
        out
    }

    #[test]
    fn varuint_roundtrip_and_shortest_form() {
        for v in [0u64, 1, 0xF7, 0xF8, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, 0x1_0000_0000, u64::MAX] {
            let b = enc(v);
            assert_eq!(get_varuint(&b), Decoded::Done(v, b.len()), "{v}");
            for cut in 0..b.len() {
                assert_eq!(get_varuint(&b[..cut]), Decoded::Incomplete);
            }
        }
        assert_eq!(enc(0xF7).len(), 1);
        assert_eq!(enc(0xF8), vec![0xFC, 0xF8, 0]);
        assert!(matches!(get_varuint(&[0xFC, 5, 0]), Decoded::Invalid(_)));
        assert!(matches!(get_varuint(&[0xFD, 0xFF, 0xFF, 0, 0]), Decoded::Invalid(_)));
        assert!(matches!(get_varuint(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]), Decoded::Invalid(_)));
        for p in [0xF8u8, 0xF9, 0xFA, 0xFB, 0xFF] {
            assert!(matches!(get_varuint(&[p]), Decoded::Invalid(_)));
        }
    }

    #[test]
    fn hello_roundtrip_and_prefixes() {
        let h = hello_bytes("4711", Role::Receiver).unwrap();
        assert_eq!(h, b"pqdr\x01\x02\x044711");
        let want =
            Hello { version: 1, role: Role::Receiver, room: nameplate_of("4711").map(Room::Nameplate), redirected: false, page: false };
        let mut with_extra = h.clone();
        with_extra.extend_from_slice(b"xyz");
        assert_eq!(parse_hello(&with_extra), Decoded::Done(want, h.len()));
        for cut in 0..h.len() {
            assert_eq!(parse_hello(&h[..cut]), Decoded::Incomplete, "cut {cut}");
        }
        assert!(hello_bytes("", Role::Sender).is_err());
        assert!(hello_bytes("65536", Role::Sender).is_err());
        assert!(hello_bytes("12a", Role::Sender).is_err());
        assert!(hello_bytes("07", Role::Sender).is_err());
        assert!(hello_bytes("65535", Role::Sender).is_ok());
    }

    #[test]
    fn hello_rejects_early() {
        assert!(matches!(parse_hello(b"x"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdx"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x03"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x01\x03"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x01\x01\x00"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x01\x01\x0b"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x01\x01\xfe\xff\xff\xff\xff\xff\xff\xff\xff"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x01\x01\x051a"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\xfc\x01\x00"), Decoded::Invalid(_)));
    }

    #[test]
    fn hello_v2() {
        let h = hello_v2_bytes(None, Role::Sender, false).unwrap();
        assert_eq!(h, b"pqdr\x02\x01\x00\x00");
        let want = Hello { version: 2, role: Role::Sender, room: None, redirected: false, page: false };
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x00\x0207"), Decoded::Invalid(_)), "a leading zero");
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x00\x0599999"), Decoded::Invalid(_)), "over 65535");
        assert_eq!(parse_hello(&h), Decoded::Done(want, h.len()));
        let h = hello_v2_page_bytes(None, Role::Sender, false, true).unwrap();
        assert_eq!(h, b"pqdr\x02\x01\x04\x00", "the page flag");
        let want = Hello { version: 2, role: Role::Sender, room: None, redirected: false, page: true };
        assert_eq!(parse_hello(&h), Decoded::Done(want, h.len()));
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x08\x00"), Decoded::Invalid(_)), "flag 8 is unknown");
        let h = hello_v2_bytes(Some("42"), Role::Receiver, true).unwrap();
        assert_eq!(h, b"pqdr\x02\x02\x01\x0242");
        let want = Hello { version: 2, role: Role::Receiver, room: nameplate_of("42").map(Room::Nameplate), redirected: true, page: false };
        assert_eq!(parse_hello(&h), Decoded::Done(want, h.len()));
        for cut in 0..h.len() {
            assert_eq!(parse_hello(&h[..cut]), Decoded::Incomplete, "cut {cut}");
        }
        // A receiver cannot ask for an allocation; unknown flags are refused.
        assert!(hello_v2_bytes(None, Role::Receiver, false).is_err());
        assert!(matches!(parse_hello(b"pqdr\x02\x02\x00\x00"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x08"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x06"), Decoded::Invalid(_)), "page and contact room");
        // Version 1 still needs a nameplate.
        assert!(matches!(parse_hello(b"pqdr\x01\x01\x00"), Decoded::Invalid(_)));
    }

    #[test]
    fn hello_contact() {
        let id: [u8; 16] = core::array::from_fn(|i| (i as u8) * 17);
        let h = hello_contact_bytes(&id, Role::Receiver, false);
        assert_eq!(h, b"pqdr\x02\x02\x02\x2000112233445566778899aabbccddeeff");
        let want = Hello { version: 2, role: Role::Receiver, room: Some(Room::Contact(id)), redirected: false, page: false };
        assert_eq!(parse_hello(&h), Decoded::Done(want, h.len()));
        for cut in 0..h.len() {
            assert_eq!(parse_hello(&h[..cut]), Decoded::Incomplete, "cut {cut}");
        }
        let h = hello_contact_bytes(&id, Role::Sender, true);
        assert_eq!(&h[4..8], b"\x02\x01\x03\x20");
        assert!(matches!(parse_hello(&h), Decoded::Done(Hello { redirected: true, role: Role::Sender, .. }, 40)));
        // Exactly 32 lowercase hex digits, refused at the first bad byte.
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x02\x1f"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x02\x00"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x02\x2000A"), Decoded::Invalid(_)));
        assert!(matches!(parse_hello(b"pqdr\x02\x01\x02\x20g"), Decoded::Invalid(_)));
        // Directory names round-trip and never look like a nameplate.
        let room = Room::Contact(id);
        assert_eq!(room.key(), "c00112233445566778899aabbccddeeff");
        assert_eq!(Room::from_key(&room.key()), Some(room));
        assert_eq!(Room::from_key("4711"), nameplate_of("4711").map(Room::Nameplate));
        assert_eq!(Room::from_key("c0011"), None);
        assert_eq!(room.to_string(), "contact:00112233");
    }

    #[test]
    fn status_roundtrip_and_truncation() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let long = "é".repeat(400);
        let b = status_bytes(StatusCode::BadHello, &long);
        let (code, msg) = rt.block_on(read_status(&mut &b[..])).unwrap();
        assert_eq!(code, 21);
        assert_eq!(msg.len(), 512);
        let b = status_bytes(StatusCode::Waiting, "a\x1b[2Jb");
        let (code, msg) = rt.block_on(read_status(&mut &b[..])).unwrap();
        assert_eq!((code, msg.as_str()), (0, "a?[2Jb"));
        let bad = [21u8, 0xFC, 0x01, 0x02];
        assert!(matches!(rt.block_on(read_status(&mut &bad[..])), Err(RelayError::Protocol(_))));
        assert!(matches!(rt.block_on(read_status(&mut &[21u8, 5, b'a'][..])), Err(RelayError::Closed)));
    }
}
