//! Known-answer tests from the RFCs, run through `pqdrop_proto::internal::primitives` (never
//! through aws-lc-rs or x25519-dalek directly), so the code paths the protocol uses are
//! the ones checked.
//!
//! - RFC 5869 Appendix A, test cases 1-3 (HKDF-SHA256): PRK and OKM.
//! - RFC 7748 §5.2 (X25519 single-shot vectors and the 1 / 1,000 iteration results) and
//!   §6.1 (the Diffie-Hellman example).
//! - RFC 8439 §2.8.2 (AEAD_CHACHA20_POLY1305 example), including rejection of every
//!   single-bit change to the tag.
//!
//! Every hex string below was copied from the RFC text and cross-checked against an
//! independent implementation (Python `cryptography` / `hmac`) before being committed.

use pqdrop_proto::internal::primitives::{
    hkdf_sha256, hmac_sha256, x25519, x25519_base, x25519_checked, AeadAlg, AeadKey, HkdfPrk, NONCE_LEN, TAG_LEN,
};
use pqdrop_proto::Error;

/// Decodes hex, ignoring whitespace (so RFC-style line-wrapped values can be pasted).
fn h(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(s).expect("valid hex in test vector")
}

fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().expect("32-byte test vector value")
}

// ---------------------------------------------------------------------------------------
// RFC 5869, Appendix A: HKDF-SHA256
// ---------------------------------------------------------------------------------------

struct HkdfCase {
    name: &'static str,
    ikm: &'static str,
    salt: &'static str,
    info: &'static str,
    len: usize,
    prk: &'static str,
    okm: &'static str,
}

const RFC5869: [HkdfCase; 3] = [
    HkdfCase {
        name: "A.1 basic",
        ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt: "000102030405060708090a0b0c",
        info: "f0f1f2f3f4f5f6f7f8f9",
        len: 42,
        prk: "077709362c2e32df0ddc3f0dc47bba63 90b6c73bb50f9c3122ec844ad7c2b3e5",
        okm: "3cb25f25faacd57a90434f64d0362f2a 2d2d0a90cf1a5a4c5db02d56ecc4c5bf
              34007208d5b887185865",
    },
    HkdfCase {
        name: "A.2 longer inputs/outputs",
        ikm: "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f
              202122232425262728292a2b2c2d2e2f 303132333435363738393a3b3c3d3e3f
              404142434445464748494a4b4c4d4e4f",
        salt: "606162636465666768696a6b6c6d6e6f 707172737475767778797a7b7c7d7e7f
               808182838485868788898a8b8c8d8e8f 909192939495969798999a9b9c9d9e9f
               a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        info: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf c0c1c2c3c4c5c6c7c8c9cacbcccdcecf
               d0d1d2d3d4d5d6d7d8d9dadbdcdddedf e0e1e2e3e4e5e6e7e8e9eaebecedeeef
               f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        len: 82,
        prk: "06a6b88c5853361a06104c9ceb35b45c ef760014904671014a193f40c15fc244",
        okm: "b11e398dc80327a1c8e7f78c596a4934 4f012eda2d4efad8a050cc4c19afa97c
              59045a99cac7827271cb41c65e590e09 da3275600c2f09b8367793a9aca3db71
              cc30c58179ec3e87c14c01d5c1f3434f 1d87",
    },
    HkdfCase {
        name: "A.3 zero-length salt/info",
        ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt: "",
        info: "",
        len: 42,
        prk: "19ef24a32c717b167f33a91d6f648bdf 96596776afdb6377ac434c1c293ccb04",
        okm: "8da4e775a563c18f715f802a063c5a31 b8a11f5c5ee1879ec3454e5f3c738d2d
              9d201395faa4b61a96c8",
    },
];

/// HKDF-Expand (RFC 5869 §2.3) written out with `hmac_sha256`, so that the RFC's PRK
/// is tied to its OKM through our HMAC wrapper as well as through our HKDF wrapper.
fn expand_with_hmac(prk: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut okm = Vec::with_capacity(len);
    let mut t: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    while okm.len() < len {
        t = hmac_sha256(prk, &[&t, info, &[counter]]).to_vec();
        okm.extend_from_slice(&t);
        counter += 1;
    }
    okm.truncate(len);
    okm
}

#[test]
fn rfc5869_hkdf_sha256() {
    for c in &RFC5869 {
        let (ikm, salt, info, prk, okm) = (h(c.ikm), h(c.salt), h(c.info), h(c.prk), h(c.okm));
        assert_eq!(okm.len(), c.len, "{}: vector length", c.name);

        // PRK = HMAC-Hash(salt, IKM), computed separately through the HMAC wrapper.
        assert_eq!(hmac_sha256(&salt, &[&ikm]).as_slice(), prk.as_slice(), "{}: PRK", c.name);
        // The same with IKM split across parts (the wrapper concatenates them).
        let (ikm_a, ikm_b) = ikm.split_at(ikm.len() / 2);
        assert_eq!(hmac_sha256(&salt, &[ikm_a, ikm_b]).as_slice(), prk.as_slice(), "{}", c.name);
        if salt.is_empty() {
            // "if not provided, [salt] is set to a string of HashLen zeros".
            assert_eq!(hmac_sha256(&[0u8; 32], &[&ikm]).as_slice(), prk.as_slice(), "{}", c.name);
        }
        // OKM from the RFC's PRK via a hand-written Expand over hmac_sha256.
        assert_eq!(expand_with_hmac(&prk, &info, c.len), okm, "{}: Expand(PRK)", c.name);

        // One-shot wrapper.
        let mut out = vec![0u8; c.len];
        hkdf_sha256(&salt, &ikm, &[&info], &mut out).expect("hkdf_sha256");
        assert_eq!(out, okm, "{}: hkdf_sha256 OKM", c.name);

        // Extract then Expand, info given whole and split into parts.
        let prk_obj = HkdfPrk::extract(&salt, &ikm);
        let mut out = vec![0u8; c.len];
        prk_obj.expand(&[&info], &mut out).expect("expand");
        assert_eq!(out, okm, "{}: HkdfPrk OKM", c.name);
        let (info_a, info_b) = info.split_at(info.len() / 3);
        let mut out = vec![0u8; c.len];
        prk_obj.expand(&[info_a, &[], info_b], &mut out).expect("expand, split info");
        assert_eq!(out, okm, "{}: HkdfPrk OKM with split info", c.name);

        // A shorter output is a prefix of the longer one.
        let mut short = [0u8; 7];
        prk_obj.expand(&[&info], &mut short).expect("short expand");
        assert_eq!(short.as_slice(), &okm[..7], "{}: prefix", c.name);
    }
}

#[test]
fn hkdf_sha256_output_length_limit() {
    let prk = HkdfPrk::extract(b"salt", b"ikm");
    let mut max = vec![0u8; 255 * 32];
    prk.expand(&[b"info"], &mut max).expect("255 * HashLen is allowed");
    let mut too_long = vec![0u8; 255 * 32 + 1];
    assert!(matches!(prk.expand(&[b"info"], &mut too_long), Err(Error::Misuse(_))));
    assert!(hkdf_sha256(b"salt", b"ikm", &[b"info"], &mut too_long).is_err());
}

// ---------------------------------------------------------------------------------------
// RFC 7748: X25519
// ---------------------------------------------------------------------------------------

/// §5.2, the two single-shot X25519 vectors: (scalar, u, output).
const RFC7748_5_2: [(&str, &str, &str); 2] = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        // Bit 255 is set in this u (last byte 0x93); X25519 must ignore it.
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
];

#[test]
fn rfc7748_x25519_vectors() {
    for (i, (k, u, out)) in RFC7748_5_2.iter().enumerate() {
        let (k, u, out) = (h32(k), h32(u), h32(out));
        assert_eq!(x25519(&k, &u), out, "vector {}", i + 1);
        assert_eq!(x25519_checked(&k, &u).expect("non-zero result"), out, "vector {}", i + 1);
        // Masking bit 255 of u by hand gives the same result.
        let mut masked = u;
        masked[31] &= 0x7f;
        assert_eq!(x25519(&k, &masked), out, "vector {} masked", i + 1);
    }
}

#[test]
fn rfc7748_x25519_iterated() {
    // k = u = 9; each step k' = X25519(k, u), u' = old k.
    let after_1 = h32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    let after_1000 = h32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
    let mut k = [0u8; 32];
    k[0] = 9;
    let mut u = k;
    for i in 1..=1000 {
        let r = x25519(&k, &u);
        u = k;
        k = r;
        if i == 1 {
            assert_eq!(k, after_1, "after one iteration");
        }
    }
    assert_eq!(k, after_1000, "after 1,000 iterations");
}

#[test]
fn rfc7748_x25519_diffie_hellman() {
    let a = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let a_pub = h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let b = h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let b_pub = h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    let k = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

    assert_eq!(x25519_base(&a), a_pub, "Alice's public key");
    assert_eq!(x25519_base(&b), b_pub, "Bob's public key");
    let mut nine = [0u8; 32];
    nine[0] = 9;
    assert_eq!(x25519(&a, &nine), a_pub, "X25519(a, 9)");
    assert_eq!(x25519(&a, &b_pub), k, "Alice's shared secret");
    assert_eq!(x25519(&b, &a_pub), k, "Bob's shared secret");
    assert_eq!(x25519_checked(&a, &b_pub).expect("contributory"), k);
    assert_eq!(x25519_checked(&b, &a_pub).expect("contributory"), k);
}

#[test]
fn x25519_checked_rejects_zero_point() {
    // u = 0 has order 1 (RFC 7748 §6.1: the all-zero result must be rejected).
    let a = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    assert_eq!(x25519(&a, &[0u8; 32]), [0u8; 32]);
    assert!(matches!(x25519_checked(&a, &[0u8; 32]), Err(Error::InvalidPublicValue(_))));
}

// ---------------------------------------------------------------------------------------
// RFC 8439 §2.8.2: AEAD_CHACHA20_POLY1305
// ---------------------------------------------------------------------------------------

const RFC8439_PLAINTEXT: &str = "
    4c 61 64 69 65 73 20 61 6e 64 20 47 65 6e 74 6c
    65 6d 65 6e 20 6f 66 20 74 68 65 20 63 6c 61 73
    73 20 6f 66 20 27 39 39 3a 20 49 66 20 49 20 63
    6f 75 6c 64 20 6f 66 66 65 72 20 79 6f 75 20 6f
    6e 6c 79 20 6f 6e 65 20 74 69 70 20 66 6f 72 20
    74 68 65 20 66 75 74 75 72 65 2c 20 73 75 6e 73
    63 72 65 65 6e 20 77 6f 75 6c 64 20 62 65 20 69
    74 2e";
const RFC8439_AAD: &str = "50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7";
const RFC8439_KEY: &str = "
    80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f
    90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f";
/// The 32-bit fixed-common part (07 00 00 00) followed by the 64-bit IV.
const RFC8439_NONCE: &str = "07 00 00 00  40 41 42 43 44 45 46 47";
const RFC8439_CIPHERTEXT: &str = "
    d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2
    a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
    3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b
    1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
    92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58
    fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
    3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b
    61 16";
const RFC8439_TAG: &str = "1a e1 0b 59 4f 09 e2 6a 7e 90 2e cb d0 60 06 91";

struct Rfc8439 {
    key: AeadKey,
    nonce: [u8; NONCE_LEN],
    aad: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
    tag: [u8; TAG_LEN],
}

fn rfc8439() -> Rfc8439 {
    let key = AeadKey::new(AeadAlg::ChaCha20Poly1305, &h(RFC8439_KEY)).expect("32-byte key");
    Rfc8439 {
        key,
        nonce: h(RFC8439_NONCE).try_into().expect("12-byte nonce"),
        aad: h(RFC8439_AAD),
        pt: h(RFC8439_PLAINTEXT),
        ct: h(RFC8439_CIPHERTEXT),
        tag: h(RFC8439_TAG).try_into().expect("16-byte tag"),
    }
}

#[test]
fn rfc8439_vector_bytes_are_consistent() {
    let v = rfc8439();
    assert_eq!(
        v.pt.as_slice(),
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for \
          the future, sunscreen would be it."
            .as_slice()
    );
    assert_eq!(v.pt.len(), 114);
    assert_eq!(v.ct.len(), 114);
    assert_eq!(v.key.alg(), AeadAlg::ChaCha20Poly1305);
}

#[test]
fn rfc8439_aead_seal() {
    let v = rfc8439();
    let mut buf = v.pt.clone();
    let tag = v.key.seal_in_place(v.nonce, &v.aad, &mut buf).expect("seal");
    assert_eq!(buf, v.ct, "ciphertext");
    assert_eq!(tag, v.tag, "tag");
}

#[test]
fn rfc8439_aead_open() {
    let v = rfc8439();
    let mut buf = [v.ct.as_slice(), v.tag.as_slice()].concat();
    let n = v.key.open_in_place(v.nonce, &v.aad, &mut buf).expect("open");
    assert_eq!(n, v.pt.len());
    assert_eq!(&buf[..n], v.pt.as_slice(), "plaintext");
}

#[test]
fn rfc8439_aead_rejects_flipped_tag_bits() {
    let v = rfc8439();
    let sealed = [v.ct.as_slice(), v.tag.as_slice()].concat();
    for bit in 0..TAG_LEN * 8 {
        let mut buf = sealed.clone();
        buf[v.ct.len() + bit / 8] ^= 1 << (bit % 8);
        assert_eq!(v.key.open_in_place(v.nonce, &v.aad, &mut buf), Err(Error::BadRecord), "tag bit {bit} flipped");
    }
}

#[test]
fn rfc8439_aead_rejects_other_modifications() {
    let v = rfc8439();
    let sealed = [v.ct.as_slice(), v.tag.as_slice()].concat();

    // A flipped ciphertext bit (first, middle and last byte).
    for pos in [0, v.ct.len() / 2, v.ct.len() - 1] {
        let mut buf = sealed.clone();
        buf[pos] ^= 0x01;
        assert_eq!(v.key.open_in_place(v.nonce, &v.aad, &mut buf), Err(Error::BadRecord));
    }
    // A flipped AAD bit.
    let mut aad = v.aad.clone();
    aad[0] ^= 0x80;
    let mut buf = sealed.clone();
    assert_eq!(v.key.open_in_place(v.nonce, &aad, &mut buf), Err(Error::BadRecord));
    // Missing AAD.
    let mut buf = sealed.clone();
    assert_eq!(v.key.open_in_place(v.nonce, &[], &mut buf), Err(Error::BadRecord));
    // A different nonce.
    let mut nonce = v.nonce;
    nonce[NONCE_LEN - 1] ^= 0x01;
    let mut buf = sealed.clone();
    assert_eq!(v.key.open_in_place(nonce, &v.aad, &mut buf), Err(Error::BadRecord));
    // Truncated: one byte of ciphertext dropped, and shorter than a tag.
    let mut buf = sealed[1..].to_vec();
    assert_eq!(v.key.open_in_place(v.nonce, &v.aad, &mut buf), Err(Error::BadRecord));
    let mut buf = v.tag[..TAG_LEN - 1].to_vec();
    assert_eq!(v.key.open_in_place(v.nonce, &v.aad, &mut buf), Err(Error::BadRecord));
    // A different key.
    let mut other_key = h(RFC8439_KEY);
    other_key[0] ^= 0x01;
    let other = AeadKey::new(AeadAlg::ChaCha20Poly1305, &other_key).expect("key");
    let mut buf = sealed.clone();
    assert_eq!(other.open_in_place(v.nonce, &v.aad, &mut buf), Err(Error::BadRecord));
    // The same bytes under the other AEAD.
    let gcm = AeadKey::new(AeadAlg::Aes256Gcm, &h(RFC8439_KEY)).expect("key");
    let mut buf = sealed;
    assert_eq!(gcm.open_in_place(v.nonce, &v.aad, &mut buf), Err(Error::BadRecord));
}

#[test]
fn aead_key_length_is_checked() {
    for alg in [AeadAlg::ChaCha20Poly1305, AeadAlg::Aes256Gcm] {
        for len in [0, 16, 24, 31, 33] {
            assert!(matches!(AeadKey::new(alg, &vec![0u8; len]), Err(Error::BadKeyLength { .. })), "{alg:?} accepted a {len}-byte key");
        }
    }
}
