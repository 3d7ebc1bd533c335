//! Helpers shared by the pqdrop fuzz targets: a byte cursor over the fuzz
//! input, a deterministic RNG and a deterministic ML-KEM-768.

use ml_kem::{Decapsulate, KeyExport};
use pqdrop_proto::handshake::Kem;
use pqdrop_proto::primitives::{sha512, KemSecret};
use pqdrop_proto::{Error, Result};
use rand_core::{CryptoRng, RngCore};

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

/// `stream(label) = SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || ...`,
/// the same construction as the handshake vectors use. Fixed labels make every
/// run of a fuzz input draw the same "random" values.
pub struct DetRng {
    label: Vec<u8>,
    counter: u64,
    block: [u8; 64],
    pos: usize,
}

impl DetRng {
    /// A stream for `label`.
    pub fn new(label: &str) -> Self {
        Self { label: label.as_bytes().to_vec(), counter: 0, block: [0; 64], pos: 64 }
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

/// ML-KEM-768 from RustCrypto's `ml-kem`, with keygen seeds (d, z) and the
/// encapsulation randomness m drawn from a [`DetRng`].
pub struct DetMlKem {
    rng: DetRng,
}

impl DetMlKem {
    /// A KEM whose randomness is the stream of `label`.
    pub fn new(label: &str) -> Self {
        Self { rng: DetRng::new(label) }
    }
}

type MlKemDk = ml_kem::ml_kem_768::DecapsulationKey;

impl Kem for DetMlKem {
    type DecapsulationKey = MlKemDk;

    fn generate(&mut self) -> Result<(MlKemDk, Vec<u8>)> {
        let mut seed = [0u8; 64];
        self.rng.fill_bytes(&mut seed);
        let dk = MlKemDk::from_seed(ml_kem::Seed::from(seed));
        let ek = dk.encapsulation_key().to_bytes().to_vec();
        Ok((dk, ek))
    }

    fn encapsulate(&mut self, ek: &[u8]) -> Result<(Vec<u8>, KemSecret)> {
        let key = ml_kem::Key::<ml_kem::ml_kem_768::EncapsulationKey>::try_from(ek)
            .map_err(|_| Error::InvalidPublicValue("ML-KEM-768 encapsulation key has the wrong length"))?;
        let ek = ml_kem::ml_kem_768::EncapsulationKey::new(&key).map_err(|_| Error::InvalidPublicValue("ML-KEM-768 encapsulation key"))?;
        let m = self.rng.take32();
        let (ct, ss) = ek.encapsulate_deterministic(&ml_kem::B32::from(m));
        Ok((ct.to_vec(), KemSecret(ss.into())))
    }

    fn decapsulate(&self, dk: &MlKemDk, ct: &[u8]) -> Result<KemSecret> {
        let ss = dk.decapsulate_slice(ct).map_err(|_| Error::InvalidPublicValue("ML-KEM-768 ciphertext has the wrong length"))?;
        Ok(KemSecret(ss.into()))
    }
}
