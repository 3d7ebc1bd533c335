//! Identity files and recovery phrases from hostile bytes: opening never
//! panics, refuses before any costly work what it cannot read, and whatever
//! opens or parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqdrop_proto::identity::{file_protection, open_file, recovery_phrase, seal_file_with, seed_from_phrase, Protection};

fuzz_target!(|input: &[u8]| {
    // Half the inputs get the magic and the exact length, to reach the
    // header fields and the seal rather than the first check.
    let mut framed;
    let data = match input.split_first() {
        Some((0, rest)) => {
            framed = b"PQDROPID".to_vec();
            framed.extend_from_slice(rest);
            framed.resize(100, 0);
            &framed[..]
        }
        _ => input,
    };
    // As an identity file. Argon2id with a large cost is slow by design, so
    // only small costs are opened here; the header check runs on all.
    match file_protection(data) {
        Ok(Protection::Passphrase(c)) if u64::from(c.m_kib) * u64::from(c.t) > 4096 => {}
        Ok(p) => {
            if let Ok(seed) = open_file(data, Some(b"fuzz")) {
                // Only a file sealed under these inputs opens; sealing it
                // again with its own salt and nonce gives the same bytes.
                let mut salt = [0u8; 16];
                salt.copy_from_slice(&data[24..40]);
                let mut nonce = [0u8; 12];
                nonce.copy_from_slice(&data[40..52]);
                let again = seal_file_with(&seed, p, Some(b"fuzz"), salt, nonce).expect("seal");
                assert_eq!(again, data);
            }
        }
        Err(_) => assert!(open_file(data, Some(b"fuzz")).is_err()),
    }
    // As a recovery phrase.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(seed) = seed_from_phrase(text) {
            assert_eq!(seed_from_phrase(&recovery_phrase(&seed)), Ok(seed));
        }
    }
});
