//! Secrets and records (classes 10 and 11): a hostile sender (tests/hostile_peer) that completes the real
//! handshake and encrypts correctly, then sends malicious transfer messages
//! to the real `pqdrop receive` (the receiver rules of PROTOCOL.md §8).
//!
//! Every run asserts, besides its own expectations (see
//! [`hostile_peer::Outcome::assert_clean`]): no panic, no code word and no raw
//! control character on stderr, and nothing changed outside OUT (OUT's
//! parent, a sibling `OUT-suffix`, an `outside` folder, a `victim` file, and
//! HOME / XDG_CONFIG_HOME / the working directory). Tests are named after
//! the hostile-input class they cover (`c1_…` to `c11_…`).
//!
//! Loopback only: the relay runs in the test on 127.0.0.1.

mod hostile_peer;

use hostile_peer::{exit, file, hash, Expect, Peer, Scene};

// ---------------------------------------------------------------------------
// Class 10: secrets. Every test checks stderr and stdout for the code words
// (assert_clean); here the code itself is wrong.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c10_wrong_code_stops_both_sides_and_leaks_nothing() {
    let mut scene = Scene::new().await;
    let rx = scene.spawn(&[], None);
    let peer = Peer::connect(scene.relay_addr(), "12-ocean-lion").await;
    assert!(peer.as_ref().is_err_and(|e| e.contains("code is wrong")), "the hostile peer with a wrong code got {:?}", peer.as_ref().err());
    let o = scene.finish(rx, None).await;
    o.assert_refused(exit::WRONG_CODE, None).assert_mentions("code is wrong");
    assert!(!o.stderr().contains("lion"), "{}", o.stderr());
    assert!(!o.out_exists, "OUT was created before the handshake succeeded");
}

// ---------------------------------------------------------------------------
// Class 11: records replayed or reordered.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_replayed_record_is_rejected() {
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.offer(1, 0, 3, &[b"a.txt"]).flush().await.expect("offer");
    peer.expect(Expect::Accept).await.expect("accept");
    let frame = peer.entry(&file(0, "a.txt", 3)).seal(false);
    peer.write_raw(&frame).await.expect("record");
    let _ = peer.write_raw(&frame).await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("authentication").assert_no_files_in_out();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_replayed_data_record_is_rejected() {
    // The record holding a file's data, replayed: it would otherwise append
    // the same bytes again.
    let t = file(0, "t.txt", 6);
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    let start = peer.file_start(&t, 0).seal(false);
    let data = peer.chunk(b"abc").seal(false);
    let _ = peer.write_raw(&start).await;
    let _ = peer.write_raw(&data).await;
    let _ = peer.write_raw(&data).await;
    let end = peer.file_end(hash(b"abcabc")).done().seal(false);
    let _ = peer.write_raw(&end).await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("authentication");
    assert!(o.out_node("t.txt").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_reordered_records_are_rejected() {
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.offer(2, 0, 6, &[b"a.txt", b"b.txt"]).flush().await.expect("offer");
    peer.expect(Expect::Accept).await.expect("accept");
    let first = peer.entry(&file(0, "a.txt", 3)).seal(false);
    let second = peer.entry(&file(1, "b.txt", 3)).manifest_end().seal(false);
    let _ = peer.write_raw(&second).await;
    let _ = peer.write_raw(&first).await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("authentication").assert_no_files_in_out();
}
