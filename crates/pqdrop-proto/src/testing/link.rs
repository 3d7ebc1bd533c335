//! The simulated link between the two sides, and the faults a test puts on it.

/// A fault on the sender-to-receiver link, positioned in bytes or frames
/// after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection ends after this many bytes (both directions).
    CutAt(u64),
    /// The byte at this offset is inverted.
    FlipByte(u64),
    /// This frame (counting from 0) is lost.
    DropFrame(usize),
    /// This frame arrives twice.
    DuplicateFrame(usize),
    /// This frame arrives after the next one.
    SwapFrame(usize),
    /// Nothing more arrives after this many frames, and the link stays open.
    StallAfter(usize),
    /// Nothing more arrives from the receiver after this many of its
    /// frames, and the link stays open.
    StallRepliesAfter(usize),
}

pub(super) struct Link {
    faults: Vec<Fault>,
    sent_bytes: u64,
    frames: usize,
    held: Option<Vec<u8>>,
    /// The connection ended (both directions).
    pub(super) cut: bool,
    stalled: bool,
    replies: usize,
}

impl Link {
    /// A link with these faults, at its start.
    pub(super) fn new(faults: Vec<Fault>) -> Self {
        Link { faults, sent_bytes: 0, frames: 0, held: None, cut: false, stalled: false, replies: 0 }
    }

    /// Carries the receiver's frames; returns what arrives.
    pub(super) fn carry_back(&mut self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in frames {
            let n = self.replies;
            self.replies += 1;
            if !self.cut && !self.faults.iter().any(|f| matches!(*f, Fault::StallRepliesAfter(k) if n >= k)) {
                out.push(f);
            }
        }
        out
    }

    /// Carries the sender's frames; returns what arrives, in order.
    pub(super) fn carry(&mut self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for mut f in frames {
            let n = self.frames;
            self.frames += 1;
            if self.cut || self.stalled {
                continue;
            }
            let start = self.sent_bytes;
            self.sent_bytes += f.len() as u64;
            for fault in &self.faults {
                match *fault {
                    Fault::CutAt(at) if at < self.sent_bytes => {
                        f.truncate((at.saturating_sub(start)) as usize);
                        self.cut = true;
                    }
                    Fault::FlipByte(at) if (start..self.sent_bytes).contains(&at) => f[(at - start) as usize] ^= 0xFF,
                    Fault::StallAfter(k) if n >= k => self.stalled = true,
                    _ => {}
                }
            }
            if self.stalled {
                continue;
            }
            if self.cut {
                // A partial frame is read as a truncated stream.
                break;
            }
            if self.faults.contains(&Fault::DropFrame(n)) {
                continue;
            }
            if self.faults.contains(&Fault::SwapFrame(n)) {
                self.held = Some(f);
                continue;
            }
            if self.faults.contains(&Fault::DuplicateFrame(n)) {
                out.push(f.clone());
            }
            out.push(f);
            if let Some(h) = self.held.take() {
                out.push(h);
            }
        }
        out
    }
}
