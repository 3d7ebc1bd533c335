//! The sender's view of what it sends: a walk of the given paths into entries.
//!
//! The walk only stats; nothing is hashed before the first byte moves (hashes
//! are computed while streaming). Symlinks and special files are skipped with a
//! warning. Entries are sorted per folder so runs are reproducible (which
//! resume relies on).

use std::path::{Path, PathBuf};

use std::time::UNIX_EPOCH;

use pqdrop_proto::transfer::{Entry, EntryKind, MAX_PATH, MAX_PREVIEW};

use crate::{Error, Result};

/// One entry and where it lives on disk.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// The entry as announced.
    pub entry: Entry,
    /// Index into [`Source::roots`] of the folder the relative path is under.
    pub root: usize,
}

/// Everything the sender will send.
#[derive(Debug, Default)]
pub struct Source {
    /// The parent folders of the given paths.
    pub roots: Vec<PathBuf>,
    /// Entries in send order.
    pub entries: Vec<SourceEntry>,
    /// Number of files.
    pub files: u64,
    /// Number of folders.
    pub dirs: u64,
    /// Total file bytes.
    pub bytes: u64,
    /// Top-level names for the offer preview.
    pub preview: Vec<Vec<u8>>,
    /// Warnings (skipped symlinks and special files).
    pub warnings: Vec<String>,
}

impl Source {
    /// Absolute path of an entry.
    pub fn path_of(&self, e: &SourceEntry) -> PathBuf {
        self.roots[e.root].join(bytes_to_path(&e.entry.path))
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
pub fn walk(paths: &[PathBuf]) -> Result<Source> {
    let mut src = Source::default();
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
        let name = name_bytes(name);
        let root = src.roots.len();
        src.roots.push(parent.to_path_buf());
        if src.preview.len() < MAX_PREVIEW {
            src.preview.push(name.clone());
        }
        add(&mut src, root, p, name, &meta)?;
    }
    Ok(src)
}

fn add(src: &mut Source, root: usize, abs: &Path, rel: Vec<u8>, meta: &std::fs::Metadata) -> Result<()> {
    let ft = meta.file_type();
    if rel.len() > MAX_PATH {
        src.warnings.push(format!("skipping {}: path longer than {MAX_PATH} bytes", abs.display()));
        return Ok(());
    }
    if ft.is_symlink() {
        src.warnings.push(format!("skipping symlink {}", abs.display()));
        return Ok(());
    }
    let index = src.entries.len() as u64;
    if ft.is_file() {
        src.files += 1;
        src.bytes += meta.len();
        src.entries.push(SourceEntry {
            entry: Entry { index, kind: EntryKind::File, path: rel, size: meta.len(), executable: is_executable(meta), mtime: mtime(meta) },
            root,
        });
        return Ok(());
    }
    if !ft.is_dir() {
        src.warnings.push(format!("skipping special file {}", abs.display()));
        return Ok(());
    }
    src.dirs += 1;
    src.entries.push(SourceEntry {
        entry: Entry { index, kind: EntryKind::Dir, path: rel.clone(), size: 0, executable: false, mtime: mtime(meta) },
        root,
    });
    let mut children: Vec<_> =
        std::fs::read_dir(abs).map_err(|e| Error::io(abs, e))?.collect::<std::io::Result<_>>().map_err(|e| Error::io(abs, e))?;
    children.sort_by_key(|c| c.file_name());
    for c in children {
        let cpath = c.path();
        let cmeta = std::fs::symlink_metadata(&cpath).map_err(|e| Error::io(&cpath, e))?;
        let mut crel = rel.clone();
        crel.push(b'/');
        crel.extend_from_slice(&name_bytes(&c.file_name()));
        add(src, root, &cpath, crel, &cmeta)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let names: Vec<_> = s.entries.iter().map(|e| String::from_utf8(e.entry.path.clone()).unwrap()).collect();
        assert_eq!(names, ["top", "top/a.txt", "top/b", "top/b/c.bin", "top/b/empty"]);
        assert_eq!((s.files, s.dirs, s.bytes), (2, 3, 15));
        assert_eq!(s.preview, vec![b"top".to_vec()]);
        #[cfg(unix)]
        assert!(s.warnings[0].contains("symlink"));
        assert_eq!(s.path_of(&s.entries[3]), d.path().join("top/b/c.bin"));
    }
}
