//! The record layer: STREAM-style chunked AEAD (PROTOCOL.md §7).
//!
//! Each direction has its own keys and its own 64-bit record counter, starting
//! at zero. The 12-byte nonce is the counter as an 11-byte big-endian integer
//! followed by a last-record flag byte (`0x00`, or `0x01` for the final record),
//! exactly as age does. The flag is also visible in the frame type (50 or 51),
//! but only the nonce is trusted: a flipped type makes authentication fail.
//! Consequences:
//! - a replayed, reordered or dropped record fails authentication (wrong counter);
//! - a stream cut short is detected, because no record with the final flag came;
//! - nothing is accepted after the final record.
//!
//! The counter advances only after a record authenticates, so a forged record
//! changes nothing (a lesson from snow). Encryption is in place, into buffers
//! the caller owns: no allocation per record.

use core::ops::Range;

use zeroize::Zeroizing;

use crate::msg::{write_header_before, DataCipher, MsgType, MAX_RECORD_PLAINTEXT};
use crate::primitives::{AeadAlg, AeadKey, NONCE_LEN, TAG_LEN};
use crate::{Error, Result};

/// Bytes to leave in front of the plaintext for the frame header
/// (one type byte and a varuint length of at most five bytes).
pub const RECORD_HEADROOM: usize = 6;
/// The largest per-record overhead (two tags, for the cascade).
pub const MAX_OVERHEAD: usize = 2 * TAG_LEN;

/// The keys of one direction for the agreed [`DataCipher`]. Immutable and
/// `Sync`, so several threads can encrypt records with distinct counters.
pub struct RecordCipher {
    kind: DataCipher,
    first: AeadKey,
    second: Option<AeadKey>,
}

impl core::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordCipher").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// The STREAM nonce for record `counter`.
pub(crate) fn nonce(counter: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

impl RecordCipher {
    /// Builds the cipher of one direction from its AES-256-GCM and
    /// ChaCha20-Poly1305 keys (each 32 bytes); only the ones `kind` needs are used.
    pub fn new(kind: DataCipher, aes_key: &Zeroizing<[u8; 32]>, chacha_key: &Zeroizing<[u8; 32]>) -> Result<Self> {
        let (first, second) = match kind {
            DataCipher::Aes256Gcm => (AeadKey::new(AeadAlg::Aes256Gcm, &aes_key[..])?, None),
            DataCipher::ChaCha20Poly1305 => (AeadKey::new(AeadAlg::ChaCha20Poly1305, &chacha_key[..])?, None),
            DataCipher::Cascade => {
                (AeadKey::new(AeadAlg::Aes256Gcm, &aes_key[..])?, Some(AeadKey::new(AeadAlg::ChaCha20Poly1305, &chacha_key[..])?))
            }
        };
        Ok(Self { kind, first, second })
    }

    /// The cipher in use.
    pub fn kind(&self) -> DataCipher {
        self.kind
    }

    /// Bytes each record adds to its plaintext.
    pub fn overhead(&self) -> usize {
        if self.second.is_some() {
            2 * TAG_LEN
        } else {
            TAG_LEN
        }
    }

    /// Encrypts record `counter` in place and writes its frame header in front.
    ///
    /// `buf[RECORD_HEADROOM..RECORD_HEADROOM + pt_len]` holds the plaintext and
    /// `buf` must have room for [`Self::overhead`] more bytes after it. Returns
    /// the range of `buf` that holds the finished frame.
    ///
    /// Crate-private: the counter decides the nonce, so only
    /// [`RecordSealer`] (which counts by itself) may choose it. Tests and
    /// fuzzing reach it through `testing::seal_at`.
    pub(crate) fn seal_at(&self, counter: u64, last: bool, buf: &mut [u8], pt_len: usize) -> Result<Range<usize>> {
        if pt_len > MAX_RECORD_PLAINTEXT {
            return Err(Error::Misuse("record plaintext larger than MAX_RECORD_PLAINTEXT"));
        }
        let body_len = pt_len + self.overhead();
        let end = RECORD_HEADROOM + body_len;
        if buf.len() < end {
            return Err(Error::Misuse("record buffer too small for plaintext, header and tag"));
        }
        let n = nonce(counter, last);
        let (head, rest) = buf.split_at_mut(RECORD_HEADROOM);
        let tag = self.first.seal_in_place(n, b"", &mut rest[..pt_len])?;
        rest[pt_len..pt_len + TAG_LEN].copy_from_slice(&tag);
        if let Some(outer) = &self.second {
            let tag2 = outer.seal_in_place(n, b"", &mut rest[..pt_len + TAG_LEN])?;
            rest[pt_len + TAG_LEN..pt_len + 2 * TAG_LEN].copy_from_slice(&tag2);
        }
        let t = if last { MsgType::RECORD_FINAL } else { MsgType::RECORD };
        let start = write_header_before(head, t, body_len)?;
        Ok(start..end)
    }

    /// Decrypts record `counter` (a frame body: ciphertext and tags) in place and
    /// returns the plaintext length; the plaintext is `body[..len]`.
    pub fn open_at(&self, counter: u64, last: bool, body: &mut [u8]) -> Result<usize> {
        let n = nonce(counter, last);
        let inner_len = match &self.second {
            Some(outer) => outer.open_in_place(n, b"", body)?,
            None => body.len(),
        };
        self.first.open_in_place(n, b"", &mut body[..inner_len])
    }
}

/// The sending half of a direction: a [`RecordCipher`] and the next counter.
#[derive(Debug)]
pub struct RecordSealer {
    cipher: RecordCipher,
    next: u64,
    finished: bool,
}

impl RecordSealer {
    /// A sealer starting at record 0.
    pub fn new(cipher: RecordCipher) -> Self {
        Self { cipher, next: 0, finished: false }
    }

    /// The cipher, for callers that encrypt reserved counters in parallel.
    pub fn cipher(&self) -> &RecordCipher {
        &self.cipher
    }

    /// Reserves `n` consecutive non-final counters and returns the first. Records
    /// sealed with them must be sent in counter order.
    pub fn reserve(&mut self, n: u64) -> Result<u64> {
        if self.finished {
            return Err(Error::StreamClosed);
        }
        let first = self.next;
        // Leave u64::MAX free for a final record.
        self.next = first.checked_add(n).filter(|&v| v < u64::MAX).ok_or(Error::StreamClosed)?;
        Ok(first)
    }

    /// Encrypts the next record in place; see [`RecordCipher::seal_at`] for the
    /// buffer layout. After `last = true` no more records can be sealed.
    pub fn seal(&mut self, buf: &mut [u8], pt_len: usize, last: bool) -> Result<Range<usize>> {
        if self.finished {
            return Err(Error::StreamClosed);
        }
        let range = self.cipher.seal_at(self.next, last, buf, pt_len)?;
        self.next += 1;
        self.finished = last;
        Ok(range)
    }

    /// Convenience for small control messages: seals `pt` and appends the frame to `out`.
    pub fn seal_to_vec(&mut self, pt: &[u8], last: bool, out: &mut Vec<u8>) -> Result<()> {
        let mut buf = vec![0u8; RECORD_HEADROOM + pt.len() + self.cipher.overhead()];
        buf[RECORD_HEADROOM..RECORD_HEADROOM + pt.len()].copy_from_slice(pt);
        let r = self.seal(&mut buf, pt.len(), last)?;
        out.extend_from_slice(&buf[r]);
        Ok(())
    }

    /// True once the final record was sealed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// The receiving half of a direction.
#[derive(Debug)]
pub struct RecordOpener {
    cipher: RecordCipher,
    next: u64,
    finished: bool,
}

impl RecordOpener {
    /// An opener expecting record 0.
    pub fn new(cipher: RecordCipher) -> Self {
        Self { cipher, next: 0, finished: false }
    }

    /// Decrypts the next record in place. `msg_type` is the frame type (50 or 51)
    /// and `body` the frame body. On success returns the plaintext length (the
    /// plaintext is `body[..len]`); on failure nothing changes.
    pub fn open(&mut self, msg_type: MsgType, body: &mut [u8]) -> Result<usize> {
        if self.finished {
            return Err(Error::StreamClosed);
        }
        let last = match msg_type {
            MsgType::RECORD => false,
            MsgType::RECORD_FINAL => true,
            _ => return Err(Error::UnexpectedMessage("expected an encrypted record")),
        };
        if body.len() < self.cipher.overhead() {
            return Err(Error::BadRecord);
        }
        let len = self.cipher.open_at(self.next, last, body)?;
        self.next += 1;
        self.finished = last;
        Ok(len)
    }

    /// True once the final record was received: the stream ended cleanly.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::parse_frame_header;

    fn pair(kind: DataCipher) -> (RecordSealer, RecordOpener) {
        let a = Zeroizing::new([1u8; 32]);
        let c = Zeroizing::new([2u8; 32]);
        (RecordSealer::new(RecordCipher::new(kind, &a, &c).unwrap()), RecordOpener::new(RecordCipher::new(kind, &a, &c).unwrap()))
    }

    const KINDS: [DataCipher; 3] = [DataCipher::Aes256Gcm, DataCipher::ChaCha20Poly1305, DataCipher::Cascade];

    fn seal(s: &mut RecordSealer, pt: &[u8], last: bool) -> Vec<u8> {
        let mut out = Vec::new();
        s.seal_to_vec(pt, last, &mut out).unwrap();
        out
    }

    fn open(o: &mut RecordOpener, frame: &[u8]) -> Result<Vec<u8>> {
        let h = parse_frame_header(frame)?.ok_or(Error::BadRecord)?;
        if h.frame_len() != frame.len() {
            return Err(Error::BadRecord);
        }
        let mut body = frame[h.header_len..].to_vec();
        let n = o.open(h.msg_type, &mut body)?;
        Ok(body[..n].to_vec())
    }

    #[test]
    fn round_trip_sizes_and_ciphers() {
        for kind in KINDS {
            let (mut s, mut o) = pair(kind);
            for len in [0usize, 1, 15, 16, 17, 4096, 65536, MAX_RECORD_PLAINTEXT] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                assert_eq!(open(&mut o, &seal(&mut s, &pt, false)).unwrap(), pt);
            }
            assert_eq!(open(&mut o, &seal(&mut s, b"end", true)).unwrap(), b"end");
            assert!(o.is_finished());
            assert_eq!(s.seal_to_vec(b"x", false, &mut Vec::new()), Err(Error::StreamClosed));
        }
    }

    #[test]
    fn in_place_layout() {
        let (mut s, mut o) = pair(DataCipher::Cascade);
        let mut buf = vec![0u8; RECORD_HEADROOM + 5 + MAX_OVERHEAD];
        buf[RECORD_HEADROOM..RECORD_HEADROOM + 5].copy_from_slice(b"hello");
        let r = s.seal(&mut buf, 5, false).unwrap();
        assert_eq!(r.end, RECORD_HEADROOM + 5 + 32);
        assert_eq!(open(&mut o, &buf[r]).unwrap(), b"hello");
        // Too small a buffer is an error, not a panic.
        assert!(s.seal(&mut [0u8; 8], 5, false).is_err());
    }

    #[test]
    fn replay_reorder_truncation_and_flag_flip_fail() {
        for kind in KINDS {
            let (mut s, mut o) = pair(kind);
            let r0 = seal(&mut s, b"zero", false);
            let r1 = seal(&mut s, b"one", false);
            let r2 = seal(&mut s, b"two", true);
            // Reorder: record 1 first.
            assert_eq!(open(&mut o, &r1), Err(Error::BadRecord));
            // A failure changed nothing: record 0 still opens.
            assert_eq!(open(&mut o, &r0).unwrap(), b"zero");
            // Replay of record 0.
            assert_eq!(open(&mut o, &r0), Err(Error::BadRecord));
            // Flag flip: record 1 presented as final.
            let mut flipped = r1.clone();
            flipped[0] = MsgType::RECORD_FINAL.0 as u8;
            assert_eq!(open(&mut o, &flipped), Err(Error::BadRecord));
            // Final presented as non-final (truncation attempt that hides the end).
            let mut unfinal = r2.clone();
            unfinal[0] = MsgType::RECORD.0 as u8;
            assert_eq!(open(&mut o, &r1).unwrap(), b"one");
            assert_eq!(open(&mut o, &unfinal), Err(Error::BadRecord));
            assert!(!o.is_finished(), "a stream without its final record is not finished");
            assert_eq!(open(&mut o, &r2).unwrap(), b"two");
            assert_eq!(open(&mut o, &r2), Err(Error::StreamClosed));
        }
    }

    #[test]
    fn every_bit_flip_fails() {
        let (mut s, _) = pair(DataCipher::ChaCha20Poly1305);
        let frame = seal(&mut s, b"some payload", false);
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut f = frame.clone();
                f[i] ^= 1 << bit;
                let (_, mut o) = pair(DataCipher::ChaCha20Poly1305);
                assert!(open(&mut o, &f).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn directions_and_ciphers_do_not_mix() {
        let (mut s, _) = pair(DataCipher::Aes256Gcm);
        let (_, mut o) = pair(DataCipher::ChaCha20Poly1305);
        assert_eq!(open(&mut o, &seal(&mut s, b"x", false)), Err(Error::BadRecord));
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce(0, false), [0; 12]);
        assert_eq!(nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(nonce(u64::MAX, false)[3..11], [0xFF; 8]);
    }
}
