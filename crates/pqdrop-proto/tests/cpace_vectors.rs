//! Known-answer tests for CPace (draft-irtf-cfrg-cpace-21, CPACE-X25519-SHA512)
//! against the draft's own vectors, plus property checks.
//!
//! The vectors are the draft's own (its appendix, CPACE-X25519-SHA512), copied
//! into `vectors/cpace-draft21-testvectors.json` so another implementation can
//! run the same file.

use pqdrop_proto::internal::cpace::{calculate_generator, isk_ir, isk_sy, sid_output_ir, sid_output_oc, CpaceSecret};
use pqdrop_proto::Error;
use proptest::prelude::*;
use serde_json::Value;

/// Path of the draft-21 vectors: crates/pqdrop-proto -> workspace root -> vectors.
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/cpace-draft21-testvectors.json");

fn load() -> Value {
    let text = std::fs::read_to_string(VECTORS).unwrap_or_else(|e| panic!("reading {VECTORS}: {e}"));
    serde_json::from_str(&text).expect("vectors are JSON")
}

/// Hex field of an object, decoded.
fn field(obj: &Value, key: &str) -> Vec<u8> {
    let s = obj[key].as_str().unwrap_or_else(|| panic!("missing string field {key}"));
    hex::decode(s).unwrap_or_else(|e| panic!("field {key}: {e}"))
}

fn arr32(v: &[u8]) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

fn h32(s: &str) -> [u8; 32] {
    arr32(&hex::decode(s).expect("hex"))
}

/// The full run of draft-21 Appendix B.1, every value through the public API.
#[test]
fn g_25519_full_run() {
    let all = load();
    let v = &all["G_25519"];
    let (prs, ci, sid) = (field(v, "PRS"), field(v, "CI"), field(v, "sid"));
    let (ada, adb) = (field(v, "ADa"), field(v, "ADb"));

    let g = calculate_generator(&prs, &ci, &sid);
    assert_eq!(g.to_vec(), field(v, "g"), "g");

    let a = CpaceSecret::from_bytes(arr32(&field(v, "ya")));
    let b = CpaceSecret::from_bytes(arr32(&field(v, "yb")));
    let ya = a.public_value(&g);
    let yb = b.public_value(&g);
    assert_eq!(ya.to_vec(), field(v, "Ya"), "Ya");
    assert_eq!(yb.to_vec(), field(v, "Yb"), "Yb");

    let k_a = a.shared_k(&yb).expect("K at A");
    let k_b = b.shared_k(&ya).expect("K at B");
    assert_eq!(k_a.to_vec(), field(v, "K"), "K = scalar_mult_vfy(ya, Yb)");
    assert_eq!(k_b.to_vec(), field(v, "K"), "K = scalar_mult_vfy(yb, Ya)");

    assert_eq!(isk_ir(&sid, &k_a, &ya, &ada, &yb, &adb).to_vec(), field(v, "ISK_IR"), "ISK_IR");
    assert_eq!(isk_sy(&sid, &k_a, &ya, &ada, &yb, &adb).to_vec(), field(v, "ISK_SY"), "ISK_SY");
    // The symmetric ISK does not depend on who calls itself "a".
    assert_eq!(isk_sy(&sid, &k_b, &yb, &adb, &ya, &ada).to_vec(), field(v, "ISK_SY"), "ISK_SY swapped");

    assert_eq!(sid_output_ir(&ya, &ada, &yb, &adb).to_vec(), field(v, "sid_output_ir"), "sid_output_ir");
    assert_eq!(sid_output_oc(&ya, &ada, &yb, &adb).to_vec(), field(v, "sid_output_oc"), "sid_output_oc");
    assert_eq!(sid_output_oc(&yb, &adb, &ya, &ada).to_vec(), field(v, "sid_output_oc"), "sid_output_oc swapped");
}

/// Draft-21 B.1.10: the entries of `X25519_points` that encode low-order points
/// (Y0..Y5 and Y7) must make K all zero and abort, for both parties' scalars.
///
/// The other entries (Y6, Y8..Y11) are in the list because they *would* give
/// zero if bit 255 were not cleared; with RFC 7748 decoding they are ordinary
/// points and must produce the draft's q values for its scalar s. The JSON
/// file carries only the inputs, so s and q are copied from B.1.10.
#[test]
fn x25519_points() {
    let all = load();
    let g = &all["G_25519"];
    let scalars = [field(g, "ya"), field(g, "yb")];
    let points = all["X25519_points"].as_object().expect("X25519_points is an object");
    assert_eq!(points.len(), 12);

    let must_abort = ["Invalid Y0", "Invalid Y1", "Invalid Y2", "Invalid Y3", "Invalid Y4", "Invalid Y5", "Invalid Y7"];
    for name in must_abort {
        let point = arr32(&field(&all["X25519_points"], name));
        for y in &scalars {
            let r = CpaceSecret::from_bytes(arr32(y)).shared_k(&point);
            assert!(matches!(r, Err(Error::InvalidPublicValue(_))), "{name} must be rejected");
        }
    }

    let s = CpaceSecret::from_bytes(h32("af46e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449aff"));
    let expected = [
        ("Invalid Y6", "d8e2c776bbacd510d09fd9278b7edcd25fc5ae9adfba3b6e040e8d3b71b21806"),
        ("Invalid Y8", "c85c655ebe8be44ba9c0ffde69f2fe10194458d137f09bbff725ce58803cdb38"),
        ("Invalid Y9", "db64dafa9b8fdd136914e61461935fe92aa372cb056314e1231bc4ec12417456"),
        ("Invalid Y10", "e062dcd5376d58297be2618c7498f55baa07d7e03184e8aada20bca28888bf7a"),
        ("Invalid Y11", "993c6ad11c4c29da9a56f7691fd0ff8d732e49de6250b6c2e80003ff4629a175"),
    ];
    for (name, q) in expected {
        let point = arr32(&field(&all["X25519_points"], name));
        let k = s.shared_k(&point).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(*k, h32(q), "{name}: bit 255 must be cleared, not rejected");
    }
    // Every entry is covered by exactly one of the two lists.
    assert_eq!(must_abort.len() + expected.len(), points.len());
}

/// A wrong code (PRS) gives a different generator, K and ISK, so key
/// confirmation fails; everything else about the run is identical.
#[test]
fn mismatched_prs() {
    let all = load();
    let v = &all["G_25519"];
    let (ci, sid) = (field(v, "CI"), field(v, "sid"));
    let (ada, adb) = (field(v, "ADa"), field(v, "ADb"));
    let a = CpaceSecret::from_bytes(arr32(&field(v, "ya")));
    let b = CpaceSecret::from_bytes(arr32(&field(v, "yb")));

    let g_a = calculate_generator(b"Password", &ci, &sid);
    let g_b = calculate_generator(b"Passwort", &ci, &sid);
    assert_ne!(g_a, g_b);
    let ya = a.public_value(&g_a);
    let yb = b.public_value(&g_b);
    let k_a = a.shared_k(&yb).expect("valid point");
    let k_b = b.shared_k(&ya).expect("valid point");
    assert_ne!(*k_a, *k_b);
    assert_ne!(*isk_ir(&sid, &k_a, &ya, &ada, &yb, &adb), *isk_ir(&sid, &k_b, &ya, &ada, &yb, &adb));
    assert_ne!(*isk_sy(&sid, &k_a, &ya, &ada, &yb, &adb), *isk_sy(&sid, &k_b, &yb, &adb, &ya, &ada));

    // A differing CI or sid separates runs just as well.
    assert_ne!(g_a, calculate_generator(b"Password", b"other channel", &sid));
    assert_ne!(g_a, calculate_generator(b"Password", &ci, b"other sid"));
}

/// Fresh random scalars from the OS RNG agree on K.
#[test]
fn random_scalars_agree() {
    let mut rng = rand_core::OsRng;
    let g = calculate_generator(b"7-ocean-tiger", b"ci", b"sid");
    let a = CpaceSecret::random(&mut rng);
    let b = CpaceSecret::random(&mut rng);
    let (ya, yb) = (a.public_value(&g), b.public_value(&g));
    assert_ne!(ya, yb);
    assert_eq!(*a.shared_k(&yb).expect("K at A"), *b.shared_k(&ya).expect("K at B"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For random scalars and random generators (from random PRS, CI, sid),
    /// both directions give the same non-zero K and the same ISKs.
    #[test]
    fn shared_k_is_symmetric(
        ya in any::<[u8; 32]>(),
        yb in any::<[u8; 32]>(),
        prs in proptest::collection::vec(any::<u8>(), 0..200),
        ci in proptest::collection::vec(any::<u8>(), 0..64),
        sid in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let g = calculate_generator(&prs, &ci, &sid);
        let (a, b) = (CpaceSecret::from_bytes(ya), CpaceSecret::from_bytes(yb));
        let (pa, pb) = (a.public_value(&g), b.public_value(&g));
        let k_a = a.shared_k(&pb).expect("generator has large order");
        let k_b = b.shared_k(&pa).expect("generator has large order");
        prop_assert_eq!(*k_a, *k_b);
        prop_assert_eq!(*isk_ir(&sid, &k_a, &pa, b"A", &pb, b"B"), *isk_ir(&sid, &k_b, &pa, b"A", &pb, b"B"));
        prop_assert_eq!(*isk_sy(&sid, &k_a, &pa, b"A", &pb, b"B"), *isk_sy(&sid, &k_b, &pb, b"B", &pa, b"A"));
    }
}
