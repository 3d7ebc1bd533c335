//! The Identity message (19, PROTOCOL.md §8): two machines in memory tell
//! each other their public identities inside the session when both agreed
//! the IDENTITY capability, and a hostile peer cannot slip in a second one,
//! a late one, or one that is not a valid public identity.

use pqdrop_proto::identity::{Identity, ProofRole, PublicIdentity, PUBLIC_LEN};
use pqdrop_proto::keys::Seed;
use pqdrop_proto::msg::{Agreed, Capabilities};
use pqdrop_proto::testing::{End, Pair, SimOptions, Tree};
use pqdrop_proto::transfer::{Event, Offer, OfferKind, Receiver, ReceiverConfig, Sender, SenderConfig, SenderEvent, TransferMsg};
use pqdrop_proto::Error;

fn identity(byte: u8) -> Identity {
    Identity::from_seed(Seed::from_bytes([byte; 32])).unwrap()
}

fn public(byte: u8) -> PublicIdentity {
    identity(byte).public().clone()
}

/// The proof `byte`'s identity gives as `role` in a session whose
/// transcript hash is all zeros (the machines' default).
fn proof(byte: u8, role: ProofRole) -> [u8; 64] {
    identity(byte).prove(role, &[0; 64])
}

fn tree() -> Tree {
    Tree::new().dir("d").file("d/a.txt", "hello").file("b.bin", vec![9u8; 70_000])
}

#[test]
fn both_sides_learn_each_others_identity() {
    let (alice, bob) = (public(1), public(2));
    let opts = SimOptions { identities: (Some([2; 32]), Some([1; 32])), ..SimOptions::default() };
    let o = Pair::files(tree()).options(opts).run();
    assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
    assert!(o.out.same_content(&tree()));
    assert_eq!(o.identities, (Some(alice), Some(bob)));
}

#[test]
fn one_side_may_share_alone_and_text_works_too() {
    let alice = public(1);
    let opts = SimOptions { identities: (None, Some([1; 32])), ..SimOptions::default() };
    let o = Pair::text("hi").options(opts).run();
    assert_eq!((o.sender.clone(), o.receiver.clone(), o.stdout.as_slice()), (End::Done, End::Done, &b"hi"[..]));
    assert_eq!(o.identities, (Some(alice), None));
}

#[test]
fn without_the_capability_on_one_side_nothing_is_sent() {
    let all = SimOptions::default().caps.0;
    let older = Capabilities(all.0 & !Capabilities::IDENTITY);
    for caps in [(older, all), (all, older)] {
        let opts = SimOptions { caps, identities: (Some([2; 32]), Some([1; 32])), ..SimOptions::default() };
        let o = Pair::files(tree()).options(opts).run();
        assert_eq!((o.sender.clone(), o.receiver.clone()), (End::Done, End::Done), "{o:?}");
        assert_eq!(o.identities, (None, None));
    }
}

fn agreed(identity: bool) -> Agreed {
    let mut bits = Capabilities::CHACHA20_POLY1305 | Capabilities::STOP_CODES;
    if identity {
        bits |= Capabilities::IDENTITY;
    }
    Agreed::negotiate(Capabilities(bits), Capabilities(bits))
}

fn offer() -> Offer {
    Offer { kind: OfferKind::Text, files: 0, dirs: 0, bytes: 2, preview: Vec::new() }
}

/// Feeds one record of `msgs` to a fresh receiver; its events and end.
fn feed_receiver(identity: bool, msgs: &[TransferMsg<'_>]) -> (Vec<Event>, Result<(), Error>) {
    let mut rx = Receiver::new(ReceiverConfig::agreed(&agreed(identity)));
    let mut pt = Vec::new();
    for m in msgs {
        m.encode(&mut pt);
    }
    rx.start_record();
    let mut events = Vec::new();
    loop {
        match rx.poll_event(&pt) {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => return (events, Ok(())),
            Err(e) => return (events, Err(e)),
        }
    }
}

#[test]
fn the_receiver_refuses_a_second_late_unagreed_or_invalid_identity() {
    let a = public(1).to_bytes();
    let pa = proof(1, ProofRole::Sender);
    let id = TransferMsg::Identity { public: &a, proof: &pa };
    let (ev, end) = feed_receiver(true, &[id.clone(), TransferMsg::Offer(offer())]);
    assert_eq!(end, Ok(()));
    assert!(matches!(ev.as_slice(), [Event::PeerIdentity(p), Event::Offer(_)] if *p == public(1)), "{ev:?}");

    let violation = |end: Result<(), Error>| matches!(end, Err(Error::Violation(_)));
    assert!(violation(feed_receiver(true, &[id.clone(), id.clone(), TransferMsg::Offer(offer())]).1), "a second one");
    assert!(violation(feed_receiver(true, &[TransferMsg::Offer(offer()), id.clone()]).1), "after the offer");
    assert!(violation(feed_receiver(false, &[id.clone(), TransferMsg::Offer(offer())]).1), "not agreed");

    // A low-order X25519 key (zero), and an ML-KEM key with an unreduced
    // coefficient: both refused as the peer's fault.
    let mut zero_x = a.clone();
    zero_x[32..64].fill(0);
    let mut bad_kem = a.clone();
    bad_kem[64..66].copy_from_slice(&[0xff, 0xff]);
    for bad in [zero_x, bad_kem] {
        let (ev, end) = feed_receiver(true, &[TransferMsg::Identity { public: &bad, proof: &pa }, TransferMsg::Offer(offer())]);
        assert!(ev.is_empty() && violation(end.clone()), "{end:?}");
    }
    // A short one does not even decode.
    let mut short = Vec::new();
    TransferMsg::Identity { public: &a[..PUBLIC_LEN - 1], proof: &pa }.encode(&mut short);
    assert!(pqdrop_proto::transfer::Messages::new(&short).next().is_err());
}

#[test]
fn the_receiver_shares_only_before_answering_and_the_sender_takes_it_only_before_the_answer() {
    let mut rx = Receiver::new(ReceiverConfig::agreed(&agreed(true)));
    rx.share_identity(&identity(2)).unwrap();
    assert!(rx.share_identity(&identity(2)).is_err(), "twice");
    let mut out = Vec::new();
    assert!(rx.poll_transmit(&mut out));
    let mut expected = Vec::new();
    TransferMsg::Identity { public: &public(2).to_bytes(), proof: &proof(2, ProofRole::Receiver) }.encode(&mut expected);
    assert_eq!(out, expected);
    assert_eq!(&out[..4], &[0x13, 0xfc, 0x00, 0x05], "type 19, then IxiBytes of 1280 bytes");

    let run_sender = |msgs: &[TransferMsg<'_>]| {
        let mut tx = Sender::sharing(offer(), SenderConfig::agreed(&agreed(true)), Some(&identity(1)));
        let mut pt = Vec::new();
        for m in msgs {
            m.encode(&mut pt);
        }
        tx.start_record();
        let mut events = Vec::new();
        loop {
            match tx.poll_event(&pt) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => return (events, Ok(())),
                Err(e) => return (events, Err(e)),
            }
        }
    };
    let b = public(2).to_bytes();
    let pb = proof(2, ProofRole::Receiver);
    let id = TransferMsg::Identity { public: &b, proof: &pb };
    let (ev, end) = run_sender(&[id.clone(), TransferMsg::Accept]);
    assert_eq!(end, Ok(()));
    assert_eq!(ev, vec![SenderEvent::PeerIdentity(public(2)), SenderEvent::Accepted]);
    assert!(matches!(run_sender(&[TransferMsg::Accept, id.clone()]).1, Err(Error::Violation(_))), "after the answer");
    assert!(matches!(run_sender(&[id.clone(), id]).1, Err(Error::Violation(_))), "twice");
}

#[test]
fn an_identity_without_its_own_proof_is_refused() {
    // Mallory holds the code and shows Alice's public identity: she cannot
    // sign this session's transcript with Alice's key.
    let a = public(1).to_bytes();
    let violation = |p: &[u8]| {
        let (ev, end) = feed_receiver(true, &[TransferMsg::Identity { public: &a, proof: p }, TransferMsg::Offer(offer())]);
        ev.is_empty() && matches!(end, Err(Error::Violation(_)))
    };
    assert!(violation(&proof(3, ProofRole::Sender)), "Mallory's own signature");
    assert!(violation(&proof(1, ProofRole::Receiver)), "Alice's proof for the other role, reflected");
    assert!(violation(&identity(1).prove(ProofRole::Sender, &[9; 64])), "Alice's proof from another session");
    assert!(violation(&[0u8; 64]), "no signature at all");
    assert!(!violation(&proof(1, ProofRole::Sender)), "her real proof passes");
}
