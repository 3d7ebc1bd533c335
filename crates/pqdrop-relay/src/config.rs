//! Relay limits and tunables.

use std::time::Duration;

use crate::RelayError;

/// Limits and tunables of a [`crate::Relay`]. Every field is public so tests and
/// operators can change any of them; [`RelayConfig::default`] gives the
/// documented defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Most rooms (waiting peers) one source address may have open at once
    /// (refusal code 17). Default 8.
    pub max_pending_per_ip: usize,
    /// Most rooms one network (IPv4 /24, IPv6 /48) may have waiting at once on
    /// this relay (refusal code 17): a block of addresses cannot squat the
    /// rooms. Default 32.
    pub max_pending_per_net: usize,
    /// Most rooms open in total (refusal code 18). Default 10,000.
    pub max_pending_total: usize,
    /// Join rate per source address: tokens added per second to its token
    /// bucket; every accepted connection takes one (refusal code 19, sent at
    /// once, before the connection takes any of the `max_handshakes` slots, and
    /// followed by a prompt close). Default 10.
    pub join_rate_per_sec: f64,
    /// Join burst per source address: the token bucket's size. Default 30.
    pub join_burst: u32,
    /// How long a peer may wait for the other one (refusal code 20). Default 30 min.
    pub waiting_timeout: Duration,
    /// A paired session with no byte in either direction for this long is
    /// closed. Default 10 min.
    pub idle_timeout: Duration,
    /// The whole hello must arrive within this time from accept (refusal code
    /// 21). Default 10 s.
    pub hello_timeout: Duration,
    /// Bytes a peer may send after its hello before it is paired; they are
    /// buffered and forwarded on pairing (more: refusal code 23). Default 4096.
    pub max_prepair_bytes: usize,
    /// Most paired sessions at once (refusal code 18). Default 4,096.
    pub max_sessions: usize,
    /// Most paired sessions at once that involve one source address (refusal
    /// code 18, to the peer whose arrival would open one more). A session
    /// counts once against each distinct address of its two peers: once for
    /// each when they come from different addresses, once in all when both
    /// come from the same one. The waiting peer keeps waiting. Default 32.
    pub max_sessions_per_ip: usize,
    /// Most connections in the hello phase at once (accepted, hello not yet
    /// complete, including those being refused for a bad or late hello); more
    /// are sent code 18 without waiting and closed at once. Default 1,024.
    pub max_handshakes: usize,
    /// Most connections in the hello phase at once from one network (IPv4
    /// /24, IPv6 /48); more get code 19 at once. Default 64.
    pub max_handshakes_per_net: usize,
    /// When all `max_handshakes` slots are taken, a new connection takes the
    /// slot of the oldest one still without a hello, if that one has had
    /// this long (it is told 21 and closed). An honest client sends its hello
    /// right behind the last packet of the TCP handshake, so it reaches the
    /// relay within milliseconds of the accept (a lost packet aside), and
    /// connections that drip their hello or send nothing cannot keep it out.
    /// Default 250 ms.
    pub hello_evict_after: Duration,
    /// Most connections in the hello phase at once from one source address;
    /// more are sent code 19 (too many connections from your address) without
    /// waiting and closed at once. Keeps one address from holding all of
    /// `max_handshakes`. Default 16.
    pub max_handshakes_per_ip: usize,
    /// Most source addresses whose join-rate state is kept; token buckets that
    /// have refilled completely are evicted first, and when the table is still
    /// full, connections from new addresses get code 18. Default 65,536.
    pub max_tracked_addresses: usize,
    /// After shutdown, how long paired sessions may go on before they are cut.
    /// Default 30 s.
    pub shutdown_grace: Duration,
    /// Buffer size per direction of a paired session (user-space copy). A
    /// buffer exists only while its direction moves bytes (it is given back
    /// after 1 s without any), so an idle session holds none. Default 128 KiB.
    pub copy_buffer_size: usize,
    /// Use Linux `splice(2)` through a pipe (zero-copy) for paired sessions;
    /// ignored elsewhere. A session falls back to the user-space copy (with
    /// `copy_buffer_size` buffers) when its pipes cannot be made or cannot be
    /// grown to `splice_pipe_size` (e.g. an unprivileged user over
    /// `/proc/sys/fs/pipe-user-pages-soft`). Default false: measured on a
    /// 2-vCPU machine over loopback, the user-space copy moved 1 GiB about
    /// 10 % faster (median 1.02 s vs 1.14–1.24 s, five runs each; see
    /// BENCHMARKS.md). `pqdrop relay --splice` turns it on.
    pub use_splice: bool,
    /// Capacity asked for each splice pipe (one per direction). Pipes with
    /// few slots splice slowly, so the default is the largest an unprivileged
    /// process may ask for (`/proc/sys/fs/pipe-max-size`): 1 MiB.
    pub splice_pipe_size: usize,
    /// Run as one instance of a fleet that shares its rooms through Redis
    /// (PROTOCOL.md §9.7). `None` (the default): rooms live in this process.
    pub fleet: Option<crate::FleetConfig>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            max_pending_per_ip: 8,
            max_pending_per_net: 32,
            max_pending_total: 10_000,
            join_rate_per_sec: 10.0,
            join_burst: 30,
            waiting_timeout: Duration::from_secs(30 * 60),
            idle_timeout: Duration::from_secs(10 * 60),
            hello_timeout: Duration::from_secs(10),
            max_prepair_bytes: 4096,
            max_sessions: 4096,
            max_sessions_per_ip: 32,
            max_handshakes: 1024,
            max_handshakes_per_ip: 16,
            max_handshakes_per_net: 64,
            hello_evict_after: Duration::from_millis(250),
            max_tracked_addresses: 65_536,
            shutdown_grace: Duration::from_secs(30),
            copy_buffer_size: 128 * 1024,
            use_splice: false,
            splice_pipe_size: 1024 * 1024,
            fleet: None,
        }
    }
}

impl RelayConfig {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), RelayError> {
        if !self.join_rate_per_sec.is_finite() || self.join_rate_per_sec < 0.0 {
            return Err(RelayError::Config("join_rate_per_sec must be a finite number >= 0"));
        }
        let max_permits = tokio::sync::Semaphore::MAX_PERMITS;
        if self.max_sessions > max_permits || self.max_handshakes > max_permits {
            return Err(RelayError::Config("max_sessions and max_handshakes must fit a semaphore"));
        }
        if !(4096..=64 * 1024 * 1024).contains(&self.copy_buffer_size) {
            return Err(RelayError::Config("copy_buffer_size must be between 4 KiB and 64 MiB"));
        }
        if !(4096..=64 * 1024 * 1024).contains(&self.splice_pipe_size) {
            return Err(RelayError::Config("splice_pipe_size must be between 4 KiB and 64 MiB"));
        }
        if self.max_prepair_bytes > 64 * 1024 * 1024 {
            return Err(RelayError::Config("max_prepair_bytes must be at most 64 MiB"));
        }
        Ok(())
    }
}
