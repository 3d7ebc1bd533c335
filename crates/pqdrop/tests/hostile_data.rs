//! Flags, sizes, compression, counts and truncation (classes 8 and 9): a hostile sender (tests/hostile_peer) that completes the real
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

use std::io::Read;
use std::time::{Duration, Instant};

use hostile_peer::{dir, exit, file, hash, manifest_run, Expect, Node, Outcome, Peer, Scene};
use pqdrop_proto::transfer::{Entry, MAX_CHUNK};

// ---------------------------------------------------------------------------
// Class 8: flags the sender controls.

async fn one_compressed_chunk(size: u64, payload: &[u8], extra_limit: Option<u64>) -> Outcome {
    let mut scene = Scene::new().await;
    let t = file(0, "t.bin", size);
    let (rx, mut peer) = scene.start_with(&[], extra_limit, hostile_peer::CODE).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&t, 0).zchunk(payload).file_end([0; 32]).done();
    let _ = peer.flush().await;
    scene.finish(rx, Some(peer)).await
}

/// A data-segment cap for the receiver (KiB): far below what a 100 MiB
/// decompression would need, well above what a receiver needs (checked by
/// `c8_control_the_memory_cap_allows_a_normal_transfer`).
const DATA_LIMIT_KIB: u64 = 96 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_control_the_memory_cap_allows_a_normal_transfer() {
    let data = vec![42u8; 3 << 20];
    let z = zstd::bulk::compress(&data[..MAX_CHUNK], 3).expect("compress");
    let t = file(0, "t.bin", data.len() as u64);
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start_with(&[], Some(DATA_LIMIT_KIB), hostile_peer::CODE).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    // Compressed 1 MiB, plain 1 MiB (two records), compressed 1 MiB.
    peer.file_start(&t, 0)
        .zchunk(&z)
        .chunk(&data[MAX_CHUNK..MAX_CHUNK + MAX_CHUNK / 2])
        .chunk(&data[MAX_CHUNK + MAX_CHUNK / 2..2 * MAX_CHUNK]);
    peer.zchunk(&z).file_end(hash(&data)).done();
    peer.flush().await.expect("data");
    peer.expect(Expect::DoneAck).await.expect("done ack");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::OK).assert_clean();
    assert!(matches!(o.out_node("t.bin"), Some(Node::File { data: d, .. }) if *d == data));
    eprintln!("peak RSS {} KiB (control)", o.exit.peak_rss_kib);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_corrupt_compressed_chunks_are_refused() {
    let valid = zstd::bulk::compress(&[9u8; 4000], 3).expect("compress");
    // Refused when parsed (no frame header that declares a size), or by the
    // decompressor (the header is intact, the rest is not).
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage", (0..64u8).map(|i| i.wrapping_mul(37)).collect()),
        ("truncated frame", valid[..valid.len() / 2].to_vec()),
        ("zstd magic then junk", vec![0x28, 0xB5, 0x2F, 0xFD, 0xFF, 0xFF, 0xFF, 0xFF]),
        ("empty", Vec::new()),
    ];
    for (what, payload) in cases {
        eprintln!("case {what}");
        let o = one_compressed_chunk(4000, &payload, None).await;
        o.assert_refused(exit::PROTOCOL, None).assert_mentions("compressed");
        assert!(o.out_node("t.bin").is_none(), "no final file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_zstd_bombs_are_refused_in_bounded_memory() {
    // 100 MiB of zeros, streamed (no content size in the frame header), and
    // 1 MiB + 1 with the size declared: both over the 1 MiB chunk cap.
    let big = zstd::stream::encode_all(std::io::repeat(0).take(100 << 20), 3).expect("compress");
    assert!(big.len() < MAX_CHUNK, "the bomb fits one chunk ({} bytes)", big.len());
    let small = zstd::bulk::compress(&vec![0u8; MAX_CHUNK + 1], 3).expect("compress");
    let cases = [("100 MiB of zeros", big, 100u64 << 20, "declares its content size"), ("1 MiB + 1", small, MAX_CHUNK as u64 + 1, "1 MiB")];
    for (what, payload, size, why) in cases {
        eprintln!("case {what}");
        let o = one_compressed_chunk(size, &payload, Some(DATA_LIMIT_KIB)).await;
        o.assert_refused(exit::PROTOCOL, None).assert_mentions(why);
        assert!(o.exit.elapsed < Duration::from_secs(30), "took {:?}", o.exit.elapsed);
        assert!(o.out_node("t.bin").is_none(), "no final file");
    }
}

/// Memory the receiver may use under the attacks below (KiB). It runs with
/// its data segment capped at this (`ulimit -d`: heap and private mappings,
/// so an allocation past it fails and the test with it), and its sampled peak
/// RSS must stay below it too.
const MEMORY_LIMIT_KIB: u64 = 64 * 1024;

/// One zstd frame of about 50 bytes that declares and holds 1 MiB of zeros.
fn tiny_frame() -> Vec<u8> {
    let z = zstd::bulk::compress(&vec![0u8; MAX_CHUNK], 19).expect("compress");
    assert!(z.len() <= 64, "the frame is {} bytes", z.len());
    z
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_a_record_of_many_tiny_frames_is_refused_in_bounded_memory() {
    // The red-team attack: one record of 2,000 chunks of ~50 bytes that each
    // inflate to 1 MiB, for an entry of 1 GiB. The 1,025th chunk would take
    // the file past its size: it is refused when parsed, before anything of
    // the record is decompressed or written, and nothing is held meanwhile.
    let frame = tiny_frame();
    let t = file(0, "bomb.bin", 1 << 30);
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start_with(&[], Some(MEMORY_LIMIT_KIB), hostile_peer::CODE).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&t, 0);
    for _ in 0..2_000 {
        peer.zchunk(&frame);
    }
    peer.file_end([0; 32]).done();
    assert!(2_000 * (frame.len() + 8) < hostile_peer::RECORD_SPLIT, "the chunks fit one record");
    let _ = peer.flush().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, Some(b"bomb.bin")).assert_mentions("more bytes than announced");
    assert!(o.exit.peak_rss_kib < MEMORY_LIMIT_KIB, "peak RSS {} KiB", o.exit.peak_rss_kib);
    assert!(o.out_node("bomb.bin").is_none(), "no final file");
    eprintln!("peak RSS {} KiB", o.exit.peak_rss_kib);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_a_record_of_many_tiny_frames_within_the_size_is_written_in_bounded_memory() {
    // The same record shape, honest about the size: 96 chunks of ~50 bytes
    // for a 96 MiB file. Decompression happens one chunk at a time on the
    // disk thread, so the receiver never holds the 96 MiB.
    let frame = tiny_frame();
    let n = 96;
    let data = vec![0u8; n * MAX_CHUNK];
    let t = file(0, "zeros.bin", data.len() as u64);
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start_with(&[], Some(MEMORY_LIMIT_KIB), hostile_peer::CODE).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&t, 0);
    for _ in 0..n {
        peer.zchunk(&frame);
    }
    peer.file_end(hash(&data)).done();
    peer.flush().await.expect("data");
    peer.expect(Expect::DoneAck).await.expect("done ack");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::OK).assert_clean();
    assert!(o.exit.peak_rss_kib < MEMORY_LIMIT_KIB, "peak RSS {} KiB", o.exit.peak_rss_kib);
    assert!(matches!(o.out_node("zeros.bin"), Some(Node::File { data: d, .. }) if *d == data));
    eprintln!("peak RSS {} KiB", o.exit.peak_rss_kib);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_sender_metadata_cannot_do_harm() {
    // Extreme times and the executable bit: written as plain 0o755 / 0o644,
    // no panic, no failure.
    let mut d = dir(0, "d");
    d.mtime = u64::MAX;
    let mut x = file(1, "d/x", 3);
    x.executable = true;
    x.mtime = u64::MAX;
    let mut y = file(2, "y", 3);
    y.mtime = 0;
    let mut e = dir(3, "e");
    e.mtime = i64::MAX as u64 + 1;
    let entries = [d, x.clone(), y.clone(), e];
    let mut scene = Scene::new().await;
    // The modes asserted below are those of umask 022.
    scene.umask = Some(0o022);
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(&entries).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.send_file(&x, b"#!x").send_file(&y, b"yyy").done();
    peer.flush().await.expect("data");
    let _ = peer.expect(Expect::DoneAck).await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::OK).assert_clean();
    assert!(matches!(o.out_node("d/x"), Some(Node::File { mode: 0o755, .. })), "{:?}", o.out_node("d/x"));
    assert!(matches!(o.out_node("y"), Some(Node::File { mode: 0o644, .. })), "{:?}", o.out_node("y"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_goes_silent_is_cut_after_the_idle_timeout() {
    // The peer agrees to KeepAlive in the handshake, offers, then sends
    // nothing at all: the receiver gives up after --idle-timeout, says why,
    // and exits 6.
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&["--idle-timeout", "10"]).await;
    peer.offer(1, 0, 1, &[b"a"]).flush().await.expect("offer");
    peer.expect(Expect::Accept).await.expect("accept");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::PEER_GONE).assert_mentions("sent nothing for 10 s");
    assert!(o.exit.elapsed < Duration::from_secs(25), "took {:?}", o.exit.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_files_follow_the_receivers_umask() {
    let mut x = file(0, "x", 3);
    x.executable = true;
    let y = file(1, "y", 3);
    for (umask, x_mode, y_mode) in [(0o077, 0o700, 0o600), (0o022, 0o755, 0o644), (0o027, 0o750, 0o640)] {
        let entries = [x.clone(), y.clone()];
        let mut scene = Scene::new().await;
        scene.umask = Some(umask);
        let (rx, mut peer) = scene.start(&[]).await;
        peer.open_manifest(&entries).await.expect("manifest");
        peer.expect(Expect::Ready).await.expect("ready");
        peer.send_file(&x, b"#!x").send_file(&y, b"yyy").done();
        peer.flush().await.expect("data");
        let _ = peer.expect(Expect::DoneAck).await;
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_exit(exit::OK).assert_clean();
        assert!(matches!(o.out_node("x"), Some(Node::File { mode, .. }) if *mode == x_mode), "umask {umask:03o}: {:?}", o.out_node("x"));
        assert!(matches!(o.out_node("y"), Some(Node::File { mode, .. }) if *mode == y_mode), "umask {umask:03o}: {:?}", o.out_node("y"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8_compressed_data_goes_where_plain_data_goes() {
    let data = b"compressed or not, same place".repeat(100);
    let z = zstd::bulk::compress(&data, 19).expect("compress");
    let t = file(1, "sub/z.txt", data.len() as u64);
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(&[dir(0, "sub"), t.clone()]).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&t, 0).zchunk(&z).file_end(hash(&data)).done();
    peer.flush().await.expect("data");
    peer.expect(Expect::DoneAck).await.expect("done ack");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::OK).assert_clean();
    assert!(
        matches!(o.out_node("sub/z.txt"), Some(Node::File { data: d, mode }) if *d == data && *mode == 0o644),
        "{:?}",
        o.out_node("sub/z.txt")
    );
    assert_eq!(o.out.len(), 2, "{:?}", o.out.keys());
}

// ---------------------------------------------------------------------------
// Class 9: lies about sizes, indexes, hashes, counts; truncation.

/// Manifest of `entries`, Ready, then `data` (queued by the closure).
async fn data_run(entries: &[Entry], data: impl FnOnce(&mut Peer)) -> Outcome {
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(entries).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    data(&mut peer);
    let _ = peer.flush().await;
    scene.finish(rx, Some(peer)).await
}

fn assert_no_final_and_no_partial(o: &Outcome, name: &str) {
    assert!(o.out_node(name).is_none(), "the final file {name} exists: {:?}", o.out.keys());
    let partial = format!(".{name}.pqdrop-partial");
    assert!(o.out_node(&partial).is_none(), "the unverified partial {partial} was kept: {:?}", o.out.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_more_bytes_than_announced_are_refused() {
    let t = file(0, "t.txt", 10);
    let o = data_run(std::slice::from_ref(&t), |p| {
        p.file_start(&t, 0).chunk(&[b'a'; 20]).file_end(hash(&[b'a'; 20])).done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, Some(b"t.txt")).assert_mentions("more bytes than announced");
    assert!(o.out_node("t.txt").is_none(), "no final file");
    // Split over two chunks: the second one overflows.
    let o = data_run(std::slice::from_ref(&t), |p| {
        p.file_start(&t, 0).chunk(&[b'a'; 6]).chunk(&[b'a'; 6]).file_end(hash(&[b'a'; 12])).done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, Some(b"t.txt"));
    assert!(o.out_node("t.txt").is_none(), "no final file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_fewer_bytes_than_announced_are_refused() {
    let t = file(0, "t.txt", 20);
    let o = data_run(std::slice::from_ref(&t), |p| {
        p.file_start(&t, 0).chunk(&[b'a'; 10]).file_end(hash(&[b'a'; 10])).done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, Some(b"t.txt")).assert_mentions("integrity");
    assert_no_final_and_no_partial(&o, "t.txt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_wrong_hash_is_an_integrity_failure() {
    let t = file(0, "t.txt", 10);
    let o = data_run(std::slice::from_ref(&t), |p| {
        p.file_start(&t, 0).chunk(&[b'a'; 10]).file_end(hash(&[b'b'; 10])).done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, Some(b"t.txt")).assert_mentions("integrity");
    assert_no_final_and_no_partial(&o, "t.txt");
    assert!(o.out.is_empty(), "{:?}", o.out.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_file_data_for_an_index_not_in_the_manifest_is_refused() {
    let a = file(0, "a.txt", 3);
    for ghost in [file(1, "b.txt", 3), file(5, "a.txt", 3), file(u64::MAX, "a.txt", 3)] {
        let o = data_run(std::slice::from_ref(&a), |p| {
            p.send_file(&ghost, b"abc").done();
        })
        .await;
        o.assert_refused(exit::PROTOCOL, None).assert_mentions("not in the manifest").assert_no_files_in_out();
    }
    // FileSkip for a file the receiver never claimed, and for a ghost index.
    for index in [0, 7] {
        let o = data_run(std::slice::from_ref(&a), |p| {
            p.file_skip(index).done();
        })
        .await;
        o.assert_refused(exit::PROTOCOL, None).assert_no_files_in_out();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_file_header_differing_from_its_manifest_entry_is_refused() {
    let a = file(0, "a.txt", 3);
    let mut exec = a.clone();
    exec.executable = true;
    let mut mtime = a.clone();
    mtime.mtime += 1;
    for (what, header) in [
        ("another path", file(0, "b.txt", 3)),
        ("an escaping path", file(0, "../x", 3)),
        ("a sibling path", file(0, "../out-suffix/a.txt", 3)),
        ("another size", file(0, "a.txt", 4)),
        ("the executable bit", exec),
        ("another mtime", mtime),
        ("a folder", dir(0, "a.txt")),
    ] {
        eprintln!("case {what}");
        let data = vec![b'z'; header.size as usize];
        let o = data_run(std::slice::from_ref(&a), |p| {
            p.send_file(&header, &data).done();
        })
        .await;
        o.assert_refused(exit::PROTOCOL, None).assert_mentions("differs from its manifest entry").assert_no_files_in_out();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_files_out_of_order_or_twice_are_refused() {
    let a = file(0, "a.txt", 3);
    let b = file(1, "b.txt", 3);
    let o = data_run(&[a.clone(), b.clone()], |p| {
        p.send_file(&b, b"bbb").send_file(&a, b"aaa").done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("twice");
    assert!(o.out_node("a.txt").is_none());
    let o = data_run(&[a.clone(), b.clone()], |p| {
        p.send_file(&a, b"aaa").send_file(&a, b"aaa").send_file(&b, b"bbb").done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("twice");
    assert!(o.out_node("b.txt").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_data_outside_a_file_and_unoffered_resume_are_refused() {
    let a = file(0, "a.txt", 10);
    type Script = fn(&mut Peer, &Entry);
    let cases: [(&str, Script); 5] = [
        ("a chunk before any file", |p, _| {
            p.chunk(b"loose").done();
        }),
        ("a file end before any file", |p, _| {
            p.file_end(hash(b"")).done();
        }),
        ("a resume offset never offered", |p, a| {
            p.file_start(a, 5).chunk(b"56789").file_end(hash(b"0123456789")).done();
        }),
        ("a resume offset past the end", |p, a| {
            p.file_start(a, u64::MAX).file_end(hash(b"")).done();
        }),
        ("a second offer", |p, _| {
            p.offer(1, 0, 1, &[b"x"]).done();
        }),
    ];
    for (what, f) in cases {
        eprintln!("case {what}");
        let o = data_run(std::slice::from_ref(&a), |p| f(p, &a)).await;
        o.assert_refused(exit::PROTOCOL, None).assert_no_files_in_out();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_huge_offer_counts_are_refused_before_anything_else() {
    for (files, dirs) in [(1_000_000_000_000u64, 0u64), (u64::MAX, u64::MAX), (0, 1_000_001)] {
        let mut scene = Scene::new().await;
        let (rx, mut peer) = scene.start(&[]).await;
        peer.offer(files, dirs, u64::MAX, &[b"x"]).flush().await.expect("offer");
        let t0 = Instant::now();
        let reply = peer.next_reply().await;
        let took = t0.elapsed();
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_refused(exit::PROTOCOL, None).assert_mentions("more than the limit");
        assert!(matches!(reply, hostile_peer::Reply::Abort(_)), "the receiver answered {reply:?}");
        assert!(took < Duration::from_secs(5), "refusing took {took:?}");
        assert!(!o.out_exists, "OUT was created for a refused offer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_large_manifest_is_handled_in_bounded_time_and_memory() {
    const N: u64 = 100_000;
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start_with(&[], Some(DATA_LIMIT_KIB), hostile_peer::CODE).await;
    // Sixteen preview names: the offer's list is full, so it does not name every entry.
    let names: Vec<Vec<u8>> = (0..16).map(|i| format!("f{i:06}").into_bytes()).collect();
    let preview: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    peer.offer(N, 0, N, &preview).flush().await.expect("offer");
    peer.expect(Expect::Accept).await.expect("accept");
    let t0 = Instant::now();
    for i in 0..N {
        peer.entry(&file(i, format!("f{i:06}"), 1));
        if i % 5000 == 4999 {
            peer.flush().await.expect("manifest");
        }
    }
    peer.manifest_end();
    peer.flush().await.expect("manifest end");
    peer.expect(Expect::Ready).await.expect("ready");
    let took = t0.elapsed();
    // Then a lie: Done with no file sent.
    peer.done();
    let _ = peer.flush().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("without sending everything").assert_no_files_in_out();
    assert!(took < Duration::from_secs(40), "{N} entries took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_entry_path_over_4096_bytes_is_refused() {
    let long: Vec<u8> = (0..4097).map(|i| if i % 100 == 99 { b'/' } else { b'a' }).collect();
    assert_eq!(long.len(), 4097);
    let o = manifest_run(&[], &[file(0, &long, 3)]).await;
    o.assert_refused(exit::PROTOCOL, None).assert_no_files_in_out();
    // A path within the byte limit but deeper than 64 levels.
    let deep: Vec<u8> = b"a/".repeat(70).into_iter().chain(*b"x").collect();
    let o = manifest_run(&[], &[file(0, &deep, 3)]).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("too deep").assert_no_files_in_out();
    // A component over 255 bytes.
    let wide = vec![b'w'; 256];
    let o = manifest_run(&[], &[file(0, &wide, 3)]).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("too long").assert_no_files_in_out();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_done_before_all_files_is_refused() {
    let a = file(0, "a.txt", 3);
    let b = file(1, "b.txt", 3);
    let o = data_run(&[a.clone(), b.clone()], |p| {
        p.send_file(&a, b"aaa").done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("without sending everything");
    assert!(o.out_node("b.txt").is_none());
    // Done in the middle of a file.
    let o = data_run(std::slice::from_ref(&a), |p| {
        p.file_start(&a, 0).chunk(b"aa").done();
    })
    .await;
    o.assert_refused(exit::PROTOCOL, None);
    assert!(o.out_node("a.txt").is_none());
    // Done before the manifest ended.
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.offer(1, 0, 3, &[b"a.txt"]).flush().await.expect("offer");
    peer.expect(Expect::Accept).await.expect("accept");
    peer.entry(&a).done();
    let _ = peer.flush().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, None).assert_no_files_in_out();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_truncated_streams_never_leave_a_final_file() {
    let t = file(0, "t.txt", 10);
    // The final record arrives before Done.
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&t, 0).chunk(b"01234");
    let _ = peer.flush_final().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PROTOCOL, None).assert_mentions("ended the stream early");
    assert!(o.out_node("t.txt").is_none());
    // The connection just closes mid-file: "disconnected", the partial is kept for resume.
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&t, 0).chunk(b"01234");
    let _ = peer.flush().await;
    peer.shutdown().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PEER_GONE, None).assert_mentions("disconnected");
    assert!(o.out_node("t.txt").is_none(), "a truncated file was put in place");
    // Half a record, then the close.
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    let frame = peer.send_file(&t, b"0123456789").done().seal(false);
    let _ = peer.write_raw(&frame[..frame.len() / 2]).await;
    peer.shutdown().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_refused(exit::PEER_GONE, None);
    assert!(o.out_node("t.txt").is_none(), "a truncated file was put in place");
}

/// The user consented to what the offer showed; the manifest may not bring
/// more files, more bytes, or other top-level names than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c9_manifest_beyond_the_offer_is_refused() {
    let a = file(0, "a.txt", 3);
    let b = file(1, "b.txt", 3);
    let big = file(0, "a.txt", 1 << 20);
    let other = file(0, "not-shown.sh", 3);
    /// What, offer files, offer bytes, preview, entries.
    type Case = (&'static str, u64, u64, &'static [u8], Vec<Entry>);
    let cases: [Case; 3] = [
        ("more files than offered", 1, 6, b"a.txt", vec![a.clone(), b.clone()]),
        ("more bytes than offered", 1, 3, b"a.txt", vec![big.clone()]),
        ("a top-level name the offer did not show", 1, 3, b"a.txt", vec![other.clone()]),
    ];
    let mut accepted = Vec::new();
    for (what, files, bytes, preview, entries) in cases {
        eprintln!("case {what}");
        let mut scene = Scene::new().await;
        let (rx, mut peer) = scene.start(&[]).await;
        peer.offer(files, 0, bytes, &[preview]).flush().await.expect("offer");
        peer.expect(Expect::Accept).await.expect("accept");
        for e in &entries {
            peer.entry(e);
        }
        peer.manifest_end();
        let _ = peer.flush().await;
        peer.follow_through(&entries).await;
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_clean();
        if o.exit.code != Some(exit::PROTOCOL) || o.out.values().any(|n| matches!(n, Node::File { .. })) {
            accepted.push(format!("{what}: exit {:?}, OUT {:?}", o.exit.code, o.out.keys().collect::<Vec<_>>()));
        }
    }
    assert!(accepted.is_empty(), "the receiver went beyond the offer it showed:\n{}", accepted.join("\n"));
}

// ---------------------------------------------------------------------------
// Problems the receiver can see before any data moves (its own side).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_larger_than_the_free_space_is_refused_before_any_data() {
    // 1 EiB fits no disk: refused when the manifest ends, before Ready, with
    // the amount needed, exit 7, and the sender told why (not a violation).
    let t = file(0, "huge.bin", 1 << 60);
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("offer and manifest");
    let err = peer.expect(Expect::Ready).await.expect_err("no Ready for a transfer that does not fit");
    assert!(err.contains("not have enough free space") && err.contains("1024.0 PiB"), "{err}");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::IO).assert_mentions("not enough free space").assert_mentions("Nothing was written");
    assert_no_final_and_no_partial(&o, "huge.bin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_path_that_is_a_file_is_refused_before_consent() {
    let mut scene = Scene::new().await;
    std::fs::write(&scene.out, b"not a folder").expect("write OUT as a file");
    let (rx, mut peer) = scene.start(&[]).await;
    peer.offer(1, 0, 1, &[b"a"]).flush().await.expect("offer");
    let err = peer.expect(Expect::Accept).await.expect_err("no consent into a file");
    assert!(err.contains("cannot write to its output folder"), "{err}");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::IO).assert_mentions("is not a folder");
    assert_eq!(std::fs::read(&scene.out).expect("OUT"), b"not a folder", "the file is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_mid_transfer_keeps_what_arrived_and_says_what_is_needed() {
    if !Scene::can_mount() {
        eprintln!("skipped: this machine does not let the test mount a tmpfs for the receiver (needs root and unshare)");
        return;
    }
    // OUT is a 1 MiB tmpfs. The 768 KiB file fits when the manifest ends;
    // then something else fills the disk, and the data runs out of room.
    let data = vec![7u8; 768 << 10];
    let t = file(0, "big.bin", data.len() as u64);
    let mut scene = Scene::new().await;
    scene.tmpfs_kib = Some(1024);
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(std::slice::from_ref(&t)).await.expect("offer and manifest");
    peer.expect(Expect::Ready).await.expect("ready: it fits for now");
    std::fs::write(scene.out_seen_by(&rx).join("filler"), vec![0u8; 640 << 10]).expect("fill the receiver's disk");
    peer.send_file(&t, &data).done();
    let _ = peer.flush().await;
    let err = peer.expect(Expect::DoneAck).await.expect_err("no DoneAck from a full disk");
    assert!(err.contains("not have enough free space"), "{err}");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::IO).assert_mentions("is full").assert_mentions("What arrived is kept").assert_mentions("more are needed");
}
