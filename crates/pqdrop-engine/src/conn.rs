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
use pqdrop_proto::transfer::{StopCode, TransferMsg};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Error, Result};

// The liveness rules (limits, KeepAlive timing) live in the protocol core
// as timers that are given the time; this module only feeds them a clock.
pub use pqdrop_proto::liveness::{keepalive_interval, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, LEGACY_IDLE_TIMEOUT};
use pqdrop_proto::liveness::{IdleTimer, KeepAliveTimer, Reading, Side, KEEPALIVE_RECORD};
use pqdrop_proto::msg::Agreed;

/// Target plaintext size of a record: large enough for the AEAD's peak speed and
/// few syscalls, small enough to keep memory low.
pub const RECORD_TARGET: usize = 512 * 1024;

/// Maps a protocol error to the engine's, keeping the wrong-code case distinct.
pub(crate) fn proto_err(e: pqdrop_proto::Error) -> Error {
    Error::from(e)
}

/// Tunes a TCP connection for transfers: no Nagle delay for the small
/// handshake messages, and TCP keepalive so a peer that vanished is noticed
/// even while we wait on it without a timeout (for example at the consent
/// prompt). Best effort.
pub fn tune_tcp(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(15)).with_interval(Duration::from_secs(5));
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let ka = ka.with_retries(4);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
}

/// What the peer is told when we stop: the error, except that local I/O
/// errors are not described (they would reveal local paths).
/// What this side tells the other when it stops for `e`: a code that says
/// whose side the problem is on, and a text without local details (paths
/// and OS errors stay here).
pub(crate) fn abort_reason(e: &Error) -> (StopCode, String) {
    match e {
        Error::NoSpace { need, .. } => (
            StopCode::NO_SPACE,
            format!("the receiver does not have enough free space: {} more are needed", crate::error::human_bytes(*need)),
        ),
        Error::OutputDir { .. } => (StopCode::LOCAL_IO, "the receiver cannot write to its output folder".into()),
        Error::Io { err, .. } if err.kind() == std::io::ErrorKind::StorageFull => {
            (StopCode::NO_SPACE, "the other side's disk is full".into())
        }
        Error::Io { .. } => (StopCode::LOCAL_IO, "the other side hit a local I/O error".into()),
        Error::Exists(_) => (StopCode::EXISTS, e.to_string()),
        Error::Integrity(_) => (StopCode::INTEGRITY, e.to_string()),
        Error::Limit(_) => (StopCode::LIMIT, e.to_string()),
        Error::PeerViolation(_) | Error::Hostile { .. } | Error::Proto(_) => (StopCode::PEER_VIOLATION, e.to_string()),
        Error::Bug(_) => (StopCode::UNSPECIFIED, "the other side hit a bug in pqdrop".into()),
        _ => (StopCode::UNSPECIFIED, e.to_string()),
    }
}

/// The capabilities this build offers: AES-256-GCM only where the CPU has AES
/// instructions (otherwise ChaCha20-Poly1305 is faster and constant-time).
pub fn local_capabilities(cascade: bool) -> Capabilities {
    let mut c = Capabilities::CHACHA20_POLY1305
        | Capabilities::RESUME
        | Capabilities::ZSTD
        | Capabilities::STOP_CODES
        | Capabilities::KEEPALIVE
        | Capabilities::SKIP
        | Capabilities::UNHASHED_FRESH
        | Capabilities::IDENTITY;
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
        .map_err(|_| Error::HandshakeTimeout { secs: HANDSHAKE_TIMEOUT.as_secs() })?
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
    let rest = run_handshake(stream, &mut hs).await?;
    Ok((hs.into_session().map_err(proto_err)?, rest))
}

/// The two handshakes (with a code, between contacts), as the engine drives them.
pub(crate) trait HandshakeIo {
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn handle_input(&mut self, data: &[u8]) -> pqdrop_proto::Result<usize>;
    fn is_complete(&self) -> bool;
}

impl HandshakeIo for Handshake {
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Handshake::poll_transmit(self)
    }
    fn handle_input(&mut self, data: &[u8]) -> pqdrop_proto::Result<usize> {
        Handshake::handle_input(self, data)
    }
    fn is_complete(&self) -> bool {
        Handshake::is_complete(self)
    }
}

impl HandshakeIo for pqdrop_proto::handshake::contact::ContactHandshake<'_> {
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        pqdrop_proto::handshake::contact::ContactHandshake::poll_transmit(self)
    }
    fn handle_input(&mut self, data: &[u8]) -> pqdrop_proto::Result<usize> {
        pqdrop_proto::handshake::contact::ContactHandshake::handle_input(self, data)
    }
    fn is_complete(&self) -> bool {
        pqdrop_proto::handshake::contact::ContactHandshake::is_complete(self)
    }
}

/// Moves a handshake's bytes until it completes; returns the bytes read past
/// it (they are the first records). On an error, the handshake's abort frame
/// is sent first, so the peer learns why.
pub(crate) async fn run_handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, hs: &mut impl HandshakeIo) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 8192];
    loop {
        if let Some(out) = hs.poll_transmit() {
            stream.write_all(&out).await.map_err(net_err)?;
            stream.flush().await.map_err(net_err)?;
        }
        if hs.is_complete() {
            return Ok(Vec::new());
        }
        let n = stream.read(&mut buf).await.map_err(net_err)?;
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
                stream.write_all(&out).await.map_err(net_err)?;
                stream.flush().await.map_err(net_err)?;
            }
            return Ok(buf[off..n].to_vec());
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

/// A socket error: the peer going away is `PeerGone` (exit code "disconnected",
/// run again to resume), anything else stays an I/O error.
pub(crate) fn net_err(e: std::io::Error) -> Error {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Error::PeerGone(format!("the connection was closed ({e})"))
        }
        _ => Error::from(e),
    }
}

/// The error for a peer that sent nothing for `d`.
fn silent(d: Duration) -> Error {
    let secs = d.as_secs_f64();
    let shown = if secs < 10.0 && secs.fract() != 0.0 { format!("{secs:.1}") } else { format!("{}", d.as_secs()) };
    Error::PeerGone(format!("the other side sent nothing for {shown} s"))
}

/// The reading half of liveness: the core's [`IdleTimer`] on the clock of
/// this connection. Every read of the peer's records goes through it, so a
/// silent peer is noticed however busy the logic thread is.
#[derive(Debug)]
pub struct IdleWatch {
    origin: std::time::Instant,
    timer: IdleTimer,
}

impl IdleWatch {
    /// The watch for `side` of a session that agreed `agreed`, with this
    /// side's `idle` limit, starting now.
    pub fn new(agreed: &Agreed, side: Side, idle: Duration) -> Self {
        IdleWatch { origin: std::time::Instant::now(), timer: IdleTimer::new(agreed, side, idle, Duration::ZERO) }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The reader is about to read again after its consumer held it off: the
    /// time nobody read does not count against the peer.
    pub fn resumed(&mut self) {
        let now = self.now();
        self.timer.on_receive(now);
    }

    /// One read into `buf`, within the timer's deadline for `reading`.
    async fn read<R: AsyncRead + Unpin>(&mut self, r: &mut R, buf: &mut [u8], reading: Reading) -> Result<usize> {
        loop {
            let n = match self.timer.poll_timeout(reading) {
                None => r.read(buf).await,
                Some(deadline) => {
                    let at = tokio::time::Instant::from_std(self.origin + deadline);
                    // `read` is cancel-safe: a read cut short lost no bytes.
                    match tokio::time::timeout_at(at, r.read(buf)).await {
                        Ok(res) => res,
                        Err(_) => match self.timer.handle_timeout(self.now(), reading) {
                            Some(limit) => return Err(silent(limit)),
                            None => continue,
                        },
                    }
                }
            }
            .map_err(net_err)?;
            if n > 0 {
                let now = self.now();
                self.timer.on_receive(now);
            }
            return Ok(n);
        }
    }
}

/// Reads one frame. `Ok(None)` at a clean end of stream between frames.
/// `watch` bounds the peer's silence (PROTOCOL.md §8).
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, body: Vec<u8>, watch: &mut IdleWatch) -> Result<Option<RawFrame>> {
    let mut head = [0u8; RECORD_HEADROOM + 4];
    let mut have = 0;
    let h = loop {
        if let Some(h) = parse_frame_header(&head[..have]).map_err(proto_err)? {
            break h;
        }
        if have == head.len() {
            return Err(Error::PeerViolation("frame header too long".into()));
        }
        let reading = if have == 0 { Reading::BetweenRecords } else { Reading::MidRecord };
        let n = watch.read(r, &mut head[have..have + 1], reading).await?;
        if n == 0 {
            return if have == 0 { Ok(None) } else { Err(Error::PeerGone("the connection closed mid-record".into())) };
        }
        have += n;
    };
    if h.msg_type != MsgType::RECORD && h.msg_type != MsgType::RECORD_FINAL {
        return Err(Error::PeerViolation("expected an encrypted record".into()));
    }
    // Reuse the buffer without clearing it: the reads overwrite what we keep.
    let mut body = body;
    if body.len() < h.body_len {
        body.resize(h.body_len, 0);
    } else {
        body.truncate(h.body_len);
    }
    let mut got = 0;
    while got < body.len() {
        let n = watch.read(r, &mut body[got..], Reading::MidRecord).await?;
        if n == 0 {
            return Err(Error::PeerGone("the connection closed mid-record".into()));
        }
        got += n;
    }
    Ok(Some(RawFrame { msg_type: h.msg_type, body }))
}

/// Decrypts a raw frame in place; returns the plaintext slice.
pub fn open_frame<'a>(opener: &mut RecordOpener, frame: &'a mut RawFrame) -> Result<&'a [u8]> {
    let n = opener.open(frame.msg_type, &mut frame.body).map_err(proto_err)?;
    Ok(&frame.body[..n])
}

/// Size of every record buffer: header room, the largest plaintext and two tags.
/// Allocated once (zeroed lazily by the OS) and reused, so building a record
/// never clears or reallocates memory.
const BUF_LEN: usize = RECORD_HEADROOM + pqdrop_proto::msg::MAX_RECORD_PLAINTEXT + pqdrop_proto::record::MAX_OVERHEAD;

/// The outbound pipeline of one side: the caller's thread builds plaintext
/// records in place, a sealer thread encrypts them, and an async task writes
/// them to the socket. Three stages on separate threads, so reading files,
/// encrypting and socket writes overlap; buffers circulate and are reused.
pub struct Outbound {
    buf: Vec<u8>,
    len: usize,
    to_sealer: Option<std::sync::mpsc::SyncSender<(Vec<u8>, usize, bool)>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    scratch: Vec<u8>,
    sealer_thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Outbound {
    /// Starts the sealer thread and the writer task (on the current tokio
    /// runtime). Returns the pipeline and the writer task's handle, whose
    /// result holds the real cause when the connection fails. The sealer
    /// thread runs the sending half of liveness: when the session agreed
    /// KeepAlive, it seals one whenever nothing else went out for
    /// [`keepalive_interval`] of the peer's `idle` limit, even while the
    /// logic thread is blocked (on its user, its disk or its output).
    pub fn start<W: AsyncWrite + Unpin + Send + 'static>(
        w: W,
        mut sealer: RecordSealer,
        agreed: &Agreed,
        idle: Duration,
    ) -> (Self, tokio::task::JoinHandle<Result<()>>) {
        let (to_sealer, from_builder) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize, bool)>(2);
        let (to_writer, from_sealer) = tokio::sync::mpsc::channel::<OutFrame>(2);
        let (spare_tx, spare) = std::sync::mpsc::channel();
        let writer = tokio::spawn(writer_task(w, from_sealer, spare_tx));
        let overhead = sealer.cipher().overhead();
        let origin = std::time::Instant::now();
        let mut keepalive = KeepAliveTimer::new(agreed, idle, Duration::ZERO);
        let sealer_thread = std::thread::Builder::new()
            .name("pqdrop-seal".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                // This thread owns the sealer, so a KeepAlive (PROTOCOL.md
                // §8) keeps the order of records and nothing follows the
                // final one.
                loop {
                    let wait = keepalive.poll_timeout().map_or(Duration::from_secs(3600), |due| due.saturating_sub(origin.elapsed()));
                    let (mut buf, len, last) = match from_builder.recv_timeout(wait) {
                        Ok(job) => job,
                        Err(RecvTimeoutError::Timeout) if keepalive.handle_timeout(origin.elapsed()) => {
                            let len = RECORD_HEADROOM + KEEPALIVE_RECORD.len();
                            let mut buf = vec![0u8; len + overhead];
                            buf[RECORD_HEADROOM..len].copy_from_slice(&KEEPALIVE_RECORD);
                            (buf, len, false)
                        }
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    };
                    let range = sealer.seal(&mut buf[..len + overhead], len - RECORD_HEADROOM, last).map_err(proto_err)?;
                    keepalive.on_transmit(origin.elapsed());
                    if last {
                        keepalive.finish();
                    }
                    let frame = OutFrame { buf, start: range.start, end: range.end };
                    if to_writer.blocking_send(frame).is_err() {
                        return Err(Error::PeerGone("the connection closed".into()));
                    }
                    if last {
                        return Ok(());
                    }
                }
            })
            .map_err(Error::from);
        let out = Self {
            buf: vec![0u8; BUF_LEN],
            len: RECORD_HEADROOM,
            to_sealer: Some(to_sealer),
            spare,
            scratch: Vec::with_capacity(8 * 1024),
            sealer_thread: sealer_thread.ok(),
        };
        (out, writer)
    }

    /// Bytes of plaintext in the record being built.
    pub fn pending(&self) -> usize {
        self.len - RECORD_HEADROOM
    }

    fn room(&self) -> usize {
        RECORD_HEADROOM + pqdrop_proto::msg::MAX_RECORD_PLAINTEXT - self.len
    }

    /// Hands the current record to the sealer (if it has content, or if
    /// `last`) and starts a new one in a recycled buffer.
    fn ship(&mut self, last: bool) -> Result<()> {
        if self.pending() == 0 && !last {
            return Ok(());
        }
        // Only full-size buffers come back (see `writer_task`), but a record
        // must never be built in anything smaller.
        let fresh = match self.spare.try_recv() {
            Ok(b) if b.len() == BUF_LEN => b,
            _ => vec![0u8; BUF_LEN],
        };
        let buf = std::mem::replace(&mut self.buf, fresh);
        let tx = self.to_sealer.as_ref().ok_or(Error::PeerGone("the connection is closed".into()))?;
        tx.send((buf, self.len, last)).map_err(|_| Error::PeerGone("the connection closed".into()))?;
        self.len = RECORD_HEADROOM;
        if last {
            self.to_sealer = None;
        }
        Ok(())
    }

    /// Appends a message; ships the record once it reaches [`RECORD_TARGET`].
    pub fn push(&mut self, m: &TransferMsg<'_>) -> Result<()> {
        self.scratch.clear();
        m.encode(&mut self.scratch);
        if self.scratch.len() > self.room() {
            self.ship(false)?;
        }
        if self.scratch.len() > self.room() {
            return Err(Error::Bug("message larger than a record".into()));
        }
        self.buf[self.len..self.len + self.scratch.len()].copy_from_slice(&self.scratch);
        self.len += self.scratch.len();
        self.maybe_ship()
    }

    /// Appends already encoded messages (from a protocol machine), keeping
    /// each whole within one record.
    pub fn push_encoded(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let mut it = pqdrop_proto::transfer::Messages::new(bytes);
            it.next().map_err(proto_err)?;
            let len = bytes.len() - it.remaining();
            let (m, rest) = bytes.split_at(len);
            if m.len() > self.room() {
                self.ship(false)?;
            }
            if m.len() > self.room() {
                return Err(Error::Bug("message larger than a record".into()));
            }
            self.buf[self.len..self.len + m.len()].copy_from_slice(m);
            self.len += m.len();
            bytes = rest;
        }
        self.maybe_ship()
    }

    /// Writes a chunk header for `want` bytes of raw data and returns the slot
    /// the caller fills (file data is read straight into the record). Call
    /// [`Self::maybe_ship`] afterwards.
    pub fn chunk_slot(&mut self, want: usize) -> Result<&mut [u8]> {
        let mut head = [0u8; pqdrop_proto::transfer::CHUNK_HEADER_MAX];
        head[0] = 9; // Chunk
        head[1] = 0; // raw
        let n = pqdrop_proto::codec::write_varuint(&mut head[2..], want as u64).map_err(proto_err)?;
        let total = 2 + n + want;
        if total > self.room() {
            self.ship(false)?;
        }
        if total > self.room() {
            return Err(Error::Bug("chunk larger than a record".into()));
        }
        self.buf[self.len..self.len + 2 + n].copy_from_slice(&head[..2 + n]);
        let start = self.len + 2 + n;
        self.len += total;
        Ok(&mut self.buf[start..start + want])
    }

    /// Ships the record if it reached [`RECORD_TARGET`].
    pub fn maybe_ship(&mut self) -> Result<()> {
        if self.pending() >= RECORD_TARGET {
            self.ship(false)?;
        }
        Ok(())
    }

    /// Ships whatever is pending now (so the peer gets it without waiting).
    pub fn flush(&mut self) -> Result<()> {
        self.ship(false)
    }

    /// Ships the final record (STREAM's last chunk) and waits until the
    /// sealer thread has handed everything to the writer.
    pub fn finish(&mut self) -> Result<()> {
        if self.to_sealer.is_some() {
            self.ship(true)?;
        }
        self.to_sealer = None;
        match self.sealer_thread.take() {
            Some(t) => t.join().map_err(|_| Error::Bug("the sealer thread failed".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        // Closing the channel ends the sealer thread, which ends the writer.
        self.to_sealer = None;
    }
}

/// A sealed frame ready to write: `buf[start..end]`.
#[derive(Debug)]
pub struct OutFrame {
    /// The buffer.
    pub buf: Vec<u8>,
    /// Where the frame starts.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

/// Writes frames from a channel to the socket until the channel closes, then
/// shuts the write side down. Finished buffers go back through `recycle`.
async fn writer_task<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: tokio::sync::mpsc::Receiver<OutFrame>,
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
) -> Result<()> {
    while let Some(frame) = rx.recv().await {
        tokio::time::timeout(LEGACY_IDLE_TIMEOUT, w.write_all(&frame.buf[frame.start..frame.end]))
            .await
            .map_err(|_| Error::PeerGone(format!("the other side stopped reading for {} s", LEGACY_IDLE_TIMEOUT.as_secs())))?
            .map_err(net_err)?;
        // A KeepAlive's small buffer is not a record buffer: drop it.
        if frame.buf.len() == BUF_LEN {
            let _ = recycle.send(frame.buf);
        }
    }
    w.flush().await?;
    let _ = w.shutdown().await;
    Ok(())
}
