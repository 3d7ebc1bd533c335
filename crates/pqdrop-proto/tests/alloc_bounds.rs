//! The decoders never allocate more than their caps allow, whatever the input
//! claims. A counting global allocator measures the peak bytes allocated while
//! decoding arbitrary (and adversarial) inputs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pqdrop_proto::codec::{put_varuint, Reader};
use pqdrop_proto::msg::{parse_frame_header, Message, MsgType, MAX_HANDSHAKE_BODY};
use pqdrop_proto::transfer::{Messages, MAX_PATH, MAX_PREVIEW};
use proptest::prelude::*;

struct Counting;

// Per thread, so tests running in parallel do not count each other's memory.
thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    if TRACKING.with(Cell::get) {
        let now = CURRENT.with(|c| {
            c.set(c.get() + size);
            c.get()
        });
        PEAK.with(|p| p.set(p.get().max(now)));
    }
}

fn on_dealloc(size: usize) {
    if TRACKING.with(Cell::get) {
        CURRENT.with(|c| c.set(c.get().saturating_sub(size)));
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_dealloc(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated while running `f`.
fn peak_of(f: impl FnOnce()) -> usize {
    CURRENT.with(|c| c.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    f();
    TRACKING.with(|t| t.set(false));
    PEAK.with(Cell::get)
}

/// Handshake messages own at most one ML-KEM key or ciphertext (1184 bytes).
const HANDSHAKE_ALLOC_CAP: usize = 2 * MAX_HANDSHAKE_BODY;
/// A transfer message owns at most a full preview (16 names of 4096 bytes)
/// plus the vector holding them, or one path.
const TRANSFER_ALLOC_CAP: usize = MAX_PREVIEW * (MAX_PATH + 64) + 4096;

fn decode_all(buf: &[u8]) {
    if let Ok(Some(h)) = parse_frame_header(buf) {
        if let Some(body) = buf.get(h.header_len..h.header_len + h.body_len) {
            let _ = Message::decode(h.msg_type, body);
        }
    }
    for t in 40..=44 {
        let _ = Message::decode(MsgType(t), buf);
    }
}

fn decode_transfer(buf: &[u8]) {
    let mut it = Messages::new(buf);
    // One message at a time: each is dropped before the next is decoded.
    while let Ok(Some(m)) = it.next() {
        drop(m);
    }
}

#[test]
fn lying_lengths_allocate_nothing_big() {
    // Claims of 2^40-byte fields, with almost no bytes behind them.
    let mut frame = Vec::new();
    put_varuint(&mut frame, 41);
    put_varuint(&mut frame, 1 << 40);
    frame.extend_from_slice(&[0xFE; 64]);
    assert!(peak_of(|| decode_all(&frame)) <= HANDSHAKE_ALLOC_CAP);

    let mut offer = Vec::new();
    for v in [1u64, 1, 0, 0, 0, u64::MAX] {
        put_varuint(&mut offer, v);
    }
    assert!(peak_of(|| decode_transfer(&offer)) <= TRANSFER_ALLOC_CAP);

    let mut bytes = Vec::new();
    put_varuint(&mut bytes, 1 << 40);
    assert!(
        peak_of(|| {
            let _ = Reader::new(&bytes).bytes("x", 1024);
        }) == 0
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn handshake_decoders_stay_under_their_cap(buf in proptest::collection::vec(any::<u8>(), 0..6000)) {
        prop_assert!(peak_of(|| decode_all(&buf)) <= HANDSHAKE_ALLOC_CAP);
    }

    #[test]
    fn transfer_decoder_stays_under_its_cap(buf in proptest::collection::vec(any::<u8>(), 0..6000)) {
        prop_assert!(peak_of(|| decode_transfer(&buf)) <= TRANSFER_ALLOC_CAP);
    }

    /// Structured inputs that reach the allocating paths: an offer whose
    /// preview count and name lengths are chosen by the test.
    #[test]
    fn offers_with_many_claimed_names_stay_under_the_cap(count in 0u64..100, len in 0u64..10_000, have in 0usize..3000) {
        let mut buf = Vec::new();
        for v in [1u64, 1, 0, 0, 0, count] {
            put_varuint(&mut buf, v);
        }
        for _ in 0..count.min(20) {
            put_varuint(&mut buf, len);
            buf.extend(std::iter::repeat_n(b'a', have));
        }
        prop_assert!(peak_of(|| decode_transfer(&buf)) <= TRANSFER_ALLOC_CAP);
    }
}
