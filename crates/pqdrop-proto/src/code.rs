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
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert_eq, proptest};

    #[test]
    fn nameplates_on_the_wire_have_one_form() {
        for (wire, want) in [("1", Some(1)), ("42", Some(42)), ("65535", Some(65_535)), ("999", Some(999))] {
            assert_eq!(Nameplate::from_wire(wire.as_bytes()).map(|n| n.get()), want, "{wire}");
            assert_eq!(Nameplate::from_wire(wire.as_bytes()).map(|n| n.to_string()).as_deref(), Some(wire));
        }
        for bad in ["", "0", "07", "65536", "123456", "1a", " 1", "+1", "-1"] {
            assert_eq!(Nameplate::from_wire(bad.as_bytes()), None, "{bad:?}");
        }
    }

    /// Deterministic CryptoRng for tests: SHA-256 in counter mode over a seed.
    struct TestRng {
        seed: u64,
        counter: u64,
    }

    impl TestRng {
        fn new(seed: u64) -> Self {
            Self { seed, counter: 0 }
        }
    }

    impl RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            let mut b = [0u8; 4];
            self.fill_bytes(&mut b);
            u32::from_le_bytes(b)
        }
        fn next_u64(&mut self) -> u64 {
            let mut b = [0u8; 8];
            self.fill_bytes(&mut b);
            u64::from_le_bytes(b)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(32) {
                let block = crate::primitives::sha256(&[&self.seed.to_le_bytes(), &self.counter.to_le_bytes()]);
                self.counter += 1;
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl CryptoRng for TestRng {}

    fn err(s: &str) -> String {
        match Code::parse(s) {
            Err(Error::BadCode(m)) => m,
            Err(e) => panic!("unexpected error kind for {s:?}: {e:?}"),
            Ok(c) => panic!("{s:?} parsed unexpectedly: {c:?}"),
        }
    }

    #[test]
    fn wordlist_shape() {
        let list = wordlist();
        assert_eq!(list.len(), WORDLIST_LEN);
        assert!(list.len() >= 1024);
        for w in list {
            assert!((3..=10).contains(&w.len()), "{w}");
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w} is not lowercase a-z");
        }
        assert!(list.windows(2).all(|p| p[0] < p[1]), "list must be sorted and without duplicates");
        assert_eq!(list.first(), Some(&"aardvark"));
        assert_eq!(list.last(), Some(&"zucchini"));
    }

    #[test]
    fn three_letter_prefixes_are_unique() {
        let mut prefixes: Vec<&str> = wordlist().iter().map(|w| &w[..3]).collect();
        prefixes.sort_unstable();
        let before = prefixes.len();
        prefixes.dedup();
        assert_eq!(prefixes.len(), before, "two words share a 3-letter prefix");
        // Therefore three letters complete every word uniquely.
        for w in wordlist() {
            assert_eq!(complete(&w[..3]), vec![*w]);
        }
    }

    #[test]
    fn completion() {
        assert_eq!(complete("zuc"), vec!["zucchini"]);
        assert_eq!(complete("ZUC"), vec!["zucchini"]);
        assert_eq!(complete("zucchini"), vec!["zucchini"]);
        assert_eq!(complete("zucchinis"), Vec::<&str>::new());
        assert_eq!(complete("yo"), vec!["yodel", "yogurt", "yoyo"]);
        assert_eq!(complete("aa"), vec!["aardvark"]);
        assert_eq!(complete("qqq"), Vec::<&str>::new());
        assert_eq!(complete("o-"), Vec::<&str>::new());
        assert_eq!(complete("é"), Vec::<&str>::new());
        assert_eq!(complete("").len(), WORDLIST_LEN);
        let z = complete("z");
        assert!(z.len() > 3 && z.iter().all(|w| w.starts_with('z')));
        assert_eq!(z.len(), wordlist().iter().filter(|w| w.starts_with('z')).count());
    }

    #[test]
    fn parse_normalizes_case_and_separators() {
        let want = Code::parse("7-ocean-tiger").unwrap();
        for s in [
            "7-ocean-tiger",
            "  7-ocean-tiger\n",
            "7 ocean tiger",
            "7_ocean_tiger",
            "7.ocean.tiger",
            "7--ocean  tiger",
            "7 - Ocean - TIGER",
            "\t7\tOCEAN\t\ttiger\r\n",
            "-7-ocean-tiger-",
            "007-ocean-tiger",
            "7-_. ocean-tiger",
            "7\u{2013}ocean\u{2014}tiger",
            "7\u{a0}ocean\u{2212}tiger",
        ] {
            assert_eq!(Code::parse(s).unwrap(), want, "{s:?}");
        }
        assert_eq!(want.nameplate().get(), 7);
        assert_eq!(want.password().as_slice(), b"ocean-tiger");
        assert_eq!(want.expose().as_str(), "7-ocean-tiger");
        assert_eq!(want.word_count(), 2);
    }

    #[test]
    fn parse_keeps_user_words_and_does_not_expand_prefixes() {
        let c = Code::parse("12-oce-tig").unwrap();
        assert_eq!(c.password().as_slice(), b"oce-tig");
        assert_ne!(c, Code::parse("12-ocean-tiger").unwrap());
        let own = Code::parse("65535-Correct-Horse-Battery-Staple").unwrap();
        assert_eq!(own.nameplate().get(), 65535);
        assert_eq!(own.password().as_slice(), b"correct-horse-battery-staple");
        let one = Code::parse("1-x").unwrap();
        assert_eq!(one.word_count(), 1);
    }

    #[test]
    fn different_codes_are_not_equal() {
        let a = Code::parse("7-ocean-tiger").unwrap();
        assert_ne!(a, Code::parse("8-ocean-tiger").unwrap());
        assert_ne!(a, Code::parse("7-ocean-tigers").unwrap());
        assert_ne!(a, Code::parse("7-tiger-ocean").unwrap());
        assert_ne!(a, Code::parse("7-ocean").unwrap());
    }

    #[test]
    fn parse_error_messages() {
        let cases: &[(&str, &str)] = &[
            ("", "the code is empty: codes look like 7-lemon-tiger"),
            ("   \n", "the code is empty: codes look like 7-lemon-tiger"),
            ("- _ .", "the code has only separators: codes look like 7-lemon-tiger"),
            ("ocean-tiger", "missing the number at the start: codes look like 7-lemon-tiger"),
            ("ocean-tiger-7", "missing the number at the start: codes look like 7-lemon-tiger"),
            (
                "7ocean-tiger",
                "the number at the start must be followed by a separator ('-' or a space): codes look like 7-lemon-tiger",
            ),
            ("#7-ocean-tiger", "the code must start with a number: codes look like 7-lemon-tiger"),
            ("0-ocean-tiger", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
            ("000-ocean-tiger", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
            ("65536-ocean-tiger", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
            (
                "99999999999999999999999-ocean",
                "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger",
            ),
            ("7", "missing the secret words after the number: codes look like 7-lemon-tiger"),
            ("7--", "missing the secret words after the number: codes look like 7-lemon-tiger"),
            ("7-a-b-c-d-e-f-g-h-i", "the code has 9 words, more than the limit of 8: codes look like 7-lemon-tiger"),
            (
                "7-ocean-tiger2",
                "word 2 contains a digit; only the number at the start has digits: codes look like 7-lemon-tiger",
            ),
            ("7-3-tiger", "word 1 contains a digit; only the number at the start has digits: codes look like 7-lemon-tiger"),
            (
                "7-océan-tiger",
                "word 1 contains a character that is not a plain letter a-z (type letters without accents): codes look like 7-lemon-tiger",
            ),
            (
                "7-ocean-ti/ger",
                "word 2 contains a character that is neither a letter a-z nor a separator ('-', ' ', '_', '.'): codes look like 7-lemon-tiger",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), *want, "input {input:?}");
        }
        let long_word = format!("7-{}", "a".repeat(MAX_WORD_LEN + 1));
        assert_eq!(err(&long_word), "word 1 is too long (33 characters); words have at most 32 letters");
        assert!(Code::parse(&format!("7-{}", "a".repeat(MAX_WORD_LEN))).is_ok());
        let long = format!("7-{}", "ab-".repeat(100));
        assert_eq!(err(&long), "the code is 302 bytes long, more than the limit of 256: codes look like 7-lemon-tiger");
        // The Display of the crate error adds its own prefix.
        assert_eq!(Code::parse("").unwrap_err().to_string(), "invalid code: the code is empty: codes look like 7-lemon-tiger");
    }

    #[test]
    fn errors_never_quote_the_secret() {
        for s in ["tigerzz-ocean", "7-secretword-x9", "7-secretwordé", "7-secretword/", "7secretword"] {
            let m = err(s);
            assert!(!m.contains("secretword") && !m.contains("tigerzz"), "{m}");
        }
    }

    #[test]
    fn nameplate_rules() {
        assert!(Nameplate::new(0).is_err());
        assert!(Nameplate::new(65_536).is_err());
        assert_eq!(Nameplate::new(1).unwrap().get(), 1);
        assert_eq!(Nameplate::new(65_535).unwrap().to_string(), "65535");
        assert_eq!("0042".parse::<Nameplate>().unwrap(), Nameplate::new(42).unwrap());
        assert!("".parse::<Nameplate>().is_err());
        assert!("4 2".parse::<Nameplate>().is_err());
    }

    #[test]
    fn generated_codes_parse_back() {
        let mut rng = TestRng::new(1);
        for words in 1..=MAX_WORDS {
            for _ in 0..50 {
                let c = Code::generate(words, &mut rng).unwrap();
                assert!((1..=Nameplate::GENERATED_MAX).contains(&c.nameplate().get()));
                assert_eq!(c.word_count(), words);
                let back = Code::parse(&c.expose()).unwrap();
                assert_eq!(back, c);
                let pw = c.password();
                let text = core::str::from_utf8(&pw).unwrap();
                let ws: Vec<&str> = text.split('-').collect();
                assert!(ws.iter().all(|w| is_listed(w)));
                let mut dedup = ws.clone();
                dedup.sort_unstable();
                dedup.dedup();
                assert_eq!(dedup.len(), ws.len(), "generated words must be distinct");
            }
        }
        let c = Code::generate(DEFAULT_WORDS, &mut rand_core::OsRng).unwrap();
        assert_eq!(Code::parse(&c.expose()).unwrap(), c);
        assert!(!c.is_weaker_than_generated());
    }

    #[test]
    fn generate_rejects_bad_word_counts() {
        let mut rng = TestRng::new(2);
        assert!(matches!(Code::generate(0, &mut rng), Err(Error::Misuse(_))));
        assert!(matches!(Code::generate(MAX_WORDS + 1, &mut rng), Err(Error::Misuse(_))));
    }

    #[test]
    fn generation_covers_the_range() {
        // Not a statistics test, only a guard against an off-by-one that would
        // never pick the first or last word or nameplate.
        let mut rng = TestRng::new(3);
        let mut seen = vec![false; WORDLIST_LEN];
        let mut plates = vec![false; Nameplate::GENERATED_MAX as usize + 1];
        for _ in 0..20_000 {
            let c = Code::generate(1, &mut rng).unwrap();
            plates[c.nameplate().get() as usize] = true;
            let pw = c.password();
            let w = core::str::from_utf8(&pw).unwrap();
            seen[wordlist().binary_search(&w).unwrap()] = true;
        }
        assert!(!plates[0]);
        assert!(plates[1] && plates[Nameplate::GENERATED_MAX as usize]);
        assert!(seen[0] && seen[WORDLIST_LEN - 1]);
        assert!(seen.iter().filter(|s| **s).count() > WORDLIST_LEN * 9 / 10);
    }

    #[test]
    fn debug_redacts_words() {
        let c = Code::parse("7-ocean-tiger").unwrap();
        let d = format!("{c:?}");
        assert_eq!(d, r#"Code { nameplate: 7, words: "<redacted>" }"#);
        assert!(!d.contains("ocean") && !d.contains("tiger"));
        let d = format!("{c:#?}");
        assert!(!d.contains("ocean") && !d.contains("tiger"));
    }

    #[test]
    fn entropy() {
        let bits = (1296f64).log2();
        let two = Code::parse("7-ocean-tiger").unwrap(); // "ocean"? check membership below
        let listed = |w: &str| is_listed(w);
        assert!(listed("tiger") && !listed("ocean"), "fixture assumption");
        // tiger is listed; ocean (5 letters, unlisted) counts 7.5 bits.
        assert!((two.entropy_bits() - (bits + 7.5)).abs() < 1e-9);
        assert!(two.is_weaker_than_generated());

        let gen = Code::parse("7-aardvark-zucchini").unwrap();
        assert!((gen.entropy_bits() - 2.0 * bits).abs() < 1e-9);
        assert!(!gen.is_weaker_than_generated());

        // Repeats count nothing.
        let rep = Code::parse("7-zucchini-zucchini").unwrap();
        assert!((rep.entropy_bits() - bits).abs() < 1e-9);
        assert!(rep.is_weaker_than_generated());

        // A long unlisted word counts at most one list word.
        let long = Code::parse("7-supercalifragilistic").unwrap();
        assert!((long.entropy_bits() - bits).abs() < 1e-9);
        let own = Code::parse("7-correct-horse-battery-staple").unwrap();
        assert!(!own.is_weaker_than_generated());
        assert!(Code::parse("7-a-b").unwrap().entropy_bits() < 4.0);

        let mut rng = TestRng::new(4);
        for words in 1..=MAX_WORDS {
            let c = Code::generate(words, &mut rng).unwrap();
            assert!((c.entropy_bits() - words as f64 * bits).abs() < 1e-9);
            assert_eq!(c.is_weaker_than_generated(), words < DEFAULT_WORDS);
        }
    }

    #[test]
    fn uniform_stays_in_range() {
        let mut rng = TestRng::new(5);
        for n in [1u32, 2, 3, 999, 1296, u32::MAX] {
            for _ in 0..200 {
                assert!(uniform(&mut rng, n) < n);
            }
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = Code::parse(&s);
        }

        #[test]
        fn parse_is_idempotent_on_its_own_output(s in "[0-9]{1,5}[-_. ]{1,3}[a-zA-Z]{1,12}([-_. ]{1,2}[a-zA-Z]{1,12}){0,6}") {
            if let Ok(c) = Code::parse(&s) {
                let again = Code::parse(&c.expose()).unwrap();
                prop_assert_eq!(&again, &c);
                let (a, b) = (again.expose(), c.expose());
                prop_assert_eq!(a.as_str(), b.as_str());
            }
        }
    }

    #[test]
    fn typos_get_the_nearest_words() {
        assert!(super::is_word("tiger") && super::is_word("Tiger") && !super::is_word("ocean"));
        assert_eq!(super::suggest("tigre").first(), Some(&"tiger"), "a swap");
        assert!(super::suggest("lemn").contains(&"lemon"), "a deletion");
        assert!(super::suggest("tiger").iter().all(|w| *w != "tiger"), "not the word itself");
        assert!(super::suggest("zzzzzzzzzz").is_empty());
        assert!(super::suggest(&"a".repeat(100)).is_empty());
    }
}
