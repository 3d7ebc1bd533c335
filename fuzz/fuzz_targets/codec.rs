//! IxiVarUInt / IxiBytes: whatever decodes re-encodes to exactly the bytes it
//! consumed (one encoding per value), and nothing panics or over-reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_proto::codec::{decode_varuint_partial, put_bytes, put_varuint, varuint_len, write_varuint, Partial, Reader, VARUINT_MAX_LEN};
use pqdrop_proto::Error;

fuzz_target!(|data: &[u8]| {
    // 1. The streaming decoder on the raw input.
    match decode_varuint_partial(data) {
        Ok(Partial::Done(v, n)) => {
            assert!(n <= data.len() && n <= VARUINT_MAX_LEN);
            assert_eq!(n, varuint_len(v));
            let mut enc = Vec::new();
            put_varuint(&mut enc, v);
            assert_eq!(enc, &data[..n], "varuint {v} decoded from a non-canonical encoding");
        }
        // Only an incomplete prefix may ask for more, and never a full-width one.
        Ok(Partial::NeedMore) => assert!(data.len() < VARUINT_MAX_LEN),
        Err(e) => assert!(matches!(e, Error::Decode { .. }), "{e:?}"),
    }

    // 2. A run of varuints through the Reader: decode as many as possible,
    //    re-encode, compare with the consumed prefix.
    let mut r = Reader::new(data);
    let mut again = Vec::new();
    while let Ok(v) = r.varuint("v") {
        put_varuint(&mut again, v);
    }
    let consumed = data.len() - r.remaining();
    assert_eq!(again, &data[..consumed]);

    // 3. IxiBytes with a cap chosen by the first byte (0..=255, or effectively
    //    unbounded), round-tripped the same way.
    let Some((&sel, rest)) = data.split_first() else { return };
    let cap = if sel == 0xFF { usize::MAX } else { usize::from(sel) };
    let mut r = Reader::new(rest);
    let mut again = Vec::new();
    loop {
        match r.bytes("b", cap) {
            Ok(b) => {
                assert!(b.len() <= cap);
                put_bytes(&mut again, b);
            }
            Err(Error::TooLarge { len, cap: c, .. }) => {
                assert!(len > c && c == cap as u64);
                break;
            }
            Err(e) => {
                assert!(matches!(e, Error::Decode { .. }), "{e:?}");
                break;
            }
        }
    }
    // Everything before the failing field round-trips.
    assert!(rest.starts_with(&again), "IxiBytes re-encode differently");

    // 4. Fixed-size arrays: exactly 32 bytes or an error.
    if let Ok(a) = Reader::new(rest).array::<32>("a") {
        let mut enc = Vec::new();
        put_bytes(&mut enc, &a);
        assert_eq!(enc, &rest[..33]);
    }

    // 5. Encoding into a too-short buffer is an error, never a panic.
    if data.len() >= 9 {
        let v = u64::from_le_bytes(data[1..9].try_into().unwrap_or_default());
        let mut buf = [0u8; VARUINT_MAX_LEN];
        let room = usize::from(data[0]) % (VARUINT_MAX_LEN + 1);
        match write_varuint(&mut buf[..room], v) {
            Ok(n) => {
                assert_eq!(n, varuint_len(v));
                assert!(n <= room);
                assert_eq!(Reader::new(&buf[..n]).varuint("w"), Ok(v));
            }
            Err(e) => {
                assert!(room < varuint_len(v));
                assert!(matches!(e, Error::Misuse(_)));
            }
        }
    }
});
