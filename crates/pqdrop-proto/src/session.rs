//! `derive_session_key`: the simple code-keyed session of PROTOCOL.md §12.
//!
//! This is the design pqdrop *improves on*: an unauthenticated X25519 exchange whose
//! key is salted with the shared token. It is kept, with the exact properties the
//! design asks for, as a public building block and for interoperability tests; the
//! transfer itself runs the CPace + ML-KEM handshake in [`crate::handshake`],
//! because this exchange alone allows an offline dictionary attack by a
//! man in the middle (PROTOCOL.md §12).

use zeroize::Zeroizing;

use crate::primitives::{hkdf_sha256, x25519_checked, AeadAlg, AeadKey, X25519_LEN};
use crate::{labels, Error, Result};

/// Checks that `token` is `word-word[-word…]`: at least two non-empty words of
/// ASCII letters joined by single hyphens.
fn check_token(token: &str) -> Result<()> {
    let words: Vec<&str> = token.split('-').collect();
    if words.len() < 2 || words.iter().any(|w| w.is_empty() || !w.bytes().all(|b| b.is_ascii_alphabetic())) {
        return Err(Error::BadCode("the shared token must look like word-word (letters joined by hyphens)".into()));
    }
    Ok(())
}

/// Computes `X25519(own_private, peer_public)`, then
/// `HKDF-SHA256(salt = token, ikm = shared, info = "pqdrop/v1 session key", L = 32)`,
/// and returns a ChaCha20-Poly1305 key.
///
/// `peer_public_key_bytes` must be exactly 32 bytes: any other length is
/// [`Error::BadKeyLength`], never a panic. A low-order peer key (all-zero shared
/// secret) is [`Error::InvalidPublicValue`]. A token that is not `word-word…` is
/// [`Error::BadCode`].
pub fn derive_session_key(own_private: &[u8; 32], peer_public_key_bytes: &[u8], shared_token: &str) -> Result<AeadKey> {
    check_token(shared_token)?;
    let peer: [u8; X25519_LEN] = peer_public_key_bytes.try_into().map_err(|_| Error::BadKeyLength {
        what: "peer X25519 public key",
        expected: X25519_LEN,
        got: peer_public_key_bytes.len(),
    })?;
    let shared = Zeroizing::new(x25519_checked(own_private, &peer)?);
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(shared_token.as_bytes(), &shared[..], &[labels::SESSION_KEY], &mut key[..])?;
    AeadKey::new(AeadAlg::ChaCha20Poly1305, &key[..])
}

/// A fresh X25519 key pair for one [`derive_session_key`] exchange: each side
/// makes one, sends [`SessionKeyPair::public_key`], and calls
/// [`SessionKeyPair::derive_session_key`] with the peer's bytes and the token.
pub struct SessionKeyPair {
    secret: zeroize::Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl core::fmt::Debug for SessionKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

impl SessionKeyPair {
    /// Draws a fresh private key from `rng`.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        let public = crate::primitives::x25519_base(&secret);
        Self { secret, public }
    }

    /// The raw 32-byte public key to send to the peer.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// `derive_session_key(peer_public_key_bytes, shared_token)`: see the free
    /// function [`derive_session_key`] for the exact computation and errors.
    pub fn derive_session_key(&self, peer_public_key_bytes: &[u8], shared_token: &str) -> Result<AeadKey> {
        derive_session_key(&self.secret, peer_public_key_bytes, shared_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::x25519_base;

    const A: [u8; 32] = [0x11; 32];
    const B: [u8; 32] = [0x22; 32];

    #[test]
    fn both_sides_agree_and_token_matters() {
        let (pa, pb) = (x25519_base(&A), x25519_base(&B));
        let ka = derive_session_key(&A, &pb, "ocean-tiger").unwrap();
        let kb = derive_session_key(&B, &pa, "ocean-tiger").unwrap();
        let mut buf = *b"hello world";
        let tag = ka.seal_in_place([0; 12], b"", &mut buf).unwrap();
        let mut ct = buf.to_vec();
        ct.extend_from_slice(&tag);
        let mut ct2 = ct.clone();
        assert_eq!(kb.open_in_place([0; 12], b"", &mut ct).unwrap(), 11);
        assert_eq!(&ct[..11], b"hello world");
        let wrong = derive_session_key(&B, &pa, "ocean-tigers").unwrap();
        assert_eq!(wrong.open_in_place([0; 12], b"", &mut ct2), Err(Error::BadRecord));
    }

    #[test]
    fn matches_independent_hkdf_computation() {
        // Recompute with the primitives directly: X25519 (RFC 7748 §6.1 keys) then HKDF.
        let alice = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let bob_pub = hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let mut expect = [0u8; 32];
        hkdf_sha256(b"ocean-tiger", &shared, &[labels::SESSION_KEY], &mut expect).unwrap();
        let k = derive_session_key(&alice, &bob_pub, "ocean-tiger").unwrap();
        let reference = AeadKey::new(AeadAlg::ChaCha20Poly1305, &expect).unwrap();
        let mut m1 = *b"abc";
        let mut m2 = *b"abc";
        assert_eq!(k.seal_in_place([1; 12], b"", &mut m1).unwrap(), reference.seal_in_place([1; 12], b"", &mut m2).unwrap());
    }

    #[test]
    fn key_pairs_agree_through_the_two_argument_form() {
        let a = SessionKeyPair::generate(&mut rand_core::OsRng);
        let b = SessionKeyPair::generate(&mut rand_core::OsRng);
        let ka = a.derive_session_key(&b.public_key(), "ocean-tiger").unwrap();
        let kb = b.derive_session_key(&a.public_key(), "ocean-tiger").unwrap();
        let mut m = *b"ping";
        let tag = ka.seal_in_place([3; 12], b"", &mut m).unwrap();
        let mut ct = m.to_vec();
        ct.extend_from_slice(&tag);
        assert_eq!(kb.open_in_place([3; 12], b"", &mut ct).unwrap(), 4);
        assert_eq!(&ct[..4], b"ping");
        assert!(matches!(a.derive_session_key(&[1, 2, 3], "ocean-tiger"), Err(Error::BadKeyLength { got: 3, .. })));
        assert!(format!("{a:?}").contains("public"));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        for len in [0usize, 1, 31, 33, 64] {
            assert!(matches!(derive_session_key(&A, &vec![9; len], "a-b"), Err(Error::BadKeyLength { got, .. }) if got == len));
        }
        for t in ["", "ocean", "ocean-", "-tiger", "ocean--tiger", "ocean tiger", "7-ocean-tiger", "océan-tiger"] {
            assert!(matches!(derive_session_key(&A, &x25519_base(&B), t), Err(Error::BadCode(_))), "{t}");
        }
        assert!(matches!(derive_session_key(&A, &[0u8; 32], "a-b"), Err(Error::InvalidPublicValue(_))));
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut o = [0u8; 32];
        for (i, b) in o.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        o
    }
}
