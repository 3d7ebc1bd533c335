//! Where rooms are registered. A single relay keeps them in its own memory
//! (the embedded default); a fleet of relays shares them through Redis
//! ([`fleet`]), so that any instance can tell where the other peer of a room
//! waits, and so that nameplates are allocated once across the fleet.

pub(crate) mod fleet;

use pqdrop_proto::code::Nameplate;

/// The largest nameplate a relay allocates: the largest there is
/// (PROTOCOL.md §9.1).
pub(crate) const MAX_ALLOCATED: u32 = Nameplate::MAX;

/// The nameplates in use on a single relay, as a bitmap, so that the smallest
/// free one is found in a few hundred word reads however many rooms wait.
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

impl NameplatePool {
    /// Marks `np` used.
    pub(crate) fn take(&mut self, np: Nameplate) {
        let n = np.get() as usize;
        self.words[n / 64] |= 1 << (n % 64);
    }

    /// Marks `np` free again.
    pub(crate) fn put_back(&mut self, np: Nameplate) {
        let n = np.get() as usize;
        self.words[n / 64] &= !(1 << (n % 64));
    }

    /// Takes and returns the smallest free nameplate, if any is left.
    pub(crate) fn allocate(&mut self) -> Option<Nameplate> {
        let (i, w) = self.words.iter().enumerate().find(|(_, w)| **w != u64::MAX)?;
        let np = Nameplate::new(i as u32 * 64 + w.trailing_ones()).ok()?;
        self.take(np);
        Some(np)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn np(n: u32) -> Nameplate {
        Nameplate::new(n).unwrap()
    }

    #[test]
    fn smallest_free_first_and_reused() {
        let mut p = NameplatePool::default();
        assert_eq!(p.allocate(), Some(np(1)));
        p.take(np(2));
        assert_eq!(p.allocate(), Some(np(3)));
        p.put_back(np(1));
        assert_eq!(p.allocate(), Some(np(1)));
        for want in 4..=200u32 {
            assert_eq!(p.allocate(), Some(np(want)));
        }
        p.put_back(np(150));
        assert_eq!(p.allocate(), Some(np(150)));
    }

    #[test]
    fn exhausted() {
        let mut p = NameplatePool::default();
        for _ in 0..MAX_ALLOCATED {
            assert!(p.allocate().is_some());
        }
        assert_eq!(p.allocate(), None);
        p.put_back(np(65_535));
        assert_eq!(p.allocate(), Some(np(65_535)));
    }
}
