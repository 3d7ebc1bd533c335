//! Linking a new device to an identity (PROTOCOL.md §13.6): the code
//! handshake of a transfer, then one request and one answer instead of a
//! transfer. The old device is the accepter (it made the code), the new one
//! the requester (it typed it).

use pqdrop_proto::code::Code;
use pqdrop_proto::handshake::Role;
use pqdrop_proto::identity::{self, Identity};
use pqdrop_proto::msg::MsgType;
use tokio::io::{AsyncRead, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::conn::{self, local_capabilities, open_frame, read_frame, IdleWatch};
use crate::transport::{Route, Waiting};
use crate::{Error, Result};
use pqdrop_proto::liveness::Side;

/// How long the other side may take to answer once the session is up (the
/// old device's user compares the check first).
const ANSWER: std::time::Duration = std::time::Duration::from_secs(300);

/// The old device: waits on `route` with `code` (a relay numbers it when
/// `allocate`), then gives `id`'s seed to the device that holds the code.
/// `on_ready` hears the code to show, as for [`crate::send::send_to`];
/// `confirm` gets the check the joining device shows ([`identity::link_check`])
/// and says whether the user saw the same there: only then does the seed move.
pub async fn offer(
    route: &Route,
    code: &Code,
    allocate: bool,
    id: &Identity,
    on_ready: impl FnOnce(&Code, Waiting),
    confirm: impl FnOnce(&str) -> bool,
) -> Result<()> {
    let (mut stream, code) =
        crate::send::rendezvous_as_accepter(route, code, crate::transport::RoomRequest { allocate, page: false }, on_ready).await?;
    let (mut session, leftover) = conn::handshake(&mut stream, Role::Accepter, &code, local_capabilities(false)).await?;
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = tokio::io::BufReader::new(tokio::io::AsyncReadExt::chain(std::io::Cursor::new(leftover), rd));
    let request = read_record(&mut rd, &mut session, "joining device").await?;
    let n = identity::parse_link_request(&request).map_err(|_| {
        Error::PeerViolation("the other side is not joining an identity (did it run `pqdrop receive` instead of `pqdrop id join`?)".into())
    })?;
    let check = identity::link_check(&session.exporter)?;
    if !tokio::task::block_in_place(|| confirm(&check)) {
        return Err(Error::LinkFailed("the check was not confirmed, so nothing was sent".into()));
    }
    let answer = identity::link_seed(id, &n, &session.exporter)?;
    let mut out = Zeroizing::new(Vec::new());
    session.sealer.seal_to_vec(&answer, true, &mut out).map_err(conn::proto_err)?;
    wr.write_all(&out).await.map_err(gone)?;
    wr.flush().await.map_err(gone)?;
    // The new device's final record says it checked and kept the seed.
    let ack = read_record(&mut rd, &mut session, "joining device").await?;
    if !ack.is_empty() || !session.opener.is_finished() {
        return Err(Error::PeerViolation("the joining device did not confirm".into()));
    }
    Ok(())
}

fn gone(e: std::io::Error) -> Error {
    Error::LinkFailed(format!("the connection failed: {e}"))
}

/// The new device: finds the old one over `route` with `code` and takes the
/// identity it gives, checked against the seed-exchange key it came with.
/// `on_check` gets the check to show the user, who compares it with the old
/// device's before it sends anything.
pub async fn join(
    route: &Route,
    code: &Code,
    lan_timeout: std::time::Duration,
    on_waiting: impl FnOnce(Waiting),
    on_check: impl FnOnce(&str),
) -> Result<Identity> {
    let mut stream =
        crate::transport::connect(route, *code.nameplate(), crate::transport::Side::Receiver { lan_timeout }, on_waiting).await?;
    let (mut session, leftover) = conn::handshake(&mut stream, Role::Requester, code, local_capabilities(false)).await?;
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = tokio::io::BufReader::new(tokio::io::AsyncReadExt::chain(std::io::Cursor::new(leftover), rd));
    let n = rand_secret()?;
    let request = identity::link_request(&pqdrop_proto::internal::primitives::x25519_base(&n));
    let mut out = Vec::new();
    session.sealer.seal_to_vec(&request, false, &mut out).map_err(conn::proto_err)?;
    wr.write_all(&out).await.map_err(gone)?;
    wr.flush().await.map_err(gone)?;
    on_check(&identity::link_check(&session.exporter)?);
    let answer = Zeroizing::new(read_record(&mut rd, &mut session, "old device").await?);
    if !session.opener.is_finished() {
        return Err(Error::PeerViolation(
            "the other side is not linking an identity (did it run `pqdrop send` instead of `pqdrop id link`?)".into(),
        ));
    }
    let id = identity::open_link_seed(&answer, &n, &session.exporter).map_err(|e| match e {
        pqdrop_proto::Error::Decode { why, .. } => {
            Error::PeerViolation(format!("{why} (did it run `pqdrop send` instead of `pqdrop id link`?)"))
        }
        other => Error::from(other),
    })?;
    let mut fin = Vec::new();
    session.sealer.seal_to_vec(&[], true, &mut fin).map_err(conn::proto_err)?;
    wr.write_all(&fin).await.map_err(gone)?;
    wr.flush().await.map_err(gone)?;
    Ok(id)
}

fn rand_secret() -> Result<Zeroizing<[u8; 32]>> {
    let mut n = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut n[..])
        .map_err(|_| Error::Bug("the OS random generator failed".into()))?;
    Ok(n)
}

/// Reads and opens one record; an empty final record is an empty answer.
async fn read_record<R: AsyncRead + Unpin>(rd: &mut R, session: &mut pqdrop_proto::handshake::Established, who: &str) -> Result<Vec<u8>> {
    let mut watch = IdleWatch::new(&session.agreed, Side::Sender, ANSWER);
    let read = tokio::time::timeout(ANSWER, read_frame(rd, Vec::new(), &mut watch)).await;
    let mut frame = match read {
        Err(_) => return Err(Error::LinkFailed(format!("the {who} did not answer within {} s", ANSWER.as_secs()))),
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => {
            return Err(Error::LinkFailed(format!("the {who} closed the connection (on the old device: was the check refused?)")))
        }
        Ok(Err(e)) => return Err(e),
    };
    if frame.msg_type != MsgType::RECORD && frame.msg_type != MsgType::RECORD_FINAL {
        return Err(Error::PeerViolation("expected an encrypted record".into()));
    }
    Ok(open_frame(&mut session.opener, &mut frame)?.to_vec())
}
