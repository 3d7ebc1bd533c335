//! IxiVarUInt and IxiBytes, the wire encoding of every pqdrop field.
//!
//! Ixian's compact unsigned integer (PROTOCOL.md §3):
//! - `0..=0xF7`: one byte, the value itself;
//! - otherwise a prefix byte and the value little-endian: `0xFC` + u16,
//!   `0xFD` + u32, `0xFE` + u64.
//!
//! `0xF8..=0xFA` are the signed variant's negative prefixes and `0xFB`, `0xFF` are
//! reserved; an unsigned decoder rejects all five. The encoder always emits the
//! shortest form and the decoder rejects any other, so every value has exactly one
//! encoding (decode-then-encode is the identity, which the fuzzer checks).
//!
//! IxiBytes is `IxiVarUInt(len) || bytes`. Every length is checked against a cap
//! given by the caller *before* anything is allocated or sliced.

use crate::{Error, Result};

/// Largest value that encodes as a single byte.
pub const ONE_BYTE_MAX: u64 = 0xF7;
/// Prefix of a little-endian u16.
pub const PREFIX_U16: u8 = 0xFC;
/// Prefix of a little-endian u32.
pub const PREFIX_U32: u8 = 0xFD;
/// Prefix of a little-endian u64.
pub const PREFIX_U64: u8 = 0xFE;
/// Longest encoding of an IxiVarUInt.
pub const VARUINT_MAX_LEN: usize = 9;

/// Number of bytes `v` takes as an IxiVarUInt.
pub const fn varuint_len(v: u64) -> usize {
    if v <= ONE_BYTE_MAX {
        1
    } else if v <= u16::MAX as u64 {
        3
    } else if v <= u32::MAX as u64 {
        5
    } else {
        9
    }
}

/// Writes `v` as an IxiVarUInt into `out`, which must hold [`varuint_len`]`(v)`
/// bytes; returns the number written.
///
/// Fails with [`Error::Misuse`] when `out` is too short.
pub fn write_varuint(out: &mut [u8], v: u64) -> Result<usize> {
    let n = varuint_len(v);
    let dst = out.get_mut(..n).ok_or(Error::Misuse("buffer too small for varuint"))?;
    match n {
        1 => dst[0] = v as u8,
        3 => {
            dst[0] = PREFIX_U16;
            dst[1..].copy_from_slice(&(v as u16).to_le_bytes());
        }
        5 => {
            dst[0] = PREFIX_U32;
            dst[1..].copy_from_slice(&(v as u32).to_le_bytes());
        }
        _ => {
            dst[0] = PREFIX_U64;
            dst[1..].copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(n)
}

/// Appends `v` as an IxiVarUInt.
pub fn put_varuint(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; VARUINT_MAX_LEN];
    // The buffer is VARUINT_MAX_LEN long, which holds every encoding.
    let n = write_varuint(&mut tmp, v).unwrap_or(0);
    out.extend_from_slice(&tmp[..n]);
}

/// Appends `bytes` as IxiBytes (length-prefixed).
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varuint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// How many bytes an IxiVarUInt takes, from its first byte alone (so that a
/// stream reader knows how much more to read); reserved prefixes are refused.
pub fn varuint_len_from_first(first: u8) -> Result<usize> {
    match first {
        b if u64::from(b) <= ONE_BYTE_MAX => Ok(1),
        PREFIX_U16 => Ok(3),
        PREFIX_U32 => Ok(5),
        PREFIX_U64 => Ok(9),
        0xF8..=0xFA => Err(Error::Decode { what: "varuint", why: "signed (negative) prefix in an unsigned field" }),
        _ => Err(Error::Decode { what: "varuint", why: "reserved prefix byte" }),
    }
}

/// Outcome of decoding a varuint from a buffer that may be incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial<T> {
    /// Decoded; the value and the number of bytes it took.
    Done(T, usize),
    /// The buffer ends before the encoding does; read more.
    NeedMore,
}

/// Decodes one IxiVarUInt from the start of `buf`, which may be incomplete
/// (for streaming frame decoders). Rejects reserved prefixes and non-minimal forms.
pub fn decode_varuint_partial(buf: &[u8]) -> Result<Partial<u64>> {
    let Some(&first) = buf.first() else {
        return Ok(Partial::NeedMore);
    };
    let (width, min) = match first {
        b if u64::from(b) <= ONE_BYTE_MAX => return Ok(Partial::Done(u64::from(b), 1)),
        PREFIX_U16 => (2usize, ONE_BYTE_MAX + 1),
        PREFIX_U32 => (4, u64::from(u16::MAX) + 1),
        PREFIX_U64 => (8, u64::from(u32::MAX) + 1),
        0xF8..=0xFA => return Err(Error::Decode { what: "varuint", why: "signed (negative) prefix in an unsigned field" }),
        _ => return Err(Error::Decode { what: "varuint", why: "reserved prefix byte" }),
    };
    let Some(body) = buf.get(1..1 + width) else {
        return Ok(Partial::NeedMore);
    };
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(body);
    let v = u64::from_le_bytes(le);
    if v < min {
        return Err(Error::Decode { what: "varuint", why: "non-minimal encoding" });
    }
    Ok(Partial::Done(v, 1 + width))
}

/// A cursor over a borrowed, complete message body. Reads are checked; nothing
/// indexes peer data directly.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reads one IxiVarUInt.
    pub fn varuint(&mut self, what: &'static str) -> Result<u64> {
        match decode_varuint_partial(self.buf).map_err(|e| relabel(e, what))? {
            Partial::Done(v, n) => {
                self.buf = &self.buf[n..];
                Ok(v)
            }
            Partial::NeedMore => Err(Error::Decode { what, why: "truncated varuint" }),
        }
    }

    /// Reads `n` raw bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(Error::Decode { what, why: "truncated" })?;
        self.buf = tail;
        Ok(head)
    }

    /// Reads IxiBytes whose length must not exceed `cap`. The cap is checked
    /// before the length is used for anything.
    pub fn bytes(&mut self, what: &'static str, cap: usize) -> Result<&'a [u8]> {
        let len = self.varuint(what)?;
        if len > cap as u64 {
            return Err(Error::TooLarge { what, len, cap: cap as u64 });
        }
        // len <= cap, which is a usize, so the cast is lossless.
        self.take(len as usize, what)
    }

    /// Reads IxiBytes that must be exactly `N` bytes long.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.bytes(what, N)?;
        b.try_into().map_err(|_| Error::Decode { what, why: "wrong fixed length" })
    }

    /// Succeeds only if every byte has been read ("parse, don't validate":
    /// trailing bytes are an error, so each message has one encoding).
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Decode { what, why: "trailing bytes" })
        }
    }
}

fn relabel(e: Error, what: &'static str) -> Error {
    match e {
        Error::Decode { why, .. } => Error::Decode { what, why },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        put_varuint(&mut o, v);
        o
    }

    #[test]
    fn ixian_examples() {
        assert_eq!(enc(100), [0x64]);
        assert_eq!(enc(1000), [0xFC, 0xE8, 0x03]);
        assert_eq!(enc(1568), [0xFC, 0x20, 0x06]);
        assert_eq!(Reader::new(&[0xFC, 0x20, 0x06]).varuint("x"), Ok(1568));
    }

    #[test]
    fn boundaries() {
        for (v, len) in [(0u64, 1), (0xF7, 1), (0xF8, 3), (0xFFFF, 3), (0x1_0000, 5), (u32::MAX as u64, 5), (1 << 32, 9), (u64::MAX, 9)] {
            let e = enc(v);
            assert_eq!(e.len(), len, "{v}");
            assert_eq!(varuint_len(v), len);
            let mut r = Reader::new(&e);
            assert_eq!(r.varuint("x"), Ok(v));
            assert!(r.finish("x").is_ok());
        }
    }

    #[test]
    fn rejects_reserved_and_signed_prefixes() {
        for p in [0xF8u8, 0xF9, 0xFA, 0xFB, 0xFF] {
            let buf = [p, 1, 0, 0, 0, 0, 0, 0, 0];
            assert!(matches!(Reader::new(&buf).varuint("x"), Err(Error::Decode { .. })), "{p:#x}");
        }
    }

    #[test]
    fn rejects_non_minimal() {
        assert!(Reader::new(&[0xFC, 0x05, 0x00]).varuint("x").is_err());
        assert!(Reader::new(&[0xFC, 0xF7, 0x00]).varuint("x").is_err());
        assert!(Reader::new(&[0xFD, 0xFF, 0xFF, 0, 0]).varuint("x").is_err());
        assert!(Reader::new(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]).varuint("x").is_err());
        assert_eq!(Reader::new(&[0xFC, 0xF8, 0x00]).varuint("x"), Ok(0xF8));
    }

    #[test]
    fn truncation_is_need_more_or_error() {
        assert_eq!(decode_varuint_partial(&[]), Ok(Partial::NeedMore));
        assert_eq!(decode_varuint_partial(&[0xFD, 1, 2]), Ok(Partial::NeedMore));
        assert!(Reader::new(&[0xFD, 1, 2]).varuint("x").is_err());
    }

    #[test]
    fn bytes_cap_checked_before_use() {
        // Claims 2^40 bytes with only 2 present: must be TooLarge, not a panic or allocation.
        let mut buf = Vec::new();
        put_varuint(&mut buf, 1 << 40);
        buf.extend_from_slice(b"ab");
        assert!(matches!(Reader::new(&buf).bytes("f", 1024), Err(Error::TooLarge { len, .. }) if len == 1 << 40));
        // Within the cap but truncated.
        let mut buf = Vec::new();
        put_varuint(&mut buf, 10);
        buf.extend_from_slice(b"ab");
        assert!(matches!(Reader::new(&buf).bytes("f", 1024), Err(Error::Decode { .. })));
    }

    #[test]
    fn array_requires_exact_length() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, &[7u8; 31]);
        assert!(Reader::new(&buf).array::<32>("a").is_err());
        let mut buf = Vec::new();
        put_bytes(&mut buf, &[7u8; 32]);
        assert_eq!(Reader::new(&buf).array::<32>("a"), Ok([7u8; 32]));
    }

    proptest! {
        #[test]
        fn varuint_round_trip(v in any::<u64>()) {
            let e = enc(v);
            let mut r = Reader::new(&e);
            prop_assert_eq!(r.varuint("x"), Ok(v));
            prop_assert!(r.finish("x").is_ok());
        }

        #[test]
        fn bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut e = Vec::new();
            put_bytes(&mut e, &data);
            let mut r = Reader::new(&e);
            prop_assert_eq!(r.bytes("b", 600), Ok(&data[..]));
            prop_assert!(r.finish("b").is_ok());
        }

        #[test]
        fn decode_is_canonical(buf in proptest::collection::vec(any::<u8>(), 0..12)) {
            // Whatever decodes must re-encode to exactly the bytes it consumed.
            if let Ok(Partial::Done(v, n)) = decode_varuint_partial(&buf) {
                prop_assert_eq!(&enc(v)[..], &buf[..n]);
            }
        }
    }
}
