//! The hybrid handshake: CPace (code-authenticated X25519) combined with
//! ML-KEM-768, in Ixian's requestAdd2 / acceptAdd2 / keys2 pattern, followed by
//! explicit key confirmation both ways.
//!
//! Roles: the **requester** typed the code; the **accepter** made it.
//!
//! ```text
//! requester                                   accepter
//!   requestAdd2(version, nonce)          ->                     status 0
//!                                        <-  acceptAdd2(version, Ya, ek, aesSalt, caps)   status 1
//!   keys2(Yb, ct, chaChaSalt, caps)      ->                     status 2 (requester)
//!   confirm(tag_r)                       ->
//!                                        <-  confirm(tag_a)     status 3 (accepter, after checking tag_r)
//!   status 3 (after checking tag_a)
//! ```
//!
//! The object is sans-IO, in the style of quinn-proto: feed received bytes to
//! [`Handshake::handle_input`], send whatever [`Handshake::poll_transmit`]
//! returns, and once [`Handshake::is_complete`] call [`Handshake::into_session`]
//! to get the record layer. Randomness is injected, so a fixed RNG gives a fixed
//! transcript (see PROTOCOL.md's vectors).
//!
//! The key schedule is specified in PROTOCOL.md §5; every label is in [`crate::labels`].

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::cpace::{self, CpaceSecret};
use crate::msg::{
    parse_frame_header, AbortReason, AcceptAdd2, Agreed, Capabilities, Keys2, Message, MsgType, RequestAdd2, MAX_HANDSHAKE_BODY,
    MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use crate::primitives::{ct_eq, hmac_sha256, sha512, HkdfPrk, KemSecret, MlKemDecapsulationKey};
use crate::record::{RecordCipher, RecordOpener, RecordSealer};
use crate::{labels, Error, Result};

/// Which side of the handshake this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Typed the code; sends requestAdd2 and keys2.
    Requester,
    /// Made the code; sends acceptAdd2.
    Accepter,
}

/// Ixian's `handshakeStatus`: 0 request sent, 1 request accepted, 2 keys2 sent
/// (requester), 3 complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HandshakeStatus(pub u8);

/// The key-encapsulation mechanism, abstracted so that tests can use a
/// deterministic implementation to produce fixed vectors. Production uses
/// [`MlKem768`] (aws-lc-rs).
pub trait Kem {
    /// The private half kept by the accepter.
    type DecapsulationKey;
    /// Generates a key pair; returns the private key and the encoded public key.
    fn generate(&mut self) -> Result<(Self::DecapsulationKey, Vec<u8>)>;
    /// Encapsulates to an encoded public key; returns (ciphertext, secret).
    fn encapsulate(&mut self, ek: &[u8]) -> Result<(Vec<u8>, KemSecret)>;
    /// Decapsulates a ciphertext.
    fn decapsulate(&self, dk: &Self::DecapsulationKey, ct: &[u8]) -> Result<KemSecret>;
}

/// ML-KEM-768 with its randomness drawn from the OS CSPRNG (see `primitives`).
#[derive(Debug, Default, Clone, Copy)]
pub struct MlKem768;

impl Kem for MlKem768 {
    type DecapsulationKey = MlKemDecapsulationKey;
    fn generate(&mut self) -> Result<(MlKemDecapsulationKey, Vec<u8>)> {
        MlKemDecapsulationKey::generate()
    }
    fn encapsulate(&mut self, ek: &[u8]) -> Result<(Vec<u8>, KemSecret)> {
        crate::primitives::mlkem768_encapsulate(ek)
    }
    fn decapsulate(&self, dk: &MlKemDecapsulationKey, ct: &[u8]) -> Result<KemSecret> {
        dk.decapsulate(ct)
    }
}

/// What both sides need to know before they start.
pub struct Config<'a> {
    /// The CPace password: the secret words of the code (never sent anywhere).
    pub password: &'a [u8],
    /// The nameplate (the public room number), bound into the CPace channel id.
    pub nameplate: &'a str,
    /// The capabilities this side offers.
    pub capabilities: Capabilities,
}

/// The traffic keys and metadata of a completed handshake.
pub struct Established {
    /// Our role.
    pub role: Role,
    /// What the two sides agreed on.
    pub agreed: Agreed,
    /// The protocol version in use.
    pub version: u64,
    /// Our sending direction.
    pub sealer: RecordSealer,
    /// Our receiving direction.
    pub opener: RecordOpener,
    /// SHA-512 of the transcript (public; identifies the session).
    pub transcript_hash: [u8; 64],
    /// A secret both sides share, for application-level proofs (for example resume).
    pub exporter: Zeroizing<[u8; 32]>,
}

/// Everything the key schedule outputs.
struct Keys {
    th: [u8; 64],
    aes_r2a: Zeroizing<[u8; 32]>,
    aes_a2r: Zeroizing<[u8; 32]>,
    chacha_r2a: Zeroizing<[u8; 32]>,
    chacha_a2r: Zeroizing<[u8; 32]>,
    confirm_r2a: Zeroizing<[u8; 32]>,
    confirm_a2r: Zeroizing<[u8; 32]>,
    exporter: Zeroizing<[u8; 32]>,
    agreed: Agreed,
}

impl Keys {
    fn tag_r2a(&self) -> [u8; 32] {
        hmac_sha256(&self.confirm_r2a[..], &[&self.th])
    }
    fn tag_a2r(&self) -> [u8; 32] {
        hmac_sha256(&self.confirm_a2r[..], &[&self.th])
    }
}

fn expand32(prk: &HkdfPrk, info: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    prk.expand(info, &mut k[..])?;
    Ok(k)
}

/// The key schedule of the code handshake (PROTOCOL.md §6): the transcript
/// hash over CI and the frames, and `ISK || ss` as the combined secret.
fn key_schedule(
    ci: &[u8],
    transcript: &[u8],
    isk: &[u8; 64],
    kem_ss: &KemSecret,
    aes_salt: &[u8; 32],
    chacha_salt: &[u8; 32],
    agreed: Agreed,
) -> Result<Keys> {
    let th = sha512(&[&cpace::lv_cat(&[labels::TRANSCRIPT, ci]), transcript]);
    // Ixian order: the (CPace) ECDH secret first, then the KEM secret.
    let mut combined = Zeroizing::new([0u8; 96]);
    combined[..64].copy_from_slice(isk);
    combined[64..].copy_from_slice(&kem_ss.0);
    derive_keys(th, &combined[..], aes_salt, chacha_salt, agreed)
}

/// The part of the key schedule both handshakes share (PROTOCOL.md §6, from
/// `prk_aes` on): traffic, confirmation and exporter keys from the
/// transcript hash `th`, the combined secret and the two salts.
fn derive_keys(th: [u8; 64], combined: &[u8], aes_salt: &[u8; 32], chacha_salt: &[u8; 32], agreed: Agreed) -> Result<Keys> {
    use labels::*;
    let prk_aes = HkdfPrk::extract(aes_salt, combined);
    let prk_chacha = HkdfPrk::extract(chacha_salt, combined);
    let prk_confirm = HkdfPrk::extract(&th, combined);
    Ok(Keys {
        aes_r2a: expand32(&prk_aes, &[AES_KEY, DIR_REQUESTER_TO_ACCEPTER, &th])?,
        aes_a2r: expand32(&prk_aes, &[AES_KEY, DIR_ACCEPTER_TO_REQUESTER, &th])?,
        chacha_r2a: expand32(&prk_chacha, &[CHACHA_KEY, DIR_REQUESTER_TO_ACCEPTER, &th])?,
        chacha_a2r: expand32(&prk_chacha, &[CHACHA_KEY, DIR_ACCEPTER_TO_REQUESTER, &th])?,
        confirm_r2a: expand32(&prk_confirm, &[CONFIRM_KEY, DIR_REQUESTER_TO_ACCEPTER])?,
        confirm_a2r: expand32(&prk_confirm, &[CONFIRM_KEY, DIR_ACCEPTER_TO_REQUESTER])?,
        exporter: expand32(&prk_confirm, &[EXPORTER])?,
        th,
        agreed,
    })
}

/// The CPace channel identifier: binds the protocol and the nameplate.
fn channel_id(nameplate: &str) -> Vec<u8> {
    cpace::lv_cat(&[labels::CPACE_CI, nameplate.as_bytes()])
}

/// The CPace session id: fresh randomness from both sides.
fn session_id(requester_nonce: &[u8; 32], aes_salt: &[u8; 32]) -> [u8; 64] {
    let mut sid = [0u8; 64];
    sid[..32].copy_from_slice(requester_nonce);
    sid[32..].copy_from_slice(aes_salt);
    sid
}

enum State<D> {
    RequesterExpectAccept { nonce: [u8; 32], y: CpaceSecret, chacha_salt: [u8; 32] },
    AccepterExpectRequest { y: CpaceSecret, aes_salt: [u8; 32], dk: D, ek: Vec<u8> },
    AccepterExpectKeys2 { y: CpaceSecret, aes_salt: [u8; 32], dk: D, sid: [u8; 64], ya: [u8; 32], caps: Capabilities, version: u64 },
    ExpectConfirm { keys: Box<Keys>, version: u64 },
    Done { keys: Box<Keys>, version: u64 },
    Failed,
}

/// The handshake state machine of one side. See the module documentation.
pub struct Handshake<K: Kem = MlKem768> {
    role: Role,
    state: State<K::DecapsulationKey>,
    kem: K,
    password: Zeroizing<Vec<u8>>,
    ci: Vec<u8>,
    caps: Capabilities,
    transcript: Vec<u8>,
    frames: FrameBuf,
    outbuf: Vec<u8>,
    status: HandshakeStatus,
}

impl<K: Kem> core::fmt::Debug for Handshake<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handshake").field("role", &self.role).field("status", &self.status).finish_non_exhaustive()
    }
}

fn random32<R: RngCore + CryptoRng>(rng: &mut R) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

impl Handshake<MlKem768> {
    /// Starts the requester side with the production ML-KEM-768.
    pub fn requester<R: RngCore + CryptoRng>(config: Config<'_>, rng: &mut R) -> Result<Self> {
        Self::requester_with_kem(config, MlKem768, rng)
    }
    /// Starts the accepter side with the production ML-KEM-768.
    pub fn accepter<R: RngCore + CryptoRng>(config: Config<'_>, rng: &mut R) -> Result<Self> {
        Self::accepter_with_kem(config, MlKem768, rng)
    }
}

impl<K: Kem> Handshake<K> {
    fn base(role: Role, config: &Config<'_>, kem: K, state: State<K::DecapsulationKey>) -> Self {
        Self {
            role,
            state,
            kem,
            password: Zeroizing::new(config.password.to_vec()),
            ci: channel_id(config.nameplate),
            caps: config.capabilities,
            transcript: Vec::with_capacity(2600),
            frames: FrameBuf::default(),
            outbuf: Vec::new(),
            status: HandshakeStatus(0),
        }
    }

    /// Starts the requester side: queues requestAdd2 (status 0).
    pub fn requester_with_kem<R: RngCore + CryptoRng>(config: Config<'_>, kem: K, rng: &mut R) -> Result<Self> {
        let nonce = random32(rng);
        let y = CpaceSecret::random(rng);
        let chacha_salt = random32(rng);
        let mut hs = Self::base(Role::Requester, &config, kem, State::RequesterExpectAccept { nonce, y, chacha_salt });
        hs.send(&Message::RequestAdd2(RequestAdd2 { version: PROTOCOL_VERSION, nonce }), true);
        Ok(hs)
    }

    /// Starts the accepter side: generates its secrets and waits for requestAdd2.
    pub fn accepter_with_kem<R: RngCore + CryptoRng>(config: Config<'_>, mut kem: K, rng: &mut R) -> Result<Self> {
        let y = CpaceSecret::random(rng);
        let aes_salt = random32(rng);
        let (dk, ek) = kem.generate()?;
        Ok(Self::base(Role::Accepter, &config, kem, State::AccepterExpectRequest { y, aes_salt, dk, ek }))
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Ixian's handshakeStatus (0..=3).
    pub fn status(&self) -> HandshakeStatus {
        self.status
    }

    /// True once both key confirmations succeeded. Only then may application data flow.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// Takes the bytes to send to the peer, if any. Call after construction,
    /// after every [`Self::handle_input`], and once more after an error (it may
    /// hold an abort message telling the peer why).
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

    /// Feeds bytes received from the peer. Returns how many were consumed: once
    /// the handshake completes, the rest of `data` belongs to the record layer
    /// and is left unconsumed. An error is final; flush [`Self::poll_transmit`]
    /// and close the connection.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<usize> {
        let mut consumed = 0;
        while consumed < data.len() && !self.is_complete() {
            if matches!(self.state, State::Failed) {
                return Err(Error::Misuse("handshake already failed"));
            }
            match self.frames.feed(data, &mut consumed) {
                Ok(Some((t, frame, header_len))) => self.handle_frame(t, &frame, header_len)?,
                Ok(None) => {}
                Err(e) => return self.fail(e, Some(AbortReason::PROTOCOL_ERROR)),
            }
        }
        Ok(consumed)
    }

    fn fail<T>(&mut self, e: Error, abort: Option<AbortReason>) -> Result<T> {
        self.state = State::Failed;
        self.outbuf.clear();
        if let Some(r) = abort {
            self.send(&Message::Abort(r), false);
        }
        Err(e)
    }

    fn handle_frame(&mut self, t: MsgType, frame: &[u8], header_len: usize) -> Result<()> {
        let msg = match Message::decode(t, &frame[header_len..]) {
            Ok(m) => m,
            Err(e) => return self.fail(e, Some(AbortReason::PROTOCOL_ERROR)),
        };
        let state = core::mem::replace(&mut self.state, State::Failed);
        let result = self.step(state, msg, frame);
        match result {
            Ok(next) => {
                self.state = next;
                Ok(())
            }
            Err((e, abort)) => self.fail(e, abort),
        }
    }

    /// One transition. Consumes the old state; on error returns what to tell the peer.
    fn step(
        &mut self,
        state: State<K::DecapsulationKey>,
        msg: Message,
        frame: &[u8],
    ) -> Result<State<K::DecapsulationKey>, (Error, Option<AbortReason>)> {
        let proto = |e: Error| (e, Some(AbortReason::PROTOCOL_ERROR));
        match (state, msg) {
            (state, Message::Abort(r)) => {
                // A peer can only have found a wrong code once it checked our
                // confirmation tag: for the requester, after it sent keys2 and
                // its tag. Earlier, abort(1) is a peer that broke the protocol,
                // not a wrong code.
                let confirmable = self.role == Role::Requester && matches!(state, State::ExpectConfirm { .. });
                let e = match r {
                    AbortReason::KEY_CONFIRMATION if confirmable => Error::WrongCode,
                    AbortReason::KEY_CONFIRMATION => Error::UnexpectedMessage("a wrong-code abort before any key confirmation"),
                    _ => Error::PeerAborted(r.0),
                };
                Err((e, None))
            }
            (State::AccepterExpectRequest { y, aes_salt, dk, ek }, Message::RequestAdd2(m)) => {
                if m.version < MIN_PROTOCOL_VERSION {
                    return Err((
                        Error::IncompatibleVersion { peer: m.version, ours: PROTOCOL_VERSION },
                        Some(AbortReason::INCOMPATIBLE_VERSION),
                    ));
                }
                let version = m.version.min(PROTOCOL_VERSION);
                self.transcript.extend_from_slice(frame);
                let sid = session_id(&m.nonce, &aes_salt);
                // g is password-derived: anyone holding it could test guesses offline.
                let g = Zeroizing::new(cpace::calculate_generator(&self.password, &self.ci, &sid));
                let ya = y.public_value(&g);
                let caps = self.caps;
                self.send(
                    &Message::AcceptAdd2(AcceptAdd2 { version, ecdh_pub_key: ya, mlkem_pub_key: ek, aes_salt, capabilities: Some(caps) }),
                    true,
                );
                self.status = HandshakeStatus(1);
                Ok(State::AccepterExpectKeys2 { y, aes_salt, dk, sid, ya, caps, version })
            }
            (State::RequesterExpectAccept { nonce, y, chacha_salt }, Message::AcceptAdd2(m)) => {
                if m.version > PROTOCOL_VERSION || m.version < MIN_PROTOCOL_VERSION {
                    return Err((
                        Error::IncompatibleVersion { peer: m.version, ours: PROTOCOL_VERSION },
                        Some(AbortReason::INCOMPATIBLE_VERSION),
                    ));
                }
                self.status = HandshakeStatus(1);
                self.transcript.extend_from_slice(frame);
                let sid = session_id(&nonce, &m.aes_salt);
                // g is password-derived: anyone holding it could test guesses offline.
                let g = Zeroizing::new(cpace::calculate_generator(&self.password, &self.ci, &sid));
                let yb = y.public_value(&g);
                let k = y.shared_k(&m.ecdh_pub_key).map_err(proto)?;
                let (ct, ss) = self.kem.encapsulate(&m.mlkem_pub_key).map_err(proto)?;
                let caps = self.caps;
                self.send(&Message::Keys2(Keys2 { ecdh_pub_key: yb, mlkem_ciphertext: ct, chacha_salt, capabilities: Some(caps) }), true);
                let isk = cpace::isk_ir(&sid, &k, &m.ecdh_pub_key, b"", &yb, b"");
                let agreed = Agreed::negotiate(m.capabilities.unwrap_or(Capabilities::DEFAULTS), caps);
                let keys = key_schedule(&self.ci, &self.transcript, &isk, &ss, &m.aes_salt, &chacha_salt, agreed).map_err(proto)?;
                self.send(&Message::Confirm(keys.tag_r2a()), false);
                self.status = HandshakeStatus(2);
                Ok(State::ExpectConfirm { keys: Box::new(keys), version: m.version })
            }
            (State::AccepterExpectKeys2 { y, aes_salt, dk, sid, ya, caps, version }, Message::Keys2(m)) => {
                self.transcript.extend_from_slice(frame);
                let k = y.shared_k(&m.ecdh_pub_key).map_err(proto)?;
                let ss = self.kem.decapsulate(&dk, &m.mlkem_ciphertext).map_err(proto)?;
                let isk = cpace::isk_ir(&sid, &k, &ya, b"", &m.ecdh_pub_key, b"");
                let agreed = Agreed::negotiate(caps, m.capabilities.unwrap_or(Capabilities::DEFAULTS));
                let keys = key_schedule(&self.ci, &self.transcript, &isk, &ss, &aes_salt, &m.chacha_salt, agreed).map_err(proto)?;
                Ok(State::ExpectConfirm { keys: Box::new(keys), version })
            }
            (State::ExpectConfirm { keys, version }, Message::Confirm(tag)) => {
                let expected = match self.role {
                    Role::Accepter => keys.tag_r2a(),
                    Role::Requester => keys.tag_a2r(),
                };
                if !ct_eq(&tag, &expected) {
                    return Err((Error::WrongCode, Some(AbortReason::KEY_CONFIRMATION)));
                }
                if self.role == Role::Accepter {
                    self.send(&Message::Confirm(keys.tag_a2r()), false);
                }
                self.status = HandshakeStatus(3);
                Ok(State::Done { keys, version })
            }
            _ => Err((Error::UnexpectedMessage("handshake message out of order"), Some(AbortReason::PROTOCOL_ERROR))),
        }
    }

    /// Turns a completed handshake into the record layer of both directions.
    pub fn into_session(self) -> Result<Established> {
        let State::Done { keys, version } = self.state else {
            return Err(Error::Misuse("handshake not complete"));
        };
        establish(self.role, &keys, version)
    }
}

/// The record layer of both directions from a completed key schedule: the
/// requester sends with the `r2a` keys and receives with `a2r`.
fn establish(role: Role, keys: &Keys, version: u64) -> Result<Established> {
    let cipher = keys.agreed.cipher;
    let r2a = RecordCipher::new(cipher, &keys.aes_r2a, &keys.chacha_r2a)?;
    let a2r = RecordCipher::new(cipher, &keys.aes_a2r, &keys.chacha_a2r)?;
    let (send, recv) = match role {
        Role::Requester => (r2a, a2r),
        Role::Accepter => (a2r, r2a),
    };
    Ok(Established {
        role,
        agreed: keys.agreed,
        version,
        sealer: RecordSealer::new(send),
        opener: RecordOpener::new(recv),
        transcript_hash: keys.th,
        exporter: keys.exporter.clone(),
    })
}

/// Cuts handshake frames out of the byte stream without ever taking a byte
/// past the last handshake frame: what follows belongs to the record layer.
#[derive(Default)]
struct FrameBuf {
    inbuf: Vec<u8>,
}

impl FrameBuf {
    /// The header of the frame being buffered, once complete. Only handshake
    /// types are allowed, so a peer cannot make us buffer a 1 MiB record early.
    fn header(&self) -> Result<Option<crate::msg::FrameHeader>> {
        match parse_frame_header(&self.inbuf)? {
            Some(h) if h.body_len > MAX_HANDSHAKE_BODY || h.msg_type.0 >= MsgType::RECORD.0 => {
                Err(Error::UnexpectedMessage("record before the handshake completed"))
            }
            other => Ok(other),
        }
    }

    /// Takes bytes from `data[*consumed..]` up to the end of the current
    /// frame; returns the frame (type, whole frame, header length) once whole.
    fn feed(&mut self, data: &[u8], consumed: &mut usize) -> Result<Option<(MsgType, Vec<u8>, usize)>> {
        let need = match self.header()? {
            Some(h) => h.frame_len() - self.inbuf.len(),
            // Read the header byte by byte so that we never take bytes
            // beyond the last handshake frame.
            None => 1,
        };
        let take = need.min(data.len() - *consumed);
        self.inbuf.extend_from_slice(&data[*consumed..*consumed + take]);
        *consumed += take;
        match self.header()? {
            Some(h) if self.inbuf.len() == h.frame_len() => Ok(Some((h.msg_type, core::mem::take(&mut self.inbuf), h.header_len))),
            _ => Ok(None),
        }
    }
}

pub mod contact;

#[cfg(test)]
mod tests;
