//! Where rooms are registered. A single relay keeps them in its own memory
//! (the embedded default); a fleet of relays shares them through Redis
//! ([`fleet`]), so that any instance can tell where the other peer of a room
//! waits, and so that nameplates are allocated once across the fleet.

pub(crate) mod fleet;

/// The largest nameplate a relay allocates: the largest a pqdrop code carries
/// (PROTOCOL.md §3).
pub(crate) const MAX_ALLOCATED: u32 = 65_535;

/// The canonical nameplates (decimal, no leading zero, at most
/// [`MAX_ALLOCATED`]) in use on a single relay, as a bitmap, so that the
/// smallest free one is found in a few hundred word reads however many rooms
/// wait. Rooms with other names ("007", "4294967295") are not tracked: an
/// allocation never produces them.
#[derive(Debug)]
pub(crate) struct NameplatePool {
    words: Vec<u64>,
}

impl Default for NameplatePool {
    fn default() -> Self {
        // Bit 0 is taken for good: nameplate 0 does not exist.
        let mut words = vec![0u64; (MAX_ALLOCATED as usize + 1).div_ceil(64)];
        words[0] = 1;
        NameplatePool { words }
    }
}

/// The value of a canonical allocatable nameplate, if `np` is one.
pub(crate) fn canonical(np: &str) -> Option<u32> {
    if np.starts_with('0') || np.len() > 5 {
        return None;
    }
    np.parse::<u32>().ok().filter(|n| (1..=MAX_ALLOCATED).contains(n))
}

impl NameplatePool {
    /// Marks `np` used (a no-op for a name the pool does not track).
    pub(crate) fn take(&mut self, np: &str) {
        if let Some(n) = canonical(np) {
            self.words[n as usize / 64] |= 1 << (n % 64);
        }
    }

    /// Marks `np` free again.
    pub(crate) fn put_back(&mut self, np: &str) {
        if let Some(n) = canonical(np) {
            self.words[n as usize / 64] &= !(1 << (n % 64));
        }
    }

    /// Takes and returns the smallest free nameplate, if any is left.
    pub(crate) fn allocate(&mut self) -> Option<String> {
        let (i, w) = self.words.iter().enumerate().find(|(_, w)| **w != u64::MAX)?;
        let n = i as u32 * 64 + w.trailing_ones();
        if n > MAX_ALLOCATED {
            return None;
        }
        let np = n.to_string();
        self.take(&np);
        Some(np)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_free_first_and_reused() {
        let mut p = NameplatePool::default();
        assert_eq!(p.allocate().as_deref(), Some("1"));
        p.take("2");
        p.take("07"); // not canonical: not tracked
        assert_eq!(p.allocate().as_deref(), Some("3"));
        p.put_back("1");
        assert_eq!(p.allocate().as_deref(), Some("1"));
        for want in 4..=200u32 {
            assert_eq!(p.allocate(), Some(want.to_string()));
        }
        p.put_back("150");
        assert_eq!(p.allocate().as_deref(), Some("150"));
    }

    #[test]
    fn exhausted() {
        let mut p = NameplatePool::default();
        for _ in 0..MAX_ALLOCATED {
            assert!(p.allocate().is_some());
        }
        assert_eq!(p.allocate(), None);
        p.put_back("65535");
        assert_eq!(p.allocate().as_deref(), Some("65535"));
        assert_eq!(canonical("65536"), None);
        assert_eq!(canonical("0"), None);
    }
}
