//! Contact books, public identities, link messages and sealed-file headers
//! from hostile bytes (PROTOCOL.md §13.4 to §13.6): nothing panics or
//! allocates without bound, a book that decodes re-encodes to the same
//! contacts, and a header not made for this identity never opens.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pqdrop_proto::contacts::{open_book, seal_book_with, seal_plaintext};
use pqdrop_proto::identity::{open_link_seed, parse_link_request, Identity, PublicIdentity};
use pqdrop_proto::keys::Seed;

fn me() -> &'static Identity {
    static ME: OnceLock<Identity> = OnceLock::new();
    ME.get_or_init(|| Identity::from_seed(Seed::from_bytes([7; 32])).expect("identity"))
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, data)) = input.split_first() else { return };
    let ikm = me().keys().state_ikm.as_bytes();
    match which % 4 {
        // A book body behind a valid tag: the decoder itself.
        0 => {
            let file = seal_plaintext(data, ikm, [1; 12]).expect("seal");
            if let Ok(book) = open_book(&file, ikm) {
                let again = open_book(&seal_book_with(&book, ikm, [2; 12]).expect("seal"), ikm).expect("reopen");
                assert_eq!(again, book);
            }
        }
        // A whole file: the header checks, then the tag.
        1 => assert!(open_book(data, ikm).is_err(), "a forged tag under a key only we hold"),
        // A peer's public identity, and link messages.
        2 => {
            if let Ok(p) = PublicIdentity::from_bytes(data) {
                assert_eq!(PublicIdentity::from_bytes(&p.to_bytes()).as_ref(), Ok(&p));
            }
            let _ = parse_link_request(data);
            let _ = open_link_seed(data, &[3; 32], &[4; 32]);
        }
        // A sealed-file header: only one made for `me` opens.
        _ => {
            let _ = pqdrop_proto::sealed::open(me(), data);
        }
    }
});
