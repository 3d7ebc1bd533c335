//! `pqdrop seal` and `pqdrop open` through the real binary: two contacts
//! seal files and folders for each other (a file larger than the pipeline's
//! buffers, to show it streams), and a wrong recipient, a flipped byte, a
//! cut or extended file, an unknown contact and an existing output are all
//! refused without leaving a partial file behind.

use std::path::Path;

mod common;
use common::users::{path_str, transfer, User};
use common::{exit, temp_dir, write_pseudo_random_file, Harness, Net, MIB};

/// Alice and Bob with identities, saved as each other's contacts.
fn contacts(h: &Harness) -> (User, User) {
    let (alice, bob) = (User::new(), User::new());
    alice.ok(h, &["id", "init", "--no-passphrase"]);
    bob.ok(h, &["id", "init", "--no-passphrase"]);
    let [s, r] = transfer(h, &alice, &bob, "41-lemon-tiger", &["--save-contact", "bob"], &["--save-contact", "alice"]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    (alice, bob)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.push(e.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all.extend(walk(&p));
        }
        all.push(p);
    }
    all
}

#[test]
fn a_contact_opens_what_was_sealed_for_them_and_no_one_else_can() {
    let h = Harness::new(Net::Lan);
    let (alice, bob) = contacts(&h);
    let work = temp_dir("pqdrop-seal-");
    let src = work.path().join("photos");
    std::fs::create_dir_all(src.join("2026/empty")).unwrap();
    write_pseudo_random_file(&src.join("2026/big.bin"), 7, 5 * MIB as u64 + 3);
    std::fs::write(src.join("note.txt"), "for bob\n").unwrap();
    let sealed = work.path().join("photos.pqdrop");

    let (_, err) = alice.ok(&h, &["seal", "--to", "Bob", path_str(&src), "-o", path_str(&sealed)]);
    assert!(err.contains("Sealed 2 files") && err.contains("for bob"), "{err}");
    let no_temp = std::fs::read_dir(work.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("pqdrop-tmp"));
    assert!(no_temp, "no temporary file stays");

    let out = temp_dir("pqdrop-open-");
    let (_, err) = bob.ok(&h, &["open", path_str(&sealed), "-o", path_str(out.path())]);
    assert!(err.contains("Sealed by your contact alice"), "{err}");
    assert_eq!(
        entries(out.path()),
        ["photos", "photos/2026", "photos/2026/big.bin", "photos/2026/empty", "photos/note.txt"],
        "the tree, with its empty folder, and nothing else"
    );
    common::assert_same_file(&src.join("2026/big.bin"), &out.path().join("photos/2026/big.bin"));

    // Opening again: the files exist, and without a terminal that stops (exit 9).
    let f = bob.run(&h, &["open", path_str(&sealed), "-o", path_str(out.path())]);
    f.assert_code(exit::EXISTS);
    bob.ok(&h, &["open", path_str(&sealed), "-o", path_str(out.path()), "--rename"]);
    assert!(out.path().join("photos (1)").exists() || out.path().join("photos/note (1).txt").exists(), "{:?}", entries(out.path()));

    // Not for Alice herself, nor for a third identity.
    let carol = User::new();
    carol.ok(&h, &["id", "init", "--no-passphrase"]);
    for u in [&alice, &carol] {
        let o = temp_dir("pqdrop-open-");
        let f = u.run(&h, &["open", path_str(&sealed), "-o", path_str(o.path())]);
        assert_ne!(f.code(), Some(exit::OK));
        assert!(f.stderr.contains("not sealed for your identity"), "{}", f.stderr);
        assert!(entries(o.path()).is_empty());
    }
}

#[test]
fn damaged_sealed_files_are_refused_and_leave_no_partial_file() {
    let h = Harness::new(Net::Lan);
    let (alice, bob) = contacts(&h);
    let work = temp_dir("pqdrop-seal-");
    let src = work.path().join("data.bin");
    write_pseudo_random_file(&src, 9, 3 * MIB as u64);
    let sealed = work.path().join("data.bin.pqdrop");
    // The default output name is the file's name with .pqdrop, here.
    let mut p = h
        .command("seal")
        .args(["--to", "bob", path_str(&src)])
        .env("XDG_CONFIG_HOME", alice.config.path())
        .without_terminal()
        .current_dir(work.path())
        .spawn("seal");
    p.wait(common::users::WAIT).assert_code(exit::OK);
    let good = std::fs::read(&sealed).unwrap();

    let header = 2396;
    let mut flipped_header = good.clone();
    flipped_header[100] ^= 1;
    let mut flipped_data = good.clone();
    flipped_data[header + 2 * MIB] ^= 0x40;
    let mut extended = good.clone();
    extended.extend_from_slice(&[50, 0]);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("flipped header", flipped_header, "not sealed for your identity"),
        ("flipped data", flipped_data, "the sealed file is damaged"),
        ("cut short", good[..good.len() - 1000].to_vec(), "the sealed file is damaged"),
        ("cut at the header", good[..1000].to_vec(), "not a pqdrop sealed file"),
        ("extended", extended, "the sealed file is damaged"),
    ];
    for (what, bytes, says) in cases {
        let bad = work.path().join("bad.pqdrop");
        std::fs::write(&bad, &bytes).unwrap();
        let out = temp_dir("pqdrop-open-");
        let f = bob.run(&h, &["open", path_str(&bad), "-o", path_str(out.path())]);
        assert_ne!(f.code(), Some(exit::OK), "{what}");
        assert!(f.stderr.contains(says), "{what}: {}", f.stderr);
        let left = entries(out.path());
        if what == "extended" {
            // The whole transfer came and was verified before the extra
            // bytes: the file is genuine and stays; the error still tells.
            assert_eq!(left, ["data.bin"], "{what}");
            common::assert_same_file(&src, &out.path().join("data.bin"));
        } else {
            assert!(left.is_empty(), "{what}: {left:?}");
        }
    }
}

#[test]
fn sealing_refuses_an_unknown_contact_and_an_existing_output() {
    let h = Harness::new(Net::Lan);
    let (alice, _bob) = contacts(&h);
    let work = temp_dir("pqdrop-seal-");
    let src = work.path().join("a.txt");
    std::fs::write(&src, "x").unwrap();
    let out = work.path().join("a.pqdrop");
    let f = alice.run(&h, &["seal", "--to", "nobody", path_str(&src), "-o", path_str(&out)]);
    assert_ne!(f.code(), Some(exit::OK));
    assert!(f.stderr.contains("no contact is named \"nobody\""), "{}", f.stderr);
    assert!(!out.exists());
    std::fs::write(&out, "keep me").unwrap();
    let f = alice.run(&h, &["seal", "--to", "bob", path_str(&src), "-o", path_str(&out)]);
    assert_ne!(f.code(), Some(exit::OK));
    assert!(f.stderr.contains("exists; nothing was written"), "{}", f.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    alice.ok(&h, &["seal", "--to", "bob", path_str(&src), "-o", path_str(&out), "--force"]);
    assert!(std::fs::read(&out).unwrap().starts_with(b"PQDROPSF"));
}
