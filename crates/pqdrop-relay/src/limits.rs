//! Per-source-address accounting: address keys, join-rate token buckets and
//! per-address counts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::time::Instant;

/// The unit the per-address limits count: an IPv4 address, or the /64 prefix of
/// an IPv6 address (one host usually has a whole /64). IPv4-mapped IPv6
/// addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IpKey {
    V4(Ipv4Addr),
    V6Prefix(u64),
    /// The /24 of an IPv4 address (its top 24 bits): a network's share.
    Net4(u32),
    /// The /48 of an IPv6 address (its top 48 bits): a site's share.
    Net6(u64),
}

impl IpKey {
    pub(crate) fn of(ip: IpAddr) -> IpKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey::V4(v4),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                IpKey::V6Prefix(u64::from_be_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]))
            }
        }
    }
}

impl IpKey {
    /// The network this address belongs to (IPv4 /24, IPv6 /48), counted
    /// against the per-network limits.
    pub(crate) fn net(self) -> IpKey {
        match self {
            IpKey::V4(a) => IpKey::Net4(u32::from(a) >> 8),
            IpKey::V6Prefix(p) => IpKey::Net6(p >> 16),
            n => n,
        }
    }
}

impl std::fmt::Display for IpKey {
    /// The key as the fleet's directory stores it: `4:192.0.2.1`, or
    /// `6:` and the /64 prefix in hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpKey::V4(a) => write!(f, "4:{a}"),
            IpKey::V6Prefix(p) => write!(f, "6:{p:016x}"),
            IpKey::Net4(n) => write!(f, "4n:{n:06x}"),
            IpKey::Net6(n) => write!(f, "6n:{n:012x}"),
        }
    }
}

/// Gives back most of a map's table once it is mostly empty, so that memory
/// taken at a load peak is returned after it (a `HashMap` never shrinks by
/// itself, and a large table allocated late pins the heap below it).
pub(crate) fn shrink_if_sparse<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 256 && map.len() * 8 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// How many of something (rooms, connections in the hello phase, paired
/// sessions) each [`IpKey`] has now. Only addresses with a count above zero
/// have an entry, so the map is never larger than the number of things counted.
#[derive(Debug, Default)]
pub(crate) struct PerIpCounter {
    counts: HashMap<IpKey, usize>,
}

impl PerIpCounter {
    /// The count of `key` (0 if it has no entry).
    pub(crate) fn get(&self, key: IpKey) -> usize {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    pub(crate) fn increment(&mut self, key: IpKey) {
        *self.counts.entry(key).or_insert(0) += 1;
    }

    /// Counts `key` and its network ([`IpKey::net`]).
    pub(crate) fn increment_with_net(&mut self, key: IpKey) {
        self.increment(key);
        self.increment(key.net());
    }

    /// Uncounts `key` and its network.
    pub(crate) fn decrement_with_net(&mut self, key: IpKey) {
        self.decrement(key);
        self.decrement(key.net());
    }

    /// Decrements the count of `key`, removing its entry when it reaches zero.
    pub(crate) fn decrement(&mut self, key: IpKey) {
        if let Some(n) = self.counts.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&key);
                shrink_if_sparse(&mut self.counts);
            }
        }
    }

    /// How many addresses have an entry.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.counts.len()
    }
}

/// What the rate limiter says about one join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateDecision {
    Allow,
    /// This address has no token left.
    Limited,
    /// The table of addresses is full (after evicting full buckets).
    TableFull,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per [`IpKey`], bounded in number: a bucket that has refilled
/// completely carries no information and is evicted.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: HashMap<IpKey, Bucket>,
    rate: f64,
    burst: f64,
    max_tracked: usize,
    last_sweep: Instant,
}

/// How often buckets are swept even when the table is not full.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl RateLimiter {
    pub(crate) fn new(rate: f64, burst: u32, max_tracked: usize) -> RateLimiter {
        RateLimiter { buckets: HashMap::new(), rate, burst: f64::from(burst), max_tracked, last_sweep: Instant::now() }
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + dt * self.rate).min(self.burst)
    }

    /// Removes every bucket that has refilled completely.
    fn sweep(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let dt = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + dt * rate < burst
        });
        shrink_if_sparse(&mut self.buckets);
        self.last_sweep = now;
    }

    /// Takes one token for `key` if it has one.
    pub(crate) fn check(&mut self, key: IpKey, now: Instant) -> RateDecision {
        if now.saturating_duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.sweep(now);
        }
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_tracked {
            self.sweep(now);
            if self.buckets.len() >= self.max_tracked {
                return RateDecision::TableFull;
            }
        }
        let burst = self.burst;
        let tokens = match self.buckets.get(&key) {
            Some(b) => self.refilled(b, now),
            None => burst,
        };
        if tokens >= 1.0 {
            self.buckets.insert(key, Bucket { tokens: tokens - 1.0, last: now });
            RateDecision::Allow
        } else {
            self.buckets.insert(key, Bucket { tokens, last: now });
            RateDecision::Limited
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn keys() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:4:5:7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(IpKey::of(a), IpKey::of(b));
        assert_ne!(IpKey::of(a), IpKey::of(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(IpKey::of(mapped), IpKey::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(IpKey::of(IpAddr::V6(Ipv6Addr::LOCALHOST)), IpKey::V4(Ipv4Addr::LOCALHOST));
        // Networks: IPv4 /24, IPv6 /48.
        let net = |s: &str| IpKey::of(s.parse().unwrap()).net();
        assert_eq!(net("192.0.2.1"), net("192.0.2.200"));
        assert_ne!(net("192.0.2.1"), net("192.0.3.1"));
        assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:ffff::1"));
        assert_ne!(net("2001:db8:1::1"), net("2001:db8:2::1"));
    }

    #[test]
    fn bucket_refills_and_evicts() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(2.0, 3, 2);
        let k1 = IpKey::V4(Ipv4Addr::new(192, 0, 2, 1));
        let k2 = IpKey::V4(Ipv4Addr::new(192, 0, 2, 2));
        let k3 = IpKey::V4(Ipv4Addr::new(192, 0, 2, 3));
        for _ in 0..3 {
            assert_eq!(rl.check(k1, t0), RateDecision::Allow);
        }
        assert_eq!(rl.check(k1, t0), RateDecision::Limited);
        assert_eq!(rl.check(k1, t0 + Duration::from_millis(500)), RateDecision::Allow);
        assert_eq!(rl.check(k1, t0 + Duration::from_millis(500)), RateDecision::Limited);
        assert_eq!(rl.check(k2, t0 + Duration::from_millis(500)), RateDecision::Allow);
        // table full (k1, k2), neither refilled yet
        assert_eq!(rl.check(k3, t0 + Duration::from_millis(600)), RateDecision::TableFull);
        // later both have refilled: evicted, k3 gets in
        let later = t0 + Duration::from_secs(5);
        assert_eq!(rl.check(k3, later), RateDecision::Allow);
        assert_eq!(rl.tracked(), 1);
    }

    #[test]
    fn per_ip_counter_drops_entries_at_zero() {
        let mut c = PerIpCounter::default();
        let k1 = IpKey::V4(Ipv4Addr::new(192, 0, 2, 1));
        let k2 = IpKey::V4(Ipv4Addr::new(192, 0, 2, 2));
        c.increment(k1);
        c.increment(k1);
        c.increment(k2);
        assert_eq!((c.get(k1), c.get(k2), c.tracked()), (2, 1, 2));
        c.decrement(k1);
        c.decrement(k2);
        assert_eq!((c.get(k1), c.get(k2), c.tracked()), (1, 0, 1));
        c.decrement(k1);
        assert_eq!(c.tracked(), 0);
        // Decrementing an absent key is a no-op and creates no entry.
        c.decrement(k1);
        assert_eq!((c.get(k1), c.tracked()), (0, 0));
    }

    #[test]
    fn zero_burst_always_limits() {
        let mut rl = RateLimiter::new(100.0, 0, 10);
        let k = IpKey::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(rl.check(k, Instant::now()), RateDecision::Limited);
    }
}
