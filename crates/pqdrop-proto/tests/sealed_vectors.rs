//! Sealed files (PROTOCOL.md §13.5) against an independent implementation,
//! `scripts/sealed_crosscheck.py` (Python `cryptography`), both ways:
//!
//! - `vectors/sealed-rust.json`: a file this crate seals with fixed
//!   randomness; the test checks it is still byte for byte what it seals,
//!   and the script opens it. Regenerate with
//!   `PQDROP_WRITE_VECTORS=1 cargo test -p pqdrop-proto --test sealed_vectors`.
//! - `vectors/sealed-python.json`: a file the script sealed (its ML-KEM
//!   encapsulation is random, so it is kept as made); this test opens it.

use pqdrop_proto::identity::Identity;
use pqdrop_proto::keys::Seed;
use pqdrop_proto::msg::parse_frame_header;
use pqdrop_proto::sealed;
use pqdrop_proto::transfer::{Entry, EntryKind, Messages, Offer, OfferKind, TransferMsg};
use serde_json::{json, Value};

const SENDER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const RECIPIENT: &str = "c64a28d4e6049d36d57ae13f80c1932ca3a374add6a1a3ddac9b1686d7f2a615";
const CONTENT: &[u8] = b"hello, sealed world\n";
const MTIME: u64 = 1_764_633_600;

fn identity(hex_seed: &str) -> Identity {
    Identity::from_seed(Seed::from_hex(hex_seed).unwrap()).unwrap()
}

fn path(name: &str) -> String {
    format!("{}/../../vectors/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The transfer inside: a folder, a file in it, and Done.
fn transfer() -> Vec<TransferMsg<'static>> {
    let dir = Entry { index: 0, kind: EntryKind::Dir, path: b"d".to_vec(), size: 0, executable: false, mtime: MTIME };
    let file = Entry {
        index: 1,
        kind: EntryKind::File,
        path: b"d/hello.txt".to_vec(),
        size: CONTENT.len() as u64,
        executable: false,
        mtime: MTIME,
    };
    vec![
        TransferMsg::Offer(Offer { kind: OfferKind::Files, files: 1, dirs: 1, bytes: CONTENT.len() as u64, preview: vec![b"d".to_vec()] }),
        TransferMsg::Entry(dir),
        TransferMsg::Entry(file.clone()),
        TransferMsg::ManifestEnd,
        TransferMsg::FileStart { entry: file, offset: 0 },
        TransferMsg::Chunk { compressed: false, data: CONTENT },
        TransferMsg::FileEnd { hash: None },
        TransferMsg::Done,
    ]
}

/// Opens `file` as `recipient`: the sender's public identity and the
/// plaintext of each record, checking the final record ends the file.
fn open(recipient: &Identity, file: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (from, mut opener) = sealed::open(recipient, file).expect("the header opens");
    let mut rest = &file[sealed::HEADER_LEN..];
    let mut records = Vec::new();
    while !opener.is_finished() {
        let h = parse_frame_header(rest).expect("a frame header").expect("a whole frame header");
        let (hl, len) = (h.header_len, h.body_len);
        let mut body = rest[hl..hl + len].to_vec();
        let n = opener.open(h.msg_type, &mut body).expect("the record opens");
        records.push(body[..n].to_vec());
        rest = &rest[hl + len..];
    }
    assert!(rest.is_empty(), "nothing after the final record");
    (from.to_bytes(), records)
}

#[test]
fn rust_sealed_file_is_stable() {
    let (alice, bob) = (identity(SENDER), identity(RECIPIENT));
    let (mut file, mut sealer) = sealed::seal_with(&alice, bob.public(), &[0x11; 32], &[0x22; 32]).unwrap();
    let mut pt = Vec::new();
    for m in transfer() {
        m.encode(&mut pt);
    }
    sealer.seal_to_vec(&pt, false, &mut file).unwrap();
    sealer.seal_to_vec(&[], true, &mut file).unwrap();
    let doc = json!({
        "description": "A sealed file (PROTOCOL.md §13.5) made by pqdrop-proto with the ephemeral X25519 secret 11 x 32 and the ML-KEM \
                        message 22 x 32: one record with the transfer (folder d, file d/hello.txt), then an empty final record. \
                        scripts/sealed_crosscheck.py opens it.",
        "sender_seed": SENDER,
        "recipient_seed": RECIPIENT,
        "ephemeral_secret": hex::encode([0x11; 32]),
        "kem_message": hex::encode([0x22; 32]),
        "contents": {"d/hello.txt": hex::encode(CONTENT)},
        "file": hex::encode(&file),
    });
    if std::env::var_os("PQDROP_WRITE_VECTORS").is_some() {
        std::fs::write(path("sealed-rust.json"), serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(path("sealed-rust.json")).unwrap()).unwrap();
    assert_eq!(stored["file"], doc["file"], "the sealed file changed: the format changed, or the vectors must be regenerated");
    let (from, records) = open(&bob, &file);
    assert_eq!(from, alice.public().to_bytes());
    assert_eq!(records, vec![pt, Vec::new()]);
}

#[test]
fn python_sealed_file_opens() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path("sealed-python.json")).unwrap()).unwrap();
    let s = |k: &str| doc[k].as_str().unwrap().to_owned();
    let (alice, bob) = (identity(&s("sender_seed")), identity(&s("recipient_seed")));
    let file = hex::decode(s("file")).unwrap();
    let (from, records) = open(&bob, &file);
    assert_eq!(from, alice.public().to_bytes());
    // The messages are the transfer of PROTOCOL.md §8; collect the file data.
    let mut data = Vec::new();
    let mut done = false;
    for r in &records {
        let mut it = Messages::new(r);
        while let Some(m) = it.next().unwrap() {
            match m {
                TransferMsg::Chunk { compressed: false, data: d } => data.extend_from_slice(d),
                TransferMsg::Done => done = true,
                _ => {}
            }
        }
    }
    assert!(done);
    assert_eq!(hex::encode(&data), doc["contents"]["d/hello.txt"].as_str().unwrap());
    // Not for anyone else, the sender included.
    assert!(sealed::open(&alice, &file).is_err());
}
