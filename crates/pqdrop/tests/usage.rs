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

#[test]
fn ctrl_c_exits_130_and_says_how_to_resume() {
    // Loopback only: LAN mode bound to 127.0.0.1 on a port of its own.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port();
    for side in ["send", "receive"] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pqdrop"));
        if side == "send" {
            cmd.args(["send", "--code", "7-lemon-tiger", "Cargo.toml"]);
        } else {
            cmd.args(["receive", "--lan-timeout", "30", "7-lemon-tiger"]);
        }
        let child = cmd
            .env_remove("PQDROP_RELAY")
            .env("XDG_CONFIG_HOME", "/nonexistent-pqdrop-test")
            .env("PQDROP_LAN_BIND", "127.0.0.1")
            .env("PQDROP_LAN_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(800));
        // The shell's own `kill`, so no procps package is needed.
        let sent = Command::new("/bin/sh").arg("-c").arg(format!("kill -INT {}", child.id())).status().expect("kill");
        assert!(sent.success());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{side}: {err}");
        assert!(err.contains("interrupted (Ctrl-C)") && err.contains("new code"), "{side}: {err}");
    }
}

#[test]
fn a_closed_stderr_is_not_a_crash() {
    // `pqdrop send F 2>&1 | true`: the reader of stderr is gone at once.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pqdrop"))
        .args(["send", "--code", "7-lemon-tiger", "--relay", "127.0.0.1:9", "Cargo.toml"])
        .env("XDG_CONFIG_HOME", "/nonexistent-pqdrop-test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    // Port 9 on loopback refuses: exit 5 (unreachable), not 101 (a panic).
    assert_eq!(status.code(), Some(5), "{status:?}");
}
