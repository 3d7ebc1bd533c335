//! CPace, draft-irtf-cfrg-cpace-21, cipher suite CPACE-X25519-SHA512.
//!
//! CPace turns the low-entropy transfer code (PRS) into a secret generator `g`
//! of Curve25519. Each side sends `Y = X25519(y, g)` for a fresh scalar `y`;
//! both compute `K = X25519(y, Y_peer)` and hash it with the transcript into the
//! intermediate session key ISK. An attacker who does not know PRS learns
//! nothing from one run it takes part in except whether its single guess was
//! right, so each guess costs one live, detectable attempt.
//!
//! What is pinned here, exactly as the draft defines it (names follow the
//! draft so that the code can be read against it):
//! - `prepend_len` is LEB128(len) || data; `lv_cat` concatenates those.
//! - `generator_string = lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid)` with
//!   `len_zpad = max(0, 128 - 1 - len(prepend_len(PRS)) - len(prepend_len(DSI)))`.
//!   The `- 1` is the one-byte length prefix of the padding itself, so DSI, PRS
//!   and the padding fill SHA-512's first 128-byte block exactly.
//! - `g = Elligator2(decodeUCoordinate(SHA-512(generator_string)[0..32]))`:
//!   the hash is truncated to 32 bytes and bit 255 is cleared before the map.
//! - `ISK = SHA-512(lv_cat(DSI || "_ISK", sid, K) || transcript)`.
//! - `sid_output = SHA-512("CPaceSidOutput" || transcript)`: the prefix is raw
//!   bytes, *not* length-prefixed, unlike everything else.
//!
//! Only X25519 goes through [`crate::primitives`], so the RFC 7748 known-answer
//! tests cover the exact scalar multiplication used here.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::elligator::map_to_curve_elligator2_curve25519;
use crate::primitives::{ct_eq, sha512, x25519};
use crate::{Error, Result};

/// The domain-separation identifier of the X25519 group environment (G.DSI).
pub const DSI: &[u8] = b"CPace255";

/// G.DSI || "_ISK": the first field of the ISK hash input.
const DSI_ISK: &[u8] = b"CPace255_ISK";

/// The raw (not length-prefixed) prefix of the optional session-id output,
/// draft §10.6.
const SID_OUTPUT_PREFIX: &[u8] = b"CPaceSidOutput";

/// SHA-512's input block size, H.s_in_bytes: the zero padding in the generator
/// string is sized against it.
const S_IN_BYTES: usize = 128;

/// Prefix for ordered concatenation (o_cat), draft Appendix A.3.2.
const OC_PREFIX: &[u8] = b"oc";

/// Number of bytes LEB128 needs for `n` (7 bits per byte, at least one).
fn leb128_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Appends LEB128(n): 7 bits per byte, least significant group first, bit 7
/// set on every byte but the last.
fn push_leb128(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        // Truncation to the low 7 bits is the point of the mask.
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// LEB128 length prefix of `data` followed by data.
pub fn prepend_len(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(leb128_len(data.len()) + data.len());
    push_leb128(&mut out, data.len());
    out.extend_from_slice(data);
    out
}

/// Concatenation of prepend_len(part) for each part.
///
/// Length-prefixing every field makes the encoding prefix-free, which is what
/// lets the draft hash transcripts with a Merkle-Damgard hash safely (§10.2).
pub fn lv_cat(parts: &[&[u8]]) -> Vec<u8> {
    let total = parts.iter().map(|p| leb128_len(p.len()) + p.len()).sum();
    let mut out = Vec::with_capacity(total);
    for part in parts {
        push_leb128(&mut out, part.len());
        out.extend_from_slice(part);
    }
    out
}

/// generator_string(DSI, PRS, CI, sid, s_in_bytes = 128)
///
/// The zero padding pushes CI and sid out of the first hash block, so that
/// block depends on the password alone and its length does not leak through
/// the number of compression-function calls for short passwords (draft §8.1,
/// §10.10). The result contains PRS; callers should treat it as secret.
pub fn generator_string(prs: &[u8], ci: &[u8], sid: &[u8]) -> Vec<u8> {
    let used = 1 + (leb128_len(prs.len()) + prs.len()) + (leb128_len(DSI.len()) + DSI.len());
    let zpad = vec![0u8; S_IN_BYTES.saturating_sub(used)];
    lv_cat(&[DSI, prs, &zpad, ci, sid])
}

/// g = Elligator2(decodeUCoordinate(SHA-512(generator_string)[..32]))
///
/// H.hash(gen_str, 32) is the first 32 bytes of SHA-512. The map clears bit
/// 255 itself (decodeUCoordinate with 255 bits). The generator depends on the
/// password, so intermediate copies are wiped and the map is constant time.
pub fn calculate_generator(prs: &[u8], ci: &[u8], sid: &[u8]) -> [u8; 32] {
    let gen_str = Zeroizing::new(generator_string(prs, ci, sid));
    let hash = Zeroizing::new(sha512(&[&gen_str]));
    let mut u = Zeroizing::new([0u8; 32]);
    u.copy_from_slice(&hash[..32]);
    map_to_curve_elligator2_curve25519(&u)
}

/// A CPace secret scalar y, zeroized on drop (ZeroizeOnDrop), Debug prints nothing secret.
///
/// The 32 bytes are used as an RFC 7748 X25519 scalar: clamping happens inside
/// the scalar multiplication, so every scalar actually used is a multiple of
/// the cofactor 8, as draft §10.8 requires. One value must serve one session
/// only (§10.9); nothing here enforces that, so do not clone it around.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct CpaceSecret([u8; 32]);

impl core::fmt::Debug for CpaceSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CpaceSecret(..)")
    }
}

impl CpaceSecret {
    /// Wraps fixed scalar bytes (test vectors, deterministic tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// 32 random bytes; X25519 clamps. This is G_X25519.sample_scalar():
    /// uniform bytes, no rejection sampling (draft §10.7).
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Y = X25519(y, g)
    ///
    /// This is G.scalar_mult: the value sent to the peer.
    pub fn public_value(&self, g: &[u8; 32]) -> [u8; 32] {
        x25519(&self.0, g)
    }

    /// K = X25519(y, Y_peer); Err(crate::Error::InvalidPublicValue(..)) if K is all zero (checked in constant time).
    ///
    /// This is G.scalar_mult_vfy with the abort on G.I = zero_bytes(32): a
    /// peer value of low order on the curve or its twist (draft B.1.10, also
    /// with bit 255 set) gives all zeros and is rejected. K must never leave
    /// the ISK computation (§10.3).
    pub fn shared_k(&self, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        let k = Zeroizing::new(x25519(&self.0, peer));
        // x25519 returns the canonical encoding, so G.I has exactly one form.
        if ct_eq(&k[..], &[0u8; 32]) {
            return Err(Error::InvalidPublicValue("CPace: X25519 result is all zero (low-order point)"));
        }
        Ok(k)
    }
}

/// transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) || lv_cat(Yb, ADb).
fn transcript_ir(ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> Vec<u8> {
    lv_cat(&[ya, ada, yb, adb])
}

/// The draft's lexiographically_larger (Appendix A.3.1): bytewise comparison,
/// and on a common prefix the longer string is larger. That is exactly Rust's
/// slice `Ord`. The inputs are public messages, so a variable-time comparison
/// is fine.
fn lexiographically_larger(a: &[u8], b: &[u8]) -> bool {
    a > b
}

/// transcript_oc(Ya, ADa, Yb, ADb) = o_cat(lv_cat(Ya, ADa), lv_cat(Yb, ADb)):
/// "oc" followed by the lexicographically larger half first, so both parties
/// get the same bytes whichever of them is "a".
fn transcript_oc(ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> Vec<u8> {
    let a = lv_cat(&[ya, ada]);
    let b = lv_cat(&[yb, adb]);
    let (first, second) = if lexiographically_larger(&a, &b) { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(OC_PREFIX.len() + first.len() + second.len());
    out.extend_from_slice(OC_PREFIX);
    out.extend_from_slice(&first);
    out.extend_from_slice(&second);
    out
}

/// SHA-512(lv_cat(DSI_ISK, sid, K) || transcript), with K hashed straight
/// from its (zeroizing) buffer rather than copied into a temporary.
fn isk(sid: &[u8], k: &[u8; 32], transcript: &[u8]) -> Zeroizing<[u8; 64]> {
    let head = lv_cat(&[DSI_ISK, sid]);
    // prepend_len(K): 32 < 128, so its LEB128 prefix is the single byte 32.
    let k_len = [k.len() as u8];
    Zeroizing::new(sha512(&[&head, &k_len, k, transcript]))
}

/// ISK for the initiator-responder setting: SHA-512(lv_cat(DSI||"_ISK", sid, K) || lv_cat(Ya, ADa) || lv_cat(Yb, ADb))
///
/// "a" is always the initiator, on both sides.
pub fn isk_ir(sid: &[u8], k: &[u8; 32], ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> Zeroizing<[u8; 64]> {
    isk(sid, k, &transcript_ir(ya, ada, yb, adb))
}

/// ISK for the symmetric setting (ordered concatenation, o_cat).
///
/// Swapping (Ya, ADa) with (Yb, ADb) gives the same ISK, so each side may pass
/// its own message as "a".
pub fn isk_sy(sid: &[u8], k: &[u8; 32], ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> Zeroizing<[u8; 64]> {
    isk(sid, k, &transcript_oc(ya, ada, yb, adb))
}

/// Public session id derived from the initiator-responder transcript:
/// SHA-512("CPaceSidOutput" || transcript_ir(...)) (draft §10.6). Useful when
/// no sid was available as input.
pub fn sid_output_ir(ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> [u8; 64] {
    sha512(&[SID_OUTPUT_PREFIX, &transcript_ir(ya, ada, yb, adb)])
}

/// Public session id derived from the ordered (symmetric) transcript:
/// SHA-512("CPaceSidOutput" || transcript_oc(...)) (draft §10.6).
pub fn sid_output_oc(ya: &[u8], ada: &[u8], yb: &[u8], adb: &[u8]) -> [u8; 64] {
    sha512(&[SID_OUTPUT_PREFIX, &transcript_oc(ya, ada, yb, adb)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// draft-21 Appendix A.1.2.
    #[test]
    fn prepend_len_vectors() {
        assert_eq!(prepend_len(b""), [0x00]);
        assert_eq!(hex::encode(prepend_len(b"1234")), "0431323334");
        let r127: Vec<u8> = (0..127).collect();
        let out = prepend_len(&r127);
        assert_eq!(out.len(), 128);
        assert_eq!(out[0], 0x7f);
        assert_eq!(&out[1..], &r127[..]);
        let r128: Vec<u8> = (0..128).collect();
        let out = prepend_len(&r128);
        assert_eq!(out.len(), 130);
        assert_eq!(&out[..2], &[0x80, 0x01]);
        assert_eq!(&out[2..], &r128[..]);
        // Three-byte prefix: 2^14 = 0x4000 -> 80 80 01.
        assert_eq!(&prepend_len(&vec![0u8; 1 << 14])[..3], &[0x80, 0x80, 0x01]);
        for n in [0usize, 1, 127, 128, 16383, 16384, 1 << 21] {
            let mut v = Vec::new();
            push_leb128(&mut v, n);
            assert_eq!(v.len(), leb128_len(n), "n = {n}");
        }
    }

    /// draft-21 Appendix A.1.4.
    #[test]
    fn lv_cat_vector() {
        assert_eq!(hex::encode(lv_cat(&[b"1234", b"5", b"", b"678"])), "043132333401350003363738");
    }

    /// draft-21 Appendix A.3.3, A.3.5, A.3.7.
    #[test]
    fn transcript_vectors() {
        assert_eq!(hex::encode(transcript_ir(b"123", b"PartyA", b"234", b"PartyB")), "03313233065061727479410332333406506172747942");
        assert_eq!(hex::encode(transcript_ir(b"3456", b"PartyA", b"2345", b"PartyB")), "043334353606506172747941043233343506506172747942");
        assert_eq!(hex::encode(transcript_oc(b"123", b"PartyA", b"234", b"PartyB")), "6f6303323334065061727479420331323306506172747941");
        assert_eq!(
            hex::encode(transcript_oc(b"3456", b"PartyA", b"2345", b"PartyB")),
            "6f63043334353606506172747941043233343506506172747942"
        );
        // lexiographically_larger cases from A.3.3.
        assert!(!lexiographically_larger(b"\0", b"\0\0"));
        assert!(lexiographically_larger(b"\x01", b"\0\0"));
        assert!(lexiographically_larger(b"\0\0", b"\0"));
        assert!(!lexiographically_larger(b"\0\0", b"\x01"));
        assert!(!lexiographically_larger(b"\0\x01", b"\x01"));
        assert!(!lexiographically_larger(b"ABCD", b"BCD"));
    }

    /// draft-21 Appendix B.1.1: the full generator string (170 bytes, 109
    /// bytes of padding).
    #[test]
    fn generator_string_vector() {
        let ci = hex::decode("0b415f696e69746961746f720b425f726573706f6e646572").expect("hex");
        let sid = hex::decode("7e4b4791d6a8ef019b936c79fb7f2c57").expect("hex");
        let gs = generator_string(b"Password", &ci, &sid);
        let mut expected = hex::decode("0843506163653235350850617373776f72646d").expect("hex");
        expected.extend_from_slice(&[0u8; 109]);
        expected.extend_from_slice(
            &hex::decode("180b415f696e69746961746f720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f2c57").expect("hex"),
        );
        assert_eq!(gs.len(), 170);
        assert_eq!(gs, expected);
        // DSI, PRS and the padding (with its own length byte) fill one block.
        assert_eq!(gs[128], 0x18, "CI's length prefix starts the second block");
    }

    /// A PRS too long for the first block gets an empty padding field, which
    /// still carries its one-byte length prefix (0x00).
    #[test]
    fn generator_string_long_prs() {
        let prs = [0x55u8; 200];
        let gs = generator_string(&prs, b"", b"");
        let expected = lv_cat(&[DSI, &prs, b"", b"", b""]);
        assert_eq!(gs, expected);
        // Boundary: padding of exactly 0 when 1 + 9 + (1 + len) = 128.
        let prs = [0x55u8; 117];
        assert_eq!(generator_string(&prs, b"", b"").len(), 9 + 118 + 1 + 1 + 1);
        let prs = [0x55u8; 116];
        assert_eq!(generator_string(&prs, b"", b"").len(), 9 + 117 + 2 + 1 + 1);
    }

    /// Debug must not print the scalar.
    #[test]
    fn secret_debug_is_opaque() {
        let s = CpaceSecret::from_bytes([0xab; 32]);
        let d = format!("{s:?}");
        assert_eq!(d, "CpaceSecret(..)");
    }

    /// The all-zero K is rejected with the documented error variant.
    #[test]
    fn zero_point_rejected() {
        let s = CpaceSecret::from_bytes([7; 32]);
        assert!(matches!(s.shared_k(&[0u8; 32]), Err(Error::InvalidPublicValue(_))));
    }
}
