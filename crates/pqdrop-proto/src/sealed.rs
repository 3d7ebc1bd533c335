//! Sealed files: a transfer written to a file for one contact who is offline
//! (PROTOCOL.md §13.5).
//!
//! The header carries a fresh X25519 key and an ML-KEM-768 ciphertext to
//! the recipient's identity, so the file stays confidential if either
//! X25519 or ML-KEM holds, and the sender's public identity, encrypted. The
//! payload key also mixes in the static-static X25519 secret of the two
//! identities, so the recipient knows which identity sealed it (classically
//! authenticated: ML-KEM cannot authenticate a sender). What follows the
//! header is the record stream of §7 carrying the transfer messages of §8,
//! so opening a file applies exactly the receiver rules of a live transfer.
//!
//! This module makes and opens the header and hands out the record
//! sealer or opener; the caller streams the records.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::identity::{Identity, PublicIdentity, PUBLIC_LEN};
use crate::msg::{Agreed, DataCipher};
use crate::primitives::{
    hkdf_sha256, mlkem768_encapsulate_deterministic, sha256, x25519_base, x25519_checked, AeadAlg, AeadKey, MLKEM768_CT_LEN,
};
use crate::record::{RecordCipher, RecordOpener, RecordSealer};
use crate::{Error, Result};

/// The first 8 bytes of a sealed file.
pub const MAGIC: &[u8; 8] = b"PQDROPSF";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
const FIXED: usize = 12;
const E_AT: usize = FIXED;
const C_AT: usize = E_AT + 32;
const SENDER_AT: usize = C_AT + MLKEM768_CT_LEN;
/// Length of the header: fixed fields, E, C and the sealed sender identity.
pub const HEADER_LEN: usize = SENDER_AT + PUBLIC_LEN + 16;
const SALT: &[u8] = b"pqdrop sealed v1";

/// What the transfer inside a sealed file runs as if agreed: zstd and
/// unhashed fresh files (the records authenticate every byte in order, and
/// nothing resumes), ChaCha20-Poly1305, and nothing that needs the other
/// side to answer.
pub const AGREED: Agreed = Agreed {
    cipher: DataCipher::ChaCha20Poly1305,
    resume: false,
    zstd: true,
    stop_codes: false,
    keepalive: false,
    skip: false,
    unhashed_fresh: true,
    identity: false,
};

/// The secrets of one header, zeroized on drop.
struct Secrets {
    es: Zeroizing<[u8; 32]>,
    kss: Zeroizing<[u8; 32]>,
}

fn header_key(s: &Secrets, e: &[u8; 32], c: &[u8], recipient: &PublicIdentity) -> Result<AeadKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(&s.es[..]);
    ikm[32..].copy_from_slice(&s.kss[..]);
    hkdf_sha256(SALT, &ikm[..], &[b"header", e, c, &recipient.to_bytes()], &mut k[..])?;
    AeadKey::new(AeadAlg::ChaCha20Poly1305, &k[..])
}

fn data_cipher(s: &Secrets, ss: &[u8; 32], header: &[u8]) -> Result<RecordCipher> {
    let mut k = Zeroizing::new([0u8; 32]);
    let mut ikm = Zeroizing::new([0u8; 96]);
    ikm[..32].copy_from_slice(&s.es[..]);
    ikm[32..64].copy_from_slice(&s.kss[..]);
    ikm[64..].copy_from_slice(ss);
    hkdf_sha256(SALT, &ikm[..], &[b"data", &sha256(&[header])], &mut k[..])?;
    // ChaCha20-Poly1305 only; the AES key slot is unused.
    RecordCipher::new(DataCipher::ChaCha20Poly1305, &Zeroizing::new([0u8; 32]), &k)
}

/// Starts a sealed file from `me` to `to`: the header to write first, and
/// the sealer of the records that follow it. Randomness comes from `rng`.
pub fn seal(me: &Identity, to: &PublicIdentity, rng: &mut (impl RngCore + CryptoRng)) -> Result<(Vec<u8>, RecordSealer)> {
    let mut e = Zeroizing::new([0u8; 32]);
    let mut m = Zeroizing::new([0u8; 32]);
    rng.try_fill_bytes(&mut e[..]).map_err(|_| Error::Crypto)?;
    rng.try_fill_bytes(&mut m[..]).map_err(|_| Error::Crypto)?;
    seal_with(me, to, &e, &m)
}

/// [`seal`] with a chosen ephemeral X25519 key and ML-KEM message (for the
/// published vectors). Neither may ever be used twice.
pub fn seal_with(me: &Identity, to: &PublicIdentity, e_secret: &[u8; 32], kem_m: &[u8; 32]) -> Result<(Vec<u8>, RecordSealer)> {
    let e_pub = x25519_base(e_secret);
    let es = Zeroizing::new(x25519_checked(e_secret, &to.io_exchange)?);
    let (c, kss) = mlkem768_encapsulate_deterministic(&to.io_kem, kem_m)?;
    let secrets = Secrets { es, kss: Zeroizing::new(kss.0) };
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&[VERSION, 0, 0, 0]);
    header.extend_from_slice(&e_pub);
    header.extend_from_slice(&c);
    let mut sender = me.public().to_bytes();
    let tag = header_key(&secrets, &e_pub, &c, to)?.seal_in_place([0; 12], &header[..SENDER_AT], &mut sender)?;
    header.extend_from_slice(&sender);
    header.extend_from_slice(&tag);
    debug_assert_eq!(header.len(), HEADER_LEN);
    let ss = Zeroizing::new(x25519_checked(me.keys().io_exchange_private.as_bytes(), &to.io_exchange)?);
    let cipher = data_cipher(&secrets, &ss, &header)?;
    Ok((header, RecordSealer::new(cipher)))
}

/// Why a sealed file's header could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not a sealed file, or one from a newer pqdrop.
    NotSealed(&'static str),
    /// Sealed for another identity, or its header was changed.
    NotForYou,
    /// The sender's identity inside is not valid (a forged file).
    BadSender,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::NotSealed(why) => write!(f, "not a pqdrop sealed file: {why}"),
            OpenError::NotForYou => f.write_str("this file is not sealed for your identity, or its header was changed"),
            OpenError::BadSender => f.write_str("the sender's identity inside the file is not valid"),
        }
    }
}

/// Opens the header of a sealed file with `me`'s keys: who sealed it, and
/// the opener of the records that follow.
pub fn open(me: &Identity, header: &[u8]) -> core::result::Result<(PublicIdentity, RecordOpener), OpenError> {
    if header.len() < HEADER_LEN || &header[..8] != MAGIC {
        return Err(OpenError::NotSealed("its first bytes are not a pqdrop sealed-file header, or it is cut short"));
    }
    if header[8] != VERSION || header[9..12] != [0, 0, 0] {
        return Err(OpenError::NotSealed("it was written by a newer pqdrop"));
    }
    let header = &header[..HEADER_LEN];
    let mut e = [0u8; 32];
    e.copy_from_slice(&header[E_AT..C_AT]);
    let c = &header[C_AT..SENDER_AT];
    let es = Zeroizing::new(x25519_checked(me.keys().io_exchange_private.as_bytes(), &e).map_err(|_| OpenError::NotForYou)?);
    let kss = me.io_kem().decapsulate(c).map_err(|_| OpenError::NotForYou)?;
    let secrets = Secrets { es, kss: Zeroizing::new(kss.0) };
    let key = header_key(&secrets, &e, c, me.public()).map_err(|_| OpenError::NotForYou)?;
    let mut sender = header[SENDER_AT..].to_vec();
    let n = key.open_in_place([0; 12], &header[..SENDER_AT], &mut sender).map_err(|_| OpenError::NotForYou)?;
    let from = PublicIdentity::from_bytes(&sender[..n]).map_err(|_| OpenError::BadSender)?;
    let ss = Zeroizing::new(x25519_checked(me.keys().io_exchange_private.as_bytes(), &from.io_exchange).map_err(|_| OpenError::BadSender)?);
    let cipher = data_cipher(&secrets, &ss, header).map_err(|_| OpenError::NotForYou)?;
    Ok((from, RecordOpener::new(cipher)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Seed;
    use crate::msg::MsgType;

    fn id(b: u8) -> Identity {
        Identity::from_seed(Seed::from_bytes([b; 32])).unwrap()
    }

    #[test]
    fn only_the_recipient_opens_and_learns_the_sender() {
        let (alice, bob, eve) = (id(1), id(2), id(3));
        let (header, mut sealer) = seal_with(&alice, bob.public(), &[7; 32], &[8; 32]).unwrap();
        assert_eq!(header.len(), HEADER_LEN);
        let mut rec = Vec::new();
        sealer.seal_to_vec(b"hello", true, &mut rec).unwrap();

        let (from, mut opener) = open(&bob, &header).unwrap();
        assert_eq!(from, *alice.public());
        // The frame: type 51 and a one-byte length, then the body.
        assert_eq!((rec[0], usize::from(rec[1])), (51, rec.len() - 2));
        let mut body = rec[2..].to_vec();
        let n = opener.open(MsgType::RECORD_FINAL, &mut body).unwrap();
        assert_eq!(&body[..n], b"hello");

        assert_eq!(open(&eve, &header).err(), Some(OpenError::NotForYou));
        assert_eq!(open(&alice, &header).err(), Some(OpenError::NotForYou));
        for i in [0, 9, E_AT, C_AT + 5, SENDER_AT, HEADER_LEN - 1] {
            let mut t = header.clone();
            t[i] ^= 1;
            assert!(open(&bob, &t).is_err(), "byte {i}");
        }
        assert!(matches!(open(&bob, &header[..HEADER_LEN - 1]), Err(OpenError::NotSealed(_))));
    }

    #[test]
    fn someone_who_sealed_for_bob_cannot_claim_to_be_alice() {
        // Eve knows Alice's public identity and writes it as the sender: the
        // header opens (it is Bob's), but the records are under a key that
        // needs Alice's private key, so the first record fails.
        let (alice, bob, eve) = (id(1), id(2), id(3));
        let (mut header, mut sealer) = seal_with(&eve, bob.public(), &[7; 32], &[8; 32]).unwrap();
        let secrets_key = {
            let es = Zeroizing::new(x25519_checked(&[7; 32], &bob.public().io_exchange).unwrap());
            let (_, kss) = mlkem768_encapsulate_deterministic(&bob.public().io_kem, &[8; 32]).unwrap();
            let s = Secrets { es, kss: Zeroizing::new(kss.0) };
            header_key(&s, &header[E_AT..C_AT].try_into().unwrap(), &header[C_AT..SENDER_AT], bob.public()).unwrap()
        };
        let mut forged = alice.public().to_bytes();
        let tag = secrets_key.seal_in_place([0; 12], &header[..SENDER_AT], &mut forged).unwrap();
        header.truncate(SENDER_AT);
        header.extend_from_slice(&forged);
        header.extend_from_slice(&tag);
        let mut rec = Vec::new();
        sealer.seal_to_vec(b"from alice, honest", true, &mut rec).unwrap();
        let (from, mut opener) = open(&bob, &header).unwrap();
        assert_eq!(from, *alice.public());
        assert_eq!(opener.open(MsgType::RECORD_FINAL, &mut rec[2..]), Err(Error::BadRecord));
    }
}
