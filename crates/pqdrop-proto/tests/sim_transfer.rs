//! Whole transfers between the two protocol machines, in memory
//! (`pqdrop_proto::testing::Pair`): real handshake and records, simulated
//! disks, injected faults. Each runs in milliseconds.

use std::time::Duration;

use pqdrop_proto::liveness::{keepalive_interval, IDLE_TIMEOUT, LEGACY_IDLE_TIMEOUT};
use pqdrop_proto::msg::Capabilities;
use pqdrop_proto::testing::{End, Fault, Pair, SimOptions, Tree};
use pqdrop_proto::transfer::StopCode;
use pqdrop_proto::Error;

fn tree() -> Tree {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    Tree::new().dir("docs").file("docs/a.txt", "hello").file("docs/big.bin", big).dir("empty").file("z.txt", "")
}

#[test]
fn files_and_folders_arrive_intact() {
    let t = tree();
    let o = Pair::files(t.clone()).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert!(o.out.same_content(&t), "{:?}", o.out);
    assert!(o.partials.is_empty());
}

#[test]
fn compressed_files_arrive_intact() {
    let t = Tree::new().file("zeros", vec![0u8; 3 << 20]).file("text", "abc ".repeat(10_000));
    let o = Pair::files(t.clone()).options(SimOptions { compress: true, ..SimOptions::default() }).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert!(o.out.same_content(&t));
}

#[test]
fn text_and_stream_arrive_intact() {
    let o = Pair::text("hi there").run();
    assert_eq!((o.sender.clone(), o.receiver.clone(), o.stdout.as_slice()), (End::Done, End::Done, &b"hi there"[..]));
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let o = Pair::stream(&data).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done));
    assert_eq!(o.stdout, data);
}

#[test]
fn wrong_code_fails_the_handshake() {
    let o = Pair::files(tree()).codes("7-lemon-tiger", "7-lemon-tulip").run();
    assert_eq!(o.sender, End::Failed(Error::WrongCode), "{o:?}");
    assert!(o.out.0.is_empty());
}

#[test]
fn declined_offer_writes_nothing() {
    let o = Pair::files(tree()).options(SimOptions { consent: false, ..SimOptions::default() }).run();
    assert_eq!(o.sender, End::Local("refused".into()));
    assert!(o.out.0.is_empty() && o.partials.is_empty());
}

#[test]
fn a_cut_connection_resumes_with_only_the_missing_bytes() {
    let t = tree();
    let first = Pair::files(t.clone()).fault(Fault::CutAt(200_000)).run();
    assert_eq!(first.receiver, End::Closed, "{first:?}");
    let held: u64 = first.partials.values().map(|p| p.len() as u64).sum::<u64>()
        + first.out.files().iter().map(|f| first.out.data(f).map_or(0, |d| d.len() as u64)).sum::<u64>();
    assert!(held > 100_000, "a partial survived ({held} bytes)");
    let second = Pair::files(t.clone()).receiver_state(first.out.clone(), first.partials.clone()).run();
    assert_eq!((second.sender.clone(), second.receiver.clone()), (End::Done, End::Done), "{second:?}");
    assert!(second.out.same_content(&t));
    assert!(second.resumed >= held, "resumed {} of {held}", second.resumed);
    assert_eq!(second.sent + second.resumed, 300_005, "only the missing bytes moved");
}

#[test]
fn a_changed_source_is_sent_again_from_the_start() {
    let t = Tree::new().file("f", vec![1u8; 100_000]);
    let small = SimOptions { chunk: 8 << 10, record: 16 << 10, ..SimOptions::default() };
    let first = Pair::files(t).options(small).fault(Fault::CutAt(60_000)).run();
    assert!(!first.partials.is_empty());
    let changed = Tree::new().file("f", vec![2u8; 100_000]);
    let second = Pair::files(changed.clone()).receiver_state(first.out, first.partials).run();
    assert_eq!((second.sender.clone(), second.receiver.clone()), (End::Done, End::Done));
    assert!(second.out.same_content(&changed));
    assert_eq!(second.resumed, 0);
}

#[test]
fn a_complete_file_is_skipped_on_resume() {
    let t = Tree::new().file("a", "same").file("b", vec![5u8; 70_000]);
    let o = Pair::files(t.clone()).receiver_state(Tree::new().file("a", "same"), Default::default()).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert_eq!(o.sent, 70_000);
    assert!(o.out.same_content(&t));
}

#[test]
fn an_existing_different_file_is_never_overwritten_without_consent() {
    let t = Tree::new().file("a", "new!");
    let o = Pair::files(t.clone()).receiver_state(Tree::new().file("a", "old!"), Default::default()).run();
    assert_eq!(o.receiver, End::Local("a already exists".into()), "{o:?}");
    assert_eq!(o.out.data("a"), Some(&b"old!"[..]));
    // The sender learns the receiver's own reason, with its code.
    assert_eq!(o.sender, End::Failed(Error::PeerStopped { code: Some(StopCode::EXISTS), reason: "a already exists".into() }));
    // A peer without stop codes gets an Abort: the reason without a code.
    let old = Capabilities(Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME | Capabilities::ZSTD);
    let o = Pair::files(t.clone())
        .receiver_state(Tree::new().file("a", "old!"), Default::default())
        .options(SimOptions { caps: (SimOptions::default().caps.0, old), ..SimOptions::default() })
        .run();
    assert_eq!(o.sender, End::Failed(Error::PeerStopped { code: None, reason: "a already exists".into() }));
    let o = Pair::files(t.clone())
        .receiver_state(Tree::new().file("a", "old!"), Default::default())
        .options(SimOptions { overwrite: true, ..SimOptions::default() })
        .run();
    assert_eq!(o.receiver, End::Done);
    assert_eq!(o.out.data("a"), Some(&b"new!"[..]));
}

#[test]
fn without_resume_agreed_no_claims_are_made() {
    let no_resume = Capabilities(Capabilities::CHACHA20_POLY1305 | Capabilities::ZSTD);
    let all = SimOptions::default().caps.0;
    let t = Tree::new().file("a", "same");
    let o = Pair::files(t.clone())
        .receiver_state(Tree::new().file("a", "same"), Default::default())
        .options(SimOptions { caps: (all, no_resume), overwrite: true, ..SimOptions::default() })
        .run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert_eq!((o.sent, o.resumed), (4, 0), "the file was sent again");
}

#[test]
fn without_zstd_agreed_nothing_is_compressed() {
    let no_zstd = Capabilities(Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME);
    let all = SimOptions::default().caps.0;
    let t = Tree::new().file("zeros", vec![0u8; 200_000]);
    let o = Pair::files(t.clone()).options(SimOptions { caps: (no_zstd, all), compress: true, ..SimOptions::default() }).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert!(o.out.same_content(&t));
}

#[test]
fn a_flipped_byte_fails_authentication_and_keeps_nothing_false() {
    let t = tree();
    let o = Pair::files(t).fault(Fault::FlipByte(150_000)).run();
    assert_eq!(o.receiver, End::Failed(Error::BadRecord), "{o:?}");
    assert!(o.out.data("docs/big.bin").is_none(), "no final file from corrupted data");
}

#[test]
fn dropped_duplicated_or_reordered_records_are_refused() {
    for f in [Fault::DropFrame(2), Fault::DuplicateFrame(2), Fault::SwapFrame(2)] {
        let o = Pair::files(tree()).fault(f).run();
        assert_eq!(o.receiver, End::Failed(Error::BadRecord), "{f:?}: {o:?}");
        assert!(o.out.data("docs/big.bin").is_none(), "{f:?}");
    }
}

/// Capabilities without KeepAlive (0x40): a peer that predates it.
fn no_keepalive() -> Capabilities {
    Capabilities(SimOptions::default().caps.0 .0 & !Capabilities::KEEPALIVE)
}

#[test]
fn a_stalled_link_times_out_after_the_idle_limit_without_a_false_success() {
    let o = Pair::files(tree()).fault(Fault::StallAfter(2)).run();
    assert_eq!(o.receiver, End::TimedOut(IDLE_TIMEOUT), "{o:?}");
    // Everything else happened at time 0, so the receiver gave up exactly
    // one idle limit after the last record arrived, and the sender then saw
    // the connection close.
    assert_eq!(o.elapsed, IDLE_TIMEOUT);
    assert_eq!(o.sender, End::Closed);
    assert!(o.out.data("docs/big.bin").is_none());
    // The sender's KeepAlives were lost in the stall; the receiver's reached
    // the sender and kept it from timing out first.
    assert!(o.keepalives.0 >= 3, "{:?}", o.keepalives);
}

#[test]
fn without_keepalive_a_stalled_sender_is_given_ten_minutes() {
    for caps in [(no_keepalive(), SimOptions::default().caps.1), (SimOptions::default().caps.0, no_keepalive())] {
        let o = Pair::files(tree()).options(SimOptions { caps, ..SimOptions::default() }).fault(Fault::StallAfter(2)).run();
        assert_eq!(o.receiver, End::TimedOut(LEGACY_IDLE_TIMEOUT), "{o:?}");
        assert_eq!(o.elapsed, LEGACY_IDLE_TIMEOUT);
        assert_eq!(o.keepalives, (0, 0), "no KeepAlive to a peer that did not agree to it");
    }
}

#[test]
fn a_silent_receiver_times_the_sender_out() {
    // The receiver's Accept gets through, then nothing more (not Ready, not
    // its KeepAlives): the sender gives up one idle limit later.
    let o = Pair::files(tree()).fault(Fault::StallRepliesAfter(1)).run();
    assert_eq!(o.sender, End::TimedOut(IDLE_TIMEOUT), "{o:?}");
    assert_eq!(o.elapsed, IDLE_TIMEOUT);
    assert_eq!(o.receiver, End::Closed);
    assert!(o.out.data("docs/big.bin").is_none());
}

#[test]
fn a_user_deciding_for_ten_minutes_does_not_cut_the_transfer() {
    let t = tree();
    let wait = Duration::from_secs(600);
    let o = Pair::files(t.clone()).options(SimOptions { consent_after: wait, ..SimOptions::default() }).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert!(o.out.same_content(&t));
    assert_eq!(o.elapsed, wait, "the transfer itself takes no virtual time");
    // Both sides proved they were there every 5 s while the user decided.
    let every = keepalive_interval(IDLE_TIMEOUT);
    assert_eq!(every, Duration::from_secs(5));
    let due = (wait.as_secs() / every.as_secs()) - 1;
    assert!(o.keepalives.0 >= due && o.keepalives.1 >= due, "{:?}", o.keepalives);
}

#[test]
fn a_short_idle_limit_still_survives_a_long_decision() {
    // `--idle-timeout 2`: KeepAlive every 0.5 s keeps both sides up for 5 min.
    let opts = SimOptions { idle: Duration::from_secs(2), consent_after: Duration::from_secs(300), ..SimOptions::default() };
    let o = Pair::files(tree()).options(opts).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert!(o.keepalives.0 >= 599, "{:?}", o.keepalives);
}

#[test]
fn without_keepalive_the_sender_waits_for_the_user_and_the_receiver_ten_minutes() {
    let caps = (no_keepalive(), SimOptions::default().caps.1);
    // The sender has no limit while the receiver's user decides ...
    let nine = SimOptions { caps, consent_after: Duration::from_secs(540), ..SimOptions::default() };
    let o = Pair::files(tree()).options(nine).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert_eq!(o.keepalives, (0, 0));
    // ... but the receiver hears nothing from such a sender meanwhile, and
    // gives up after its legacy limit (PROTOCOL.md §8).
    let eleven = SimOptions { caps, consent_after: Duration::from_secs(660), ..SimOptions::default() };
    let o = Pair::files(tree()).options(eleven).run();
    assert_eq!(o.receiver, End::TimedOut(LEGACY_IDLE_TIMEOUT), "{o:?}");
    assert_eq!(o.sender, End::Closed);
}

#[test]
fn kept_files_are_skipped_without_revealing_anything() {
    let t = Tree::new().file("a", "new!").file("b", vec![5u8; 10_000]);
    let o = Pair::files(t)
        .receiver_state(Tree::new().file("a", "old!"), Default::default())
        .options(SimOptions { keep_existing: true, ..SimOptions::default() })
        .run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert_eq!(o.out.data("a"), Some(&b"old!"[..]), "the existing file is kept");
    assert_eq!(o.out.data("b"), Some(&[5u8; 10_000][..]));
    assert_eq!(o.sent, 10_000, "nothing of a was sent");
}

#[test]
fn without_skip_agreed_a_kept_file_cannot_be_asked_for() {
    let no_skip = Capabilities(Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME | Capabilities::STOP_CODES);
    let t = Tree::new().file("a", "new!");
    let o = Pair::files(t)
        .receiver_state(Tree::new().file("a", "old!"), Default::default())
        .options(SimOptions { keep_existing: true, caps: (SimOptions::default().caps.0, no_skip), ..SimOptions::default() })
        .run();
    assert!(matches!(o.receiver, End::Failed(Error::Misuse(_))), "{o:?}");
    assert_eq!(o.out.data("a"), Some(&b"old!"[..]));
}
