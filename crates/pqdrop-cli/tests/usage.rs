//! Usage errors exit 2 and say what was wrong, before anything connects.

use std::process::{Command, Stdio};

fn pqdrop(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pqdrop"))
        .args(args)
        .env_remove("PQDROP_RELAY")
        .env_remove("PQDROP_CODE")
        .env("XDG_CONFIG_HOME", "/nonexistent-pqdrop-test")
        .stdin(Stdio::null())
        .output()
        .expect("run pqdrop");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn invalid_codes_are_usage_errors() {
    let (code, err) = pqdrop(&["send", "--code", "not-a-code", "--relay", "127.0.0.1:9", "Cargo.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--code"), "{err}");
    let (code, err) = pqdrop(&["send", "--code", "", "--relay", "127.0.0.1:9", "Cargo.toml"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = pqdrop(&["receive", "--relay", "127.0.0.1:9", "x-y"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the code"), "{err}");
}
