//! Frame headers and handshake messages from arbitrary bytes: no panic, the
//! caps hold, and decode -> encode is the identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_proto::codec::put_varuint;
use pqdrop_proto::msg::{parse_frame_header, Message, MsgType, MAX_HANDSHAKE_BODY, MAX_RECORD_BODY};

fn round_trip(t: MsgType, body: &[u8]) {
    if let Ok(m) = Message::decode(t, body) {
        assert_eq!(m.msg_type(), t);
        let mut again = Vec::new();
        m.encode_body(&mut again);
        assert_eq!(again, body, "{m:?} has a second encoding");
        assert!(again.len() <= MAX_HANDSHAKE_BODY);
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. As a frame on the wire.
    match parse_frame_header(data) {
        Ok(Some(h)) => {
            let cap = h.msg_type.body_cap().expect("a parsed header has a known type");
            assert!(h.body_len <= cap && cap <= MAX_RECORD_BODY);
            let mut header = Vec::new();
            put_varuint(&mut header, h.msg_type.0);
            put_varuint(&mut header, h.body_len as u64);
            assert_eq!(header, &data[..h.header_len], "non-canonical frame header accepted");
            if let Some(body) = data.get(h.header_len..h.frame_len()) {
                round_trip(h.msg_type, body);
                if let Ok(m) = Message::decode(h.msg_type, body) {
                    let mut frame = Vec::new();
                    m.encode_frame(&mut frame);
                    assert_eq!(frame, &data[..h.frame_len()]);
                }
            }
        }
        Ok(None) => {
            // Incomplete: at most a type varuint and a partial length varuint.
            assert!(data.len() < 18);
        }
        Err(_) => {}
    }

    // 2. The whole input as the body of each handshake type (reaches the field
    //    decoders without having to find a valid header first).
    if let Some((&sel, body)) = data.split_first() {
        round_trip(MsgType(40 + u64::from(sel % 6)), body);
    }
});
