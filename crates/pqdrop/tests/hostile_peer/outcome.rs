//! [`Outcome`]: what the receiver did, with assertions, and whole runs.

use super::*;

/// Bytes that must never reach a terminal raw from a hostile name: C0
/// controls but `\n` (ESC, BEL, CR, …), DEL, C1 controls (UTF-8 `C2 80..9F`
/// or a lone `9B`), bidi controls, zero-width and invisible characters.
pub fn raw_controls(s: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, &b) in s.iter().enumerate() {
        if (b < 0x20 && b != b'\n') || b == 0x7F {
            found.push(format!("byte {b:#04x} at {i}"));
        }
    }
    for chunk in s.utf8_chunks() {
        for ch in chunk.valid().chars() {
            let c = u32::from(ch);
            if (0x80..=0x9F).contains(&c) || matches!(c, 0x061C | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2069 | 0xFEFF) {
                found.push(format!("U+{c:04X}"));
            }
        }
        for b in chunk.invalid() {
            found.push(format!("invalid UTF-8 byte {b:#04x}"));
        }
    }
    found
}

/// How a run ended and what it left behind.
#[derive(Debug)]
pub struct Outcome {
    /// The receiver's exit.
    pub exit: Exit,
    /// The Abort reason the receiver sent to the peer, if any.
    pub abort: Option<String>,
    /// Changes outside OUT (must be empty).
    pub outside: Vec<String>,
    /// What OUT holds now (relative paths).
    pub out: BTreeMap<PathBuf, Node>,
    /// Whether OUT exists.
    pub out_exists: bool,
    pub(super) secrets: Vec<String>,
}

impl Outcome {
    /// stderr, lossy.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.exit.stderr).into_owned()
    }

    fn context(&self) -> String {
        format!(
            "exit {:?} after {:?}\nstderr:\n{}\nabort sent to the peer: {:?}\nOUT: {:?}",
            self.exit.code,
            self.exit.elapsed,
            self.stderr(),
            self.abort,
            self.out.keys().collect::<Vec<_>>()
        )
    }

    /// The exit code is `code`.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        assert_eq!(self.exit.code, Some(code), "wrong exit code\n{}", self.context());
        self
    }

    /// What must hold after every run, whatever the outcome: no panic, no
    /// secret, no raw control character on stderr, nothing changed outside
    /// OUT, and no local path or secret in the abort reason sent to the peer.
    #[track_caller]
    pub fn assert_clean(&self) -> &Self {
        self.clean_except(None)
    }

    /// [`Outcome::assert_clean`], where the abort reason may echo the
    /// sender's own entry name `sent` (escaped), which may hold a local path
    /// the sender chose.
    #[track_caller]
    fn clean_except(&self, sent: Option<&[u8]>) -> &Self {
        let err = self.stderr();
        assert!(!err.contains("panicked"), "the receiver panicked\n{}", self.context());
        for w in SECRET_WORDS {
            assert!(!err.to_lowercase().contains(w), "stderr shows the code word {w:?}\n{}", self.context());
            assert!(
                !String::from_utf8_lossy(&self.exit.stdout).to_lowercase().contains(w),
                "stdout shows the code word {w:?}\n{}",
                self.context()
            );
        }
        let raw = raw_controls(&self.exit.stderr);
        assert!(raw.is_empty(), "stderr holds raw control characters {raw:?}\n{}", self.context());
        assert!(self.outside.is_empty(), "the receiver changed things outside OUT: {:#?}\n{}", self.outside, self.context());
        if let Some(a) = &self.abort {
            let a = match sent {
                Some(n) => a.replace(&pqdrop_engine::names::escape(n), "<name>"),
                None => a.clone(),
            };
            for s in self.secrets.iter().map(String::as_str).chain(SECRET_WORDS) {
                assert!(!a.contains(s), "the abort reason sent to the sender contains {s:?}: {a:?}");
            }
        }
        self
    }

    /// stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn assert_mentions(&self, needle: &str) -> &Self {
        assert!(self.stderr().to_lowercase().contains(&needle.to_lowercase()), "stderr does not mention {needle:?}\n{}", self.context());
        self
    }

    /// stderr shows `raw` escaped exactly as `pqdrop_engine::names::escape` does.
    #[track_caller]
    pub fn assert_names(&self, raw: &[u8]) -> &Self {
        let shown = pqdrop_engine::names::escape(raw);
        assert!(self.stderr().contains(&shown), "stderr does not show the escaped name {shown:?}\n{}", self.context());
        self
    }

    /// The usual refusal: exit `code`, clean, and the escaped name shown.
    #[track_caller]
    pub fn assert_refused(&self, code: i32, name: Option<&[u8]>) -> &Self {
        self.assert_exit(code).clean_except(name);
        if let Some(n) = name {
            self.assert_names(n);
        }
        self
    }

    /// OUT holds no regular file (nothing was written).
    #[track_caller]
    pub fn assert_no_files_in_out(&self) -> &Self {
        let files: Vec<_> = self.out.iter().filter(|(_, n)| matches!(n, Node::File { .. })).map(|(p, _)| p).collect();
        assert!(files.is_empty(), "files were written into OUT: {files:?}\n{}", self.context());
        self
    }

    /// The node at `rel` inside OUT.
    pub fn out_node(&self, rel: &str) -> Option<&Node> {
        self.out.get(Path::new(rel))
    }
}

/// Offers `entries` (preview = their paths), sends the manifest, and, should
/// the receiver accept it, the honest data. Returns the outcome.
pub async fn manifest_run(extra: &[&str], entries: &[Entry]) -> Outcome {
    let mut scene = Scene::new().await;
    manifest_run_in(&mut scene, extra, entries).await
}

pub async fn manifest_run_in(scene: &mut Scene, extra: &[&str], entries: &[Entry]) -> Outcome {
    let (rx, mut peer) = scene.start(extra).await;
    peer.open_manifest(entries).await.expect("offer and manifest");
    peer.follow_through(entries).await;
    scene.finish(rx, Some(peer)).await
}

/// Each raw path, as a single file entry, is refused with exit 8 and shown escaped.
pub async fn refuse_each_name(names: &[&[u8]]) {
    for raw in names {
        eprintln!("case {:?}", pqdrop_engine::names::escape(raw));
        let o = manifest_run(&[], &[file(0, raw, 3)]).await;
        o.assert_refused(exit::PROTOCOL, Some(raw)).assert_no_files_in_out();
    }
}
