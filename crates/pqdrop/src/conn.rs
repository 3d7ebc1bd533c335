//! The secure channel: runs the sans-IO handshake over any async byte stream,
//! then moves encrypted record frames.
//!
//! Only ciphertext crosses the async side. Encryption and decryption happen in
//! the transfer logic (a blocking thread per side), so the socket tasks never
//! wait on crypto and the crypto never waits on the socket.

use std::time::Duration;

use pqdrop_proto::code::Code;
use pqdrop_proto::handshake::{Config, Established, Handshake, Role};
use pqdrop_proto::msg::{parse_frame_header, Capabilities, MsgType};
use pqdrop_proto::record::{RecordOpener, RecordSealer, RECORD_HEADROOM};
use pqdrop_proto::transfer::TransferMsg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, Result};

/// How long the whole handshake may take once the peer is connected.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer may stay silent mid-transfer before we give up.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Target plaintext size of a record: large enough for the AEAD's peak speed and
/// few syscalls, small enough to keep memory low.
pub const RECORD_TARGET: usize = 256 * 1024;

/// Maps a protocol error to the engine's, keeping the wrong-code case distinct.
pub(crate) fn proto_err(e: pqdrop_proto::Error) -> Error {
    match e {
        pqdrop_proto::Error::WrongCode => Error::WrongCode,
        other => Error::Proto(other),
    }
}

/// What the peer is told when we stop: the error, except that local I/O
/// errors are not described (they would reveal local paths).
pub(crate) fn abort_reason(e: &Error) -> String {
    match e {
        Error::Io { .. } => "the other side hit a local I/O error".into(),
        other => other.to_string(),
    }
}

/// The capabilities this build offers: AES-256-GCM only where the CPU has AES
/// instructions (otherwise ChaCha20-Poly1305 is faster and constant-time).
pub fn local_capabilities(cascade: bool) -> Capabilities {
    let mut c = Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME | Capabilities::ZSTD;
    if has_aes_hardware() {
        c |= Capabilities::AES_256_GCM;
    }
    if cascade {
        c |= Capabilities::CASCADE;
    }
    Capabilities(c)
}

fn has_aes_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Runs the handshake on `stream`. Returns the session and any bytes read past
/// the handshake (they are the first records). No application byte is sent
/// before both key confirmations succeeded.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    role: Role,
    code: &Code,
    caps: Capabilities,
) -> Result<(Established, Vec<u8>)> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake_inner(stream, role, code, caps))
        .await
        .map_err(|_| Error::PeerGone("the handshake timed out".into()))?
}

async fn handshake_inner<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    role: Role,
    code: &Code,
    caps: Capabilities,
) -> Result<(Established, Vec<u8>)> {
    let password = code.password();
    let nameplate = code.nameplate().to_string();
    let config = Config { password: &password, nameplate: &nameplate, capabilities: caps };
    let mut rng = rand_core::OsRng;
    let mut hs = match role {
        Role::Requester => Handshake::requester(config, &mut rng),
        Role::Accepter => Handshake::accepter(config, &mut rng),
    }
    .map_err(proto_err)?;
    let mut buf = vec![0u8; 8192];
    loop {
        if let Some(out) = hs.poll_transmit() {
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
        if hs.is_complete() {
            return Ok((hs.into_session().map_err(proto_err)?, Vec::new()));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::PeerGone("the connection closed during the handshake".into()));
        }
        let mut off = 0;
        while off < n && !hs.is_complete() {
            match hs.handle_input(&buf[off..n]) {
                Ok(used) => off += used,
                Err(e) => {
                    // Tell the peer why (an abort frame), then give up.
                    if let Some(out) = hs.poll_transmit() {
                        let _ = stream.write_all(&out).await;
                        let _ = stream.flush().await;
                    }
                    return Err(proto_err(e));
                }
            }
        }
        if hs.is_complete() {
            if let Some(out) = hs.poll_transmit() {
                stream.write_all(&out).await?;
                stream.flush().await?;
            }
            let rest = buf[off..n].to_vec();
            return Ok((hs.into_session().map_err(proto_err)?, rest));
        }
    }
}

/// One raw frame as read from the wire: its type and body (still encrypted).
#[derive(Debug)]
pub struct RawFrame {
    /// Frame type (50 or 51 after the handshake).
    pub msg_type: MsgType,
    /// Encrypted body.
    pub body: Vec<u8>,
}

/// Reads one frame. `Ok(None)` at a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, body: Vec<u8>) -> Result<Option<RawFrame>> {
    let mut head = [0u8; RECORD_HEADROOM + 4];
    let mut have = 0;
    let h = loop {
        if let Some(h) = parse_frame_header(&head[..have]).map_err(proto_err)? {
            break h;
        }
        if have == head.len() {
            return Err(Error::Protocol("frame header too long".into()));
        }
        let n = tokio::time::timeout(IDLE_TIMEOUT, r.read(&mut head[have..have + 1]))
            .await
            .map_err(|_| Error::PeerGone("no data for two minutes".into()))??;
        if n == 0 {
            return if have == 0 { Ok(None) } else { Err(Error::PeerGone("the connection closed mid-record".into())) };
        }
        have += n;
    };
    if h.msg_type != MsgType::RECORD && h.msg_type != MsgType::RECORD_FINAL {
        return Err(Error::Protocol("expected an encrypted record".into()));
    }
    let mut body = body;
    body.clear();
    body.resize(h.body_len, 0);
    tokio::time::timeout(IDLE_TIMEOUT, r.read_exact(&mut body))
        .await
        .map_err(|_| Error::PeerGone("no data for two minutes".into()))?
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::PeerGone("the connection closed mid-record".into())
            } else {
                e.into()
            }
        })?;
    Ok(Some(RawFrame { msg_type: h.msg_type, body }))
}

/// Decrypts a raw frame in place; returns the plaintext slice.
pub fn open_frame<'a>(opener: &mut RecordOpener, frame: &'a mut RawFrame) -> Result<&'a [u8]> {
    let n = opener.open(frame.msg_type, &mut frame.body).map_err(proto_err)?;
    Ok(&frame.body[..n])
}

/// Packs transfer messages into records and seals them. Synchronous: it runs on
/// the logic thread, and hands finished frames to the socket writer.
pub struct Packer {
    sealer: RecordSealer,
    buf: Vec<u8>,
    overhead: usize,
    spare: Vec<Vec<u8>>,
}

impl Packer {
    /// A packer around the sending half of a session.
    pub fn new(sealer: RecordSealer) -> Self {
        let overhead = sealer.cipher().overhead();
        let mut p = Self { sealer, buf: Vec::new(), overhead, spare: Vec::new() };
        p.reset();
        p
    }

    fn reset(&mut self) {
        let mut b = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(RECORD_HEADROOM + RECORD_TARGET + 64 * 1024));
        b.clear();
        b.resize(RECORD_HEADROOM, 0);
        self.buf = b;
    }

    /// Bytes of plaintext in the current record.
    pub fn pending(&self) -> usize {
        self.buf.len() - RECORD_HEADROOM
    }

    /// Appends a message to the current record.
    pub fn push(&mut self, m: &TransferMsg<'_>) {
        m.encode(&mut self.buf);
    }

    /// The current record's plaintext buffer, for writing a chunk's bytes in
    /// place (no copy): callers append with `extend`/`resize` and fill.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Gives back a frame buffer the writer has finished with, for reuse.
    pub fn recycle(&mut self, b: Vec<u8>) {
        if self.spare.len() < 4 {
            self.spare.push(b);
        }
    }

    /// Seals the current record (if it has content, or if `last`) and returns
    /// the frame: the buffer and where the frame starts in it (the header sits
    /// just before the in-place ciphertext, so nothing is copied).
    pub fn seal(&mut self, last: bool) -> Result<Option<OutFrame>> {
        if self.pending() == 0 && !last {
            return Ok(None);
        }
        let pt_len = self.pending();
        self.buf.resize(RECORD_HEADROOM + pt_len + self.overhead, 0);
        let range = self.sealer.seal(&mut self.buf, pt_len, last).map_err(proto_err)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.truncate(range.end);
        self.reset();
        Ok(Some(OutFrame { buf, start: range.start }))
    }
}

/// A sealed frame ready to write: `buf[start..]`.
#[derive(Debug)]
pub struct OutFrame {
    /// The buffer.
    pub buf: Vec<u8>,
    /// Where the frame starts.
    pub start: usize,
}

/// Writes frames from a channel to the socket until the channel closes, then
/// shuts the write side down. Returned buffers go back through `recycle`.
pub async fn writer_task<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: tokio::sync::mpsc::Receiver<OutFrame>,
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    while let Some(frame) = rx.recv().await {
        tokio::time::timeout(IDLE_TIMEOUT, w.write_all(&frame.buf[frame.start..]))
            .await
            .map_err(|_| Error::PeerGone("the other side stopped reading for two minutes".into()))??;
        let _ = recycle.send(frame.buf);
    }
    w.flush().await?;
    let _ = w.shutdown().await;
    Ok(())
}
