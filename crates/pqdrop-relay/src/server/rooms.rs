//! Rooms: a helloed peer pairs with the one waiting in its room, waits in a
//! new room, is sent to the instance of the fleet where its room is, or is
//! refused. Then the waiting and the paired session.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::info;

use super::{refuse, shutdown_signal, Arrival, Next, Peer, SessionSlot, Shared, Waiter, MSG_SHUTDOWN};
use crate::directory::fleet::{Claim, Fleet};
use crate::limits::IpKey;
use crate::pipe::{self, End, Moved};
use crate::wire::{status_bytes, Room};
use crate::{Role, StatusCode};

enum JoinDecision {
    Refuse(StatusCode, String),
    Pair(Waiter, SessionSlot, Room),
    /// Wait in the room (id, arrivals, allocated?, the room).
    Wait(u64, oneshot::Receiver<Arrival>, bool, Room),
    /// Send the client to this instance.
    Redirect(String),
    /// Look again in a moment (a room of this instance is being set up or
    /// taken down).
    Retry,
}

/// How often a join looks again at a room of this instance that is being set
/// up or taken down, before it treats the directory entry as stale.
const RETRIES: u32 = 5;

fn room_taken(role: Role, room: Room) -> JoinDecision {
    let msg = match room {
        Room::Nameplate(np) => {
            format!("room taken: a {} is already waiting on nameplate {np}; start again with a new code", role.name())
        }
        Room::Contact(_) => {
            format!("room taken: a {} is already waiting in this contact room; wait until that transfer ends, then try again", role.name())
        }
    };
    JoinDecision::Refuse(StatusCode::RoomTaken, msg)
}

fn too_many_pending(max: usize) -> JoinDecision {
    JoinDecision::Refuse(
        StatusCode::TooManyPendingFromAddress,
        format!("too many codes waiting from your address (limit {max}); wait for one to be used or to expire"),
    )
}

fn too_many_pending_net(max: usize) -> JoinDecision {
    JoinDecision::Refuse(
        StatusCode::TooManyPendingFromAddress,
        format!("too many codes waiting from your network (limit {max} per IPv4 /24 or IPv6 /48 on this relay); wait for one to be used or to expire"),
    )
}

fn full(max: usize) -> JoinDecision {
    JoinDecision::Refuse(
        StatusCode::RelayFull,
        format!("relay is full (limit {max} waiting codes); try again in a few minutes or use another relay"),
    )
}

const MSG_NO_NAMEPLATE: &str = "relay is full (no nameplate is free); try again in a few minutes or use another relay";
const MSG_DIRECTORY: &str = "relay directory unavailable, try again in a few seconds or use another relay";

/// Puts a helloed peer in its room: pairs it, makes it wait, sends it to
/// another instance, or refuses it.
pub(super) async fn join(shared: &Arc<Shared>, mut peer: Peer) -> Next {
    let cfg = &shared.config;
    let mut retries = 0;
    loop {
        if shared.shutting_down() {
            refuse(shared, &mut peer.stream, peer.addr, StatusCode::ShuttingDown, MSG_SHUTDOWN).await;
            return Next::Done;
        }
        if peer.prepair.len() > cfg.max_prepair_bytes {
            let msg = prepair_message(cfg.max_prepair_bytes);
            refuse(shared, &mut peer.stream, peer.addr, StatusCode::TooManyPrepairBytes, &msg).await;
            return Next::Done;
        }
        let decision = match (local_decision(shared, &mut peer), &shared.fleet) {
            (Some(d), _) => d,
            (None, Some(fleet)) => fleet_decision(shared, fleet, &mut peer, retries >= RETRIES).await,
            // Not reachable: without a fleet every join is decided locally.
            (None, None) => JoinDecision::Refuse(StatusCode::RelayFull, MSG_NO_NAMEPLATE.to_owned()),
        };
        match decision {
            JoinDecision::Refuse(code, msg) => {
                refuse(shared, &mut peer.stream, peer.addr, code, &msg).await;
                return Next::Done;
            }
            JoinDecision::Pair(waiter, slot, np) => {
                shared.release_in_directory(np, &waiter);
                match waiter.tx.send(Arrival { peer, slot }) {
                    // The waiting peer's task runs the session.
                    Ok(()) => return Next::Done,
                    // The waiting peer's task just ended: try again (its room is gone).
                    Err(back) => peer = back.peer,
                }
            }
            JoinDecision::Wait(id, rx, allocated, np) => return wait(shared, peer, id, rx, allocated, np).await,
            JoinDecision::Redirect(addr) => {
                if let Some(f) = &shared.fleet {
                    f.stats.redirects.fetch_add(1, Ordering::Relaxed);
                }
                info!(room = ?peer.hello.room.map(|r| r.to_string()), peer = %peer.addr, to = %addr, "redirected");
                redirect(&mut peer, &addr).await;
                return Next::Done;
            }
            JoinDecision::Retry => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The decision this instance can take by itself, under its state lock: pair
/// with a peer waiting here, or, without a fleet, everything. `None`: ask the
/// fleet's directory.
fn local_decision(shared: &Arc<Shared>, peer: &mut Peer) -> Option<JoinDecision> {
    let cfg = &shared.config;
    let mut st = shared.state();
    let st = &mut *st;
    if let Some(np) = peer.hello.room {
        if let Some(w) = st.rooms.get(&np) {
            if w.role == peer.hello.role {
                return Some(room_taken(w.role, np));
            }
            return Some(match admit_session(shared, w.key, peer.key) {
                Err((code, msg)) => JoinDecision::Refuse(code, msg),
                Ok(slot) => match st.remove_room(np) {
                    Some(w) => JoinDecision::Pair(w, slot, np),
                    // Not reachable: the room was seen under this lock.
                    // (Dropping the slot here takes only `per_ip`.)
                    None => JoinDecision::Retry,
                },
            });
        }
    }
    if shared.fleet.is_some() {
        return None;
    }
    if st.pending_per_ip.get(peer.key) >= cfg.max_pending_per_ip {
        return Some(too_many_pending(cfg.max_pending_per_ip));
    }
    if st.pending_per_ip.get(peer.key.net()) >= cfg.max_pending_per_net {
        return Some(too_many_pending_net(cfg.max_pending_per_net));
    }
    if st.rooms.len() >= cfg.max_pending_total {
        return Some(full(cfg.max_pending_total));
    }
    let allocated = peer.hello.room.is_none();
    let np = match peer.hello.room {
        Some(room) => room,
        None => match st.pool.allocate() {
            Some(np) => Room::Nameplate(np),
            None => return Some(JoinDecision::Refuse(StatusCode::RelayFull, MSG_NO_NAMEPLATE.to_owned())),
        },
    };
    let id = st.next_id;
    st.next_id = st.next_id.wrapping_add(1);
    let (tx, rx) = oneshot::channel();
    st.add_room(np, Waiter { id, role: peer.hello.role, key: peer.key, tx, value: None });
    peer.hello.room = Some(np);
    Some(JoinDecision::Wait(id, rx, allocated, np))
}

/// Asks the fleet's directory: claim (or allocate) the room here, or find
/// where its other peer waits. `stale`: a room the directory says is this
/// instance's but which is not here any more is released first.
async fn fleet_decision(shared: &Arc<Shared>, fleet: &Arc<Fleet>, peer: &mut Peer, stale: bool) -> JoinDecision {
    let cfg = &shared.config;
    let id = {
        let mut st = shared.state();
        // Per network, waiting rooms are counted by each instance.
        if st.pending_per_ip.get(peer.key.net()) >= cfg.max_pending_per_net {
            return too_many_pending_net(cfg.max_pending_per_net);
        }
        let id = st.next_id;
        st.next_id = st.next_id.wrapping_add(1);
        id
    };
    let value = fleet.value(peer.hello.role, peer.key, id);
    let claim = match fleet.claim(peer.hello.room, &value, peer.key, cfg).await {
        Ok(c) => c,
        Err(_) => return JoinDecision::Refuse(StatusCode::DirectoryUnavailable, MSG_DIRECTORY.to_owned()),
    };
    match claim {
        Claim::Mine(np) => {
            let allocated = peer.hello.room.is_none();
            let (tx, rx) = oneshot::channel();
            shared.state().add_room(np, Waiter { id, role: peer.hello.role, key: peer.key, tx, value: Some(value) });
            peer.hello.room = Some(np);
            JoinDecision::Wait(id, rx, allocated, np)
        }
        Claim::Occupied { instance, role, addr, value: theirs } => {
            // A claim without a nameplate (an allocation) is never occupied.
            let Some(np) = peer.hello.room else { return JoinDecision::Retry };
            if role == peer.hello.role {
                return room_taken(role, np);
            }
            if instance == fleet.instance {
                // Ours: its waiter is being added or removed right now, or the
                // entry outlived a release that failed.
                if stale && !shared.state().rooms.contains_key(&np) {
                    let _ = fleet.release(np, &theirs).await;
                }
                return JoinDecision::Retry;
            }
            if peer.hello.version < crate::PROTOCOL_VERSION {
                return JoinDecision::Refuse(
                    StatusCode::CannotRedirect,
                    "the other side waits at another instance of this relay, and this pqdrop is too old to follow it there; update pqdrop"
                        .to_owned(),
                );
            }
            if peer.hello.redirected || addr.is_empty() {
                return JoinDecision::Refuse(
                    StatusCode::CannotRedirect,
                    "the other side's relay instance moved or stopped while you were sent to it; run the same command again".to_owned(),
                );
            }
            // The other instance advertises `host:port[ page-url]` (§9.7): a
            // browser peer follows the page, a TCP peer the address.
            let (tcp, page) = addr.split_once(' ').map_or((addr.as_str(), None), |(a, u)| (a, Some(u)));
            match (peer.web, page) {
                (false, _) => JoinDecision::Redirect(tcp.to_owned()),
                (true, Some(url)) => JoinDecision::Redirect(url.to_owned()),
                (true, None) => JoinDecision::Refuse(
                    StatusCode::CannotRedirect,
                    "the other side waits at an instance of this relay that serves no browser page; ask them to use another relay, or use pqdrop".to_owned(),
                ),
            }
        }
        Claim::RateLimited => JoinDecision::Refuse(
            StatusCode::RateLimited,
            format!(
                "too many connections from your address (limit {} per second, burst {}); wait a few seconds and try again",
                cfg.join_rate_per_sec, cfg.join_burst
            ),
        ),
        Claim::PendingLimit => too_many_pending(cfg.max_pending_per_ip),
        Claim::Full => full(cfg.max_pending_total),
        Claim::Exhausted => JoinDecision::Refuse(StatusCode::RelayFull, MSG_NO_NAMEPLATE.to_owned()),
    }
}

/// Sends status 3 with `addr`, then closes as after a refusal.
async fn redirect(peer: &mut Peer, addr: &str) {
    let bytes = status_bytes(StatusCode::Redirect, addr);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        peer.stream.write_all(&bytes).await?;
        peer.stream.shutdown().await
    })
    .await;
}

/// Takes a session slot for pairing a waiting peer from address `waiting`
/// with an arriving one from `arriving`, unless either address is at
/// `max_sessions_per_ip` or the relay is at `max_sessions`. Called with
/// `state` held (lock order: `state`, then `per_ip`).
fn admit_session(shared: &Arc<Shared>, waiting: IpKey, arriving: IpKey) -> Result<SessionSlot, (StatusCode, String)> {
    let cfg = &shared.config;
    let max = cfg.max_sessions_per_ip;
    // A session between two peers of the same address counts once against it.
    let other_key = (waiting != arriving).then_some(waiting);
    let mut per_ip = shared.per_ip();
    if per_ip.sessions.get(arriving) >= max {
        let msg = format!(
            "relay is full for your address (limit {max} paired sessions at once per address); wait for one of them to end, then try again"
        );
        return Err((StatusCode::RelayFull, msg));
    }
    if other_key.is_some_and(|k| per_ip.sessions.get(k) >= max) {
        let msg = format!(
            "relay is full for the other peer's address (limit {max} paired sessions at once per address); the other peer keeps waiting: try again in a few minutes"
        );
        return Err((StatusCode::RelayFull, msg));
    }
    let Ok(permit) = Arc::clone(&shared.sessions).try_acquire_owned() else {
        let msg = format!("relay is full (limit {} sessions); try again in a few minutes or use another relay", cfg.max_sessions);
        return Err((StatusCode::RelayFull, msg));
    };
    per_ip.sessions.increment(arriving);
    if let Some(k) = other_key {
        per_ip.sessions.increment(k);
    }
    drop(per_ip);
    Ok(SessionSlot { shared: Arc::clone(shared), key: arriving, other_key, _permit: permit })
}

pub(super) fn prepair_message(max: usize) -> String {
    format!("sent more than {max} bytes before the other peer arrived; wait for pairing (status 1) before sending")
}

enum WaitEnd {
    Disconnected,
    Timeout,
    Shutdown,
    TooManyBytes,
    Lost,
}

/// Waits in room `id` for the other peer, buffering pre-pairing bytes.
/// For an allocated room, status 2 (with the nameplate) goes first.
async fn wait(shared: &Arc<Shared>, mut peer: Peer, id: u64, mut rx: oneshot::Receiver<Arrival>, allocated: bool, np: Room) -> Next {
    let cfg = &shared.config;
    let deadline = Instant::now() + cfg.waiting_timeout;
    info!(room = %np, peer = %peer.addr, role = peer.hello.role.name(), allocated, "waiting");
    let mut waiting = if allocated { status_bytes(StatusCode::Allocated, &np.key()) } else { Vec::new() };
    waiting.extend_from_slice(&status_bytes(StatusCode::Waiting, "waiting for the other peer; give them your code"));
    let mut shutdown = shared.shutdown.subscribe();
    let end = match tokio::time::timeout(cfg.hello_timeout, peer.stream.write_all(&waiting)).await {
        Ok(Ok(())) => loop {
            let mut chunk = [0u8; 4096];
            tokio::select! {
                biased;
                arrival = &mut rx => match arrival {
                    Ok(arrival) => return pair(shared, peer, arrival, np).await,
                    // The room was taken from us: the fleet's directory gave
                    // it to another instance while this one could not renew it.
                    Err(_) => break WaitEnd::Lost,
                },
                () = shutdown_signal(&mut shutdown) => break WaitEnd::Shutdown,
                () = tokio::time::sleep_until(deadline) => break WaitEnd::Timeout,
                r = peer.stream.read(&mut chunk) => match r {
                    Ok(0) | Err(_) => break WaitEnd::Disconnected,
                    Ok(n) => {
                        if peer.prepair.len() + n > cfg.max_prepair_bytes {
                            break WaitEnd::TooManyBytes;
                        }
                        peer.prepair.extend_from_slice(&chunk[..n]);
                    }
                },
            }
        },
        _ => WaitEnd::Disconnected,
    };

    // Leave the room; then see whether a peer was handed to us meanwhile.
    shared.remove_room_if(np, id);
    rx.close();
    let inflight = rx.try_recv().ok();
    match end {
        WaitEnd::Timeout => {
            if let Some(arrival) = inflight {
                return pair(shared, peer, arrival, np).await;
            }
            let msg =
                format!("timed out after {} s waiting for the other peer; start again with a new code", cfg.waiting_timeout.as_secs());
            info!(room = %np, peer = %peer.addr, code = 20, "wait timed out");
            refuse(shared, &mut peer.stream, peer.addr, StatusCode::WaitTimeout, &msg).await;
        }
        WaitEnd::Shutdown => {
            refuse(shared, &mut peer.stream, peer.addr, StatusCode::ShuttingDown, MSG_SHUTDOWN).await;
        }
        WaitEnd::TooManyBytes => {
            let msg = prepair_message(cfg.max_prepair_bytes);
            info!(room = %np, peer = %peer.addr, code = 23, "too many bytes before pairing");
            refuse(shared, &mut peer.stream, peer.addr, StatusCode::TooManyPrepairBytes, &msg).await;
        }
        WaitEnd::Lost => {
            info!(room = %np, peer = %peer.addr, code = 24, "room lost to the directory");
            let msg = "the relay lost your room while its directory was unavailable; run the same command again";
            refuse(shared, &mut peer.stream, peer.addr, StatusCode::DirectoryUnavailable, msg).await;
        }
        WaitEnd::Disconnected => {
            info!(room = %np, peer = %peer.addr, "waiting peer left; room freed");
        }
    }
    match inflight {
        Some(arrival) => Next::Adopt(arrival.peer),
        None => Next::Done,
    }
}

/// Runs a paired session between the waiting peer `a` and the arriving peer.
async fn pair(shared: &Arc<Shared>, a: Peer, arrival: Arrival, room: Room) -> Next {
    let cfg = &shared.config;
    let Arrival { peer: b, slot } = arrival;
    shared.counters.paired.fetch_add(1, Ordering::Relaxed);
    info!(room = %room, a = %a.addr, b = %b.addr, "paired");
    let (mut sa, mut sb) = (a.stream, b.stream);
    let paired = status_bytes(StatusCode::Paired, "paired; the connection is now an end-to-end encrypted pipe to your peer");
    // Each side gets status 1 and then the other side's buffered bytes.
    let mut to_a = paired.clone();
    to_a.extend_from_slice(&b.prepair);
    let mut to_b = paired;
    to_b.extend_from_slice(&a.prepair);
    let moved = Moved::default();
    moved.b_to_a.store(b.prepair.len() as u64, Ordering::Relaxed);
    moved.a_to_b.store(a.prepair.len() as u64, Ordering::Relaxed);
    let greet = tokio::time::timeout(cfg.hello_timeout, async { tokio::try_join!(sa.write_all(&to_a), sb.write_all(&to_b)) }).await;
    let end = match greet {
        Ok(Ok(_)) => pipe::relay(&mut sa, &mut sb, cfg, &moved).await,
        Ok(Err(e)) => End::Error(e),
        Err(_) => End::Idle,
    };
    let (ab, ba) = (moved.a_to_b.load(Ordering::Relaxed), moved.b_to_a.load(Ordering::Relaxed));
    shared.counters.bytes.fetch_add(ab + ba, Ordering::Relaxed);
    match &end {
        End::Done => info!(room = %room, a_to_b = ab, b_to_a = ba, "session closed"),
        End::Idle => {
            info!(room = %room, a_to_b = ab, b_to_a = ba, "session idle; closed")
        }
        End::Error(e) => info!(
            room = %room,
            a_to_b = ab,
            b_to_a = ba,
            error_kind = ?e.kind(),
            "session ended by a connection error"
        ),
    }
    drop(slot);
    Next::Done
}
