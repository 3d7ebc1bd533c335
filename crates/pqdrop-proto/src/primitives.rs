//! Thin, typed wrappers over the cryptographic libraries.
//!
//! Everything else in the crate calls these and never aws-lc-rs, x25519-dalek or
//! ml-kem directly, so the known-answer tests (RFC 5869, RFC 7748, RFC 8439, Wycheproof)
//! exercise exactly the code paths the protocol uses.

use aws_lc_rs::{aead, digest, hkdf, hmac};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// Length of an X25519 scalar, point or shared secret.
pub const X25519_LEN: usize = 32;
/// ML-KEM-768 encapsulation (public) key length, FIPS 203.
pub const MLKEM768_EK_LEN: usize = 1184;
/// ML-KEM-768 ciphertext length, FIPS 203.
pub const MLKEM768_CT_LEN: usize = 1088;
/// ML-KEM-768 expanded decapsulation key length, FIPS 203.
pub const MLKEM768_DK_LEN: usize = 2400;
/// ML-KEM shared secret length.
pub const MLKEM_SS_LEN: usize = 32;
/// AEAD tag length (both ciphers).
pub const TAG_LEN: usize = 16;
/// AEAD nonce length (both ciphers).
pub const NONCE_LEN: usize = 12;
/// AEAD key length (both ciphers).
pub const AEAD_KEY_LEN: usize = 32;

/// `alg` over the concatenation of `parts`, into an `N`-byte array (`N` is the
/// digest length of `alg`).
fn digest_parts<const N: usize>(alg: &'static digest::Algorithm, parts: &[&[u8]]) -> [u8; N] {
    let mut ctx = digest::Context::new(alg);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// SHA-512 over the concatenation of `parts`.
pub fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    digest_parts(&digest::SHA512, parts)
}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    digest_parts(&digest::SHA256, parts)
}

/// An output length for aws-lc-rs's HKDF expand.
struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 pseudorandom key (the output of Extract), RFC 5869 §2.2.
pub struct HkdfPrk(hkdf::Prk);

impl HkdfPrk {
    /// HKDF-Extract(salt, ikm). An empty salt means the RFC's default of
    /// HashLen zero bytes (they are equivalent for HMAC).
    pub fn extract(salt: &[u8], ikm: &[u8]) -> Self {
        Self(hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm))
    }

    /// HKDF-Expand(prk, info = concatenation of `info`, L = out.len()), RFC 5869 §2.3.
    ///
    /// Fails with [`Error::Misuse`] when `out` is longer than 255 * 32 bytes.
    pub fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
        if out.len() > 255 * 32 {
            return Err(Error::Misuse("HKDF-SHA256 output longer than 8160 bytes"));
        }
        let okm = self.0.expand(info, Len(out.len())).map_err(|_| Error::Crypto)?;
        okm.fill(out).map_err(|_| Error::Crypto)
    }
}

/// One-shot HKDF-SHA256 (extract then expand) into `out`.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    HkdfPrk::extract(salt, ikm).expand(info, out)
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let tag = ctx.sign();
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Constant-time equality of two byte strings (lengths are public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// RFC 7748 X25519(k, u): clamps `scalar`, masks bit 255 of `u`, and does not
/// check the result. Callers that need a contributory result use
/// [`x25519_checked`].
pub fn x25519(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*scalar, *u)
}

/// X25519 that rejects an all-zero result (a low-order or non-canonical small
/// point from the peer), in constant time.
pub fn x25519_checked(scalar: &[u8; 32], u: &[u8; 32]) -> Result<[u8; 32]> {
    let mut k = x25519(scalar, u);
    if ct_eq(&k, &[0u8; 32]) {
        k.zeroize();
        return Err(Error::InvalidPublicValue("X25519 result is all zero (low-order point)"));
    }
    Ok(k)
}

/// X25519 with the standard base point u = 9: the public key of `scalar`.
pub fn x25519_base(scalar: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*scalar, x25519_dalek::X25519_BASEPOINT_BYTES)
}

/// The two AEADs pqdrop can use for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadAlg {
    /// AES-256-GCM, SP 800-38D.
    Aes256Gcm,
    /// ChaCha20-Poly1305, RFC 8439.
    ChaCha20Poly1305,
}

impl AeadAlg {
    fn aws(self) -> &'static aead::Algorithm {
        match self {
            AeadAlg::Aes256Gcm => &aead::AES_256_GCM,
            AeadAlg::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

/// An AEAD key bound to its algorithm. The nonce is supplied on every call; the
/// record layer is what guarantees that it never repeats.
pub struct AeadKey {
    alg: AeadAlg,
    key: aead::LessSafeKey,
}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AeadKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl AeadKey {
    /// Builds a key; `key` must be 32 bytes.
    pub fn new(alg: AeadAlg, key: &[u8]) -> Result<Self> {
        if key.len() != AEAD_KEY_LEN {
            return Err(Error::BadKeyLength { what: "AEAD key", expected: AEAD_KEY_LEN, got: key.len() });
        }
        let unbound = aead::UnboundKey::new(alg.aws(), key).map_err(|_| Error::Crypto)?;
        Ok(Self { alg, key: aead::LessSafeKey::new(unbound) })
    }

    /// The algorithm.
    pub fn alg(&self) -> AeadAlg {
        self.alg
    }

    /// Encrypts `in_out` in place and returns the 16-byte tag.
    pub fn seal_in_place(&self, nonce: [u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .key
            .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(aad), in_out)
            .map_err(|_| Error::Crypto)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `in_out` (ciphertext followed by the tag) in place. On success the
    /// plaintext is `in_out[..in_out.len() - TAG_LEN]` and its length is returned.
    /// On failure the buffer contents are unspecified and must not be used.
    pub fn open_in_place(&self, nonce: [u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<usize> {
        if in_out.len() < TAG_LEN {
            return Err(Error::BadRecord);
        }
        let pt = self
            .key
            .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(aad), in_out)
            .map_err(|_| Error::BadRecord)?;
        Ok(pt.len())
    }
}

// ML-KEM-768 (FIPS 203) is RustCrypto's `ml-kem`, driven with randomness that
// we draw from the OS (`getrandom`, through `rand_core::OsRng`) and pass in:
// the 64-byte key-generation seed (d || z) and the 32-byte encapsulation
// message m. aws-lc-rs draws that randomness from its own DRBG instead, whose
// first use seeds it from CPU jitter entropy (tens of milliseconds of CPU per
// process unless aws-lc-sys was built with AWS_LC_SYS_NO_JITTER_ENTROPY, a build
// setting that `cargo install` does not see). Taking the randomness as input
// also makes the same code serve seed-derived keys and the known-answer tests.
// aws-lc-rs's ML-KEM still cross-checks this one in the tests (`kem_interop`),
// and the Wycheproof keygen, encapsulation and decapsulation vectors run here.

/// An ML-KEM-768 decapsulation key (FIPS 203), held by the accepter. The
/// `ml-kem` type zeroizes itself on drop.
pub struct MlKemDecapsulationKey(Box<ml_kem::ml_kem_768::DecapsulationKey>);

/// A 32-byte KEM shared secret, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KemSecret(pub [u8; MLKEM_SS_LEN]);

impl MlKemDecapsulationKey {
    /// Generates a fresh key pair from the OS CSPRNG and returns it with the
    /// encoded encapsulation key (1184 bytes).
    pub fn generate() -> Result<(Self, Vec<u8>)> {
        let mut seed = zeroize::Zeroizing::new([0u8; 64]);
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, seed.as_mut()).map_err(|_| Error::Crypto)?;
        Ok(Self::from_seed(&seed))
    }

    /// The key pair of FIPS 203 `ML-KEM.KeyGen_internal(d, z)` for the 64-byte
    /// seed `d || z`, with the encoded encapsulation key.
    pub fn from_seed(seed: &[u8; 64]) -> (Self, Vec<u8>) {
        use ml_kem::KeyExport;
        let dk = ml_kem::ml_kem_768::DecapsulationKey::from_seed(ml_kem::Seed::from(*seed));
        let ek = dk.encapsulation_key().to_bytes().to_vec();
        (Self(Box::new(dk)), ek)
    }

    /// Loads an expanded 2400-byte decapsulation key (the form some test
    /// vectors use), checking the hash of the embedded encapsulation key.
    #[allow(deprecated)] // `ml-kem` deprecates the expanded form; it exists here only for vectors
    pub fn from_bytes(dk: &[u8]) -> Result<Self> {
        if dk.len() != MLKEM768_DK_LEN {
            return Err(Error::BadKeyLength { what: "ML-KEM-768 decapsulation key", expected: MLKEM768_DK_LEN, got: dk.len() });
        }
        let expanded = ml_kem::ml_kem_768::ExpandedDecapsulationKey::try_from(dk).map_err(|_| Error::Crypto)?;
        let key = ml_kem::ml_kem_768::DecapsulationKey::from_expanded(&expanded).map_err(|_| Error::Crypto)?;
        Ok(Self(Box::new(key)))
    }

    /// Decapsulates a 1088-byte ciphertext. ML-KEM uses implicit rejection, so a
    /// modified ciphertext yields an unrelated secret, which key confirmation
    /// then catches.
    pub fn decapsulate(&self, ct: &[u8]) -> Result<KemSecret> {
        use ml_kem::Decapsulate;
        let ss = self.0.decapsulate_slice(ct).map_err(|_| Error::InvalidPublicValue("ML-KEM-768 ciphertext has the wrong length"))?;
        Ok(KemSecret(ss.into()))
    }
}

/// Encapsulates to an ML-KEM-768 encapsulation key with a message drawn from
/// the OS CSPRNG. The key is validated (length and the FIPS 203 modulus check)
/// first. Returns (ciphertext, shared secret).
pub fn mlkem768_encapsulate(ek: &[u8]) -> Result<(Vec<u8>, KemSecret)> {
    let mut m = zeroize::Zeroizing::new([0u8; 32]);
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, m.as_mut()).map_err(|_| Error::Crypto)?;
    mlkem768_encapsulate_deterministic(ek, &m)
}

/// An Ed25519 signing key (RFC 8032) from a 32-byte seed, in aws-lc-rs.
pub struct SigningKey(aws_lc_rs::signature::Ed25519KeyPair);

impl SigningKey {
    /// The key of RFC 8032 seed `seed`, and its public key.
    pub fn from_seed(seed: &[u8; 32]) -> Result<(Self, [u8; 32])> {
        use aws_lc_rs::signature::KeyPair;
        let kp = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| Error::Crypto)?;
        let mut public = [0u8; 32];
        public.copy_from_slice(kp.public_key().as_ref());
        Ok((SigningKey(kp), public))
    }

    /// The 64-byte signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.0.sign(msg).as_ref());
        out
    }
}

/// Verifies an Ed25519 signature (RFC 8032, strict about the encoding).
pub fn ed25519_verify(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> Result<()> {
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, public)
        .verify(msg, sig)
        .map_err(|_| Error::InvalidPublicValue("an Ed25519 signature does not verify"))
}

/// Checks an ML-KEM-768 encapsulation key as FIPS 203 §7.2 asks before use:
/// its length and that every coefficient is reduced modulo q.
pub fn mlkem768_check_encapsulation_key(ek: &[u8]) -> Result<()> {
    let key = ml_kem::Key::<ml_kem::ml_kem_768::EncapsulationKey>::try_from(ek)
        .map_err(|_| Error::InvalidPublicValue("ML-KEM-768 encapsulation key has the wrong length"))?;
    ml_kem::ml_kem_768::EncapsulationKey::new(&key).map_err(|_| Error::InvalidPublicValue("ML-KEM-768 encapsulation key"))?;
    Ok(())
}

/// FIPS 203 `ML-KEM.Encaps_internal(ek, m)`: encapsulation with the caller's
/// 32 uniformly random bytes `m`, which must never be reused. For vectors and
/// the deterministic test KEM; the protocol uses [`mlkem768_encapsulate`].
pub fn mlkem768_encapsulate_deterministic(ek: &[u8], m: &[u8; 32]) -> Result<(Vec<u8>, KemSecret)> {
    if ek.len() != MLKEM768_EK_LEN {
        return Err(Error::InvalidPublicValue("ML-KEM-768 encapsulation key has the wrong length"));
    }
    let key = ml_kem::Key::<ml_kem::ml_kem_768::EncapsulationKey>::try_from(ek)
        .map_err(|_| Error::InvalidPublicValue("ML-KEM-768 encapsulation key has the wrong length"))?;
    let ek = ml_kem::ml_kem_768::EncapsulationKey::new(&key).map_err(|_| Error::InvalidPublicValue("ML-KEM-768 encapsulation key"))?;
    let (ct, ss) = ek.encapsulate_deterministic(&ml_kem::B32::from(*m));
    Ok((ct.to_vec(), KemSecret(ss.into())))
}
