//! A pqdrop identity: one 32-byte seed, the keys the hierarchy of [`crate::keys`]
//! derives from it, the public identity others keep, and the two forms the
//! seed takes outside memory (PROTOCOL.md §13.1 to §13.3):
//!
//! - the **identity file**, the seed sealed with ChaCha20-Poly1305 under a key
//!   from the user's passphrase (Argon2id, RFC 9106), or under no secret at
//!   all when the user chose no passphrase (then the seal only detects damage);
//! - the **recovery phrase**, the seed as 24 BIP-39 English words, whose last
//!   word carries an 8-bit checksum.
//!
//! Identities always use the [`Variant::Enclave`] derivation: its 32-bit index
//! leaves room for pqdrop's own indices beyond the eight the enclave assigns,
//! and its non-empty HKDF `info` separates these keys from any other use of
//! HKDF over the same seed.
//!
//! Nothing here touches a file or reads a clock; randomness comes from the
//! caller.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::keys::{self, derive, Hierarchy, Seed, Variant, KEY_LEN};
use crate::primitives::{sha256, AeadAlg, AeadKey, MlKemDecapsulationKey};
use crate::{Error, Result};

/// The derivation every identity uses.
pub const IDENTITY_VARIANT: Variant = Variant::Enclave;

/// pqdrop's index for the 64-byte ML-KEM-768 key-generation seed `d || z` of
/// the I/O exchange key (the hierarchy's formula with `L = 64`).
pub const IO_KEM_INDEX: u32 = 16;

/// Length of an encoded ML-KEM-768 encapsulation key.
pub const MLKEM768_PUBLIC_LEN: usize = 1184;
/// pqdrop's index for the Ed25519 seed of the signing key, which proves
/// in a live session that a side holds the identity it shows.
pub const SIGN_INDEX: u32 = 17;

/// Length of an encoded public identity: two X25519 keys, the Ed25519 key
/// and the ML-KEM key.
pub const PUBLIC_LEN: usize = 3 * KEY_LEN + MLKEM768_PUBLIC_LEN;
/// Length of an identity proof (an Ed25519 signature).
pub const PROOF_LEN: usize = 64;

/// Which side of a session a proof is made for, so that one side's proof
/// cannot be reflected as the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofRole {
    /// The sender (the accepter of the handshake): byte 1.
    Sender,
    /// The receiver (the requester): byte 2.
    Receiver,
}

fn proof_message(role: ProofRole, transcript_hash: &[u8; 64]) -> [u8; 24 + 1 + 64] {
    let mut m = [0u8; 24 + 1 + 64];
    m[..24].copy_from_slice(b"pqdrop identity proof v1");
    m[24] = match role {
        ProofRole::Sender => 1,
        ProofRole::Receiver => 2,
    };
    m[25..].copy_from_slice(transcript_hash);
    m
}

/// The keys of one identity. The private parts zeroize themselves on drop.
pub struct Identity {
    seed: Seed,
    keys: Hierarchy,
    io_kem: MlKemDecapsulationKey,
    signer: crate::primitives::SigningKey,
    public: PublicIdentity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.public.fingerprint().to_string()).finish_non_exhaustive()
    }
}

/// What others learn of an identity: its two X25519 public keys and the
/// ML-KEM-768 encapsulation key paired with the I/O exchange key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    /// X25519 public key of index 1 (linking devices).
    pub seed_exchange: [u8; KEY_LEN],
    /// X25519 public key of index 2 (contact transfers, sealed files).
    pub io_exchange: [u8; KEY_LEN],
    /// Ed25519 public key of index [`SIGN_INDEX`] (proofs in a session).
    pub sign: [u8; KEY_LEN],
    /// ML-KEM-768 encapsulation key of index [`IO_KEM_INDEX`] (1184 bytes).
    pub io_kem: Vec<u8>,
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({})", self.fingerprint())
    }
}

/// A short digest of a public identity that two people can read to each
/// other: 100 bits of SHA-256, as 20 characters of Crockford base 32 in
/// groups of four.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 13]);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 20 symbols of 5 bits from the first 100 bits.
        let mut acc: u128 = 0;
        for b in &self.0 {
            acc = (acc << 8) | u128::from(*b);
        }
        acc >>= 4; // 104 bits -> the first 100
        for i in 0..20 {
            if i > 0 && i % 4 == 0 {
                f.write_str("-")?;
            }
            let sym = ((acc >> (5 * (19 - i))) & 31) as usize;
            write!(f, "{}", CROCKFORD[sym] as char)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl PublicIdentity {
    /// The encoding of PROTOCOL.md §13.1: `seed_exchange || io_exchange || sign || ek`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PUBLIC_LEN);
        out.extend_from_slice(&self.seed_exchange);
        out.extend_from_slice(&self.io_exchange);
        out.extend_from_slice(&self.sign);
        out.extend_from_slice(&self.io_kem);
        out
    }

    /// Reads the encoding of [`Self::to_bytes`] from someone else. Refused:
    /// any other length, an X25519 key of low order (all its shared secrets
    /// would be zero), and an ML-KEM key that fails FIPS 203's modulus check.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() != PUBLIC_LEN {
            return Err(Error::BadKeyLength { what: "public identity", expected: PUBLIC_LEN, got: b.len() });
        }
        let mut seed_exchange = [0u8; KEY_LEN];
        seed_exchange.copy_from_slice(&b[..KEY_LEN]);
        let mut io_exchange = [0u8; KEY_LEN];
        io_exchange.copy_from_slice(&b[KEY_LEN..2 * KEY_LEN]);
        for k in [&seed_exchange, &io_exchange] {
            // A fixed non-zero scalar: a point of small order gives all zeros.
            crate::primitives::x25519_checked(&[0x5a; 32], k)
                .map_err(|_| Error::InvalidPublicValue("a public identity's X25519 key is of low order"))?;
        }
        let mut sign = [0u8; KEY_LEN];
        sign.copy_from_slice(&b[2 * KEY_LEN..3 * KEY_LEN]);
        let io_kem = b[3 * KEY_LEN..].to_vec();
        crate::primitives::mlkem768_check_encapsulation_key(&io_kem)?;
        Ok(PublicIdentity { seed_exchange, io_exchange, sign, io_kem })
    }

    /// Checks `proof`: the holder of this identity signed this session's
    /// transcript hash for `role` ([`Identity::prove`]).
    pub fn verify_proof(&self, role: ProofRole, transcript_hash: &[u8; 64], proof: &[u8]) -> Result<()> {
        crate::primitives::ed25519_verify(&self.sign, &proof_message(role, transcript_hash), proof)
    }

    /// `SHA-256("pqdrop identity fingerprint v1" || the encoded public identity)`, cut to 100 bits.
    pub fn fingerprint(&self) -> Fingerprint {
        let h = sha256(&[b"pqdrop identity fingerprint v1", &self.to_bytes()]);
        let mut out = [0u8; 13];
        out.copy_from_slice(&h[..13]);
        out[12] &= 0xf0;
        Fingerprint(out)
    }
}

/// The 64-byte ML-KEM key-generation seed at `index`:
/// `HKDF-SHA256(salt = HALVING_SALT, ikm = seed || u32_be(index), info = "seed", L = 64)`.
pub fn derive_wide(seed: &Seed, index: u32) -> Result<Zeroizing<[u8; 64]>> {
    let mut out = Zeroizing::new([0u8; 64]);
    keys::derive_into(seed, IDENTITY_VARIANT, index, &mut out[..])?;
    Ok(out)
}

impl Identity {
    /// A new identity from 32 bytes of `rng`.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.try_fill_bytes(&mut bytes[..]).map_err(|_| Error::Crypto)?;
        Self::from_seed(Seed::from_bytes(*bytes))
    }

    /// The identity of `seed`.
    pub fn from_seed(seed: Seed) -> Result<Self> {
        let keys = keys::hierarchy(&seed, IDENTITY_VARIANT)?;
        let (io_kem, io_kem_public) = MlKemDecapsulationKey::from_seed(&*derive_wide(&seed, IO_KEM_INDEX)?);
        let sign_seed = derive(&seed, IDENTITY_VARIANT, SIGN_INDEX)?;
        let (signer, sign) = crate::primitives::SigningKey::from_seed(sign_seed.as_bytes())?;
        let public =
            PublicIdentity { seed_exchange: keys.seed_exchange_public, io_exchange: keys.io_exchange_public, sign, io_kem: io_kem_public };
        Ok(Identity { seed, keys, io_kem, signer, public })
    }

    /// The seed (to seal it, or to show it as a recovery phrase).
    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    /// The public identity.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// Indices 1 to 4.
    pub fn keys(&self) -> &Hierarchy {
        &self.keys
    }

    /// The ML-KEM-768 decapsulation key paired with index 2.
    pub fn io_kem(&self) -> &MlKemDecapsulationKey {
        &self.io_kem
    }

    /// Proves, for `role` in the session whose transcript hash is given,
    /// that this side holds this identity: an Ed25519 signature of
    /// `"pqdrop identity proof v1" || u8(role) || transcript_hash`.
    pub fn prove(&self, role: ProofRole, transcript_hash: &[u8; 64]) -> [u8; PROOF_LEN] {
        self.signer.sign(&proof_message(role, transcript_hash))
    }

    /// Key `n` of the hierarchy (for a use not named in [`Hierarchy`]).
    pub fn key(&self, n: u32) -> Result<keys::DerivedKey> {
        derive(&self.seed, IDENTITY_VARIANT, n)
    }
}

// ---------------------------------------------------------------------------
// The identity file (PROTOCOL.md §13.2)

/// The first 8 bytes of an identity file.
pub const FILE_MAGIC: &[u8; 8] = b"PQDROPID";
/// The format version this build writes and reads.
pub const FILE_VERSION: u8 = 1;
/// Length of every identity file of version 1.
pub const FILE_LEN: usize = 100;
const HEADER_LEN: usize = 52;

/// Argon2id costs (RFC 9106). The defaults are its second recommended
/// setting: 64 MiB, 3 passes, 4 lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfCost {
    /// RFC 9106 §4, the second recommended option.
    pub const DEFAULT: KdfCost = KdfCost { m_kib: 64 * 1024, t: 3, p: 4 };
    /// The most a file may ask for: 1 GiB, 64 passes, 16 lanes. A damaged or
    /// hostile file cannot make opening it take more.
    pub const MAX: KdfCost = KdfCost { m_kib: 1024 * 1024, t: 64, p: 16 };

    fn check(self) -> Result<()> {
        // Lanes first: Argon2 needs at least 8 KiB per lane, and `8 * p` must
        // not overflow for a hostile `p`.
        let ok = (1..=Self::MAX.p).contains(&self.p)
            && (8 * self.p..=Self::MAX.m_kib).contains(&self.m_kib)
            && (1..=Self::MAX.t).contains(&self.t);
        if ok {
            Ok(())
        } else {
            Err(Error::Decode { what: "identity file", why: "its passphrase settings are out of range" })
        }
    }
}

/// How the seed in an identity file is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// No passphrase: the seal key is 32 zero bytes, so the file's
    /// permissions are all that keeps the seed; the seal detects damage.
    None,
    /// The seal key is Argon2id of the passphrase.
    Passphrase(KdfCost),
}

/// Why an identity file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// It needs a passphrase and none was given.
    NeedsPassphrase,
    /// The passphrase is wrong, or the file was changed.
    WrongPassphrase,
    /// It is not an identity file this build can read, or it was damaged.
    Damaged(&'static str),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NeedsPassphrase => f.write_str("the identity is protected by a passphrase"),
            OpenError::WrongPassphrase => f.write_str("wrong passphrase (or the identity file was changed)"),
            OpenError::Damaged(why) => write!(f, "the identity file is damaged: {why}"),
        }
    }
}

fn seal_key(protection: Protection, passphrase: Option<&[u8]>, salt: &[u8; 16]) -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if let Protection::Passphrase(cost) = protection {
        let pass = passphrase.ok_or(Error::Misuse("a passphrase-protected identity needs the passphrase"))?;
        let params = argon2::Params::new(cost.m_kib, cost.t, cost.p, Some(32)).map_err(|_| Error::Misuse("Argon2id settings"))?;
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(pass, salt, &mut key[..])
            .map_err(|_| Error::Misuse("Argon2id input lengths"))?;
    }
    Ok(key)
}

/// Seals `seed` into an identity file of [`FILE_LEN`] bytes. The salt and
/// nonce come from `rng`; `passphrase` is used only with
/// [`Protection::Passphrase`].
pub fn seal_file(seed: &Seed, protection: Protection, passphrase: Option<&[u8]>, rng: &mut (impl RngCore + CryptoRng)) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.try_fill_bytes(&mut nonce).map_err(|_| Error::Crypto)?;
    if matches!(protection, Protection::Passphrase(_)) {
        rng.try_fill_bytes(&mut salt).map_err(|_| Error::Crypto)?;
    }
    seal_file_with(seed, protection, passphrase, salt, nonce)
}

/// [`seal_file`] with a chosen salt and nonce (for the published vectors).
pub fn seal_file_with(seed: &Seed, protection: Protection, passphrase: Option<&[u8]>, salt: [u8; 16], nonce: [u8; 12]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(FILE_LEN);
    out.extend_from_slice(FILE_MAGIC);
    let (tag, cost) = match protection {
        Protection::None => (0u8, KdfCost { m_kib: 0, t: 0, p: 0 }),
        Protection::Passphrase(c) => {
            c.check()?;
            (1u8, c)
        }
    };
    out.extend_from_slice(&[FILE_VERSION, 1 /* enclave */, tag, 0]);
    for v in [cost.m_kib, cost.t, cost.p] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let salt = if tag == 0 { [0u8; 16] } else { salt };
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = seal_key(protection, passphrase, &salt)?;
    let aead = AeadKey::new(AeadAlg::ChaCha20Poly1305, &key[..])?;
    let mut body = Zeroizing::new(*seed.as_bytes());
    let t = aead.seal_in_place(nonce, &out[..HEADER_LEN], &mut body[..])?;
    out.extend_from_slice(&body[..]);
    out.extend_from_slice(&t);
    debug_assert_eq!(out.len(), FILE_LEN);
    Ok(out)
}

/// What an identity file says about itself before it is opened.
pub fn file_protection(file: &[u8]) -> core::result::Result<Protection, OpenError> {
    if file.len() != FILE_LEN || &file[..8] != FILE_MAGIC {
        return Err(OpenError::Damaged("it is not a pqdrop identity file, or it was cut short"));
    }
    if file[8] != FILE_VERSION {
        return Err(OpenError::Damaged("it was written by a newer pqdrop"));
    }
    if file[9] != 1 || file[11] != 0 {
        return Err(OpenError::Damaged("unknown settings in its header"));
    }
    let u32_at = |i: usize| u32::from_be_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
    let cost = KdfCost { m_kib: u32_at(12), t: u32_at(16), p: u32_at(20) };
    match file[10] {
        0 if cost == (KdfCost { m_kib: 0, t: 0, p: 0 }) && file[24..40].iter().all(|b| *b == 0) => Ok(Protection::None),
        1 => {
            cost.check().map_err(|_| OpenError::Damaged("its passphrase settings are out of range"))?;
            Ok(Protection::Passphrase(cost))
        }
        _ => Err(OpenError::Damaged("unknown settings in its header")),
    }
}

/// Opens an identity file: its seed, or why not.
pub fn open_file(file: &[u8], passphrase: Option<&[u8]>) -> core::result::Result<Seed, OpenError> {
    let protection = file_protection(file)?;
    if matches!(protection, Protection::Passphrase(_)) && passphrase.is_none() {
        return Err(OpenError::NeedsPassphrase);
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&file[24..40]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&file[40..52]);
    let key = seal_key(protection, passphrase, &salt).map_err(|_| OpenError::Damaged("its passphrase settings are out of range"))?;
    let aead = AeadKey::new(AeadAlg::ChaCha20Poly1305, &key[..]).map_err(|_| OpenError::Damaged("internal"))?;
    let mut body = Zeroizing::new([0u8; KEY_LEN + 16]);
    body.copy_from_slice(&file[HEADER_LEN..]);
    match aead.open_in_place(nonce, &file[..HEADER_LEN], &mut body[..]) {
        Ok(_) => {
            let mut seed = Zeroizing::new([0u8; KEY_LEN]);
            seed.copy_from_slice(&body[..KEY_LEN]);
            Ok(Seed::from_bytes(*seed))
        }
        Err(_) if protection == Protection::None => Err(OpenError::Damaged("its contents do not match their check")),
        Err(_) => Err(OpenError::WrongPassphrase),
    }
}

// ---------------------------------------------------------------------------
// The recovery phrase (PROTOCOL.md §13.3)

/// Number of words in a recovery phrase.
pub const PHRASE_WORDS: usize = 24;

/// The seed as 24 BIP-39 English words (the last one holds the checksum).
pub fn recovery_phrase(seed: &Seed) -> Zeroizing<String> {
    match bip39::Mnemonic::from_entropy_in(bip39::Language::English, seed.as_bytes()) {
        Ok(m) => Zeroizing::new(m.words().collect::<Vec<_>>().join(" ")),
        // 32 bytes is a valid BIP-39 entropy length.
        Err(_) => Zeroizing::new(String::new()),
    }
}

/// Why a recovery phrase was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhraseError {
    /// Not 24 words.
    WordCount(usize),
    /// The word at this position (1-based) is not in the BIP-39 English list.
    UnknownWord(usize),
    /// Every word is known, but the checksum does not match: a word is wrong
    /// or two are swapped.
    Checksum,
}

impl fmt::Display for PhraseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhraseError::WordCount(n) => write!(f, "a recovery phrase has {PHRASE_WORDS} words, this one has {n}"),
            PhraseError::UnknownWord(i) => write!(f, "word {i} of the recovery phrase is not a recovery-phrase word"),
            PhraseError::Checksum => f.write_str("the recovery phrase does not check out: a word is wrong, or two are swapped"),
        }
    }
}

/// The seed of a recovery phrase. Words are separated by any whitespace and
/// compared without regard to ASCII case. Errors never quote the phrase.
pub fn seed_from_phrase(phrase: &str) -> core::result::Result<Seed, PhraseError> {
    let lower = Zeroizing::new(phrase.to_ascii_lowercase());
    let words: Vec<&str> = lower.split_whitespace().collect();
    if words.len() != PHRASE_WORDS {
        return Err(PhraseError::WordCount(words.len()));
    }
    let list = bip39::Language::English;
    for (i, w) in words.iter().enumerate() {
        if list.find_word(w).is_none() {
            return Err(PhraseError::UnknownWord(i + 1));
        }
    }
    let joined = Zeroizing::new(words.join(" "));
    let m = bip39::Mnemonic::parse_in_normalized(list, &joined).map_err(|_| PhraseError::Checksum)?;
    let (entropy, len) = m.to_entropy_array();
    let entropy = Zeroizing::new(entropy);
    if len != KEY_LEN {
        return Err(PhraseError::WordCount(words.len()));
    }
    let mut seed = [0u8; KEY_LEN];
    seed.copy_from_slice(&entropy[..KEY_LEN]);
    Ok(Seed::from_bytes(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::DetRng;

    const CHEAP: KdfCost = KdfCost { m_kib: 64, t: 1, p: 1 };

    #[test]
    fn files_round_trip_and_refuse_what_is_wrong() {
        let seed = Seed::from_bytes([9; 32]);
        let plain = seal_file(&seed, Protection::None, None, &mut DetRng::new("identity tests")).unwrap();
        assert_eq!(plain.len(), FILE_LEN);
        assert_eq!(open_file(&plain, None).unwrap(), seed);
        let locked = seal_file(&seed, Protection::Passphrase(CHEAP), Some(b"correct horse"), &mut DetRng::new("identity tests")).unwrap();
        assert_eq!(file_protection(&locked), Ok(Protection::Passphrase(CHEAP)));
        assert_eq!(open_file(&locked, Some(b"correct horse")).unwrap(), seed);
        assert_eq!(open_file(&locked, None).unwrap_err(), OpenError::NeedsPassphrase);
        assert_eq!(open_file(&locked, Some(b"wrong")).unwrap_err(), OpenError::WrongPassphrase);
        // Every single flipped bit and every truncation is caught.
        for f in [&plain, &locked] {
            for i in 0..f.len() * 8 {
                let mut bad = f.clone();
                bad[i / 8] ^= 1 << (i % 8);
                assert!(open_file(&bad, Some(b"correct horse")).is_err(), "bit {i}");
            }
            for n in 0..f.len() {
                assert!(matches!(open_file(&f[..n], Some(b"correct horse")), Err(OpenError::Damaged(_))));
            }
        }
    }

    #[test]
    fn hostile_costs_are_refused_before_any_work() {
        let seed = Seed::from_bytes([1; 32]);
        let mut f = seal_file(&seed, Protection::Passphrase(CHEAP), Some(b"x"), &mut DetRng::new("identity tests")).unwrap();
        f[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(open_file(&f, Some(b"x")), Err(OpenError::Damaged(_))));
    }

    #[test]
    fn phrases_round_trip_and_say_what_is_wrong() {
        let seed = Seed::from_bytes(core::array::from_fn(|i| i as u8));
        let phrase = recovery_phrase(&seed);
        assert_eq!(phrase.split(' ').count(), 24);
        assert_eq!(seed_from_phrase(&phrase).unwrap(), seed);
        assert_eq!(seed_from_phrase(&format!("  {}\n", phrase.to_uppercase())).unwrap(), seed);
        let words: Vec<&str> = phrase.split(' ').collect();
        assert_eq!(seed_from_phrase(&words[..23].join(" ")).unwrap_err(), PhraseError::WordCount(23));
        let mut typo = words.clone();
        typo[4] = "zzzz";
        assert_eq!(seed_from_phrase(&typo.join(" ")).unwrap_err(), PhraseError::UnknownWord(5));
        let mut swapped = words.clone();
        swapped.swap(0, 1);
        if swapped != words {
            assert_eq!(seed_from_phrase(&swapped.join(" ")).unwrap_err(), PhraseError::Checksum);
        }
        // BIP-39's own vector: 32 zero bytes.
        let zero = recovery_phrase(&Seed::from_bytes([0; 32]));
        assert_eq!(&*zero, &format!("{}art", "abandon ".repeat(23)));
    }

    #[test]
    fn fingerprints_are_twenty_symbols_and_follow_every_key() {
        let id = Identity::from_seed(Seed::from_bytes([3; 32])).unwrap();
        let fp = id.public().fingerprint().to_string();
        assert_eq!(fp.len(), 24, "{fp}");
        assert!(fp.split('-').all(|g| g.len() == 4 && g.bytes().all(|c| CROCKFORD.contains(&c))), "{fp}");
        let mut other = id.public().clone();
        other.io_kem[1000] ^= 1;
        assert_ne!(other.fingerprint(), id.public().fingerprint());
        assert_eq!(id.public().io_kem.len(), MLKEM768_PUBLIC_LEN);
        assert!(!format!("{id:?}").contains("seed"), "no secret in Debug");
    }
}

// ---------------------------------------------------------------------------
// Linking a device (PROTOCOL.md §13.6): the seed moves inside a
// code-authenticated session, boxed once more to a key of index 1.

/// Transfer message type of the new device's request: a fresh X25519 key.
pub const LINK_REQUEST: u64 = 32;
/// Transfer message type of the old device's answer: its seed-exchange
/// public key and the boxed seed.
pub const LINK_SEED: u64 = 33;
/// Length of the boxed seed: the seed and a Poly1305 tag.
pub const LINK_BOX_LEN: usize = KEY_LEN + 16;

/// `HKDF-SHA256(salt = exporter, ikm = X25519 secret, info = "pqdrop link v1" || N || P1, L = 32)`.
fn link_key(dh: &[u8; 32], exporter: &[u8; 32], n: &[u8; 32], p1: &[u8; 32]) -> Result<AeadKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    crate::primitives::hkdf_sha256(exporter, dh, &[b"pqdrop link v1", n, p1], &mut k[..])?;
    AeadKey::new(AeadAlg::ChaCha20Poly1305, &k[..])
}

/// The check both devices show before the seed moves, for the user to
/// compare: `HKDF-SHA256(salt = exporter, ikm = "", info = "pqdrop link check v1", L = 4)`
/// as a big-endian integer modulo 10^6, in two groups of three digits.
/// Another session (someone else who holds the code) gives another check.
pub fn link_check(exporter: &[u8; 32]) -> Result<String> {
    let mut b = [0u8; 4];
    crate::primitives::hkdf_sha256(exporter, &[], &[b"pqdrop link check v1"], &mut b)?;
    let n = u32::from_be_bytes(b) % 1_000_000;
    Ok(format!("{:03} {:03}", n / 1000, n % 1000))
}

/// Encodes LinkRequest: `IxiVarUInt(32) || IxiBytes[32](N)`.
pub fn link_request(n_public: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(34);
    crate::codec::put_varuint(&mut out, LINK_REQUEST);
    crate::codec::put_bytes(&mut out, n_public);
    out
}

/// Reads a LinkRequest (and nothing after it): the new device's key.
pub fn parse_link_request(b: &[u8]) -> Result<[u8; 32]> {
    let mut r = crate::codec::Reader::new(b);
    if r.varuint("message type")? != LINK_REQUEST {
        return Err(Error::Decode { what: "link request", why: "the other side is not joining an identity" });
    }
    let n = r.array("link request key")?;
    r.finish("link request")?;
    Ok(n)
}

/// The old device's answer to a LinkRequest with key `n_public`, in a
/// session with `exporter`: LinkSeed = `IxiVarUInt(33) || IxiBytes[32](P1)
/// || IxiBytes[48](ChaCha20-Poly1305(k, 0^12, seed, aad = ""))`, where P1 is
/// the seed-exchange public key and `k` [`link_key`] of `X25519(key 1, N)`.
pub fn link_seed(id: &Identity, n_public: &[u8; 32], exporter: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>> {
    let p1 = id.public.seed_exchange;
    let dh = Zeroizing::new(crate::primitives::x25519_checked(id.keys.seed_exchange_private.as_bytes(), n_public)?);
    let mut boxed = Zeroizing::new(id.seed.as_bytes().to_vec());
    let tag = link_key(&dh, exporter, n_public, &p1)?.seal_in_place([0; 12], &[], &mut boxed[..])?;
    boxed.extend_from_slice(&tag);
    let mut out = Zeroizing::new(Vec::with_capacity(2 + 33 + 1 + LINK_BOX_LEN));
    crate::codec::put_varuint(&mut out, LINK_SEED);
    crate::codec::put_bytes(&mut out, &p1);
    crate::codec::put_bytes(&mut out, &boxed);
    Ok(out)
}

/// The new device: opens LinkSeed with its fresh key `n_secret` and checks
/// that the seed derives the seed-exchange public key that came with it.
pub fn open_link_seed(b: &[u8], n_secret: &[u8; 32], exporter: &[u8; 32]) -> Result<Identity> {
    let mut r = crate::codec::Reader::new(b);
    if r.varuint("message type")? != LINK_SEED {
        return Err(Error::Decode { what: "link answer", why: "the other side is not linking an identity" });
    }
    let p1: [u8; 32] = r.array("link seed-exchange key")?;
    let boxed = r.bytes("link box", LINK_BOX_LEN)?;
    r.finish("link answer")?;
    if boxed.len() != LINK_BOX_LEN {
        return Err(Error::Decode { what: "link box", why: "a boxed seed is 48 bytes" });
    }
    let n_public = crate::primitives::x25519_base(n_secret);
    let dh = Zeroizing::new(crate::primitives::x25519_checked(n_secret, &p1)?);
    let mut seed = Zeroizing::new(boxed.to_vec());
    let len = link_key(&dh, exporter, &n_public, &p1)?.open_in_place([0; 12], &[], &mut seed[..])?;
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(&seed[..len]);
    let id = Identity::from_seed(Seed::from_bytes(*bytes))?;
    if !crate::primitives::ct_eq(&id.public.seed_exchange, &p1) {
        return Err(Error::Violation("the seed received does not derive the seed-exchange key it came with".into()));
    }
    Ok(id)
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn a_linked_seed_arrives_only_under_its_session_and_key() {
        let old = Identity::from_seed(Seed::from_bytes([5; 32])).unwrap();
        let n = [3u8; 32];
        let n_pub = crate::primitives::x25519_base(&n);
        assert_eq!(parse_link_request(&link_request(&n_pub)).unwrap(), n_pub);
        let msg = link_seed(&old, &n_pub, &[4; 32]).unwrap();
        let new = open_link_seed(&msg, &n, &[4; 32]).unwrap();
        assert_eq!(new.public(), old.public());
        // Another session, another key, a changed byte: refused.
        assert!(open_link_seed(&msg, &n, &[9; 32]).is_err());
        assert!(open_link_seed(&msg, &[6; 32], &[4; 32]).is_err());
        for i in [2, 20, msg.len() - 1] {
            let mut t = msg.to_vec();
            t[i] ^= 1;
            assert!(open_link_seed(&t, &n, &[4; 32]).is_err(), "byte {i}");
        }
        assert!(parse_link_request(&msg).is_err());
    }
}
