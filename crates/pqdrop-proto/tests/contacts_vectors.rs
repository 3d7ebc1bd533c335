//! Cross-check of the contact state against `vectors/contacts.json`, written
//! by `scripts/contacts_crosscheck.py`, an independent implementation on
//! Python's `cryptography`: the contact book sealed under the state IKM, the
//! Identity transfer message and safety numbers (PROTOCOL.md §8, §13.4).

use pqdrop_proto::contacts::{open_book, safety_number, seal_book_with, Book, Contact, ContactName, Source};
use pqdrop_proto::identity::{self, Identity};
use pqdrop_proto::internal::primitives::sha256;
use pqdrop_proto::invite::{Invitation, Ticket};
use pqdrop_proto::keys::Seed;
use pqdrop_proto::transfer::TransferMsg;
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/contacts.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).expect("vectors/contacts.json is not valid JSON")
}

fn s<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("vector lacks string field {name}: {v}"))
}

fn identity(hex_seed: &str) -> Identity {
    Identity::from_seed(Seed::from_hex(hex_seed).expect("seed")).expect("identity")
}

#[test]
fn rust_matches_the_independent_vectors() {
    let doc = load();
    let owner = identity(s(&doc, "owner_seed"));
    let ikm = owner.keys().state_ikm.as_bytes();
    let nonce: [u8; 12] = hex::decode(s(&doc, "nonce")).unwrap().try_into().unwrap();

    let mut book = Book::default();
    for c in doc["contacts"].as_array().expect("contacts") {
        let source = match c["source"].as_u64() {
            Some(1) => Source::CodeTransfer,
            Some(2) => Source::Invitation(Some(Ticket::from_bytes(&hex::decode(s(c, "ticket")).unwrap()).unwrap())),
            other => panic!("source {other:?}"),
        };
        let contact = Contact {
            name: ContactName::new(s(c, "name")).unwrap(),
            identity: identity(s(c, "seed")).public().clone(),
            added: c["added"].as_u64().unwrap(),
            source,
        };
        book.add(contact).unwrap();
    }
    let expected = hex::decode(s(&doc, "book")).unwrap();
    assert_eq!(seal_book_with(&book, ikm, nonce).unwrap(), expected, "the sealed book");
    assert_eq!(open_book(&expected, ikm).unwrap(), book, "the book opened");
    assert_eq!(hex::encode(seal_book_with(&Book::default(), ikm, nonce).unwrap()), s(&doc, "empty_book"));

    let th: [u8; 64] = hex::decode(s(&doc, "identity_proof_transcript")).unwrap().try_into().unwrap();
    let proof = owner.prove(identity::ProofRole::Sender, &th);
    assert_eq!(hex::encode(proof), s(&doc, "identity_proof_of_owner_as_sender"));
    owner.public().verify_proof(identity::ProofRole::Sender, &th, &proof).unwrap();
    let mut msg = Vec::new();
    TransferMsg::Identity { public: &owner.public().to_bytes(), proof: &proof }.encode(&mut msg);
    assert_eq!(hex::encode(&msg[..4]), s(&doc, "identity_message_prefix"));
    assert_eq!(hex::encode(sha256(&[&msg])), s(&doc, "identity_message_of_owner_sha256"));

    // Linking a device (PROTOCOL.md §13.6).
    let link = &doc["link"];
    let arr = |k: &str| -> [u8; 32] { hex::decode(s(link, k)).unwrap().try_into().unwrap() };
    let (n, exporter) = (arr("new_device_secret"), arr("exporter"));
    let old = identity(s(link, "seed"));
    let n_pub = pqdrop_proto::internal::primitives::x25519_base(&n);
    assert_eq!(hex::encode(identity::link_request(&n_pub)), s(link, "request"));
    let answer = identity::link_seed(&old, &n_pub, &exporter).unwrap();
    assert_eq!(hex::encode(&answer[..]), s(link, "answer"));
    assert_eq!(identity::link_check(&exporter).unwrap(), s(link, "check"));
    assert_eq!(identity::open_link_seed(&hex::decode(s(link, "answer")).unwrap(), &n, &exporter).unwrap().public(), old.public());

    // Invitations (PROTOCOL.md §13.8).
    let v = &doc["invitation"];
    let inviter = identity(s(v, "seed"));
    assert_eq!(hex::encode(inviter.keys().callback_secret.as_bytes()), s(v, "key4"));
    let expires = v["expires"].as_u64().unwrap();
    let nonce: [u8; 16] = hex::decode(s(v, "nonce")).unwrap().try_into().unwrap();
    let inv = Invitation::new(&inviter, expires, nonce);
    assert_eq!(hex::encode(inv.ticket.as_bytes()), s(v, "ticket"));
    assert_eq!(hex::encode(inv.to_bytes()), s(v, "invitation"));
    assert_eq!(Invitation::from_bytes(&hex::decode(s(v, "invitation")).unwrap()).unwrap(), inv);
    assert_eq!(inv.ticket.verify(&inviter, expires - 1), Ok(()));
    assert_eq!(inv.ticket.verify(&owner, expires - 1), Err(pqdrop_proto::invite::TicketError::Forged));

    for v in doc["safety_numbers"].as_array().expect("safety numbers") {
        let (a, b) = (identity(s(v, "a")), identity(s(v, "b")));
        assert_eq!(safety_number(a.public(), b.public()), s(v, "safety_number"));
        assert_eq!(safety_number(b.public(), a.public()), s(v, "safety_number"));
    }
}
