//! The relay protocol vectors of `vectors/relay.json` (PROTOCOL.md §9),
//! which `scripts/relay_crosscheck.py` checks independently: this crate's
//! encoder gives each stored hello byte for byte, its parser takes each whole
//! and refuses each bad one, and each stored status reads back as its code
//! and message.

use pqdrop_relay::{check_hello, hello_bytes, hello_contact_bytes, hello_v2_page_bytes, read_status, Role};
use serde_json::Value;

const VECTORS: &str = include_str!("../../../vectors/relay.json");

fn role(v: &Value) -> Role {
    Role::from_wire(v["role"].as_u64().expect("role")).expect("known role")
}

#[test]
fn hellos_statuses_and_refusals_match_the_vectors() {
    let doc: Value = serde_json::from_str(VECTORS).expect("vectors/relay.json is JSON");
    let hellos = doc["hellos"].as_array().expect("hellos");
    assert!(hellos.len() >= 6);
    for v in hellos {
        let np = v["nameplate"].as_str().expect("nameplate");
        let encoded = match v["version"].as_u64() {
            Some(1) => hello_bytes(np, role(v)).expect("v1 hello"),
            Some(2) => {
                let flags = v["flags"].as_u64().expect("flags");
                if flags & 2 != 0 {
                    let room: [u8; 16] = hex::decode(np).expect("hex").try_into().expect("16 bytes");
                    hello_contact_bytes(&room, role(v), flags & 1 != 0)
                } else {
                    hello_v2_page_bytes((!np.is_empty()).then_some(np), role(v), flags & 1 != 0, flags & 4 != 0).expect("v2 hello")
                }
            }
            other => panic!("version {other:?}"),
        };
        assert_eq!(hex::encode(&encoded), v["hex"].as_str().unwrap(), "{v}");
        assert_eq!(check_hello(&encoded), Ok(Some(encoded.len())), "{v}");
        for cut in 0..encoded.len() {
            assert_eq!(check_hello(&encoded[..cut]), Ok(None), "{v}: a prefix is incomplete, not refused");
        }
    }
    for v in doc["bad_hellos"].as_array().expect("bad_hellos") {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        assert!(check_hello(&bytes).is_err(), "{v} must be refused");
    }
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for v in doc["statuses"].as_array().expect("statuses") {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let mut input = &bytes[..];
        let (code, msg) = rt.block_on(read_status(&mut input)).expect("status");
        assert_eq!(code, v["code"].as_u64().unwrap(), "{v}");
        assert_eq!(msg, v["message"].as_str().unwrap(), "{v}");
        assert!(input.is_empty(), "{v}: read exactly the status");
    }
}
