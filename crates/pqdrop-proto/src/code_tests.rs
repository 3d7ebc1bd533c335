//! Unit tests of `code.rs`: parsing, generation, nameplates, completion.
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
        ("7ocean-tiger", "the number at the start must be followed by a separator ('-' or a space): codes look like 7-lemon-tiger"),
        ("#7-ocean-tiger", "the code must start with a number: codes look like 7-lemon-tiger"),
        ("0-ocean-tiger", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
        ("000-ocean-tiger", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
        ("65536-ocean-tiger", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
        ("99999999999999999999999-ocean", "the number at the start must be between 1 and 65535: codes look like 7-lemon-tiger"),
        ("7", "missing the secret words after the number: codes look like 7-lemon-tiger"),
        ("7--", "missing the secret words after the number: codes look like 7-lemon-tiger"),
        ("7-a-b-c-d-e-f-g-h-i", "the code has 9 words, more than the limit of 8: codes look like 7-lemon-tiger"),
        ("7-ocean-tiger2", "word 2 contains a digit; only the number at the start has digits: codes look like 7-lemon-tiger"),
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
