//! The relay client's deadlines, against fake relays on 127.0.0.1 that
//! never answer or keep saying "waiting". Every test is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pqdrop_relay::{RelayError, Role};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

async fn bounded<F: Future<Output = ()>>(f: F) {
    timeout(Duration::from_secs(30), f).await.expect("test timed out");
}

/// A fake relay on 127.0.0.1 that accepts and then does `behave` with the
/// connection (for client deadline tests).
async fn fake_relay<F, Fut>(behave: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((s, _)) = l.accept().await {
            behave(s).await;
        }
    });
    addr
}

fn short_deadlines() -> pqdrop_relay::ClientTimeouts {
    pqdrop_relay::ClientTimeouts {
        connect: Duration::from_secs(2),
        first_status: Duration::from_millis(300),
        pairing: Duration::from_millis(600),
    }
}

#[tokio::test]
async fn client_gives_up_on_a_relay_that_never_answers() {
    bounded(async {
        let addr = fake_relay(|s| async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(s);
        })
        .await;
        let t0 = std::time::Instant::now();
        let r = pqdrop_relay::connect_with(&addr.to_string(), "7", Role::Sender, || {}, short_deadlines()).await;
        let took = t0.elapsed();
        match r {
            Err(e @ RelayError::Timeout { .. }) => assert!(e.to_string().contains("to answer the hello"), "{e}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(took < Duration::from_secs(3), "took {took:?}");
    })
    .await;
}

#[tokio::test]
async fn client_gives_up_on_a_relay_that_says_waiting_forever() {
    bounded(async {
        let addr = fake_relay(|mut s| async move {
            for _ in 0..200 {
                if s.write_all(&[0, 0]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let waited = Arc::new(AtomicUsize::new(0));
        let w = waited.clone();
        let r = pqdrop_relay::connect_with(
            &addr.to_string(),
            "7",
            Role::Receiver,
            move || {
                w.fetch_add(1, Ordering::SeqCst);
            },
            short_deadlines(),
        )
        .await;
        match r {
            Err(e @ RelayError::Timeout { .. }) => assert!(e.to_string().contains("to pair us"), "{e}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(waited.load(Ordering::SeqCst), 1, "waiting was reported once");
    })
    .await;
}
