//! The sender's view of what it sends: a walk of the given paths into entries.
//!
//! The walk only stats; nothing is hashed before the first byte moves (hashes
//! are computed while streaming). Symlinks and special files are skipped with a
//! warning, and so are names the receiver would refuse (see [`walk`]).
//! Entries are sorted per folder so runs are reproducible (which resume relies
//! on).

use std::path::{Path, PathBuf};

use std::time::UNIX_EPOCH;

use pqdrop_proto::transfer::{Entry, EntryKind, MAX_PATH, MAX_PREVIEW};

use crate::names::{escape, CollisionSet, SafePath, DEFAULT_MAX_ENTRIES};
use crate::{Error, Result};

/// One entry and where it lives on disk, in 28 bytes: a walk of 1,000,000
/// entries must fit the sender's memory budget (64 MiB in all), so the path
/// lives in [`Source`]'s shared buffer, the index is the position in
/// [`Source::entries`], and the fields are packed to 4-byte alignment.
/// [`Source::entry`] gives the [`Entry`] to send.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
pub struct SourceEntry {
    size: u64,
    mtime: u64,
    /// The relative path: `Source::paths[at..at + len]`.
    at: u32,
    root: u32,
    len: u16,
    /// Bit 0: folder; bit 1: executable.
    flags: u8,
}

impl SourceEntry {
    /// Index into [`Source::roots`] of the folder the relative path is under.
    pub fn root(&self) -> usize {
        self.root as usize
    }

    /// Whether this is a file (otherwise a folder).
    pub fn is_file(&self) -> bool {
        self.flags & 1 == 0
    }
}

/// Everything the sender will send.
#[derive(Debug, Default)]
pub struct Source {
    /// The parent folders of the given paths.
    pub roots: Vec<PathBuf>,
    /// For each root, the top entry's name as sent and as it is on disk:
    /// they differ when the user named a symlink (it is sent under its own
    /// name, with its target's content).
    pub tops: Vec<(Vec<u8>, Vec<u8>)>,
    /// Entries in send order.
    pub entries: Vec<SourceEntry>,
    /// The entries' relative paths, one after the other.
    paths: Vec<u8>,
    /// Number of files.
    pub files: u64,
    /// Number of folders.
    pub dirs: u64,
    /// Total file bytes.
    pub bytes: u64,
    /// Top-level names for the offer preview.
    pub preview: Vec<Vec<u8>>,
    /// Warnings: skipped symlinks and special files, and entries the receiver
    /// would refuse (unsafe or unportable names, clashing names).
    pub warnings: Vec<String>,
}

impl Source {
    /// Entry `i` as it is announced.
    pub fn entry(&self, i: usize) -> Entry {
        let e = &self.entries[i];
        Entry {
            index: i as u64,
            kind: if e.is_file() { EntryKind::File } else { EntryKind::Dir },
            path: self.rel(e).to_vec(),
            size: e.size,
            executable: e.flags & 2 != 0,
            mtime: e.mtime,
        }
    }

    /// An entry's relative path as sent.
    pub fn rel(&self, e: &SourceEntry) -> &[u8] {
        let at = e.at as usize;
        &self.paths[at..at + usize::from(e.len)]
    }

    /// Absolute path of an entry.
    pub fn path_of(&self, e: &SourceEntry) -> PathBuf {
        self.roots[e.root()].join(bytes_to_path(&self.disk_rel(e)))
    }

    /// An entry's path under its root on disk (its sent path, with the top
    /// name the user gave replaced by the one on disk).
    pub fn disk_rel<'a>(&'a self, e: &'a SourceEntry) -> std::borrow::Cow<'a, [u8]> {
        let rel = self.rel(e);
        match self.tops.get(e.root()) {
            Some((sent, disk)) if sent != disk && rel.starts_with(sent) && matches!(rel.get(sent.len()), None | Some(b'/')) => {
                let mut p = disk.clone();
                p.extend_from_slice(&rel[sent.len()..]);
                std::borrow::Cow::Owned(p)
            }
            _ => std::borrow::Cow::Borrowed(rel),
        }
    }
}

/// Opens the files of a walk for reading through directory handles, from
/// the top of each argument and one component at a time, never following a
/// symlink: a folder that a local process swaps for a symlink after the walk
/// is refused, not followed out of the tree. The handle of the last folder is
/// kept, since the walk lists a folder's files together.
#[derive(Debug, Default)]
pub struct TreeOpener {
    roots: Vec<Option<cap_std::fs::Dir>>,
    /// (root, parent path) of `dir`.
    last: Option<(usize, Vec<u8>, cap_std::fs::Dir)>,
}

impl TreeOpener {
    /// Opens `e`'s file for reading (not following a symlink, not blocking on
    /// a FIFO).
    pub fn open(&mut self, src: &Source, e: &SourceEntry) -> Result<std::fs::File> {
        use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
        let path = src.path_of(e);
        let changed = |err: std::io::Error| {
            let err = if matches!(err.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) {
                std::io::Error::other("a folder on the way was replaced while sending (it is not followed); run the command again")
            } else {
                err
            };
            Error::io(&path, err)
        };
        let rel = src.disk_rel(e);
        let rel = &rel[..];
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&rel[..0], rel),
        };
        let root = e.root();
        let cached = matches!(&self.last, Some((r, p, _)) if *r == root && p.as_slice() == parent);
        if !cached {
            if self.roots.len() <= root {
                self.roots.resize_with(root + 1, || None);
            }
            if self.roots[root].is_none() {
                let dir = cap_std::fs::Dir::open_ambient_dir(&src.roots[root], cap_std::ambient_authority())
                    .map_err(|err| Error::io(&src.roots[root], err))?;
                self.roots[root] = Some(dir);
            }
            let mut dir = self.roots[root]
                .as_ref()
                .ok_or_else(|| Error::io(&path, std::io::ErrorKind::NotFound.into()))?
                .try_clone()
                .map_err(changed)?;
            for c in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                dir = dir.open_dir_nofollow(bytes_to_path(c)).map_err(changed)?;
            }
            self.last = Some((root, parent.to_vec(), dir));
        }
        let dir = &self.last.as_ref().ok_or_else(|| Error::io(&path, std::io::ErrorKind::NotFound.into()))?.2;
        let mut o = cap_std::fs::OpenOptions::new();
        o.read(true).follow(FollowSymlinks::No);
        #[cfg(unix)]
        {
            use cap_std::fs::OpenOptionsExt;
            o.custom_flags(libc::O_NONBLOCK);
        }
        Ok(dir.open_with(bytes_to_path(name), &o).map_err(changed)?.into_std())
    }
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}
#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

#[cfg(unix)]
fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}
#[cfg(not(unix))]
fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    name.to_string_lossy().as_bytes().to_vec()
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}
#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

fn mtime(m: &std::fs::Metadata) -> u64 {
    m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0)
}

/// Walks `paths` into a [`Source`].
///
/// Every entry's relative path is checked the way the receiver checks it
/// ([`SafePath::parse`], then a [`CollisionSet`] over its folder's names), so
/// that one unportable name cannot abort the transfer on the other side: an
/// entry the receiver would refuse is skipped with a warning instead, a folder
/// together with everything in it. This covers two arguments with the same
/// name (`a/x` and `b/x`): the second is skipped. Counts, bytes and the
/// preview describe only the entries kept.
///
/// Fails on an I/O error, on a path without a name (such as `/`), and when
/// more than [`DEFAULT_MAX_ENTRIES`] entries would be sent (the receiver
/// refuses such offers).
pub fn walk(paths: &[PathBuf]) -> Result<Source> {
    // No cap inside the set: the entry count is checked in `add`, with a
    // message that fits the sender.
    let mut w = Walker { src: Source::default() };
    // The arguments' own names, checked against each other.
    let mut tops = CollisionSet::new(usize::MAX);
    for p in paths {
        // A path the user named is followed even if it is a symlink: they chose it.
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        let canon = std::fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
        let (Some(name), Some(parent)) = (canon.file_name(), canon.parent()) else {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "cannot send a path without a name, such as /"),
            ));
        };
        let disk_name = name_bytes(name);
        // A symlink the user named is sent under its own name (never silently
        // under its target's), with the target's content.
        let is_link = std::fs::symlink_metadata(p).map(|m| m.file_type().is_symlink()).unwrap_or(false);
        let name = match p.file_name() {
            Some(own) if is_link => name_bytes(own),
            _ => disk_name.clone(),
        };
        let root = w.src.roots.len();
        w.src.roots.push(parent.to_path_buf());
        w.src.tops.push((name.clone(), disk_name));
        // Only names actually sent go into the preview: when it lists fewer
        // than MAX_PREVIEW names the receiver holds every entry to it.
        if w.add(root, p, name.clone(), &meta, &mut tops, true)? && w.src.preview.len() < MAX_PREVIEW {
            w.src.preview.push(name);
        }
    }
    if w.src.entries.is_empty() {
        let why = w.src.warnings.first().cloned().unwrap_or_else(|| "nothing to send".into());
        let first = paths.first().cloned().unwrap_or_default();
        return Err(Error::io(first, std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("nothing left to send ({why})"))));
    }
    Ok(w.src)
}

/// The walk's state: what is kept so far.
struct Walker {
    src: Source,
}

impl Walker {
    /// Adds `abs` (and, for a folder, everything in it) under the relative path
    /// `rel`. Returns whether the entry itself was kept; `top` marks a path the
    /// user named. `siblings` holds the names kept so far in the same folder
    /// (or among the arguments): a walk of a real tree can only clash there,
    /// by case or normalisation, so one folder's names are held at a time,
    /// not the whole transfer's.
    fn add(
        &mut self,
        root: usize,
        abs: &Path,
        rel: Vec<u8>,
        meta: &std::fs::Metadata,
        siblings: &mut CollisionSet,
        top: bool,
    ) -> Result<bool> {
        let ft = meta.file_type();
        if ft.is_symlink() {
            self.warn(format!("skipping symlink {}", shown_path(abs)));
            return Ok(false);
        }
        let is_dir = ft.is_dir();
        if !is_dir && !ft.is_file() {
            self.warn(format!("skipping special file {}", shown_path(abs)));
            return Ok(false);
        }
        if let Err(why) = check_name(&rel, is_dir, siblings) {
            let what = if is_dir { "folder " } else { "" };
            let inside = if is_dir { " and everything in it" } else { "" };
            let msg = match why {
                Refusal::Name(reason) => {
                    format!("skipping {what}{}{inside}: {reason} (the receiver would refuse it)", escape(&rel))
                }
                Refusal::Collision(reason) if top => format!(
                    "skipping {what}{}{inside}: its name {} clashes with an earlier argument: {reason} (the receiver would refuse it)",
                    shown_path(abs),
                    escape(&rel)
                ),
                Refusal::Collision(reason) => format!(
                    "skipping {what}{}{inside}: it clashes with an earlier entry: {reason} (the receiver would refuse it)",
                    escape(&rel)
                ),
            };
            self.warn(msg);
            return Ok(false);
        }
        if self.src.entries.len() >= DEFAULT_MAX_ENTRIES {
            return Err(Error::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("more than {DEFAULT_MAX_ENTRIES} files and folders: the receiver refuses transfers this large; send them in parts"),
            )));
        }
        let at = u32::try_from(self.src.paths.len()).map_err(|_| {
            Error::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the paths of these files and folders add up to more than 4 GiB; send them in parts",
            ))
        })?;
        self.src.paths.extend_from_slice(&rel);
        // check_name capped the path at MAX_PATH (4096) bytes.
        let len = u16::try_from(rel.len()).map_err(|_| Error::Bug("a checked path is longer than MAX_PATH".into()))?;
        let root32 = u32::try_from(root).map_err(|_| Error::Bug("more than 2^32 arguments".into()))?;
        if !is_dir {
            self.src.files += 1;
            self.src.bytes += meta.len();
            let flags = if is_executable(meta) { 2 } else { 0 };
            self.src.entries.push(SourceEntry { size: meta.len(), mtime: mtime(meta), at, root: root32, len, flags });
            return Ok(true);
        }
        self.src.dirs += 1;
        self.src.entries.push(SourceEntry { size: 0, mtime: mtime(meta), at, root: root32, len, flags: 1 });
        let mut children: Vec<_> =
            std::fs::read_dir(abs).map_err(|e| Error::io(abs, e))?.collect::<std::io::Result<_>>().map_err(|e| Error::io(abs, e))?;
        children.sort_by_key(|c| c.file_name());
        let mut names = CollisionSet::new(usize::MAX);
        for c in children {
            let cpath = c.path();
            let cmeta = std::fs::symlink_metadata(&cpath).map_err(|e| Error::io(&cpath, e))?;
            let mut crel = rel.clone();
            crel.push(b'/');
            crel.extend_from_slice(&name_bytes(&c.file_name()));
            self.add(root, &cpath, crel, &cmeta, &mut names, false)?;
        }
        Ok(true)
    }

    fn warn(&mut self, msg: String) {
        self.src.warnings.push(msg);
    }
}

/// Checks `rel` as the receiver will and, if it passes, records its last
/// component in `siblings` so that later names in the same folder are
/// checked against it. (The receiver checks whole paths over the whole
/// transfer; on a walk, paths can only clash where their last components
/// do, so checking each folder's names against each other finds the same.)
fn check_name(rel: &[u8], is_dir: bool, siblings: &mut CollisionSet) -> std::result::Result<(), Refusal> {
    if rel.len() > MAX_PATH {
        // SafePath refuses this too; kept so the wire limit holds on its own.
        return Err(Refusal::Name(format!("path longer than {MAX_PATH} bytes")));
    }
    let p = SafePath::parse(rel).map_err(|e| Refusal::Name(reason_of(e)))?;
    let name = SafePath::parse(p.file_name().as_bytes()).map_err(|e| Refusal::Name(reason_of(e)))?;
    siblings.insert(&name, is_dir).map_err(|e| Refusal::Collision(reason_of(e)))
}

/// Why an entry is skipped.
enum Refusal {
    /// The name itself is unsafe or unportable.
    Name(String),
    /// The name clashes with an earlier entry.
    Collision(String),
}

/// The reason text of a refusal from [`crate::names`].
fn reason_of(e: pqdrop_proto::Error) -> String {
    match e {
        pqdrop_proto::Error::Hostile { reason, .. } => reason.to_owned(),
        other => other.to_string(),
    }
}

/// A local path, escaped for a terminal.
fn shown_path(p: &Path) -> String {
    escape(&name_bytes(p.as_os_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_stays_small() {
        // 1,000,000 entries must fit the sender's 64 MiB with their paths.
        assert_eq!(std::mem::size_of::<SourceEntry>(), 28);
    }

    #[test]
    fn walks_a_tree_in_order_and_skips_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(top.join("b/empty")).unwrap();
        std::fs::write(top.join("a.txt"), b"hello").unwrap();
        std::fs::write(top.join("b/c.bin"), [0u8; 10]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", top.join("link")).unwrap();
        let s = walk(&[top]).unwrap();
        let names: Vec<_> = s.entries.iter().map(|e| String::from_utf8(s.rel(e).to_vec()).unwrap()).collect();
        assert_eq!(names, ["top", "top/a.txt", "top/b", "top/b/c.bin", "top/b/empty"]);
        assert_eq!((s.files, s.dirs, s.bytes), (2, 3, 15));
        assert_eq!(s.preview, vec![b"top".to_vec()]);
        #[cfg(unix)]
        assert!(s.warnings[0].contains("symlink"));
        assert_eq!(s.path_of(&s.entries[3]), d.path().join("top/b/c.bin"));
    }

    fn paths(s: &Source) -> Vec<String> {
        s.entries.iter().map(|e| String::from_utf8(s.rel(e).to_vec()).unwrap()).collect()
    }

    /// Checks `s` the way the receiver does: consecutive indexes, counts and
    /// bytes equal to the entries, every top-level name in a short preview,
    /// every name safe and no collisions.
    fn assert_receivable(s: &Source) {
        let mut seen = CollisionSet::new(DEFAULT_MAX_ENTRIES);
        let (mut files, mut dirs, mut bytes) = (0, 0, 0);
        for i in 0..s.entries.len() {
            let e = s.entry(i);
            assert_eq!(e.index, i as u64);
            match e.kind {
                EntryKind::File => {
                    files += 1;
                    bytes += e.size;
                }
                EntryKind::Dir => dirs += 1,
            }
            let top = e.path.split(|&b| b == b'/').next().unwrap();
            assert!(s.preview.len() >= MAX_PREVIEW || s.preview.iter().any(|n| n == top), "{} not in the preview", escape(top));
            let p = SafePath::parse(&e.path).unwrap();
            seen.insert(&p, e.kind == EntryKind::Dir).unwrap();
        }
        assert_eq!((s.files, s.dirs, s.bytes), (files, dirs, bytes));
    }

    #[test]
    fn names_the_receiver_refuses_are_skipped_with_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        std::fs::write(top.join("a.txt"), b"hello").unwrap();
        std::fs::write(top.join("Screenshot 12:30.png"), [1u8; 100]).unwrap();
        std::fs::write(top.join("aux.c"), [2u8; 7]).unwrap();
        std::fs::write(top.join("sub/b.txt"), b"abc").unwrap();
        std::fs::write(top.join("sub/x.pqdrop-partial"), b"state").unwrap();
        let loose = d.path().join("notes 1:2.txt");
        std::fs::write(&loose, b"loose").unwrap();
        let s = walk(&[top, loose]).unwrap();
        assert_eq!(paths(&s), ["top", "top/a.txt", "top/sub", "top/sub/b.txt"]);
        assert_eq!((s.files, s.dirs, s.bytes), (2, 2, 8));
        assert_eq!(s.preview, vec![b"top".to_vec()], "a skipped argument is not previewed");
        assert_receivable(&s);
        assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
        assert_eq!(
            s.warnings[0],
            "skipping top/Screenshot 12:30.png: ':' in name (drive letter or alternate data stream) (the receiver would refuse it)"
        );
        assert_eq!(s.warnings[1], "skipping top/aux.c: Windows device name (the receiver would refuse it)");
        assert!(s.warnings[2].starts_with("skipping top/sub/x.pqdrop-partial: name reserved"), "{}", s.warnings[2]);
        assert!(s.warnings[3].starts_with("skipping notes 1:2.txt: ':' in name"), "{}", s.warnings[3]);
    }

    #[test]
    fn a_folder_with_a_bad_name_is_skipped_with_everything_in_it() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(top.join("bad./deeper")).unwrap();
        std::fs::write(top.join("bad./f.txt"), b"12345").unwrap();
        std::fs::write(top.join("bad./deeper/g:h"), b"12345").unwrap();
        std::fs::create_dir_all(top.join("CON")).unwrap();
        std::fs::write(top.join("CON/f.txt"), b"12345").unwrap();
        std::fs::create_dir_all(top.join("good")).unwrap();
        std::fs::write(top.join("good/f.txt"), b"xy").unwrap();
        let s = walk(&[top]).unwrap();
        assert_eq!(paths(&s), ["top", "top/good", "top/good/f.txt"]);
        assert_eq!((s.files, s.dirs, s.bytes), (1, 2, 2));
        assert_receivable(&s);
        assert_eq!(s.warnings.len(), 2, "one warning per folder: {:?}", s.warnings);
        assert_eq!(s.warnings[0], "skipping folder top/CON and everything in it: Windows device name (the receiver would refuse it)");
        assert!(s.warnings[1].starts_with("skipping folder top/bad. and everything in it: trailing dot"), "{}", s.warnings[1]);
    }

    #[test]
    fn arguments_with_the_same_name_keep_the_first() {
        let d = tempfile::tempdir().unwrap();
        for (dir, name) in [("a", "x"), ("b", "x"), ("c", "X"), ("e", "y")] {
            std::fs::create_dir_all(d.path().join(dir).join(name).join("in")).unwrap();
            std::fs::write(d.path().join(dir).join(name).join("in/f"), dir).unwrap();
        }
        std::fs::create_dir_all(d.path().join("f")).unwrap();
        std::fs::write(d.path().join("f/y"), b"file named like a folder").unwrap();
        let args: Vec<_> = ["a/x", "b/x", "c/X", "e/y", "f/y", "a/x"].iter().map(|a| d.path().join(a)).collect();
        let s = walk(&args).unwrap();
        assert_eq!(paths(&s), ["x", "x/in", "x/in/f", "y", "y/in", "y/in/f"]);
        assert_eq!(s.entries[2].root(), 0);
        assert_eq!(s.path_of(&s.entries[2]), d.path().join("a/x/in/f"));
        assert_eq!(s.path_of(&s.entries[5]), d.path().join("e/y/in/f"));
        assert_eq!((s.files, s.dirs, s.bytes), (2, 4, 2));
        assert_eq!(s.preview, vec![b"x".to_vec(), b"y".to_vec()]);
        assert_receivable(&s);
        assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
        let b = escape(&name_bytes(d.path().join("b/x").as_os_str()));
        assert_eq!(
            s.warnings[0],
            format!(
                "skipping folder {b} and everything in it: its name x clashes with an earlier argument: duplicate entry (the receiver would refuse it)"
            )
        );
        assert!(s.warnings[1].contains("only in letter case"), "{}", s.warnings[1]);
        assert!(s.warnings[2].contains("a file and a directory have the same name"), "{}", s.warnings[2]);
        assert!(s.warnings[3].contains("duplicate entry"), "{}", s.warnings[3]);
    }

    #[test]
    fn names_differing_only_in_case_or_normalisation_keep_the_first() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(&top).unwrap();
        for name in ["README", "Readme", "cafe\u{301}", "caf\u{e9}"] {
            std::fs::write(top.join(name), name).unwrap();
        }
        std::fs::create_dir_all(top.join("Dir/in")).unwrap();
        std::fs::create_dir_all(top.join("dir/in")).unwrap();
        if std::fs::read_dir(&top).unwrap().count() != 6 {
            return; // a case- or normalisation-insensitive file system: nothing to test
        }
        let s = walk(&[top]).unwrap();
        // Sorted by bytes: "Dir" < "README" < "Readme" < "cafe\u{301}" < "caf\u{e9}" < "dir".
        assert_eq!(paths(&s), ["top", "top/Dir", "top/Dir/in", "top/README", "top/cafe\u{301}"]);
        assert_receivable(&s);
        assert_eq!(s.warnings.len(), 3, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with("skipping top/Readme: it clashes with an earlier entry: differs"), "{}", s.warnings[0]);
        assert!(s.warnings[1].starts_with("skipping top/caf\u{e9}: it clashes"), "{}", s.warnings[1]);
        assert!(s.warnings[2].starts_with("skipping folder top/dir and everything in it: it clashes"), "{}", s.warnings[2]);
    }

    #[cfg(unix)]
    #[test]
    fn the_tree_opener_never_follows_a_swapped_folder_or_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let tree = d.path().join("tree");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(tree.join("sub/f"), b"inside").expect("write");
        std::fs::write(outside.join("f"), b"SECRET").expect("write");
        let src = walk(std::slice::from_ref(&tree)).expect("walk");
        let e = src.entries.iter().find(|e| src.rel(e) == b"tree/sub/f").expect("entry");
        let mut data = String::new();
        std::io::Read::read_to_string(&mut TreeOpener::default().open(&src, e).expect("open"), &mut data).expect("read");
        assert_eq!(data, "inside");
        // The folder swapped for a symlink out of the tree after the walk.
        std::fs::rename(tree.join("sub"), tree.join("sub.orig")).expect("rename");
        std::os::unix::fs::symlink(&outside, tree.join("sub")).expect("symlink");
        let err = TreeOpener::default().open(&src, e).expect_err("a swapped folder is not followed");
        assert!(err.to_string().contains("replaced while sending"), "{err}");
        // The file itself swapped for a symlink.
        std::fs::remove_file(tree.join("sub")).expect("unlink");
        std::fs::rename(tree.join("sub.orig"), tree.join("sub")).expect("rename back");
        std::fs::remove_file(tree.join("sub/f")).expect("rm");
        std::os::unix::fs::symlink(outside.join("f"), tree.join("sub/f")).expect("symlink");
        assert!(TreeOpener::default().open(&src, e).is_err(), "a swapped file is not followed");
        // A FIFO opens at once (no writer needed) and is then no regular file.
        std::fs::remove_file(tree.join("sub/f")).expect("rm");
        let made = std::process::Command::new("mkfifo").arg(tree.join("sub/f")).status().map(|s| s.success()).unwrap_or(false);
        if made {
            let f = TreeOpener::default().open(&src, e).expect("open a fifo without blocking");
            assert!(!f.metadata().expect("metadata").is_file());
        }
    }
}
