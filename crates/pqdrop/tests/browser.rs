//! End-to-end tests of the browser page (`web/`) against the real `pqdrop`
//! binary, a real `pqdrop relay --web` and a real headless Chromium, driven by
//! `web/test/e2e/driver.mjs` (Playwright).
//!
//! What they prove:
//! 1. CLI → page, File System Access path (pickers answered with OPFS handles):
//!    a 64 MiB file and a folder tree arrive byte for byte (SHA-256 of every
//!    file, computed in the page, and the exact set of folders).
//! 2. CLI → page, service-worker download path: the file downloads as itself,
//!    the folder as a zip that unpacks to the same tree.
//! 3. page → CLI: the same file and folder reach `pqdrop receive` intact.
//! 4. A wrong code typed in the page: the CLI fails with its wrong-code exit,
//!    the page shows `wrong-code`, nothing is saved.
//! 5. A hostile sender (the real protocol, `tests/hostile_peer`) against the
//!    page: hostile names are refused, a bad hash and a chunk past the size
//!    fail, and nothing is put in place under a final name.
//! 6. Times to the offer and to the first byte are printed (not asserted).
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`, or
//! `$PQDROP_CHROMIUM`) and `web/node_modules` (`npm ci --prefix web`); with
//! `PQDROP_SKIP_BROWSER=1` every test returns at once. The tests run one at a
//! time (each starts a browser); screenshots of the main states land in
//! `target/tmp/browser-e2e/TEST/`. Loopback only.
#![allow(clippy::useless_vec)] // the args! lists are built as Vecs: some grow

mod common;
#[path = "browser/mod.rs"]
mod harness;
mod hostile_peer;

use std::path::Path;
use std::sync::MutexGuard;
use std::time::Duration;

use serde_json::Value;

use common::{assert_same_file, exit, temp_dir, write_pseudo_random_file, Harness, Net};
use harness::{
    assert_done, assert_error, env, make_tree, marked_processes, serial, shots_dir, timings_line, wait_cli_event, Driver, Env, Listing,
    WebRelay,
};
use hostile_peer::{dir, file, hash, Expect, Peer};
use pqdrop_proto::transfer::Entry;

/// The big file's size.
const BIG: u64 = 64 << 20;
/// The driver's own bound on one run.
const RUN: Duration = Duration::from_secs(150);
/// How long a test waits for the driver (a little more than [`RUN`]).
const WAIT: Duration = Duration::from_secs(170);
/// How long a test waits for a CLI child once the page is done.
const CLI_WAIT: Duration = Duration::from_secs(60);

/// One test's world: the lock, the tools, an isolated CLI environment and a
/// relay serving the page.
struct Setup {
    env: Env,
    h: Harness,
    relay: WebRelay,
    _serial: MutexGuard<'static, ()>,
}

fn setup() -> Option<Setup> {
    let lock = serial();
    let env = env()?;
    // LAN mode here only means "no relay of the harness's own": every command
    // below names this relay with --relay.
    let h = Harness::new(Net::Lan);
    let relay = WebRelay::start(&h, &env);
    Some(Setup { env, h, relay, _serial: lock })
}

impl Setup {
    /// `pqdrop send --relay R --json [extra] PATHS`.
    fn send(&self, extra: &[&str], paths: &[&Path]) -> common::Proc {
        let mut s = self.h.command("send").args(["--relay", &self.relay.addr.to_string(), "--json"]).args(extra);
        for p in paths {
            s = s.arg(p);
        }
        s.spawn("pqdrop send")
    }

    /// The page URL with `#code`.
    fn link(&self, code: &str) -> String {
        format!("{}#{code}", self.relay.page)
    }
}

fn os(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}

// ---------------------------------------------------------------------------
// 0. The harness itself.

#[test]
fn page_loads_in_a_secure_context_and_the_browser_is_cleaned_up() {
    let Some(s) = setup() else { return };
    let shots = shots_dir("probe");
    let mut d = Driver::spawn(&s.env, "page (probe)", "probe", &args!["--url", s.relay.page.as_str(), "--screenshots", &shots], RUN);
    let r = d.finish(WAIT);
    assert_eq!(r["state"], "home", "the page without a code shows home: {r:#}");
    let p = &r["probe"];
    for k in ["secureContext", "subtle", "serviceWorker", "opfs"] {
        assert_eq!(p[k], true, "the page lacks {k}: {r:#}");
    }
    assert_eq!(r["pageErrors"].as_array().map(Vec::len), Some(0), "uncaught exceptions: {r:#}");
    let marker = d.marker().to_string();
    drop(d);
    assert!(marked_processes(&marker).is_empty(), "Chromium survived its driver");

    // A run that never gets an offer (nobody sends on this nameplate) ends by
    // its own bound, reports what the page showed, and leaves no browser.
    let mut d = Driver::spawn(
        &s.env,
        "page (bounded)",
        "receive",
        &args!["--url", s.link("999-nobody-here"), "--save", "fsa"],
        Duration::from_secs(8),
    );
    let r = d.finish_any(Duration::from_secs(30));
    let err = r["driverError"].as_str().unwrap_or("");
    assert!(err.contains("did not reach offer"), "a bounded wait must fail clearly, got {r:#}");
    let marker = d.marker().to_string();
    drop(d);
    assert!(marked_processes(&marker).is_empty(), "Chromium survived a timed-out run");

    // A driver killed in the middle (its Drop guard) leaves no browser either.
    let mut d = Driver::spawn(&s.env, "page (killed)", "receive", &args!["--url", s.link("998-nobody-here"), "--save", "fsa"], RUN);
    let marker = d.marker().to_string();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while marked_processes(&marker).is_empty() {
        assert!(std::time::Instant::now() < until && !d.has_exited(), "Chromium did not start within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(d);
    assert!(marked_processes(&marker).is_empty(), "Chromium survived a killed driver");
}

// ---------------------------------------------------------------------------
// 1 and 2. CLI → page.

/// `pqdrop send --web` of `paths`; the page opens the printed link and saves
/// by `save`. Returns the page's result (the sender succeeded).
fn cli_to_page(s: &Setup, test: &str, save: &str, paths: &[&Path], expect_offer: &[&str], dl: Option<&Path>) -> Value {
    let mut sender = s.send(&["--web"], paths);
    let code = wait_cli_event(&mut sender, "code", Duration::from_secs(30));
    let url = code["url"].as_str().unwrap_or_else(|| panic!("`send --web --json` gave no url: {code}")).to_string();
    assert!(url.starts_with(&s.relay.page) && url.contains('#'), "the link {url:?} must be the page {}#CODE", s.relay.page);
    let mut a = args!["--url", url, "--save", save, "--screenshots", shots_dir(test)];
    for e in expect_offer {
        a.extend(args!["--expect-offer", *e]);
    }
    if let Some(d) = dl {
        a.extend(args!["--download-dir", d]);
    }
    let mut d = Driver::spawn(&s.env, "page (receiver)", "receive", &a, RUN);
    let r = d.finish(WAIT);
    let f = sender.wait(CLI_WAIT);
    assert_done(&r, test);
    f.assert_code(exit::OK);
    assert_eq!(r["savePath"], save, "the page chose another save path: {r:#}");
    // The relay is on the page's own origin: its bytes come as a streamed
    // HTTP response (PROTOCOL.md §9.8), not as WebSocket messages.
    assert_eq!(r["downstream"], "http", "the page did not use the HTTP downstream: {r:#}");
    if !expect_offer.is_empty() {
        assert_eq!(r["offer"]["check"]["ok"], true, "the offer does not show {expect_offer:?}: {:#}", r["offer"]);
    }
    r
}

#[test]
fn cli_to_page_fsa_big_file() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let big = src.path().join("big.bin");
    write_pseudo_random_file(&big, 1, BIG);
    let r = cli_to_page(&s, "cli_to_page_fsa_big_file", "fsa", &[&big], &["big.bin"], None);
    Listing::of_driver(&r["saved"]).assert_eq(&Listing::of_disk(src.path(), ""), "the file saved in OPFS");
    println!("browser timings, CLI → page (File System Access), 64 MiB: {}", timings_line(&r, BIG));
}

#[test]
fn cli_to_page_fsa_folder_tree() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let tree = make_tree(src.path());
    let r = cli_to_page(&s, "cli_to_page_fsa_folder_tree", "fsa", &[&tree], &["tree"], None);
    Listing::of_driver(&r["saved"]).assert_eq(&Listing::of_disk(&tree, "tree"), "the folder saved in OPFS");
    println!("browser timings, CLI → page (File System Access), folder: {}", timings_line(&r, 0));
}

/// The single download of a run, checked and returned as its path.
fn one_download(r: &Value) -> (String, std::path::PathBuf) {
    let dls = r["downloads"].as_array().cloned().unwrap_or_default();
    assert_eq!(dls.len(), 1, "expected exactly one download: {:#}", r["downloads"]);
    let d = &dls[0];
    assert!(d["failure"].is_null(), "the download failed: {d:#}");
    (d["suggested"].as_str().unwrap_or("").to_string(), std::path::PathBuf::from(d["path"].as_str().unwrap_or("")))
}

#[test]
fn cli_to_page_download_big_file() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let dl = temp_dir("pqdrop-dl-");
    let big = src.path().join("big.bin");
    write_pseudo_random_file(&big, 2, BIG);
    let r = cli_to_page(&s, "cli_to_page_download_big_file", "sw-download", &[&big], &["big.bin"], Some(dl.path()));
    let (name, path) = one_download(&r);
    assert_eq!(name, "big.bin", "a single file downloads under its own name");
    assert_same_file(&big, &path);
    println!("browser timings, CLI → page (service-worker download), 64 MiB: {}", timings_line(&r, BIG));
}

#[test]
fn cli_to_page_download_folder_as_zip() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let dl = temp_dir("pqdrop-dl-");
    let tree = make_tree(src.path());
    let r = cli_to_page(&s, "cli_to_page_download_folder_as_zip", "sw-download", &[&tree], &["tree"], Some(dl.path()));
    let (name, zip) = one_download(&r);
    assert!(name.ends_with(".zip"), "a folder downloads as a zip, got {name:?}");
    let unpacked = temp_dir("pqdrop-unzip-");
    let out = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(unpacked.path())
        .output()
        .expect("run python3 -m zipfile");
    assert!(out.status.success(), "python3 -m zipfile -e failed: {}", String::from_utf8_lossy(&out.stderr));
    let got = Listing::of_disk(unpacked.path(), "");
    // The zip holds the entries' paths as sent (`tree/…`); one without the top
    // folder is accepted too, since the download is already named after it.
    let want = if got.dirs.contains("tree") { Listing::of_disk(&tree, "tree") } else { Listing::of_disk(&tree, "") };
    got.assert_eq(&want, "the unpacked zip");
}

/// Without File System Access and without service workers, the page keeps
/// what it receives in memory and saves it as one download at the end (a
/// file under its own name). Above its limit (256 MiB) it refuses at the
/// offer, says why, and saves nothing.
#[test]
fn cli_to_page_blob_fallback_and_its_limit() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let dl = temp_dir("pqdrop-dl-");
    let small = src.path().join("small.bin");
    write_pseudo_random_file(&small, 3, 3 << 20);
    let r = cli_to_page(&s, "cli_to_page_blob_file", "blob", &[&small], &["small.bin"], Some(dl.path()));
    let (name, path) = one_download(&r);
    assert_eq!(name, "small.bin", "a single file downloads under its own name");
    assert_same_file(&small, &path);

    // 300 MiB (sparse: only offered, never sent).
    let huge = src.path().join("huge.bin");
    std::fs::File::create(&huge).and_then(|f| f.set_len(300 << 20)).expect("sparse file");
    let dl = temp_dir("pqdrop-dl-");
    let mut sender = s.send(&["--web"], &[&huge]);
    let code = wait_cli_event(&mut sender, "code", Duration::from_secs(30));
    let url = code["url"].as_str().expect("url").to_string();
    let a = args!["--url", url, "--save", "blob", "--download-dir", dl.path(), "--screenshots", shots_dir("cli_to_page_blob_too_large")];
    let mut d = Driver::spawn(&s.env, "page (receiver)", "receive", &a, RUN);
    let r = d.finish(WAIT);
    let f = sender.wait(CLI_WAIT);
    assert_error(&r, &["too-large"], "an offer over the in-memory limit");
    let msg = r["errorMessage"].as_str().unwrap_or("");
    assert!(msg.contains("256 MiB") && msg.contains("pqdrop command line"), "the message must say the limit and what to do: {msg}");
    assert!(r["offer"].is_null(), "no offer may be accepted: {:#}", r["offer"]);
    assert_eq!(r["downloads"].as_array().map(Vec::len), Some(0), "nothing may be saved: {:#}", r["downloads"]);
    f.assert_failed();
}

// ---------------------------------------------------------------------------
// 3. page → CLI.

/// The page sends what `pick` names (`--file P` / `--folder D`); `pqdrop
/// receive --yes` writes it into `out`.
fn page_to_cli(s: &Setup, test: &str, pick: Vec<std::ffi::OsString>, out: &Path) -> Value {
    let mut a = pick;
    a.extend(args!["--url", s.relay.page.as_str(), "--screenshots", shots_dir(test)]);
    let mut d = Driver::spawn(&s.env, "page (sender)", "send", &a, RUN);
    let code = d.wait_event("code", Duration::from_secs(60));
    let code = code["code"].as_str().filter(|c| !c.is_empty()).unwrap_or_else(|| panic!("the page showed no code: {code}")).to_string();
    let mut rx =
        s.h.command("receive")
            .args(["--relay", &s.relay.addr.to_string(), "--yes", "--json", "-o", &os(out), &code])
            .spawn("pqdrop receive");
    let r = d.finish(WAIT);
    let f = rx.wait(CLI_WAIT);
    f.assert_code(exit::OK);
    assert_done(&r, test);
    r
}

#[test]
fn page_to_cli_big_file() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let big = src.path().join("big.bin");
    write_pseudo_random_file(&big, 3, BIG);
    let r = page_to_cli(&s, "page_to_cli_big_file", args!["--file", &big], out.path());
    assert_same_file(&big, &out.path().join("big.bin"));
    Listing::of_disk(out.path(), "").assert_eq(&Listing::of_disk(src.path(), ""), "what pqdrop receive wrote");
    println!("browser timings, page → CLI, 64 MiB: {}", timings_line(&r, BIG));
}

#[test]
fn page_to_cli_folder_tree() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let tree = make_tree(src.path());
    page_to_cli(&s, "page_to_cli_folder_tree", args!["--folder", &tree], out.path());
    // A folder picked in a browser (`webkitdirectory`) lists only files, so
    // its empty folders cannot be sent.
    Listing::of_disk(out.path(), "").assert_eq(&Listing::of_disk(&tree, "tree").without_empty_dirs(), "what pqdrop receive wrote");
}

/// Where the browser has the directory picker (Chromium), "Choose a folder"
/// uses it, and the folder goes whole, its empty folders included. The
/// picker is stubbed with the same tree in the origin-private file system.
#[test]
fn page_to_cli_folder_tree_through_the_directory_picker() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let tree = make_tree(src.path());
    let r = page_to_cli(&s, "page_to_cli_folder_picker", args!["--folder-picker", &tree], out.path());
    let calls = r["pickerCalls"].as_array().cloned().unwrap_or_default();
    assert!(
        calls.iter().any(|c| c["fn"] == "showDirectoryPicker" && c["userActivation"] == true),
        "the page must open the directory picker from the click: {calls:?}"
    );
    Listing::of_disk(out.path(), "").assert_eq(&Listing::of_disk(&tree, "tree"), "what pqdrop receive wrote");
}

// ---------------------------------------------------------------------------
// 4. Wrong code.

#[test]
fn wrong_code_typed_in_the_page() {
    let Some(s) = setup() else { return };
    let src = temp_dir("pqdrop-src-");
    let f = src.path().join("secret.txt");
    std::fs::write(&f, b"not for the wrong person\n").expect("write");
    let mut sender = s.send(&[], &[&f]);
    let ev = wait_cli_event(&mut sender, "code", Duration::from_secs(30));
    let code = ev["code"].as_str().expect("code").to_string();
    let nameplate = code.split('-').next().expect("nameplate");
    let words = if code.ends_with("-wrong-words") { "other-words" } else { "wrong-words" };
    let wrong = format!("{nameplate}-{words}");
    let shots = shots_dir("wrong_code");
    let mut d = Driver::spawn(
        &s.env,
        "page (receiver)",
        "receive-code",
        &args!["--url", s.relay.page.as_str(), "--code", wrong, "--save", "fsa", "--screenshots", shots],
        RUN,
    );
    let r = d.finish(WAIT);
    let fin = sender.wait(CLI_WAIT);
    fin.assert_code(exit::WRONG_CODE);
    assert!(fin.stderr.contains("code is wrong"), "the sender must say the code is wrong:\n{}", fin.stderr);
    assert_error(&r, &["wrong-code"], "a wrong code");
    assert!(r["offer"].is_null(), "no offer may be shown with a wrong code: {:#}", r["offer"]);
    let saved = Listing::of_driver(&r["saved"]);
    assert!(saved.files.is_empty() && saved.dirs.is_empty(), "nothing may be saved with a wrong code: {saved:?}");
    assert_eq!(r["pickerCalls"].as_array().map(Vec::len), Some(0), "no save dialog with a wrong code: {:#}", r["pickerCalls"]);
}

// ---------------------------------------------------------------------------
// 5. A hostile sender against the page.

/// What the hostile sender does after its manifest.
enum Script {
    /// Nothing more: the page must refuse the manifest (if it answers Ready
    /// anyway, the files follow honestly so the run ends at once).
    Refused,
    /// Every file honestly: (entry index, data).
    Honest(Vec<(usize, Vec<u8>)>),
    /// The file at this index with its data, then a FileEnd whose hash is wrong.
    WrongHash(usize, Vec<u8>),
    /// The file at this index, then one chunk of this many bytes more than its size.
    PastSize(usize, usize),
}

/// Runs the hostile peer (code [`hostile_peer::CODE`]) against the page in
/// File System Access mode and returns the page's result.
fn hostile(s: &Setup, test: &str, entries: &[Entry], script: Script) -> Value {
    let url = s.link(hostile_peer::CODE);
    let mut d =
        Driver::spawn(&s.env, "page (receiver)", "receive", &args!["--url", url, "--save", "fsa", "--screenshots", shots_dir(test)], RUN);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let relay = s.relay.addr;
    let played = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            let mut peer = Peer::connect(relay, hostile_peer::CODE).await?;
            play(&mut peer, entries, &script).await;
            peer.drain().await;
            Ok::<(), String>(())
        })
        .await
    });
    match played {
        Err(_) => panic!("{test}: the hostile peer did not finish within 120 s"),
        Ok(Err(e)) => panic!("{test}: the hostile peer could not reach the page: {e}"),
        Ok(Ok(())) => {}
    }
    d.finish(WAIT)
}

async fn play(peer: &mut Peer, entries: &[Entry], script: &Script) {
    if peer.open_manifest(entries).await.is_err() {
        return; // the page refused before the manifest (e.g. at the offer)
    }
    match script {
        Script::Refused => peer.follow_through(entries).await,
        Script::Honest(files) => {
            if peer.expect(Expect::Ready).await.is_err() {
                return;
            }
            for (i, data) in files {
                peer.send_file(&entries[*i], data);
            }
            peer.done();
            if peer.flush().await.is_ok() && peer.expect(Expect::DoneAck).await.is_ok() {
                let _ = peer.flush_final().await;
                peer.shutdown().await;
            }
        }
        Script::WrongHash(i, data) => {
            if peer.expect(Expect::Ready).await.is_ok() {
                let mut bad = hash(data);
                bad[0] ^= 1;
                peer.file_start(&entries[*i], 0).chunk(data).file_end(bad).done();
                let _ = peer.flush().await;
            }
        }
        Script::PastSize(i, extra) => {
            if peer.expect(Expect::Ready).await.is_ok() {
                let data = vec![b'x'; entries[*i].size as usize + extra];
                peer.file_start(&entries[*i], 0).chunk(&data).file_end(hash(&data)).done();
                let _ = peer.flush().await;
            }
        }
    }
}

/// No file in the OPFS listing holds anything: the only files allowed are
/// the empty ones a save dialog made (Chrome's `showSaveFilePicker` creates
/// the file it returns); a leftover `.pqdrop-partial` fails too, since §8
/// says a failed file's temporary file is discarded.
fn assert_nothing_placed(r: &Value, what: &str) {
    let picked: Vec<&str> = r["pickerCalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["fn"] == "showSaveFilePicker")
        .filter_map(|c| c["options"]["suggestedName"].as_str())
        .collect();
    let saved = Listing::of_driver(&r["saved"]);
    for (path, (size, _)) in &saved.files {
        let from_dialog = *size == 0 && (picked.contains(&path.as_str()) || (path == "download" && !picked.is_empty()));
        assert!(from_dialog, "{what}: the page left {path} ({size} bytes) in the folder it was given; listing: {saved:?}");
    }
}

/// No raw control character in what the page shows of the peer's input.
fn assert_shown_escaped(r: &Value, what: &str) {
    let mut shown: Vec<String> = r["offerNames"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
    for k in ["offerSummary", "errorMessage"] {
        shown.push(r[k].as_str().unwrap_or("").to_string());
    }
    for t in shown {
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{what}: the page shows a raw control character in {t:?}");
    }
}

#[test]
fn hostile_sender_honest_control_reaches_the_page() {
    let Some(s) = setup() else { return };
    let a = b"hello from the hostile peer\n".to_vec();
    let b = common::pseudo_random(11, 300_000);
    let entries = [dir(0, "d"), file(1, "d/a.txt", a.len() as u64), file(2, "b.bin", b.len() as u64)];
    let r = hostile(&s, "hostile_control", &entries, Script::Honest(vec![(1, a.clone()), (2, b.clone())]));
    assert_done(&r, "an honest transfer through the hostile peer");
    let src = temp_dir("pqdrop-src-");
    std::fs::create_dir(src.path().join("d")).expect("mkdir");
    std::fs::write(src.path().join("d/a.txt"), &a).expect("write");
    std::fs::write(src.path().join("b.bin"), &b).expect("write");
    Listing::of_driver(&r["saved"]).assert_eq(&Listing::of_disk(src.path(), ""), "what the page saved");
}

#[test]
fn hostile_sender_names_are_refused() {
    let Some(s) = setup() else { return };
    for (i, (name, shown)) in [("../x", None), ("a\u{1b}b.txt", Some("a\\eb.txt")), ("CON.txt", None)].into_iter().enumerate() {
        let entries = [file(0, name, 5)];
        let r = hostile(&s, &format!("hostile_name_{i}"), &entries, Script::Refused);
        let what = format!("the name {name:?}");
        assert_error(&r, &["refused"], &what);
        assert_nothing_placed(&r, &what);
        assert_shown_escaped(&r, &what);
        if let (Some(shown), false) = (shown, r["offer"].is_null()) {
            let names: Vec<&str> = r["offer"]["names"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            assert!(names.contains(&shown), "{what}: the offer must show it escaped as {shown:?}, shows {names:?}");
        }
    }
}

#[test]
fn hostile_sender_wrong_file_hash_fails_integrity() {
    let Some(s) = setup() else { return };
    let data = common::pseudo_random(12, 100_000);
    let entries = [dir(0, "d"), file(1, "d/a.bin", data.len() as u64)];
    let r = hostile(&s, "hostile_wrong_hash", &entries, Script::WrongHash(1, data));
    assert_error(&r, &["integrity"], "a FileEnd with a wrong hash");
    assert_nothing_placed(&r, "a FileEnd with a wrong hash");
}

#[test]
fn hostile_sender_chunk_past_the_size_fails() {
    let Some(s) = setup() else { return };
    let entries = [dir(0, "d"), file(1, "d/b.bin", 10)];
    let r = hostile(&s, "hostile_past_size", &entries, Script::PastSize(1, 10));
    assert_error(&r, &["protocol", "integrity"], "a chunk past the file's size");
    assert_nothing_placed(&r, "a chunk past the file's size");
}
