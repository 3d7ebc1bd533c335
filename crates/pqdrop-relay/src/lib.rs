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
//! ## Wire protocol
//!
//! PROTOCOL.md §9 is the specification; in short:
//!
//! * the client sends a hello: magic `pqdr`, the version (1 or 2), its role,
//!   (version 2) flags, and a nameplate (canonical decimal, 1 to 65535), or (version
//!   2, senders) none, to have the relay allocate the smallest free one, or
//!   (version 2, flag 2) a contact room of 32 lowercase hex digits;
//! * the relay answers with statuses `IxiVarUInt(code) || IxiBytes(message)`:
//!   0 waiting, 1 paired (then the connection is a byte pipe to the other
//!   peer), 2 allocated (the message is the nameplate), 3 redirect (the
//!   message is the `host:port` of the fleet instance where the other peer
//!   waits), and errors 16..=25 after which it closes (see [`StatusCode`]);
//! * a relay enforces the limits of [`RelayConfig`], each refused with its own
//!   code and a message that says what to do;
//! * with [`RelayConfig::fleet`], instances share their rooms through Redis
//!   (PROTOCOL.md §9.7): claims are atomic Lua scripts, rooms are leases that
//!   a dead instance's rooms outlive by at most [`FleetConfig::lease`].
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
mod web;
mod wire;

pub use client::{connect, connect_with, rendezvous, rendezvous_contact, rendezvous_page, ClientTimeouts, Paired, Rendezvous};

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
pub use web::{TlsFiles, WebConfig};
#[doc(hidden)]
pub use wire::{check_hello, fuzz_hello};
pub use wire::{
    hello_bytes, hello_contact_bytes, hello_v2_bytes, hello_v2_page_bytes, read_status, Role, StatusCode, CONTACT_ROOM_LEN, MAGIC,
    MAX_HELLO_READ, MAX_NAMEPLATE_LEN, MAX_STATUS_MESSAGE_LEN, PROTOCOL_VERSION, PROTOCOL_VERSION_1,
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
