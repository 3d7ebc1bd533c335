//! Helpers shared by the pqdrop fuzz targets: a byte cursor over the fuzz
//! input, and (from `pqdrop_proto::testing`) a deterministic RNG and a
//! deterministic ML-KEM-768.

/// Reads the fuzz input as a sequence of small decisions. Past the end every
/// read returns zeros / empty slices, so any input is a complete program.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte, or 0 at the end.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

// The deterministic RNG and ML-KEM-768 live in the protocol crate's
// `testing` feature, shared with its own tests.
pub use pqdrop_proto::testing::{DetMlKem, DetRng};
