//! Cross-check of the key hierarchy against `vectors/keys.json`.
//!
//! The vectors are written by `scripts/keys_crosscheck.py`, an independent
//! implementation on Python's `cryptography` package (OpenSSL), so agreement
//! here means two unrelated HKDF and X25519 implementations agree.

use pqdrop_proto::keys::{self, derive, hierarchy, index, Seed, Variant, HALVING_SALT};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/keys.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("vectors/keys.json is not valid JSON")
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("vector lacks string field {name}: {v}"))
}

#[test]
fn salt_matches() {
    assert_eq!(field(&load(), "hkdf_salt"), hex::encode(HALVING_SALT));
}

#[test]
fn rust_matches_the_independent_vectors() {
    let doc = load();
    let vectors = doc["vectors"].as_array().expect("vectors array");
    // Three seeds times two variants, as the script writes them.
    assert!(vectors.len() >= 6, "expected at least 6 vectors, found {}", vectors.len());
    let mut seen = std::collections::BTreeSet::new();
    for v in vectors {
        let label = format!("{} / {}", field(v, "name"), field(v, "variant"));
        let variant: Variant = field(v, "variant").parse().expect("variant");
        seen.insert(variant.as_str());
        let seed = Seed::from_hex(field(v, "seed")).expect("seed");
        let h = hierarchy(&seed, variant).expect("hierarchy");

        assert_eq!(hex::encode(h.seed_exchange_private.as_bytes()), field(v, "seed_exchange_private"), "{label}");
        assert_eq!(hex::encode(h.seed_exchange_public), field(v, "seed_exchange_public"), "{label}");
        assert_eq!(hex::encode(h.io_exchange_private.as_bytes()), field(v, "io_exchange_private"), "{label}");
        assert_eq!(hex::encode(h.io_exchange_public), field(v, "io_exchange_public"), "{label}");
        assert_eq!(hex::encode(h.state_ikm.as_bytes()), field(v, "state_ikm"), "{label}");
        assert_eq!(hex::encode(h.callback_secret.as_bytes()), field(v, "callback_secret"), "{label}");

        let extra = [
            (index::RANDOMNESS_ENCRYPTION, "randomness_encryption_key"),
            (index::INITIAL_RANDOMNESS, "initial_randomness_seed"),
            (index::ADMIN_PROOF, "admin_proof"),
            (index::CONTRACT_KEY_PROOF, "contract_key_proof"),
        ];
        match variant {
            Variant::Enclave => {
                for (n, name) in extra {
                    let k = derive(&seed, variant, n).expect("derive");
                    assert_eq!(hex::encode(k.as_bytes()), field(v, name), "{label} index {n}");
                }
            }
            Variant::Spec => {
                for (_, name) in extra {
                    assert!(v.get(name).is_none(), "{label}: spec vectors define only indices 1..=4");
                }
            }
        }
    }
    assert_eq!(seen.len(), 2, "both variants must be covered");
}

#[test]
fn seed_hex_length_constant() {
    assert_eq!(keys::SEED_HEX_LEN, 64);
}
