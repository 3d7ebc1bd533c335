//! Shared helpers for the integration tests that drive the real `pqdrop`
//! binary.
//!
//! Rules every helper here enforces:
//!
//! * **Loopback only.** Every command gets `PQDROP_LAN_BIND=127.0.0.1` and a
//!   `--lan-bind 127.0.0.1` flag where it takes one, a discovery port
//!   (`PQDROP_LAN_PORT`) of its own per [`Harness`], an empty `PQDROP_RELAY`
//!   and a private `XDG_CONFIG_HOME`/`HOME`, so neither the host's network nor
//!   the user's config can leak in. A relay listens on `127.0.0.1:0`.
//! * **Nothing outlives a test.** A [`Proc`] kills (SIGKILL) and reaps its
//!   child when dropped, and prints the child's captured stderr when the test
//!   is failing, so a failure shows what every process said.
//! * **Every wait is bounded.** [`Proc::wait`] and [`wait_all`] poll with a
//!   deadline and fail with the captured stderr on timeout.
//!
//! Usage:
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! let h = Harness::new(Net::Relay);              // or Net::Lan
//! let mut s = h.send().arg("--code").arg("7-ocean-tiger").arg(&file).spawn("sender");
//! let mut r = h.receive().args(["--yes", "-o"]).arg(&out).arg("7-ocean-tiger").spawn("receiver");
//! let [s, r] = wait_all([&mut s, &mut r], Duration::from_secs(30));
//! s.assert_code(0);
//! r.assert_code(0);
//! ```
#![allow(dead_code)]

pub mod terminal;
pub mod users;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pqdrop");

/// The only address any test process binds or announces on.
pub const LOOPBACK: &str = "127.0.0.1";

/// Exit codes of the CLI (see `pqdrop --help`).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A command-line usage error.
    pub const USAGE: i32 = 2;
    /// Key confirmation failed: the two sides used different codes.
    pub const WRONG_CODE: i32 = 3;
    /// The receiver declined.
    pub const REFUSED: i32 = 4;
    /// Relay or sender unreachable.
    pub const UNREACHABLE: i32 = 5;
    /// The other side disconnected.
    pub const PEER_GONE: i32 = 6;
    /// Local I/O error.
    pub const IO: i32 = 7;
    /// Protocol violation or integrity failure.
    pub const PROTOCOL: i32 = 8;
    /// A file exists (no --overwrite / --rename).
    pub const EXISTS: i32 = 9;
}

/// One mebibyte.
pub const MIB: usize = 1 << 20;

/// A UDP port on 127.0.0.1 that was free a moment ago (bound to port 0, then
/// released), never the same twice in this test process. Each harness gets
/// its own, so tests running in parallel never hear each other's LAN
/// announcements (receivers bind with `SO_REUSEPORT`, so a shared port would
/// let one receiver swallow another's announcements).
pub fn free_udp_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let s = UdpSocket::bind((LOOPBACK, 0)).expect("bind a probe UDP socket on 127.0.0.1:0");
        let port = s.local_addr().expect("probe socket address").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no fresh UDP port on 127.0.0.1 after 100 tries");
}

/// How the two sides find each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// Through a `pqdrop relay` spawned for this harness on 127.0.0.1.
    Relay,
    /// LAN discovery, unicast on 127.0.0.1 with a private discovery port.
    Lan,
}

/// An isolated environment for one test: a private config home, a private
/// LAN discovery port and, in relay mode, a private relay process.
pub struct Harness {
    net: Net,
    home: tempfile::TempDir,
    lan_port: u16,
    relay: Option<Proc>,
    relay_addr: Option<SocketAddr>,
}

impl Harness {
    /// Creates the environment; in relay mode starts the relay and waits (at
    /// most 30 s) until it reports its listening address.
    pub fn new(net: Net) -> Harness {
        let home = tempfile::Builder::new().prefix("pqdrop-home-").tempdir().expect("temp home");
        std::fs::create_dir_all(home.path().join("config")).expect("config dir");
        let mut h = Harness { net, home, lan_port: free_udp_port(), relay: None, relay_addr: None };
        if net == Net::Relay {
            let mut relay = h.command("relay").args(["--listen", "127.0.0.1:0"]).spawn("relay");
            let line = relay.wait_for_stderr_line("pqdrop relay listening on ", Duration::from_secs(30));
            let addr: SocketAddr = line
                .trim()
                .rsplit(' ')
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("cannot parse the relay address from {line:?}"));
            assert!(addr.ip().is_loopback(), "the relay must listen on loopback, got {addr}");
            h.relay = Some(relay);
            h.relay_addr = Some(addr);
        }
        h
    }

    /// The mode.
    pub fn net(&self) -> Net {
        self.net
    }

    /// The relay's address (relay mode only).
    pub fn relay_addr(&self) -> Option<SocketAddr> {
        self.relay_addr
    }

    /// The private LAN discovery port.
    pub fn lan_port(&self) -> u16 {
        self.lan_port
    }

    /// The relay process (relay mode only), e.g. to read its log.
    pub fn relay_proc(&self) -> Option<&Proc> {
        self.relay.as_ref()
    }

    /// `pqdrop SUBCOMMAND` with the isolated environment, nothing else.
    pub fn command(&self, subcommand: &str) -> Spawn {
        let config = self.home.path().join("config");
        Spawn {
            args: vec![subcommand.into()],
            envs: vec![
                ("PQDROP_LAN_BIND".into(), LOOPBACK.into()),
                ("PQDROP_LAN_PORT".into(), self.lan_port.to_string().into()),
                ("PQDROP_RELAY".into(), OsString::new()),
                ("XDG_CONFIG_HOME".into(), config.into_os_string()),
                ("HOME".into(), self.home.path().as_os_str().to_owned()),
                ("NO_COLOR".into(), "1".into()),
            ],
            env_remove: vec!["PQDROP_CODE".into()],
            stdin: StdinSpec::Null,
            detach_terminal: false,
            nofile: None,
            cwd: None,
        }
    }

    /// `pqdrop send` routed for this harness (`--relay ADDR` or `--lan-bind 127.0.0.1`).
    pub fn send(&self) -> Spawn {
        self.command("send").args(self.route_args())
    }

    /// `pqdrop receive` routed for this harness, with a 30 s LAN search limit.
    pub fn receive(&self) -> Spawn {
        let s = self.command("receive").args(self.route_args());
        match self.net {
            Net::Lan => s.args(["--lan-timeout", "30"]),
            Net::Relay => s,
        }
    }

    fn route_args(&self) -> Vec<String> {
        match (self.net, self.relay_addr) {
            (Net::Relay, Some(a)) => vec!["--relay".into(), a.to_string()],
            _ => vec!["--lan-bind".into(), LOOPBACK.into()],
        }
    }
}

/// What the child reads on stdin.
enum StdinSpec {
    Null,
    Bytes(Vec<u8>),
}

/// A `pqdrop` command being built.
pub struct Spawn {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    stdin: StdinSpec,
    detach_terminal: bool,
    nofile: Option<u64>,
    cwd: Option<PathBuf>,
}

impl Spawn {
    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Spawn {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Spawn {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Spawn
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Spawn {
        self.envs.push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Feeds `data` to the child's stdin (from a thread), then closes it.
    pub fn stdin_bytes(mut self, data: Vec<u8>) -> Spawn {
        self.stdin = StdinSpec::Bytes(data);
        self
    }

    /// Runs the child in a new session (via `setsid(1)` when installed), so it
    /// has no controlling terminal and `/dev/tty` cannot be opened, even when
    /// the tests themselves run in a terminal. stdin is null unless set.
    pub fn without_terminal(mut self) -> Spawn {
        self.detach_terminal = true;
        self
    }

    /// Runs the child under `ulimit -n n` (through `/bin/sh`, which execs it:
    /// the pid stays pqdrop's).
    pub fn nofile(mut self, n: u64) -> Spawn {
        self.nofile = Some(n);
        self
    }

    /// Starts the child; `label` names it in failure messages.
    pub fn spawn(self, label: &str) -> Proc {
        let setsid =
            if self.detach_terminal { ["/usr/bin/setsid", "/bin/setsid"].into_iter().find(|p| Path::new(p).exists()) } else { None };
        if self.detach_terminal && setsid.is_none() {
            eprintln!("note: setsid(1) not found; {label} keeps the test's controlling terminal, if any");
        }
        let mut argv: Vec<OsString> = vec![BIN.into()];
        argv.extend(self.args.iter().cloned());
        if let Some(n) = self.nofile {
            let script = format!("ulimit -n {n} && exec \"$0\" \"$@\"");
            argv.splice(0..0, ["/bin/sh".into(), "-c".into(), script.into()]);
        }
        // The spawned child is not a process-group leader, so setsid(1)
        // calls setsid(2) and execs in place: the pid stays the same and
        // Proc's kill still reaches pqdrop itself.
        if let Some(s) = setsid {
            argv.insert(0, s.into());
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(match self.stdin {
            StdinSpec::Null => Stdio::null(),
            StdinSpec::Bytes(_) => Stdio::piped(),
        });
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {label} ({BIN}): {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        if let Some(out) = child.stdout.take() {
            threads.push(drain(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            threads.push(drain(err, stderr.clone()));
        }
        if let (StdinSpec::Bytes(data), Some(mut pipe)) = (self.stdin, child.stdin.take()) {
            // A child that exits early closes the pipe; that shows up in its
            // exit status, so the write result is ignored here.
            threads.push(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }));
        }
        Proc { label: label.to_string(), child, stdout, stderr, threads, finished: None }
    }
}

fn drain(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&chunk[..n]),
            }
        }
    })
}

/// How a child ended, with everything it printed.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The label given at spawn.
    pub label: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: Vec<u8>,
    /// Everything on stderr (lossy UTF-8).
    pub stderr: String,
}

impl Finished {
    /// The exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics, showing stderr, unless the exit code is `want`.
    pub fn assert_code(&self, want: i32) {
        assert_eq!(self.code(), Some(want), "{} exited with {:?}, expected {want}; stderr:\n{}", self.label, self.status, self.stderr);
    }

    /// Panics, showing stderr, if the child succeeded.
    pub fn assert_failed(&self) {
        assert!(!self.status.success(), "{} succeeded, expected a failure; stderr:\n{}", self.label, self.stderr);
    }

    /// stdout as UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap_or_else(|e| panic!("{} stdout is not UTF-8: {e}", self.label))
    }

    /// stdout parsed as JSON lines (blank lines skipped).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout_text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: stdout line is not JSON ({e}): {l:?}", self.label)))
            .collect()
    }

    /// The last JSON line, which must be `{"event":"result","ok":true,...}`.
    pub fn json_result(&self) -> Value {
        let lines = self.json_lines();
        let last = lines.last().cloned().unwrap_or_else(|| panic!("{}: no JSON on stdout; stderr:\n{}", self.label, self.stderr));
        assert_eq!(last["event"], "result", "{}: last JSON line is not the result: {last}", self.label);
        assert_eq!(last["ok"], true, "{}: result is not ok: {last}", self.label);
        last
    }
}

/// A running `pqdrop` child. Dropping it kills and reaps the child.
pub struct Proc {
    label: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
    finished: Option<Finished>,
}

impl Proc {
    /// The label given at spawn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stderr captured so far.
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// stdout captured so far.
    pub fn stdout_now(&self) -> Vec<u8> {
        self.stdout.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The outcome if the child has exited (reaps it and collects its output).
    pub fn poll(&mut self) -> Option<Finished> {
        if self.finished.is_none() {
            let status = self.child.try_wait().unwrap_or_else(|e| panic!("try_wait {}: {e}", self.label))?;
            self.collect(status);
        }
        self.finished.clone()
    }

    fn collect(&mut self, status: ExitStatus) {
        // The child is gone, so its pipes reach EOF (pqdrop spawns no children).
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.finished = Some(Finished { label: self.label.clone(), status, stdout: self.stdout_now(), stderr: self.stderr_now() });
    }

    /// Waits for the child to exit; on timeout kills it and panics with its stderr.
    pub fn wait(&mut self, timeout: Duration) -> Finished {
        let [f] = wait_all([self], timeout);
        f
    }

    /// SIGKILLs the child (if still running) and reaps it.
    pub fn kill(&mut self) -> Finished {
        if let Some(f) = self.poll() {
            return f;
        }
        let _ = self.child.kill();
        let status = self.child.wait().unwrap_or_else(|e| panic!("wait {}: {e}", self.label));
        self.collect(status);
        self.finished.clone().expect("collected")
    }

    /// Waits until a line of stderr contains `needle` and returns that line;
    /// panics (with stderr) on timeout or if the child exits first.
    pub fn wait_for_stderr_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stderr_now();
            // Only complete lines count, so the address is never cut short.
            if let Some(line) = text.split_inclusive('\n').find(|l| l.ends_with('\n') && l.contains(needle)) {
                return line.trim_end().to_string();
            }
            if let Some(f) = self.poll() {
                panic!("{} exited ({:?}) before printing {needle:?}; stderr:\n{}", self.label, f.status, f.stderr);
            }
            if Instant::now() >= deadline {
                let f = self.kill();
                panic!("{} did not print {needle:?} within {timeout:?}; stderr:\n{}", self.label, f.stderr);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let f = self.kill();
        if std::thread::panicking() {
            eprintln!("----- {} ({:?}) stderr -----\n{}----- end of {} -----", self.label, f.status, f.stderr, self.label);
        }
    }
}

/// Waits until every child has exited, sharing one deadline. On timeout, kills
/// them all and panics with each one's state and stderr.
pub fn wait_all<const N: usize>(procs: [&mut Proc; N], timeout: Duration) -> [Finished; N] {
    let deadline = Instant::now() + timeout;
    let mut procs = procs;
    loop {
        let mut all = true;
        for p in procs.iter_mut() {
            all &= p.poll().is_some();
        }
        if all {
            return procs.map(|p| p.poll().expect("finished"));
        }
        if Instant::now() >= deadline {
            let mut msg = format!("timed out after {timeout:?}:\n");
            for p in procs.iter_mut() {
                let running = p.poll().is_none();
                let f = p.kill();
                msg.push_str(&format!(
                    "--- {} ({}) stderr:\n{}\n",
                    f.label,
                    if running { "still running, killed".to_string() } else { format!("exited {:?}", f.status) },
                    f.stderr
                ));
            }
            panic!("{msg}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fills `buf` with xorshift64* output from `seed` (fast, reproducible).
pub fn fill_pseudo_random(seed: u64, buf: &mut [u8]) {
    // splitmix64 of the seed: distinct seeds give unrelated streams (a plain
    // `seed | 1` would make 72 and 73 the same stream), and the state is never 0.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let mut x = (z ^ (z >> 31)).max(1);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    let rest = chunks.into_remainder();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let last = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&last[..n]);
}

/// `len` pseudorandom bytes.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_pseudo_random(seed, &mut v);
    v
}

/// Writes `len` pseudorandom bytes to `path`, 1 MiB at a time (each MiB seeded
/// from `seed` and its index, so the memory use stays small).
pub fn write_pseudo_random_file(path: &Path, seed: u64, len: u64) {
    let mut w = BufWriter::new(File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display())));
    let mut block = vec![0u8; MIB];
    let mut left = len;
    let mut i = 0u64;
    while left > 0 {
        let n = left.min(MIB as u64) as usize;
        fill_pseudo_random(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15), &mut block[..n]);
        w.write_all(&block[..n]).expect("write test data");
        left -= n as u64;
        i += 1;
    }
    w.flush().expect("flush test data");
}

/// Panics unless the two files have the same bytes (streamed, 1 MiB at a time;
/// reports the first differing offset).
pub fn assert_same_file(want: &Path, got: &Path) {
    let open = |p: &Path| File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let (mut a, mut b) = (open(want), open(got));
    let (la, lb) = (a.metadata().expect("metadata").len(), b.metadata().expect("metadata").len());
    assert_eq!(la, lb, "{} is {lb} bytes, expected {la} (like {})", got.display(), want.display());
    let (mut ba, mut bb) = (vec![0u8; MIB], vec![0u8; MIB]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut ba);
        let m = read_full(&mut b, &mut bb);
        assert_eq!(n, m, "{} and {} differ in length", want.display(), got.display());
        if n == 0 {
            return;
        }
        if ba[..n] != bb[..n] {
            let i = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y).unwrap_or(0);
            panic!("{} differs from {} at byte {}", got.display(), want.display(), offset + i as u64);
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).expect("read") {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Modification time in whole seconds since the epoch (without following a symlink).
pub fn mtime_secs(path: &Path) -> i64 {
    let t = std::fs::symlink_metadata(path).and_then(|m| m.modified()).unwrap_or_else(|e| panic!("mtime of {}: {e}", path.display()));
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Sets the modification time of a file or directory to `secs` after the epoch.
pub fn set_mtime(path: &Path, secs: u64) {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

/// Sets the permission bits (`mode & 0o7777`).
#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The permission bits (`mode & 0o777`).
#[cfg(unix)]
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).permissions().mode() & 0o777
}

/// One entry of a [`tree`] snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir {
        /// mtime, whole seconds.
        mtime: i64,
    },
    /// A regular file.
    File {
        /// Length in bytes.
        len: u64,
        /// Permission bits (`mode & 0o777`).
        mode: u32,
        /// mtime, whole seconds.
        mtime: i64,
    },
    /// Anything else (symlink, fifo, ...).
    Other,
}

/// Everything below `root` (not `root` itself), keyed by the '/'-joined
/// relative path, without following symlinks.
pub fn tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.expect("dir entry");
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("stat");
            let rel = p.strip_prefix(root).expect("below root").to_string_lossy().replace('\\', "/");
            let node = if md.is_dir() {
                Node::Dir { mtime: mtime_secs(&p) }
            } else if md.is_file() {
                Node::File { len: md.len(), mode: permission_bits(&md), mtime: mtime_secs(&p) }
            } else {
                Node::Other
            };
            out.insert(rel, node.clone());
            if matches!(node, Node::Dir { .. }) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[cfg(unix)]
fn permission_bits(md: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    md.permissions().mode() & 0o777
}
#[cfg(not(unix))]
fn permission_bits(_: &std::fs::Metadata) -> u32 {
    0
}

/// Names directly in `dir`, sorted (empty if it does not exist).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd.map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Paths below `root` whose name ends in `.pqdrop-partial`.
pub fn partial_files(root: &Path) -> Vec<PathBuf> {
    tree(root).keys().filter(|k| k.ends_with(".pqdrop-partial")).map(|k| root.join(k)).collect()
}

/// A temp directory with a recognisable prefix.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir")
}

/// This process's umask (Linux); the receivers the tests spawn inherit it.
pub fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok())).expect("a Umask line")
}
