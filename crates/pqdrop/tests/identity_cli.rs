//! `pqdrop id` through the real binary, each test with its own HOME: init,
//! show, export and import, the passphrase, the file's permissions, damage
//! and replacement, and agreement with `keys derive`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Home { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn identity(&self) -> PathBuf {
        self.config().join("pqdrop").join("identity")
    }

    /// Runs `pqdrop ARGS` in this HOME, with `stdin`, in a session of its
    /// own (`setsid`), so no controlling terminal is there to ask on.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new("setsid")
            .arg("--wait")
            .arg(env!("CARGO_BIN_EXE_pqdrop"))
            .args(args)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.config())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn setsid pqdrop (util-linux)");
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(stdin);
        }
        child.wait_with_output().expect("wait")
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> (String, String) {
        let o = self.run(args, stdin);
        let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
        assert!(o.status.success(), "pqdrop {args:?} failed ({:?}):\n{err}", o.status);
        (out, err)
    }

    fn fails(&self, args: &[&str], stdin: &[u8]) -> String {
        let o = self.run(args, stdin);
        assert!(!o.status.success(), "pqdrop {args:?} should have failed");
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn show(&self, extra: &[&str]) -> Value {
        let mut args = vec!["id", "show", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.ok(&args, b"").0).expect("JSON")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn init_without_a_terminal_keeps_a_private_identity_and_says_it_has_no_passphrase() {
    let h = Home::new();
    let (_, err) = h.ok(&["id", "init"], b"");
    assert!(err.contains("without one"), "{err}");
    assert_eq!(mode(&h.identity()), 0o600);
    assert_eq!(mode(h.identity().parent().unwrap()), 0o700);
    assert_eq!(std::fs::metadata(h.identity()).unwrap().len(), 100);
    let v = h.show(&[]);
    assert_eq!(v["variant"], "enclave");
    assert_eq!(v["passphrase"], false);
    for k in ["seed_exchange_public", "io_exchange_public"] {
        let s = v[k].as_str().unwrap();
        assert!(s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{k}: {s}");
    }
    assert_eq!(v["io_kem_public"].as_str().unwrap().len(), 2 * 1184);
    // The exported seed gives the same public keys through `keys derive`.
    let (hexed, _) = h.ok(&["id", "export", "--format", "hex"], b"");
    let (derived, _) = h.ok(&["keys", "derive", "--variant", "enclave", "--json"], hexed.as_bytes());
    let d: Value = serde_json::from_str(&derived).unwrap();
    assert_eq!(d["seed_exchange_public"], v["seed_exchange_public"]);
    assert_eq!(d["io_exchange_public"], v["io_exchange_public"]);
    // A second init changes nothing.
    let before = std::fs::read(h.identity()).unwrap();
    let err = h.fails(&["id", "init"], b"");
    assert!(err.contains("exists already") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(h.identity()).unwrap(), before);
}

#[test]
fn a_recovery_phrase_restores_the_same_identity_elsewhere() {
    let a = Home::new();
    a.ok(&["id", "init", "--no-passphrase"], b"");
    let (phrase, _) = a.ok(&["id", "export"], b"");
    assert_eq!(phrase.split_whitespace().count(), 24);
    let b = Home::new();
    let (_, err) = b.ok(&["id", "import", "--no-passphrase"], phrase.as_bytes());
    let fa = a.show(&[])["fingerprint"].clone();
    assert!(err.contains(fa.as_str().unwrap()), "{err}");
    assert_eq!(b.show(&[]), {
        let mut v = a.show(&[]);
        v["file"] = b.show(&[])["file"].clone();
        v
    });
    // Hex works too, and a word out of place is named, with nothing written.
    let c = Home::new();
    let (hexed, _) = a.ok(&["id", "export", "--format", "hex"], b"");
    c.ok(&["id", "import", "--no-passphrase"], hexed.as_bytes());
    assert_eq!(c.show(&[])["fingerprint"], fa);
    let d = Home::new();
    let mut words: Vec<&str> = phrase.split_whitespace().collect();
    words[6] = "notaword";
    let err = d.fails(&["id", "import", "--no-passphrase"], words.join(" ").as_bytes());
    assert!(err.contains("word 7"), "{err}");
    assert!(!err.contains("notaword"), "errors never quote the phrase: {err}");
    assert!(!d.identity().exists());
}

#[test]
fn a_passphrase_protects_the_seed_at_rest() {
    let h = Home::new();
    let pass = h.write("pass", "correct horse battery staple\n");
    let wrong = h.write("wrong", "correct horse battery stapler\n");
    let pass = pass.to_str().unwrap();
    h.ok(&["id", "init", "--passphrase-file", pass], b"");
    let file = std::fs::read(h.identity()).unwrap();
    let (hexed, _) = h.ok(&["id", "export", "--format", "hex", "--passphrase-file", pass], b"");
    let seed = hex::decode(hexed.trim()).unwrap();
    assert!(!file.windows(seed.len()).any(|w| w == seed), "the seed is not in the file in clear");
    assert_eq!(h.show(&["--passphrase-file", pass])["passphrase"], true);
    let err = h.fails(&["id", "show"], b"");
    assert!(err.contains("protected by a passphrase") && err.contains("--passphrase-file"), "{err}");
    let err = h.fails(&["id", "show", "--passphrase-file", wrong.to_str().unwrap()], b"");
    assert!(err.contains("wrong passphrase"), "{err}");
}

#[test]
fn a_damaged_identity_is_refused_and_force_keeps_the_old_file() {
    let h = Home::new();
    h.ok(&["id", "init", "--no-passphrase"], b"");
    let first = h.show(&[])["fingerprint"].clone();
    let mut bytes = std::fs::read(h.identity()).unwrap();
    bytes[60] ^= 1;
    std::fs::write(h.identity(), &bytes).unwrap();
    let err = h.fails(&["id", "show"], b"");
    assert!(err.contains("damaged") && err.contains("pqdrop id import"), "{err}");
    std::fs::write(h.identity(), &bytes[..50]).unwrap();
    assert!(h.fails(&["id", "show"], b"").contains("damaged"));
    // --force replaces it and keeps what was there.
    let (_, err) = h.ok(&["id", "init", "--no-passphrase", "--force"], b"");
    assert!(err.contains("kept as"), "{err}");
    assert_ne!(h.show(&[])["fingerprint"], first);
    let kept: Vec<_> = std::fs::read_dir(h.identity().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("identity.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(h.identity().with_file_name(&kept[0])).unwrap(), &bytes[..50]);
}

#[test]
fn a_config_folder_others_can_enter_is_made_private() {
    let h = Home::new();
    let dir = h.config().join("pqdrop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_, err) = h.ok(&["id", "init", "--no-passphrase"], b"");
    assert!(err.contains("private"), "{err}");
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn at_a_terminal_init_asks_twice_for_a_passphrase_without_echo() {
    use common::terminal::{shell_quote, Terminal};
    let h = Home::new();
    let line = format!("exec {} id init", shell_quote(env!("CARGO_BIN_EXE_pqdrop")));
    let config = h.config();
    let envs: [(&str, &std::ffi::OsStr); 2] = [("HOME", h.dir.path().as_os_str()), ("XDG_CONFIG_HOME", config.as_os_str())];
    let mut t = Terminal::spawn(&line, &envs, &[], std::time::Duration::from_secs(60));
    for prompt in ["Passphrase for your identity", "The same passphrase again"] {
        t.wait_for(prompt, 1);
        t.type_text("tty-secret-42\r");
    }
    let (code, shown) = t.finish();
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("Made a new identity"), "{shown}");
    assert!(!shown.contains("tty-secret-42"), "the passphrase was echoed:\n{shown}");
    let pass = h.write("pass", "tty-secret-42\n");
    assert_eq!(h.show(&["--passphrase-file", pass.to_str().unwrap()])["passphrase"], true);
}

#[test]
fn an_empty_passphrase_file_is_refused_rather_than_taken_for_no_passphrase() {
    let h = Home::new();
    let empty = h.write("empty", "\n");
    let err = h.fails(&["id", "init", "--passphrase-file", empty.to_str().unwrap()], b"");
    assert!(err.contains("--no-passphrase"), "{err}");
    assert!(!h.identity().exists());
    let leftovers: Vec<_> = std::fs::read_dir(h.identity().parent().unwrap()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
