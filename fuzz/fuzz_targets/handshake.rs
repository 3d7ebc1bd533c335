//! The handshake state machine under hostile input.
//!
//! Input layout: `mode`, then mode-specific decisions (see `Cursor`).
//! - mode % 4 == 0 / 1: arbitrary peer bytes, in arbitrary chunks, fed to a
//!   fresh accepter / requester;
//! - mode % 4 == 2: a genuine requester <-> accepter run in which the fuzzer
//!   XORs bytes of the flights in flight;
//! - mode % 4 == 3: a genuine run in which one flight is replaced by
//!   arbitrary bytes (reaching the later states with hostile input).
//!
//! Bit 7 of `mode` selects the KEM: the deterministic RustCrypto ML-KEM-768
//! (reproducible byte for byte) or production aws-lc-rs ML-KEM-768, which
//! draws its own randomness (so a crash input reproduces the same path but
//! not the same bytes).
//!
//! Properties: nothing panics; an error is final (further input is refused,
//! and the only thing left to send is one well-formed abort); whatever a side
//! sends decodes; arbitrary input never completes a handshake; a side that
//! completes has consumed exactly the bytes its peer sent (so no tampered
//! byte was accepted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_fuzz::{Cursor, DetMlKem, DetRng};
use pqdrop_proto::handshake::{Config, Handshake, Kem, MlKem768};
use pqdrop_proto::msg::{parse_frame_header, Capabilities, Message, MsgType};
use pqdrop_proto::Result;

const PASSWORD: &[u8] = b"ocean-tiger";

fn config(caps: u8) -> Config<'static> {
    Config { password: PASSWORD, nameplate: "7", capabilities: Capabilities(u64::from(caps)) }
}

/// Every frame a side emits is a well-formed handshake message.
fn check_output(out: &[u8]) -> Vec<MsgType> {
    let mut types = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let h = parse_frame_header(rest).expect("own output has a valid header").expect("own output is complete");
        let frame = &rest[..h.frame_len()];
        let m = Message::decode(h.msg_type, &frame[h.header_len..]).expect("own output decodes");
        let mut again = Vec::new();
        m.encode_frame(&mut again);
        assert_eq!(again, frame);
        types.push(h.msg_type);
        rest = &rest[h.frame_len()..];
    }
    types
}

/// Feeds `bytes` in chunks whose sizes come from `sched` (a 0 byte, or the
/// end of the schedule, means "all the rest"). Returns the number of bytes
/// consumed, or the error; checks that errors are final.
fn feed<K: Kem>(hs: &mut Handshake<K>, bytes: &[u8], sched: &mut Cursor<'_>) -> Result<usize> {
    let mut off = 0;
    while off < bytes.len() {
        let n = match sched.u8() {
            0 => bytes.len() - off,
            b => usize::from(b).min(bytes.len() - off),
        };
        match hs.handle_input(&bytes[off..off + n]) {
            Ok(used) => {
                assert!(used <= n);
                off += used;
                if used < n || hs.is_complete() {
                    assert!(hs.is_complete(), "input left unconsumed before completion");
                    return Ok(off);
                }
            }
            Err(e) => {
                assert!(!hs.is_complete());
                if let Some(out) = hs.poll_transmit() {
                    assert_eq!(check_output(&out), [MsgType::ABORT], "after an error only an abort may be sent");
                }
                assert!(hs.handle_input(&[40, 0]).is_err(), "a failed handshake accepted more input");
                assert!(hs.poll_transmit().is_none());
                return Err(e);
            }
        }
    }
    Ok(off)
}

/// Mode 0 / 1: arbitrary bytes from the "peer".
fn arbitrary_peer<K: Kem>(c: &mut Cursor<'_>, accepter: bool, mut kem: impl FnMut(&str) -> K) {
    let caps = c.u8();
    let mut rng = DetRng::new(if accepter { "fuzz accepter" } else { "fuzz requester" });
    let mut hs = if accepter {
        Handshake::accepter_with_kem(config(caps), kem("fuzz accepter-kem"), &mut rng).expect("accepter")
    } else {
        let mut hs = Handshake::requester_with_kem(config(caps), kem("fuzz requester-kem"), &mut rng).expect("requester");
        let first = hs.poll_transmit().expect("requestAdd2");
        assert_eq!(check_output(&first), [MsgType::REQUEST_ADD2]);
        hs
    };
    let sched_len = usize::from(c.u8() % 16);
    let mut sched = Cursor::new(c.take(sched_len));
    let input = c.rest();
    let res = feed(&mut hs, input, &mut sched);
    assert!(!hs.is_complete(), "arbitrary input completed a handshake");
    if let Ok(n) = res {
        assert_eq!(n, input.len());
        if let Some(out) = hs.poll_transmit() {
            check_output(&out);
        }
    }
}

/// One delivered flight: what the sender emitted, what arrived, how much of it
/// the receiver consumed.
struct Flight {
    sent: Vec<u8>,
    delivered: Vec<u8>,
    consumed: usize,
}

impl Flight {
    /// The receiver took exactly what was sent.
    fn intact(&self) -> bool {
        self.consumed == self.sent.len() && self.delivered.get(..self.consumed) == Some(&self.sent[..])
    }
}

/// Modes 2 and 3: a genuine run with `edit` applied to every flight.
fn genuine_run<K: Kem>(c: &mut Cursor<'_>, mut kem: impl FnMut(&str) -> K, mut edit: impl FnMut(usize, &mut Vec<u8>, &mut Cursor<'_>)) {
    let (rcaps, acaps) = (c.u8(), c.u8());
    let sched_len = usize::from(c.u8() % 16);
    let mut sched = Cursor::new(c.take(sched_len));
    let mut r =
        Handshake::requester_with_kem(config(rcaps), kem("fuzz requester-kem"), &mut DetRng::new("fuzz requester")).expect("requester");
    let mut a = Handshake::accepter_with_kem(config(acaps), kem("fuzz accepter-kem"), &mut DetRng::new("fuzz accepter")).expect("accepter");
    let (mut r_ok, mut a_ok) = (true, true);
    let mut flights: Vec<Flight> = Vec::new();
    for _ in 0..8 {
        let mut progressed = false;
        if let Some(sent) = r.poll_transmit() {
            check_output(&sent);
            let mut delivered = sent.clone();
            edit(flights.len(), &mut delivered, c);
            let consumed = if a_ok {
                feed(&mut a, &delivered, &mut sched).unwrap_or_else(|_| {
                    a_ok = false;
                    0
                })
            } else {
                0
            };
            flights.push(Flight { sent, delivered, consumed });
            progressed = true;
        }
        if let Some(sent) = a.poll_transmit() {
            check_output(&sent);
            let mut delivered = sent.clone();
            edit(flights.len(), &mut delivered, c);
            let consumed = if r_ok {
                feed(&mut r, &delivered, &mut sched).unwrap_or_else(|_| {
                    r_ok = false;
                    0
                })
            } else {
                0
            };
            flights.push(Flight { sent, delivered, consumed });
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    // Flights: 0 requestAdd2, 1 acceptAdd2, 2 keys2 + confirm, 3 confirm.
    if a.is_complete() {
        assert!(flights.len() >= 3 && flights[..3].iter().all(Flight::intact), "the accepter completed on tampered input");
    }
    if r.is_complete() {
        assert!(a.is_complete(), "the requester completed without the accepter");
        assert!(flights.len() >= 4 && flights[..4].iter().all(Flight::intact), "the requester completed on tampered input");
    }
    if flights.iter().all(|f| f.delivered == f.sent) {
        assert!(r.is_complete() && a.is_complete(), "an untouched run did not complete");
    }
    if r.is_complete() {
        let (rs, as_) = (r.into_session().expect("session"), a.into_session().expect("session"));
        assert_eq!(rs.transcript_hash, as_.transcript_hash);
        assert_eq!(&rs.exporter[..], &as_.exporter[..]);
        assert_eq!(rs.agreed, as_.agreed);
    }
}

fn run<K: Kem>(c: &mut Cursor<'_>, mode: u8, kem: impl FnMut(&str) -> K) {
    match mode % 4 {
        0 => arbitrary_peer(c, true, kem),
        1 => arbitrary_peer(c, false, kem),
        2 => {
            // Up to 8 XOR edits: (flight, position, mask).
            let n = usize::from(c.u8() % 9);
            let edits: Vec<(usize, usize, u8)> = (0..n).map(|_| (usize::from(c.u8() % 4), usize::from(c.u16()), c.u8())).collect();
            genuine_run(c, kem, |i, bytes, _| {
                for &(f, pos, mask) in &edits {
                    if f == i && !bytes.is_empty() {
                        let p = pos % bytes.len();
                        bytes[p] ^= mask;
                    }
                }
            });
        }
        _ => {
            let target = usize::from(c.u8() % 4);
            genuine_run(c, kem, |i, bytes, c| {
                if i == target {
                    *bytes = c.rest().to_vec();
                }
            });
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    if mode & 0x80 != 0 {
        run(&mut c, mode, |_: &str| MlKem768);
    } else {
        run(&mut c, mode, |l: &str| DetMlKem::new(l));
    }
});
