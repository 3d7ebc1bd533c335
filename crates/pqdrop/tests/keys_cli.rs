//! Runs the real `pqdrop` binary: `keys derive` must print what the independent
//! Python implementation wrote to `vectors/keys.json`, take the seed only from
//! stdin or a file, and fail clearly on a bad seed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const FIELDS: [&str; 6] =
    ["seed_exchange_private", "seed_exchange_public", "io_exchange_private", "io_exchange_public", "state_ikm", "callback_secret"];

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/keys.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("vectors/keys.json is valid JSON");
    doc["vectors"].as_array().expect("vectors array").clone()
}

/// Runs `pqdrop ARGS` with `stdin` piped in.
fn pqdrop(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pqdrop"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pqdrop");
    // Write then close stdin so the binary sees end of input. A binary that
    // exits before reading (bad arguments) may close the pipe first; that is
    // fine, so the write result is ignored.
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    child.wait_with_output().expect("wait for pqdrop")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn expected(v: &Value) -> Value {
    let mut want = serde_json::Map::new();
    want.insert("variant".into(), v["variant"].clone());
    for f in FIELDS {
        want.insert(f.into(), v[f].clone());
    }
    Value::Object(want)
}

#[test]
fn json_output_matches_vectors_for_both_variants() {
    let vs = vectors();
    assert!(vs.len() >= 6);
    for v in &vs {
        let seed = format!("{}\n", v["seed"].as_str().unwrap());
        let variant = v["variant"].as_str().unwrap();
        let out = pqdrop(&["keys", "derive", "--variant", variant, "--json"], seed.as_bytes());
        assert!(out.status.success(), "{variant}: {}", stderr(&out));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "exactly one JSON line: {stdout}");
        let got: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
        assert_eq!(got, expected(v), "{} / {variant}", v["name"]);
    }
}

#[test]
fn default_variant_is_spec_and_text_output_matches() {
    for v in vectors().iter().filter(|v| v["variant"] == "spec") {
        let out = pqdrop(&["keys", "derive"], v["seed"].as_str().unwrap().as_bytes());
        assert!(out.status.success(), "{}", stderr(&out));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 1 + FIELDS.len(), "{stdout}");
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["variant:", "spec"]);
        for (line, field) in lines[1..].iter().zip(FIELDS) {
            let (name, value) = line.split_once(':').unwrap();
            assert_eq!(name, field);
            assert_eq!(value.trim_start(), v[field].as_str().unwrap(), "{field}");
        }
    }
}

#[test]
fn seed_file_works() {
    let v = vectors().into_iter().find(|v| v["variant"] == "enclave").unwrap();
    let path: PathBuf = [env!("CARGO_TARGET_TMPDIR"), &format!("keys_cli_seed_{}.hex", std::process::id())].iter().collect();
    std::fs::write(&path, format!("{}\n", v["seed"].as_str().unwrap())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path_arg = path.to_str().unwrap();
    // Stdin holds garbage: the file must win.
    let out = pqdrop(&["keys", "derive", "--variant", "enclave", "--json", "--seed-file", path_arg], b"nonsense");
    std::fs::remove_file(&path).ok();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "no warning for a private file: {}", stderr(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, expected(&v));
}

#[test]
fn missing_seed_file_fails() {
    let out = pqdrop(&["keys", "derive", "--seed-file", "/nonexistent/pqdrop-seed.hex"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot open the seed file /nonexistent/pqdrop-seed.hex"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_seed_fails_with_a_clear_message() {
    let out = pqdrop(&["keys", "derive"], b"0123456789\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("the seed must be 64 hexadecimal characters (32 bytes); got 10 characters"), "{err}");
    assert!(!err.contains("0123456789"), "the input must not be echoed: {err}");

    let out = pqdrop(&["keys", "derive"], b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no seed given"), "{}", stderr(&out));

    let not_hex = "x".repeat(64);
    let out = pqdrop(&["keys", "derive", "--json"], not_hex.as_bytes());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("characters other than 0-9 and a-f"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn seed_is_never_taken_from_argv() {
    let seed = "00".repeat(32);
    let out = pqdrop(&["keys", "derive", &seed], b"");
    assert!(!out.status.success(), "a positional seed must be rejected");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_variant_is_rejected() {
    let out = pqdrop(&["keys", "derive", "--variant", "other"], "00".repeat(32).as_bytes());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("spec") && stderr(&out).contains("enclave"), "{}", stderr(&out));
}

#[test]
fn help_has_examples() {
    let out = pqdrop(&["keys", "derive", "--help"], b"");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Examples:") && help.contains("--seed-file"), "{help}");
    assert!(help.contains("never from the command line"), "{help}");
}
