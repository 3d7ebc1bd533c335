//! Transfer codes (`7-lemon-tiger`) and the word list they are made from.
//!
//! A code has two parts with different jobs:
//!
//! - The **nameplate** (`7`) is a small decimal number that names the rendezvous
//!   room on the relay. It is *not* secret: the relay sees it, and both peers send
//!   it in the clear to find each other.
//! - The **words** (`lemon-tiger`) are the secret. They are the CPace password and
//!   nothing else: no hash, prefix, length or other function of them is ever sent
//!   to a relay. A rendezvous id derived from the secret would hand the relay an
//!   offline dictionary attack; keeping the room name independent of the words
//!   means every guess costs the attacker one live, detected PAKE run.
//!
//! Generated codes use the EFF short word list #2 (see `WORDLIST-LICENSE`): 1,296
//! words, each with a unique three-letter prefix, so typing three letters is
//! enough for completion, and `log2(1296) ≈ 10.34` bits per word. Users may also
//! type their own words; [`Code::entropy_bits`] then estimates their strength
//! conservatively so that the CLI can warn about weak codes.
//!
//! [`Code`] keeps its words in zeroize-on-drop storage, redacts them in `Debug`,
//! and deliberately has no `Display`: the only way to get the text of a code is
//! the explicit [`Code::expose`].

use core::fmt;
use core::str::FromStr;
use std::sync::OnceLock;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::primitives::ct_eq;
use crate::{Error, Result};

/// Number of words in a generated code when the user does not ask for more.
/// Two list words give about 20.7 bits, which is plenty behind a PAKE: an attacker
/// gets one guess per live, visible run, so the chance of a hit is about one in
/// 1.7 million per attempt.
pub const DEFAULT_WORDS: usize = 2;

/// Most words a code may have. Eight list words are about 83 bits, already far
/// beyond what online guessing can reach; the cap keeps parsing and the CPace
/// password bounded.
pub const MAX_WORDS: usize = 8;

/// Longest input [`Code::parse`] looks at, in bytes. Longer input is rejected
/// before any other work, so hostile or accidental pastes cost nothing.
pub const MAX_CODE_LEN: usize = 256;

/// Longest single word [`Code::parse`] accepts, in letters. The longest list word
/// has 10 letters; user-chosen words get room to spare.
pub const MAX_WORD_LEN: usize = 32;

/// Number of words in the embedded list.
pub const WORDLIST_LEN: usize = 1296;

/// The example shown in every parse error, so the user sees the expected shape.
const EXAMPLE: &str = "codes look like 7-lemon-tiger";

/// Conservative guessing entropy of one letter of a word that is *not* in the
/// list. People choose real, common words, and an attacker tries those first, so a
/// letter is worth far less than `log2(26)`; 1.5 bits per letter (capped at one
/// list word, see [`Code::entropy_bits`]) errs on the side of warning.
const UNLISTED_BITS_PER_LETTER: f64 = 1.5;

/// The word list, one lowercase word per line, sorted, unique 3-letter prefixes.
static WORDLIST_TEXT: &str = include_str!("wordlist.txt");

/// The parsed list, built once on first use.
static WORDLIST: OnceLock<Vec<&'static str>> = OnceLock::new();

/// The word list generated codes are drawn from: 1,296 lowercase ASCII words,
/// sorted, no two sharing their first three letters (EFF short word list #2).
pub fn wordlist() -> &'static [&'static str] {
    WORDLIST.get_or_init(|| WORDLIST_TEXT.lines().map(str::trim).filter(|w| !w.is_empty()).collect())
}

/// Words of the list that start with `prefix` (ASCII case ignored), in list order,
/// for shell or prompt completion. Three letters always narrow the result to at
/// most one word. An empty prefix returns the whole list; a prefix with anything
/// but ASCII letters returns nothing.
///
/// Completion is a typing aid only: [`Code::parse`] never expands a prefix,
/// because that would silently change the secret.
pub fn complete(prefix: &str) -> Vec<&'static str> {
    if prefix.len() > MAX_WORD_LEN || !prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Vec::new();
    }
    let prefix = prefix.to_ascii_lowercase();
    let list = wordlist();
    // The list is sorted, so all words with the prefix form one contiguous run
    // starting at the first word that is not smaller than the prefix.
    let start = list.partition_point(|w| *w < prefix.as_str());
    list[start..].iter().take_while(|w| w.starts_with(prefix.as_str())).copied().collect()
}

/// Whether `word` (already lowercase) is in the list.
fn is_listed(word: &str) -> bool {
    wordlist().binary_search(&word).is_ok()
}

/// Whether `word` (any case) is a word of the list.
pub fn is_word(word: &str) -> bool {
    is_listed(&word.to_ascii_lowercase())
}

/// Up to three words of the list nearest to `word` (a typo), closest first:
/// those within two edits (insert, delete, replace, or swap two neighbours).
pub fn suggest(word: &str) -> Vec<&'static str> {
    let w = word.to_ascii_lowercase();
    if w.len() > MAX_WORD_LEN {
        return Vec::new();
    }
    let mut scored: Vec<(usize, &'static str)> =
        wordlist().iter().map(|c| (edit_distance(&w, c), *c)).filter(|(d, _)| *d > 0 && *d <= 2).collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Optimal-string-alignment distance between two short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Guessing entropy of one list word: `log2` of the list length.
fn list_word_bits() -> f64 {
    (wordlist().len() as f64).log2()
}

/// A uniformly random integer in `0..n` (`n > 0`), by rejection sampling so that
/// no value is more likely than another (a plain `% n` would bias low values).
fn uniform<R: RngCore + CryptoRng>(rng: &mut R, n: u32) -> u32 {
    let n = u64::from(n.max(1));
    // The largest multiple of n not above 2^32; draws at or above it are redrawn.
    let limit = (1u64 << 32) / n * n;
    loop {
        let x = u64::from(rng.next_u32());
        if x < limit {
            // x % n < n <= u32::MAX, so the conversion cannot fail.
            return u32::try_from(x % n).unwrap_or(0);
        }
    }
}

/// The non-secret room number at the start of a code.
///
/// Valid nameplates are `1..=65535` ([`Nameplate::MIN`]..=[`Nameplate::MAX`]), so
/// that relays can keep them in 16 bits and users never type more than five
/// digits. Generated codes use `1..=999` ([`Nameplate::GENERATED_MAX`]) to stay
/// short to read out; a relay may hand out others.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Nameplate(u32);

impl Nameplate {
    /// Smallest valid nameplate. Zero is reserved so that "no room" can never be
    /// confused with a room.
    pub const MIN: u32 = 1;
    /// Largest valid nameplate.
    pub const MAX: u32 = 65_535;
    /// Largest nameplate [`Code::generate`] picks.
    pub const GENERATED_MAX: u32 = 999;

    /// A nameplate, if `n` is in `1..=65535`.
    pub fn new(n: u32) -> Result<Self> {
        if (Self::MIN..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(Error::BadCode(format!("the number at the start must be between {} and {}: {EXAMPLE}", Self::MIN, Self::MAX)))
        }
    }

    /// The number.
    pub fn get(&self) -> u32 {
        self.0
    }

    /// Most decimal digits of a nameplate on the wire (`65535`).
    pub const MAX_DIGITS: usize = 5;

    /// The nameplate as sent on the wire (relay hello, LAN announcement,
    /// PROTOCOL.md §9.1, §10): its canonical decimal form, 1 to 5 ASCII digits
    /// without a leading zero, at most 65535. The one rule every part of
    /// pqdrop applies to a nameplate it reads from the network; what users
    /// type goes through [`FromStr`](std::str::FromStr) instead, which is lenient.
    pub fn from_wire(digits: &[u8]) -> Option<Nameplate> {
        if digits.is_empty() || digits.len() > Self::MAX_DIGITS || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
        Nameplate::new(n).ok()
    }
}

impl fmt::Display for Nameplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Nameplate {
    type Err = Error;

    /// Decimal digits only (leading zeros allowed, surrounding whitespace
    /// trimmed). Errors never quote the input: a mistyped code may put a secret
    /// word where the number should be.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bytes = s.as_bytes();
        match bytes.first() {
            None => Err(Error::BadCode(format!("missing the number at the start: {EXAMPLE}"))),
            Some(b) if b.is_ascii_alphabetic() => Err(Error::BadCode(format!("missing the number at the start: {EXAMPLE}"))),
            Some(b) if b.is_ascii_digit() => {
                if !bytes.iter().all(u8::is_ascii_digit) {
                    return Err(Error::BadCode(format!(
                        "the number at the start must be followed by a separator ('-' or a space): {EXAMPLE}"
                    )));
                }
                // Leading zeros do not change the room; strip them so that the
                // digit-count check below is about the value.
                let digits = s.trim_start_matches('0');
                if digits.len() > 5 {
                    return Nameplate::new(u32::MAX);
                }
                // At most five ASCII digits: the parse cannot fail, and an empty
                // string (all zeros) is the invalid value 0.
                Nameplate::new(digits.parse::<u32>().unwrap_or(0))
            }
            Some(_) => Err(Error::BadCode(format!("the code must start with a number: {EXAMPLE}"))),
        }
    }
}

/// Characters that separate the parts of a code: '-', '_', '.', whitespace, and
/// the Unicode dashes (U+2010 to U+2015, U+2212). Users read codes aloud, retype
/// them, and paste them from chat apps that turn hyphens into spaces or
/// typographic dashes, so all of these mean the same.
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '\u{2010}'..='\u{2015}' | '\u{2212}') || c.is_whitespace()
}

/// Checks one secret word (1-based `position` for the message). Messages say what
/// kind of character is wrong but never quote the word: errors may be logged.
fn check_word(word: &str, position: usize) -> Result<()> {
    if word.len() > MAX_WORD_LEN {
        return Err(Error::BadCode(format!(
            "word {position} is too long ({} characters); words have at most {MAX_WORD_LEN} letters",
            word.len()
        )));
    }
    if !word.is_ascii() {
        return Err(Error::BadCode(format!(
            "word {position} contains a character that is not a plain letter a-z (type letters without accents): {EXAMPLE}"
        )));
    }
    if word.bytes().any(|b| b.is_ascii_digit()) {
        return Err(Error::BadCode(format!("word {position} contains a digit; only the number at the start has digits: {EXAMPLE}")));
    }
    if !word.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Error::BadCode(format!(
            "word {position} contains a character that is neither a letter a-z nor a separator ('-', ' ', '_', '.'): {EXAMPLE}"
        )));
    }
    Ok(())
}

/// A transfer code: a public [`Nameplate`] and secret words.
///
/// The words are stored normalized (lowercase, joined by '-') in memory that is
/// zeroized on drop. `Debug` prints only the nameplate, there is no `Display`, and
/// equality compares the words in constant time.
#[derive(Clone)]
pub struct Code {
    nameplate: Nameplate,
    /// Normalized secret words, e.g. "ocean-tiger". Never empty.
    words: Zeroizing<String>,
}

impl Code {
    /// A fresh code from `rng` (the OS CSPRNG, `rand_core::OsRng`, in the real
    /// program): a uniformly random nameplate in `1..=999` and `words` distinct
    /// words drawn uniformly from the list. `words` must be `1..=MAX_WORDS`.
    ///
    /// Words are distinct because a repeated word ("tiger-tiger") looks like a
    /// typo and adds no guessing work; the entropy lost is negligible
    /// (`log2(1296/1295)` bits per word).
    pub fn generate<R: RngCore + CryptoRng>(words: usize, rng: &mut R) -> Result<Code> {
        if !(1..=MAX_WORDS).contains(&words) {
            return Err(Error::Misuse("a code has between 1 and MAX_WORDS (8) words"));
        }
        let list = wordlist();
        // The list length is the constant 1296, so it fits in u32.
        let list_len = u32::try_from(list.len()).map_err(|_| Error::Misuse("word list too long"))?;
        let nameplate = Nameplate(Nameplate::MIN + uniform(rng, Nameplate::GENERATED_MAX));

        // Which words were picked is as secret as the words themselves.
        let mut picked = Zeroizing::new([0usize; MAX_WORDS]);
        let longest = list.iter().map(|w| w.len()).max().unwrap_or(0);
        // Reserve everything up front so that the String never reallocates and
        // leaves an unzeroized copy of a partial secret behind.
        let mut secret = Zeroizing::new(String::with_capacity(words * (longest + 1)));
        for i in 0..words {
            let idx = loop {
                let candidate = uniform(rng, list_len) as usize;
                if !picked[..i].contains(&candidate) {
                    break candidate;
                }
            };
            picked[i] = idx;
            if i > 0 {
                secret.push('-');
            }
            secret.push_str(list[idx]);
        }
        Ok(Code { nameplate, words: secret })
    }

    /// Parses what a user typed or pasted.
    ///
    /// Normalization: surrounding whitespace is trimmed, letters are lowercased,
    /// and any run of separators ('-', ' ', '_', '.', other whitespace, Unicode
    /// dashes) counts as one. So `" 7 Ocean__TIGER "` equals `7-ocean-tiger`.
    ///
    /// Rules: a decimal nameplate (`1..=65535`) first, then 1 to [`MAX_WORDS`]
    /// words of 1 to [`MAX_WORD_LEN`] ASCII letters. Words need not be from the
    /// list (users may choose their own; see [`Code::is_weaker_than_generated`]),
    /// and a prefix of a list word is *not* expanded: expansion would change the
    /// secret behind the user's back, so it belongs to interactive completion
    /// ([`complete`]) only.
    ///
    /// Input longer than [`MAX_CODE_LEN`] bytes is rejected before anything else.
    /// Errors ([`Error::BadCode`]) say what is wrong and what a code looks like,
    /// and never quote the input, which may hold the secret.
    pub fn parse(s: &str) -> Result<Code> {
        if s.len() > MAX_CODE_LEN {
            return Err(Error::BadCode(format!("the code is {} bytes long, more than the limit of {MAX_CODE_LEN}: {EXAMPLE}", s.len())));
        }
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::BadCode(format!("the code is empty: {EXAMPLE}")));
        }
        let mut parts = s.split(is_separator).filter(|p| !p.is_empty());
        let Some(first) = parts.next() else {
            return Err(Error::BadCode(format!("the code has only separators: {EXAMPLE}")));
        };
        let nameplate: Nameplate = first.parse()?;

        let count = parts.clone().count();
        if count == 0 {
            return Err(Error::BadCode(format!("missing the secret words after the number: {EXAMPLE}")));
        }
        if count > MAX_WORDS {
            return Err(Error::BadCode(format!("the code has {count} words, more than the limit of {MAX_WORDS}: {EXAMPLE}")));
        }
        // The normalized form is never longer than the trimmed input, so this
        // String never reallocates (which would leave a stray copy).
        let mut words = Zeroizing::new(String::with_capacity(s.len()));
        for (i, word) in parts.enumerate() {
            check_word(word, i + 1)?;
            if i > 0 {
                words.push('-');
            }
            words.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        }
        Ok(Code { nameplate, words })
    }

    /// The nameplate: the public room number, safe to send to the relay.
    pub fn nameplate(&self) -> &Nameplate {
        &self.nameplate
    }

    /// The same secret words under another nameplate: a sender's code once a
    /// relay has allocated its room (PROTOCOL.md §9.6). The words never reach
    /// the relay, only the number comes from it.
    pub fn with_nameplate(&self, nameplate: Nameplate) -> Code {
        Code { nameplate, words: self.words.clone() }
    }

    /// Number of secret words.
    pub fn word_count(&self) -> usize {
        self.words.split('-').count()
    }

    /// The CPace password (PRS): the normalized secret words joined by '-', e.g.
    /// `b"ocean-tiger"`. The nameplate is not part of it: it is public and already
    /// selects the room, so it adds no secrecy.
    pub fn password(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.words.as_bytes().to_vec())
    }

    /// Approximate guessing entropy of the secret words, in bits.
    ///
    /// - a list word counts `log2(1296) ≈ 10.34` bits;
    /// - any other word counts 1.5 bits per letter, capped at one list word
    ///   (people choose common words, and attackers try those first);
    /// - a word that repeats an earlier one counts nothing.
    ///
    /// The nameplate counts nothing: it is public.
    pub fn entropy_bits(&self) -> f64 {
        let per_list_word = list_word_bits();
        let mut total = 0.0;
        let mut seen: Vec<&str> = Vec::with_capacity(MAX_WORDS);
        for word in self.words.split('-') {
            if seen.contains(&word) {
                continue;
            }
            seen.push(word);
            total += if is_listed(word) { per_list_word } else { (word.len() as f64 * UNLISTED_BITS_PER_LETTER).min(per_list_word) };
        }
        total
    }

    /// True when [`Code::entropy_bits`] is below that of a generated code with
    /// [`DEFAULT_WORDS`] words, so the CLI can warn about a weak hand-made code.
    pub fn is_weaker_than_generated(&self) -> bool {
        // A tiny tolerance so that summing the same per-word value cannot make
        // an equally strong code look weaker through rounding.
        self.entropy_bits() + 1e-9 < DEFAULT_WORDS as f64 * list_word_bits()
    }

    /// The whole code as the owner should see it, e.g. `"7-lemon-tiger"`.
    ///
    /// This is the secret: show it to the user who owns it, never log it or send
    /// it anywhere.
    pub fn expose(&self) -> Zeroizing<String> {
        let nameplate = self.nameplate.to_string();
        let mut out = Zeroizing::new(String::with_capacity(nameplate.len() + 1 + self.words.len()));
        out.push_str(&nameplate);
        out.push('-');
        out.push_str(&self.words);
        out
    }
}

impl PartialEq for Code {
    /// Nameplates compare normally (public); words in constant time (secret).
    fn eq(&self, other: &Self) -> bool {
        self.nameplate == other.nameplate && ct_eq(self.words.as_bytes(), other.words.as_bytes())
    }
}

impl Eq for Code {}

impl fmt::Debug for Code {
    /// Prints the nameplate only; the words are redacted so that a stray `{:?}`
    /// in a log line cannot leak the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Code").field("nameplate", &self.nameplate.0).field("words", &"<redacted>").finish()
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        // `Zeroizing` already wipes the words; this also clears the nameplate so
        // that nothing of the code outlives it in memory.
        self.nameplate.0.zeroize();
    }
}

#[cfg(test)]
#[path = "code_tests.rs"]
mod tests;
