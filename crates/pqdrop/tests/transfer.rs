//! End-to-end transfers through the real `pqdrop` binary, over a relay spawned
//! on 127.0.0.1 and over LAN discovery on 127.0.0.1 (never another address).
//!
//! Each test has its own relay or its own LAN discovery port and temp
//! folders, so they run in parallel. Every child is killed when its handle
//! drops and every wait has a deadline (see `common`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Upper bound for one big transfer (debug build, two cores, parallel tests).
const BIG: Duration = Duration::from_secs(100);
/// Upper bound for a small transfer.
const SMALL: Duration = Duration::from_secs(40);

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

// ---------------------------------------------------------------------------
// 1. One 64 MiB file of pseudorandom data.

fn one_big_file(net: Net) {
    const SIZE: u64 = 64 * MIB as u64;
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("random.bin");
    write_pseudo_random_file(&file, 0x5eed_0001, SIZE);
    let code = "12-ocean-tiger";

    let t = Instant::now();
    let mut s = h.send().args(["--json", "--code", code]).arg(&file).spawn("sender");
    let mut r = h.receive().args(["--yes", "--json", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], BIG);
    eprintln!("{net:?}: 64 MiB in {:?}", t.elapsed());
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);

    assert_same_file(&file, &out.path().join("random.bin"));
    assert_eq!(dir_names(out.path()), ["random.bin"], "nothing else (no partial file) may be left");

    let res = r.json_result();
    assert_eq!(res["files"], 1, "{res}");
    assert_eq!(res["dirs"], 0, "{res}");
    assert_eq!(res["bytes_resumed"], 0, "{res}");
    // Random data does not compress, so `--zstd auto` sends it raw.
    assert_eq!(res["bytes_received"], SIZE, "{res}");

    let lines = s.json_lines();
    assert_eq!(lines[0]["event"], "code", "the sender's first JSON line must be the code: {}", lines[0]);
    assert_eq!(lines[0]["code"], code);
    let sres = s.json_result();
    assert_eq!(sres["files"], 1, "{sres}");
    assert_eq!(sres["bytes_sent"], SIZE, "{sres}");
    assert_eq!(sres["bytes_skipped"], 0, "{sres}");
}

#[test]
fn relay_one_64_mib_file() {
    one_big_file(Net::Relay);
}

#[test]
fn lan_one_64_mib_file() {
    one_big_file(Net::Lan);
}

// ---------------------------------------------------------------------------
// 2. A folder tree: empty folders, nested files, modes, mtimes.

/// Builds `root/tree` and returns its path. File mtimes are set to distinct
/// times in the past so that "preserved" cannot be confused with "now";
/// folder mtimes too, last (writing inside a folder changes its mtime).
fn make_tree(root: &Path) -> std::path::PathBuf {
    let top = root.join("tree");
    for d in ["empty", "sub/deeper/also-empty", "sub/deeper/nested"] {
        std::fs::create_dir_all(top.join(d)).expect("mkdir");
    }
    let files: [(&str, usize, u32); 7] = [
        ("readme.txt", 1234, 0o644),
        ("run.sh", 300, 0o755),
        ("zero-length", 0, 0o644),
        ("sub/data.bin", 3 * MIB + 17, 0o644),
        ("sub/tool", 700_001, 0o755),
        ("sub/deeper/nested/leaf.txt", 5, 0o644),
        ("sub/deeper/nested/leaf-exec", 65_536, 0o755),
    ];
    for (i, (name, len, mode)) in files.iter().enumerate() {
        let p = top.join(name);
        std::fs::write(&p, pseudo_random(1000 + i as u64, *len)).expect("write");
        set_mode(&p, *mode);
        set_mtime(&p, 1_500_000_000 + 86_413 * i as u64);
    }
    // Deepest folders first, so setting a parent's time comes after its children.
    let dirs = ["sub/deeper/nested", "sub/deeper/also-empty", "sub/deeper", "sub", "empty", ""];
    for (i, d) in dirs.iter().enumerate() {
        set_mtime(&top.join(d), 1_400_000_000 + 7_919 * i as u64);
    }
    top
}

/// Sends the tree and checks every byte, mode, file mtime and empty folder.
fn folder_tree(net: Net) {
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let top = make_tree(src.path());
    let code = "3-folder-tree";

    let mut s = h.send().args(["--code", code]).arg(&top).spawn("sender");
    let mut r = h.receive().args(["--yes", "--json", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);

    let want = tree(src.path());
    let got = tree(out.path());
    let names = |t: &std::collections::BTreeMap<String, Node>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "the received tree has different entries");
    for (rel, w) in &want {
        let g = &got[rel];
        match (w, g) {
            (Node::Dir { .. }, Node::Dir { .. }) => {}
            (Node::File { len, mode, mtime }, Node::File { len: gl, mode: gm, mtime: gt }) => {
                assert_eq!(gl, len, "{rel}: length");
                assert_eq!(gm & 0o111, mode & 0o111, "{rel}: executable bits ({gm:o} vs {mode:o})");
                // Received modes follow the receiver's umask (as with cp).
                let want = (if mode & 0o111 != 0 { 0o777 } else { 0o666 }) & !common::umask();
                assert_eq!(*gm, want, "{rel}: mode ({gm:o} vs {want:o})");
                assert_eq!(gt, mtime, "{rel}: mtime (to the second)");
                assert_same_file(&src.path().join(rel), &out.path().join(rel));
            }
            _ => panic!("{rel}: kind differs: sent {w:?}, received {g:?}"),
        }
    }
    assert!(dir_names(&out.path().join("tree/empty")).is_empty());
    assert!(dir_names(&out.path().join("tree/sub/deeper/also-empty")).is_empty());

    let res = r.json_result();
    assert_eq!(res["files"], 7, "{res}");
    assert_eq!(res["dirs"], 6, "{res}");
}

#[test]
fn relay_folder_tree() {
    folder_tree(Net::Relay);
}

#[test]
fn lan_folder_tree() {
    folder_tree(Net::Lan);
}

/// Folder mtimes: each folder entry carries its mtime, and the sink has
/// `OutputDir::set_dir_times` for it, but see the ignore reason.
#[test]
fn lan_folder_mtimes_preserved() {
    let h = Harness::new(Net::Lan);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let top = make_tree(src.path());
    let code = "4-folder-times";
    let mut s = h.send().args(["--code", code]).arg(&top).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let (want, got) = (tree(src.path()), tree(out.path()));
    for (rel, w) in &want {
        if let (Node::Dir { mtime }, Some(Node::Dir { mtime: gt })) = (w, got.get(rel)) {
            assert_eq!(gt, mtime, "folder {rel}: mtime (to the second)");
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Text, and stdin of unknown size.

fn text(net: Net) {
    let h = Harness::new(net);
    let out = temp_dir("pqdrop-out-");
    let msg = "hello … wörld ✓ — tabs\tand\nnew lines\n  trailing spaces  ";
    let code = "5-text-only";
    let mut s = h.send().args(["--code", code, "--text", msg]).spawn("sender");
    // The code comes from $PQDROP_CODE here, the other way the CLI takes it.
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path())]).env("PQDROP_CODE", code).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(r.stdout_text(), msg, "the receiver must print exactly the text");
    assert!(dir_names(out.path()).is_empty(), "a text transfer writes no file");
}

#[test]
fn relay_text() {
    text(Net::Relay);
}

#[test]
fn lan_text() {
    text(Net::Lan);
}

fn stdin_stream(net: Net) {
    let h = Harness::new(net);
    let out = temp_dir("pqdrop-out-");
    let data = pseudo_random(0x57d1, 3 * MIB + 4321);
    let code = "6-pipe-stream";
    let mut s = h.send().args(["--code", code, "-"]).stdin_bytes(data.clone()).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(r.stdout.len(), data.len(), "stdout length");
    assert!(r.stdout == data, "the receiver's stdout differs from the sender's stdin");
    assert!(dir_names(out.path()).is_empty(), "a stream transfer writes no file");
}

#[test]
fn relay_stdin_stream() {
    stdin_stream(Net::Relay);
}

#[test]
fn lan_stdin_stream() {
    stdin_stream(Net::Lan);
}

/// With `--json`, a stream's bytes still own stdout; the JSON events go to stderr.
#[test]
fn lan_stdin_stream_with_json_keeps_stdout_clean() {
    let h = Harness::new(Net::Lan);
    let out = temp_dir("pqdrop-out-");
    let data = pseudo_random(0x57d2, MIB + 17);
    let code = "16-pipe-stream";
    let mut s = h.send().args(["--code", code, "-"]).stdin_bytes(data.clone()).spawn("sender");
    let mut r = h.receive().args(["--yes", "--json", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert!(r.stdout == data, "the receiver's stdout must be exactly the stream");
    assert!(r.stderr.contains(r#""event":"result""#), "the result event goes to stderr:\n{}", r.stderr);
}

// ---------------------------------------------------------------------------
// 4. Wrong code.

fn wrong_code(net: Net) {
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("secret.txt");
    std::fs::write(&file, b"not for the wrong person").expect("write");
    let mut s = h.send().args(["--code", "7-ocean-tiger"]).arg(&file).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path()), "7-ocean-tigers"]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    r.assert_code(exit::WRONG_CODE);
    s.assert_code(exit::WRONG_CODE);
    for f in [&s, &r] {
        assert!(f.stderr.contains("code is wrong"), "{} stderr must say the code is wrong:\n{}", f.label, f.stderr);
    }
    assert!(dir_names(out.path()).is_empty(), "nothing may be written with a wrong code: {:?}", dir_names(out.path()));
}

#[test]
fn relay_wrong_code() {
    wrong_code(Net::Relay);
}

#[test]
fn lan_wrong_code() {
    wrong_code(Net::Lan);
}

// ---------------------------------------------------------------------------
// 5. Resume after the receiver is killed (SIGKILL) halfway through.

fn resume_after_kill(net: Net) {
    const SIZE: u64 = 256 * MIB as u64;
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("big.bin");
    write_pseudo_random_file(&file, 0xb16_f11e, SIZE);
    let partial = out.path().join(".big.bin.pqdrop-partial");

    // First run: kill the receiver once the partial file passes 40 %.
    let code1 = "21-first-try";
    let mut s1 = h.send().args(["--zstd", "off", "--code", code1]).arg(&file).spawn("sender #1");
    let mut r1 = h.receive().args(["--yes", "-o", path_str(out.path()), code1]).spawn("receiver #1");
    let deadline = Instant::now() + BIG;
    let at_kill = loop {
        let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if len >= SIZE * 2 / 5 {
            r1.kill();
            break len;
        }
        if let Some(f) = r1.poll() {
            panic!("receiver #1 exited ({:?}) before it could be killed at 40 % (partial {len} bytes); stderr:\n{}", f.status, f.stderr);
        }
        assert!(Instant::now() < deadline, "the partial file did not reach 40 % within {BIG:?} (at {len} bytes)");
        std::thread::sleep(Duration::from_millis(2));
    };
    let after_kill = std::fs::metadata(&partial).expect("the partial file stays after SIGKILL").len();
    eprintln!("{net:?}: killed the receiver with the partial at {at_kill} bytes ({}%), {after_kill} bytes after", at_kill * 100 / SIZE);
    assert!(at_kill < SIZE && after_kill < SIZE, "the partial must be incomplete at kill time");
    assert!(!out.path().join("big.bin").exists(), "the final file must not exist after a kill");
    let s1 = s1.wait(SMALL);
    s1.assert_failed();
    eprintln!("{net:?}: sender #1 exited with {:?}", s1.status);

    // Second run, new code, same folder: resumes from the partial.
    let code2 = "22-second-try";
    let mut s2 = h.send().args(["--json", "--zstd", "off", "--code", code2]).arg(&file).spawn("sender #2");
    let mut r2 = h.receive().args(["--yes", "--json", "-o", path_str(out.path()), code2]).spawn("receiver #2");
    let [s2, r2] = wait_all([&mut s2, &mut r2], BIG);
    s2.assert_code(exit::OK);
    r2.assert_code(exit::OK);
    assert_same_file(&file, &out.path().join("big.bin"));
    assert!(partial_files(out.path()).is_empty(), "a .pqdrop-partial file remains: {:?}", partial_files(out.path()));
    assert_eq!(dir_names(out.path()), ["big.bin"]);

    let res = r2.json_result();
    let resumed = res["bytes_resumed"].as_u64().unwrap_or_else(|| panic!("bytes_resumed missing: {res}"));
    let received = res["bytes_received"].as_u64().unwrap_or_else(|| panic!("bytes_received missing: {res}"));
    assert!(resumed > 0, "nothing was resumed: {res}");
    assert!(resumed * 10 >= at_kill * 9, "resumed {resumed} bytes, less than 90 % of the {at_kill} bytes present at kill time: {res}");
    assert!(resumed <= after_kill, "resumed {resumed} bytes, more than the partial held ({after_kill}): {res}");
    assert_eq!(received + resumed, SIZE, "bytes_received + bytes_resumed must be the file size (zstd off): {res}");
    let sres = s2.json_result();
    assert_eq!(sres["bytes_skipped"], resumed, "the sender's skipped bytes: {sres}");
    assert_eq!(sres["bytes_sent"], received, "the sender's sent bytes: {sres}");
}

#[test]
fn relay_resume_after_receiver_killed() {
    resume_after_kill(Net::Relay);
}

#[test]
fn lan_resume_after_receiver_killed() {
    resume_after_kill(Net::Lan);
}

/// Which side [`kill_midway`] kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    Sender,
    Receiver,
}

/// Kills one side (SIGKILL) once 8 MiB of a 64 MiB file have arrived and
/// checks that the survivor exits with "the other side disconnected" (6),
/// saying so once, and that the partial file stays for a resume.
fn kill_midway(net: Net, victim: Victim) {
    const SIZE: u64 = 64 * MIB as u64;
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("mid.bin");
    write_pseudo_random_file(&file, 0x3141, SIZE);
    let partial = out.path().join(".mid.bin.pqdrop-partial");
    let code = "23-cut-short";
    let mut s = h.send().args(["--zstd", "off", "--code", code]).arg(&file).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path()), code]).spawn("receiver");
    let deadline = Instant::now() + BIG;
    loop {
        let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if len >= 8 * MIB as u64 {
            break;
        }
        for p in [&mut s, &mut r] {
            if let Some(f) = p.poll() {
                panic!("{} exited ({:?}) before the kill; stderr:\n{}", f.label, f.status, f.stderr);
            }
        }
        assert!(Instant::now() < deadline, "the partial file did not reach 8 MiB within {BIG:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (killed, survivor) = match victim {
        Victim::Sender => (&mut s, &mut r),
        Victim::Receiver => (&mut r, &mut s),
    };
    killed.kill();
    let f = survivor.wait(SMALL);
    f.assert_code(exit::PEER_GONE);
    assert_eq!(f.stderr.matches("disconnected").count(), 1, "{} must say once that the other side disconnected:\n{}", f.label, f.stderr);
    assert!(partial.exists(), "the partial file must stay for a resume");
    assert!(!out.path().join("mid.bin").exists(), "no final file after an interrupted transfer");
}

#[test]
fn lan_receiver_exits_peer_gone_when_sender_killed() {
    kill_midway(Net::Lan, Victim::Sender);
}

#[test]
fn lan_sender_exits_peer_gone_when_receiver_killed() {
    kill_midway(Net::Lan, Victim::Receiver);
}

// ---------------------------------------------------------------------------
// 6. Refusing: no --yes and no terminal.

fn refuse_without_terminal(net: Net) {
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out_parent = temp_dir("pqdrop-out-");
    let out = out_parent.path().join("not-yet");
    let file = src.path().join("offer.txt");
    std::fs::write(&file, b"do you want this?").expect("write");
    let code = "8-ask-first";
    let mut s = h.send().args(["--code", code]).arg(&file).spawn("sender");
    let mut r = h.receive().args(["-o", path_str(&out), code]).without_terminal().spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    r.assert_code(exit::REFUSED);
    s.assert_code(exit::REFUSED);
    assert!(s.stderr.contains("declined"), "the sender must say the receiver declined:\n{}", s.stderr);
    assert!(!out.exists(), "a refused transfer must not even create the output folder");
    assert!(dir_names(out_parent.path()).is_empty());
}

#[test]
fn relay_refuse_without_terminal() {
    refuse_without_terminal(Net::Relay);
}

#[test]
fn lan_refuse_without_terminal() {
    refuse_without_terminal(Net::Lan);
}

// ---------------------------------------------------------------------------
// 7. An existing, different file at the target.

#[test]
fn relay_existing_file_refuse_rename_overwrite() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    // report.txt: the existing file has another size; same.bin: the same size
    // but other bytes (the resume probe sees a "complete" file the sender
    // must reject by hash).
    let new_report = pseudo_random(71, 50_000);
    let new_same = pseudo_random(72, 20_000);
    let old_report = b"the old report, keep me".to_vec();
    let old_same = pseudo_random(73, 20_000);
    assert_ne!(new_same, old_same, "test data: same.bin must differ");
    let (sr, ss) = (src.path().join("report.txt"), src.path().join("same.bin"));
    std::fs::write(&sr, &new_report).expect("write");
    std::fs::write(&ss, &new_same).expect("write");
    let (or, os) = (out.path().join("report.txt"), out.path().join("same.bin"));
    let json = std::cell::Cell::new(None::<&str>);
    std::fs::write(&or, &old_report).expect("write");
    std::fs::write(&os, &old_same).expect("write");

    let run = |code: &str, policy: Option<&str>| -> (Finished, Finished) {
        let mut s = h.send().args(["--code", code]).arg(&sr).arg(&ss).spawn("sender");
        let mut r = h.receive().args(["--yes", "-o", path_str(out.path())]).args(policy).args(json.get()).arg(code).spawn("receiver");
        let [s, r] = wait_all([&mut s, &mut r], SMALL);
        (s, r)
    };

    // Neither flag: exit 9, nothing touched.
    let (s, r) = run("9-no-flag", None);
    r.assert_code(exit::EXISTS);
    assert!(r.stderr.contains("already exists"), "stderr:\n{}", r.stderr);
    // The sender reports the receiver's reason, with the same exit code, and
    // never as a protocol violation.
    s.assert_code(exit::EXISTS);
    assert!(s.stderr.contains("the receiver stopped") && s.stderr.contains("already exists"), "stderr:\n{}", s.stderr);
    assert!(!s.stderr.contains("protocol violation"), "stderr:\n{}", s.stderr);
    assert_eq!(std::fs::read(&or).expect("read"), old_report, "the old report must be unchanged");
    assert_eq!(std::fs::read(&os).expect("read"), old_same, "the old same.bin must be unchanged");
    let names = dir_names(out.path());
    assert!(names.iter().all(|n| n == "report.txt" || n == "same.bin" || n.ends_with(".pqdrop-partial")), "unexpected files: {names:?}");

    // --skip-existing: both stay as they are and nothing of them is sent.
    let (s, r) = run("12-skip-them", Some("--skip-existing"));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(std::fs::read(&or).expect("read"), old_report, "report.txt is kept");
    assert_eq!(std::fs::read(&os).expect("read"), old_same, "same.bin is kept");
    assert_eq!(dir_names(out.path()).iter().filter(|n| !n.starts_with('.')).count(), 2, "{:?}", dir_names(out.path()));
    assert!(r.stderr.contains("Kept 2 files that already existed here"), "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("  report.txt") && r.stderr.contains("  same.bin"), "stderr:\n{}", r.stderr);

    // --rename: both kept, new ones as `name (1).ext`.
    let (s, r) = run("10-rename-it", Some("--rename"));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(std::fs::read(&or).expect("read"), old_report);
    assert_eq!(std::fs::read(&os).expect("read"), old_same);
    assert_eq!(std::fs::read(out.path().join("report (1).txt")).expect("report (1).txt"), new_report);
    assert_eq!(std::fs::read(out.path().join("same (1).bin")).expect("same (1).bin"), new_same);
    assert!(
        r.stderr.contains("Saved 2 files under a new name") && r.stderr.contains("report.txt -> report (1).txt"),
        "stderr:\n{}",
        r.stderr
    );

    // --json reports the names --rename chose.
    json.set(Some("--json"));
    let (s, r) = run("13-rename-json", Some("--rename"));
    json.set(None);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let result: serde_json::Value = String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .expect("a result event");
    assert_eq!(result["renamed_count"], 2, "{result}");
    assert_eq!(result["renamed"][0], serde_json::json!({"offered": "report.txt", "saved_as": "report (2).txt"}), "{result}");
    assert_eq!(result["renamed"][1], serde_json::json!({"offered": "same.bin", "saved_as": "same (2).bin"}), "{result}");
    std::fs::remove_file(out.path().join("report (2).txt")).expect("rm");
    std::fs::remove_file(out.path().join("same (2).bin")).expect("rm");

    // --overwrite: replaced in place; the renamed copies stay.
    let (s, r) = run("11-overwrite-it", Some("--overwrite"));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(std::fs::read(&or).expect("read"), new_report, "report.txt must be replaced");
    assert_eq!(std::fs::read(&os).expect("read"), new_same, "same.bin must be replaced");
    assert_eq!(dir_names(out.path()), ["report (1).txt", "report.txt", "same (1).bin", "same.bin"]);
}

/// 3,000 small files in 30 folders, both sides under `ulimit -n 64`: the
/// receiver holds at most a few files open whatever a record carries.
fn many_files_under_a_low_open_file_limit(net: Net) {
    let h = Harness::new(net);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let root = src.path().join("many");
    for d in 0..30 {
        let dir = root.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), format!("{d}/{f}").repeat(f % 7 + 1)).expect("write");
        }
    }
    let code = "13-many-files";
    let mut s = h.send().args(["--code", code]).arg(&root).nofile(64).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path()), code]).nofile(64).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], BIG);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    for d in 0..30 {
        for f in 0..100 {
            let rel = format!("many/d{d:02}/f{f:03}.txt");
            assert_eq!(std::fs::read(out.path().join(&rel)).expect(&rel), format!("{d}/{f}").repeat(f % 7 + 1).into_bytes(), "{rel}");
        }
    }
}

#[test]
fn relay_many_files_under_ulimit_n_64() {
    many_files_under_a_low_open_file_limit(Net::Relay);
}

#[test]
fn lan_many_files_under_ulimit_n_64() {
    many_files_under_a_low_open_file_limit(Net::Lan);
}

/// A local process swaps a folder being sent for a symlink out of the tree
/// after the sender walked it: the sender refuses, and nothing from outside
/// the tree reaches the receiver.
#[cfg(unix)]
#[test]
fn lan_a_folder_swapped_for_a_symlink_during_the_send_is_not_followed() {
    let h = Harness::new(Net::Lan);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let tree = src.path().join("tree");
    let outside = src.path().join("outside");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(tree.join("sub/f.txt"), b"inside").expect("write");
    std::fs::write(outside.join("f.txt"), b"SECRET").expect("write");
    let code = "14-swap-guard";
    let mut s = h.send().args(["--code", code]).arg(&tree).spawn("sender");
    s.wait_for_stderr_line("Waiting for the receiver", SMALL);
    std::fs::rename(tree.join("sub"), src.path().join("sub.moved")).expect("move the folder away");
    std::os::unix::fs::symlink(&outside, tree.join("sub")).expect("symlink in its place");
    let mut r = h.receive().args(["--yes", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_failed();
    assert!(s.stderr.contains("replaced while sending"), "sender stderr:\n{}", s.stderr);
    assert_ne!(r.code(), Some(exit::OK), "the receiver must not report success");
    let got = std::fs::read(out.path().join("tree/sub/f.txt")).unwrap_or_default();
    assert!(!got.starts_with(b"SECRET"), "a file from outside the tree was sent");
}

// ---------------------------------------------------------------------------
// 8. Help texts.

#[test]
fn help_texts_have_examples() {
    let h = Harness::new(Net::Lan);
    for sub in ["send", "receive", "relay"] {
        let f = h.command(sub).arg("--help").spawn(&format!("{sub} --help")).wait(SMALL);
        f.assert_code(exit::OK);
        let text = f.stdout_text();
        assert!(text.contains("Examples"), "`pqdrop {sub} --help` has no examples:\n{text}");
    }
}

// ---------------------------------------------------------------------------
// Found while writing the tests above.

/// The engine walks the paths "before the handshake so that a bad path fails
/// fast, without a peer" (send.rs), but the CLI only calls the engine after a
/// receiver has connected.
#[test]
fn send_missing_path_fails_before_waiting() {
    let h = Harness::new(Net::Lan);
    let src = temp_dir("pqdrop-src-");
    let missing = src.path().join("does-not-exist.txt");
    let f = h.send().args(["--code", "24-no-such-file"]).arg(&missing).spawn("sender").wait(Duration::from_secs(10));
    f.assert_code(exit::IO);
    assert!(f.stderr.contains("does-not-exist.txt"), "stderr:\n{}", f.stderr);
}

/// `main` prints errors with `{:#}` (the whole source chain), and
/// `pqdrop_engine::Error::Io` both shows its source in its message and returns it as
/// `source()`, so every I/O error message appears twice.
#[test]
fn io_error_message_is_printed_once() {
    let h = Harness::new(Net::Lan);
    // Fails in the config step, before any socket is opened.
    let f = h.send().args(["--code", "25-bad-port", "--text", "hi"]).env("PQDROP_LAN_PORT", "not-a-port").spawn("sender").wait(SMALL);
    f.assert_failed();
    let msg = "is not a UDP port number";
    assert_eq!(f.stderr.matches(msg).count(), 1, "the error must be printed once:\n{}", f.stderr);
}

/// A partial file that already holds every byte (the connection dropped just
/// before the file's end) is verified and put in place, not refused.
#[test]
fn lan_resume_of_a_full_length_partial() {
    let h = Harness::new(Net::Lan);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let data = pseudo_random(0xf011, 300_000);
    let file = src.path().join("whole.bin");
    std::fs::write(&file, &data).expect("write");
    std::fs::write(out.path().join(".whole.bin.pqdrop-partial"), &data).expect("plant partial");
    let code = "17-full-partial";
    let mut s = h.send().args(["--code", code]).arg(&file).spawn("sender");
    let mut r = h.receive().args(["--yes", "--json", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(std::fs::read(out.path().join("whole.bin")).expect("read"), data);
    assert_eq!(dir_names(out.path()), ["whole.bin"], "the partial must be gone");
    let res = r.json_result();
    assert_eq!(res["bytes_resumed"], data.len() as u64, "{res}");
    assert_eq!(res["bytes_received"], 0, "{res}");
}

/// With --rename, a renamed target never takes a name another entry of the
/// same transfer uses: `a (1).txt` from the sender stays itself, and the
/// clashing `a.txt` becomes `a (2).txt`.
#[test]
fn lan_rename_never_shares_a_name_with_another_entry() {
    let h = Harness::new(Net::Lan);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let top = src.path().join("top");
    std::fs::create_dir(&top).expect("mkdir");
    std::fs::write(top.join("a (1).txt"), b"sender's a (1)").expect("write");
    std::fs::write(top.join("a.txt"), b"sender's a").expect("write");
    std::fs::create_dir(out.path().join("top")).expect("mkdir");
    std::fs::write(out.path().join("top/a.txt"), b"receiver's own a").expect("write");
    let code = "18-rename-clash";
    let mut s = h.send().args(["--code", code]).arg(&top).spawn("sender");
    let mut r = h.receive().args(["--yes", "--rename", "-o", path_str(out.path()), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], SMALL);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let read = |n: &str| std::fs::read(out.path().join("top").join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(read("a.txt"), b"receiver's own a");
    assert_eq!(read("a (1).txt"), b"sender's a (1)");
    assert_eq!(read("a (2).txt"), b"sender's a");
    assert_eq!(dir_names(&out.path().join("top")), ["a (1).txt", "a (2).txt", "a.txt"]);
}
