//! `pqdrop keys`: the deterministic key hierarchy ("seed 004") from a 32-byte
//! seed, see `pqdrop_proto::keys`.
//!
//! The seed is read from standard input or a file, never from argv, into a
//! fixed buffer that is zeroized afterwards; the output is assembled in
//! zeroize-on-drop strings. What the terminal or a pipe does with the printed
//! keys is out of our hands: this command exists to print them.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use pqdrop_proto::keys::{self, Hierarchy, Seed, Variant};
use zeroize::Zeroizing;

/// Most bytes of seed input read. A seed is 64 characters; the slack allows
/// whitespace and CRLF, and anything larger is a wrong file, not a seed.
const MAX_SEED_INPUT: usize = 4096;

/// Arguments of `pqdrop keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

/// The `keys` subcommands.
#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Derive the key hierarchy from a seed read from standard input or a file.
    #[command(after_help = DERIVE_AFTER_HELP)]
    Derive(DeriveArgs),
}

const DERIVE_AFTER_HELP: &str = "\
The seed is 64 hexadecimal characters (32 bytes) read from standard input or
from --seed-file, never from the command line, where other users could see it
in the process list. Surrounding whitespace is ignored.

Keys: key_N = HKDF-SHA256(salt = Bitcoin block 630,000 hash, ikm = seed || N,
info, 32 bytes), N = 1 seed exchange, 2 io exchange, 3 state IKM, 4 callback
secret; the two public keys are X25519 base-point multiples.

Examples:
  pqdrop keys derive < seed.hex
  pqdrop keys derive --variant enclave --json --seed-file seed.hex
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' | pqdrop keys derive";

/// Arguments of `pqdrop keys derive`.
#[derive(Debug, Args)]
struct DeriveArgs {
    /// Which published derivation to follow.
    #[arg(long, value_enum, default_value_t = VariantArg::Spec)]
    variant: VariantArg,

    /// Print exactly one JSON object (lowercase hex values) instead of lines.
    #[arg(long)]
    json: bool,

    /// Read the seed from this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    seed_file: Option<PathBuf>,
}

/// The `--variant` values, with help text for `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VariantArg {
    /// As the specification writes it: ikm = seed || uint8(N), empty info
    Spec,
    /// As the deployed enclave code does it: ikm = seed || u32_be(N), info "seed"
    Enclave,
}

impl From<VariantArg> for Variant {
    fn from(v: VariantArg) -> Self {
        match v {
            VariantArg::Spec => Variant::Spec,
            VariantArg::Enclave => Variant::Enclave,
        }
    }
}

/// Runs `pqdrop keys ...`.
pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    match args.command {
        KeysCommand::Derive(a) => derive(a),
    }
}

fn derive(args: DeriveArgs) -> anyhow::Result<()> {
    let seed = match &args.seed_file {
        Some(path) => read_seed_file(path)?,
        None => read_seed_stdin()?,
    };
    let variant = Variant::from(args.variant);
    let h = keys::hierarchy(&seed, variant).context("deriving the keys")?;
    let text = if args.json { render_json(variant, &h) } else { render_text(variant, &h) };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("writing the keys to standard output")?;
    Ok(())
}

fn read_seed_file(path: &Path) -> anyhow::Result<Seed> {
    let mut file = File::open(path).with_context(|| format!("cannot open the seed file {}", path.display()))?;
    warn_if_shared(&file, path);
    read_seed(&mut file, false).with_context(|| format!("seed file {}", path.display()))
}

fn read_seed_stdin() -> anyhow::Result<Seed> {
    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        say!("Enter the seed (64 hexadecimal characters) and press Enter:");
    }
    // At a terminal, a newline ends the input; from a pipe, end of file does.
    read_seed(&mut stdin.lock(), interactive).context("seed on standard input")
}

/// Warns (on Unix) when other users may read the seed file: the seed is the
/// root of every key.
#[cfg(unix)]
fn warn_if_shared(file: &File, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            say!("pqdrop: warning: the seed file {} can be read by other users (try chmod 600)", path.display());
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_file: &File, _path: &Path) {}

/// Reads at most [`MAX_SEED_INPUT`] bytes into a buffer that is zeroized on
/// drop, stopping at end of input (or, if `stop_at_newline`, at the first
/// newline), and parses the seed from it.
fn read_seed(source: &mut dyn Read, stop_at_newline: bool) -> anyhow::Result<Seed> {
    let mut buf = Zeroizing::new([0u8; MAX_SEED_INPUT]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            bail!(
                "the input is longer than {MAX_SEED_INPUT} bytes; the seed must be {} hexadecimal characters ({} bytes)",
                keys::SEED_HEX_LEN,
                keys::KEY_LEN
            );
        }
        match source.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                let fresh = &buf[len..len + n];
                len += n;
                if stop_at_newline && fresh.contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read the seed"),
        }
    }
    parse_seed(&buf[..len])
}

/// Checks the seed text and turns it into a [`Seed`]. Messages say what is
/// wrong (length, kind of character) but never quote the input.
fn parse_seed(input: &[u8]) -> anyhow::Result<Seed> {
    let expected = format!("the seed must be {} hexadecimal characters ({} bytes)", keys::SEED_HEX_LEN, keys::KEY_LEN);
    let Ok(text) = std::str::from_utf8(input) else {
        bail!("{expected}; the input is not text");
    };
    let text = text.trim();
    if text.is_empty() {
        bail!("no seed given: {expected}, on standard input (pqdrop keys derive < seed.hex) or in --seed-file PATH");
    }
    let chars = text.chars().count();
    if chars != keys::SEED_HEX_LEN {
        bail!("{expected}; got {chars} characters");
    }
    // The length is right, so the only error left is a non-hex character.
    Seed::from_hex(text).map_err(|_| anyhow::anyhow!("{expected}; it contains characters other than 0-9 and a-f"))
}

/// The output fields, in order, with their values as bytes.
fn fields(h: &Hierarchy) -> [(&'static str, &[u8]); 6] {
    [
        ("seed_exchange_private", h.seed_exchange_private.as_bytes()),
        ("seed_exchange_public", &h.seed_exchange_public),
        ("io_exchange_private", h.io_exchange_private.as_bytes()),
        ("io_exchange_public", &h.io_exchange_public),
        ("state_ikm", h.state_ikm.as_bytes()),
        ("callback_secret", h.callback_secret.as_bytes()),
    ]
}

/// Output size bound, so the strings below never reallocate and leave
/// unzeroized copies of key material behind.
const OUTPUT_CAPACITY: usize = 1024;

/// Appends lowercase hex of `bytes` to `out` without a temporary string.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// `name: hex` lines, values aligned.
fn render_text(variant: Variant, h: &Hierarchy) -> Zeroizing<String> {
    let fields = fields(h);
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 1;
    let mut out = Zeroizing::new(String::with_capacity(OUTPUT_CAPACITY));
    let label = |out: &mut String, name: &str| {
        out.push_str(name);
        out.push(':');
        for _ in name.len()..width {
            out.push(' ');
        }
    };
    label(&mut out, "variant");
    out.push_str(variant.as_str());
    out.push('\n');
    for (name, value) in fields {
        label(&mut out, name);
        push_hex(&mut out, value);
        out.push('\n');
    }
    out
}

/// One JSON object on one line. Every key and value is a fixed ASCII name or
/// hex, so no escaping is needed; building it by hand keeps the key material out
/// of serde_json's non-zeroized buffers.
fn render_json(variant: Variant, h: &Hierarchy) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(OUTPUT_CAPACITY));
    out.push_str("{\"variant\":\"");
    out.push_str(variant.as_str());
    out.push('"');
    for (name, value) in fields(h) {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":\"");
        push_hex(&mut out, value);
        out.push('"');
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTING: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn msg(input: &[u8]) -> String {
        format!("{:#}", read_seed(&mut &input[..], false).unwrap_err())
    }

    #[test]
    fn seed_errors_are_clear() {
        assert_eq!(msg(b"0123456789"), "the seed must be 64 hexadecimal characters (32 bytes); got 10 characters");
        assert!(msg(b"").starts_with("no seed given"));
        assert!(msg(b" \n").starts_with("no seed given"));
        let bad = format!("{}zz", &COUNTING[..62]);
        assert_eq!(
            msg(bad.as_bytes()),
            "the seed must be 64 hexadecimal characters (32 bytes); it contains characters other than 0-9 and a-f"
        );
        assert!(msg(&[0xff; 64]).ends_with("the input is not text"));
        assert!(msg(&[b'a'; MAX_SEED_INPUT + 10]).starts_with("the input is longer than 4096 bytes"));
    }

    #[test]
    fn seed_reading_trims_and_stops_at_newline() {
        let with_ws = format!("  {COUNTING}\r\n");
        assert!(read_seed(&mut with_ws.as_bytes(), false).is_ok());
        let line = format!("{COUNTING}\n");
        assert!(read_seed(&mut line.as_bytes(), true).is_ok());
        // Anything after the seed is an error, not silently ignored.
        let two_lines = format!("{COUNTING}\ntrailing garbage");
        assert!(read_seed(&mut two_lines.as_bytes(), false).is_err());
    }

    #[test]
    fn outputs_agree() {
        let seed = Seed::from_hex(COUNTING).unwrap();
        let h = keys::hierarchy(&seed, Variant::Enclave).unwrap();
        let json: serde_json::Value = serde_json::from_str(&render_json(Variant::Enclave, &h)).unwrap();
        let text = render_text(Variant::Enclave, &h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0], "variant:               enclave");
        for line in &lines {
            let (name, value) = line.split_once(':').unwrap();
            assert_eq!(json[name].as_str().unwrap(), value.trim_start());
            // Values start in the same column.
            assert_eq!(line.len() - value.trim_start().len(), 23);
        }
        assert_eq!(json.as_object().unwrap().len(), 7);
        assert!(text.len() < OUTPUT_CAPACITY);
    }

    #[test]
    fn push_hex_is_lowercase_hex() {
        let mut s = String::new();
        push_hex(&mut s, &[0x00, 0x9f, 0xa0, 0xff]);
        assert_eq!(s, "009fa0ff");
    }
}
