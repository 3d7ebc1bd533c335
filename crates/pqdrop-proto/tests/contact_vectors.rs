//! The contact handshake (PROTOCOL.md §13.7) with fixed randomness, written
//! to `vectors/contact-handshake.json` and checked from the spec alone by
//! `scripts/contact_crosscheck.py` (Python `cryptography`): every frame, the
//! transcript hash, the confirmation tags, one record each way and the room.
//! Regenerate with
//! `PQDROP_WRITE_VECTORS=1 cargo test -p pqdrop-proto --test contact_vectors`.

use pqdrop_proto::handshake::contact::{ContactHandshake, ContactRoom};
use pqdrop_proto::identity::Identity;
use pqdrop_proto::invite::Ticket;
use pqdrop_proto::keys::Seed;
use pqdrop_proto::msg::Capabilities;
use pqdrop_proto::testing::DetRng;
use rand_core::RngCore;
use serde_json::{json, Value};

const INITIATOR: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const RESPONDER: &str = "c64a28d4e6049d36d57ae13f80c1932ca3a374add6a1a3ddac9b1686d7f2a615";
const UNIX_TIME: u64 = 1_764_633_600;

fn identity(hex_seed: &str) -> Identity {
    Identity::from_seed(Seed::from_hex(hex_seed).unwrap()).unwrap()
}

fn draw(label: &str, sizes: &[usize]) -> Vec<String> {
    let mut rng = DetRng::new(label);
    sizes
        .iter()
        .map(|&n| {
            let mut b = vec![0u8; n];
            rng.fill_bytes(&mut b);
            hex::encode(b)
        })
        .collect()
}

#[test]
fn contact_handshake_vector_is_stable() {
    let (alice, bob) = (identity(INITIATOR), identity(RESPONDER));
    let caps_i = Capabilities(0x3fb);
    let caps_r = Capabilities(0x3db);
    let (li, lr) = ("pqdrop contact vector initiator", "pqdrop contact vector responder");
    let mut i = ContactHandshake::initiator(&alice, bob.public(), caps_i, &mut DetRng::new(li)).unwrap();
    let mut r = ContactHandshake::responder(&bob, vec![alice.public().clone()], caps_r, &mut DetRng::new(lr)).unwrap();
    let hello = i.poll_transmit().unwrap();
    r.handle_input(&hello).unwrap();
    let answer_and_confirm = r.poll_transmit().unwrap();
    assert_eq!(i.handle_input(&answer_and_confirm).unwrap(), answer_and_confirm.len());
    let confirm_r = i.poll_transmit().unwrap();
    r.handle_input(&confirm_r).unwrap();
    let (mut si, _) = i.into_session().unwrap();
    let (mut sr, _) = r.into_session().unwrap();
    assert_eq!(si.transcript_hash, sr.transcript_hash);
    let mut rec_i = Vec::new();
    si.sealer.seal_to_vec(b"from the initiator", false, &mut rec_i).unwrap();
    let mut rec_r = Vec::new();
    sr.sealer.seal_to_vec(b"from the responder", true, &mut rec_r).unwrap();
    let fi = draw(li, &[32, 64, 32, 32]);
    let fr = draw(lr, &[32, 32, 32, 32]);
    let window = ContactRoom::window_of(UNIX_TIME);
    // The same initiator invited (PROTOCOL.md §13.8): its hello carries the
    // responder's ticket, and a responder that saved no one accepts it.
    let li2 = "pqdrop contact vector invited initiator";
    let (expires, nonce) = (UNIX_TIME + 86_400, [0x42u8; 16]);
    let ticket = Ticket::issue(&bob, expires, nonce);
    let mut i2 = ContactHandshake::initiator_invited(&alice, bob.public(), Some(&ticket), caps_i, &mut DetRng::new(li2)).unwrap();
    let mut r2 = ContactHandshake::responder(&bob, Vec::new(), caps_r, &mut DetRng::new(lr)).unwrap();
    r2.accept_invitations(UNIX_TIME);
    let invited_hello = i2.poll_transmit().unwrap();
    r2.handle_input(&invited_hello).unwrap();
    assert!(r2.invited());
    let doc = json!({
        "description": "One contact handshake (PROTOCOL.md §13.7) made by pqdrop-proto with fixed randomness, then one record each \
                        way (counter 0; the responder's is final). scripts/contact_crosscheck.py recomputes it from the spec.",
        "initiator_seed": INITIATOR,
        "responder_seed": RESPONDER,
        "initiator_capabilities": caps_i.0,
        "responder_capabilities": caps_r.0,
        "initiator_fresh": {"e": fi[0], "kem_seed": fi[1], "chacha_salt": fi[2], "kem_message": fi[3]},
        "responder_fresh": {"e": fr[0], "aes_salt": fr[1], "kem_message_fresh": fr[2], "kem_message_static": fr[3]},
        "contact_hello": hex::encode(&hello),
        "contact_answer_and_confirm": hex::encode(&answer_and_confirm),
        "initiator_confirm": hex::encode(&confirm_r),
        "transcript_hash": hex::encode(si.transcript_hash),
        "exporter": hex::encode(&si.exporter[..]),
        "cipher": format!("{:?}", si.agreed.cipher),
        "record_initiator": hex::encode(&rec_i),
        "record_responder": hex::encode(&rec_r),
        "unix_time": UNIX_TIME,
        "window": window,
        "responder_room": ContactRoom::of(bob.public(), window).unwrap().to_string(),
        "invited": {
            "initiator_fresh": draw(li2, &[32, 64, 32, 32]),
            "ticket_expires": expires,
            "ticket_nonce": hex::encode(nonce),
            "ticket": hex::encode(ticket.as_bytes()),
            "contact_hello": hex::encode(&invited_hello),
        },
    });
    let path = format!("{}/../../vectors/contact-handshake.json", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("PQDROP_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored, doc, "the contact handshake changed: the protocol changed, or the vectors must be regenerated");
}
