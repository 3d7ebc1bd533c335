//! The deterministic key hierarchy ("seed 004"): every long-term key from one
//! 32-byte seed.
//!
//! ```text
//! key_N = HKDF-SHA256(salt = HALVING_SALT, ikm = seed || index(N), info, L = 32)
//! ```
//!
//! The design comes from the Secret Network enclave, whose specification and
//! deployed code disagree; both are implemented so that either can be matched:
//!
//! | [`Variant`] | `index(N)` | `info` | indices |
//! |---|---|---|---|
//! | [`Variant::Spec`] (as written in the specification) | `uint8(N)` | empty | 0..=255 |
//! | [`Variant::Enclave`] (as the enclave code does it) | `u32_big_endian(N)` | `"seed"` | any `u32` |
//!
//! The two variants give different keys for the same seed. Assigned indices are in
//! [`index`]. Exchange public keys are the X25519 base-point multiple of the
//! private key (RFC 7748: the private key bytes are stored as HKDF produced them
//! and clamped inside the scalar multiplication).
//!
//! Known-answer vectors, produced by an independent Python implementation
//! (`scripts/keys_crosscheck.py`), live in `vectors/keys.json` and are checked by
//! `tests/keys_vectors.rs`.

use core::fmt;
use core::str::FromStr;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::primitives::{ct_eq, hkdf_sha256, x25519_base};
use crate::{Error, Result};

/// The HKDF salt: the hash of Bitcoin block 630,000, the 2020 halving
/// (`000000000000000000024bead8df69990852c202db0e0097c1a12ea637d7e96d`). A public,
/// unpredictable-in-advance constant, so the salt cannot hide a backdoor.
pub const HALVING_SALT: [u8; 32] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x4b, 0xea, 0xd8, 0xdf, 0x69, 0x99, 0x08, 0x52, 0xc2, 0x02, 0xdb, 0x0e,
    0x00, 0x97, 0xc1, 0xa1, 0x2e, 0xa6, 0x37, 0xd7, 0xe9, 0x6d,
];

/// HKDF `info` of the enclave variant. The spec variant uses an empty `info`.
const ENCLAVE_INFO: &[u8] = b"seed";

/// Length of a seed and of every derived key.
pub const KEY_LEN: usize = 32;

/// Length of a seed written in hexadecimal.
pub const SEED_HEX_LEN: usize = 2 * KEY_LEN;

/// The assigned key indices `N`.
pub mod index {
    /// Seed-exchange private key (X25519).
    pub const SEED_EXCHANGE: u32 = 1;
    /// I/O-exchange private key (X25519).
    pub const IO_EXCHANGE: u32 = 2;
    /// Input keying material for state encryption.
    pub const STATE_IKM: u32 = 3;
    /// Consensus callback secret. (The specification's fourth block assigns this
    /// key to the wrong name, a copy-paste slip; this is the intended one.)
    pub const CALLBACK_SECRET: u32 = 4;
    /// Randomness encryption key (enclave only).
    pub const RANDOMNESS_ENCRYPTION: u32 = 5;
    /// Initial randomness seed (enclave only).
    pub const INITIAL_RANDOMNESS: u32 = 6;
    /// Admin proof (enclave only).
    pub const ADMIN_PROOF: u32 = 7;
    /// Contract key proof (enclave only).
    pub const CONTRACT_KEY_PROOF: u32 = 8;
}

/// Which of the two published derivations to follow.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Variant {
    /// As written in the specification: `ikm = seed || uint8(N)`, empty `info`.
    Spec,
    /// As the deployed enclave code does it: `ikm = seed || u32_be(N)`,
    /// `info = "seed"`.
    Enclave,
}

impl Variant {
    /// The lowercase name, as accepted by [`FromStr`]: `"spec"` or `"enclave"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Spec => "spec",
            Variant::Enclave => "enclave",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Variant {
    type Err = Error;

    /// `"spec"` or `"enclave"`, ASCII case ignored.
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("spec") {
            Ok(Variant::Spec)
        } else if s.eq_ignore_ascii_case("enclave") {
            Ok(Variant::Enclave)
        } else {
            Err(Error::Decode { what: "key hierarchy variant", why: "expected \"spec\" or \"enclave\"" })
        }
    }
}

/// The 32-byte root secret. Zeroized on drop; `Debug` prints no bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Seed([u8; KEY_LEN]);

impl Seed {
    /// A seed from raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A seed from 64 hexadecimal characters (either case), surrounding whitespace
    /// trimmed. Decoding runs in constant time with respect to the digits, and
    /// errors never quote the input.
    ///
    /// Errors: [`Error::BadKeyLength`] when the hex has the wrong number of
    /// characters (`got` is half the character count, rounded down), and
    /// [`Error::Decode`] when a character is not a hexadecimal digit.
    pub fn from_hex(s: &str) -> Result<Self> {
        let s = s.trim().as_bytes();
        if s.len() != SEED_HEX_LEN {
            return Err(Error::BadKeyLength { what: "seed", expected: KEY_LEN, got: s.len() / 2 });
        }
        let mut out = Seed([0u8; KEY_LEN]);
        // Every nibble is decoded; invalid ones set bits above 0x0f in `bad`.
        let mut bad: u16 = 0;
        for (byte, pair) in out.0.iter_mut().zip(s.chunks_exact(2)) {
            let hi = hex_nibble(pair[0]);
            let lo = hex_nibble(pair[1]);
            bad |= hi | lo;
            // Only the low 4 bits of each value are kept; on error the seed is
            // dropped (and zeroized) below anyway.
            *byte = (((hi & 0x0f) << 4) | (lo & 0x0f)) as u8;
        }
        if bad & 0xfff0 != 0 {
            return Err(Error::Decode { what: "seed", why: "not hexadecimal: use only 0-9 and a-f" });
        }
        Ok(out)
    }

    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Decodes one ASCII hex digit to `0..=15`, or to `0xffff` if it is not one,
/// without branches or table lookups that depend on the (secret) character.
fn hex_nibble(c: u8) -> u16 {
    let c = i16::from(c);
    // Each `((lo - c) & (c - hi)) >> 8` is -1 (all ones) exactly when
    // lo < c < hi and 0 otherwise; it masks in `c - base + 1`. Starting from -1,
    // a valid digit ends at its value and an invalid character stays at -1.
    let mut v: i16 = -1;
    v += (((0x2f - c) & (c - 0x3a)) >> 8) & (c - 0x2f); // '0'..='9' -> 1..=10
    v += (((0x40 - c) & (c - 0x47)) >> 8) & (c - 0x36); // 'A'..='F' -> 11..=16
    v += (((0x60 - c) & (c - 0x67)) >> 8) & (c - 0x56); // 'a'..='f' -> 11..=16
    v as u16
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl PartialEq for Seed {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Seed {}

/// One derived 32-byte key. Zeroized on drop; `Debug` prints no bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DerivedKey([u8; KEY_LEN]);

impl DerivedKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(<redacted>)")
    }
}

impl PartialEq for DerivedKey {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for DerivedKey {}

/// Key number `index` of the hierarchy under `variant`.
///
/// The spec variant encodes `index` in one byte, so it fails with
/// [`Error::Misuse`] for `index > 255` rather than silently truncating.
pub fn derive(seed: &Seed, variant: Variant, index: u32) -> Result<DerivedKey> {
    let mut key = DerivedKey([0u8; KEY_LEN]);
    derive_into(seed, variant, index, &mut key.0)?;
    Ok(key)
}

/// The hierarchy's formula with `L = out.len()` (an identity's 64-byte
/// ML-KEM seed uses it; PROTOCOL.md §13.1). `derive` is the `L = 32` case.
pub(crate) fn derive_into(seed: &Seed, variant: Variant, index: u32, out: &mut [u8]) -> Result<()> {
    // seed || index, at most 32 + 4 bytes; wiped after use since it holds the seed.
    let mut ikm = Zeroizing::new([0u8; KEY_LEN + 4]);
    ikm[..KEY_LEN].copy_from_slice(&seed.0);
    let (ikm_len, info): (usize, &[&[u8]]) = match variant {
        Variant::Spec => {
            let n = u8::try_from(index).map_err(|_| Error::Misuse("the spec key hierarchy encodes the index in one byte (0..=255)"))?;
            ikm[KEY_LEN] = n;
            (KEY_LEN + 1, &[])
        }
        Variant::Enclave => {
            ikm[KEY_LEN..].copy_from_slice(&index.to_be_bytes());
            (KEY_LEN + 4, &[ENCLAVE_INFO])
        }
    };
    hkdf_sha256(&HALVING_SALT, &ikm[..ikm_len], info, out)
}

/// The named keys of the hierarchy (indices 1 to 4) and the two public keys.
///
/// `Debug` shows the public keys and redacts the private ones.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    /// Key 1: seed-exchange X25519 private key (unclamped HKDF output).
    pub seed_exchange_private: DerivedKey,
    /// X25519 public key of [`Hierarchy::seed_exchange_private`].
    pub seed_exchange_public: [u8; KEY_LEN],
    /// Key 2: I/O-exchange X25519 private key (unclamped HKDF output).
    pub io_exchange_private: DerivedKey,
    /// X25519 public key of [`Hierarchy::io_exchange_private`].
    pub io_exchange_public: [u8; KEY_LEN],
    /// Key 3: input keying material for state encryption.
    pub state_ikm: DerivedKey,
    /// Key 4: consensus callback secret.
    pub callback_secret: DerivedKey,
}

/// Derives keys 1 to 4 and the two exchange public keys.
pub fn hierarchy(seed: &Seed, variant: Variant) -> Result<Hierarchy> {
    let seed_exchange_private = derive(seed, variant, index::SEED_EXCHANGE)?;
    let io_exchange_private = derive(seed, variant, index::IO_EXCHANGE)?;
    Ok(Hierarchy {
        seed_exchange_public: x25519_base(seed_exchange_private.as_bytes()),
        io_exchange_public: x25519_base(io_exchange_private.as_bytes()),
        seed_exchange_private,
        io_exchange_private,
        state_ikm: derive(seed, variant, index::STATE_IKM)?,
        callback_secret: derive(seed, variant, index::CALLBACK_SECRET)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn salt_is_the_halving_block_hash() {
        assert_eq!(HALVING_SALT.to_vec(), hx("000000000000000000024bead8df69990852c202db0e0097c1a12ea637d7e96d"));
    }

    #[test]
    fn hex_nibble_matches_a_plain_decoder_for_every_byte() {
        for b in 0..=255u8 {
            let want = (b as char).to_digit(16).map(|d| d as u16).unwrap_or(0xffff);
            assert_eq!(hex_nibble(b), want, "byte {b:#04x}");
        }
    }

    #[test]
    fn seed_from_hex() {
        let counting: [u8; 32] = core::array::from_fn(|i| i as u8);
        let text = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        assert_eq!(Seed::from_hex(text).unwrap(), Seed::from_bytes(counting));
        assert_eq!(Seed::from_hex(&format!("  {}\n", text.to_uppercase())).unwrap(), Seed::from_bytes(counting));
        assert_eq!(Seed::from_hex("abcd").unwrap_err(), Error::BadKeyLength { what: "seed", expected: 32, got: 2 });
        assert_eq!(Seed::from_hex("").unwrap_err().to_string(), "seed must be 32 bytes, got 0");
        assert!(matches!(Seed::from_hex(&format!("{text}00")), Err(Error::BadKeyLength { got: 33, .. })));
        let mut bad = text.to_string();
        bad.replace_range(63..64, "g");
        assert_eq!(Seed::from_hex(&bad).unwrap_err().to_string(), "malformed seed: not hexadecimal: use only 0-9 and a-f");
        // 64 bytes but not 64 characters of ASCII: still rejected, never panics.
        let wide = "é".repeat(32);
        assert!(Seed::from_hex(&wide).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let seed = Seed::from_bytes([0xab; 32]);
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
        let h = hierarchy(&seed, Variant::Spec).unwrap();
        let d = format!("{h:?}");
        assert!(d.contains("DerivedKey(<redacted>)"));
        for k in [&h.seed_exchange_private, &h.io_exchange_private, &h.state_ikm, &h.callback_secret] {
            // Neither the decimal bytes Debug of an array would print nor hex.
            let first = format!("{}, {}, {}", k.as_bytes()[0], k.as_bytes()[1], k.as_bytes()[2]);
            assert!(!d.contains(&first), "{d}");
        }
    }

    #[test]
    fn variant_names() {
        assert_eq!("spec".parse::<Variant>().unwrap(), Variant::Spec);
        assert_eq!("Enclave".parse::<Variant>().unwrap(), Variant::Enclave);
        assert!("spec ".parse::<Variant>().is_err());
        assert_eq!(Variant::Enclave.to_string(), "enclave");
        assert_eq!(Variant::Spec.as_str().parse::<Variant>().unwrap(), Variant::Spec);
    }

    #[test]
    fn spec_index_is_one_byte() {
        let seed = Seed::from_bytes([7; 32]);
        assert!(derive(&seed, Variant::Spec, 255).is_ok());
        assert!(matches!(derive(&seed, Variant::Spec, 256), Err(Error::Misuse(_))));
        assert!(derive(&seed, Variant::Enclave, u32::MAX).is_ok());
    }

    #[test]
    fn derive_matches_the_formula() {
        // Recompute directly with the HKDF primitive, spelling out the ikm.
        let seed = Seed::from_bytes(core::array::from_fn(|i| (i * 7) as u8));
        for n in [0u32, 1, 4, 200] {
            let mut ikm = seed.as_bytes().to_vec();
            ikm.push(n as u8);
            let mut want = [0u8; 32];
            hkdf_sha256(&HALVING_SALT, &ikm, &[], &mut want).unwrap();
            assert_eq!(derive(&seed, Variant::Spec, n).unwrap().as_bytes(), &want);

            let mut ikm = seed.as_bytes().to_vec();
            ikm.extend_from_slice(&n.to_be_bytes());
            hkdf_sha256(&HALVING_SALT, &ikm, &[b"seed"], &mut want).unwrap();
            assert_eq!(derive(&seed, Variant::Enclave, n).unwrap().as_bytes(), &want);
        }
    }

    #[test]
    fn variants_and_indices_give_distinct_keys() {
        let seed = Seed::from_bytes([0; 32]);
        let mut all = Vec::new();
        for v in [Variant::Spec, Variant::Enclave] {
            for n in 1..=8 {
                all.push(*derive(&seed, v, n).unwrap().as_bytes());
            }
        }
        let total = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), total);
    }

    #[test]
    fn hierarchy_is_consistent_with_derive() {
        let seed = Seed::from_bytes([0x5a; 32]);
        for v in [Variant::Spec, Variant::Enclave] {
            let h = hierarchy(&seed, v).unwrap();
            assert_eq!(h.seed_exchange_private, derive(&seed, v, index::SEED_EXCHANGE).unwrap());
            assert_eq!(h.io_exchange_private, derive(&seed, v, index::IO_EXCHANGE).unwrap());
            assert_eq!(h.state_ikm, derive(&seed, v, index::STATE_IKM).unwrap());
            assert_eq!(h.callback_secret, derive(&seed, v, index::CALLBACK_SECRET).unwrap());
            assert_eq!(h.seed_exchange_public, x25519_base(h.seed_exchange_private.as_bytes()));
            // Clamping happens inside the multiplication: clamping by hand first
            // gives the same public key.
            let mut clamped = *h.io_exchange_private.as_bytes();
            clamped[0] &= 248;
            clamped[31] &= 127;
            clamped[31] |= 64;
            assert_eq!(h.io_exchange_public, x25519_base(&clamped));
        }
    }
}
