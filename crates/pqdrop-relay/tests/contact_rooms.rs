//! Contact rooms on a single relay (PROTOCOL.md §9.1, hello flag 2): the
//! 16-byte rooms of contact transfers (§13.7), next to nameplates but never
//! one of them.

use std::net::SocketAddr;
use std::time::Duration;

use pqdrop_relay::{hello_contact_bytes, read_status, rendezvous_contact, Relay, RelayConfig, RelayError, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

async fn start() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = RelayConfig { join_rate_per_sec: 1000.0, join_burst: 1000, ..RelayConfig::default() };
    let relay = Relay::bind("127.0.0.1:0".parse().unwrap(), config).await.expect("bind");
    let addr = relay.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

async fn raw(addr: SocketAddr, room: &[u8; 16], role: Role) -> (TcpStream, u64, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&hello_contact_bytes(room, role, false)).await.expect("hello");
    let (code, msg) = timeout(Duration::from_secs(10), read_status(&mut s)).await.expect("status in time").expect("status");
    (s, code, msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_peers_pair_and_other_rooms_stay_apart() {
    timeout(LIMIT, async {
        let (addr, _stop) = start().await;
        let room = [7u8; 16];
        let (mut other, code, _) = raw(addr, &[8u8; 16], Role::Receiver).await;
        assert_eq!(code, 0);
        let a = addr.to_string();
        let (tx, waiting) = tokio::sync::oneshot::channel();
        let receiver = tokio::spawn(async move {
            rendezvous_contact(
                &a,
                room,
                Role::Receiver,
                move || {
                    let _ = tx.send(());
                },
                Default::default(),
            )
            .await
        });
        waiting.await.expect("the receiver waits");
        // The same role twice is refused, with words about contact rooms.
        let (_s, code, msg) = raw(addr, &room, Role::Receiver).await;
        assert_eq!(code, 16, "{msg}");
        assert!(msg.contains("contact room") && !msg.contains("new code"), "{msg}");
        let mut s =
            rendezvous_contact(&addr.to_string(), room, Role::Sender, || panic!("must not wait"), Default::default()).await.expect("pairs");
        let mut r = receiver.await.expect("task").expect("pairs");
        s.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        r.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        let mut one = [0u8; 1];
        assert!(timeout(Duration::from_millis(300), other.read(&mut one)).await.is_err(), "another room is not disturbed");
    })
    .await
    .expect("test timed out");
}

/// A waiting contact room holds no nameplate: the relay still allocates
/// nameplate 1, and a nameplate room never pairs with a contact room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_rooms_take_no_nameplate() {
    timeout(LIMIT, async {
        let (addr, _stop) = start().await;
        // The room whose hex would be "…0001" if it were read as digits.
        let mut room = [0u8; 16];
        room[15] = 1;
        let (_w, code, _) = raw(addr, &room, Role::Receiver).await;
        assert_eq!(code, 0);
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&pqdrop_relay::hello_v2_bytes(None, Role::Sender, false).unwrap()).await.unwrap();
        let (code, msg) = read_status(&mut s).await.unwrap();
        assert_eq!((code, msg.as_str()), (2, "1"), "the smallest free nameplate is still 1");
        assert_eq!(read_status(&mut s).await.unwrap().0, 0, "then it waits");
        let mut one = [0u8; 1];
        assert!(timeout(Duration::from_millis(300), s.read(&mut one)).await.is_err(), "it does not pair with the contact room");
    })
    .await
    .expect("test timed out");
}

/// A relay from before contact rooms answers the flag with "bad hello" (21):
/// the client says the relay is too old, and does not retry in version 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_relay_is_named_as_too_old() {
    timeout(LIMIT, async {
        let old = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = old.local_addr().unwrap();
        let fake = tokio::spawn(async move {
            let mut hellos = 0;
            while let Ok(Ok((mut s, _))) = timeout(Duration::from_secs(2), old.accept()).await {
                hellos += 1;
                let mut b = [0u8; 64];
                let _ = s.read(&mut b).await;
                let msg = b"unknown hello flags";
                let mut out = vec![21u8, msg.len() as u8];
                out.extend_from_slice(msg);
                let _ = s.write_all(&out).await;
            }
            hellos
        });
        let err = rendezvous_contact(&addr.to_string(), [1u8; 16], Role::Sender, || {}, Default::default()).await.expect_err("refused");
        assert!(matches!(err, RelayError::NoContactRooms { .. }), "{err:?}");
        assert!(err.to_string().contains("update the relay"), "{err}");
        assert_eq!(fake.await.unwrap(), 1, "no second hello");
    })
    .await
    .expect("test timed out");
}
