//! The resume journal: the files this receiver itself put in place during a
//! transfer that has not finished yet.
//!
//! A receiver proves only what it wrote itself (PROTOCOL.md §8, "Resume"): a
//! partial file, or a complete file listed here. Any other file with the
//! offered name is somebody else's and a conflict for the user to resolve, so
//! a sender can never learn whether a file of the receiver's has a content it
//! guesses. The journal is `.pqdrop-resume-HEX` in the output folder (a
//! reserved name no entry can take), mode 0600, one line per placed file:
//! `KEY HASH\n`, KEY = the first 16 bytes of BLAKE3(path || size) and HASH =
//! the file's BLAKE3, both in lowercase hex. HEX names the transfer by its
//! offer, so running the same send again finds it. It is deleted when the
//! transfer completes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

use crate::names::SafePath;

/// Journal bytes read back at most (about 170,000 files). Files beyond it are
/// still received; after an interruption they count as existing files.
const MAX_READ: u64 = 16 * 1024 * 1024;
const LINE: usize = 32 + 1 + 64 + 1;

/// The key of a file entry: its path and size.
pub(crate) fn key(path: &SafePath, size: u64) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("pqdrop resume journal v1 entry");
    for c in path.components() {
        h.update(&(c.len() as u64).to_le_bytes());
        h.update(c.as_bytes());
    }
    h.update(&size.to_le_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

/// The stamp of a file this receiver placed without hashing it: its inode,
/// size and modification time, so a file replaced or rewritten since no
/// longer matches.
pub(crate) fn stamp(md: &impl MetadataStamp) -> [u8; 32] {
    let (ino, size, sec, nsec) = md.stamp_fields();
    let mut h = blake3::Hasher::new_derive_key("pqdrop resume journal v1 stamp");
    h.update(&ino.to_le_bytes());
    h.update(&size.to_le_bytes());
    h.update(&sec.to_le_bytes());
    h.update(&nsec.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The metadata a [`stamp`] covers, from std's or cap-std's metadata.
pub(crate) trait MetadataStamp {
    /// (inode, size, mtime seconds, mtime nanoseconds).
    fn stamp_fields(&self) -> (u64, u64, i64, u32);
}

fn since_epoch(t: io::Result<std::time::SystemTime>) -> (i64, u32) {
    match t.ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
        Some(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
        None => (0, 0),
    }
}

impl MetadataStamp for std::fs::Metadata {
    fn stamp_fields(&self) -> (u64, u64, i64, u32) {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(self);
        #[cfg(not(unix))]
        let ino = 0;
        let (sec, nsec) = since_epoch(self.modified());
        (ino, self.len(), sec, nsec)
    }
}

impl MetadataStamp for cap_std::fs::Metadata {
    fn stamp_fields(&self) -> (u64, u64, i64, u32) {
        #[cfg(unix)]
        let ino = cap_std::fs::MetadataExt::ino(self);
        #[cfg(not(unix))]
        let ino = 0;
        let (sec, nsec) = since_epoch(self.modified().map(|t| t.into_std()));
        (ino, self.len(), sec, nsec)
    }
}

/// The open journal of one transfer.
#[derive(Debug)]
pub(crate) struct Journal {
    name: String,
    /// Opened at the first flush, so a transfer that places nothing leaves
    /// nothing behind.
    file: Option<File>,
    /// Lines recorded and not yet written.
    pending: Vec<u8>,
    earlier: HashMap<[u8; 16], [u8; 32]>,
}

impl Journal {
    /// Reads the journal of the transfer `id` in `root`, if an earlier run
    /// left one. Never follows a symlink.
    pub fn open(root: &Dir, id: &[u8; 32]) -> io::Result<Journal> {
        let name = format!(".pqdrop-resume-{}", hex::encode(&id[..8]));
        let mut earlier = HashMap::new();
        let mut read = OpenOptions::new();
        read.read(true).follow(FollowSymlinks::No);
        match root.open_with(&name, &read) {
            Ok(f) => {
                let f = f.into_std();
                if f.metadata()?.is_file() {
                    let mut text = Vec::new();
                    f.take(MAX_READ).read_to_end(&mut text)?;
                    for line in text.chunks_exact(LINE) {
                        if let Some((k, h)) = parse(line) {
                            earlier.insert(k, h);
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Journal { name, file: None, pending: Vec::new(), earlier })
    }

    /// Whether an earlier run recorded anything for this entry.
    pub fn mentions(&self, key: &[u8; 16]) -> bool {
        self.earlier.contains_key(key)
    }

    /// Whether an earlier run of this transfer put this very file in place.
    /// A line holds the file's BLAKE3 or, for a file written without hashing,
    /// its [`stamp`]; either matching what is on disk now says it is ours.
    pub fn placed_earlier(&self, key: &[u8; 16], hash: &[u8; 32], stamp: &[u8; 32]) -> bool {
        self.earlier.get(key).is_some_and(|v| v == hash || v == stamp)
    }

    /// Records a file just put in place; [`Journal::flush`] writes it out.
    pub fn record(&mut self, key: &[u8; 16], hash: &[u8; 32]) {
        let mut hexed = [0u8; 64];
        // Both lengths are exact, so encoding cannot fail.
        let _ = hex::encode_to_slice(key, &mut hexed[..32]);
        self.pending.extend_from_slice(&hexed[..32]);
        self.pending.push(b' ');
        let _ = hex::encode_to_slice(hash, &mut hexed);
        self.pending.extend_from_slice(&hexed);
        self.pending.push(b'\n');
    }

    /// Writes the lines recorded since the last flush, in one write. The
    /// disk stage flushes after every record's worth of work, so a receiver
    /// killed at any moment loses at most the lines of files placed during
    /// the record it was writing (they then count as taken names).
    pub fn flush(&mut self, root: &Dir) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            none => {
                let mut write = OpenOptions::new();
                write.append(true).create(true).follow(FollowSymlinks::No);
                #[cfg(unix)]
                {
                    use cap_std::fs::OpenOptionsExt;
                    write.mode(0o600);
                }
                none.insert(root.open_with(&self.name, &write)?.into_std())
            }
        };
        let r = file.write_all(&self.pending);
        self.pending.clear();
        r
    }

    /// The transfer completed: the journal goes.
    pub fn remove(self, root: &Dir) -> io::Result<()> {
        drop(self.file);
        match root.remove_file(&self.name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

fn parse(line: &[u8]) -> Option<([u8; 16], [u8; 32])> {
    let line = std::str::from_utf8(line).ok()?;
    let (k, rest) = line.split_once(' ')?;
    let h = rest.strip_suffix('\n')?;
    let mut key = [0u8; 16];
    let mut hash = [0u8; 32];
    hex::decode_to_slice(k, &mut key).ok()?;
    hex::decode_to_slice(h, &mut hash).ok()?;
    Some((key, hash))
}
