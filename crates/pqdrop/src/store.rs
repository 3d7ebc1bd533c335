//! The user's files in the per-user config folder (`$XDG_CONFIG_HOME/pqdrop`
//! or `~/.config/pqdrop`, mode 0700):
//!
//! - `identity`, the sealed seed (PROTOCOL.md §13.2);
//! - `contacts`, the contact book sealed under key 3 (§13.4), with
//!   `contacts.lock` held while it is read and replaced.
//!
//! Every file is created 0600 before its first byte, written in full under a
//! temporary name, synced, and only then renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use pqdrop_proto::identity::{self, Identity, OpenError, Protection};
use zeroize::Zeroizing;

/// Most bytes read from a passphrase file or a recovery phrase on stdin.
pub const MAX_SECRET_INPUT: u64 = 4096;

/// Where the passphrase comes from when the identity must be opened: a
/// file named by a flag, else `$PQDROP_PASSPHRASE_FILE`, else the terminal.
#[derive(Debug, Clone, Default)]
pub struct Unlock {
    /// A file whose first line is the passphrase.
    pub passphrase_file: Option<PathBuf>,
}

impl Unlock {
    /// The file from `$PQDROP_PASSPHRASE_FILE`, if set (a path, never the
    /// passphrase itself).
    pub fn from_env() -> Self {
        Unlock { passphrase_file: std::env::var_os("PQDROP_PASSPHRASE_FILE").filter(|v| !v.is_empty()).map(PathBuf::from) }
    }

    /// `flag`, else [`Unlock::from_env`].
    pub fn or_env(flag: Option<PathBuf>) -> Self {
        match flag {
            Some(f) => Unlock { passphrase_file: Some(f) },
            None => Self::from_env(),
        }
    }
}

/// The config folder.
pub fn dir() -> anyhow::Result<PathBuf> {
    let config = crate::common::config_path().context("no config folder: set HOME or XDG_CONFIG_HOME")?;
    Ok(config.parent().context("the config path has no folder")?.to_path_buf())
}

/// `identity` in the config folder.
pub fn identity_path() -> anyhow::Result<PathBuf> {
    Ok(dir()?.join("identity"))
}

/// Reads and opens the identity file, asking for its passphrase if it has one.
pub fn load_identity(path: &Path, unlock: &Unlock) -> anyhow::Result<(Identity, Protection)> {
    let bytes = read_identity_file(path)?;
    let damaged =
        |e: OpenError| anyhow::anyhow!("{e} ({}); restore it from your recovery phrase with `pqdrop id import --force`", path.display());
    let protection = identity::file_protection(&bytes).map_err(damaged)?;
    let pass = match protection {
        Protection::None => None,
        Protection::Passphrase(_) => Some(passphrase_for_opening(unlock)?),
    };
    let seed = identity::open_file(&bytes, pass.as_ref().map(|p| p.as_bytes())).map_err(|e| match e {
        OpenError::WrongPassphrase => anyhow::anyhow!("wrong passphrase for {} (or the file was changed)", path.display()),
        other => damaged(other),
    })?;
    let id = Identity::from_seed(seed).context("deriving the identity")?;
    Ok((id, protection))
}

/// Opens the identity only if that needs no passphrase: `Ok(None)` when it
/// has one (or there is no identity).
pub fn identity_without_asking(path: &Path) -> anyhow::Result<Option<Identity>> {
    let bytes = match read_identity_file(path) {
        Ok(b) => b,
        Err(_) if !path.exists() => return Ok(None),
        Err(e) => return Err(e),
    };
    match identity::file_protection(&bytes) {
        Ok(Protection::None) => Ok(Some(load_identity(path, &Unlock::default())?.0)),
        Ok(Protection::Passphrase(_)) => Ok(None),
        Err(e) => bail!("{e} ({}); restore it from your recovery phrase with `pqdrop id import --force`", path.display()),
    }
}

fn read_identity_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // An identity file is 100 bytes: read at most one more, whatever is there.
    let read = File::open(path).and_then(|f| {
        let mut b = Zeroizing::new(Vec::with_capacity(identity::FILE_LEN + 1));
        f.take(identity::FILE_LEN as u64 + 1).read_to_end(&mut b)?;
        Ok(b)
    });
    match read {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!("there is no identity yet ({}): make one with `pqdrop id init`", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the identity file {}", path.display())),
    }
}

/// Writes `bytes` as `dir/name`, replacing it: a 0600 temporary file written
/// in full and synced, then renamed over the old one, so a reader sees the
/// old file or the new one, never a mix.
pub fn replace_private(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    make_private_dir(dir)?;
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&temp);
    let write = || -> io::Result<()> {
        let mut f = private_file(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&temp, dir.join(name))?;
        // The rename itself is durable once the folder is synced.
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        anyhow::Error::new(e).context(format!("cannot write {}", dir.join(name).display()))
    })
}

/// An exclusive lock on `dir/name`, held until the file is dropped: two runs
/// that change the contact book at once do not lose each other's change.
pub fn lock(dir: &Path, name: &str) -> anyhow::Result<File> {
    make_private_dir(dir)?;
    let path = dir.join(name);
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let f = o.open(&path).with_context(|| format!("cannot open the lock file {}", path.display()))?;
    f.lock().with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(f)
}

fn passphrase_for_opening(unlock: &Unlock) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = &unlock.passphrase_file {
        return read_passphrase_file(f);
    }
    if !has_terminal() {
        bail!(
            "the identity is protected by a passphrase: give it with --passphrase-file or $PQDROP_PASSPHRASE_FILE, or run this at a terminal"
        );
    }
    Ok(Zeroizing::new(rpassword::prompt_password("Passphrase of your pqdrop identity: ").context("reading the passphrase")?))
}

/// Passphrases are asked on the controlling terminal (`/dev/tty`), so they
/// can be typed while standard input is a pipe.
pub fn has_terminal() -> bool {
    File::open("/dev/tty").is_ok()
}

/// The first line of a passphrase file.
pub fn read_passphrase_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = read_capped(&mut File::open(path).with_context(|| format!("cannot open the passphrase file {}", path.display()))?)
        .with_context(|| format!("passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    Ok(Zeroizing::new(line.to_owned()))
}

/// Reads at most [`MAX_SECRET_INPUT`] bytes of UTF-8 into a zeroized string.
pub fn read_capped(r: &mut dyn Read) -> anyhow::Result<Zeroizing<String>> {
    // Room for all of it up front: growing would leave copies behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_INPUT as usize + 1));
    r.take(MAX_SECRET_INPUT + 1).read_to_end(&mut buf).context("reading")?;
    if buf.len() as u64 > MAX_SECRET_INPUT {
        bail!("more than {MAX_SECRET_INPUT} bytes: this is not a passphrase or a recovery phrase");
    }
    let text = std::str::from_utf8(&buf).map_err(|_| anyhow::anyhow!("not UTF-8 text"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Creates the config folder 0700, or makes an existing one private.
#[cfg(unix)]
pub fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create the config folder {}", dir.display())),
    }
    let mode = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        // An existing folder others can enter: secrets go in a private one.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (chmod 700)", dir.display()))?;
        say!("Made {} private to you (it was mode {:o}).", dir.display(), mode & 0o777);
    }
    Ok(())
}

/// Creates the config folder.
#[cfg(not(unix))]
pub fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create the config folder {}", dir.display()))
}

/// A new file, readable and writable by its owner only from its first byte.
pub fn private_file(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}
