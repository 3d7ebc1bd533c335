//! The receiver's name rules: parsing never panics, whatever parses is a
//! plain relative path that re-parses to itself, and the collision set never
//! panics and refuses an exact duplicate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_proto::transfer::names::{escape, CollisionSet, SafePath};

fuzz_target!(|data: &[u8]| {
    let mut set = CollisionSet::new(1_000);
    for raw in data.split(|&b| b == b'\n').take(64) {
        let shown = escape(raw);
        assert!(!shown.chars().any(|c| c.is_control()), "escaped names hold no control characters");
        if let Ok(p) = SafePath::parse(raw) {
            let joined = p.components().join("/");
            assert_eq!(joined.as_bytes(), raw);
            assert!(!p.components().iter().any(|c| c.is_empty() || c == "." || c == ".."));
            assert_eq!(SafePath::parse(joined.as_bytes()).as_ref(), Ok(&p));
            if set.insert(&p, false).is_ok() {
                assert!(set.insert(&p, false).is_err(), "a duplicate is refused");
            }
        }
    }
});
