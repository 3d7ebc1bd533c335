//! The harness of the browser tests: a relay that serves the page, the
//! headless-Chromium driver (`web/test/e2e/driver.mjs`) as a child process,
//! and what the tests compare (trees, SHA-256s, OPFS listings).
//!
//! Rules, as in `tests/common`:
//! * **Loopback only**: the relay listens on `127.0.0.1:0` for TCP and for
//!   the page, and Chromium is only given `http://127.0.0.1:…` URLs.
//! * **Nothing outlives a test**: a [`Driver`] runs in a process group of its
//!   own; on drop it is asked to stop (SIGTERM: it closes Chromium), then the
//!   group is SIGKILLed, and any Chromium process still carrying the run's
//!   marker switch is SIGKILLed by pid. The relay and CLI children are
//!   `common::Proc`s, killed on drop.
//! * **Every wait is bounded**, and a timeout fails with what each process said.
//! * **One browser at a time**: tests take [`serial`] first.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Harness, Proc};

/// Where the tools and the page are.
#[derive(Clone, Debug)]
pub struct Env {
    /// `node` (Node.js 20).
    pub node: PathBuf,
    /// The repository's `web/` folder (the driver and its node_modules).
    pub web: PathBuf,
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// `--web-root` for the relay, when `$PQDROP_WEB_ROOT` names one; otherwise
    /// the page built into the binary is served.
    pub web_root: Option<PathBuf>,
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// The tools the tests need, or `None` (with a note) when
/// `PQDROP_SKIP_BROWSER=1`. Panics with how to install what is missing.
pub fn env() -> Option<Env> {
    if std::env::var_os("PQDROP_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("note: PQDROP_SKIP_BROWSER=1: the browser test is skipped");
        return None;
    }
    let skip = "(or set PQDROP_SKIP_BROWSER=1 to skip the browser tests)";
    let chromium = std::env::var_os("PQDROP_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "Chromium not found at {}: install it with `apt-get install chromium`, or point $PQDROP_CHROMIUM at a Chromium binary {skip}",
        chromium.display()
    );
    let web = repo_root().join("web");
    assert!(
        web.join("node_modules/playwright-core/package.json").is_file(),
        "{}/node_modules has no playwright-core: run `npm ci --prefix web` {skip}",
        web.display()
    );
    let node = std::env::var_os("PQDROP_NODE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("node"));
    let version = Command::new(&node).arg("--version").stdin(Stdio::null()).output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "cannot run {} --version ({version:?}): install Node.js 20 or set $PQDROP_NODE {skip}",
        node.display()
    );
    let web_root = std::env::var_os("PQDROP_WEB_ROOT").map(PathBuf::from);
    let page = web_root.clone().unwrap_or_else(|| repo_root().join("crates/pqdrop-relay/web"));
    for f in ["index.html", "app.js", "sw.js"] {
        assert!(
            page.join(f).is_file(),
            "the page has no {f} in {}: build it with `npm ci --prefix web && npm run --prefix web build` (then rebuild pqdrop, which embeds it) {skip}",
            page.display()
        );
    }
    Some(Env { node, web, chromium, web_root })
}

/// Serialises the tests of this file: each one runs a Chromium.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a test's screenshots go: `target/tmp/browser-e2e/NAME`.
pub fn shots_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-e2e").join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

// ---------------------------------------------------------------------------
// The relay.

/// A `pqdrop relay --web` child on loopback.
pub struct WebRelay {
    /// The relay process (killed on drop).
    pub proc: Proc,
    /// Its TCP address (for the CLI and the hostile peer).
    pub addr: SocketAddr,
    /// The page's URL, `http://127.0.0.1:PORT/`.
    pub page: String,
}

impl WebRelay {
    /// Starts `pqdrop relay --listen 127.0.0.1:0 --web 127.0.0.1:0` in `h`'s
    /// environment (with `--web-root` when the env names one) and waits (30 s
    /// at most) for both addresses.
    pub fn start(h: &Harness, env: &Env) -> WebRelay {
        let mut cmd = h.command("relay").args(["--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"]);
        if let Some(root) = &env.web_root {
            cmd = cmd.arg("--web-root").arg(root);
        }
        let mut proc = cmd.spawn("relay");
        let line = proc.wait_for_stderr_line("pqdrop relay listening on ", Duration::from_secs(30));
        let addr: SocketAddr = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse the relay address from {line:?}"));
        let line = proc.wait_for_stderr_line("browser page on ", Duration::from_secs(30));
        let page = line.rsplit("reached at ").next().unwrap_or("").trim().to_string();
        assert!(page.starts_with("http://127.0.0.1:") && page.ends_with('/'), "unexpected page URL {page:?} in {line:?}");
        assert!(addr.ip().is_loopback(), "the relay must listen on loopback, got {addr}");
        WebRelay { proc, addr, page }
    }
}

// ---------------------------------------------------------------------------
// The driver.

/// One run of `web/test/e2e/driver.mjs` (Node + Playwright + Chromium).
pub struct Driver {
    label: String,
    child: Child,
    marker: String,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
    exited: Option<std::process::ExitStatus>,
}

impl Driver {
    /// Starts `node driver.mjs SCENARIO ARGS… --timeout-ms … --marker …`;
    /// the driver bounds its whole run by `bound` (then reports a timeout).
    pub fn spawn(env: &Env, label: &str, scenario: &str, args: &[OsString], bound: Duration) -> Driver {
        static RUN: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let marker = format!("{}-{}-{nanos}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed));
        let mut cmd = Command::new(&env.node);
        cmd.arg(env.web.join("test/e2e/driver.mjs"))
            .arg(scenario)
            .args(args)
            .arg("--timeout-ms")
            .arg(bound.as_millis().to_string())
            .arg("--marker")
            .arg(&marker)
            .arg("--chromium")
            .arg(&env.chromium)
            .current_dir(&env.web)
            .env_remove("PQDROP_CODE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a kill reaches Node's helpers too.
            .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {label} ({} driver.mjs): {e}", env.node.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        if let Some(out) = child.stdout.take() {
            let lines = lines.clone();
            threads.push(std::thread::spawn(move || {
                for l in BufReader::new(out).lines() {
                    match l {
                        Ok(l) => lines.lock().unwrap_or_else(|e| e.into_inner()).push(l),
                        Err(_) => break,
                    }
                }
            }));
        }
        if let Some(mut err) = child.stderr.take() {
            let buf = stderr.clone();
            threads.push(std::thread::spawn(move || {
                let mut chunk = vec![0u8; 16 * 1024];
                loop {
                    match err.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&chunk[..n]),
                    }
                }
            }));
        }
        Driver { label: label.to_string(), child, marker, lines, stderr, threads, exited: None }
    }

    /// The marker switch on this run's Chromium command line.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    fn json_lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
    }

    fn exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited.is_some()
    }

    /// Waits for the first JSON line with `"event": event`; panics (with the
    /// driver's output) on timeout or when the driver ends without it.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.json_lines().into_iter().find(|v| v["event"] == event) {
                return v;
            }
            if self.exited() {
                // Let the reader thread catch up with the last lines.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(v) = self.json_lines().into_iter().find(|v| v["event"] == event) {
                    return v;
                }
                panic!(
                    "{} ended ({:?}) without a {event:?} line; stdout:\n{}\nstderr:\n{}",
                    self.label,
                    self.exited,
                    self.stdout_text(),
                    self.stderr_now()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} printed no {event:?} line within {timeout:?}; stdout:\n{}\nstderr:\n{}",
                self.label,
                self.stdout_text(),
                self.stderr_now()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stdout_text(&self) -> String {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// Waits for the driver to exit (at most `timeout`) and returns its result
    /// line; panics on timeout, on a missing result, or on a driver error.
    pub fn finish(&mut self, timeout: Duration) -> Value {
        let result = self.finish_any(timeout);
        assert!(
            result["driverError"].is_null(),
            "{} failed: {}\nresult: {result:#}\nstderr:\n{}",
            self.label,
            result["driverError"].as_str().unwrap_or(""),
            self.stderr_now()
        );
        result
    }

    /// Like [`Driver::finish`], but a result with a driver error is returned too.
    pub fn finish_any(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        while !self.exited() {
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "{} did not finish within {timeout:?} (stopped); stdout:\n{}\nstderr:\n{}",
                    self.label,
                    self.stdout_text(),
                    self.stderr_now()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let result = self.json_lines().into_iter().rev().find(|v| v["event"] == "result");
        let Some(result) = result else {
            panic!(
                "{} exited ({:?}) without a result line; stdout:\n{}\nstderr:\n{}",
                self.label,
                self.exited,
                self.stdout_text(),
                self.stderr_now()
            );
        };
        result
    }

    /// Whether the driver has exited.
    pub fn has_exited(&mut self) -> bool {
        self.exited()
    }

    /// Stops the driver and its browser: SIGTERM to its process group (it
    /// closes Chromium and reports), SIGKILL to the group after 5 s, then
    /// SIGKILL to any process still carrying the run's marker (Playwright
    /// starts Chromium in a process group of its own).
    pub fn stop(&mut self) {
        let pgid = self.child.id() as i32;
        if !self.exited() {
            // The leader is not reaped yet, so the group id is still ours.
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let until = Instant::now() + Duration::from_secs(5);
            while !self.exited() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !self.exited() {
                // SAFETY: as above (still not reaped).
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                self.exited = self.child.wait().ok();
            }
        }
        for pid in marked_processes(&self.marker) {
            // SAFETY: a process whose command line carries this run's marker.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("----- {} stderr -----\n{}----- end of {} -----", self.label, self.stderr_now(), self.label);
        }
    }
}

/// Pids of the processes whose command line holds `--pqdrop-e2e=MARKER`.
pub fn marked_processes(marker: &str) -> Vec<i32> {
    let needle = format!("--pqdrop-e2e={marker}");
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == needle.as_bytes())))
        .collect()
}

/// `OsString` arguments from anything path- or string-like.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(std::ffi::OsString::from($a)),*] };
}

// ---------------------------------------------------------------------------
// The CLI side.

/// Waits until `proc` prints a JSON line with `"event": event` on stdout.
pub fn wait_cli_event(proc: &mut Proc, event: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let out = String::from_utf8_lossy(&proc.stdout_now()).into_owned();
        let found = out
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .find(|v| v["event"] == event);
        if let Some(v) = found {
            return v;
        }
        if let Some(f) = proc.poll() {
            panic!("{} exited ({:?}) before its {event:?} event; stdout:\n{}\nstderr:\n{}", f.label, f.status, out, f.stderr);
        }
        if Instant::now() >= deadline {
            let f = proc.kill();
            panic!("{} printed no {event:?} event within {timeout:?}; stderr:\n{}", f.label, f.stderr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// What is compared.

/// SHA-256 of a file, lowercase hex (coreutils' `sha256sum`).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run sha256sum: {e}"));
    assert!(out.status.success(), "sha256sum {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// A tree as the OPFS listing describes it: folders, and files with their
/// size and SHA-256.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// '/'-joined relative paths of folders.
    pub dirs: BTreeSet<String>,
    /// '/'-joined relative paths of files → (size, SHA-256 hex).
    pub files: BTreeMap<String, (u64, String)>,
}

impl Listing {
    /// Everything below `root` on disk, `prefix/`-prefixed (the empty prefix
    /// for none).
    pub fn of_disk(root: &Path, prefix: &str) -> Listing {
        fn walk(dir: &Path, rel: &str, out: &mut Listing) {
            let mut kids: Vec<_> = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())).flatten().collect();
            kids.sort_by_key(|e| e.file_name());
            for e in kids {
                let name = e.file_name().to_str().expect("UTF-8 test names").to_string();
                let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
                let md = std::fs::symlink_metadata(e.path()).expect("stat");
                if md.is_dir() {
                    out.dirs.insert(path.clone());
                    walk(&e.path(), &path, out);
                } else {
                    out.files.insert(path, (md.len(), sha256_file(&e.path())));
                }
            }
        }
        let mut out = Listing::default();
        if !prefix.is_empty() {
            out.dirs.insert(prefix.to_string());
        }
        walk(root, prefix, &mut out);
        out
    }

    /// The driver's `saved` object (`{exists, dirs: [...], files: {path: {size, sha256}}}`).
    pub fn of_driver(saved: &Value) -> Listing {
        let mut out = Listing::default();
        for d in saved["dirs"].as_array().into_iter().flatten() {
            out.dirs.insert(d.as_str().expect("dir name").to_string());
        }
        for (p, f) in saved["files"].as_object().into_iter().flatten() {
            out.files.insert(p.clone(), (f["size"].as_u64().expect("size"), f["sha256"].as_str().unwrap_or("(not hashed)").to_string()));
        }
        out
    }

    /// Without the folders that hold no file (a folder picked in a browser
    /// carries only its files: `webkitdirectory` cannot express an empty one).
    pub fn without_empty_dirs(&self) -> Listing {
        let dirs = self.dirs.iter().filter(|d| self.files.keys().any(|f| f.starts_with(&format!("{d}/")))).cloned().collect();
        Listing { dirs, files: self.files.clone() }
    }

    /// Panics with both listings and their differences unless equal.
    pub fn assert_eq(&self, want: &Listing, what: &str) {
        if self == want {
            return;
        }
        let mut diff = Vec::new();
        for d in want.dirs.difference(&self.dirs) {
            diff.push(format!("missing folder {d}"));
        }
        for d in self.dirs.difference(&want.dirs) {
            diff.push(format!("extra folder {d}"));
        }
        for (p, f) in &want.files {
            match self.files.get(p) {
                None => diff.push(format!("missing file {p}")),
                Some(g) if g != f => diff.push(format!("file {p}: got {} bytes {}, want {} bytes {}", g.0, g.1, f.0, f.1)),
                _ => {}
            }
        }
        for p in self.files.keys().filter(|p| !want.files.contains_key(*p)) {
            diff.push(format!("extra file {p}"));
        }
        panic!("{what} differs from the source:\n  {}", diff.join("\n  "));
    }
}

/// The folder tree the tests send: nested folders, an empty folder, an empty
/// file and a non-ASCII name. Returns `parent/tree`.
pub fn make_tree(parent: &Path) -> PathBuf {
    let root = parent.join("tree");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::create_dir_all(root.join("empty-dir")).expect("mkdir");
    std::fs::write(root.join("a.txt"), b"hello from the tree\n").expect("write");
    std::fs::write(root.join("empty.txt"), b"").expect("write");
    std::fs::write(root.join("sub/deeper/data.bin"), crate::common::pseudo_random(7, 300_000)).expect("write");
    std::fs::write(root.join("sub/Ünïcødé 名前.txt"), "non-ASCII name\n").expect("write");
    root
}

/// The result's `timings` as one line: for a receiving page, from opening the
/// link to the offer and from Accept to the first byte and to the end; for a
/// sending page, from opening to its code and from the code on.
pub fn timings_line(r: &Value, bytes: u64) -> String {
    let t = &r["timings"];
    let ms = |k: &str| t[k].as_i64().map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
    let sending = r["scenario"] == "send";
    let span = if sending { t["codeToDoneMs"].as_i64() } else { t["acceptToDoneMs"].as_i64() };
    let rate =
        span.filter(|&v| v > 0 && bytes > 0).map(|v| format!(", {:.1} MB/s", bytes as f64 / 1e6 / (v as f64 / 1e3))).unwrap_or_default();
    if sending {
        format!("open→code {}, code→first byte {}, code→done {}{rate}", ms("openToCodeMs"), ms("codeToFirstByteMs"), ms("codeToDoneMs"))
    } else {
        format!(
            "open→offer {}, accept→progress {}, accept→first byte {}, accept→done {}{rate}",
            ms("openToOfferMs"),
            ms("acceptToProgressMs"),
            ms("acceptToFirstByteMs"),
            ms("acceptToDoneMs")
        )
    }
}

/// Panics (with the whole result) unless the page ended in `done`.
pub fn assert_done(r: &Value, what: &str) {
    assert_eq!(
        r["state"], "done",
        "{what}: the page ended in {} (error {}: {}); result:\n{r:#}",
        r["state"], r["error"], r["errorMessage"]
    );
    let errs = r["pageErrors"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(errs, 0, "{what}: uncaught exceptions in the page: {:#}", r["pageErrors"]);
}

/// Panics unless the page ended in `error` with `data-error` in `want`.
pub fn assert_error(r: &Value, want: &[&str], what: &str) {
    let got = r["error"].as_str().unwrap_or("");
    assert!(
        r["state"] == "error" && want.contains(&got),
        "{what}: expected the page to fail with data-error {want:?}, it ended in {} (error {:?}: {}); result:\n{r:#}",
        r["state"],
        got,
        r["errorMessage"]
    );
    let msg = r["errorMessage"].as_str().unwrap_or("");
    assert!(!msg.trim().is_empty(), "{what}: #error-message is empty; result:\n{r:#}");
}
