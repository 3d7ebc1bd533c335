//! Liveness: how long a side waits for the other, and when it proves that it
//! is still there (PROTOCOL.md §8, KeepAlive).
//!
//! Time comes in as a [`Duration`] since an origin the caller picks (the start
//! of the connection, say); nothing here reads a clock, so the same rules run
//! in the engine, under a simulator's virtual time and in tests.
//!
//! The rules are connection-level, not part of the transfer machines, and
//! come as two timers because the two halves run in different places: a side
//! whose logic is blocked (its user deciding at the consent prompt, a disk
//! sync, a slow output pipe) must still send KeepAlive and still notice a
//! silent peer. So the [`KeepAliveTimer`] belongs beside whatever seals
//! records and the [`IdleTimer`] beside whatever reads them. Each has the same
//! shape: the caller reports what happened (`on_transmit`, `on_receive`),
//! asks when it must look again (`poll_timeout`, an absolute deadline), and
//! at that time calls `handle_timeout(now)`.

use core::time::Duration;

use crate::msg::Agreed;

/// How long the whole handshake may take once the peer is connected.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the other side may send nothing before this side gives up, when
/// both send KeepAlive (capability 0x40). A side with nothing else to send
/// sends one every [`keepalive_interval`], so silence this long means the
/// peer or the path is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The limit with a peer that does not send KeepAlive, where one applies (see
/// [`IdleTimer::new`]); also the longest a side waits for the rest of a record
/// it has started to read, and for a peer that stopped reading what it writes.
pub const LEGACY_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest a side with KeepAlive agreed stays silent (PROTOCOL.md §8).
/// A peer may therefore time it out after [`MIN_IDLE_TIMEOUT`] and no sooner.
pub const MAX_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest idle limit that is safe against any conforming peer: twice
/// [`MAX_KEEPALIVE_INTERVAL`], so one KeepAlive may be late.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle side sends KeepAlive when it itself waits at most
/// `idle`: a quarter of that, at most [`MAX_KEEPALIVE_INTERVAL`] (the peer's
/// limit is not known, only that it is at least [`MIN_IDLE_TIMEOUT`]), and
/// never more often than every 100 ms. A side with a short limit sends more
/// often so that two sides with the same short limit work together.
pub fn keepalive_interval(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(100), MAX_KEEPALIVE_INTERVAL)
}

/// The whole plaintext of a KeepAlive record: transfer message 17 alone.
pub const KEEPALIVE_RECORD: [u8; 1] = [17];

/// Which side of the transfer a timer belongs to: the rules without
/// KeepAlive differ, because only the receiver's user is ever asked to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sends the files.
    Sender,
    /// Receives them (and may wait for its user before answering).
    Receiver,
}

/// Where the reader is when it waits: between two records, or inside one
/// (its header or body has started to arrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Waiting for the first byte of the next record.
    BetweenRecords,
    /// A record has started; the rest of it is owed.
    MidRecord,
}

/// Detects a silent peer. Report every arrival with [`IdleTimer::on_receive`];
/// read with a deadline of [`IdleTimer::poll_timeout`]; when it passes, call
/// [`IdleTimer::handle_timeout`].
#[derive(Debug, Clone)]
pub struct IdleTimer {
    between: Option<Duration>,
    mid: Duration,
    last: Duration,
}

impl IdleTimer {
    /// The timer for `side`, started at `now`.
    ///
    /// With KeepAlive agreed, silence is bounded by `idle` everywhere. Without
    /// it the peer may be silent for good reasons: a receiver waiting for its
    /// user sends nothing, so a sender waits between records without limit
    /// (TCP keepalive and the relay still notice a dead path); a receiver
    /// whose sender is slow to read its disk waits [`LEGACY_IDLE_TIMEOUT`].
    /// Inside a record that has started, the limit is between any two of its
    /// bytes: `idle` (KeepAlive agreed) or [`LEGACY_IDLE_TIMEOUT`]. A slow link
    /// may take longer than that for a whole record; a peer that trickles
    /// holds only the one record buffer it would hold anyway.
    pub fn new(agreed: &Agreed, side: Side, idle: Duration, now: Duration) -> Self {
        let (between, mid) = match (agreed.keepalive, side) {
            (true, _) => (Some(idle), idle),
            (false, Side::Sender) => (None, LEGACY_IDLE_TIMEOUT),
            (false, Side::Receiver) => (Some(LEGACY_IDLE_TIMEOUT), LEGACY_IDLE_TIMEOUT),
        };
        IdleTimer { between, mid, last: now }
    }

    /// Bytes arrived at `now`. Also call it when the reader starts reading
    /// again after holding off (its consumer was busy): the peer cannot be
    /// blamed for the time nobody read.
    pub fn on_receive(&mut self, now: Duration) {
        self.last = self.last.max(now);
    }

    /// The limit that applies while `reading`; `None` when there is none.
    pub fn limit(&self, reading: Reading) -> Option<Duration> {
        match reading {
            Reading::BetweenRecords => self.between,
            Reading::MidRecord => Some(self.mid),
        }
    }

    /// When the peer will have been silent too long, if nothing arrives
    /// first; `None` when there is no limit.
    pub fn poll_timeout(&self, reading: Reading) -> Option<Duration> {
        self.limit(reading).map(|l| self.last.saturating_add(l))
    }

    /// Checks the limit at `now`: `Some(limit)` when the peer was silent for
    /// all of it (the side gives up and says so), `None` when time remains
    /// (a wake-up that came early).
    pub fn handle_timeout(&mut self, now: Duration, reading: Reading) -> Option<Duration> {
        let limit = self.limit(reading)?;
        (now >= self.last.saturating_add(limit)).then_some(limit)
    }
}

/// Decides when this side sends KeepAlive. Report every record sealed with
/// [`KeepAliveTimer::on_transmit`]; wait at most until
/// [`KeepAliveTimer::poll_timeout`] for the next record; when it passes,
/// [`KeepAliveTimer::handle_timeout`] says whether to seal
/// [`KEEPALIVE_RECORD`] now.
#[derive(Debug, Clone)]
pub struct KeepAliveTimer {
    interval: Option<Duration>,
    last: Duration,
}

impl KeepAliveTimer {
    /// The timer for a side whose peer waits at most `idle`, started at
    /// `now`. Without KeepAlive agreed it never fires (an older peer would
    /// reject message 17).
    pub fn new(agreed: &Agreed, idle: Duration, now: Duration) -> Self {
        KeepAliveTimer { interval: agreed.keepalive.then(|| keepalive_interval(idle)), last: now }
    }

    /// A record went out at `now` (any record: it proves liveness as well).
    pub fn on_transmit(&mut self, now: Duration) {
        self.last = self.last.max(now);
    }

    /// The final record went out: nothing may follow it, KeepAlive included.
    pub fn finish(&mut self) {
        self.interval = None;
    }

    /// When a KeepAlive is due if no other record goes out first; `None` when
    /// none will be.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.interval.map(|i| self.last.saturating_add(i))
    }

    /// At `now`: `true` when a KeepAlive is due. The caller seals
    /// [`KEEPALIVE_RECORD`] at once; the timer counts it as sent.
    pub fn handle_timeout(&mut self, now: Duration) -> bool {
        match self.poll_timeout() {
            Some(due) if now >= due => {
                self.last = now;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Capabilities;

    fn agreed(keepalive: bool) -> Agreed {
        let base = Capabilities::CHACHA20_POLY1305;
        let c = Capabilities(if keepalive { base | Capabilities::KEEPALIVE } else { base });
        Agreed::negotiate(c, c)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn keepalive_agreed_bounds_silence_everywhere() {
        for side in [Side::Sender, Side::Receiver] {
            let mut t = IdleTimer::new(&agreed(true), side, IDLE_TIMEOUT, S(0));
            assert_eq!(t.poll_timeout(Reading::BetweenRecords), Some(S(60)));
            t.on_receive(S(10));
            assert_eq!(t.poll_timeout(Reading::BetweenRecords), Some(S(70)));
            assert_eq!(t.poll_timeout(Reading::MidRecord), Some(S(70)));
            assert_eq!(t.handle_timeout(S(69), Reading::BetweenRecords), None, "early wake-up");
            assert_eq!(t.handle_timeout(S(70), Reading::BetweenRecords), Some(S(60)));
        }
    }

    #[test]
    fn without_keepalive_a_sender_waits_for_the_receivers_user() {
        let mut t = IdleTimer::new(&agreed(false), Side::Sender, IDLE_TIMEOUT, S(0));
        assert_eq!(t.poll_timeout(Reading::BetweenRecords), None);
        assert_eq!(t.handle_timeout(S(1_000_000), Reading::BetweenRecords), None);
        // A record that has started is still owed in full.
        assert_eq!(t.poll_timeout(Reading::MidRecord), Some(LEGACY_IDLE_TIMEOUT));
        assert_eq!(t.handle_timeout(S(600), Reading::MidRecord), Some(LEGACY_IDLE_TIMEOUT));
    }

    #[test]
    fn without_keepalive_a_receiver_waits_ten_minutes() {
        let t = IdleTimer::new(&agreed(false), Side::Receiver, IDLE_TIMEOUT, S(5));
        assert_eq!(t.poll_timeout(Reading::BetweenRecords), Some(S(605)));
    }

    #[test]
    fn arrivals_never_move_the_clock_back() {
        let mut t = IdleTimer::new(&agreed(true), Side::Receiver, IDLE_TIMEOUT, S(0));
        t.on_receive(S(30));
        t.on_receive(S(20));
        assert_eq!(t.poll_timeout(Reading::BetweenRecords), Some(S(90)));
    }

    #[test]
    fn keepalive_goes_out_only_after_a_quiet_interval() {
        let mut k = KeepAliveTimer::new(&agreed(true), IDLE_TIMEOUT, S(0));
        assert_eq!(k.poll_timeout(), Some(S(5)));
        k.on_transmit(S(3));
        assert!(!k.handle_timeout(S(5)), "a record went out 2 s ago");
        assert!(k.handle_timeout(S(8)));
        assert_eq!(k.poll_timeout(), Some(S(13)), "the KeepAlive counts as sent");
        k.finish();
        assert_eq!(k.poll_timeout(), None);
        assert!(!k.handle_timeout(S(1000)), "nothing follows the final record");
    }

    #[test]
    fn no_keepalive_to_an_older_peer() {
        let mut k = KeepAliveTimer::new(&agreed(false), IDLE_TIMEOUT, S(0));
        assert_eq!(k.poll_timeout(), None);
        assert!(!k.handle_timeout(S(3600)));
    }

    #[test]
    fn interval_is_a_quarter_within_bounds() {
        assert_eq!(keepalive_interval(S(60)), S(5));
        assert_eq!(keepalive_interval(S(600)), S(5));
        assert_eq!(keepalive_interval(MIN_IDLE_TIMEOUT), Duration::from_millis(2500));
        assert_eq!(keepalive_interval(S(8)), S(2));
        assert_eq!(keepalive_interval(Duration::from_millis(100)), Duration::from_millis(100));
    }

    #[test]
    fn the_keepalive_record_is_message_17() {
        let mut out = Vec::new();
        crate::transfer::TransferMsg::KeepAlive.encode(&mut out);
        assert_eq!(out, KEEPALIVE_RECORD);
    }
}
