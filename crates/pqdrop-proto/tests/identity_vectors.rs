//! Cross-check of identities against `vectors/identity.json`, written by
//! `scripts/identity_crosscheck.py`: an independent implementation on Python's
//! `cryptography` (OpenSSL's HKDF, X25519, ML-KEM-768, Argon2id and
//! ChaCha20-Poly1305) and BIP-39's published English word list.

use pqdrop_proto::identity::{
    derive_wide, file_protection, open_file, recovery_phrase, seal_file_with, seed_from_phrase, Identity, KdfCost, Protection, IO_KEM_INDEX,
};
use pqdrop_proto::keys::Seed;
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/identity.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("vectors/identity.json is not valid JSON")
}

fn s<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("vector lacks string field {name}: {v}"))
}

fn bytes<const N: usize>(hex_text: &str) -> [u8; N] {
    hex::decode(hex_text).expect("hex").try_into().expect("length")
}

#[test]
fn rust_matches_the_independent_vectors() {
    let doc = load();
    let pass = s(&doc, "passphrase").as_bytes();
    let a = &doc["argon2id"];
    let n = |k: &str| a[k].as_u64().expect("cost") as u32;
    let cost = KdfCost { m_kib: n("memory_kib"), t: n("passes"), p: n("lanes") };
    let (salt, nonce) = (bytes::<16>(s(&doc, "salt")), bytes::<12>(s(&doc, "nonce")));
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let name = s(v, "name");
        let seed = Seed::from_hex(s(v, "seed")).expect("seed");
        let id = Identity::from_seed(seed.clone()).expect("identity");
        let p = id.public();
        assert_eq!(hex::encode(p.seed_exchange), s(v, "seed_exchange_public"), "{name}");
        assert_eq!(hex::encode(p.io_exchange), s(v, "io_exchange_public"), "{name}");
        assert_eq!(hex::encode(p.sign), s(v, "sign_public"), "{name}");
        assert_eq!(hex::encode(*derive_wide(&seed, IO_KEM_INDEX).expect("wide")), s(v, "io_kem_seed"), "{name}");
        assert_eq!(hex::encode(&p.io_kem), s(v, "io_kem_public"), "{name}: ML-KEM-768 from the 64-byte seed");
        assert_eq!(p.fingerprint().to_string(), s(v, "fingerprint"), "{name}");
        assert_eq!(&*recovery_phrase(&seed), s(v, "recovery_phrase"), "{name}");
        assert_eq!(seed_from_phrase(s(v, "recovery_phrase")).expect("phrase"), seed, "{name}");

        let plain = seal_file_with(&seed, Protection::None, None, [0; 16], nonce).expect("seal");
        assert_eq!(hex::encode(&plain), s(v, "file_without_passphrase"), "{name}");
        let locked = seal_file_with(&seed, Protection::Passphrase(cost), Some(pass), salt, nonce).expect("seal");
        assert_eq!(hex::encode(&locked), s(v, "file_with_passphrase"), "{name}: Argon2id + ChaCha20-Poly1305");
        // And the independent files open here.
        let theirs = hex::decode(s(v, "file_with_passphrase")).expect("hex");
        assert_eq!(file_protection(&theirs), Ok(Protection::Passphrase(cost)));
        assert_eq!(open_file(&theirs, Some(pass)).expect("open"), seed, "{name}");
        assert_eq!(open_file(&hex::decode(s(v, "file_without_passphrase")).expect("hex"), None).expect("open"), seed);
    }
}
