//! Transfers between saved contacts, without a code (PROTOCOL.md §13.7).
//!
//! The receiver waits in its own contact room of the current ten-minute
//! window, through a relay or on the LAN; the sender computes the same room
//! from the receiver's public identity. Both move to the next room when the
//! window changes, so clocks a little apart still meet. On the connection
//! they run the contact handshake, then exactly the transfer of a code
//! transfer: the same machines, resume, integrity and receiver rules.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pqdrop_proto::handshake::contact::{ContactHandshake, ContactRoom, ROOM_WINDOW_SECS};
use pqdrop_proto::identity::{Identity, PublicIdentity};
use pqdrop_proto::invite::Ticket;
use tokio::net::TcpStream;

use crate::conn::{self, local_capabilities, HANDSHAKE_TIMEOUT};
use crate::receive::{ReceiveOptions, ReceiveReport, ReceiveUi};
use crate::send::{Prepared, SendOptions, SendReport, SendUi};
use crate::transport::lan::{self, LanRoom};
use crate::transport::{Route, Waiting};
use crate::{Error, Result};

/// Which side of a contact rendezvous this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Looks for the receiver's room (on the LAN, for up to the timeout).
    Sender { lan_timeout: Duration },
    /// Waits in its own room.
    Receiver,
}

fn unix_now() -> Result<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| Error::Io { path: None, err: std::io::Error::other("the system clock is before 1970; set the clock") })
}

/// Meets the other side in `receiver`'s room of the current window, moving
/// to the next room when the window changes. `on_waiting` hears once what
/// the connection waits for.
async fn meet(route: &Route, receiver: &PublicIdentity, side: Side, on_waiting: impl FnOnce(Waiting)) -> Result<TcpStream> {
    let mut on_waiting = Some(on_waiting);
    let started = tokio::time::Instant::now();
    loop {
        let now = unix_now()?;
        let window = ContactRoom::window_of(now);
        let room = ContactRoom::of(receiver, window)?;
        // One second past the boundary, so both sides have moved on.
        let until_next = Duration::from_secs((window + 1) * ROOM_WINDOW_SECS - now + 1);
        tracing::debug!(%room, window, "contact room");
        let mut tell = |w: Waiting| {
            if let Some(f) = on_waiting.take() {
                f(w);
            }
        };
        let attempt = async {
            match (route, side) {
                (Route::Relay(addr), side) => {
                    let role = if matches!(side, Side::Receiver) { pqdrop_relay::Role::Receiver } else { pqdrop_relay::Role::Sender };
                    pqdrop_relay::rendezvous_contact(addr, room.0, role, || tell(Waiting::Relay), Default::default())
                        .await
                        .map(Some)
                        .map_err(|e| crate::transport::relay_error(addr, e))
                }
                (Route::Lan(cfg), Side::Receiver) => {
                    let listener = lan::LanListener::bind_room(cfg, LanRoom::Contact(room.0), until_next).await?;
                    tell(Waiting::LanListening(listener.local_addr()));
                    match listener.accept().await {
                        Ok((s, _)) => Ok(Some(s)),
                        // The window ended: listen in the next room.
                        Err(Error::Io { err, .. }) if err.kind() == std::io::ErrorKind::TimedOut => Ok(None),
                        Err(e) => Err(e),
                    }
                }
                (Route::Lan(cfg), Side::Sender { lan_timeout }) => {
                    tell(Waiting::LanSearching);
                    let left = lan_timeout.saturating_sub(started.elapsed());
                    match lan::find_room(cfg, &LanRoom::Contact(room.0), left.min(until_next)).await {
                        Ok(s) => Ok(Some(s)),
                        Err(Error::LanNotFound { .. }) if left > until_next => Ok(None),
                        Err(Error::LanNotFound { .. }) => Err(Error::ContactNotFound(String::new(), lan_timeout.as_secs())),
                        Err(e) => Err(e),
                    }
                }
            }
        };
        tokio::select! {
            r = attempt => match r? {
                Some(stream) => {
                    conn::tune_tcp(&stream);
                    return Ok(stream);
                }
                None => continue,
            },
            _ = tokio::time::sleep(until_next) => {
                tracing::debug!("the contact room's window ended; moving to the next room");
            }
        }
    }
}

/// Runs the contact handshake on `stream` within the handshake deadline.
async fn handshake(stream: &mut TcpStream, hs: &mut ContactHandshake<'_>) -> Result<Vec<u8>> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, conn::run_handshake(stream, hs))
        .await
        .map_err(|_| Error::HandshakeTimeout { secs: HANDSHAKE_TIMEOUT.as_secs() })?
}

/// Sends `prepared` to the contact `to` (shown in messages as `name`): meets
/// it in its room over `route`, proves `me` and checks it is `to`, then
/// transfers as any sender does. `on_waiting` hears what the connection
/// waits for, once.
#[allow(clippy::too_many_arguments)] // one call site; each argument is a separate choice of the user
pub async fn send_to_contact(
    route: &Route,
    me: &Identity,
    to: &PublicIdentity,
    name: &str,
    lan_timeout: Duration,
    ticket: Option<&Ticket>,
    prepared: Prepared,
    opts: SendOptions,
    ui: Arc<dyn SendUi>,
    on_waiting: impl FnOnce(Waiting),
) -> Result<SendReport> {
    let mut stream = meet(route, to, Side::Sender { lan_timeout }, on_waiting).await.map_err(|e| named(e, name))?;
    let mut hs = ContactHandshake::initiator_invited(me, to, ticket, local_capabilities(opts.cascade), &mut rand_core::OsRng)?;
    let rest = handshake(&mut stream, &mut hs).await.map_err(|e| named(e, name))?;
    let (session, _) = hs.into_session()?;
    // The identities were proven by the handshake: no Identity message.
    let opts = SendOptions { identity: None, ..opts };
    crate::send::send_over(stream, session, rest, prepared, opts, ui).await
}

/// Who sent, in a contact transfer.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Their identity, proven by the handshake.
    pub identity: PublicIdentity,
    /// Accepted by an invitation of ours (PROTOCOL.md §13.8), not as a
    /// saved contact.
    pub invited: bool,
}

/// Receives from any identity in `accept` (one contact, or all of them),
/// and with `invitations` also from a caller holding a valid invitation of
/// ours: waits in `me`'s room over `route`, checks who calls, tells
/// `on_peer`, then receives as any receiver does. Returns who sent.
#[allow(clippy::too_many_arguments)] // one call site; each argument is a separate choice of the user
pub async fn receive_from_contacts(
    route: &Route,
    me: &Identity,
    accept: Vec<PublicIdentity>,
    invitations: bool,
    mut opts: ReceiveOptions,
    ui: Arc<dyn ReceiveUi>,
    on_waiting: impl FnOnce(Waiting),
    on_peer: impl FnOnce(&Caller),
) -> Result<(ReceiveReport, Caller)> {
    let mut stream = meet(route, me.public(), Side::Receiver, on_waiting).await?;
    if matches!(route, Route::Lan(_)) {
        opts.sender_addr = stream.peer_addr().ok();
    }
    let mut hs = ContactHandshake::responder(me, accept, local_capabilities(opts.cascade), &mut rand_core::OsRng)?;
    if invitations {
        // The time the handshake is read at, not when waiting began.
        hs.accept_invitations(unix_now()?);
    }
    let rest = handshake(&mut stream, &mut hs).await?;
    let invited = hs.invited();
    let (session, identity) = hs.into_session()?;
    let caller = Caller { identity, invited };
    on_peer(&caller);
    let opts = ReceiveOptions { identity: None, ..opts };
    let report = crate::receive::receive_over(stream, session, rest, opts, ui).await?;
    Ok((report, caller))
}

/// Puts the contact's name into the errors that are about it.
fn named(e: Error, name: &str) -> Error {
    match e {
        Error::NotProven(_) => Error::NotProven(name.to_owned()),
        Error::ContactNotFound(_, secs) => Error::ContactNotFound(name.to_owned(), secs),
        other => other,
    }
}
