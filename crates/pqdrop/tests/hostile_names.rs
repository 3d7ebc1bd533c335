//! Names, links, collisions and existing files (classes 1 to 7): a hostile sender (tests/hostile_peer) that completes the real
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

use std::time::{Duration, Instant};

use hostile_peer::{dir, exit, file, hash, manifest_run, manifest_run_in, refuse_each_name, Expect, Node, Outcome, Scene, VICTIM};
use pqdrop_proto::transfer::Entry;

// ---------------------------------------------------------------------------
// The harness itself: an honest transfer through the hostile peer succeeds.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_honest_transfer_through_the_dsl_succeeds() {
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    let a = b"hello from the hostile peer\n".to_vec();
    let b = vec![7u8; 300_000];
    let zb = zstd::bulk::compress(&b, 3).expect("compress");
    let entries = [dir(0, "d"), file(1, "d/a.txt", a.len() as u64), file(2, "b.bin", b.len() as u64)];
    peer.open_manifest(&entries).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.send_file(&entries[1], &a);
    peer.file_start(&entries[2], 0).zchunk(&zb).file_end(hash(&b)).done();
    peer.flush().await.expect("data");
    peer.expect(Expect::DoneAck).await.expect("done ack");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::OK).assert_clean().assert_mentions("Received 2 files and 1 folder");
    assert!(matches!(o.out_node("d/a.txt"), Some(Node::File { data, .. }) if *data == a));
    assert!(matches!(o.out_node("b.bin"), Some(Node::File { data, .. }) if *data == b));
    assert_eq!(o.out.len(), 3, "only d, d/a.txt and b.bin: {:?}", o.out.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_the_harness_sees_writes_outside_out() {
    // A write next to OUT during a run must show up in the outcome.
    let mut scene = Scene::new().await;
    let (rx, mut peer) = scene.start(&[]).await;
    std::fs::write(scene.sibling.join("planted"), b"x").expect("write");
    std::fs::write(&scene.victim, b"changed").expect("write");
    peer.open_manifest(&[file(0, "../x", 1)]).await.expect("manifest");
    let o = scene.finish(rx, Some(peer)).await;
    assert_eq!(o.outside.len(), 2, "{:?}", o.outside);
    assert!(o.outside[0].contains("victim") || o.outside[1].contains("victim"), "{:?}", o.outside);
}

#[test]
fn control_the_raw_control_detector_fires() {
    use hostile_peer::raw_controls;
    for bad in [&b"a\x1bb"[..], b"\x07", b"\r", "\u{9b}".as_bytes(), "\u{202e}".as_bytes(), "\u{200b}".as_bytes(), b"\xff"] {
        assert!(!raw_controls(bad).is_empty(), "{bad:?}");
    }
    assert!(raw_controls("plain \\e[2J \\u{202E} caf\u{e9}\n".as_bytes()).is_empty());
}

// ---------------------------------------------------------------------------
// Class 1: paths.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_traversal_absolute_and_odd_paths_are_refused() {
    let cases: Vec<Vec<u8>> = [
        "../x",
        "../../.ssh/authorized_keys",
        "/etc/x",
        "C:\\x",
        "C:x",
        "\\\\host\\x",
        "a/../../x",
        "a//b",
        "",
        ".",
        "..",
        "./x",
        "a/./b",
        "a/",
        "../out-suffix/x",
        "../out-suffix/marker",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let names: Vec<&[u8]> = cases.iter().map(Vec::as_slice).collect();
    refuse_each_name(&names).await;
    // Absolute paths into this scene's own snapshotted folders, so that a
    // write would be seen (one scene, two runs).
    let mut scene = Scene::new().await;
    for abs in [scene.outside.join("abs"), scene.sibling.join("abs")] {
        let raw = abs.to_str().expect("UTF-8 temp path").as_bytes().to_vec();
        let o = manifest_run_in(&mut scene, &[], &[file(0, &raw, 3)]).await;
        o.assert_refused(exit::PROTOCOL, Some(&raw)).assert_no_files_in_out();
        assert!(!abs.exists(), "{} was written", abs.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_escaping_folder_entries_are_refused() {
    for raw in ["../x", "../out-suffix/d", "/etc/d", "a/../../d"] {
        let o = manifest_run(&[], &[dir(0, raw)]).await;
        o.assert_refused(exit::PROTOCOL, Some(raw.as_bytes())).assert_no_files_in_out();
        assert!(o.out.is_empty(), "{raw}: nothing may be created in OUT: {:?}", o.out.keys());
    }
}

// ---------------------------------------------------------------------------
// Class 2: duplicates, file/folder clashes, case and normalisation twins,
// entry kinds the protocol cannot express.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_duplicates_and_lookalikes_are_refused() {
    let nfc = "caf\u{e9}.txt";
    let nfd = "cafe\u{301}.txt";
    let cases: Vec<(&str, Vec<Entry>, &[u8])> = vec![
        ("same file twice", vec![file(0, "a.txt", 3), file(1, "a.txt", 3)], b"a.txt"),
        ("same folder twice", vec![dir(0, "d"), dir(1, "d")], b"d"),
        ("file then folder", vec![file(0, "d", 3), dir(1, "d")], b"d"),
        ("folder then file", vec![dir(0, "d"), file(1, "d", 3)], b"d"),
        ("file used as a parent", vec![file(0, "d", 3), file(1, "d/x", 3)], b"d/x"),
        ("implied folder then file", vec![file(0, "d/x", 3), file(1, "d", 3)], b"d"),
        ("case", vec![file(0, "A.txt", 3), file(1, "a.txt", 3)], b"a.txt"),
        ("case of a parent", vec![file(0, "Dir/x", 3), file(1, "dir/y", 3)], b"dir/y"),
        ("case of folders", vec![dir(0, "D"), dir(1, "d")], b"d"),
        ("NFC then NFD", vec![file(0, nfc, 3), file(1, nfd, 3)], nfd.as_bytes()),
        ("NFD then NFC", vec![file(0, nfd, 3), file(1, nfc, 3)], nfc.as_bytes()),
    ];
    for (what, entries, shown) in cases {
        eprintln!("case {what}");
        let o = manifest_run(&[], &entries).await;
        o.assert_refused(exit::PROTOCOL, Some(shown)).assert_no_files_in_out();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_link_device_and_malformed_entry_kinds_are_refused() {
    // Entry = 4, index, kind, path, size, flags, mtime (one-byte varuints).
    let cases: [(&str, &[u8]); 4] = [
        ("kind 3 (a link, a device…)", &[4, 0, 3, 1, b'x', 0, 0, 0]),
        ("kind 0", &[4, 0, 0, 1, b'x', 0, 0, 0]),
        ("a folder with a size", &[4, 0, 2, 1, b'x', 5, 0, 0]),
        ("unknown flag bits (setuid?)", &[4, 0, 1, 1, b'x', 0, 2, 0]),
    ];
    for (what, bytes) in cases {
        eprintln!("case {what}");
        let mut scene = Scene::new().await;
        let (rx, mut peer) = scene.start(&[]).await;
        peer.offer(1, 0, 0, &[b"x"]).flush().await.expect("offer");
        peer.expect(Expect::Accept).await.expect("accept");
        peer.raw(bytes).manifest_end();
        let _ = peer.flush().await;
        peer.follow_through(&[]).await;
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_refused(exit::PROTOCOL, None).assert_no_files_in_out();
    }
}

// ---------------------------------------------------------------------------
// Class 3: symlinks inside OUT.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_symlinked_parent_inside_out_is_never_followed() {
    for entries in [
        vec![file(0, "evil/x", 3)],
        vec![dir(0, "evil/sub")],
        vec![file(0, "evil/sub/x", 3)],
        vec![dir(0, "evil")],
        vec![dir(0, "ok"), file(1, "evil/x", 3)],
    ] {
        let mut scene = Scene::new().await;
        std::os::unix::fs::symlink(&scene.outside, scene.make_out().join("evil")).expect("plant symlink");
        let o = manifest_run_in(&mut scene, &[], &entries).await;
        let last = &entries[entries.len() - 1];
        // A folder entry at the link itself is refused as well (never "fine, it exists").
        o.assert_refused(exit::PROTOCOL, Some(&last.path)).assert_mentions("symbolic link");
        assert!(std::fs::read_dir(&scene.outside).expect("outside").next().is_none(), "something appeared in the link's target");
        assert!(matches!(o.out_node("evil"), Some(Node::Link(_))), "the planted link must stay as it was");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_symlink_at_target_name_is_never_written_through() {
    let data = b"new content".to_vec();
    let t = file(0, "t.txt", data.len() as u64);
    // (flags, expected exit, dangling link?)
    for (flags, code, dangling) in [
        (&[][..], exit::EXISTS, false),
        (&["--overwrite"][..], exit::OK, false),
        (&["--rename"][..], exit::OK, false),
        (&[][..], exit::EXISTS, true),
        (&["--overwrite"][..], exit::OK, true),
    ] {
        eprintln!("case {flags:?} dangling={dangling}");
        let mut scene = Scene::new().await;
        let target = if dangling { scene.outside.join("new") } else { scene.victim.clone() };
        std::os::unix::fs::symlink(&target, scene.make_out().join("t.txt")).expect("plant symlink");
        let (rx, mut peer) = scene.start(flags).await;
        peer.open_manifest(std::slice::from_ref(&t)).await.expect("manifest");
        if peer.expect(Expect::Ready).await.is_ok() {
            peer.send_file(&t, &data).done();
            let _ = peer.flush().await;
        }
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_exit(code).assert_clean();
        assert_eq!(std::fs::read(&scene.victim).expect("victim"), VICTIM, "the victim changed");
        assert!(!scene.outside.join("new").exists(), "a dangling link was written through");
        match (code, flags) {
            (exit::EXISTS, _) => {
                o.assert_names(b"t.txt");
                assert!(matches!(o.out_node("t.txt"), Some(Node::Link(_))), "the link must stay");
            }
            (_, ["--overwrite"]) => {
                // The link itself was replaced by the received file.
                assert!(matches!(o.out_node("t.txt"), Some(Node::File { data: d, .. }) if *d == data), "{:?}", o.out_node("t.txt"));
            }
            _ => {
                assert!(matches!(o.out_node("t.txt"), Some(Node::Link(_))), "the link must stay");
                assert!(matches!(o.out_node("t (1).txt"), Some(Node::File { data: d, .. }) if *d == data), "{:?}", o.out.keys());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_parent_swapped_for_a_symlink_before_the_data_is_refused() {
    // Case 1: the parent does not exist yet at manifest time; case 2: it was
    // created by a folder entry and is then moved away.
    for with_dir in [false, true] {
        let mut scene = Scene::new().await;
        let x = file(if with_dir { 1 } else { 0 }, "d/x", 5);
        let entries = if with_dir { vec![dir(0, "d"), x.clone()] } else { vec![x.clone()] };
        let (rx, mut peer) = scene.start(&[]).await;
        peer.open_manifest(&entries).await.expect("manifest");
        peer.expect(Expect::Ready).await.expect("ready");
        if with_dir {
            std::fs::rename(scene.out.join("d"), scene.out.join("moved")).expect("move d away");
        }
        std::os::unix::fs::symlink(&scene.outside, scene.out.join("d")).expect("swap in a symlink");
        peer.send_file(&x, b"12345").done();
        let _ = peer.flush().await;
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_refused(exit::PROTOCOL, Some(b"d/x")).assert_mentions("symbolic link");
        assert!(std::fs::read_dir(&scene.outside).expect("outside").next().is_none(), "written through the swapped link");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_parent_swapped_for_a_symlink_mid_file_is_harmless() {
    let mut scene = Scene::new().await;
    let x = file(1, "d/x", 10);
    let entries = [dir(0, "d"), x.clone()];
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(&entries).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    peer.file_start(&x, 0).chunk(b"01234");
    peer.flush().await.expect("first half");
    // Wait until the receiver opened its partial file, then swap the parent.
    let partial = scene.out.join("d").join(".x.pqdrop-partial");
    let t0 = Instant::now();
    while !partial.exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the receiver never created {}", partial.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::rename(scene.out.join("d"), scene.out.join("moved")).expect("move d away");
    std::os::unix::fs::symlink(&scene.outside, scene.out.join("d")).expect("swap in a symlink");
    peer.chunk(b"56789").file_end(hash(b"0123456789")).done();
    peer.flush().await.expect("second half");
    let _ = peer.expect(Expect::DoneAck).await;
    let o = scene.finish(rx, Some(peer)).await;
    // The writer kept the handle of the folder it opened: the file lands there.
    o.assert_exit(exit::OK).assert_clean();
    assert!(std::fs::read_dir(&scene.outside).expect("outside").next().is_none(), "written through the swapped link");
    assert!(matches!(o.out_node("moved/x"), Some(Node::File { data, .. }) if data == b"0123456789"), "{:?}", o.out.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_folder_swapped_for_a_symlink_before_done_keeps_the_targets_times() {
    // Folder times are set at Done; a folder swapped for a link by then must
    // not have its target's times changed.
    let mut scene = Scene::new().await;
    let mut d = dir(0, "d");
    d.mtime = 1_000;
    let mut sub = dir(1, "d/sub");
    sub.mtime = 2_000;
    std::fs::create_dir(scene.outside.join("sub")).expect("mkdir outside/sub");
    let times = |p: &std::path::Path| std::fs::symlink_metadata(p).and_then(|m| m.modified()).expect("mtime");
    let before = (times(&scene.outside), times(&scene.outside.join("sub")));
    let (rx, mut peer) = scene.start(&[]).await;
    peer.open_manifest(&[d, sub]).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    std::fs::rename(scene.out.join("d"), scene.out.join("moved")).expect("move d away");
    std::os::unix::fs::symlink(&scene.outside, scene.out.join("d")).expect("swap in a symlink");
    peer.done();
    let _ = peer.flush().await;
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_clean();
    assert!(matches!(o.exit.code, Some(exit::OK | exit::PROTOCOL)), "exit {:?}: {}", o.exit.code, o.stderr());
    assert_eq!((times(&scene.outside), times(&scene.outside.join("sub"))), before, "the link's target got the sender's times");
}

// ---------------------------------------------------------------------------
// Class 4: terminal control in names.

const TERMINAL_NAMES: [&[u8]; 10] = [
    b"\x1b[2Jcleared",
    b"\x1b]0;owned\x07title",
    b"fake\rprompt",
    b"line\nbreak",
    b"bell\x07",
    "c1\u{9b}31m".as_bytes(),
    "\u{202e}txt.exe".as_bytes(),
    "zero\u{200b}width".as_bytes(),
    b"bad\xff\xfeutf8",
    b"del\x7f",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c4_terminal_controls_are_escaped_in_the_offer_and_refused_as_entries() {
    for raw in TERMINAL_NAMES {
        eprintln!("case {:?}", pqdrop_engine::names::escape(raw));
        let mut scene = Scene::new().await;
        let (rx, mut peer) = scene.start(&[]).await;
        let preview_only: &[u8] = b"preview\x1b[1A\xc2\x9b\xe2\x80\xae\xff";
        peer.offer(1, 0, 3, &[raw, preview_only]).flush().await.expect("offer");
        peer.expect(Expect::Accept).await.expect("accept");
        peer.entry(&file(0, raw, 3)).manifest_end();
        let _ = peer.flush().await;
        peer.follow_through(&[file(0, raw, 3)]).await;
        let o = scene.finish(rx, Some(peer)).await;
        // assert_clean checks that no raw control, C1, bidi or zero-width
        // character (nor invalid UTF-8) reached stderr.
        o.assert_refused(exit::PROTOCOL, Some(raw)).assert_no_files_in_out();
        o.assert_names(preview_only);
        let err = o.stderr();
        assert!(err.contains("\\e[1A") && err.contains("\\u{009B}") && err.contains("\\u{202E}") && err.contains("\\xFF"), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Class 5: Windows-reserved names, trailing dot or space, streams.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_windows_reserved_names_are_refused() {
    refuse_each_name(&[
        b"CON",
        b"con",
        b"nul.txt",
        b"COM1",
        b"com9.log",
        b"LPT1",
        b"AUX",
        b"PRN.tar.gz",
        b"CON .txt",
        b"a.",
        b"a ",
        b"a:b",
        b"file.txt:Zone.Identifier",
        b"dir/NUL",
        b"dir./x",
        b"dir /x",
    ])
    .await;
}

// ---------------------------------------------------------------------------
// Class 6: names like pqdrop's own state files.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c6_state_file_names_are_refused() {
    refuse_each_name(&[
        b"x.pqdrop-partial",
        b".pqdrop-state",
        b".pqdrop",
        b".a.txt.pqdrop-partial",
        b"X.PQDROP-PARTIAL",
        b"sub/.pqdrop-state",
        b".pqdrop-0123456789abcdef.pqdrop-partial",
    ])
    .await;
}

// ---------------------------------------------------------------------------
// Class 7: existing files and folders.

const ORIGINAL: &[u8] = b"original content\n";

fn plant_original(scene: &Scene) {
    std::fs::write(scene.make_out().join("a.txt"), ORIGINAL).expect("plant a.txt");
}

fn assert_original(o: &Outcome) {
    assert!(matches!(o.out_node("a.txt"), Some(Node::File { data, .. }) if data == ORIGINAL), "a.txt changed: {:?}", o.out_node("a.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_existing_file_of_another_size_is_left_untouched() {
    let mut scene = Scene::new().await;
    plant_original(&scene);
    let o = manifest_run_in(&mut scene, &[], &[file(0, "a.txt", 5)]).await;
    o.assert_refused(exit::EXISTS, Some(b"a.txt")).assert_mentions("already exists");
    assert_original(&o);
    assert_eq!(o.out.len(), 1, "nothing but a.txt: {:?}", o.out.keys());
}

/// A file of the offered name and size that this receiver did not put there
/// itself is a taken name like any other: it is never claimed with a `Have`,
/// so a sender cannot confirm a guess of its content (not even a right one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_existing_file_of_the_same_size_is_never_proven() {
    let other = b"0123456789abcdef\n";
    assert_eq!(other.len(), ORIGINAL.len());
    for offered in [&other[..], ORIGINAL] {
        let mut scene = Scene::new().await;
        plant_original(&scene);
        let a = file(0, "a.txt", offered.len() as u64);
        let (rx, mut peer) = scene.start(&[]).await;
        peer.open_manifest(std::slice::from_ref(&a)).await.expect("manifest");
        // The receiver refuses at the manifest, before Ready, claiming nothing.
        assert!(peer.expect(Expect::Ready).await.is_err(), "the receiver went on past a taken name");
        assert!(peer.haves.is_empty(), "the receiver proved a file it did not write: {:?}", peer.haves);
        let o = scene.finish(rx, Some(peer)).await;
        o.assert_refused(exit::EXISTS, Some(b"a.txt")).assert_mentions("already exists");
        assert_original(&o);
        assert_eq!(o.out.len(), 1, "nothing but a.txt: {:?}", o.out.keys());
    }
    // With --overwrite it is replaced, still without a claim.
    let mut scene = Scene::new().await;
    plant_original(&scene);
    let a = file(0, "a.txt", ORIGINAL.len() as u64);
    let (rx, mut peer) = scene.start(&["--overwrite"]).await;
    peer.open_manifest(std::slice::from_ref(&a)).await.expect("manifest");
    peer.expect(Expect::Ready).await.expect("ready");
    assert!(peer.haves.is_empty(), "{:?}", peer.haves);
    peer.file_start(&a, 0).chunk(other).file_end(hash(other)).done();
    peer.flush().await.expect("data");
    peer.expect(Expect::DoneAck).await.expect("done ack");
    let o = scene.finish(rx, Some(peer)).await;
    o.assert_exit(exit::OK);
    assert!(matches!(o.out_node("a.txt"), Some(Node::File { data, .. }) if data == other), "{:?}", o.out_node("a.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_existing_folder_at_a_file_name_is_left_untouched() {
    for (flags, code) in [(&[][..], exit::EXISTS), (&["--overwrite"][..], exit::IO)] {
        let mut scene = Scene::new().await;
        std::fs::create_dir_all(scene.make_out().join("a.txt")).expect("mkdir");
        std::fs::write(scene.out.join("a.txt").join("inner"), b"keep").expect("write inner");
        let o = manifest_run_in(&mut scene, flags, &[file(0, "a.txt", 3)]).await;
        o.assert_refused(code, Some(b"a.txt"));
        assert!(matches!(o.out_node("a.txt"), Some(Node::Dir)));
        assert!(matches!(o.out_node("a.txt/inner"), Some(Node::File { data, .. }) if data == b"keep"));
        assert_eq!(o.out.len(), 2, "{:?}", o.out.keys());
    }
}
