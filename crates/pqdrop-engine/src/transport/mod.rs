//! How the two sides reach each other, so that callers say *where* (a
//! [`Route`]) and get a connected, tuned stream back: through a relay (the
//! relay protocol of PROTOCOL.md §9), or on the local network without a
//! server (§10). [`crate::send::send_to`] and [`crate::receive::receive_from`]
//! put this in front of the transfer.

mod announce;
pub mod lan;

use std::net::SocketAddr;
use std::time::Duration;

use pqdrop_proto::code::Nameplate;
use tokio::net::TcpStream;

use self::lan::{LanConfig, LanListener};
use crate::{Error, Result};

/// Where the other side is found.
#[derive(Debug, Clone)]
pub enum Route {
    /// Through the relay at `host:port`.
    Relay(String),
    /// On the local network, by discovery.
    Lan(LanConfig),
}

/// Which side of the rendezvous this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The sender: waits for the receiver (announces on the LAN).
    Sender,
    /// The receiver: looks for the sender.
    Receiver {
        /// How long to look on the LAN.
        lan_timeout: Duration,
    },
}

/// What the connection is waiting for, reported once before it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// The relay holds our room until the other side arrives.
    Relay,
    /// The same, and the relay serves the browser page at this URL (asked
    /// for with [`RoomRequest::page`]).
    RelayPage(String),
    /// LAN mode: listening here for the receiver.
    LanListening(SocketAddr),
    /// LAN mode: looking for the sender.
    LanSearching,
}

/// How a room is asked for (the default: claim the code's nameplate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomRequest {
    /// A sender's room numbered by the relay (PROTOCOL.md §9.3); on the LAN,
    /// and on a relay too old to allocate, the code's own nameplate.
    pub allocate: bool,
    /// Ask the relay for its browser page's URL (PROTOCOL.md §9.1 flag 4),
    /// reported as [`Waiting::RelayPage`]. Relays only: the LAN has no page, and
    /// the flag is ignored there.
    pub page: bool,
}

/// Connects this `side` to the other one for `nameplate` over `route`. The
/// stream is tuned for transfers (no Nagle delay, TCP keepalive) and its
/// next byte is the other side's first.
pub async fn connect(route: &Route, nameplate: Nameplate, side: Side, on_waiting: impl FnOnce(Waiting)) -> Result<TcpStream> {
    Ok(rendezvous(route, nameplate, RoomRequest::default(), side, |_, w| on_waiting(w)).await?.0)
}

/// [`connect`], for a room claimed or allocated as `request` says; returns
/// the stream and the room's nameplate. `on_waiting` hears the nameplate and
/// what the connection waits for, once the room is ours.
pub async fn rendezvous(
    route: &Route,
    nameplate: Nameplate,
    request: RoomRequest,
    side: Side,
    on_waiting: impl FnOnce(Nameplate, Waiting),
) -> Result<(TcpStream, Nameplate)> {
    let (stream, nameplate) = match (route, side) {
        (Route::Relay(addr), side) => {
            let role = if side == Side::Sender { pqdrop_relay::Role::Sender } else { pqdrop_relay::Role::Receiver };
            let want = match request.allocate {
                true if side == Side::Sender => pqdrop_relay::Rendezvous::Allocate { fallback: nameplate },
                _ => pqdrop_relay::Rendezvous::Claim(nameplate),
            };
            let p = if request.page {
                pqdrop_relay::rendezvous_page(
                    addr,
                    want,
                    role,
                    |np, url| on_waiting(np, Waiting::RelayPage(url.to_string())),
                    Default::default(),
                )
                .await
                .map(|(p, _)| p)
            } else {
                pqdrop_relay::rendezvous(addr, want, role, |np| on_waiting(np, Waiting::Relay), Default::default()).await
            };
            let p = p.map_err(|e| relay_error(addr, e))?;
            (p.stream, p.nameplate)
        }
        (Route::Lan(cfg), Side::Sender) => {
            let listener = LanListener::bind(cfg, &nameplate.to_string()).await?;
            on_waiting(nameplate, Waiting::LanListening(listener.local_addr()));
            (listener.accept().await?.0, nameplate)
        }
        (Route::Lan(cfg), Side::Receiver { lan_timeout }) => {
            on_waiting(nameplate, Waiting::LanSearching);
            (lan::find(cfg, &nameplate.to_string(), lan_timeout).await?, nameplate)
        }
    };
    crate::conn::tune_tcp(&stream);
    Ok((stream, nameplate))
}

/// A relay error as the engine's, its text escaped: it came from the network.
pub(crate) fn relay_error(addr: &str, e: pqdrop_relay::RelayError) -> Error {
    Error::Relay { addr: addr.to_string(), reason: crate::names::escape(e.to_string().as_bytes()) }
}
