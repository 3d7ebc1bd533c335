//! A hostile sender for tests: it speaks the pqdrop protocol correctly (real
//! relay hello, real handshake as the accepter, real record encryption) and
//! then sends whatever transfer messages a test scripts, against the real
//! `pqdrop receive` binary.
//!
//! Pieces:
//! - [`Scene`]: temp directories (OUT, its parent with a sibling `OUT-suffix`,
//!   an `outside` folder and a `victim` file), an in-process relay on
//!   127.0.0.1, and the receiver child. It snapshots everything outside OUT
//!   when the receiver starts and again when it ends, so a test can prove
//!   nothing was written there.
//! - [`Peer`]: a small DSL. Messages are queued with `offer`, `entry`,
//!   `manifest_end`, `file_start`, `chunk`, `file_end`, `done`, … (each returns
//!   `&mut Self`), sealed into one record and written by `flush`; the
//!   receiver's replies are read with `expect`.
//! - [`Outcome`]: the receiver's exit status, stderr and what it did to the
//!   file system, with assertions.
//!
//! Network: loopback only. Time: every await on the peer is bounded by
//! [`PEER_TIMEOUT`], and the receiver is killed after [`CHILD_DEADLINE`]
//! (a `Drop` guard kills it on every path, panics included).
#![allow(dead_code)] // each test uses a different part of the DSL

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pqdrop_engine::conn::{handshake, local_capabilities, open_frame, read_frame, IdleWatch};
use pqdrop_proto::code::Code;
use pqdrop_proto::handshake::Role;
use pqdrop_proto::record::RecordOpener;
use pqdrop_proto::record::RecordSealer;
use pqdrop_proto::transfer::{Entry, EntryKind, Messages, Offer, OfferKind, TransferMsg};
use pqdrop_relay::{Relay, RelayConfig};
use tokio::io::{AsyncWriteExt, Chain};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

mod outcome;
mod peer;
pub use outcome::*;
pub use peer::*;

/// The code both sides use. Its words must never show up in the receiver's output.
pub const CODE: &str = "12-ocean-tiger";
/// The secret part of [`CODE`].
pub const SECRET_WORDS: [&str; 2] = ["ocean", "tiger"];
/// Bound on every single await of the peer (connect, handshake, a reply).
pub const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// The receiver is killed (and the test fails) if it runs longer than this.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// The receiver's exit codes (crates/pqdrop/src/common.rs).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Key confirmation failed.
    pub const WRONG_CODE: i32 = 3;
    /// The other side disconnected.
    pub const PEER_GONE: i32 = 6;
    /// A local I/O error.
    pub const IO: i32 = 7;
    /// Protocol violation, hostile entry or integrity failure.
    pub const PROTOCOL: i32 = 8;
    /// A file exists and neither --overwrite nor --rename was given.
    pub const EXISTS: i32 = 9;
}

/// Queued messages are cut into a new record before the record's plaintext
/// would pass this (records carry at most 1 MiB).
pub const RECORD_SPLIT: usize = 256 << 10;

/// A file entry.
pub fn file(index: u64, path: impl AsRef<[u8]>, size: u64) -> Entry {
    Entry { index, kind: EntryKind::File, path: path.as_ref().to_vec(), size, executable: false, mtime: 1_700_000_000 }
}

/// A folder entry.
pub fn dir(index: u64, path: impl AsRef<[u8]>) -> Entry {
    Entry { index, kind: EntryKind::Dir, path: path.as_ref().to_vec(), size: 0, executable: false, mtime: 1_700_000_000 }
}

/// BLAKE3 of `data`, as the sender puts it in `FileEnd`.
pub fn hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

/// An in-process relay on 127.0.0.1 with an ephemeral port, stopped on drop.
pub struct TestRelay {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    /// Binds and starts serving (needs a tokio runtime).
    pub async fn start() -> TestRelay {
        let relay = Relay::bind("127.0.0.1:0".parse().expect("loopback address"), RelayConfig::default())
            .await
            .expect("bind the test relay on 127.0.0.1");
        let addr = relay.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = relay
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        TestRelay { addr, stop: Some(stop), task }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// What a path looked like in a snapshot (symlinks are never followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A folder.
    Dir,
    /// A regular file: its contents and mode bits.
    File { data: Vec<u8>, mode: u32 },
    /// A symbolic link and its target.
    Link(PathBuf),
    /// Anything else (FIFO, socket, device).
    Other,
}

/// Every path below `base` (relative to it), without following symlinks,
/// skipping the subtree `skip`.
pub fn snapshot(base: &Path, skip: Option<&Path>) -> BTreeMap<PathBuf, Node> {
    fn walk(base: &Path, dir: &Path, skip: Option<&Path>, out: &mut BTreeMap<PathBuf, Node>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if Some(p.as_path()) == skip {
                continue;
            }
            let rel = p.strip_prefix(base).expect("below base").to_path_buf();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let node = if md.file_type().is_symlink() {
                Node::Link(std::fs::read_link(&p).unwrap_or_default())
            } else if md.is_dir() {
                walk(base, &p, skip, out);
                Node::Dir
            } else if md.is_file() {
                use std::os::unix::fs::PermissionsExt;
                Node::File { data: std::fs::read(&p).unwrap_or_default(), mode: md.permissions().mode() & 0o7777 }
            } else {
                Node::Other
            };
            out.insert(rel, node);
        }
    }
    let mut out = BTreeMap::new();
    walk(base, base, skip, &mut out);
    out
}

/// Differences between two snapshots, one line each.
fn diff(before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    let mut d = Vec::new();
    for (p, n) in after {
        match before.get(p) {
            None => d.push(format!("created {}: {}", p.display(), short(n))),
            Some(b) if b != n => d.push(format!("changed {}: {} -> {}", p.display(), short(b), short(n))),
            _ => {}
        }
    }
    for p in before.keys() {
        if !after.contains_key(p) {
            d.push(format!("removed {}", p.display()));
        }
    }
    d
}

fn short(n: &Node) -> String {
    match n {
        Node::File { data, mode } => format!("file {} bytes mode {mode:o}", data.len()),
        other => format!("{other:?}"),
    }
}

/// The directories of one test run and the relay.
///
/// Layout: `root/p/q/` (OUT's parent) holds only `out` (OUT, created by the
/// receiver unless the test makes it first) and `out-suffix/marker` (the
/// sibling a prefix check would confuse with OUT); `root/` also holds
/// `outside/` (a symlink target) and `victim` (a file a symlink points at).
/// OUT is two levels down so that `../../x` still lands in the snapshot. `aux/` holds HOME, XDG_CONFIG_HOME and the
/// receiver's working directory.
pub struct Scene {
    root: tempfile::TempDir,
    aux: tempfile::TempDir,
    /// The receiver's output directory.
    pub out: PathBuf,
    /// `OUT-suffix`, next to OUT.
    pub sibling: PathBuf,
    /// A folder outside OUT.
    pub outside: PathBuf,
    /// A file outside OUT.
    pub victim: PathBuf,
    relay: TestRelay,
    before: Option<(BTreeMap<PathBuf, Node>, BTreeMap<PathBuf, Node>)>,
    /// The receiver runs under this umask (through `/bin/sh`).
    pub umask: Option<u32>,
    /// The receiver runs in a mount namespace of its own where OUT is a tmpfs
    /// of this many KiB (needs `unshare`, as root; see [`Scene::can_mount`]).
    pub tmpfs_kib: Option<u64>,
}

/// Contents of [`Scene::victim`].
pub const VICTIM: &[u8] = b"victim: must never change\n";

impl Scene {
    /// Fresh directories and a fresh relay.
    pub async fn new() -> Scene {
        let root = tempfile::Builder::new().prefix("pqdrop-hostile-").tempdir().expect("temp dir");
        let aux = tempfile::Builder::new().prefix("pqdrop-hostile-aux-").tempdir().expect("temp dir");
        // OUT sits two levels down so that `../..` escapes still land in the
        // snapshotted temp root.
        let parent = root.path().join("p").join("q");
        std::fs::create_dir_all(&parent).expect("mkdir OUT's parent");
        let out = parent.join("out");
        let sibling = parent.join("out-suffix");
        let outside = root.path().join("outside");
        let victim = root.path().join("victim");
        std::fs::create_dir(&sibling).expect("mkdir sibling");
        std::fs::write(sibling.join("marker"), b"sibling\n").expect("write marker");
        std::fs::create_dir(&outside).expect("mkdir outside");
        std::fs::write(&victim, VICTIM).expect("write victim");
        for d in ["home", "config", "cwd"] {
            std::fs::create_dir(aux.path().join(d)).expect("mkdir aux");
        }
        Scene { root, aux, out, sibling, outside, victim, relay: TestRelay::start().await, before: None, umask: None, tmpfs_kib: None }
    }

    /// The temp root (OUT's grandparent's parent).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The relay's address.
    pub fn relay_addr(&self) -> SocketAddr {
        self.relay.addr()
    }

    /// Creates OUT (for tests that plant things in it first).
    pub fn make_out(&self) -> &Path {
        std::fs::create_dir_all(&self.out).expect("mkdir OUT");
        &self.out
    }

    fn snapshots(&self) -> (BTreeMap<PathBuf, Node>, BTreeMap<PathBuf, Node>) {
        (snapshot(self.root.path(), Some(&self.out)), snapshot(self.aux.path(), None))
    }

    /// Starts `pqdrop receive --relay ADDR --yes -o OUT [extra] CODE` and
    /// connects the hostile peer to it through the relay (handshake done).
    pub async fn start(&mut self, extra: &[&str]) -> (Receiver, Peer) {
        self.start_with(extra, None, CODE).await
    }

    /// Like [`Scene::start`], with the receiver's data segment limited
    /// (`ulimit -d`, KiB; on Linux this caps heap and private mappings) and the
    /// peer using `peer_code`.
    pub async fn start_with(&mut self, extra: &[&str], data_limit_kib: Option<u64>, peer_code: &str) -> (Receiver, Peer) {
        let mut rx = self.spawn(extra, data_limit_kib);
        match Peer::connect(self.relay.addr(), peer_code).await {
            Ok(p) => (rx, p),
            Err(e) => {
                rx.kill();
                let stderr = String::from_utf8_lossy(&rx.collect_stderr()).into_owned();
                panic!("the hostile peer could not reach the receiver: {e}\nreceiver stderr:\n{stderr}");
            }
        }
    }

    /// Whether this machine lets a test give the receiver a tmpfs of its own
    /// (root, with `unshare`).
    pub fn can_mount() -> bool {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The receiver's view of OUT, through its own mount namespace.
    pub fn out_seen_by(&self, rx: &Receiver) -> PathBuf {
        let pid = rx.child.as_ref().map(Child::id).unwrap_or_default();
        PathBuf::from(format!("/proc/{pid}/root")).join(self.out.strip_prefix("/").unwrap_or(&self.out))
    }

    /// Spawns the receiver only.
    pub fn spawn(&mut self, extra: &[&str], data_limit_kib: Option<u64>) -> Receiver {
        self.before = Some(self.snapshots());
        let bin = env!("CARGO_BIN_EXE_pqdrop");
        let relay = self.relay.addr().to_string();
        let out = self.out.to_str().expect("UTF-8 temp path").to_string();
        let mut args: Vec<String> = vec!["receive".into(), "--relay".into(), relay, "--yes".into(), "-o".into(), out.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(CODE.into());
        let mut setup = String::new();
        if let Some(kib) = data_limit_kib {
            setup += &format!("ulimit -d {kib} && ");
        }
        if let Some(m) = self.umask {
            setup += &format!("umask {m:03o} && ");
        }
        if let Some(kib) = self.tmpfs_kib {
            setup += &format!("mkdir -p '{out}' && mount -t tmpfs -o size={kib}k tmpfs '{out}' && ");
        }
        let mut cmd = if self.tmpfs_kib.is_some() {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "/bin/sh", "-c"]).arg(format!("{setup}exec \"$0\" \"$@\"")).arg(bin).args(&args);
            c
        } else if setup.is_empty() {
            let mut c = Command::new(bin);
            c.args(&args);
            c
        } else {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(format!("{setup}exec \"$0\" \"$@\"")).arg(bin).args(&args);
            c
        };
        cmd.current_dir(self.aux.path().join("cwd"))
            .env("HOME", self.aux.path().join("home"))
            .env("XDG_CONFIG_HOME", self.aux.path().join("config"))
            .env_remove("PQDROP_RELAY")
            .env_remove("PQDROP_CODE")
            .env_remove("PQDROP_LAN_BIND")
            .env_remove("PQDROP_LAN_PORT")
            .env_remove("RUST_LOG")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the pqdrop receiver");
        let pipe = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = pipe(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
        let stderr = pipe(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
        Receiver { child: Some(child), stdout: Some(stdout), stderr: Some(stderr), started: Instant::now() }
    }

    /// Drains the peer (to the receiver's Abort and the end of the stream)
    /// while waiting for the receiver to exit, then compares the file system
    /// outside OUT with the snapshot taken at start.
    pub async fn finish(&mut self, rx: Receiver, peer: Option<Peer>) -> Outcome {
        let mut peer = peer;
        let (abort, exit) = match peer.as_mut() {
            Some(p) => tokio::join!(p.drain(), rx.wait()),
            None => (None, rx.wait().await),
        };
        drop(peer);
        let (root_before, aux_before) = self.before.take().expect("finish after start");
        let (root_after, aux_after) = self.snapshots();
        let mut outside = diff(&root_before, &root_after);
        outside.extend(diff(&aux_before, &aux_after).into_iter().map(|l| format!("aux: {l}")));
        Outcome {
            exit,
            abort,
            outside,
            out: snapshot(&self.out, None),
            out_exists: self.out.exists(),
            secrets: vec![self.root.path().display().to_string(), self.aux.path().display().to_string()],
        }
    }
}

/// The receiver child process; killed on drop if still running.
pub struct Receiver {
    child: Option<Child>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    started: Instant,
}

/// How the receiver ended.
#[derive(Debug)]
pub struct Exit {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// From spawn to exit.
    pub elapsed: Duration,
    /// The receiver's peak resident memory (KiB): its `VmHWM`, read every
    /// 10 ms while it ran. (`wait4`'s `ru_maxrss` is no use here: Linux
    /// carries the spawning test process's own peak into it across `exec`.)
    pub peak_rss_kib: u64,
}

impl Receiver {
    fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
    }

    fn collect_stderr(&mut self) -> Vec<u8> {
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }

    /// Waits for the exit; kills it and panics (with its stderr) after
    /// [`CHILD_DEADLINE`].
    pub async fn wait(mut self) -> Exit {
        let status_file = format!("/proc/{}/status", self.child.as_ref().expect("running").id());
        let mut peak_rss_kib = 0;
        let status = loop {
            peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(&status_file).unwrap_or(0));
            let c = self.child.as_mut().expect("running");
            if let Some(s) = c.try_wait().expect("try_wait") {
                break s;
            }
            if self.started.elapsed() > CHILD_DEADLINE {
                self.kill();
                let stderr = String::from_utf8_lossy(&self.collect_stderr()).into_owned();
                panic!("the receiver did not exit within {CHILD_DEADLINE:?} (killed); stderr:\n{stderr}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let elapsed = self.started.elapsed();
        self.child = None;
        let stderr = self.collect_stderr();
        let stdout = self.stdout.take().and_then(|h| h.join().ok()).unwrap_or_default();
        Exit { code: status.code(), stderr, stdout, elapsed, peak_rss_kib }
    }
}

/// The `VmHWM` line (peak RSS, KiB) of a `/proc/PID/status` file.
fn vm_hwm_kib(status_file: &str) -> Option<u64> {
    let s = std::fs::read_to_string(status_file).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}
