//! The record layer: arbitrary frames, and genuine records that are replayed,
//! reordered, flag-flipped or corrupted, fed to a `RecordOpener`.
//!
//! Oracle: the opener accepts a frame exactly when it is the genuine record
//! for the next counter (with its true final flag); a failure changes nothing;
//! after the final record everything is `StreamClosed`. Nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_fuzz::Cursor;
use pqdrop_proto::msg::{parse_frame_header, DataCipher, MsgType};
use pqdrop_proto::record::{RecordCipher, RecordOpener, MAX_OVERHEAD, RECORD_HEADROOM};
use pqdrop_proto::Error;
use zeroize::Zeroizing;

fn seal(c: &RecordCipher, counter: u64, last: bool, pt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; RECORD_HEADROOM + pt.len() + MAX_OVERHEAD];
    buf[RECORD_HEADROOM..RECORD_HEADROOM + pt.len()].copy_from_slice(pt);
    let r = pqdrop_proto::testing::seal_at(&c, counter, last, &mut buf, pt.len()).expect("seal");
    buf[r].to_vec()
}

struct Model {
    next: u64,
    finished: bool,
}

/// Feeds one frame through header parsing and the opener; checks the oracle.
fn deliver(o: &mut RecordOpener, reference: &RecordCipher, m: &mut Model, frame: &[u8]) {
    let Ok(Some(h)) = parse_frame_header(frame) else { return };
    let Some(body) = frame.get(h.header_len..h.frame_len()) else { return };
    let mut body = body.to_vec();
    let res = o.open(h.msg_type, &mut body);
    if m.finished {
        assert_eq!(res, Err(Error::StreamClosed));
        return;
    }
    match res {
        Ok(n) => {
            let last = h.msg_type == MsgType::RECORD_FINAL;
            assert!(n <= body.len());
            // The only frame that may open: the genuine record for this counter.
            let genuine = seal(reference, m.next, last, &body[..n]);
            assert_eq!(genuine, &frame[..h.frame_len()], "a non-genuine record was accepted at counter {}", m.next);
            m.next += 1;
            m.finished = last;
            assert_eq!(o.is_finished(), last);
        }
        Err(e) => {
            assert!(matches!(e, Error::BadRecord | Error::UnexpectedMessage(_)), "{e:?}");
            assert!(!o.is_finished());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let kind = match c.u8() % 3 {
        0 => DataCipher::Aes256Gcm,
        1 => DataCipher::ChaCha20Poly1305,
        _ => DataCipher::Cascade,
    };
    // Fixed keys: the oracle uses a second cipher with the same keys to make genuine records.
    let (aes, chacha) = (Zeroizing::new([0x11u8; 32]), Zeroizing::new([0x22u8; 32]));
    let reference = RecordCipher::new(kind, &aes, &chacha).expect("cipher");
    let mut opener = RecordOpener::new(RecordCipher::new(kind, &aes, &chacha).expect("cipher"));
    let mut model = Model { next: 0, finished: false };

    for _ in 0..64 {
        if c.is_empty() {
            break;
        }
        let op = c.u8();
        match op % 4 {
            // A genuine record near the expected counter, maybe with the flag
            // flipped in the header or one body byte corrupted.
            0 | 1 => {
                let delta = u64::from(op >> 2 & 3);
                let counter = model.next.wrapping_add(delta).wrapping_sub(1);
                let last = op & 0x10 != 0;
                let pt_len = usize::from(c.u8());
                let pt = c.take(pt_len);
                let mut frame = seal(&reference, counter, last, pt);
                if op & 0x20 != 0 {
                    frame[0] ^= 1; // 50 <-> 51
                }
                if op & 0x40 != 0 {
                    let pos = usize::from(c.u16());
                    let hdr = parse_frame_header(&frame).unwrap().unwrap().header_len;
                    let i = hdr + pos % (frame.len() - hdr);
                    frame[i] ^= c.u8() | 1;
                }
                deliver(&mut opener, &reference, &mut model, &frame);
            }
            // Raw bytes as a frame.
            2 => {
                let n = usize::from(c.u8());
                let frame = c.take(n).to_vec();
                deliver(&mut opener, &reference, &mut model, &frame);
            }
            // Sealing into an arbitrary buffer: an error or a valid frame, never a panic.
            _ => {
                let len = usize::from(c.u8() % 80);
                let pt_len = usize::from(c.u8() % 80);
                let mut buf = vec![0u8; len];
                let last = op & 0x10 != 0;
                match pqdrop_proto::testing::seal_at(&reference, model.next, last, &mut buf, pt_len) {
                    Ok(r) => {
                        assert!(r.end <= buf.len());
                        let frame = buf[r].to_vec();
                        let before = model.next;
                        deliver(&mut opener, &reference, &mut model, &frame);
                        assert!(model.finished || model.next == before + 1, "a genuine record was refused");
                    }
                    Err(e) => assert!(matches!(e, Error::Misuse(_)), "{e:?}"),
                }
            }
        }
    }
});
