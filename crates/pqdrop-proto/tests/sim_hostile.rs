//! A hostile sender against the receiver's machine, message by message: every
//! rule of PROTOCOL.md §8 that needs no file system, each case asserting the
//! exact refusal. (The binary-level tests in pqdrop keep the cases that
//! need real files, sockets and exit codes.)

use pqdrop_proto::transfer::{Entry, EntryKind, Event, FileState, Offer, OfferKind, Receiver, ReceiverConfig, TransferMsg, MAX_CHUNK};
use pqdrop_proto::Error;

fn file(index: u64, path: &str, size: u64) -> Entry {
    Entry { index, kind: EntryKind::File, path: path.as_bytes().to_vec(), size, executable: false, mtime: 0 }
}

fn dir(index: u64, path: &str) -> Entry {
    Entry { index, kind: EntryKind::Dir, path: path.as_bytes().to_vec(), size: 0, executable: false, mtime: 0 }
}

fn offer_for(entries: &[Entry]) -> Offer {
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).count() as u64;
    let bytes = entries.iter().map(|e| e.size).sum();
    let mut preview: Vec<Vec<u8>> = Vec::new();
    for e in entries {
        let top = e.path.split(|&b| b == b'/').next().unwrap_or_default().to_vec();
        if !preview.contains(&top) {
            preview.push(top);
        }
    }
    Offer { kind: OfferKind::Files, files, dirs: entries.len() as u64 - files, bytes, preview }
}

/// Feeds `records` (each a list of messages) to a receiver that consents
/// and has nothing on disk; returns the events and how it ended.
fn feed(config: ReceiverConfig, records: &[Vec<TransferMsg<'_>>]) -> (Vec<Event>, Result<(), Error>) {
    let mut rx = Receiver::new(config);
    let mut events = Vec::new();
    for msgs in records {
        let mut pt = Vec::new();
        for m in msgs {
            m.encode(&mut pt);
        }
        rx.start_record();
        loop {
            match rx.poll_event(&pt) {
                Ok(Some(ev)) => {
                    match &ev {
                        Event::Offer(_) => rx.accept().unwrap(),
                        Event::CheckFile { index, .. } => rx.file_checked(*index, FileState::Fresh).unwrap(),
                        Event::ManifestDone { .. } => rx.ready().unwrap(),
                        Event::Done => rx.finish().unwrap(),
                        _ => {}
                    }
                    events.push(ev);
                }
                Ok(None) => break,
                Err(e) => return (events, Err(e)),
            }
        }
    }
    (events, Ok(()))
}

/// One record holding the offer and the whole manifest of `entries`.
fn offer_and_manifest(entries: &[Entry]) -> Vec<u8> {
    let mut pt = Vec::new();
    TransferMsg::Offer(offer_for(entries)).encode(&mut pt);
    for m in entries.iter().cloned().map(TransferMsg::Entry).chain([TransferMsg::ManifestEnd]) {
        m.encode(&mut pt);
    }
    pt
}

/// Offer + manifest of `entries`, then `data` in one more record.
fn run(entries: &[Entry], data: Vec<TransferMsg<'_>>) -> (Vec<Event>, Result<(), Error>) {
    let mut manifest: Vec<TransferMsg> = entries.iter().cloned().map(TransferMsg::Entry).collect();
    manifest.push(TransferMsg::ManifestEnd);
    feed(ReceiverConfig::default(), &[vec![TransferMsg::Offer(offer_for(entries))], manifest, data])
}

fn refused_name(path: &str) -> &'static str {
    match run(&[file(0, path, 1)], vec![]).1 {
        Err(Error::Hostile { reason, .. }) => reason,
        other => panic!("{path:?} was not refused: {other:?}"),
    }
}

fn violation(r: Result<(), Error>) -> String {
    match r {
        Err(Error::Violation(why)) => why,
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn an_honest_sequence_gives_the_expected_events() {
    let e = [dir(0, "d"), file(1, "d/f", 3)];
    let (ev, r) = run(
        &e,
        vec![
            TransferMsg::FileStart { entry: e[1].clone(), offset: 0 },
            TransferMsg::Chunk { compressed: false, data: b"abc" },
            TransferMsg::FileEnd { hash: Some([1; 32]) },
            TransferMsg::Done,
        ],
    );
    r.unwrap();
    assert!(matches!(ev[0], Event::Offer(_)));
    assert!(matches!(ev[1], Event::Folder { .. }));
    assert!(matches!(ev[2], Event::CheckFile { index: 1, size: 3, .. }));
    assert_eq!(ev[3], Event::ManifestDone { to_come: 3 });
    assert!(matches!(ev[4], Event::FileStart { offset: 0, conflict: false, .. }));
    assert!(matches!(&ev[5], Event::Data(r) if r.len() == 3));
    assert!(matches!(ev[6], Event::FileEnd { hash, .. } if hash == Some([1; 32])));
    assert_eq!(ev[7], Event::Done);
}

#[test]
fn names_that_escape_or_confuse_are_refused() {
    // Each is refused (refused_name panics otherwise) before any event about it.
    for name in [
        "../x",
        "/etc/passwd",
        "a\\b",
        "a/../../b",
        "a/./b",
        "CON",
        "lpt1.txt",
        "x.pqdrop-partial",
        ".pqdrop-state",
        "a\u{202e}txt",
        "a\u{1b}[2J",
        "",
        "a/",
        "trail.",
        "nul\0",
    ] {
        refused_name(name);
    }
    let (ev, _) = run(&[file(0, "../x", 1)], vec![]);
    assert_eq!(ev.len(), 1, "only the offer was reported: {ev:?}");
}

#[test]
fn duplicates_and_lookalikes_are_refused() {
    for pair in [["a", "a"], ["a", "A"], ["caf\u{e9}", "cafe\u{301}"]] {
        let e = [file(0, pair[0], 1), file(1, pair[1], 1)];
        assert!(matches!(run(&e, vec![]).1, Err(Error::Hostile { .. })), "{pair:?}");
    }
    let e = [file(0, "a", 1), dir(1, "a")];
    assert!(matches!(run(&e, vec![]).1, Err(Error::Hostile { .. })));
}

#[test]
fn the_manifest_must_stay_within_the_offer() {
    let e = [file(0, "a", 5)];
    let mut small = offer_for(&e);
    small.bytes = 4;
    let r = feed(ReceiverConfig::default(), &[vec![TransferMsg::Offer(small)], vec![TransferMsg::Entry(e[0].clone())]]).1;
    assert!(matches!(r, Err(Error::Hostile { reason, .. }) if reason.contains("beyond the offer")), "{r:?}");
    // A top-level name that the offer did not show.
    let mut shown = offer_for(&e);
    shown.preview = vec![b"b".to_vec()];
    let r = feed(ReceiverConfig::default(), &[vec![TransferMsg::Offer(shown)], vec![TransferMsg::Entry(e[0].clone())]]).1;
    assert!(matches!(r, Err(Error::Hostile { reason, .. }) if reason.contains("not under a name shown")), "{r:?}");
    // Fewer entries than offered.
    let mut more = offer_for(&e);
    more.files = 2;
    let r = feed(
        ReceiverConfig::default(),
        &[vec![TransferMsg::Offer(more)], vec![TransferMsg::Entry(e[0].clone()), TransferMsg::ManifestEnd]],
    )
    .1;
    assert!(violation(r).contains("does not match the offer"));
}

#[test]
fn counts_over_the_limits_are_refused_before_anything_else() {
    let huge = Offer { kind: OfferKind::Files, files: u64::MAX, dirs: 1, bytes: 0, preview: vec![] };
    let (ev, r) = feed(ReceiverConfig::default(), &[vec![TransferMsg::Offer(huge)]]);
    assert!(ev.is_empty() && matches!(r, Err(Error::Limit(_))), "{r:?}");
    let text = Offer { kind: OfferKind::Text, files: 0, dirs: 0, bytes: (16 << 20) + 1, preview: vec![] };
    assert!(matches!(feed(ReceiverConfig::default(), &[vec![TransferMsg::Offer(text)]]).1, Err(Error::Limit(_))));
}

#[test]
fn data_phase_order_is_enforced() {
    let e = [file(0, "a", 3), file(1, "b", 3)];
    let start = |i: usize, offset| TransferMsg::FileStart { entry: e[i].clone(), offset };
    let chunk = TransferMsg::Chunk { compressed: false, data: b"abc" };
    let end = TransferMsg::FileEnd { hash: Some([0; 32]) };
    let cases: Vec<(&str, Vec<TransferMsg>, &str)> = vec![
        ("second file first, then the first", vec![start(1, 0), chunk.clone(), end.clone(), start(0, 0)], "not in the manifest, or twice"),
        ("a file twice", vec![start(0, 0), chunk.clone(), end.clone(), start(0, 0)], "not in the manifest, or twice"),
        ("data outside a file", vec![chunk.clone()], "data outside a file"),
        ("an offset never claimed", vec![start(0, 1)], "did not offer"),
        ("done before every file", vec![start(0, 0), chunk.clone(), end.clone(), TransferMsg::Done], "without sending everything"),
        ("skip of a file we do not have", vec![TransferMsg::FileSkip { index: 0 }], "do not have"),
        ("more bytes than announced", vec![start(0, 0), chunk.clone(), chunk.clone()], "more bytes than announced"),
        ("a second offer", vec![TransferMsg::Offer(offer_for(&e))], "out of order"),
    ];
    for (what, data, why) in cases {
        let r = run(&e, data).1;
        let got = violation(r);
        assert!(got.contains(why), "{what}: {got}");
    }
    // A header that differs from its manifest entry.
    let mut changed = e[0].clone();
    changed.size = 4;
    let got = violation(run(&e, vec![TransferMsg::FileStart { entry: changed, offset: 0 }]).1);
    assert!(got.contains("differs from its manifest entry"), "{got}");
}

#[test]
fn compressed_chunks_are_sized_before_decompression() {
    let e = [file(0, "z", 1 << 30)];
    let start = TransferMsg::FileStart { entry: e[0].clone(), offset: 0 };
    // The red-team record: 2,000 frames of ~50 bytes that declare 1 MiB each,
    // for a 1 GiB file. The 1,025th is refused as it is parsed.
    let frame = zstd::bulk::compress(&vec![0u8; MAX_CHUNK], 19).unwrap();
    let mut data = vec![start.clone()];
    data.extend((0..2_000).map(|_| TransferMsg::Chunk { compressed: true, data: &frame }));
    let (ev, r) = run(&e, data);
    assert!(violation(r).contains("more bytes than announced"));
    let compressed = ev.iter().filter(|e| matches!(e, Event::Compressed { size, .. } if *size as usize == MAX_CHUNK)).count();
    assert_eq!(compressed, 1024, "exactly the chunks that fit the file were reported");
    // No declared size (a streamed frame), over 1 MiB, not zstd at all.
    let streamed = zstd::stream::encode_all(std::io::Read::take(std::io::repeat(0), 2 << 20), 1).unwrap();
    let over = zstd::bulk::compress(&vec![0u8; MAX_CHUNK + 1], 1).unwrap();
    for (what, payload, why) in [
        ("streamed", &streamed[..], "declares its content size"),
        ("over 1 MiB", &over[..], "1 MiB"),
        ("garbage", &b"garbage!"[..], "declares its content size"),
    ] {
        let got = violation(run(&e, vec![start.clone(), TransferMsg::Chunk { compressed: true, data: payload }]).1);
        assert!(got.contains(why), "{what}: {got}");
    }
}

#[test]
fn capabilities_that_were_not_agreed_are_enforced() {
    let e = [file(0, "z", 10)];
    let frame = zstd::bulk::compress(&[0u8; 10], 1).unwrap();
    let mut manifest: Vec<TransferMsg> = vec![TransferMsg::Entry(e[0].clone()), TransferMsg::ManifestEnd];
    let cfg = ReceiverConfig { zstd: false, ..ReceiverConfig::default() };
    manifest.push(TransferMsg::FileStart { entry: e[0].clone(), offset: 0 });
    manifest.push(TransferMsg::Chunk { compressed: true, data: &frame });
    let got = violation(feed(cfg, &[vec![TransferMsg::Offer(offer_for(&e))], manifest]).1);
    assert!(got.contains("zstd was not agreed"), "{got}");
    // Without resume, a partial on disk makes no claim.
    let mut rx = Receiver::new(ReceiverConfig { resume: false, ..ReceiverConfig::default() });
    let mut pt = Vec::new();
    TransferMsg::Offer(offer_for(&e)).encode(&mut pt);
    TransferMsg::Entry(e[0].clone()).encode(&mut pt);
    rx.start_record();
    assert!(matches!(rx.poll_event(&pt), Ok(Some(Event::Offer(_)))));
    rx.accept().unwrap();
    assert!(matches!(rx.poll_event(&pt), Ok(Some(Event::CheckFile { .. }))));
    rx.file_checked(0, FileState::Partial { len: 5, hash: [0; 32] }).unwrap();
    let mut out = Vec::new();
    rx.poll_transmit(&mut out);
    let mut it = pqdrop_proto::transfer::Messages::new(&out);
    assert_eq!(it.next().unwrap(), Some(TransferMsg::Accept));
    assert_eq!(it.next().unwrap(), None, "no Have without resume");
}

#[test]
fn text_and_streams_are_verified() {
    let text = Offer { kind: OfferKind::Text, files: 0, dirs: 0, bytes: 2, preview: vec![] };
    let good = *blake3::hash(b"hi").as_bytes();
    let (ev, r) = feed(
        ReceiverConfig::default(),
        &[vec![
            TransferMsg::Offer(text.clone()),
            TransferMsg::Chunk { compressed: false, data: b"hi" },
            TransferMsg::StreamEnd { len: 2, hash: good },
            TransferMsg::Done,
        ]],
    );
    r.unwrap();
    assert!(ev.contains(&Event::Text(b"hi".to_vec())) && ev.contains(&Event::Done));
    let r = feed(
        ReceiverConfig::default(),
        &[vec![
            TransferMsg::Offer(text.clone()),
            TransferMsg::Chunk { compressed: false, data: b"ho" },
            TransferMsg::StreamEnd { len: 2, hash: good },
        ]],
    )
    .1;
    assert_eq!(r, Err(Error::Integrity("the text")));
    let r = feed(ReceiverConfig::default(), &[vec![TransferMsg::Offer(text), TransferMsg::Chunk { compressed: false, data: b"hi!" }]]).1;
    assert!(violation(r).contains("more text than offered"));
}

#[test]
fn the_senders_abort_is_reported_escaped() {
    let r = feed(ReceiverConfig::default(), &[vec![TransferMsg::Abort { reason: "disk \u{1b}[31mfull".into() }]]).1;
    match r {
        Err(Error::PeerStopped { code: None, reason: why }) => assert!(!why.contains('\u{1b}') && why.contains("full"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_is_accepted_after_the_end() {
    let e = [file(0, "a", 0)];
    let r = run(
        &e,
        vec![
            TransferMsg::FileStart { entry: e[0].clone(), offset: 0 },
            TransferMsg::FileEnd { hash: Some([0; 32]) },
            TransferMsg::Done,
            TransferMsg::Done,
        ],
    )
    .1;
    assert!(violation(r).contains("after the transfer ended"));
}

#[test]
fn what_is_still_to_come_excludes_what_the_receiver_holds() {
    let e = [file(0, "a", 100), file(1, "b", 50)];
    let mut rx = Receiver::new(ReceiverConfig::default());
    let pt = offer_and_manifest(&e);
    rx.start_record();
    let mut done = None;
    while let Some(ev) = rx.poll_event(&pt).unwrap() {
        match ev {
            Event::Offer(_) => rx.accept().unwrap(),
            Event::CheckFile { index: 0, .. } => rx.file_checked(0, FileState::Partial { len: 30, hash: [0; 32] }).unwrap(),
            Event::CheckFile { index, .. } => rx.file_checked(index, FileState::Fresh).unwrap(),
            Event::ManifestDone { to_come } => done = Some(to_come),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done, Some(120));
    // Nothing may come before Ready.
    let mut early = Vec::new();
    TransferMsg::FileStart { entry: e[1].clone(), offset: 0 }.encode(&mut early);
    rx.start_record();
    assert!(violation(rx.poll_event(&early).map(|_| ())).contains("before the receiver was ready"));
}

#[test]
fn a_skipped_file_must_not_be_sent() {
    let e = [file(0, "a", 3), file(1, "b", 3)];
    let mut rx = Receiver::new(ReceiverConfig::default());
    let pt = offer_and_manifest(&e);
    rx.start_record();
    while let Some(ev) = rx.poll_event(&pt).unwrap() {
        match ev {
            Event::Offer(_) => rx.accept().unwrap(),
            Event::CheckFile { index: 0, .. } => rx.file_checked(0, FileState::Keep).unwrap(),
            Event::CheckFile { index, .. } => rx.file_checked(index, FileState::Fresh).unwrap(),
            Event::ManifestDone { to_come } => {
                assert_eq!(to_come, 3, "the kept file does not count");
                rx.ready().unwrap();
            }
            other => panic!("{other:?}"),
        }
    }
    let mut out = Vec::new();
    rx.poll_transmit(&mut out);
    let sent: Vec<_> = {
        let mut it = pqdrop_proto::transfer::Messages::new(&out);
        std::iter::from_fn(|| it.next().unwrap()).map(|m| format!("{m:?}")).collect()
    };
    assert_eq!(sent, ["Accept", "Skip { index: 0 }", "Ready"]);
    let mut data = Vec::new();
    TransferMsg::FileStart { entry: e[0].clone(), offset: 0 }.encode(&mut data);
    rx.start_record();
    assert!(violation(rx.poll_event(&data).map(|_| ())).contains("asked it to skip"));
}

#[test]
fn a_file_may_end_without_its_hash_only_when_sent_whole_with_unhashed_fresh_agreed() {
    let e = [file(0, "a", 3)];
    let data = || {
        vec![
            TransferMsg::FileStart { entry: e[0].clone(), offset: 0 },
            TransferMsg::Chunk { compressed: false, data: b"abc" },
            TransferMsg::FileEnd { hash: None },
            TransferMsg::Done,
        ]
    };
    // Not agreed: the hash is owed.
    assert!(violation(run(&e, data()).1).contains("ended without its hash"));
    // Agreed, from offset 0: the event says there is none to check.
    let manifest = vec![TransferMsg::Entry(e[0].clone()), TransferMsg::ManifestEnd];
    let agreed = ReceiverConfig { unhashed_fresh: true, ..ReceiverConfig::default() };
    let (ev, r) = feed(agreed, &[vec![TransferMsg::Offer(offer_for(&e))], manifest, data()]);
    r.unwrap();
    assert!(ev.iter().any(|ev| matches!(ev, Event::FileEnd { hash: None, .. })), "{ev:?}");
    // Agreed, but resumed: the whole file's hash binds the earlier bytes.
    let mut rx = Receiver::new(agreed);
    let pt = offer_and_manifest(&e);
    rx.start_record();
    while let Some(ev) = rx.poll_event(&pt).unwrap() {
        match ev {
            Event::Offer(_) => rx.accept().unwrap(),
            Event::CheckFile { .. } => rx.file_checked(0, FileState::Partial { len: 1, hash: [0; 32] }).unwrap(),
            Event::ManifestDone { .. } => rx.ready().unwrap(),
            other => panic!("{other:?}"),
        }
    }
    let mut rest = Vec::new();
    for m in [
        TransferMsg::FileStart { entry: e[0].clone(), offset: 1 },
        TransferMsg::Chunk { compressed: false, data: b"bc" },
        TransferMsg::FileEnd { hash: None },
    ] {
        m.encode(&mut rest);
    }
    rx.start_record();
    let r = (|| {
        while rx.poll_event(&rest)?.is_some() {}
        Ok(())
    })();
    assert!(violation(r).contains("ended without its hash"));
    // A hash field of any other length is malformed.
    let mut bad = vec![10u8, 5];
    bad.extend_from_slice(&[0; 5]);
    assert!(pqdrop_proto::transfer::Messages::new(&bad).next().is_err());
}

#[test]
fn under_unhashed_fresh_a_file_sent_whole_must_not_carry_a_hash() {
    // The receiver decides at FileStart whether it will hash; a hash it was
    // told not to expect could not be checked.
    let e = [file(0, "a", 3)];
    let manifest = vec![TransferMsg::Entry(e[0].clone()), TransferMsg::ManifestEnd];
    let data = vec![
        TransferMsg::FileStart { entry: e[0].clone(), offset: 0 },
        TransferMsg::Chunk { compressed: false, data: b"abc" },
        TransferMsg::FileEnd { hash: Some([1; 32]) },
    ];
    let agreed = ReceiverConfig { unhashed_fresh: true, ..ReceiverConfig::default() };
    let r = feed(agreed, &[vec![TransferMsg::Offer(offer_for(&e))], manifest, data]).1;
    assert!(violation(r).contains("ended with a hash"));
}
