//! The LAN datagrams (PROTOCOL.md §10): announcements and queries, for a
//! code's nameplate (version 1, 32 bytes) or a contact room (version 2,
//! 37 bytes).
//!
//! A fixed size per version with zero padding leaves no room for ambiguity:
//! parsing is a handful of exact comparisons, and anything else is dropped.

use crate::{Error, Result};

/// Size of a version-1 (nameplate) announcement or query.
pub const ANNOUNCE_LEN: usize = 32;
/// Size of a version-2 (contact room) announcement or query.
pub const CONTACT_ANNOUNCE_LEN: usize = 37;
/// The largest datagram of either version.
pub(crate) const MAX_DATAGRAM: usize = CONTACT_ANNOUNCE_LEN;
/// Longest nameplate field.
pub const MAX_NAMEPLATE_LEN: usize = 10;

const MAGIC: &[u8; 10] = b"PQDROP-LAN";
const QUERY_MAGIC: &[u8; 10] = b"PQDROP-ASK";
const V_NAMEPLATE: u8 = 1;
const V_CONTACT: u8 = 2;

/// What a LAN rendezvous is for: a code's nameplate, or a contact room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanRoom {
    /// A code's nameplate, canonical decimal (1 to 65535).
    Nameplate(String),
    /// A contact room (PROTOCOL.md §13.7): 16 opaque bytes.
    Contact([u8; 16]),
}

impl LanRoom {
    /// The room of a nameplate given as text; fails unless it is canonical.
    pub fn nameplate(nameplate: &str) -> Result<Self> {
        if valid_nameplate(nameplate.as_bytes()) {
            Ok(LanRoom::Nameplate(nameplate.to_owned()))
        } else {
            Err(invalid_input(format!("code number {nameplate:?} is not a number from 1 to 65535")))
        }
    }
}

impl std::fmt::Display for LanRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LanRoom::Nameplate(n) => f.write_str(n),
            LanRoom::Contact(r) => write!(f, "contact room {}", hex::encode(r)),
        }
    }
}

pub(crate) fn invalid_input(msg: String) -> Error {
    Error::Io { path: None, err: std::io::Error::new(std::io::ErrorKind::InvalidInput, msg) }
}

/// [`Nameplate::from_wire`](pqdrop_proto::code::Nameplate::from_wire): the
/// same rule as the relay's.
fn valid_nameplate(b: &[u8]) -> bool {
    pqdrop_proto::code::Nameplate::from_wire(b).is_some()
}

/// One announcement: "a sender (or a contact receiver) for this room
/// listens on this TCP port".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    room: LanRoom,
    port: u16,
    instance: [u8; 8],
}

impl Announcement {
    /// Builds an announcement for a nameplate; fails if it is not canonical
    /// or the port is 0.
    pub fn new(nameplate: &str, port: u16, instance: [u8; 8]) -> Result<Self> {
        Self::for_room(LanRoom::nameplate(nameplate)?, port, instance)
    }

    /// Builds an announcement for any room; fails if the port is 0.
    pub fn for_room(room: LanRoom, port: u16, instance: [u8; 8]) -> Result<Self> {
        if port == 0 {
            return Err(invalid_input("announced TCP port must not be 0".into()));
        }
        Ok(Announcement { room, port, instance })
    }

    /// The announced room.
    pub fn room(&self) -> &LanRoom {
        &self.room
    }

    /// The announced nameplate (empty for a contact room).
    pub fn nameplate(&self) -> &str {
        match &self.room {
            LanRoom::Nameplate(n) => n,
            LanRoom::Contact(_) => "",
        }
    }

    /// The announced TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The announcer's random instance id.
    pub fn instance(&self) -> [u8; 8] {
        self.instance
    }

    /// Serialises to the fixed wire layout of its version.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = encode_room(MAGIC, &self.room);
        let at = out.len() - 10;
        out[at..at + 2].copy_from_slice(&self.port.to_be_bytes());
        out[at + 2..].copy_from_slice(&self.instance);
        out
    }

    /// Parses a datagram strictly. The error is a short reason for debug logs
    /// only; callers drop anything that does not parse.
    pub fn parse(buf: &[u8]) -> std::result::Result<Self, &'static str> {
        if buf.len() < 11 || &buf[..10] != MAGIC {
            return Err(if buf.len() != ANNOUNCE_LEN && buf.len() != CONTACT_ANNOUNCE_LEN { "wrong length" } else { "bad magic" });
        }
        let room = parse_room(buf)?;
        let tail = &buf[buf.len() - 10..];
        let port = u16::from_be_bytes([tail[0], tail[1]]);
        if port == 0 {
            return Err("port 0");
        }
        let mut instance = [0u8; 8];
        instance.copy_from_slice(&tail[2..]);
        Ok(Announcement { room, port, instance })
    }
}

/// The magic, the version and the room field, followed by 10 zero bytes
/// (the port and instance id of an announcement; zeros in a query).
fn encode_room(magic: &[u8; 10], room: &LanRoom) -> Vec<u8> {
    match room {
        LanRoom::Nameplate(np) => {
            let mut out = vec![0u8; ANNOUNCE_LEN];
            out[..10].copy_from_slice(magic);
            out[10] = V_NAMEPLATE;
            // `LanRoom::nameplate` guarantees 1 to 5 digits, so this fits.
            let n = np.len().min(MAX_NAMEPLATE_LEN);
            out[11] = n as u8;
            out[12..12 + n].copy_from_slice(&np.as_bytes()[..n]);
            out
        }
        LanRoom::Contact(r) => {
            let mut out = vec![0u8; CONTACT_ANNOUNCE_LEN];
            out[..10].copy_from_slice(magic);
            out[10] = V_CONTACT;
            out[11..27].copy_from_slice(r);
            out
        }
    }
}

/// The room of a datagram whose magic was checked, by its version.
fn parse_room(buf: &[u8]) -> std::result::Result<LanRoom, &'static str> {
    match (buf[10], buf.len()) {
        (V_NAMEPLATE, ANNOUNCE_LEN) => {
            let n = usize::from(buf[11]);
            if n == 0 || n > MAX_NAMEPLATE_LEN {
                return Err("bad nameplate length");
            }
            let (np, pad) = buf[12..22].split_at(n);
            if !valid_nameplate(np) {
                return Err("nameplate is not a canonical number (1 to 65535)");
            }
            if pad.iter().any(|&x| x != 0) {
                return Err("non-zero padding");
            }
            // `np` is ASCII digits, so this conversion cannot lose anything.
            Ok(LanRoom::Nameplate(np.iter().map(|&c| char::from(c)).collect()))
        }
        (V_CONTACT, CONTACT_ANNOUNCE_LEN) => {
            let mut r = [0u8; 16];
            r.copy_from_slice(&buf[11..27]);
            Ok(LanRoom::Contact(r))
        }
        (V_NAMEPLATE | V_CONTACT, _) => Err("wrong length"),
        _ => Err("unsupported version"),
    }
}

/// A query ("who announces this room?"): the announcement layout with magic
/// `PQDROP-ASK` and zeros where the port and instance id would be.
pub(crate) fn encode_query(room: &LanRoom) -> Vec<u8> {
    encode_room(QUERY_MAGIC, room)
}

/// The room of a query, if `buf` is exactly a valid one.
pub(crate) fn parse_query(buf: &[u8]) -> Option<LanRoom> {
    if buf.len() < 11 || &buf[..10] != QUERY_MAGIC || buf[buf.len() - 10..].iter().any(|&b| b != 0) {
        return None;
    }
    parse_room(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcement_roundtrip() {
        let a = Announcement::new("65535", 65535, [1, 2, 3, 4, 5, 6, 7, 8]).expect("valid");
        // The one nameplate rule: nothing else can be announced.
        for bad in ["1234567890", "65536", "07", "0", ""] {
            assert!(Announcement::new(bad, 1, [0; 8]).is_err(), "{bad:?}");
        }
        let wire = a.encode();
        assert_eq!(wire.len(), ANNOUNCE_LEN);
        assert_eq!(&wire[..10], b"PQDROP-LAN");
        assert_eq!(Announcement::parse(&wire), Ok(a));
        let b = Announcement::new("7", 1, [0; 8]).expect("valid");
        assert_eq!(Announcement::parse(&b.encode()), Ok(b));
        let c = Announcement::for_room(LanRoom::Contact([0xab; 16]), 4000, [3; 8]).expect("valid");
        let wire = c.encode();
        assert_eq!(wire.len(), CONTACT_ANNOUNCE_LEN);
        assert_eq!((wire[10], &wire[11..27], &wire[27..29]), (2, &[0xab; 16][..], &4000u16.to_be_bytes()[..]));
        assert_eq!(Announcement::parse(&wire), Ok(c));
    }

    #[test]
    fn announcement_rejects_malformed() {
        let good: [u8; ANNOUNCE_LEN] = Announcement::new("42", 4000, [9; 8]).expect("valid").encode().try_into().unwrap();
        assert!(Announcement::parse(&good[..31]).is_err());
        let mut long = good.to_vec();
        long.push(0);
        assert!(Announcement::parse(&long).is_err());
        let mutate = |i: usize, v: u8| {
            let mut w = good;
            w[i] = v;
            Announcement::parse(&w)
        };
        assert_eq!(mutate(0, b'X'), Err("bad magic"));
        assert_eq!(mutate(10, 3), Err("unsupported version"));
        assert_eq!(mutate(10, 2), Err("wrong length"), "a contact version needs 37 bytes");
        assert_eq!(mutate(11, 0), Err("bad nameplate length"));
        assert_eq!(mutate(11, 11), Err("bad nameplate length"));
        assert_eq!(mutate(12, b'a'), Err("nameplate is not a canonical number (1 to 65535)"));
        assert_eq!(mutate(12, b'0'), Err("nameplate is not a canonical number (1 to 65535)"), "a leading zero");
        assert_eq!(mutate(14, b'1'), Err("non-zero padding"));
        let mut w = good;
        w[22] = 0;
        w[23] = 0;
        assert_eq!(Announcement::parse(&w), Err("port 0"));
        let c = Announcement::for_room(LanRoom::Contact([1; 16]), 9, [0; 8]).expect("valid").encode();
        let mut v1 = c.clone();
        v1[10] = 1;
        assert_eq!(Announcement::parse(&v1), Err("wrong length"));
    }

    #[test]
    fn queries_name_their_room_and_nothing_else() {
        for room in [LanRoom::nameplate("7").unwrap(), LanRoom::Contact([5; 16])] {
            let q = encode_query(&room);
            assert_eq!(&q[..10], b"PQDROP-ASK");
            assert_eq!(parse_query(&q), Some(room.clone()));
            let mut bad = q.clone();
            *bad.last_mut().unwrap() = 1;
            assert_eq!(parse_query(&bad), None);
            assert!(Announcement::parse(&q).is_err(), "a query is not an announcement");
        }
    }

    #[test]
    fn nameplate_rules() {
        assert!(Announcement::new("", 1, [0; 8]).is_err());
        assert!(Announcement::new("12345678901", 1, [0; 8]).is_err());
        assert!(Announcement::new("7a", 1, [0; 8]).is_err());
        assert!(Announcement::new("٣", 1, [0; 8]).is_err()); // non-ASCII digit
        assert!(Announcement::new("7", 0, [0; 8]).is_err());
    }
}
