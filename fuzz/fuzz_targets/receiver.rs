//! The receiver's transfer machine fed arbitrary authenticated records: no
//! panic, no event outside the record it came from, no data past a file's
//! announced size, and nothing after an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_fuzz::Cursor;
use pqdrop_proto::transfer::{Event, FileState, Receiver, ReceiverConfig};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let config = ReceiverConfig {
        max_entries: 64,
        max_text: 4096,
        resume: flags & 1 != 0,
        zstd: flags & 2 != 0,
        stop_codes: flags & 4 != 0,
        skip: flags & 8 != 0,
        unhashed_fresh: flags & 16 != 0,
        identity: flags & 32 != 0,
        transcript: Default::default(),
    };
    let mut rx = Receiver::new(config);
    let mut out = Vec::new();
    // The current file's announced size and what was reported of it.
    let mut file: Option<(u64, u64)> = None;
    while !c.is_empty() {
        let len = usize::from(c.u16() % 2048);
        let record = c.take(len).to_vec();
        rx.start_record();
        loop {
            match rx.poll_event(&record) {
                Ok(Some(ev)) => match ev {
                    Event::Offer(_) => {
                        let _ = if c.u8() & 1 == 0 { rx.accept() } else { rx.refuse() };
                    }
                    Event::CheckFile { index, size, .. } => {
                        let state = match c.u8() % 4 {
                            0 => FileState::Fresh,
                            3 => FileState::Keep,
                            1 => FileState::Partial { len: u64::from(c.u8()).min(size), hash: [c.u8(); 32] },
                            _ => FileState::Complete { hash: [c.u8(); 32] },
                        };
                        // Keep without the SKIP capability is the caller's mistake, refused.
                        if rx.file_checked(index, state).is_err() {
                            assert!(state == FileState::Keep && flags & 8 == 0, "the answer to a CheckFile is accepted");
                            rx.file_checked(index, FileState::Fresh).expect("a plain answer is accepted");
                        }
                    }
                    Event::FileStart { entry, offset, .. } => {
                        assert!(offset <= entry.size);
                        file = Some((entry.size, offset));
                    }
                    Event::Data(r) | Event::StreamData(r) => {
                        assert!(r.end <= record.len());
                        if let Some((size, got)) = file.as_mut() {
                            *got += r.len() as u64;
                            assert!(*got <= *size, "data past the announced size");
                        }
                    }
                    Event::Compressed { range, size } => {
                        assert!(range.end <= record.len() && size as usize <= pqdrop_proto::transfer::MAX_CHUNK);
                        let (total, got) = file.as_mut().expect("compressed data inside a file");
                        *got += u64::from(size);
                        assert!(*got <= *total, "compressed data past the announced size");
                    }
                    Event::FileEnd { .. } => file = None,
                    Event::ManifestDone { .. } => {
                        let _ = rx.ready();
                    }
                    Event::Done => {
                        let _ = rx.finish();
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(_) => {
                    // Nothing is taken after an error.
                    rx.start_record();
                    if !record.is_empty() {
                        assert!(rx.poll_event(&record).is_err());
                    }
                    return;
                }
            }
        }
        rx.poll_transmit(&mut out);
        out.clear();
    }
});
