//! Resume of a folder whose transfer stopped after some files were already in
//! place, with the real binaries: the receiver claims exactly the files it put
//! there itself (its resume journal, PROTOCOL.md §8), and treats a file that
//! changed since as a taken name.

mod common;

use std::time::{Duration, Instant};

use common::*;

const FILES: u64 = 40;
const SIZE: u64 = 4 << 20;

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn placed(dir: &std::path::Path) -> Vec<String> {
    dir_names(dir).into_iter().filter(|n| !n.starts_with('.')).collect()
}

fn journals(dir: &std::path::Path) -> Vec<String> {
    dir_names(dir).into_iter().filter(|n| n.starts_with(".pqdrop-resume-")).collect()
}

#[test]
fn an_interrupted_folder_resumes_from_the_files_already_in_place() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    let set = src.path().join("set");
    std::fs::create_dir(&set).expect("mkdir");
    for i in 0..FILES {
        write_pseudo_random_file(&set.join(format!("f{i:02}.bin")), i, SIZE);
    }
    let out = temp_dir("pqdrop-out-");
    let got = out.path().join("set");

    // First run: stop the receiver once a few files are in place.
    let mut s1 = h.send().args(["--zstd", "off", "--code", "31-lemon-tiger"]).arg(&set).spawn("sender #1");
    let mut r1 = h.receive().args(["--yes", "-o", path_str(out.path()), "31-lemon-tiger"]).spawn("receiver #1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if got.is_dir() && placed(&got).len() >= 3 {
            let _ = r1.kill();
            break;
        }
        if let Some(f) = r1.poll() {
            panic!("receiver #1 exited ({:?}) before it could be stopped; stderr:\n{}", f.status, f.stderr);
        }
        assert!(Instant::now() < deadline, "no file was put in place within a minute");
        std::thread::sleep(Duration::from_millis(1));
    }
    s1.wait(Duration::from_secs(30)).assert_failed();
    let done_before = placed(&got);
    assert!(done_before.len() < FILES as usize, "everything arrived before the kill");
    assert_eq!(journals(out.path()).len(), 1, "the receiver keeps a journal of what it placed: {:?}", dir_names(out.path()));

    // A file the user changed since (same size) is not the receiver's any more.
    let changed = got.join(&done_before[0]);
    write_pseudo_random_file(&changed, 999, SIZE);
    let mut s2 = h.send().args(["--zstd", "off", "--code", "32-lemon-tiger"]).arg(&set).spawn("sender #2");
    let mut r2 = h.receive().args(["--yes", "-o", path_str(out.path()), "32-lemon-tiger"]).spawn("receiver #2");
    let [s2, r2] = wait_all([&mut s2, &mut r2], Duration::from_secs(60));
    r2.assert_code(exit::EXISTS);
    assert!(r2.stderr.contains(&done_before[0]) && r2.stderr.contains("already exists"), "stderr:\n{}", r2.stderr);
    s2.assert_code(exit::EXISTS);

    // Run again, keeping the changed file under its name (--rename): the
    // other placed files are claimed and skipped, the rest move.
    let mut s3 = h.send().args(["--json", "--zstd", "off", "--code", "33-lemon-tiger"]).arg(&set).spawn("sender #3");
    let mut r3 = h.receive().args(["--json", "--yes", "--rename", "-o", path_str(out.path()), "33-lemon-tiger"]).spawn("receiver #3");
    let [s3, r3] = wait_all([&mut s3, &mut r3], Duration::from_secs(60));
    s3.assert_code(exit::OK);
    r3.assert_code(exit::OK);
    for i in 0..FILES {
        let name = format!("f{i:02}.bin");
        let want = set.join(&name);
        if name == done_before[0] {
            let stem = name.trim_end_matches(".bin");
            assert_same_file(&want, &got.join(format!("{stem} (1).bin")));
        } else {
            assert_same_file(&want, &got.join(&name));
        }
    }
    let res = r3.json_result();
    let resumed = res["bytes_resumed"].as_u64().unwrap_or_else(|| panic!("bytes_resumed: {res}"));
    let others = (done_before.len() as u64 - 1) * SIZE;
    assert!(resumed >= others, "the {} files placed earlier were not all claimed ({resumed} bytes): {res}", done_before.len() - 1);
    assert_eq!(res["renamed_count"], 1, "{res}");
    assert!(journals(out.path()).is_empty(), "the journal stays after the transfer completed: {:?}", dir_names(out.path()));
    assert!(partial_files(out.path()).is_empty(), "{:?}", partial_files(out.path()));
}
