//! Entry names from the sender: parsing into [`SafePath`], escaping for display,
//! and duplicate / collision detection across one transfer.
//!
//! The sender is authenticated but may be hostile (PROTOCOL.md §8, receiver
//! rules). Everything here is pure: no filesystem access. The engine writes
//! only names that passed [`SafePath::parse`].
//!
//! # Which characters are refused and which are only escaped
//!
//! Refused in names (the entry is rejected):
//! - NUL, `/` inside a component, `\`, `:`;
//! - C0 controls, DEL and C1 controls (U+0080–U+009F), U+2028 / U+2029;
//! - bidirectional controls: U+061C, U+200E, U+200F, U+202A–U+202E,
//!   U+2066–U+2069;
//! - invisible characters with no legitimate use in a file name: U+200B,
//!   U+180E, U+2060–U+2064, U+206A–U+206F, U+FEFF, U+FFF9–U+FFFB and the
//!   Hangul fillers U+3164 / U+FFA0;
//! - Unicode noncharacters (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF).
//!
//! Allowed but always escaped on display: U+200C (ZWNJ) and U+200D (ZWJ),
//! because Persian and Indic names and emoji sequences need them; the other
//! format characters (category Cf: soft hyphen, Arabic number signs, tag
//! characters, …), U+034F, U+115F, U+1160, U+17B4, U+17B5, and every space
//! other than U+0020 (so `a\u{3000}` cannot pass for `a `). Escaping makes two
//! names that look alike on screen look different.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;

use crate::Error;

/// Largest path in bytes we accept; longer paths are refused (Linux PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;
/// Largest single component in bytes (NAME_MAX on common filesystems).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest path in components; deeper trees are refused so that directory
/// walks stay bounded.
pub const MAX_DEPTH: usize = 64;
/// Longest escaped name in characters, so that a hostile name cannot flood the
/// terminal or push the prompt off screen.
pub const MAX_ESCAPED_CHARS: usize = 300;
/// Default cap on the number of distinct paths (files plus directories,
/// including implied parents) tracked by [`CollisionSet`].
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// Suffix of pqdrop's own partial files; received names may not end with it.
pub const PARTIAL_SUFFIX: &str = ".pqdrop-partial";
/// Prefix reserved for pqdrop's own state files; received names may not start
/// with it.
pub const RESERVED_PREFIX: &str = ".pqdrop";

/// A validated relative path: a non-empty list of components that are safe to
/// create on Unix and Windows and cannot be confused on screen.
///
/// Rules for every component (PROTOCOL.md §8): valid UTF-8, at most
/// [`MAX_COMPONENT_BYTES`]; not empty, `.` or `..`; no `/`, `\`, NUL or `:`
/// (so no absolute paths, UNC paths, drive letters or alternate data
/// streams); none of the refused characters listed in the module docs; not a
/// Windows device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`,
/// `LPT0`–`LPT9`, `COM¹²³`, `LPT¹²³`, `CONIN$`, `CONOUT$`, also with an
/// extension, any case); no trailing dot or space; not one of pqdrop's state
/// names (prefix `.pqdrop`, suffix `.pqdrop-partial`, any case). The whole
/// path is at most [`MAX_PATH_BYTES`] and [`MAX_DEPTH`] components.
///
/// Components keep the sender's exact spelling (that is what is written);
/// [`CollisionSet`] compares their case-folded NFC form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafePath {
    /// Invariant: non-empty, every element passed `check_component`.
    components: Vec<String>,
}

impl SafePath {
    /// Parses raw path bytes from the sender (`/` separated).
    ///
    /// Returns [`Error::Hostile`] with the escaped name and the reason for
    /// anything that is not a plain relative path as described on the type.
    pub fn parse(raw: &[u8]) -> Result<SafePath, Error> {
        let refuse = |reason: &'static str| Error::Hostile { name: escape(raw), reason };
        if raw.is_empty() {
            return Err(refuse("empty path"));
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(refuse("path too long"));
        }
        if raw.first() == Some(&b'/') {
            return Err(refuse("absolute path"));
        }
        if raw.contains(&0) {
            return Err(refuse("NUL byte in name"));
        }
        if raw.contains(&b'\\') {
            return Err(refuse("backslash in name (Windows path separator)"));
        }
        let text = std::str::from_utf8(raw).map_err(|_| refuse("name is not valid UTF-8"))?;
        let mut components = Vec::new();
        for component in text.split('/') {
            if components.len() == MAX_DEPTH {
                return Err(refuse("path too deep"));
            }
            check_component(component).map_err(refuse)?;
            components.push(component.to_owned());
        }
        Ok(SafePath { components })
    }

    /// All components, outermost first. Never empty.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The components of the parent directory (empty for a top-level entry).
    pub fn parent_components(&self) -> &[String] {
        self.components.split_last().map_or(&[][..], |(_, parent)| parent)
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.components.last().map_or("", String::as_str)
    }

    /// The path with `/` separators, escaped for showing in a terminal.
    pub fn display(&self) -> String {
        escape(self.components.join("/").as_bytes())
    }

    /// A renamed variant for `--rename`: `name (n).ext`, or `name (n)` when
    /// there is no extension (a leading dot does not start an extension).
    ///
    /// The stem is shortened when needed so that the result still satisfies
    /// every rule of [`SafePath`]: the suffix ends in `)` or keeps the
    /// original extension, so no trailing dot or space, device name or
    /// reserved name can appear.
    pub fn with_suffix(&self, n: u32) -> SafePath {
        let name = self.file_name();
        let suffix = format!(" ({n})");
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => name.split_at(i),
            _ => (name, ""),
        };
        let parent_bytes: usize = self.parent_components().iter().map(|c| c.len() + 1).sum();
        let budget = MAX_COMPONENT_BYTES.min(MAX_PATH_BYTES.saturating_sub(parent_bytes));
        let room = budget.saturating_sub(suffix.len() + ext.len());
        let renamed = if room > 0 {
            format!("{}{suffix}{ext}", truncate_at_char(stem, room))
        } else {
            // The extension alone is too long to keep: shorten the whole name.
            let room = budget.saturating_sub(suffix.len()).max(1);
            format!("{}{suffix}", truncate_at_char(name, room))
        };
        let mut components = self.components.clone();
        if let Some(last) = components.last_mut() {
            *last = renamed;
        }
        SafePath { components }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary (at least one char, so a non-empty name stays non-empty).
fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    if end == 0 {
        end = s.chars().next().map_or(0, char::len_utf8);
    }
    s.get(..end).unwrap_or(s)
}

/// Checks one component; returns the reason it is refused.
fn check_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty path component (// or a trailing /)");
    }
    if c == "." || c == ".." {
        return Err("'.' or '..' path component");
    }
    if c.len() > MAX_COMPONENT_BYTES {
        return Err("name component too long");
    }
    if c.contains(':') {
        return Err("':' in name (drive letter or alternate data stream)");
    }
    for ch in c.chars() {
        if let Some(reason) = refused_char(ch) {
            return Err(reason);
        }
    }
    if c.ends_with('.') || c.ends_with(' ') {
        return Err("trailing dot or space in name (Windows strips them)");
    }
    if is_windows_device(c) {
        return Err("Windows device name");
    }
    let lower = c.to_lowercase();
    if lower.starts_with(RESERVED_PREFIX) || lower.ends_with(PARTIAL_SUFFIX) {
        return Err("name reserved for pqdrop's own state files");
    }
    Ok(())
}

/// Why `ch` may not appear in a received name, if it may not.
fn refused_char(ch: char) -> Option<&'static str> {
    let c = u32::from(ch);
    if c < 0x20 || (0x7F..=0x9F).contains(&c) {
        return Some("control character in name");
    }
    match c {
        0x2028 | 0x2029 => Some("line or paragraph separator in name"),
        0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 => Some("bidirectional control character in name"),
        0x200B | 0x180E | 0x2060..=0x2064 | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x3164 | 0xFFA0 => {
            Some("invisible character in name")
        }
        _ if is_noncharacter(c) => Some("Unicode noncharacter in name"),
        _ => None,
    }
}

fn is_noncharacter(c: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&c) || (c & 0xFFFE) == 0xFFFE
}

/// Characters that are allowed in names but never shown raw: other format
/// characters (Unicode category Cf), invisible fillers and unusual spaces.
fn is_shown_escaped(c: u32) -> bool {
    matches!(
        c,
        0x00A0
            | 0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F
            | 0x1160
            | 0x1680
            | 0x17B4
            | 0x17B5
            | 0x2000..=0x200D
            | 0x202F
            | 0x205F
            | 0x3000
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Windows device names are reserved in every directory, with any extension
/// and with trailing spaces before the extension, in any case.
fn is_windows_device(c: &str) -> bool {
    let base = c.split_once('.').map_or(c, |(base, _)| base);
    let base = base.trim_end_matches(' ').to_lowercase();
    match base.as_str() {
        "con" | "prn" | "aux" | "nul" | "conin$" | "conout$" => true,
        _ => {
            let rest = base.strip_prefix("com").or_else(|| base.strip_prefix("lpt"));
            matches!(rest, Some("0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³"))
        }
    }
}

/// Escapes arbitrary bytes for showing in a terminal.
///
/// Printable characters are kept; `\` becomes `\\`; `\n`, `\r`, `\t` and ESC
/// become `\n`, `\r`, `\t`, `\e`; other C0 controls and DEL become `\xNN`;
/// C1 controls, bidi controls, zero-width and other format characters,
/// line/paragraph separators, noncharacters and non-ASCII spaces become
/// `\u{XXXX}`; bytes that are not valid UTF-8 become `\xNN` (so a raw C1 byte
/// `0x9B`, a CSI on some terminals, is shown as `\x9B`). Hex is upper case.
/// Output longer than [`MAX_ESCAPED_CHARS`] characters is cut and ends in `…`.
pub fn escape(raw: &[u8]) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    let mut push = |piece: &str, out: &mut String| -> bool {
        let n = piece.chars().count();
        if count + n > MAX_ESCAPED_CHARS {
            out.push('…');
            return false;
        }
        count += n;
        out.push_str(piece);
        true
    };
    let mut buf = [0u8; 4];
    for chunk in raw.utf8_chunks() {
        for ch in chunk.valid().chars() {
            let escaped = escape_char(ch);
            let piece = match &escaped {
                Some(e) => e.as_str(),
                None => ch.encode_utf8(&mut buf),
            };
            if !push(piece, &mut out) {
                return out;
            }
        }
        for byte in chunk.invalid() {
            if !push(&format!("\\x{byte:02X}"), &mut out) {
                return out;
            }
        }
    }
    out
}

/// Escapes received *text* for a terminal: like [`escape`] but unbounded, and
/// newlines, tabs and backslashes are kept as they are (they cannot spoof
/// anything), so ordinary text reads normally.
pub fn escape_text(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\n' | '\t' | '\\' => out.push(ch),
                _ => match escape_char(ch) {
                    Some(e) => out.push_str(&e),
                    None => out.push(ch),
                },
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    out
}

/// The escape sequence for `ch`, or `None` when it is shown as is.
fn escape_char(ch: char) -> Option<String> {
    let c = u32::from(ch);
    match ch {
        '\\' => Some("\\\\".into()),
        '\n' => Some("\\n".into()),
        '\r' => Some("\\r".into()),
        '\t' => Some("\\t".into()),
        '\x1b' => Some("\\e".into()),
        _ if c < 0x20 || c == 0x7F => Some(format!("\\x{c:02X}")),
        _ if refused_char(ch).is_some() || is_shown_escaped(c) => Some(format!("\\u{{{c:04X}}}")),
        _ => None,
    }
}

/// What a key in a [`CollisionSet`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    /// A directory only implied as the parent of an earlier entry.
    ImpliedDir,
    /// A directory the sender listed as an entry of its own.
    Dir,
}

/// Detects duplicates and collisions among the entries of one transfer, with
/// bounded memory.
///
/// Each path and each of its parents is keyed by 64 bits of BLAKE3 over the
/// case-folded (`to_lowercase`) NFC form, so names that differ only in case
/// or normalisation land on the same key (they would be one file on macOS and
/// Windows). Next to the key it keeps 30 bits of BLAKE3 over the exact bytes,
/// to tell a true duplicate from a look-alike, and the kind in 2 bits. (With
/// 1,000,000 entries two distinct keys meet with a chance of about 3 in 10^8;
/// a sender that forces it only gets its own transfer refused. The exact
/// bits only choose which refusal is shown.) Detected: the same file or
/// directory entry twice; a file and a directory with the same name (in
/// either order, including a file used as a parent); names that differ only
/// in case or normalisation. A directory entry for a directory already implied
/// by an earlier file's path is fine. At most `max_entries` keys (files plus
/// directories, implied ones included) are stored, 12 bytes each (13 in the
/// table, plus its spare capacity): about 27 MB for 1,000,000.
#[derive(Debug)]
pub struct CollisionSet {
    seen: HashSet<Slot>,
    max_entries: usize,
}

impl CollisionSet {
    /// An empty set that refuses transfers with more than `max_entries`
    /// distinct paths (see [`DEFAULT_MAX_ENTRIES`]).
    pub fn new(max_entries: usize) -> Self {
        CollisionSet { seen: HashSet::new(), max_entries }
    }

    /// Makes room for `n` paths at once (at most the cap), so the table does
    /// not grow by doubling, holding two copies, when they come.
    pub fn reserve(&mut self, n: usize) {
        self.seen.reserve(n.min(self.max_entries).saturating_sub(self.seen.len()));
    }

    /// Number of distinct paths tracked so far (implied parents included).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing was inserted yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records one entry; [`Error::Hostile`] if it collides with an earlier
    /// one or the cap is reached. On error the set is unchanged.
    pub fn insert(&mut self, p: &SafePath, is_dir: bool) -> Result<(), Error> {
        let refuse = |reason: &'static str| Error::Hostile { name: p.display(), reason };
        let keys = path_keys(p);
        let last = keys.len().saturating_sub(1);
        let mut new_keys = 0usize;
        for (i, (key, exact)) in keys.iter().enumerate() {
            let Some(&Slot { packed, .. }) = self.seen.get(&Slot::probe(*key)) else {
                new_keys += 1;
                continue;
            };
            let (kind, seen_exact) = unpack(packed);
            if seen_exact != *exact {
                return Err(refuse("differs from an earlier entry only in letter case or Unicode normalisation"));
            }
            let is_last = i == last;
            match (kind, is_last, is_dir) {
                (Kind::File, false, _) => return Err(refuse("an earlier entry is a file where this path needs a directory")),
                (Kind::File, true, false) | (Kind::Dir, true, true) => return Err(refuse("duplicate entry")),
                (Kind::File, true, true) | (Kind::Dir | Kind::ImpliedDir, true, false) => {
                    return Err(refuse("a file and a directory have the same name"))
                }
                _ => {}
            }
        }
        if self.seen.len().saturating_add(new_keys) > self.max_entries {
            return Err(refuse("too many entries in one transfer"));
        }
        for (i, (key, exact)) in keys.into_iter().enumerate() {
            let kind = match (i == last, is_dir) {
                (false, _) => Kind::ImpliedDir,
                (true, true) => Kind::Dir,
                (true, false) => Kind::File,
            };
            let slot = Slot::new(key, pack(kind, exact));
            // An implied directory becomes an explicit one when listed.
            if i == last {
                self.seen.replace(slot);
            } else {
                self.seen.insert(slot);
            }
        }
        Ok(())
    }
}

/// One key of a [`CollisionSet`]: equal and hashed by the folded key only,
/// so `packed` (exact check and kind) rides along. Three `u32`s keep it at
/// 12 bytes, where `(u64, u32)` would pad to 16.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: [u32; 2],
    packed: u32,
}

impl Slot {
    fn new(key: u64, packed: u32) -> Self {
        Slot { key: [key as u32, (key >> 32) as u32], packed }
    }
    fn probe(key: u64) -> Self {
        Self::new(key, 0)
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Slot {}

impl std::hash::Hash for Slot {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

fn pack(kind: Kind, exact: u32) -> u32 {
    let k = match kind {
        Kind::File => 0,
        Kind::ImpliedDir => 1,
        Kind::Dir => 2,
    };
    (exact << 2) | k
}

fn unpack(v: u32) -> (Kind, u32) {
    let kind = match v & 3 {
        0 => Kind::File,
        1 => Kind::ImpliedDir,
        _ => Kind::Dir,
    };
    (kind, v >> 2)
}

/// For each prefix of `p` (parents first, then `p` itself): the folded key and
/// the exact-spelling check value (30 bits).
fn path_keys(p: &SafePath) -> Vec<(u64, u32)> {
    let mut folded = blake3::Hasher::new();
    let mut exact = blake3::Hasher::new();
    let mut keys = Vec::with_capacity(p.components().len());
    for (i, component) in p.components().iter().enumerate() {
        if i > 0 {
            folded.update(b"/");
            exact.update(b"/");
        }
        let fold: String = component.nfc().collect::<String>().to_lowercase().nfc().collect();
        folded.update(fold.as_bytes());
        exact.update(component.as_bytes());
        let f = folded.finalize();
        let e = exact.finalize();
        let mut k = [0u8; 8];
        k.copy_from_slice(&f.as_bytes()[..8]);
        let mut x = [0u8; 4];
        x.copy_from_slice(&e.as_bytes()[..4]);
        keys.push((u64::from_le_bytes(k), u32::from_le_bytes(x) >> 2));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(raw: &[u8]) -> &'static str {
        match SafePath::parse(raw) {
            Err(Error::Hostile { reason, .. }) => reason,
            other => panic!("{:?} was not refused: {other:?}", escape(raw)),
        }
    }

    fn ok(raw: &str) -> SafePath {
        SafePath::parse(raw.as_bytes()).expect(raw)
    }

    #[test]
    fn escape_text_keeps_newlines_and_escapes_controls() {
        assert_eq!(escape_text(b"a\\b\n\tc\x1b[31m\xff"), "a\\b\n\tc\\e[31m\\xFF");
    }

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        for raw in [
            "../x",
            "../../.ssh/authorized_keys",
            "/etc/x",
            "C:\\x",
            "C:x",
            "\\\\host\\x",
            "a/../../x",
            "a//b",
            "",
            ".",
            "..",
            "a/.",
            "a/",
            "../out-suffix/x",
        ] {
            refused(raw.as_bytes());
        }
    }

    #[test]
    fn limits() {
        let deep = vec!["a"; MAX_DEPTH].join("/");
        ok(&deep);
        refused(format!("{deep}/a").as_bytes());
        ok(&"x".repeat(MAX_COMPONENT_BYTES));
        refused("x".repeat(MAX_COMPONENT_BYTES + 1).as_bytes());
        let long = vec!["y".repeat(200); 21].join("/");
        assert!(long.len() > MAX_PATH_BYTES);
        refused(long.as_bytes());
    }

    #[test]
    fn control_bidi_and_invisible_are_refused() {
        for raw in [
            "a\u{1b}[2Jb",
            "a\rb",
            "a\nb",
            "a\u{7}",
            "a\u{7f}",
            "a\u{9b}b",
            "evil\u{202e}txt.exe",
            "a\u{2066}b",
            "a\u{200b}b",
            "a\u{feff}",
            "a\u{2028}b",
            "a\u{fffe}",
        ] {
            refused(raw.as_bytes());
        }
        assert_eq!(refused(b"a\0b"), "NUL byte in name");
        assert_eq!(refused(b"a\xffb"), "name is not valid UTF-8");
    }

    #[test]
    fn windows_and_reserved_names_are_refused() {
        for raw in [
            "CON",
            "con",
            "Con.txt",
            "nul",
            "NUL.tar.gz",
            "aux",
            "prn.x",
            "COM1",
            "com9.log",
            "LPT1",
            "lpt5.txt",
            "COM¹",
            "conout$",
            "nul .txt",
            "a/CON/b",
            "name.",
            "name ",
            "a:b",
            "file.txt:stream",
            ".pqdrop",
            ".pqdrop-state",
            ".PQDROP-x",
            "x.pqdrop-partial",
            "x.PQDROP-PARTIAL",
            "d/.a.pqdrop-partial/f",
        ] {
            refused(raw.as_bytes());
        }
        for raw in ["console", "com10", "lpt", "nul_file", "auxiliary.txt", "pqdrop", "a.pqdrop"] {
            ok(raw);
        }
    }

    #[test]
    fn accessors_and_display() {
        let p = ok("dir/sub/f\u{200d}ile.txt");
        assert_eq!(p.components(), ["dir", "sub", "f\u{200d}ile.txt"]);
        assert_eq!(p.parent_components(), ["dir", "sub"]);
        assert_eq!(p.file_name(), "f\u{200d}ile.txt");
        assert_eq!(p.display(), "dir/sub/f\\u{200D}ile.txt");
        let top = ok("top");
        assert!(top.parent_components().is_empty());
    }

    #[test]
    fn with_suffix_names() {
        assert_eq!(ok("d/a.txt").with_suffix(1), ok("d/a (1).txt"));
        assert_eq!(ok("a.tar.gz").with_suffix(2), ok("a.tar (2).gz"));
        assert_eq!(ok("README").with_suffix(3), ok("README (3)"));
        assert_eq!(ok(".bashrc").with_suffix(1), ok(".bashrc (1)"));
        assert_eq!(ok("con (1).txt").file_name(), "con (1).txt");
        let long = "é".repeat(126); // 252 bytes
        let renamed = ok(&format!("{long}.x")).with_suffix(12);
        assert!(renamed.file_name().len() <= MAX_COMPONENT_BYTES);
        assert!(renamed.file_name().ends_with(" (12).x"));
        SafePath::parse(renamed.file_name().as_bytes()).expect("still valid");
        let ext = format!("a.{}", "e".repeat(250));
        let renamed = ok(&ext).with_suffix(4_000_000_000);
        assert!(renamed.file_name().ends_with(" (4000000000)"));
        SafePath::parse(renamed.file_name().as_bytes()).expect("still valid");
    }

    #[test]
    fn escape_exact_output() {
        assert_eq!(escape(b"plain name.txt"), "plain name.txt");
        assert_eq!(escape(b"a\\b"), "a\\\\b");
        assert_eq!(escape(b"\x1b]0;owned\x07x"), "\\e]0;owned\\x07x");
        assert_eq!(escape(b"\x1b[2J\r\n\t"), "\\e[2J\\r\\n\\t");
        assert_eq!(escape(b"a\x9bb\xff"), "a\\x9Bb\\xFF");
        assert_eq!(escape("a\u{9b}b".as_bytes()), "a\\u{009B}b");
        assert_eq!(escape("evil\u{202e}txt.exe".as_bytes()), "evil\\u{202E}txt.exe");
        assert_eq!(escape("a\u{200b}b\u{feff}".as_bytes()), "a\\u{200B}b\\u{FEFF}");
        assert_eq!(escape("x\u{2028}\u{3000}".as_bytes()), "x\\u{2028}\\u{3000}");
        assert_eq!(escape("\u{7f}".as_bytes()), "\\x7F");
        assert_eq!(escape("grüße/日本.txt".as_bytes()), "grüße/日本.txt");
        assert_eq!(escape("\u{E0041}".as_bytes()), "\\u{E0041}");
    }

    #[test]
    fn escape_is_bounded() {
        let out = escape(&[b'a'; 10_000]);
        assert_eq!(out.chars().count(), MAX_ESCAPED_CHARS + 1);
        assert!(out.ends_with('…'));
        let out = escape(&[0xff; 10_000]);
        assert!(out.chars().count() <= MAX_ESCAPED_CHARS + 1);
        assert!(out.ends_with("\\xFF…"));
    }

    #[test]
    fn collisions() {
        let mut set = CollisionSet::new(100);
        set.insert(&ok("a/b.txt"), false).expect("first");
        // The implied parent listed explicitly is fine, once.
        set.insert(&ok("a"), true).expect("implied dir listed");
        assert!(set.insert(&ok("a"), true).is_err(), "same dir twice");
        assert!(set.insert(&ok("a/b.txt"), false).is_err(), "same file twice");
        assert!(set.insert(&ok("A/b.txt"), false).is_err(), "case of parent");
        assert!(set.insert(&ok("a/B.TXT"), false).is_err(), "case of file");
        assert!(set.insert(&ok("a/b.txt"), true).is_err(), "dir over file");
        assert!(set.insert(&ok("a/b.txt/c"), false).is_err(), "file as parent");
        assert!(set.insert(&ok("a"), false).is_err(), "file over dir");
        set.insert(&ok("caf\u{e9}"), false).expect("nfc");
        assert!(set.insert(&ok("cafe\u{301}"), false).is_err(), "nfd twin");
        set.insert(&ok("a/c.txt"), false).expect("sibling");
    }

    #[test]
    fn collision_errors_leave_the_set_unchanged_and_cap_holds() {
        let mut set = CollisionSet::new(3);
        set.insert(&ok("x/y"), false).expect("two keys");
        assert_eq!(set.len(), 2);
        assert!(matches!(set.insert(&ok("p/q"), false), Err(Error::Hostile { reason: "too many entries in one transfer", .. })));
        assert_eq!(set.len(), 2);
        set.insert(&ok("z"), false).expect("fits");
        assert!(set.insert(&ok("w"), false).is_err());
    }

    proptest! {
        #[test]
        fn parse_and_escape_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
            let shown = escape(&raw);
            prop_assert!(shown.chars().count() <= MAX_ESCAPED_CHARS + 1);
            prop_assert!(!shown.chars().any(|c| c.is_control()));
            if let Ok(p) = SafePath::parse(&raw) {
                prop_assert!(!p.components().is_empty());
                for c in p.components() {
                    prop_assert!(!c.is_empty() && c != "." && c != "..");
                    prop_assert!(!c.contains(['/', '\\', '\0']));
                }
                let _ = p.with_suffix(7);
            }
        }

        #[test]
        fn parse_never_panics_on_pathlike_text(raw in "[a./\\\\:\u{0}\u{1b}\u{202e}\u{e9} ]{0,40}") {
            if let Ok(p) = SafePath::parse(raw.as_bytes()) {
                for c in p.components() {
                    prop_assert!(!c.contains(['/', '\\', '\0', ':']));
                    prop_assert!(c != "." && c != "..");
                }
                let renamed = p.with_suffix(3);
                prop_assert!(SafePath::parse(renamed.components().join("/").as_bytes()).is_ok());
            }
        }
    }

    proptest! {
        #[test]
        fn escaped_names_hold_no_control_characters(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!(!escape(&raw).chars().any(char::is_control));
        }
    }
}
