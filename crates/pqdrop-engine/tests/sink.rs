//! The receiver's filesystem side against hostile names and file-system
//! tricks (PROTOCOL.md §8): each test names the class it covers.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use pqdrop_engine::names::{escape, CollisionSet, SafePath};
use pqdrop_engine::sink::{ConflictPolicy, OutputDir, Probe};
use pqdrop_engine::Error;

fn sp(raw: &str) -> SafePath {
    SafePath::parse(raw.as_bytes()).expect(raw)
}

/// Output dir `<tmp>/out` and an empty sibling `<tmp>/elsewhere` that must stay
/// empty.
fn setup(policy: ConflictPolicy) -> (tempfile::TempDir, OutputDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir(tmp.path().join("elsewhere")).expect("elsewhere");
    let out = OutputDir::open(&tmp.path().join("out"), policy).expect("open");
    (tmp, out)
}

fn out(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    tmp.path().join("out")
}

fn assert_untouched(dir: &Path) {
    let entries: Vec<_> = fs::read_dir(dir).expect("read_dir").collect();
    assert!(entries.is_empty(), "{} was written to: {entries:?}", dir.display());
}

/// Writes a whole file through the sink.
fn write_file(out: &OutputDir, p: &SafePath, data: &[u8], overwrite: bool) -> pqdrop_engine::Result<()> {
    let size = data.len() as u64;
    let mut w = out.begin_file(p, size, None)?;
    w.write(data)?;
    let policy = if overwrite { ConflictPolicy::Overwrite } else { ConflictPolicy::Refuse };
    w.finish(Some(blake3::hash(data).as_bytes()), false, 1_600_000_000, policy).map(|_| ())
}

#[test]
fn class1_traversal_paths_are_refused() {
    for raw in ["../x", "../../.ssh/authorized_keys", "/etc/x", "C:\\x", "\\\\host\\x", "a/../../x", "a//b", "", ".", "../out-suffix/x"] {
        match SafePath::parse(raw.as_bytes()) {
            Err(pqdrop_proto::Error::Hostile { .. }) => {}
            other => panic!("{raw:?} accepted: {other:?}"),
        }
    }
}

#[test]
fn class2_duplicates_and_file_dir_clashes_are_detected() {
    let mut set = CollisionSet::new(1000);
    set.insert(&sp("d/f"), false).expect("first");
    set.insert(&sp("d"), true).expect("implied parent listed");
    assert!(set.insert(&sp("d/f"), false).is_err(), "duplicate file");
    assert!(set.insert(&sp("d"), true).is_err(), "duplicate dir");
    assert!(set.insert(&sp("d/f/g"), false).is_err(), "file used as a parent");
    assert!(set.insert(&sp("d/f"), true).is_err(), "dir over file");
}

#[test]
fn class3_symlinked_parent_is_refused_and_nothing_escapes() {
    let (tmp, out) = setup(ConflictPolicy::Overwrite);
    symlink(tmp.path().join("elsewhere"), out_path(&tmp, "evil")).expect("symlink");
    let p = sp("evil/x");
    assert!(matches!(out.create_dir(&sp("evil/sub")), Err(Error::Hostile { .. })));
    assert!(matches!(out.probe_file(&p, 3), Err(Error::Hostile { .. })));
    assert!(matches!(out.begin_file(&p, 3, None), Err(Error::Hostile { .. })));
    assert!(matches!(out.create_dir(&sp("evil")), Err(Error::Hostile { .. })));
    // Deeper: a symlink two levels down.
    fs::create_dir(out_path(&tmp, "ok")).expect("dir");
    symlink("../../elsewhere", out_path(&tmp, "ok/link")).expect("symlink");
    assert!(out.begin_file(&sp("ok/link/y"), 1, None).is_err());
    assert_untouched(&tmp.path().join("elsewhere"));
}

#[test]
fn class3_file_in_the_way_of_a_parent_is_refused() {
    let (tmp, out) = setup(ConflictPolicy::Overwrite);
    fs::write(out_path(&tmp, "f"), b"keep").expect("write");
    assert!(out.create_dir(&sp("f/sub")).is_err());
    assert!(out.begin_file(&sp("f/x"), 1, None).is_err());
    assert_eq!(fs::read(out_path(&tmp, "f")).expect("read"), b"keep");
}

#[test]
fn class3_symlink_at_target_is_never_written_through() {
    let victim = |tmp: &tempfile::TempDir| tmp.path().join("elsewhere/victim");
    for policy in [ConflictPolicy::Refuse, ConflictPolicy::Overwrite, ConflictPolicy::Rename] {
        let (tmp, out) = setup(policy);
        fs::write(victim(&tmp), b"secret").expect("victim");
        symlink(victim(&tmp), out_path(&tmp, "t")).expect("symlink");
        let p = sp("t");
        match (policy, out.probe_file(&p, 6)) {
            (ConflictPolicy::Refuse, Err(Error::Exists(_))) => {}
            (ConflictPolicy::Overwrite, Ok(Probe::Conflict { renamed: None })) => {}
            (ConflictPolicy::Rename, Ok(Probe::Conflict { renamed: Some(r) })) => {
                assert_eq!(r, sp("t (1)"));
            }
            (_, other) => panic!("{policy:?}: {other:?}"),
        }
        // Without consent the link stays and the victim is untouched.
        assert!(matches!(write_file(&out, &p, b"hostil", false), Err(Error::Exists(_))));
        assert!(fs::symlink_metadata(out_path(&tmp, "t")).expect("t").file_type().is_symlink());
        assert_eq!(fs::read(victim(&tmp)).expect("victim"), b"secret");
        // With consent the link itself is replaced, the victim still untouched.
        write_file(&out, &p, b"hostil", true).expect("overwrite");
        let md = fs::symlink_metadata(out_path(&tmp, "t")).expect("t");
        assert!(md.file_type().is_file());
        assert_eq!(fs::read(out_path(&tmp, "t")).expect("t"), b"hostil");
        assert_eq!(fs::read(victim(&tmp)).expect("victim"), b"secret");
    }
}

#[test]
fn class3_dangling_symlink_at_target_creates_nothing_outside() {
    let (tmp, out) = setup(ConflictPolicy::Overwrite);
    symlink(tmp.path().join("elsewhere/new"), out_path(&tmp, "t")).expect("symlink");
    assert!(matches!(out.probe_file(&sp("t"), 1), Ok(Probe::Conflict { renamed: None })));
    assert!(matches!(write_file(&out, &sp("t"), b"x", false), Err(Error::Exists(_))));
    assert_untouched(&tmp.path().join("elsewhere"));
}

#[test]
fn class3_symlinked_partial_is_not_followed() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let victim = tmp.path().join("elsewhere/victim");
    fs::write(&victim, b"secret").expect("victim");
    symlink(&victim, out_path(&tmp, ".f.pqdrop-partial")).expect("symlink");
    // A symlinked partial is not offered for resume ...
    assert!(matches!(out.probe_file(&sp("f"), 10), Ok(Probe::Fresh)));
    // ... resuming it anyway fails without touching the target ...
    let hasher = blake3::Hasher::new();
    assert!(out.begin_file(&sp("f"), 10, Some((0, hasher))).is_err());
    // ... and a fresh start replaces the link, not the victim.
    write_file(&out, &sp("f"), b"0123456789", false).expect("write");
    assert_eq!(fs::read(&victim).expect("victim"), b"secret");
    assert_eq!(fs::read(out_path(&tmp, "f")).expect("f"), b"0123456789");
}

#[test]
fn class3_parent_swapped_for_symlink_after_probe_is_not_followed() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let p = sp("d/x");
    out.create_dir(&sp("d")).expect("dir");
    assert!(matches!(out.probe_file(&p, 2), Ok(Probe::Fresh)));
    fs::remove_dir(out_path(&tmp, "d")).expect("rmdir");
    symlink(tmp.path().join("elsewhere"), out_path(&tmp, "d")).expect("symlink");
    assert!(matches!(out.begin_file(&p, 2, None), Err(Error::Hostile { .. })));
    assert_untouched(&tmp.path().join("elsewhere"));
}

#[test]
fn class3_parent_swapped_during_write_keeps_the_file_inside() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let p = sp("d/x");
    let mut w = out.begin_file(&p, 2, None).expect("begin");
    w.write(b"hi").expect("write");
    fs::rename(out_path(&tmp, "d"), out_path(&tmp, "moved")).expect("move");
    symlink(tmp.path().join("elsewhere"), out_path(&tmp, "d")).expect("symlink");
    w.finish(Some(blake3::hash(b"hi").as_bytes()), false, 0, ConflictPolicy::Refuse).expect("finish");
    assert_untouched(&tmp.path().join("elsewhere"));
    assert_eq!(fs::read(out_path(&tmp, "moved/x")).expect("x"), b"hi");
}

#[test]
fn class3_parent_swapped_between_files_keeps_the_next_file_inside() {
    // The writer keeps the last folder it walked to open; a folder swapped
    // for a symlink after one file was written there is never followed.
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    write_file(&out, &sp("d/x"), b"1", false).expect("first file");
    fs::rename(out_path(&tmp, "d"), out_path(&tmp, "moved")).expect("move");
    symlink(tmp.path().join("elsewhere"), out_path(&tmp, "d")).expect("symlink");
    assert!(matches!(out.probe_file(&sp("d/y"), 1), Err(Error::Hostile { .. })), "the check walks again");
    let _ = write_file(&out, &sp("d/y"), b"2", false);
    assert_untouched(&tmp.path().join("elsewhere"));
}

#[test]
fn a_file_made_by_someone_else_in_a_new_folder_is_not_replaced() {
    // A folder this run created is not looked into before each file (it
    // holds only what the transfer put there), so a file another program
    // made there meanwhile is found when placing, and kept.
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    out.create_dir(&sp("new")).expect("dir");
    fs::write(out_path(&tmp, "new/f"), b"theirs").expect("their file");
    assert!(matches!(out.probe_file(&sp("new/f"), 4), Ok(Probe::Fresh)));
    assert!(matches!(write_file(&out, &sp("new/f"), b"ours", false), Err(Error::Exists(_))));
    assert_eq!(fs::read(out_path(&tmp, "new/f")).expect("f"), b"theirs");
    // In a folder that existed before, the check finds it at once.
    fs::create_dir(out_path(&tmp, "old")).expect("old");
    fs::write(out_path(&tmp, "old/f"), b"theirs").expect("their file");
    assert!(matches!(out.probe_file(&sp("old/f"), 4), Err(Error::Exists(_))));
}

#[test]
fn class4_names_are_escaped_for_display() {
    assert_eq!(escape(b"\x1b[31mred\x1b[0m"), "\\e[31mred\\e[0m");
    assert_eq!(escape(b"\x1b]0;title\x07"), "\\e]0;title\\x07");
    assert_eq!(escape(b"ok\rFAKE PROMPT\n"), "ok\\rFAKE PROMPT\\n");
    assert_eq!(escape(b"c1\x9b2J"), "c1\\x9B2J");
    assert_eq!(escape("c1\u{9b}2J".as_bytes()), "c1\\u{009B}2J");
    assert_eq!(escape("invoice\u{202e}fdp.exe".as_bytes()), "invoice\\u{202E}fdp.exe");
    assert_eq!(escape("a\u{200b}b\u{2066}".as_bytes()), "a\\u{200B}b\\u{2066}");
    assert_eq!(escape(b"bad\xc3\x28utf8"), "bad\\xC3(utf8");
    assert_eq!(escape(b"back\\slash"), "back\\\\slash");
    assert_eq!(escape("ünïcödé 名前.txt".as_bytes()), "ünïcödé 名前.txt");
    // Such names are refused outright as well.
    for raw in [&b"\x1b[2J"[..], b"a\rb", b"\x07", b"a\xffb", "x\u{202e}y".as_bytes(), "x\u{200b}y".as_bytes()] {
        assert!(SafePath::parse(raw).is_err(), "{}", escape(raw));
    }
    // The allowed zero-width joiner is escaped when shown.
    assert_eq!(sp("a\u{200d}b").display(), "a\\u{200D}b");
}

#[test]
fn class5_windows_reserved_and_lookalike_names() {
    for raw in ["CON", "nul.txt", "Aux.tar.gz", "COM1", "lpt9.log", "x.", "x ", "a:b", "C:", "d/PRN/f"] {
        assert!(SafePath::parse(raw.as_bytes()).is_err(), "{raw}");
    }
    let mut set = CollisionSet::new(1000);
    set.insert(&sp("Readme.txt"), false).expect("first");
    assert!(set.insert(&sp("README.TXT"), false).is_err(), "case");
    set.insert(&sp("caf\u{e9}.txt"), false).expect("nfc");
    assert!(set.insert(&sp("cafe\u{301}.txt"), false).is_err(), "nfd");
    set.insert(&sp("x"), false).expect("file");
    assert!(set.insert(&sp("x"), true).is_err(), "file then dir");
    set.insert(&sp("y"), true).expect("dir");
    assert!(set.insert(&sp("Y"), false).is_err(), "dir then file differing in case");
}

#[test]
fn class6_state_file_names_are_refused() {
    for raw in ["x.pqdrop-partial", ".x.pqdrop-partial", "d/X.PQDROP-PARTIAL", ".pqdrop", ".pqdrop-resume"] {
        assert!(SafePath::parse(raw.as_bytes()).is_err(), "{raw}");
    }
}

#[test]
fn class7_declined_overwrite_leaves_old_file_identical() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    fs::write(out_path(&tmp, "a.txt"), b"old contents").expect("old");
    let before = fs::metadata(out_path(&tmp, "a.txt")).expect("md");
    assert!(matches!(out.probe_file(&sp("a.txt"), 3), Err(Error::Exists(_))));
    // Even if the engine went on, finish refuses without consent and the
    // verified partial stays for later.
    assert!(matches!(write_file(&out, &sp("a.txt"), b"new", false), Err(Error::Exists(_))));
    assert_eq!(fs::read(out_path(&tmp, "a.txt")).expect("read"), b"old contents");
    let after = fs::metadata(out_path(&tmp, "a.txt")).expect("md");
    assert_eq!((before.ino(), before.mtime(), before.len()), (after.ino(), after.mtime(), after.len()));
    assert_eq!(fs::read(out_path(&tmp, ".a.txt.pqdrop-partial")).expect("partial"), b"new");
}

#[test]
fn class7_directory_at_target_is_an_error() {
    for policy in [ConflictPolicy::Refuse, ConflictPolicy::Overwrite] {
        let (tmp, out) = setup(policy);
        fs::create_dir(out_path(&tmp, "a")).expect("dir");
        fs::write(out_path(&tmp, "a/inside"), b"keep").expect("inside");
        assert!(out.probe_file(&sp("a"), 4).is_err(), "{policy:?}");
        assert!(write_file(&out, &sp("a"), b"data", true).is_err());
        assert!(write_file(&out, &sp("a"), b"data", false).is_err());
        assert_eq!(fs::read(out_path(&tmp, "a/inside")).expect("inside"), b"keep");
    }
    let (tmp, out) = setup(ConflictPolicy::Rename);
    fs::create_dir(out_path(&tmp, "a")).expect("dir");
    assert!(matches!(
        out.probe_file(&sp("a"), 4),
        Ok(Probe::Conflict { renamed: Some(r) }) if r == sp("a (1)")
    ));
}

#[test]
fn class7_rename_policy_picks_first_free_name() {
    let (tmp, out) = setup(ConflictPolicy::Rename);
    fs::write(out_path(&tmp, "a.txt"), b"old").expect("old");
    let Ok(Probe::Conflict { renamed: Some(r) }) = out.probe_file(&sp("a.txt"), 5) else {
        panic!("expected a rename");
    };
    assert_eq!(r, sp("a (1).txt"));
    write_file(&out, &r, b"fresh", false).expect("write renamed");
    let Ok(Probe::Conflict { renamed: Some(r) }) = out.probe_file(&sp("a.txt"), 5) else {
        panic!("expected a rename");
    };
    assert_eq!(r, sp("a (2).txt"));
    assert_eq!(fs::read(out_path(&tmp, "a.txt")).expect("a"), b"old");
    assert_eq!(fs::read(out_path(&tmp, "a (1).txt")).expect("a1"), b"fresh");

    // Placing under Rename reports the name it chose (for the summary and --json).
    let mut w = out.begin_file(&sp("a.txt"), 3, None).expect("begin");
    w.write(b"new").expect("write");
    assert_eq!(
        w.finish(Some(blake3::hash(b"new").as_bytes()), false, 0, ConflictPolicy::Rename).expect("finish").renamed,
        Some("a (2).txt".into())
    );
    let mut w = out.begin_file(&sp("b.txt"), 1, None).expect("begin");
    w.write(b"b").expect("write");
    assert_eq!(
        w.finish(Some(blake3::hash(b"b").as_bytes()), false, 0, ConflictPolicy::Rename).expect("finish").renamed,
        None,
        "a free name is kept"
    );
    assert_eq!(fs::read(out_path(&tmp, "a (2).txt")).expect("a2"), b"new");
}

#[test]
fn an_existing_file_is_probed_complete_only_if_the_journal_says_it_is_ours() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    fs::write(out_path(&tmp, "same"), b"12345").expect("write");
    // Somebody else's file of the offered size: a taken name, never read.
    assert!(matches!(out.probe_file(&sp("same"), 5), Err(Error::Exists(_))));
    // One this receiver placed in an earlier run of the transfer.
    out.start_journal(&[1; 32]).expect("journal");
    let w = out.begin_file(&sp("mine"), 5, None).expect("begin");
    let mut w = w;
    w.write(b"12345").expect("write");
    let placed = w.finish(Some(blake3::hash(b"12345").as_bytes()), false, 0, ConflictPolicy::Refuse).expect("finish");
    out.record_placed(&placed.path, placed.size, &placed.hash);
    out.flush_journal();
    let again = OutputDir::open(&out_path(&tmp, ""), ConflictPolicy::Refuse).expect("open");
    again.start_journal(&[1; 32]).expect("journal");
    match again.probe_file(&sp("mine"), 5).expect("probe") {
        Probe::Complete { hash, .. } => assert_eq!(&hash, blake3::hash(b"12345").as_bytes()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(again.probe_file(&sp("same"), 5), Err(Error::Exists(_))));
    // Same size but a different file: the policy decides.
    assert!(matches!(again.resolve_conflict(&sp("same")), Err(Error::Exists(_))));
}

#[test]
fn class9_integrity_mismatch_deletes_temp_and_errors() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let p = sp("f.bin");
    let mut w = out.begin_file(&p, 4, None).expect("begin");
    w.write(b"abcd").expect("write");
    let wrong = blake3::hash(b"abce");
    assert!(matches!(w.finish(Some(wrong.as_bytes()), false, 0, ConflictPolicy::Refuse), Err(Error::Integrity(_))));
    assert!(!out_path(&tmp, "f.bin").exists());
    assert!(!out_path(&tmp, ".f.bin.pqdrop-partial").exists());

    // Too short is a mismatch too.
    let mut w = out.begin_file(&p, 4, None).expect("begin");
    w.write(b"abc").expect("write");
    let right = blake3::hash(b"abc");
    assert!(matches!(w.finish(Some(right.as_bytes()), false, 0, ConflictPolicy::Refuse), Err(Error::Integrity(_))));
    assert!(!out_path(&tmp, "f.bin").exists());
}

#[test]
fn class9_writing_past_the_announced_size_errors() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let mut w = out.begin_file(&sp("f"), 4, None).expect("begin");
    w.write(b"abc").expect("write");
    assert!(matches!(w.write(b"de"), Err(Error::PeerViolation(_))));
    assert_eq!(w.written(), 3);
    w.write(b"d").expect("exactly the size");
    assert!(matches!(w.write(b"e"), Err(Error::PeerViolation(_))));
    w.finish(Some(blake3::hash(b"abcd").as_bytes()), false, 0, ConflictPolicy::Refuse).expect("finish");
    assert_eq!(fs::read(out_path(&tmp, "f")).expect("f"), b"abcd");
}

#[test]
fn resume_continues_a_partial_file() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let size = data.len() as u64;
    let p = sp("dir/big.bin");
    let n = 70_001usize;
    {
        let mut w = out.begin_file(&p, size, None).expect("begin");
        w.write(&data[..n]).expect("write");
        // Dropped unfinished: an interrupted transfer.
    }
    assert!(!out_path(&tmp, "dir/big.bin").exists(), "partial never looks complete");
    let Probe::Partial { len, prefix_hash, hasher } = out.probe_file(&p, size).expect("probe") else {
        panic!("expected a partial");
    };
    assert_eq!(len, n as u64);
    assert_eq!(&prefix_hash, blake3::hash(&data[..n]).as_bytes());
    let mut w = out.begin_file(&p, size, Some((len, hasher))).expect("resume");
    assert_eq!(w.written(), len);
    w.write(&data[n..]).expect("rest");
    w.finish(Some(blake3::hash(&data).as_bytes()), true, 1_234_567_890, ConflictPolicy::Refuse).expect("finish");
    assert_eq!(fs::read(out_path(&tmp, "dir/big.bin")).expect("read"), data);
    let md = fs::metadata(out_path(&tmp, "dir/big.bin")).expect("md");
    assert_eq!(md.permissions().mode() & 0o777, 0o777 & !umask());
    assert_eq!(md.mtime(), 1_234_567_890);
    assert!(!out_path(&tmp, "dir/.big.bin.pqdrop-partial").exists());
}

#[test]
fn resume_from_a_shorter_offset_truncates_the_partial() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    let data = b"0123456789abcdef";
    {
        let mut w = out.begin_file(&sp("f"), 16, None).expect("begin");
        w.write(&data[..10]).expect("write");
    }
    // The engine agreed with the sender on 6 bytes only.
    let mut hasher = blake3::Hasher::new();
    hasher.update(&data[..6]);
    let mut w = out.begin_file(&sp("f"), 16, Some((6, hasher))).expect("resume");
    w.write(&data[6..]).expect("rest");
    w.finish(Some(blake3::hash(data).as_bytes()), false, 0, ConflictPolicy::Refuse).expect("finish");
    let md = fs::metadata(out_path(&tmp, "f")).expect("md");
    assert_eq!(md.permissions().mode() & 0o777, 0o666 & !umask());
    assert_eq!(fs::read(out_path(&tmp, "f")).expect("f"), data);
}

#[test]
fn directories_are_created_and_timed() {
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    out.create_dir(&sp("a/b/c")).expect("create");
    out.create_dir(&sp("a/b")).expect("existing is fine");
    assert!(out_path(&tmp, "a/b/c").is_dir());
    out.set_dir_times(&sp("a/b"), 1_000_000_000).expect("times");
    assert_eq!(fs::metadata(out_path(&tmp, "a/b")).expect("md").mtime(), 1_000_000_000);
    assert!(matches!(out.probe_file(&sp("a/b/c/new"), 0), Ok(Probe::Fresh)));
    assert!(matches!(out.probe_file(&sp("missing/new"), 0), Ok(Probe::Fresh)));
    write_file(&out, &sp("empty"), b"", false).expect("empty file");
    assert_eq!(fs::read(out_path(&tmp, "empty")).expect("empty"), b"");
}

#[test]
fn output_dir_may_itself_be_a_symlink_chosen_by_the_user() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::create_dir(tmp.path().join("real")).expect("real");
    symlink(tmp.path().join("real"), tmp.path().join("link")).expect("symlink");
    let out = OutputDir::open(&tmp.path().join("link"), ConflictPolicy::Refuse).expect("open");
    write_file(&out, &sp("f"), b"ok", false).expect("write");
    assert_eq!(fs::read(tmp.path().join("real/f")).expect("f"), b"ok");
}

fn out_path(tmp: &tempfile::TempDir, rel: &str) -> std::path::PathBuf {
    out(tmp).join(rel)
}

/// This process's umask (Linux), which received files follow.
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok())).expect("a Umask line")
}

#[test]
fn a_file_written_without_hashing_is_known_by_its_stamp() {
    // UNHASHED_FRESH: the writer checks only the length; the journal keeps a
    // stamp of the placed inode, and a later probe recognises exactly that.
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    out.start_journal(&[7; 32]).expect("journal");
    let p = sp("big");
    let mut w = out.begin_file(&p, 4, None).expect("begin").without_hash();
    w.write(b"data").expect("write");
    let placed = w.finish(None, false, 1_600_000_000, ConflictPolicy::Refuse).expect("finish");
    assert_ne!(&placed.hash, blake3::hash(b"data").as_bytes(), "a stamp, not a content hash");
    out.record_placed(&placed.path, placed.size, &placed.hash);
    out.flush_journal();
    // The next run of the same transfer reads the journal back.
    let out = OutputDir::open(&tmp.path().join("out"), ConflictPolicy::Refuse).expect("open");
    out.start_journal(&[7; 32]).expect("journal");
    let ours = |out: &OutputDir| match out.probe_file(&p, 4).expect("probe") {
        Probe::Complete { hash, stamp } => out.placed_earlier(&p, 4, &hash, &stamp),
        other => panic!("{other:?}"),
    };
    assert!(ours(&out), "the file placed earlier is claimed");
    // Rewritten in place (same inode and size, new time): not ours any more.
    fs::write(out_path(&tmp, "big"), b"DATA").expect("rewrite");
    assert!(!ours(&out));
    // A hash to check with nothing hashed cannot be confirmed.
    let mut w = out.begin_file(&sp("other"), 1, None).expect("begin").without_hash();
    w.write(b"x").expect("write");
    assert!(matches!(w.finish(Some(blake3::hash(b"x").as_bytes()), false, 0, ConflictPolicy::Refuse), Err(Error::Integrity(_))));
}

#[test]
fn a_later_journal_line_takes_a_claim_back() {
    // The disk stage writes a line just before placing a big file; if the
    // placing then fails, a line with a value nothing hashes to follows.
    let (tmp, out) = setup(ConflictPolicy::Refuse);
    out.start_journal(&[2; 32]).expect("journal");
    let mut w = out.begin_file(&sp("f"), 3, None).expect("begin");
    w.write(b"abc").expect("write");
    let placed = w.finish(Some(blake3::hash(b"abc").as_bytes()), false, 0, ConflictPolicy::Refuse).expect("finish");
    out.record_placed(&placed.path, placed.size, &placed.hash);
    out.record_placed(&placed.path, placed.size, &[0; 32]);
    out.flush_journal();
    let again = OutputDir::open(&out_path(&tmp, ""), ConflictPolicy::Refuse).expect("open");
    again.start_journal(&[2; 32]).expect("journal");
    match again.probe_file(&sp("f"), 3).expect("probe") {
        Probe::Complete { hash, stamp } => assert!(!again.placed_earlier(&sp("f"), 3, &hash, &stamp)),
        other => panic!("{other:?}"),
    }
}
