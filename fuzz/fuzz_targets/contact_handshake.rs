//! The contact handshake (PROTOCOL.md §13.7) under hostile input.
//!
//! - mode % 3 == 0 / 1: arbitrary peer bytes, in arbitrary chunks, fed to a
//!   fresh responder / initiator;
//! - mode % 3 == 2: a genuine initiator <-> responder run in which the
//!   fuzzer XORs bytes of the flights in flight.
//!
//! Properties: nothing panics; an error is final; arbitrary input never
//! completes a handshake; with a tampered flight the two sides never both
//! complete.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pqdrop_fuzz::{Cursor, DetRng};
use pqdrop_proto::handshake::contact::ContactHandshake;
use pqdrop_proto::identity::Identity;
use pqdrop_proto::keys::Seed;
use pqdrop_proto::msg::Capabilities;

fn ids() -> &'static (Identity, Identity) {
    static IDS: OnceLock<(Identity, Identity)> = OnceLock::new();
    IDS.get_or_init(|| (Identity::from_seed(Seed::from_bytes([1; 32])).unwrap(), Identity::from_seed(Seed::from_bytes([2; 32])).unwrap()))
}

fn feed(hs: &mut ContactHandshake<'_>, mut bytes: &[u8], c: &mut Cursor<'_>) -> bool {
    while !bytes.is_empty() {
        let n = (usize::from(c.u8()) * 16 + 1).min(bytes.len());
        match hs.handle_input(&bytes[..n]) {
            Ok(used) => {
                assert!(used <= n);
                if hs.is_complete() {
                    return true;
                }
                bytes = &bytes[n..];
            }
            Err(_) => {
                let _ = hs.poll_transmit();
                assert!(hs.handle_input(b"\x2b").is_err(), "an error is final");
                return false;
            }
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let (alice, bob) = ids();
    let mut c = Cursor::new(data);
    let mode = c.u8();
    let caps = Capabilities(u64::from(c.u16()));
    match mode % 3 {
        0 => {
            let mut r = ContactHandshake::responder(bob, vec![alice.public().clone()], caps, &mut DetRng::new(b"r")).unwrap();
            let junk = c.rest().to_vec();
            feed(&mut r, &junk, &mut Cursor::new(&junk));
            assert!(!r.is_complete(), "arbitrary input completed a responder");
        }
        1 => {
            let mut i = ContactHandshake::initiator(alice, bob.public(), caps, &mut DetRng::new(b"i")).unwrap();
            let _ = i.poll_transmit();
            let junk = c.rest().to_vec();
            feed(&mut i, &junk, &mut Cursor::new(&junk));
            assert!(!i.is_complete(), "arbitrary input completed an initiator");
        }
        _ => {
            let mut i = ContactHandshake::initiator(alice, bob.public(), caps, &mut DetRng::new(b"i")).unwrap();
            let mut r = ContactHandshake::responder(bob, vec![alice.public().clone()], caps, &mut DetRng::new(b"r")).unwrap();
            let mut tampered = false;
            for turn in 0..3 {
                let side_out = if turn % 2 == 0 { i.poll_transmit() } else { r.poll_transmit() };
                let Some(mut flight) = side_out else { break };
                let at = usize::from(c.u16());
                let x = c.u8();
                if x != 0 && at < flight.len() {
                    flight[at] ^= x;
                    tampered = true;
                }
                let to = if turn % 2 == 0 { &mut r } else { &mut i };
                if !feed(to, &flight, &mut c) {
                    break;
                }
            }
            if tampered {
                assert!(!(i.is_complete() && r.is_complete()), "a tampered flight went unnoticed");
            }
        }
    }
});
