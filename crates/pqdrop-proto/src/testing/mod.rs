//! Test support (feature `testing`): a deterministic RNG and ML-KEM, an
//! in-memory handshake, and [`Pair`], a simulator that runs a whole transfer
//! between a [`crate::transfer::Sender`] and a [`crate::transfer::Receiver`]
//! over an in-memory link, with faults the test injects.
//!
//! Nothing here is for production use: the RNG is a fixed stream.

mod link;
mod pair;
mod tree;

pub use pair::{End, Fault, Outcome, Pair, SimOptions};
pub use tree::{Node, Tree};

/// [`RecordCipher`](crate::record::RecordCipher)'s sealing at a chosen
/// counter, for known-answer tests, benches and fuzz models. It is not in the
/// public API because the counter decides the nonce: a caller that picks it
/// can reuse one. Real senders use [`RecordSealer`](crate::record::RecordSealer).
pub fn seal_at(
    cipher: &crate::record::RecordCipher,
    counter: u64,
    last: bool,
    buf: &mut [u8],
    pt_len: usize,
) -> crate::Result<core::ops::Range<usize>> {
    cipher.seal_at(counter, last, buf, pt_len)
}

use rand_core::{CryptoRng, RngCore};

use crate::code::Code;
use crate::handshake::{Config, Established, Handshake, Kem};
use crate::msg::Capabilities;
use crate::primitives::{mlkem768_encapsulate_deterministic, sha512, KemSecret, MlKemDecapsulationKey};
use crate::{Error, Result};

/// `stream(label) = SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || ...`:
/// every draw takes the next bytes of the stream (the construction the
/// handshake vectors of PROTOCOL.md §14 use).
#[derive(Debug, Clone)]
pub struct DetRng {
    label: Vec<u8>,
    counter: u64,
    block: [u8; 64],
    pos: usize,
}

impl DetRng {
    /// The stream of `label`.
    pub fn new(label: impl AsRef<[u8]>) -> Self {
        Self { label: label.as_ref().to_vec(), counter: 0, block: [0; 64], pos: 64 }
    }

    /// Bytes drawn so far (to check that two runs drew the same amount).
    pub fn consumed(&self) -> u64 {
        self.counter * 64 + self.pos as u64 - 64
    }

    /// The next 32 bytes.
    pub fn take32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.fill_bytes(&mut b);
        b
    }
}

impl RngCore for DetRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut done = 0;
        while done < dest.len() {
            if self.pos == 64 {
                self.block = sha512(&[&self.label, &self.counter.to_be_bytes()]);
                self.counter += 1;
                self.pos = 0;
            }
            let n = (64 - self.pos).min(dest.len() - done);
            dest[done..done + n].copy_from_slice(&self.block[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for DetRng {}

/// The protocol's ML-KEM-768 with the keygen seed (d, z) and the encapsulation
/// randomness m drawn from a [`DetRng`] instead of the OS.
#[derive(Debug)]
pub struct DetMlKem {
    rng: DetRng,
}

impl DetMlKem {
    /// A KEM whose randomness is the stream of `label`.
    pub fn new(label: impl AsRef<[u8]>) -> Self {
        Self { rng: DetRng::new(label) }
    }
}

/// The decapsulation key of [`DetMlKem`]: the protocol's own type.
pub type MlKemDk = MlKemDecapsulationKey;

impl Kem for DetMlKem {
    type DecapsulationKey = MlKemDk;

    fn generate(&mut self) -> Result<(MlKemDk, Vec<u8>)> {
        let mut seed = [0u8; 64];
        self.rng.fill_bytes(&mut seed);
        Ok(MlKemDk::from_seed(&seed))
    }

    fn encapsulate(&mut self, ek: &[u8]) -> Result<(Vec<u8>, KemSecret)> {
        let m = self.rng.take32();
        mlkem768_encapsulate_deterministic(ek, &m)
    }

    fn decapsulate(&self, dk: &MlKemDk, ct: &[u8]) -> Result<KemSecret> {
        dk.decapsulate(ct)
    }
}

/// Runs the handshake between a requester (receiver) with `receiver_code`
/// and an accepter (sender) with `sender_code`, in memory, deterministically
/// for a given `seed`. Returns both sessions, or the first side's error.
pub fn handshake(
    receiver_code: &Code,
    sender_code: &Code,
    caps: (Capabilities, Capabilities),
    seed: &str,
) -> Result<(Established, Established)> {
    let (rp, sp) = (receiver_code.password(), sender_code.password());
    let (rn, sn) = (receiver_code.nameplate().to_string(), sender_code.nameplate().to_string());
    let mut rng_r = DetRng::new(format!("{seed}/requester"));
    let mut rng_s = DetRng::new(format!("{seed}/accepter"));
    let mut r = Handshake::requester_with_kem(
        Config { password: &rp, nameplate: &rn, capabilities: caps.0 },
        DetMlKem::new(format!("{seed}/requester-kem")),
        &mut rng_r,
    )?;
    let mut s = Handshake::accepter_with_kem(
        Config { password: &sp, nameplate: &sn, capabilities: caps.1 },
        DetMlKem::new(format!("{seed}/accepter-kem")),
        &mut rng_s,
    )?;
    // Each flight is delivered whole; a bounded number of rounds.
    for _ in 0..16 {
        if r.is_complete() && s.is_complete() {
            return Ok((r.into_session()?, s.into_session()?));
        }
        if let Some(out) = r.poll_transmit() {
            feed(&mut s, &out)?;
        }
        if let Some(out) = s.poll_transmit() {
            feed(&mut r, &out)?;
        }
    }
    Err(Error::Misuse("the simulated handshake did not complete"))
}

fn feed<K: Kem>(hs: &mut Handshake<K>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() && !hs.is_complete() {
        let used = hs.handle_input(data)?;
        if used == 0 {
            break;
        }
        data = &data[used..];
    }
    Ok(())
}
