//! The contact handshake: two identities that know each other, no code
//! (PROTOCOL.md §13.7).
//!
//! The pattern is Noise IK with the post-quantum KEM steps of PQNoise's
//! pqIK, both at once (a hybrid): the **initiator** (the sender) knows the
//! responder's public identity; it sends a fresh X25519 key, an ML-KEM-768
//! ciphertext to the responder's static key, a fresh ML-KEM-768 key, and its
//! own public identity encrypted under the first two. The **responder**
//! (the receiver) answers with a fresh X25519 key and ML-KEM-768
//! ciphertexts to the fresh key and to the initiator's static key.
//!
//! ```text
//! initiator                                          responder
//!   contactHello(e, ct_s, ek_e, chaChaSalt, caps, {I})   ->     es, k_s; then ss
//!                      <-  contactAnswer(e, ct_e, ct_i, aesSalt, caps), confirm(tag_a)
//!   (ee, se, k_e, k_i; checks tag_a)
//!   confirm(tag_r)                                       ->     (checks tag_r)
//! ```
//!
//! Why IK and not KK: a receiver waiting for any of its contacts
//! (`--from-contacts`) does not know in advance who calls, so the caller's
//! identity has to travel, encrypted to the receiver so that neither the
//! relay nor anyone without the receiver's keys learns it.
//!
//! The secrets `es || k_s || ss || ee || se || k_e || k_i` feed the same key
//! schedule as the code handshake (§6), so the session, its confirmation and
//! the transfer that follows are those of a code transfer. Forward secrecy
//! comes from `ee` and `k_e` (fresh keys on both sides), confidentiality
//! against a future quantum computer from `k_s` and `k_e`, and each side is
//! authenticated by a static X25519 secret and an ML-KEM decapsulation with
//! its static key, both checked by the other side's confirmation tag.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{derive_keys, establish, Established, FrameBuf, HandshakeStatus, Keys, Role};
use crate::identity::{Identity, PublicIdentity, PUBLIC_LEN};
use crate::invite::{Ticket, TicketError, TICKET_LEN};
use crate::msg::{AbortReason, Agreed, Capabilities, ContactAnswer, ContactHello, Message, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use crate::primitives::{
    ct_eq, hkdf_sha256, mlkem768_encapsulate_deterministic, sha512, x25519_base, x25519_checked, AeadAlg, AeadKey, KemSecret,
    MlKemDecapsulationKey,
};
use crate::{cpace, Error, Result};

/// HKDF salt of the key that seals the initiator's identity.
const HELLO_SALT: &[u8] = b"pqdrop/v1 contact hello";
/// Prefix of the contact handshake's transcript hash.
const TRANSCRIPT_LABEL: &[u8] = b"pqdrop/v1 contact transcript";

/// The fresh values one side draws, in the order it draws them (so a fixed
/// RNG gives the published vectors).
struct Fresh {
    e: Zeroizing<[u8; 32]>,
    kem_seed: Zeroizing<[u8; 64]>,
    salt: [u8; 32],
    m1: Zeroizing<[u8; 32]>,
    m2: Zeroizing<[u8; 32]>,
}

impl Fresh {
    fn draw<R: RngCore + CryptoRng>(rng: &mut R, initiator: bool) -> Result<Self> {
        let mut f = Fresh {
            e: Zeroizing::new([0; 32]),
            kem_seed: Zeroizing::new([0; 64]),
            salt: [0; 32],
            m1: Zeroizing::new([0; 32]),
            m2: Zeroizing::new([0; 32]),
        };
        let mut fill = |b: &mut [u8]| rng.try_fill_bytes(b).map_err(|_| Error::Crypto);
        fill(&mut f.e[..])?;
        if initiator {
            fill(&mut f.kem_seed[..])?;
            fill(&mut f.salt)?;
            fill(&mut f.m1[..])?;
        } else {
            fill(&mut f.salt)?;
            fill(&mut f.m1[..])?;
            fill(&mut f.m2[..])?;
        }
        Ok(f)
    }
}

enum State {
    InitiatorExpectAnswer {
        e: Zeroizing<[u8; 32]>,
        dk_e: MlKemDecapsulationKey,
        es: Zeroizing<[u8; 32]>,
        k_s: KemSecret,
        hello: ContactHello,
    },
    ResponderExpectHello {
        fresh: Fresh,
    },
    ExpectConfirm {
        keys: Box<Keys>,
        version: u64,
    },
    Done {
        keys: Box<Keys>,
        version: u64,
    },
    Failed,
}

/// One side of a contact handshake. Feed it bytes with [`Self::handle_input`],
/// send what [`Self::poll_transmit`] returns, and once [`Self::is_complete`]
/// take the session with [`Self::into_session`].
pub struct ContactHandshake<'a> {
    role: Role,
    me: &'a Identity,
    /// The initiator: the responder. The responder: who called, once known.
    peer: Option<PublicIdentity>,
    /// The responder: the identities it accepts.
    accept: Vec<PublicIdentity>,
    /// The responder: also accept callers with a valid ticket of ours, at
    /// this time (Unix seconds).
    invitations_at: Option<u64>,
    /// The responder: the caller was accepted by its invitation ticket.
    invited: bool,
    caps: Capabilities,
    state: State,
    transcript: Vec<u8>,
    frames: FrameBuf,
    outbuf: Vec<u8>,
    status: HandshakeStatus,
}

impl core::fmt::Debug for ContactHandshake<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ContactHandshake").field("role", &self.role).field("status", &self.status).finish_non_exhaustive()
    }
}

/// `HKDF-SHA256(salt = HELLO_SALT, ikm = es || k_s, info = SHA-512(R) || e || ct_s)`:
/// the key that seals the initiator's identity to the responder `r`.
fn hello_key(es: &[u8; 32], k_s: &KemSecret, r: &PublicIdentity, e: &[u8; 32], ct_s: &[u8]) -> Result<AeadKey> {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(es);
    ikm[32..].copy_from_slice(&k_s.0);
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf_sha256(HELLO_SALT, &ikm[..], &[&sha512(&[&r.to_bytes()]), e, ct_s], &mut k[..])?;
    AeadKey::new(AeadAlg::ChaCha20Poly1305, &k[..])
}

/// The transcript hash: both public identities (responder first), then the
/// two frames exactly as sent.
fn transcript_hash(r: &PublicIdentity, i: &PublicIdentity, frames: &[u8]) -> [u8; 64] {
    sha512(&[&cpace::lv_cat(&[TRANSCRIPT_LABEL, &r.to_bytes(), &i.to_bytes()]), frames])
}

/// The seven secrets in their order: `es || k_s || ss || ee || se || k_e || k_i`.
fn combined(parts: [&[u8; 32]; 7]) -> Zeroizing<[u8; 224]> {
    let mut c = Zeroizing::new([0u8; 224]);
    for (i, p) in parts.iter().enumerate() {
        c[i * 32..(i + 1) * 32].copy_from_slice(&p[..]);
    }
    c
}

fn x(scalar: &[u8; 32], u: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
    Ok(Zeroizing::new(x25519_checked(scalar, u)?))
}

impl<'a> ContactHandshake<'a> {
    fn base(role: Role, me: &'a Identity, caps: Capabilities, state: State) -> Self {
        ContactHandshake {
            role,
            me,
            peer: None,
            accept: Vec::new(),
            invitations_at: None,
            invited: false,
            caps,
            state,
            transcript: Vec::with_capacity(6400),
            frames: FrameBuf::default(),
            outbuf: Vec::new(),
            status: HandshakeStatus(0),
        }
    }

    /// Starts the initiator (the sender) toward `peer`: queues contactHello.
    pub fn initiator<R: RngCore + CryptoRng>(me: &'a Identity, peer: &PublicIdentity, caps: Capabilities, rng: &mut R) -> Result<Self> {
        Self::initiator_invited(me, peer, None, caps, rng)
    }

    /// [`Self::initiator`] that also presents `ticket`, the peer's invitation
    /// (PROTOCOL.md §13.8), sealed with our identity, so that a peer which
    /// has not saved us yet accepts us.
    pub fn initiator_invited<R: RngCore + CryptoRng>(
        me: &'a Identity,
        peer: &PublicIdentity,
        ticket: Option<&Ticket>,
        caps: Capabilities,
        rng: &mut R,
    ) -> Result<Self> {
        let f = Fresh::draw(rng, true)?;
        let e_pub = x25519_base(&f.e);
        let es = x(&f.e, &peer.io_exchange)?;
        let (ct_s, k_s) = mlkem768_encapsulate_deterministic(&peer.io_kem, &f.m1)?;
        let (dk_e, ek_e) = MlKemDecapsulationKey::from_seed(&f.kem_seed);
        let mut hello = ContactHello {
            version: PROTOCOL_VERSION,
            ecdh_pub_key: e_pub,
            mlkem_ciphertext: ct_s,
            mlkem_pub_key: ek_e,
            chacha_salt: f.salt,
            capabilities: caps,
            sealed_identity: Vec::new(),
        };
        let mut aad = Vec::with_capacity(2400);
        hello.encode_bound(&mut aad);
        let mut sealed = me.public().to_bytes();
        if let Some(t) = ticket {
            sealed.extend_from_slice(t.as_bytes());
        }
        let tag = hello_key(&es, &k_s, peer, &e_pub, &hello.mlkem_ciphertext)?.seal_in_place([0; 12], &aad, &mut sealed)?;
        sealed.extend_from_slice(&tag);
        hello.sealed_identity = sealed;
        let mut hs = Self::base(Role::Requester, me, caps, State::Failed);
        hs.peer = Some(peer.clone());
        hs.send(&Message::ContactHello(hello.clone()), true);
        hs.state = State::InitiatorExpectAnswer { e: f.e, dk_e, es, k_s, hello };
        Ok(hs)
    }

    /// Starts the responder (the receiver), accepting any identity in
    /// `accept` (one contact, or all of them); waits for contactHello.
    pub fn responder<R: RngCore + CryptoRng>(
        me: &'a Identity,
        accept: Vec<PublicIdentity>,
        caps: Capabilities,
        rng: &mut R,
    ) -> Result<Self> {
        let fresh = Fresh::draw(rng, false)?;
        let mut hs = Self::base(Role::Accepter, me, caps, State::ResponderExpectHello { fresh });
        hs.accept = accept;
        Ok(hs)
    }

    /// The responder also accepts a caller it has not saved whose hello
    /// carries a valid invitation ticket of ours (PROTOCOL.md §13.8), at
    /// `now` (Unix seconds).
    pub fn accept_invitations(&mut self, now: u64) {
        self.invitations_at = Some(now);
    }

    /// The responder: true when the caller was accepted by its invitation
    /// (not by being one of the accepted identities).
    pub fn invited(&self) -> bool {
        self.invited
    }

    /// Our role: the initiator is the requester of §6's key schedule (it
    /// sends with the `r2a` keys), the responder the accepter.
    pub fn role(&self) -> Role {
        self.role
    }

    /// 0 started, 1 the first message of the other side handled, 3 complete.
    pub fn status(&self) -> HandshakeStatus {
        self.status
    }

    /// True once both confirmations succeeded.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// The other side's identity: for the initiator the one it called, for
    /// the responder the one that called, once its hello was read.
    pub fn peer(&self) -> Option<&PublicIdentity> {
        self.peer.as_ref()
    }

    /// Takes the bytes to send, if any (also after an error: an abort).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.outbuf.is_empty() {
            None
        } else {
            Some(core::mem::take(&mut self.outbuf))
        }
    }

    fn send(&mut self, m: &Message, transcript: bool) {
        let start = self.outbuf.len();
        m.encode_frame(&mut self.outbuf);
        if transcript {
            self.transcript.extend_from_slice(&self.outbuf[start..]);
        }
    }

    fn fail<T>(&mut self, e: Error, abort: Option<AbortReason>) -> Result<T> {
        self.state = State::Failed;
        self.outbuf.clear();
        if let Some(r) = abort {
            self.send(&Message::Abort(r), false);
        }
        Err(e)
    }

    /// Feeds received bytes; returns how many were consumed (the rest, once
    /// complete, belongs to the record layer). An error is final.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<usize> {
        let mut consumed = 0;
        while consumed < data.len() && !self.is_complete() {
            if matches!(self.state, State::Failed) {
                return Err(Error::Misuse("handshake already failed"));
            }
            match self.frames.feed(data, &mut consumed) {
                Ok(Some((t, frame, header_len))) => {
                    let msg = match Message::decode(t, &frame[header_len..]) {
                        Ok(m) => m,
                        Err(e) => return self.fail(e, Some(AbortReason::PROTOCOL_ERROR)),
                    };
                    let state = core::mem::replace(&mut self.state, State::Failed);
                    match self.step(state, msg, &frame) {
                        Ok(next) => self.state = next,
                        Err((e, abort)) => return self.fail(e, abort),
                    }
                }
                Ok(None) => {}
                Err(e) => return self.fail(e, Some(AbortReason::PROTOCOL_ERROR)),
            }
        }
        Ok(consumed)
    }

    fn step(&mut self, state: State, msg: Message, frame: &[u8]) -> Result<State, (Error, Option<AbortReason>)> {
        let proto = |e: Error| (e, Some(AbortReason::PROTOCOL_ERROR));
        match (state, msg) {
            (_, Message::Abort(r)) => {
                let e = match r {
                    AbortReason::UNKNOWN_IDENTITY if self.role == Role::Requester => Error::NotAccepted,
                    // The other side could not open our hello or check our
                    // tag: one of us is not who the other expects. (No
                    // password is at stake here, so nothing to hide.)
                    AbortReason::KEY_CONFIRMATION => Error::IdentityNotProven,
                    AbortReason::UNKNOWN_IDENTITY => Error::UnexpectedMessage("only a responder can refuse an identity"),
                    _ => Error::PeerAborted(r.0),
                };
                Err((e, None))
            }
            (State::ResponderExpectHello { fresh }, Message::ContactHello(m)) => self.on_hello(fresh, m, frame),
            (State::InitiatorExpectAnswer { e, dk_e, es, k_s, hello }, Message::ContactAnswer(m)) => {
                if m.version > PROTOCOL_VERSION || m.version < MIN_PROTOCOL_VERSION {
                    return Err((
                        Error::IncompatibleVersion { peer: m.version, ours: PROTOCOL_VERSION },
                        Some(AbortReason::INCOMPATIBLE_VERSION),
                    ));
                }
                self.transcript.extend_from_slice(frame);
                let peer = self.peer.clone().ok_or((Error::Misuse("initiator without a peer"), None))?;
                let ss = x(self.me.keys().io_exchange_private.as_bytes(), &peer.io_exchange).map_err(proto)?;
                let ee = x(&e, &m.ecdh_pub_key).map_err(proto)?;
                let se = x(self.me.keys().io_exchange_private.as_bytes(), &m.ecdh_pub_key).map_err(proto)?;
                let k_e = dk_e.decapsulate(&m.mlkem_ciphertext).map_err(proto)?;
                let k_i = self.me.io_kem().decapsulate(&m.static_ciphertext).map_err(proto)?;
                let c = combined([&es, &k_s.0, &ss, &ee, &se, &k_e.0, &k_i.0]);
                let th = transcript_hash(&peer, self.me.public(), &self.transcript);
                let agreed = Agreed::negotiate(m.capabilities, self.caps);
                let keys = derive_keys(th, &c[..], &m.aes_salt, &hello.chacha_salt, agreed).map_err(proto)?;
                self.status = HandshakeStatus(1);
                Ok(State::ExpectConfirm { keys: Box::new(keys), version: m.version })
            }
            (State::ExpectConfirm { keys, version }, Message::Confirm(tag)) => {
                let expected = match self.role {
                    Role::Accepter => keys.tag_r2a(),
                    Role::Requester => keys.tag_a2r(),
                };
                if !ct_eq(&tag, &expected) {
                    return Err((Error::IdentityNotProven, Some(AbortReason::KEY_CONFIRMATION)));
                }
                if self.role == Role::Requester {
                    self.send(&Message::Confirm(keys.tag_r2a()), false);
                }
                self.status = HandshakeStatus(3);
                Ok(State::Done { keys, version })
            }
            _ => Err((Error::UnexpectedMessage("contact handshake message out of order"), Some(AbortReason::PROTOCOL_ERROR))),
        }
    }

    /// The responder reads contactHello: opens the caller's identity, checks
    /// it is accepted, and answers with contactAnswer and its confirmation.
    fn on_hello(&mut self, f: Fresh, m: ContactHello, frame: &[u8]) -> Result<State, (Error, Option<AbortReason>)> {
        let proto = |e: Error| (e, Some(AbortReason::PROTOCOL_ERROR));
        if m.version < MIN_PROTOCOL_VERSION {
            return Err((Error::IncompatibleVersion { peer: m.version, ours: PROTOCOL_VERSION }, Some(AbortReason::INCOMPATIBLE_VERSION)));
        }
        let version = m.version.min(PROTOCOL_VERSION);
        self.transcript.extend_from_slice(frame);
        let me = self.me;
        let es = x(me.keys().io_exchange_private.as_bytes(), &m.ecdh_pub_key).map_err(proto)?;
        let k_s = me.io_kem().decapsulate(&m.mlkem_ciphertext).map_err(proto)?;
        let mut aad = Vec::with_capacity(2400);
        m.encode_bound(&mut aad);
        let mut sealed = m.sealed_identity.clone();
        // A hello that does not open was not made for our keys (or was changed).
        let n = hello_key(&es, &k_s, me.public(), &m.ecdh_pub_key, &m.mlkem_ciphertext)
            .and_then(|k| k.open_in_place([0; 12], &aad, &mut sealed))
            .map_err(|_| (Error::IdentityNotProven, Some(AbortReason::KEY_CONFIRMATION)))?;
        let (identity, ticket) = match n {
            PUBLIC_LEN => (&sealed[..n], None),
            _ if n == PUBLIC_LEN + TICKET_LEN => (&sealed[..PUBLIC_LEN], Some(Ticket::from_bytes(&sealed[PUBLIC_LEN..n]).map_err(proto)?)),
            _ => {
                return Err(proto(Error::Decode {
                    what: "contactHello.sealedIdentity",
                    why: "neither an identity nor an identity and a ticket",
                }))
            }
        };
        let caller = PublicIdentity::from_bytes(identity).map_err(proto)?;
        if !self.accept.contains(&caller) {
            let refuse = |why: Option<&'static str>| {
                let fp = caller.fingerprint().to_string();
                let e = match why {
                    None => Error::StrangerIdentity(fp),
                    Some(why) => Error::InvitationRefused { fingerprint: fp, why },
                };
                (e, Some(AbortReason::UNKNOWN_IDENTITY))
            };
            match (ticket, self.invitations_at) {
                (Some(t), Some(now)) => match t.verify(me, now) {
                    Ok(()) => self.invited = true,
                    Err(TicketError::Forged) => return Err(refuse(Some("its invitation was not made by your identity"))),
                    Err(TicketError::Expired(_)) => return Err(refuse(Some("its invitation has expired"))),
                },
                _ => return Err(refuse(None)),
            }
        }
        let ss = x(me.keys().io_exchange_private.as_bytes(), &caller.io_exchange).map_err(proto)?;
        let e_pub = x25519_base(&f.e);
        let ee = x(&f.e, &m.ecdh_pub_key).map_err(proto)?;
        let se = x(&f.e, &caller.io_exchange).map_err(proto)?;
        let (ct_e, k_e) = mlkem768_encapsulate_deterministic(&m.mlkem_pub_key, &f.m1).map_err(proto)?;
        let (ct_i, k_i) = mlkem768_encapsulate_deterministic(&caller.io_kem, &f.m2).map_err(proto)?;
        let answer = ContactAnswer {
            version,
            ecdh_pub_key: e_pub,
            mlkem_ciphertext: ct_e,
            static_ciphertext: ct_i,
            aes_salt: f.salt,
            capabilities: self.caps,
        };
        self.send(&Message::ContactAnswer(answer), true);
        let c = combined([&es, &k_s.0, &ss, &ee, &se, &k_e.0, &k_i.0]);
        let th = transcript_hash(me.public(), &caller, &self.transcript);
        let agreed = Agreed::negotiate(self.caps, m.capabilities);
        let keys = derive_keys(th, &c[..], &f.salt, &m.chacha_salt, agreed).map_err(proto)?;
        self.send(&Message::Confirm(keys.tag_a2r()), false);
        self.peer = Some(caller);
        self.status = HandshakeStatus(1);
        Ok(State::ExpectConfirm { keys: Box::new(keys), version })
    }

    /// The session of a completed handshake, and the other side's identity.
    pub fn into_session(self) -> Result<(Established, PublicIdentity)> {
        let State::Done { keys, version } = &self.state else {
            return Err(Error::Misuse("handshake not complete"));
        };
        let peer = self.peer.clone().ok_or(Error::Misuse("handshake not complete"))?;
        Ok((establish(self.role, keys, *version)?, peer))
    }
}

/// How long one rendezvous window lasts, in seconds.
pub const ROOM_WINDOW_SECS: u64 = 600;

/// The opaque room a receiver waits in during one window (PROTOCOL.md
/// §13.7): only holders of its public identity can compute it, and rooms of
/// different windows cannot be linked without it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactRoom(pub [u8; 16]);

impl core::fmt::Debug for ContactRoom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ContactRoom({})", self)
    }
}

impl core::fmt::Display for ContactRoom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl ContactRoom {
    /// The window a Unix time falls in.
    pub fn window_of(unix_secs: u64) -> u64 {
        unix_secs / ROOM_WINDOW_SECS
    }

    /// The room of `receiver` in `window`:
    /// `HKDF-SHA256(salt = "pqdrop/v1 contact room", ikm = receiver, info = u64be(window), L = 16)`.
    pub fn of(receiver: &PublicIdentity, window: u64) -> Result<Self> {
        let mut r = [0u8; 16];
        hkdf_sha256(ROOM_SALT, &receiver.to_bytes(), &[&window.to_be_bytes()], &mut r)?;
        Ok(ContactRoom(r))
    }
}

/// HKDF salt of the contact rooms.
const ROOM_SALT: &[u8] = b"pqdrop/v1 contact room";

#[cfg(test)]
mod tests;
