//! What croc and magic-wormhole users expect to find, through the real
//! binary: completion scripts and a man page from the CLI definition, a QR
//! code of the receive command, `--json` result events on success and
//! failure, and `keys` out of the top-level help but still there.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("PQDROP_RELAY")
        .env("XDG_CONFIG_HOME", "/nonexistent-pqdrop-test")
        .stdin(Stdio::null())
        .output()
        .expect("run pqdrop")
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef pqdrop"),
        ("fish", "complete -c pqdrop"),
        ("elvish", "edit:completion"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in ["send", "receive", "relay"] {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
    }
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH pqdrop 1"), "a roff man page");
    assert!(page.contains("send") && page.contains("receive"));
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn generated_output_into_a_closed_pipe_is_not_a_crash() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn keys_is_hidden_from_the_help_but_still_works() {
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    assert!(help.contains("completions") && help.contains("send"), "{help}");
    assert!(!help.lines().any(|l| l.trim_start().starts_with("keys")), "{help}");
    let out = run(&["keys", "--help"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn qr_code_and_json_results() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("a.bin");
    write_pseudo_random_file(&file, 5, 300_000);
    let mut s = h.send().args(["--qr"]).arg(&file).spawn("sender");
    let line = s.wait_for_stderr_line("Code: ", Duration::from_secs(30));
    let code = line.trim().trim_start_matches("Code: ").to_string();
    // The QR code follows the receive command: rows of half blocks.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s.stderr_now().contains('\u{2588}') {
        assert!(std::time::Instant::now() < deadline, "no QR code drawn:\n{}", s.stderr_now());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut r = h.receive().args(["--yes", "--json", "-o", out.path().to_str().expect("utf-8"), &code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], Duration::from_secs(60));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert!(s.stderr.contains("Done: sent"), "{}", s.stderr);
    let res = r.json_result();
    assert_eq!(res["ok"], true, "{res}");
    assert!(res["elapsed_s"].as_f64().is_some_and(|t| t >= 0.0), "{res}");
    assert!(res["rate_bytes_per_s"].as_f64().is_some(), "{res}");

    // A failure ends with a result event too: ok false, the exit code, the message.
    let mut r = h.command("receive").args(["--json", "--relay", "127.0.0.1:1", "5-lemon-tiger"]).spawn("receiver");
    let f = r.wait(Duration::from_secs(30));
    f.assert_code(exit::UNREACHABLE);
    let res = f.json_lines().last().cloned().expect("a JSON result line");
    assert_eq!(res["event"], "result", "{res}");
    assert_eq!(res["ok"], false, "{res}");
    assert_eq!(res["exit_code"], exit::UNREACHABLE, "{res}");
    assert!(res["error"].as_str().is_some_and(|e| e.contains("127.0.0.1:1")), "{res}");
}

#[test]
fn a_bad_config_line_is_an_error_with_its_number() {
    let home = temp_dir("pqdrop-cfg-");
    std::fs::create_dir_all(home.path().join("pqdrop")).expect("mkdir");
    std::fs::write(home.path().join("pqdrop/config"), "# my relay\nrelya = relay.example.org\n").expect("write");
    let out = Command::new(BIN)
        .args(["send", "--text", "hi"])
        .env_remove("PQDROP_RELAY")
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .expect("run pqdrop");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 2") && err.contains("relya"), "{err}");
}

#[test]
fn a_relay_from_the_environment_is_in_the_printed_command() {
    let h = Harness::new(Net::Relay);
    let relay = h.relay_addr().expect("relay").to_string();
    let mut s = h.command("send").env("PQDROP_RELAY", &relay).args(["--text", "hello"]).spawn("sender");
    let line = s.wait_for_stderr_line("pqdrop receive", Duration::from_secs(30));
    assert!(line.contains(&format!("--relay {relay}")), "{line}");
    let waiting = s.wait_for_stderr_line("Waiting for the receiver", Duration::from_secs(30));
    assert!(waiting.contains(&relay), "{waiting}");
}

/// Runs `pqdrop receive ARGS` on a pseudo-terminal (util-linux `script`),
/// answering each "already exists" question with the next of `answers`;
/// returns the exit code and what the terminal showed.
fn receive_on_a_terminal(h: &Harness, args: &[&str], answers: &[&str]) -> (Option<i32>, String) {
    receive_on_a_terminal_of(h, None, args, answers)
}

/// [`receive_on_a_terminal`] with the terminal `cols` columns wide.
fn receive_on_a_terminal_of(h: &Harness, cols: Option<u16>, args: &[&str], answers: &[&str]) -> (Option<i32>, String) {
    use common::terminal::{shell_quote, Terminal};
    let mut cmd = vec![BIN.to_string(), "receive".into(), "--relay".into(), h.relay_addr().expect("relay").to_string()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let mut line = cmd.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    if let Some(cols) = cols {
        line = format!("stty cols {cols} rows 24 && exec {line}");
    }
    let envs: [(&str, &std::ffi::OsStr); 2] = [("XDG_CONFIG_HOME", "/nonexistent-pqdrop-test".as_ref()), ("NO_COLOR", "1".as_ref())];
    let mut t = Terminal::spawn(&line, &envs, &["PQDROP_RELAY"], Duration::from_secs(60));
    for (i, answer) in answers.iter().enumerate() {
        t.wait_for("already exists here", i + 1);
        t.type_text(&format!("{answer}\n"));
    }
    t.finish()
}

#[test]
fn a_person_at_a_terminal_chooses_for_each_existing_file() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    for (name, body) in [("a.txt", "new a, longer than before"), ("b.txt", "new b, longer than before"), ("c.txt", "new c")] {
        std::fs::write(src.path().join(name), body).expect("write");
    }
    let files: Vec<_> = ["a.txt", "b.txt", "c.txt"].iter().map(|n| src.path().join(n)).collect();

    // One answer per file: rename a, skip b; c is new.
    let out = temp_dir("pqdrop-out-");
    std::fs::write(out.path().join("a.txt"), "old a").expect("write");
    std::fs::write(out.path().join("b.txt"), "old b").expect("write");
    let mut s = h.send().args(["--code", "41-lemon-tiger"]).args(&files).spawn("sender");
    let (code, shown) = receive_on_a_terminal(&h, &["--yes", "-o", out.path().to_str().expect("utf-8"), "41-lemon-tiger"], &["r", "s"]);
    assert_eq!(code, Some(0), "{shown}");
    s.wait(Duration::from_secs(30)).assert_code(exit::OK);
    let read = |n: &str| std::fs::read_to_string(out.path().join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(read("a.txt"), "old a");
    assert_eq!(read("a (1).txt"), "new a, longer than before");
    assert_eq!(read("b.txt"), "old b", "skipped");
    assert_eq!(read("c.txt"), "new c");

    // "O": overwrite this one and every other that exists, asked once.
    let out = temp_dir("pqdrop-out-");
    std::fs::write(out.path().join("a.txt"), "old a").expect("write");
    std::fs::write(out.path().join("b.txt"), "old b").expect("write");
    let mut s = h.send().args(["--code", "42-lemon-tiger"]).args(&files).spawn("sender");
    let (code, shown) = receive_on_a_terminal(&h, &["--yes", "-o", out.path().to_str().expect("utf-8"), "42-lemon-tiger"], &["O"]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("already exists here").count(), 1, "asked once:\n{shown}");
    s.wait(Duration::from_secs(30)).assert_code(exit::OK);
    let read = |n: &str| std::fs::read_to_string(out.path().join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(read("a.txt"), "new a, longer than before");
    assert_eq!(read("b.txt"), "new b, longer than before");

    // "q": nothing changes, exit 9, and the sender hears why.
    let out = temp_dir("pqdrop-out-");
    std::fs::write(out.path().join("a.txt"), "old a").expect("write");
    let mut s = h.send().args(["--code", "43-lemon-tiger"]).args(&files).spawn("sender");
    let (code, shown) = receive_on_a_terminal(&h, &["--yes", "-o", out.path().to_str().expect("utf-8"), "43-lemon-tiger"], &["q"]);
    assert_eq!(code, Some(exit::EXISTS), "{shown}");
    let sent = s.wait(Duration::from_secs(30));
    sent.assert_code(exit::EXISTS);
    assert_eq!(std::fs::read_to_string(out.path().join("a.txt")).expect("kept"), "old a");
    assert!(!out.path().join("c.txt").exists(), "nothing was received");
}

#[test]
fn one_code_several_receivers_and_guessing_retires_it() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("shared.bin");
    write_pseudo_random_file(&file, 9, 200_000);
    let code = "61-lemon-tiger";
    let mut s = h.send().args(["--multiple", "2", "--code", code]).arg(&file).spawn("sender");
    s.wait_for_stderr_line("Waiting for the receiver", Duration::from_secs(30));
    for i in 0..2 {
        let out = temp_dir("pqdrop-out-");
        let mut r = h.receive().args(["--yes", "-o", out.path().to_str().expect("utf-8"), code]).spawn(&format!("receiver {}", i + 1));
        r.wait(Duration::from_secs(60)).assert_code(exit::OK);
        assert_same_file(&file, &out.path().join("shared.bin"));
    }
    let done = s.wait(Duration::from_secs(30));
    done.assert_code(exit::OK);
    assert!(done.stderr.contains("receiver 2 of 2"), "{}", done.stderr);

    // Three wrong codes retire it: the sender stops with exit 3.
    let mut s = h.send().args(["--multiple", "5", "--code", "62-lemon-tiger"]).arg(&file).spawn("sender");
    s.wait_for_stderr_line("Waiting for the receiver", Duration::from_secs(30));
    for i in 0..3 {
        let out = temp_dir("pqdrop-out-");
        let mut r =
            h.receive().args(["--yes", "-o", out.path().to_str().expect("utf-8"), "62-lemon-zebra"]).spawn(&format!("guess {}", i + 1));
        r.wait(Duration::from_secs(60)).assert_code(exit::WRONG_CODE);
    }
    let done = s.wait(Duration::from_secs(30));
    done.assert_code(exit::WRONG_CODE);
    assert!(done.stderr.contains("the code is retired"), "{}", done.stderr);

    // Standard input can be read only once.
    let f = h.send().args(["--multiple", "2", "-"]).spawn("stdin").wait(Duration::from_secs(30));
    f.assert_code(2);
}

#[test]
fn a_named_symlink_is_sent_under_its_own_name() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    std::fs::write(src.path().join("target.txt"), "the target's content").expect("write");
    std::fs::create_dir(src.path().join("real-dir")).expect("mkdir");
    std::fs::write(src.path().join("real-dir/inner.txt"), "inside").expect("write");
    std::os::unix::fs::symlink("target.txt", src.path().join("latest.txt")).expect("symlink");
    std::os::unix::fs::symlink("real-dir", src.path().join("current")).expect("symlink");
    let out = temp_dir("pqdrop-out-");
    let code = "71-lemon-tiger";
    let mut s = h.send().args(["--code", code]).arg(src.path().join("latest.txt")).arg(src.path().join("current")).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", out.path().to_str().expect("utf-8"), code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], Duration::from_secs(60));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(std::fs::read_to_string(out.path().join("latest.txt")).expect("own name"), "the target's content");
    assert_eq!(std::fs::read_to_string(out.path().join("current/inner.txt")).expect("own name"), "inside");
    assert!(!out.path().join("target.txt").exists() && !out.path().join("real-dir").exists(), "never under the target's name");
    assert!(!std::fs::symlink_metadata(out.path().join("latest.txt")).expect("meta").file_type().is_symlink());
}

#[test]
fn a_text_ends_its_line_on_a_terminal() {
    let h = Harness::new(Net::Relay);
    let mut s = h.send().args(["--code", "72-lemon-tiger", "--text", "no newline at the end"]).spawn("sender");
    let (code, shown) = receive_on_a_terminal(&h, &["--yes", "72-lemon-tiger"], &[]);
    assert_eq!(code, Some(0), "{shown}");
    s.wait(Duration::from_secs(30)).assert_code(exit::OK);
    assert!(shown.contains("no newline at the end\r\n"), "{shown:?}");
}

#[test]
fn on_the_lan_the_offer_says_where_the_sender_is() {
    let h = Harness::new(Net::Lan);
    let out = temp_dir("pqdrop-out-");
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("one.txt");
    std::fs::write(&file, "one").expect("write");
    let mut s = h.send().args(["--code", "73-lemon-tiger"]).arg(&file).spawn("sender");
    let mut r = h.receive().args(["--yes", "-o", out.path().to_str().expect("utf-8"), "73-lemon-tiger"]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], Duration::from_secs(60));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert!(r.stderr.contains("The sender at 127.0.0.1 offers 1 file and 0 folders"), "{}", r.stderr);
}

/// Strips terminal control sequences (CSI, and the lone ESC of others). A
/// CSI sequence becomes a line break: indicatif moves between its lines with
/// cursor movements, not newlines.
fn visible(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final byte.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
                out.push('\n');
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn the_progress_bar_names_the_file_and_fits_40_columns() {
    let h = Harness::new(Net::Relay);
    let src = temp_dir("pqdrop-src-");
    let long = "a-file-with-a-rather-long-name-that-cannot-fit-in-forty-columns-at-all.bin";
    let dir = src.path().join("photos");
    std::fs::create_dir(&dir).expect("mkdir");
    for (i, name) in ["first.bin", long].iter().enumerate() {
        write_pseudo_random_file(&dir.join(name), i as u64, 24 << 20);
    }
    let out = temp_dir("pqdrop-out-");
    let mut s = h.send().args(["--code", "43-lemon-tiger", "--zstd", "off"]).arg(&dir).spawn("sender");
    let (code, shown) =
        receive_on_a_terminal_of(&h, Some(40), &["--yes", "-o", out.path().to_str().expect("utf-8"), "43-lemon-tiger"], &[]);
    assert_eq!(code, Some(0), "{shown}");
    s.wait(Duration::from_secs(60)).assert_code(exit::OK);
    assert_same_file(&dir.join(long), &out.path().join("photos").join(long));
    // The terminal shows each run of text in rows of 40 columns (indicatif
    // pads its lines to the width and lets the terminal wrap them).
    let text = visible(&shown);
    let rows: Vec<String> = text
        .split(['\r', '\n'])
        .flat_map(|seg| seg.chars().collect::<Vec<_>>().chunks(40).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>())
        .collect();
    let bars: Vec<&String> = rows.iter().filter(|r| r.contains('%') && (r.contains('░') || r.contains('█'))).collect();
    assert!(!bars.is_empty(), "no progress bar was drawn:\n{text}");
    for r in &bars {
        // A bar that did not fit would spill its rate and ETA into the next row.
        assert!(r.contains('%') && r.contains("ETA") && r.contains("B/s"), "the bar does not fit 40 columns: {r:?}\n{text}");
    }
    // Whichever file lines were drawn fit the width (indicatif draws at most
    // 20 times a second, so a file that moves in a few milliseconds may
    // never be shown; only the first, drawn at 0 %, is certain).
    for r in rows.iter().filter(|r| r.starts_with("photos/") || r.starts_with('…')) {
        assert!(r.trim_end().chars().count() < 40, "the file line does not fit 40 columns: {r:?}\n{text}");
    }
    // The long name sorts first (the sender walks a folder in name order),
    // and keeps its end, cut to the terminal.
    assert!(
        rows.iter().any(|r| r.starts_with('…') && r.trim_end().ends_with("columns-at-all.bin")),
        "the long name was not shown by its end:\n{text}"
    );
}

/// `send --web` through a relay started with `--web`: the link is the
/// relay's page URL with the code in the fragment (JSON `url`), and a CLI
/// receiver still takes the same code. Without a page, or on the LAN, it
/// fails before anyone waits, and says why.
#[test]
fn send_web_prints_the_page_link_with_the_code_in_the_fragment() {
    let h = Harness::new(Net::Relay);
    let root = temp_dir("pqdrop-page-");
    std::fs::write(root.path().join("index.html"), "<!doctype html>").unwrap();
    let mut relay = h
        .command("relay")
        .args(["--listen", "127.0.0.1:0", "--web", "127.0.0.1:0", "--web-root", root.path().to_str().expect("utf-8")])
        .spawn("web relay");
    let listening = relay.wait_for_stderr_line("pqdrop relay listening on ", Duration::from_secs(30));
    let addr = listening.trim().rsplit(' ').next().expect("address").to_string();
    let page = relay.wait_for_stderr_line("browser page on ", Duration::from_secs(30));
    let url = page.trim().rsplit(' ').next().expect("url").to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{page}");

    let src = temp_dir("pqdrop-src-");
    let out = temp_dir("pqdrop-out-");
    let file = src.path().join("a.bin");
    write_pseudo_random_file(&file, 9, 100_000);
    let mut s = h.command("send").args(["--web", "--json", "--relay", &addr]).arg(&file).spawn("sender");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let event = loop {
        let out = String::from_utf8_lossy(&s.stdout_now()).into_owned();
        if let Some(l) = out.lines().find(|l| l.contains("\"event\":\"code\"")) {
            break serde_json::from_str::<serde_json::Value>(l).expect("JSON");
        }
        assert!(std::time::Instant::now() < deadline, "no code event:\n{out}\n{}", s.stderr_now());
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = event["code"].as_str().expect("code").to_string();
    assert_eq!(event["url"], format!("{url}#{code}"), "{event}");
    let mut r = h.command("receive").args(["--yes", "--relay", &addr, "-o", out.path().to_str().expect("utf-8"), &code]).spawn("receiver");
    let [s, r] = wait_all([&mut s, &mut r], Duration::from_secs(60));
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_same_file(&file, &out.path().join("a.bin"));

    // The harness's own relay serves no page.
    let f = h.send().arg("--web").arg(&file).spawn("sender without a page").wait(Duration::from_secs(30));
    f.assert_failed();
    assert!(f.stderr.contains("does not serve the browser page") && f.stderr.contains("--web ADDR"), "{}", f.stderr);
    // On the LAN there is no page.
    let lan = Harness::new(Net::Lan);
    let f = lan.send().arg("--web").arg(&file).spawn("LAN sender").wait(Duration::from_secs(30));
    f.assert_code(exit::USAGE);
    assert!(f.stderr.contains("--web needs a relay"), "{}", f.stderr);
    relay.kill();
}
