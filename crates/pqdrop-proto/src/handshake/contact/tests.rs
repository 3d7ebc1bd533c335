use super::*;
use crate::keys::Seed;
use crate::msg::{parse_frame_header, MsgType};

fn id(b: u8) -> Identity {
    Identity::from_seed(Seed::from_bytes([b; 32])).unwrap()
}

/// A counter-based RNG, enough for unit tests (the vectors use DetRng).
struct Counter(u8);
impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            *b = self.0;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Counter {}

const CAPS: Capabilities = Capabilities(Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME);

/// Moves bytes both ways until neither side has anything to send; returns
/// the first error of each side.
fn run(i: &mut ContactHandshake<'_>, r: &mut ContactHandshake<'_>) -> (Option<Error>, Option<Error>) {
    let (mut ei, mut er) = (None, None);
    for _ in 0..8 {
        let mut moved = false;
        if let Some(b) = i.poll_transmit() {
            moved = true;
            if er.is_none() {
                er = r.handle_input(&b).err();
            }
        }
        if let Some(b) = r.poll_transmit() {
            moved = true;
            if ei.is_none() {
                ei = i.handle_input(&b).err();
            }
        }
        if !moved {
            break;
        }
    }
    (ei, er)
}

#[test]
fn two_contacts_agree_and_learn_each_other() {
    let (alice, bob, carol) = (id(1), id(2), id(3));
    let mut i = ContactHandshake::initiator(&alice, bob.public(), CAPS, &mut Counter(1)).unwrap();
    let mut r = ContactHandshake::responder(&bob, vec![carol.public().clone(), alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
    assert_eq!(run(&mut i, &mut r), (None, None));
    assert!(i.is_complete() && r.is_complete());
    assert_eq!(r.peer(), Some(alice.public()));
    let (mut si, pi) = i.into_session().unwrap();
    let (mut sr, pr) = r.into_session().unwrap();
    assert_eq!((pi, pr), (bob.public().clone(), alice.public().clone()));
    assert_eq!(si.transcript_hash, sr.transcript_hash);
    assert_eq!(si.exporter, sr.exporter);
    assert!(si.agreed.resume);
    let check = |a: &mut Established, b: &mut Established| {
        let mut rec = Vec::new();
        a.sealer.seal_to_vec(b"over the contact session", false, &mut rec).unwrap();
        let h = parse_frame_header(&rec).unwrap().unwrap();
        let mut body = rec[h.header_len..].to_vec();
        let n = b.opener.open(h.msg_type, &mut body).unwrap();
        assert_eq!(&body[..n], b"over the contact session");
    };
    check(&mut si, &mut sr);
    check(&mut sr, &mut si);
}

#[test]
fn a_stranger_is_refused_and_told() {
    let (alice, bob, carol) = (id(1), id(2), id(3));
    let mut i = ContactHandshake::initiator(&alice, bob.public(), CAPS, &mut Counter(1)).unwrap();
    let mut r = ContactHandshake::responder(&bob, vec![carol.public().clone()], CAPS, &mut Counter(2)).unwrap();
    let (ei, er) = run(&mut i, &mut r);
    assert_eq!(er, Some(Error::StrangerIdentity(alice.public().fingerprint().to_string())));
    assert_eq!(ei, Some(Error::NotAccepted));
}

#[test]
fn an_invitation_lets_a_stranger_in_until_it_expires_and_only_if_it_is_ours() {
    use crate::invite::Ticket;
    let (alice, bob, carol) = (id(1), id(2), id(3));
    let ticket = Ticket::issue(&bob, 1_000, [5; 16]);
    // Accepted by the ticket: the responder says so, and learns the caller.
    let mut i = ContactHandshake::initiator_invited(&alice, bob.public(), Some(&ticket), CAPS, &mut Counter(1)).unwrap();
    let mut r = ContactHandshake::responder(&bob, Vec::new(), CAPS, &mut Counter(2)).unwrap();
    r.accept_invitations(999);
    assert_eq!(run(&mut i, &mut r), (None, None));
    assert!(r.is_complete() && r.invited());
    assert_eq!(r.peer(), Some(alice.public()));
    // A saved contact that still presents a ticket is accepted as a contact.
    let mut i = ContactHandshake::initiator_invited(&alice, bob.public(), Some(&ticket), CAPS, &mut Counter(1)).unwrap();
    let mut r = ContactHandshake::responder(&bob, vec![alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
    assert_eq!(run(&mut i, &mut r), (None, None));
    assert!(r.is_complete() && !r.invited());
    let refused = |ticket: &Ticket, now: Option<u64>| {
        let mut i = ContactHandshake::initiator_invited(&alice, bob.public(), Some(ticket), CAPS, &mut Counter(1)).unwrap();
        let mut r = ContactHandshake::responder(&bob, Vec::new(), CAPS, &mut Counter(2)).unwrap();
        if let Some(now) = now {
            r.accept_invitations(now);
        }
        let (ei, er) = run(&mut i, &mut r);
        assert_eq!(ei, Some(Error::NotAccepted));
        assert!(!r.is_complete() && !i.is_complete());
        er
    };
    let fp = alice.public().fingerprint().to_string();
    assert_eq!(
        refused(&ticket, Some(1_000)),
        Some(Error::InvitationRefused { fingerprint: fp.clone(), why: "its invitation has expired" })
    );
    let forged = Ticket::issue(&carol, 1_000, [5; 16]);
    assert_eq!(
        refused(&forged, Some(0)),
        Some(Error::InvitationRefused { fingerprint: fp.clone(), why: "its invitation was not made by your identity" })
    );
    // A responder not taking invitations treats the caller as a stranger.
    assert_eq!(refused(&ticket, None), Some(Error::StrangerIdentity(fp)));
}

#[test]
fn someone_in_the_room_without_the_receivers_keys_cannot_answer() {
    // Mallory holds Bob's room and accepts Alice, but Alice's hello is
    // sealed to Bob's keys.
    let (alice, bob, mallory) = (id(1), id(2), id(4));
    let mut i = ContactHandshake::initiator(&alice, bob.public(), CAPS, &mut Counter(1)).unwrap();
    let mut r = ContactHandshake::responder(&mallory, vec![alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
    let (ei, er) = run(&mut i, &mut r);
    assert_eq!(er, Some(Error::IdentityNotProven));
    assert_eq!(ei, Some(Error::IdentityNotProven));
    assert!(!i.is_complete());
}

#[test]
fn knowing_alices_public_identity_is_not_enough_to_pass_as_her() {
    // Eve knows Alice's and Bob's public identities and seals Alice's into
    // her own hello. Bob answers, but Eve cannot compute ss, se or k_i, so
    // any confirmation she sends fails and Bob never completes.
    let (alice, bob, eve) = (id(1), id(2), id(5));
    let mut e = ContactHandshake::initiator(&eve, bob.public(), CAPS, &mut Counter(1)).unwrap();
    let State::InitiatorExpectAnswer { es, k_s, hello, .. } = &e.state else { panic!() };
    let mut forged = hello.clone();
    let mut aad = Vec::new();
    forged.encode_bound(&mut aad);
    let mut sealed = alice.public().to_bytes();
    let tag = hello_key(es, k_s, bob.public(), &forged.ecdh_pub_key, &forged.mlkem_ciphertext)
        .unwrap()
        .seal_in_place([0; 12], &aad, &mut sealed)
        .unwrap();
    sealed.extend_from_slice(&tag);
    forged.sealed_identity = sealed;
    let mut frame = Vec::new();
    Message::ContactHello(forged).encode_frame(&mut frame);
    let _ = e.poll_transmit();

    let mut r = ContactHandshake::responder(&bob, vec![alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
    r.handle_input(&frame).unwrap();
    assert_eq!(r.peer(), Some(alice.public()));
    let answer = r.poll_transmit().unwrap();
    // Eve's own machine (with her keys and her original transcript) rejects
    // Bob's tag; whatever tag she then makes up, Bob rejects it.
    assert_eq!(e.handle_input(&answer).err(), Some(Error::IdentityNotProven));
    let mut guess = Vec::new();
    Message::Confirm([0x42; 32]).encode_frame(&mut guess);
    assert_eq!(r.handle_input(&guess).err(), Some(Error::IdentityNotProven));
    assert!(!r.is_complete());
}

#[test]
fn any_changed_byte_fails_the_handshake() {
    let (alice, bob) = (id(1), id(2));
    // Flip bytes of the hello (index 0) and of the answer (index 1).
    for which in 0..2 {
        for at in [2usize, 3, 40, 600, 1200, 1700, 2500, 3000, 3300, 3600] {
            let mut i = ContactHandshake::initiator(&alice, bob.public(), CAPS, &mut Counter(1)).unwrap();
            let mut r = ContactHandshake::responder(&bob, vec![alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
            let mut hello = i.poll_transmit().unwrap();
            if which == 0 {
                if at >= hello.len() {
                    continue;
                }
                hello[at] ^= 0x01;
            }
            let er = r.handle_input(&hello).err();
            let mut answer = r.poll_transmit().unwrap_or_default();
            if which == 1 {
                if at >= answer.len() {
                    continue;
                }
                answer[at] ^= 0x01;
            }
            let ei = i.handle_input(&answer).err();
            if let Some(b) = i.poll_transmit() {
                let _ = r.handle_input(&b);
            }
            assert!(er.is_some() || ei.is_some() || !r.is_complete(), "a flipped byte {at} of message {which} went unnoticed");
            assert!(!(i.is_complete() && r.is_complete()), "byte {at} of message {which}");
        }
    }
}

#[test]
fn records_and_code_messages_are_refused_during_the_handshake() {
    let (alice, bob) = (id(1), id(2));
    let mut r = ContactHandshake::responder(&bob, vec![alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
    let mut f = Vec::new();
    crate::codec::put_varuint(&mut f, MsgType::RECORD.0);
    crate::codec::put_varuint(&mut f, 5);
    assert!(r.handle_input(&f).is_err());
    let mut r = ContactHandshake::responder(&bob, vec![alice.public().clone()], CAPS, &mut Counter(2)).unwrap();
    let mut f = Vec::new();
    Message::RequestAdd2(crate::msg::RequestAdd2 { version: 1, nonce: [1; 32] }).encode_frame(&mut f);
    assert_eq!(r.handle_input(&f).err(), Some(Error::UnexpectedMessage("contact handshake message out of order")));
}

#[test]
fn rooms_change_with_the_window_and_the_receiver() {
    let (alice, bob) = (id(1), id(2));
    let w = ContactRoom::window_of(1_764_633_600);
    assert_eq!(w, 1_764_633_600 / 600);
    let a = ContactRoom::of(alice.public(), w).unwrap();
    assert_eq!(a, ContactRoom::of(alice.public(), w).unwrap());
    assert_ne!(a, ContactRoom::of(alice.public(), w + 1).unwrap());
    assert_ne!(a, ContactRoom::of(bob.public(), w).unwrap());
    assert_eq!(a.to_string().len(), 32);
}
