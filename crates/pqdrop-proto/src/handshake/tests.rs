//! In-memory pair tests of the handshake: no sockets, just byte buffers.

use super::*;
use crate::msg::parse_frame_header;
use rand_core::OsRng;

const ALL: u64 = Capabilities::AES_256_GCM | Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME | Capabilities::ZSTD;

fn config<'a>(pw: &'a [u8], caps: u64) -> Config<'a> {
    Config { password: pw, nameplate: "7", capabilities: Capabilities(caps) }
}

/// Moves bytes between the two sides until neither has anything to say.
/// Returns the first error of each side. `tamper` may edit each flight.
fn drive(r: &mut Handshake, a: &mut Handshake, mut tamper: impl FnMut(usize, &mut Vec<u8>)) -> (Result<()>, Result<()>) {
    let (mut re, mut ae) = (Ok(()), Ok(()));
    let mut flight = 0;
    for _ in 0..8 {
        let mut progressed = false;
        if let Some(mut out) = r.poll_transmit() {
            tamper(flight, &mut out);
            flight += 1;
            progressed = true;
            if ae.is_ok() {
                ae = a.handle_input(&out).map(|_| ());
            }
        }
        if let Some(mut out) = a.poll_transmit() {
            tamper(flight, &mut out);
            flight += 1;
            progressed = true;
            if re.is_ok() {
                re = r.handle_input(&out).map(|_| ());
            }
        }
        if !progressed {
            break;
        }
    }
    (re, ae)
}

fn pair(rpw: &[u8], apw: &[u8], rcaps: u64, acaps: u64) -> (Handshake, Handshake) {
    let r = Handshake::requester(config(rpw, rcaps), &mut OsRng).unwrap();
    let a = Handshake::accepter(config(apw, acaps), &mut OsRng).unwrap();
    (r, a)
}

#[test]
fn same_code_completes_with_matching_keys() {
    let (mut r, mut a) = pair(b"ocean-tiger", b"ocean-tiger", ALL, ALL);
    assert_eq!(r.status(), HandshakeStatus(0));
    let (re, ae) = drive(&mut r, &mut a, |_, _| {});
    assert_eq!((re, ae), (Ok(()), Ok(())));
    assert!(r.is_complete() && a.is_complete());
    assert_eq!((r.status(), a.status()), (HandshakeStatus(3), HandshakeStatus(3)));
    let mut rs = r.into_session().unwrap();
    let mut as_ = a.into_session().unwrap();
    assert_eq!(rs.transcript_hash, as_.transcript_hash);
    assert_eq!(&rs.exporter[..], &as_.exporter[..]);
    assert_eq!(rs.agreed.cipher, crate::msg::DataCipher::Aes256Gcm);
    assert!(rs.agreed.resume && rs.agreed.zstd);
    // Records flow both ways, and each direction has its own keys.
    for (s, o) in [(&mut rs.sealer, &mut as_.opener), (&mut as_.sealer, &mut rs.opener)] {
        let mut f = Vec::new();
        s.seal_to_vec(b"payload", false, &mut f).unwrap();
        let h = parse_frame_header(&f).unwrap().unwrap();
        let mut body = f[h.header_len..].to_vec();
        let n = o.open(h.msg_type, &mut body).unwrap();
        assert_eq!(&body[..n], b"payload");
    }
    let mut f = Vec::new();
    rs.sealer.seal_to_vec(b"loop", false, &mut f).unwrap();
    let h = parse_frame_header(&f).unwrap().unwrap();
    assert_eq!(rs.opener.open(h.msg_type, &mut f[h.header_len..].to_vec()), Err(Error::BadRecord), "a side cannot open its own records");
}

#[test]
fn status_goes_0_to_3() {
    let (mut r, mut a) = pair(b"a-b", b"a-b", 0, 0);
    let req = r.poll_transmit().unwrap();
    assert_eq!(r.status(), HandshakeStatus(0));
    a.handle_input(&req).unwrap();
    assert_eq!(a.status(), HandshakeStatus(1));
    let acc = a.poll_transmit().unwrap();
    r.handle_input(&acc).unwrap();
    assert_eq!(r.status(), HandshakeStatus(2));
    let keys2_and_confirm = r.poll_transmit().unwrap();
    a.handle_input(&keys2_and_confirm).unwrap();
    assert_eq!(a.status(), HandshakeStatus(3));
    let confirm = a.poll_transmit().unwrap();
    assert_eq!(r.status(), HandshakeStatus(2));
    r.handle_input(&confirm).unwrap();
    assert_eq!(r.status(), HandshakeStatus(3));
    assert_eq!(r.into_session().unwrap().agreed.cipher, crate::msg::DataCipher::ChaCha20Poly1305);
}

#[test]
fn wrong_code_fails_on_both_sides_at_confirmation() {
    let (mut r, mut a) = pair(b"ocean-tiger", b"ocean-tigers", ALL, ALL);
    let (re, ae) = drive(&mut r, &mut a, |_, _| {});
    assert_eq!(ae, Err(Error::WrongCode));
    assert_eq!(re, Err(Error::WrongCode));
    assert!(!r.is_complete() && !a.is_complete());
    assert!(a.into_session().is_err());
    // A failed handshake refuses further input: the code cannot be retried against it.
    assert!(r.handle_input(&[40]).is_err());
}

#[test]
fn different_nameplate_fails() {
    let mut r =
        Handshake::requester(Config { password: b"a-b", nameplate: "7", capabilities: Capabilities::DEFAULTS }, &mut OsRng).unwrap();
    let mut a = Handshake::accepter(Config { password: b"a-b", nameplate: "8", capabilities: Capabilities::DEFAULTS }, &mut OsRng).unwrap();
    let (re, ae) = drive(&mut r, &mut a, |_, _| {});
    assert_eq!((re, ae), (Err(Error::WrongCode), Err(Error::WrongCode)));
}

/// Flipping any bit of any handshake flight makes the handshake fail.
#[test]
fn any_flipped_byte_fails() {
    // Flights: 0 requestAdd2, 1 acceptAdd2, 2 keys2+confirm, 3 confirm.
    let mut lens = Vec::new();
    {
        let (mut r, mut a) = pair(b"a-b", b"a-b", ALL, ALL);
        let (re, ae) = drive(&mut r, &mut a, |_, out| lens.push(out.len()));
        assert_eq!((re, ae), (Ok(()), Ok(())));
    }
    assert_eq!(lens.len(), 4);
    for (flight, &len) in lens.iter().enumerate() {
        // Every byte of the small flights, a spread of bytes of the large ones.
        let step = if len > 200 { 7 } else { 1 };
        for i in (0..len).step_by(step) {
            let (mut r, mut a) = pair(b"a-b", b"a-b", ALL, ALL);
            let (re, ae) = drive(&mut r, &mut a, |f, out| {
                if f == flight {
                    out[i] ^= 0x01;
                }
            });
            assert!(
                re.is_err() || ae.is_err() || !(r.is_complete() && a.is_complete()),
                "flight {flight} byte {i}: handshake survived tampering"
            );
            assert!(!(r.is_complete() && a.is_complete()), "flight {flight} byte {i}");
        }
    }
}

#[test]
fn low_order_cpace_value_is_rejected() {
    let (mut r, mut a) = pair(b"a-b", b"a-b", 0, 0);
    let req = r.poll_transmit().unwrap();
    a.handle_input(&req).unwrap();
    let acc = a.poll_transmit().unwrap();
    let h = parse_frame_header(&acc).unwrap().unwrap();
    let Message::AcceptAdd2(mut m) = Message::decode(h.msg_type, &acc[h.header_len..]).unwrap() else { panic!() };
    m.ecdh_pub_key = [0u8; 32];
    let mut forged = Vec::new();
    Message::AcceptAdd2(m).encode_frame(&mut forged);
    assert!(matches!(r.handle_input(&forged), Err(Error::InvalidPublicValue(_))));
    // It tells the peer why.
    let abort = r.poll_transmit().unwrap();
    assert_eq!(abort[0], 44);
}

#[test]
fn version_negotiation() {
    // A requester from the future (version 9) is answered with our version.
    let mut a = Handshake::accepter(config(b"a-b", 0), &mut OsRng).unwrap();
    let mut f = Vec::new();
    Message::RequestAdd2(RequestAdd2 { version: 9, nonce: [1; 32] }).encode_frame(&mut f);
    a.handle_input(&f).unwrap();
    let acc = a.poll_transmit().unwrap();
    let h = parse_frame_header(&acc).unwrap().unwrap();
    let Message::AcceptAdd2(m) = Message::decode(h.msg_type, &acc[h.header_len..]).unwrap() else { panic!() };
    assert_eq!(m.version, PROTOCOL_VERSION);
    // Version 0 is refused with a clear error and an abort.
    let mut a = Handshake::accepter(config(b"a-b", 0), &mut OsRng).unwrap();
    let mut f = Vec::new();
    Message::RequestAdd2(RequestAdd2 { version: 0, nonce: [1; 32] }).encode_frame(&mut f);
    assert!(matches!(a.handle_input(&f), Err(Error::IncompatibleVersion { peer: 0, .. })));
    assert_eq!(a.poll_transmit().unwrap()[0], 44);
}

#[test]
fn records_after_handshake_are_left_unconsumed() {
    let (mut r, mut a) = pair(b"a-b", b"a-b", 0, 0);
    a.handle_input(&r.poll_transmit().unwrap()).unwrap();
    r.handle_input(&a.poll_transmit().unwrap()).unwrap();
    a.handle_input(&r.poll_transmit().unwrap()).unwrap();
    let mut flight = a.poll_transmit().unwrap();
    let confirm_len = flight.len();
    let mut asess = a.into_session().unwrap();
    asess.sealer.seal_to_vec(b"first data", false, &mut flight).unwrap();
    // Delivered one byte at a time, the handshake stops exactly at the confirm.
    let mut used = 0;
    for i in 0..flight.len() {
        if r.is_complete() {
            break;
        }
        used += r.handle_input(&flight[i..i + 1]).unwrap();
    }
    assert_eq!(used, confirm_len);
    let mut rsess = r.into_session().unwrap();
    let rest = &flight[confirm_len..];
    let h = parse_frame_header(rest).unwrap().unwrap();
    let mut body = rest[h.header_len..].to_vec();
    let n = rsess.opener.open(h.msg_type, &mut body).unwrap();
    assert_eq!(&body[..n], b"first data");
}

#[test]
fn records_during_handshake_are_refused_without_buffering() {
    let mut a = Handshake::accepter(config(b"a-b", 0), &mut OsRng).unwrap();
    // A record header claiming 1 MiB must be refused at the header.
    let mut f = vec![50u8];
    crate::codec::put_varuint(&mut f, 1 << 20);
    assert!(matches!(a.handle_input(&f), Err(Error::UnexpectedMessage(_))));
}

#[test]
fn out_of_order_messages_are_refused() {
    let mut a = Handshake::accepter(config(b"a-b", 0), &mut OsRng).unwrap();
    let mut f = Vec::new();
    Message::Confirm([0; 32]).encode_frame(&mut f);
    assert!(matches!(a.handle_input(&f), Err(Error::UnexpectedMessage(_))));
}

#[test]
fn arbitrary_input_never_panics() {
    use proptest::prelude::*;
    proptest!(ProptestConfig::with_cases(64), |(data in proptest::collection::vec(any::<u8>(), 0..3000), role in any::<bool>())| {
        let mut hs = if role {
            Handshake::accepter(config(b"a-b", 0), &mut OsRng).unwrap()
        } else {
            Handshake::requester(config(b"a-b", 0), &mut OsRng).unwrap()
        };
        let _ = hs.handle_input(&data);
        prop_assert!(!hs.is_complete());
    });
}

#[test]
fn a_wrong_code_abort_before_any_key_confirmation_is_not_a_wrong_code() {
    let mut abort = Vec::new();
    Message::Abort(AbortReason::KEY_CONFIRMATION).encode_frame(&mut abort);
    // The accepter never gets a legitimate abort(1): the requester checks the
    // accepter's tag only after the accepter finished.
    let mut a = Handshake::accepter(config(b"a-b", 0), &mut OsRng).unwrap();
    assert!(matches!(a.handle_input(&abort), Err(Error::UnexpectedMessage(_))));
    // The requester, before it sent its key share.
    let mut r = Handshake::requester(config(b"a-b", 0), &mut OsRng).unwrap();
    let _ = r.poll_transmit();
    assert!(matches!(r.handle_input(&abort), Err(Error::UnexpectedMessage(_))));
    // After keys2 and its tag, abort(1) is the accepter saying the code differs.
    let (mut r, mut a) = pair(b"a-b", b"a-c", 0, 0);
    a.handle_input(&r.poll_transmit().unwrap()).unwrap();
    r.handle_input(&a.poll_transmit().unwrap()).unwrap();
    assert_eq!(a.handle_input(&r.poll_transmit().unwrap()), Err(Error::WrongCode));
    assert_eq!(r.handle_input(&a.poll_transmit().unwrap()), Err(Error::WrongCode));
}
