//! Users with config folders of their own, for tests of identities,
//! contacts and sealed files between two or three people.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{exit, temp_dir, wait_all, Finished, Harness};

/// Longest wait for one command.
pub const WAIT: Duration = Duration::from_secs(120);

/// One user: a config folder of their own inside the harness.
pub struct User {
    pub config: tempfile::TempDir,
    /// `$PQDROP_PASSPHRASE_FILE` for this user's transfers.
    pub passphrase_file: Option<PathBuf>,
}

impl User {
    pub fn new() -> Self {
        User { config: temp_dir("pqdrop-user-"), passphrase_file: None }
    }

    pub fn env(&self) -> [(&'static str, std::ffi::OsString); 2] {
        let pf = self.passphrase_file.as_ref().map_or_else(std::ffi::OsString::new, |p| p.clone().into_os_string());
        [("XDG_CONFIG_HOME", self.config.path().into()), ("PQDROP_PASSPHRASE_FILE", pf)]
    }

    pub fn dir(&self) -> PathBuf {
        self.config.path().join("pqdrop")
    }

    pub fn run(&self, h: &Harness, args: &[&str]) -> Finished {
        let mut p = h.command(args[0]).args(&args[1..]).env("XDG_CONFIG_HOME", self.config.path()).without_terminal().spawn(args[0]);
        p.wait(WAIT)
    }

    pub fn ok(&self, h: &Harness, args: &[&str]) -> (String, String) {
        let f = self.run(h, args);
        f.assert_code(exit::OK);
        (f.stdout_text(), f.stderr.clone())
    }

    pub fn fingerprint(&self, h: &Harness) -> String {
        let (out, _) = self.ok(h, &["id", "show", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("id show --json");
        v["fingerprint"].as_str().expect("fingerprint").to_owned()
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// A code transfer of one small file from `a` to `b`, with extra arguments
/// on each side; both finish.
pub fn transfer(h: &Harness, a: &User, b: &User, code: &str, send_extra: &[&str], recv_extra: &[&str]) -> [Finished; 2] {
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("hello.txt");
    std::fs::write(&file, b"hello contact").unwrap();
    let mut s = h
        .send()
        .args(["--code", code])
        .args(send_extra)
        .arg(&file)
        .env(a.env()[0].0, &a.env()[0].1)
        .env(a.env()[1].0, &a.env()[1].1)
        .without_terminal()
        .spawn("sender");
    let mut r = h
        .receive()
        .args(["--yes", "-o", path_str(out.path())])
        .args(recv_extra)
        .arg(code)
        .env(b.env()[0].0, &b.env()[0].1)
        .env(b.env()[1].0, &b.env()[1].1)
        .without_terminal()
        .spawn("receiver");
    let done = wait_all([&mut s, &mut r], WAIT);
    if done.iter().all(|f| f.code() == Some(exit::OK)) {
        assert_eq!(std::fs::read(out.path().join("hello.txt")).unwrap(), b"hello contact");
    }
    done
}
