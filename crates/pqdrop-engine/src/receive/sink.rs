//! The receiver's filesystem side: writes validated entries under one output
//! directory without ever leaving it (PROTOCOL.md §8, what the receiver writes).
//!
//! Every operation walks from a handle on the output directory, one component
//! at a time, with `open_dir_nofollow` (openat with `O_NOFOLLOW`), and then acts
//! on a single name inside the last handle. No string prefix checks, and no
//! symlink inside the output directory is ever followed: a symlinked parent is
//! an error, a symlink at a file's name is only ever replaced (with consent),
//! never written through. A parent swapped for a symlink between calls is
//! caught by the next walk from the root; where a walk reuses a folder handle
//! it kept (below), or after [`OutputDir::begin_file`], a swap does not
//! matter: the handle is the directory itself, not its name.
//!
//! Data goes to `.NAME.pqdrop-partial` next to the target and only reaches the
//! target name by a rename after length and BLAKE3 verification, so a partial
//! file is never mistaken for a complete one. Names starting `.pqdrop` or
//! ending `.pqdrop-partial` are refused by [`SafePath::parse`], so a received
//! file can never clash with these state files.
//!
//! Entries arrive folder by folder, so each of the two threads that use the
//! folder (the logic thread checks names, the disk thread writes) keeps the
//! last folder it walked to open and starts there while the next entry is in
//! the same folder. That is safe because the receiver never removes or
//! renames a folder: the handle stays the folder it was walked to. A folder
//! this run created itself holds nothing the sender did not send, so checking
//! a name in it needs no lookup (a name the transfer uses twice is refused by
//! the protocol machine, and placing never replaces without consent).
//!
//! The API is synchronous; the engine calls it from a blocking thread.

use std::fs::{File, FileTimes};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, SystemTimeSpec};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::names::{SafePath, MAX_COMPONENT_BYTES, PARTIAL_SUFFIX, RESERVED_PREFIX};
use crate::receive::journal::{self, Journal};
use crate::{Error, Result};

/// How many `name (n).ext` candidates `--rename` tries before giving up.
const MAX_RENAME_ATTEMPTS: u32 = 10_000;

/// What to do when a file entry's target name is already taken by something
/// that is not the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Stop with [`Error::Exists`]; the existing file is left untouched.
    Refuse,
    /// Replace the existing file (or symlink) once the new one is verified.
    Overwrite,
    /// Write to the first free `name (n).ext` instead.
    Rename,
    /// Keep what exists; the sender is asked to skip those entries.
    Skip,
}

/// What [`OutputDir::probe_file`] found at a file entry's target.
// The hasher state (~2 KB) is held unboxed: a `Probe` is short-lived, one per
// file, and the engine hands the hasher straight back to `begin_file`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Probe {
    /// Nothing there: write from byte 0.
    Fresh,
    /// A partial temp file from an interrupted run: its length and the BLAKE3
    /// hasher state over exactly those bytes (so hashing can continue), and the
    /// hash of the prefix (for the resume proof).
    Partial {
        /// Bytes already present.
        len: u64,
        /// BLAKE3 of those bytes.
        prefix_hash: [u8; 32],
        /// Hasher state after those bytes; pass it back to
        /// [`OutputDir::begin_file`].
        hasher: blake3::Hasher,
    },
    /// The final file exists with the offered size: its BLAKE3 hash. Only if
    /// [`OutputDir::placed_earlier`] says this receiver put it there may it be
    /// claimed (and skipped if the sender confirms it); otherwise it is a
    /// conflict: call [`OutputDir::resolve_conflict`].
    Complete {
        /// BLAKE3 of the existing file.
        hash: [u8; 32],
        /// Its metadata stamp (inode, size, modification time), which the
        /// journal holds for a file written without hashing.
        stamp: [u8; 32],
    },
    /// The target exists and is different, and the policy allows going on:
    /// `renamed` is the new target under [`ConflictPolicy::Rename`], `None`
    /// under [`ConflictPolicy::Overwrite`] (then call
    /// [`FileWriter::finish`] with `overwrite = true`). Probe the renamed path
    /// again to pick up its partial from an earlier run.
    Conflict {
        /// The free name to write to instead, for `Rename`.
        renamed: Option<SafePath>,
    },
}

/// The output directory, held open as a capability; all writes are relative
/// to it.
///
/// The path given to [`OutputDir::open`] is the user's choice and may itself
/// be a symlink; nothing inside it is ever followed.
#[derive(Debug)]
pub struct OutputDir {
    root: Dir,
    path: PathBuf,
    policy: ConflictPolicy,
    /// What this receiver put in place in earlier runs of the transfer.
    journal: Mutex<Option<Journal>>,
    /// The last folder the checks (probe, create_dir) walked to.
    checked: Mutex<LastDir>,
    /// The last folder `begin_file` walked to.
    writing: Mutex<LastDir>,
}

/// A folder one thread walked to last, kept open.
#[derive(Debug, Default)]
struct LastDir {
    components: Vec<String>,
    dir: Option<Arc<Dir>>,
    /// This run created it (and everything in it).
    fresh: bool,
}

/// A folder reached by [`OutputDir::walk`].
struct Walked {
    dir: Arc<Dir>,
    fresh: bool,
}

/// Checks, without creating anything, that `path` can be an output folder:
/// absent (it will be created), or a folder this process may write to.
pub fn check_output_dir(path: &Path) -> Result<()> {
    let bad = |why| Err(Error::OutputDir { dir: path.to_path_buf(), why });
    match std::fs::metadata(path) {
        Ok(md) if !md.is_dir() => bad("it is not a folder"),
        Ok(_) => match rustix::fs::access(path, rustix::fs::Access::WRITE_OK) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::ROFS) => bad("it is on a read-only file system"),
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => bad("it is read-only for this user"),
            Err(e) => Err(Error::io(path, e.into())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Bytes available to this user in the file system that holds `path`.
pub fn free_space(path: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(|e| Error::io(path, e.into()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

impl OutputDir {
    /// Opens (creating if missing) the output directory at `path`.
    pub fn open(path: &Path, policy: ConflictPolicy) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let root = Dir::open_ambient_dir(path, ambient_authority()).map_err(|e| Error::io(path, e))?;
        Ok(OutputDir {
            root,
            path: path.to_path_buf(),
            policy,
            journal: Mutex::new(None),
            checked: Mutex::default(),
            writing: Mutex::default(),
        })
    }

    /// Starts (or continues) the resume journal of transfer `id` (see
    /// `journal.rs`). Without a journal, every existing complete file is
    /// somebody else's.
    pub fn start_journal(&self, id: &[u8; 32]) -> Result<()> {
        let j = Journal::open(&self.root, id).map_err(|e| Error::io(&self.path, e))?;
        if let Ok(mut slot) = self.journal.lock() {
            *slot = Some(j);
        }
        Ok(())
    }

    /// Whether an earlier run of this transfer put file `p` of `size` bytes,
    /// whose content hashes to `hash`, in place: only then may the receiver
    /// prove it has it.
    /// `stamp` is the file's metadata stamp ([`Probe::Complete`]), what the
    /// journal holds for a file that was written without hashing.
    pub fn placed_earlier(&self, p: &SafePath, size: u64, hash: &[u8; 32], stamp: &[u8; 32]) -> bool {
        self.journal.lock().ok().and_then(|j| j.as_ref().map(|j| j.placed_earlier(&journal::key(p, size), hash, stamp))).unwrap_or(false)
    }

    /// Whether the journal has a line for file `p` of `size` bytes at all.
    fn journal_mentions(&self, p: &SafePath, size: u64) -> bool {
        self.journal.lock().ok().and_then(|j| j.as_ref().map(|j| j.mentions(&journal::key(p, size)))).unwrap_or(false)
    }

    /// Records that file `p` was put in place; [`OutputDir::flush_journal`]
    /// writes it out.
    pub fn record_placed(&self, p: &SafePath, size: u64, hash: &[u8; 32]) {
        if let Ok(mut slot) = self.journal.lock() {
            if let Some(j) = slot.as_mut() {
                j.record(&journal::key(p, size), hash);
            }
        }
    }

    /// Writes the journal lines recorded since the last flush. A journal
    /// that cannot be written costs only a later resume (the files then
    /// count as existing), so the error is logged and the journal dropped.
    pub fn flush_journal(&self) {
        if let Ok(mut slot) = self.journal.lock() {
            if let Some(j) = slot.as_mut() {
                if let Err(e) = j.flush(&self.root) {
                    tracing::warn!(error = %e, "could not write the resume journal");
                    *slot = None;
                }
            }
        }
    }

    /// The transfer is complete: its journal goes.
    pub fn end_journal(&self) {
        let j = self.journal.lock().ok().and_then(|mut slot| slot.take());
        if let Some(j) = j {
            if let Err(e) = j.remove(&self.root) {
                tracing::warn!(error = %e, "could not delete the resume journal");
            }
        }
    }

    /// The policy given at open.
    pub fn policy(&self) -> ConflictPolicy {
        self.policy
    }

    /// The output directory as given by the user.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a directory entry (and missing parents) without following
    /// symlinks. A symlink or non-directory at any component is an
    /// [`Error::Hostile`]. An existing directory is fine.
    pub fn create_dir(&self, p: &SafePath) -> Result<()> {
        self.walk(&self.checked, p.components(), true, p)?;
        Ok(())
    }

    /// Looks at what exists for a file entry of `size` bytes, without writing
    /// anything, and applies the policy to a conflict: `Refuse` gives
    /// [`Error::Exists`], `Rename` picks the first free `name (n).ext`,
    /// `Overwrite` gives `Conflict { renamed: None }`. A directory at the
    /// target is an error under every policy but `Rename`.
    ///
    /// A partial longer than `size`, or a partial that is not a regular file,
    /// counts as stale: `Fresh` is returned and [`OutputDir::begin_file`]
    /// replaces it.
    pub fn probe_file(&self, p: &SafePath, size: u64) -> Result<Probe> {
        let Some(Walked { dir, fresh }) = self.walk(&self.checked, p.parent_components(), false, p)? else {
            return Ok(Probe::Fresh);
        };
        if fresh {
            return Ok(Probe::Fresh);
        }
        let name = p.file_name();
        match dir.symlink_metadata(name) {
            Ok(md) if md.is_file() && md.len() == size => {
                // Somebody else's file is a taken name: never read it (and a
                // big one would keep the user waiting for nothing).
                if !self.journal_mentions(p, size) {
                    return self.conflict_in(&dir, p);
                }
                let file = open_read_nofollow(&dir, name).map_err(|e| io_err(p, e))?;
                let (_, hasher) = hash_prefix(file, size).map_err(|e| io_err(p, e))?;
                return Ok(Probe::Complete { hash: *hasher.finalize().as_bytes(), stamp: journal::stamp(&md) });
            }
            Ok(_) => return self.conflict_in(&dir, p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(p, e)),
        }
        let temp = partial_name(name);
        match dir.symlink_metadata(&temp) {
            Ok(md) if md.is_file() && md.len() <= size => {
                let file = open_read_nofollow(&dir, &temp).map_err(|e| io_err(p, e))?;
                let (len, hasher) = hash_prefix(file, size).map_err(|e| io_err(p, e))?;
                Ok(Probe::Partial { len, prefix_hash: *hasher.finalize().as_bytes(), hasher })
            }
            Ok(_) => Ok(Probe::Fresh),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Probe::Fresh),
            Err(e) => Err(io_err(p, e)),
        }
    }

    /// Applies the policy to a target that is taken, for when the engine
    /// learns after a `Complete` probe that the existing file is a different
    /// one. Same outcomes as the conflict case of [`OutputDir::probe_file`].
    pub fn resolve_conflict(&self, p: &SafePath) -> Result<Probe> {
        match self.walk(&self.checked, p.parent_components(), false, p)? {
            Some(w) => self.conflict_in(&w.dir, p),
            None => Ok(Probe::Fresh),
        }
    }

    fn conflict_in(&self, dir: &Dir, p: &SafePath) -> Result<Probe> {
        match self.policy {
            ConflictPolicy::Refuse => Err(Error::Exists(p.display())),
            // The engine keeps it (Skip); nothing is written here.
            ConflictPolicy::Skip => Ok(Probe::Conflict { renamed: None }),
            ConflictPolicy::Overwrite => {
                let md = dir.symlink_metadata(p.file_name()).map_err(|e| io_err(p, e))?;
                if md.is_dir() {
                    return Err(is_a_directory(p));
                }
                Ok(Probe::Conflict { renamed: None })
            }
            ConflictPolicy::Rename => {
                for n in 1..=MAX_RENAME_ATTEMPTS {
                    let candidate = p.with_suffix(n);
                    match dir.symlink_metadata(candidate.file_name()) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Conflict { renamed: Some(candidate) }),
                        Err(e) => return Err(io_err(&candidate, e)),
                        Ok(_) => {}
                    }
                }
                Err(Error::Exists(p.display()))
            }
        }
    }

    /// Opens the temp file `.NAME.pqdrop-partial` in the parent directory
    /// (created as needed, never through a symlink).
    ///
    /// Removes the partial file of `p`, if any: for a sealed file, which
    /// cannot resume, what did not complete leaves nothing behind.
    pub fn remove_partial(&self, p: &SafePath) {
        if let Ok(Some(w)) = self.walk(&self.writing, p.parent_components(), false, p) {
            let _ = w.dir.remove_file(partial_name(p.file_name()));
        }
    }

    /// With `resume = Some((len, hasher))` (from [`Probe::Partial`]) the
    /// existing partial is opened without following symlinks, cut to `len`
    /// and appended to; the hasher continues from its state (if the bytes
    /// changed meanwhile, [`FileWriter::finish`] catches it). Otherwise any
    /// stale partial is removed and a new one created exclusively.
    pub fn begin_file(&self, p: &SafePath, size: u64, resume: Option<(u64, blake3::Hasher)>) -> Result<FileWriter> {
        let dir = self.walk(&self.writing, p.parent_components(), true, p)?.ok_or_else(|| io_err(p, io::ErrorKind::NotFound.into()))?.dir;
        let name = p.file_name();
        let temp = partial_name(name);
        let (file, written, hasher) = match resume {
            Some((len, hasher)) => {
                if len > size {
                    return Err(Error::PeerViolation(format!(
                        "resume offset {len} is beyond the announced size {size} of {}",
                        p.display()
                    )));
                }
                let md = dir.symlink_metadata(&temp).map_err(|e| io_err(p, e))?;
                if !md.is_file() || md.len() < len {
                    return Err(io_err(p, io::Error::other("the partial file changed since it was probed")));
                }
                let mut options = OpenOptions::new();
                options.write(true).follow(FollowSymlinks::No);
                let mut file = dir.open_with(&temp, &options).map_err(|e| io_err(p, e))?.into_std();
                if !file.metadata().map_err(|e| io_err(p, e))?.is_file() {
                    return Err(io_err(p, io::Error::other("the partial file is not a regular file")));
                }
                file.set_len(len).map_err(|e| io_err(p, e))?;
                file.seek(SeekFrom::Start(len)).map_err(|e| io_err(p, e))?;
                (file, len, hasher)
            }
            None => {
                let mut options = OpenOptions::new();
                options.write(true).create_new(true).follow(FollowSymlinks::No);
                #[cfg(unix)]
                {
                    // Private until verified; finish() sets the final mode.
                    use cap_std::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                // A stale partial (or a link in its place) is removed, then
                // the file created again; usually there is none.
                let file = match dir.open_with(&temp, &options) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        dir.remove_file_or_symlink(&temp).map_err(|e| io_err(p, e))?;
                        dir.open_with(&temp, &options)
                    }
                    other => other,
                };
                (file.map_err(|e| io_err(p, e))?.into_std(), 0, blake3::Hasher::new())
            }
        };
        Ok(FileWriter {
            dir,
            temp,
            name: name.to_owned(),
            path: p.clone(),
            display: p.display(),
            file,
            size,
            written,
            hasher: Some(hasher),
        })
    }

    /// Sets a directory entry's modification time, without following
    /// symlinks. Call it after everything inside was written (writing changes
    /// it again). Best effort: callers may ignore the error.
    pub fn set_dir_times(&self, p: &SafePath, mtime: i64) -> Result<()> {
        let dir = self.walk(&self.checked, p.parent_components(), false, p)?.ok_or_else(|| io_err(p, io::ErrorKind::NotFound.into()))?.dir;
        let md = dir.symlink_metadata(p.file_name()).map_err(|e| io_err(p, e))?;
        if !md.is_dir() {
            return Err(io_err(p, io::ErrorKind::NotADirectory.into()));
        }
        let Some(time) = system_time(mtime) else {
            return Ok(());
        };
        let spec = SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(time));
        dir.set_symlink_times(p.file_name(), None, Some(spec)).map_err(|e| io_err(p, e))
    }

    /// Opens the directory `components` below the root, one component at a
    /// time without following symlinks, creating missing ones when `create`.
    /// `Ok(None)` when something is missing and `create` is false.
    ///
    /// `last` is the calling thread's last walk: a walk to the same folder
    /// starts, and ends, there.
    fn walk(&self, last: &Mutex<LastDir>, components: &[String], create: bool, p: &SafePath) -> Result<Option<Walked>> {
        let mut last = last.lock().map_err(|_| Error::Bug("a thread failed while walking the output folder".into()))?;
        if let Some(dir) = last.dir.as_ref().filter(|_| last.components == components) {
            return Ok(Some(Walked { dir: Arc::clone(dir), fresh: last.fresh }));
        }
        let mut current = self.root.try_clone().map_err(|e| Error::io(&self.path, e))?;
        let mut fresh = false;
        for name in components {
            let next = match current.open_dir_nofollow(name) {
                Ok(dir) => {
                    fresh = false;
                    dir
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    // Created concurrently, or a dangling symlink: the open
                    // below tells which.
                    fresh = match current.create_dir(name) {
                        Ok(()) => true,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                        Err(e) => return Err(io_err(p, e)),
                    };
                    current.open_dir_nofollow(name).map_err(|e| in_the_way(&current, name, e, p))?
                }
                Err(e) => return Err(in_the_way(&current, name, e, p)),
            };
            current = next;
        }
        let dir = Arc::new(current);
        *last = LastDir { components: components.to_vec(), dir: Some(Arc::clone(&dir)), fresh };
        Ok(Some(Walked { dir, fresh }))
    }
}

/// Turns a failed `open_dir_nofollow` into a clear error: symlinks and
/// non-directories in the way are refused as hostile.
fn in_the_way(dir: &Dir, name: &str, error: io::Error, p: &SafePath) -> Error {
    match dir.symlink_metadata(name) {
        Ok(md) if md.is_symlink() => Error::Hostile {
            name: p.display(),
            reason: "a symbolic link is in the way inside the output directory; pqdrop never follows links there",
        },
        Ok(md) if !md.is_dir() => {
            Error::Hostile { name: p.display(), reason: "something that is not a directory is in the way of a parent directory" }
        }
        _ => io_err(p, error),
    }
}

/// Writes one file's bytes to its partial file and, once verified, moves it
/// into place.
///
/// Dropping a writer without [`FileWriter::finish`] (an interrupted transfer)
/// leaves the partial file on disk: a later run probes it as
/// [`Probe::Partial`] and resumes. It never becomes the target by itself.
#[derive(Debug)]
pub struct FileWriter {
    /// The parent directory as opened by `begin_file`; later renames use this
    /// handle, so a parent swapped for a symlink afterwards is irrelevant.
    dir: Arc<Dir>,
    temp: String,
    name: String,
    /// The entry's path, for `name (n).ext` when the policy is Rename.
    path: SafePath,
    display: String,
    file: File,
    size: u64,
    written: u64,
    /// `None` once [`FileWriter::without_hash`] said no hash is needed.
    hasher: Option<blake3::Hasher>,
}

impl FileWriter {
    /// Stops hashing this file: the sender sent it whole under
    /// UNHASHED_FRESH, so there is no hash to check it against and the
    /// record layer already authenticated it (PROTOCOL.md §8). A resumed
    /// file keeps hashing (its FileEnd hash covers the earlier bytes too).
    pub fn without_hash(mut self) -> Self {
        if self.written == 0 {
            self.hasher = None;
        }
        self
    }

    /// Appends bytes and hashes them. Refuses to go past the announced size
    /// with [`Error::PeerViolation`], writing nothing of that chunk.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let total = self
            .written
            .checked_add(len)
            .filter(|&total| total <= self.size)
            .ok_or_else(|| Error::PeerViolation(format!("sender sent more bytes than announced for {}", self.display)))?;
        self.file.write_all(data).map_err(|e| Error::io(&self.display, e))?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(data);
        }
        self.written = total;
        Ok(())
    }

    /// Bytes in the partial file so far (including resumed ones).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The entry's path.
    pub fn path(&self) -> &SafePath {
        &self.path
    }

    /// The announced size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies the length and the BLAKE3 hash (constant-time compare), then
    /// sets the mode (0o755 if `executable` else 0o644) and mtime on the open
    /// handle (best effort: some filesystems refuse), and renames the partial
    /// into place through the parent directory handle. No fsync here: callers
    /// batch it.
    ///
    /// On a length or hash mismatch the partial is deleted and
    /// [`Error::Integrity`] returned. If the target exists and `overwrite` is
    /// false, [`Error::Exists`] (the verified partial stays for a later run);
    /// with `overwrite` an existing file or symlink is replaced (the link
    /// itself, never its target). A directory at the target is an error.
    /// Returns what was placed, and where.
    pub fn finish(self, expected: Option<&[u8; 32]>, executable: bool, mtime: i64, policy: ConflictPolicy) -> Result<Placed> {
        self.finish_with(expected, executable, mtime, policy, &mut |_| {})
    }

    /// [`FileWriter::finish`], calling `before_place` with what the resume
    /// journal should record once the file is verified and just before it
    /// takes its name, so a journal line is never missing for a file that
    /// is in place.
    pub fn finish_with(
        self,
        expected: Option<&[u8; 32]>,
        executable: bool,
        mtime: i64,
        policy: ConflictPolicy,
        before_place: &mut dyn FnMut(&[u8; 32]),
    ) -> Result<Placed> {
        let FileWriter { dir, temp, name, path, display: shown, file, size, written, hasher } = self;
        let ours = hasher.map(|h| h.finalize());
        // blake3::Hash == [u8; 32] is constant-time. A hash to check with
        // nothing hashed is refused too (it cannot be confirmed).
        let differs = match (expected, ours) {
            (Some(e), Some(h)) => h != *e,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if written != size || differs {
            drop(file);
            if let Err(e) = dir.remove_file(&temp) {
                tracing::warn!(file = %shown, error = %e, "could not delete a corrupt partial file");
            }
            return Err(Error::Integrity(shown));
        }
        set_mode(&file, executable, &shown);
        if let Some(time) = system_time(mtime) {
            if let Err(e) = file.set_times(FileTimes::new().set_modified(time)) {
                tracing::debug!(file = %shown, error = %e, "could not set the modification time");
            }
        }
        // What the journal keeps: the content hash, or for a file written
        // without one, a stamp of the inode as it is now.
        let journal = match ours {
            Some(h) => *h.as_bytes(),
            None => journal::stamp(&file.metadata().map_err(|e| Error::io(&shown, e))?),
        };
        drop(file);
        before_place(&journal);
        match policy {
            ConflictPolicy::Overwrite => {
                if dir.symlink_metadata(&name).is_ok_and(|md| md.is_dir()) {
                    return Err(is_a_directory_named(&shown));
                }
                dir.rename(&temp, &dir, &name).map_err(|e| Error::io(&shown, e))?;
                Ok(Placed { path, size, shown, renamed: None, hash: journal })
            }
            ConflictPolicy::Refuse | ConflictPolicy::Skip => {
                place_new(&dir, &temp, &name, &shown)?;
                Ok(Placed { path, size, shown, renamed: None, hash: journal })
            }
            // The free name is chosen here, at the moment of placing, so two
            // entries can never be given the same one.
            ConflictPolicy::Rename => {
                for n in 0..=MAX_RENAME_ATTEMPTS {
                    let candidate = if n == 0 { name.clone() } else { path.with_suffix(n).file_name().to_owned() };
                    match place_new(&dir, &temp, &candidate, &shown) {
                        Err(Error::Exists(_)) => continue,
                        Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::IsADirectory => continue,
                        Err(e) => return Err(e),
                        Ok(()) => {
                            let renamed = (n > 0).then(|| path.with_suffix(n).display());
                            return Ok(Placed { path, size, shown, renamed, hash: journal });
                        }
                    }
                }
                Err(Error::Exists(shown))
            }
        }
    }
}

/// A file [`FileWriter::finish`] put in place.
#[derive(Debug)]
pub struct Placed {
    /// The entry's path and size.
    pub path: SafePath,
    /// Its announced size.
    pub size: u64,
    /// The entry's path as shown to the user (escaped).
    pub shown: String,
    /// The escaped path it was placed under, when that is a new name (`Rename`).
    pub renamed: Option<String>,
    /// What the resume journal records for it: its BLAKE3, or its metadata
    /// stamp when it was written without hashing.
    pub hash: [u8; 32],
}

/// Puts the verified temp file in place under `name` unless something is
/// already there. A hard link is an atomic "create unless it exists": it fails
/// if anything (even a symlink) appeared at the name since the check.
fn place_new(dir: &Dir, temp: &str, name: &str, shown: &str) -> Result<()> {
    // One atomic step where the kernel can: rename unless the name is taken.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    match rustix::fs::renameat_with(dir, temp, dir, name, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::EXIST) => {
            return Err(match dir.symlink_metadata(name) {
                Ok(md) if md.is_dir() => is_a_directory_named(shown),
                _ => Error::Exists(shown.to_owned()),
            })
        }
        // Not supported by this file system or kernel: link, then unlink.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {}
        Err(e) => return Err(Error::io(shown, e.into())),
    }
    match dir.symlink_metadata(name) {
        Ok(md) if md.is_dir() => return Err(is_a_directory_named(shown)),
        Ok(_) => return Err(Error::Exists(shown.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(shown, e)),
    }
    match dir.hard_link(temp, dir, name) {
        Ok(()) => {
            if let Err(e) = dir.remove_file(temp) {
                tracing::warn!(file = %shown, error = %e, "could not remove the partial file after linking it into place");
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::Exists(shown.to_owned())),
        Err(_) => {
            // Filesystems without hard links (FAT, some network shares):
            // check once more, then rename.
            match dir.symlink_metadata(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => dir.rename(temp, dir, name).map_err(|e| Error::io(shown, e)),
                Err(e) => Err(Error::io(shown, e)),
                Ok(_) => Err(Error::Exists(shown.to_owned())),
            }
        }
    }
}

/// Sets 0o755 / 0o644 on the open handle; best effort.
#[cfg(unix)]
fn set_mode(file: &File, executable: bool, shown: &str) {
    use std::os::unix::fs::PermissionsExt;
    // The receiver's umask applies, as with cp, tar and scp: under 077 a
    // received file is private.
    let mode = (if executable { 0o777 } else { 0o666 }) & !umask();
    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(mode)) {
        tracing::debug!(file = %shown, error = %e, "could not set the file mode");
    }
}

/// The process's umask, read once. Linux reports it in `/proc/self/status`
/// (reading it with `umask(2)` would briefly change it for every thread);
/// elsewhere the common default 022 is assumed.
#[cfg(unix)]
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok())))
            .unwrap_or(0o022)
    })
}

/// Windows has no executable bit; files keep their default attributes.
#[cfg(not(unix))]
fn set_mode(_file: &File, _executable: bool, _shown: &str) {}

/// The temp name for `name`: `.NAME.pqdrop-partial`, or, when that would be
/// longer than a component may be, `.pqdrop-HASH.pqdrop-partial`.
fn partial_name(name: &str) -> String {
    let plain = format!(".{name}{PARTIAL_SUFFIX}");
    if plain.len() <= MAX_COMPONENT_BYTES {
        return plain;
    }
    let hash = blake3::hash(name.as_bytes());
    let hex: String = hash.as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{RESERVED_PREFIX}-{hex}{PARTIAL_SUFFIX}")
}

/// Opens `name` in `dir` for reading, refusing symlinks and anything but a
/// regular file (a FIFO would block).
fn open_read_nofollow(dir: &Dir, name: &str) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No);
    let file = dir.open_with(name, &options)?.into_std();
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Hashes at most `limit` bytes from the start of `file`; returns how many
/// were hashed and the hasher state after them.
fn hash_prefix(file: File, limit: u64) -> io::Result<(u64, blake3::Hasher)> {
    let mut hasher = blake3::Hasher::new();
    let mut reader = file.take(limit);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
    Ok((total, hasher))
}

/// Unix seconds to `SystemTime`; `None` when not representable.
fn system_time(secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

fn io_err(p: &SafePath, e: io::Error) -> Error {
    Error::io(p.display(), e)
}

fn is_a_directory(p: &SafePath) -> Error {
    is_a_directory_named(&p.display())
}

fn is_a_directory_named(display: &str) -> Error {
    Error::io(display, io::Error::new(io::ErrorKind::IsADirectory, "a directory exists where the sender wants to write a file"))
}
