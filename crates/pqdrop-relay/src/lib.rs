//! # pqdrop-relay
//!
//! A self-hostable relay that pairs exactly two peers by *nameplate* (the public
//! room number in a code like `7-ocean-tiger`; only the number is ever sent to
//! the relay) and then copies bytes both ways. It cannot read them: the peers
//! encrypt and authenticate everything end to end, so a relay is trusted only
//! for availability, never for confidentiality or integrity.
//!
//! The crate has a server ([`Relay`], configured by [`RelayConfig`]) and the
//! client side used by the pqdrop engine ([`connect`]).
//!
//! ## Wire protocol (version 1)
//!
//! ### Encoding
//!
//! * **IxiVarUInt**: an unsigned integer. `0..=0xF7` is one byte holding the
//!   value. Larger values are a prefix byte followed by a little-endian integer:
//!   `0xFC` + u16, `0xFD` + u32, `0xFE` + u64. Only the shortest form is valid
//!   (e.g. `0xFC 0x05 0x00` is rejected because 5 fits in one byte). Prefix
//!   bytes `0xF8..=0xFB` and `0xFF` are reserved and invalid.
//! * **IxiBytes**: `IxiVarUInt(len) || len bytes`.
//!
//! ### 1. Hello (client → relay)
//!
//! ```text
//! magic "pqdr" (4 bytes: 0x70 0x71 0x64 0x72)
//! IxiVarUInt(version)   = 1
//! IxiVarUInt(role)      = 1 (sender / accepter) or 2 (receiver / requester)
//! IxiBytes(nameplate)   = 1..=10 ASCII digits '0'..='9'
//! ```
//!
//! The nameplate is compared byte for byte (`"7"` and `"07"` are different
//! rooms); clients send it in canonical decimal form without leading zeros.
//! A valid hello is at most 17 bytes. The relay reads at most 64 bytes while
//! looking for the hello and requires the whole hello within the hello timeout
//! (default 10 s) from the moment the connection is accepted. Anything malformed
//! (wrong magic, unknown version or role, reserved or non-shortest IxiVarUInt,
//! nameplate length outside 1..=10 or a non-digit, or the timeout) is answered
//! with status 21 and the connection is closed. Bytes that arrive after the hello
//! in the same read are treated as pre-pairing bytes (section 4).
//!
//! ### 2. Status messages (relay → client)
//!
//! ```text
//! IxiVarUInt(code) || IxiBytes(message: UTF-8, at most 512 bytes)
//! ```
//!
//! The message is for humans and says what to do next; clients must not parse
//! it (and should strip control characters before showing it).
//!
//! | code | meaning | after it |
//! | ---: | --- | --- |
//! | 0 | waiting for the other peer | more status messages follow |
//! | 1 | paired | the connection is a raw byte pipe to the other peer |
//! | 16 | room taken: a peer with the same role is already waiting on that nameplate | relay closes |
//! | 17 | too many pending rooms (waiting codes) from your address | relay closes |
//! | 18 | relay is full (pending rooms, paired sessions in total or for one address, or connections being set up) | relay closes |
//! | 19 | too many connections from your address (join rate, or too many still sending their hello) | relay closes |
//! | 20 | timed out waiting for the other peer | relay closes |
//! | 21 | bad hello | relay closes |
//! | 22 | relay shutting down | relay closes |
//! | 23 | too many bytes sent before pairing | relay closes |
//!
//! Codes 2..=15 are reserved for future non-error statuses and 24.. for future
//! errors; a client treats any code other than 0 and 1 as an error. After an
//! error status the relay shuts down its sending side and discards (up to a
//! small bound, for about two seconds) whatever the client still sends, so that
//! the status is not lost to a TCP reset. The exception is a connection refused
//! as soon as it is accepted (section 5: join rate, hello-phase limits, address
//! table full): it gets its status only if the socket takes it at once, what it
//! has already sent is discarded, and it is closed without lingering.
//!
//! ### 3. Pairing
//!
//! A room (one nameplate) holds at most one waiting peer. The first peer to send
//! a hello for a nameplate creates the room and gets status 0. When a peer with
//! the *other* role arrives, the room is removed, both peers get status 1 (the
//! waiting peer only status 1; the arriving peer never sees status 0), and the
//! relay copies bytes between the two sockets until both directions are closed,
//! either side errors, or the session is idle for the idle timeout. A
//! half-close (EOF) from one peer is passed on as a half-close to the other. A
//! peer with the *same* role as the waiting one gets status 16. If the waiting
//! peer disconnects, its room is freed at once. A room lives at most for the
//! waiting timeout (default 30 min; then status 20).
//!
//! ### 4. Pre-pairing bytes
//!
//! Bytes a peer sends after its hello but before it is paired are buffered by the
//! relay, up to `max_prepair_bytes` (default 4096) per peer, and delivered to the
//! other peer right after its status 1, before any spliced bytes. A peer that
//! sends more gets status 23 and is closed (its room is freed).
//!
//! ### 5. Limits
//!
//! The relay enforces (see [`RelayConfig`] for defaults):
//!
//! * when a connection is accepted, before it holds anything, in this order: a
//!   token-bucket join rate per source address, applied to every accepted
//!   connection (19); connections in the hello phase from its source address
//!   (`max_handshakes_per_ip`, 19); connections in the hello phase in total
//!   (`max_handshakes`, 18). These refusals are immediate (section 2), so a
//!   refused connection never takes a hello-phase slot from anyone else;
//! * the hello timeout (21); a connection refused for a bad or late hello still
//!   holds its hello-phase slots while the relay lingers;
//! * pending rooms per source address (17) and in total (18); the waiting
//!   timeout (20);
//! * paired sessions per source address (`max_sessions_per_ip`, 18) and in total
//!   (`max_sessions`, 18). A session counts once against each distinct source
//!   address of its two peers (two peers from one address: once). The refusal is
//!   sent to the peer whose arrival would have opened the session, whichever of
//!   the two addresses is at its limit; the waiting peer keeps waiting.
//!
//! A source address is an IPv4 address, or the /64 prefix of an IPv6 address
//! (IPv4-mapped IPv6 addresses count as IPv4).
//!
//! ## Logging
//!
//! The relay logs (through `tracing`) only nameplates, socket addresses, status
//! codes and byte counts; never any relayed byte.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod config;
mod directory;
mod error;
mod limits;
mod metrics;
mod pipe;
mod server;
#[cfg(target_os = "linux")]
mod splice;
mod wire;

pub use client::{connect, connect_with, rendezvous, ClientTimeouts, Paired, Rendezvous};

/// The relay's port when an address names none.
pub const DEFAULT_PORT: u16 = 4733;

/// `HOST`, `HOST:PORT`, `IPv6`, `[IPv6]` or `[IPv6]:PORT` as `host:port`,
/// with [`DEFAULT_PORT`] where no port is given.
pub fn with_default_port(addr: &str) -> String {
    let a = addr.trim();
    if a.parse::<std::net::SocketAddr>().is_ok() {
        return a.to_string();
    }
    if let Ok(ip) = a.trim_start_matches('[').trim_end_matches(']').parse::<std::net::Ipv6Addr>() {
        return format!("[{ip}]:{DEFAULT_PORT}");
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() => a.to_string(),
        _ => format!("{a}:{DEFAULT_PORT}"),
    }
}
pub use config::RelayConfig;
pub use directory::fleet::FleetConfig;
pub use error::RelayError;
pub use metrics::{bind_metrics, serve_metrics};
pub use server::{DirectoryStats, Relay, RelayStats, StatsHandle};
pub use wire::{
    hello_bytes, hello_v2_bytes, read_status, Role, StatusCode, MAGIC, MAX_HELLO_READ, MAX_NAMEPLATE_LEN, MAX_STATUS_MESSAGE_LEN,
    PROTOCOL_VERSION, PROTOCOL_VERSION_1,
};

#[cfg(test)]
mod default_port_tests {
    use super::with_default_port;

    #[test]
    fn a_missing_port_is_the_default_one() {
        for (given, want) in [
            ("relay.example.org", "relay.example.org:4733"),
            ("relay.example.org:9000", "relay.example.org:9000"),
            ("127.0.0.1", "127.0.0.1:4733"),
            ("127.0.0.1:1", "127.0.0.1:1"),
            ("::1", "[::1]:4733"),
            ("[::1]", "[::1]:4733"),
            ("[::1]:8080", "[::1]:8080"),
            (" host ", "host:4733"),
        ] {
            assert_eq!(with_default_port(given), want, "{given:?}");
        }
    }
}
