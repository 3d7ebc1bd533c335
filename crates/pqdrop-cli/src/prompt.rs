//! The code prompt. On a terminal, Tab completes a word from the word list
//! (every word has a unique three-letter prefix).

use std::io::{BufRead, IsTerminal, Write};

use zeroize::Zeroizing;

/// Reads one line holding the code. The returned string is zeroized on drop.
pub fn read_code_line() -> std::io::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = Zeroizing::new(String::new());
        stdin.lock().read_line(&mut line)?;
        return Ok(line);
    }
    let mut err = std::io::stderr();
    write!(err, "Enter the code (Tab completes words): ")?;
    err.flush()?;
    read_with_completion()
}

#[cfg(unix)]
fn read_with_completion() -> std::io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    // Raw mode through stty keeps this dependency-free.
    let saved = std::process::Command::new("stty").arg("-g").stdin(std::process::Stdio::inherit()).output()?;
    let saved = String::from_utf8_lossy(&saved.stdout).trim().to_string();
    let raw_ok = std::process::Command::new("stty")
        .args(["-icanon", "-echo", "-isig", "min", "1"])
        .stdin(std::process::Stdio::inherit())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !raw_ok {
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line);
    }
    let restore = || {
        let _ = std::process::Command::new("stty").arg(&saved).stdin(std::process::Stdio::inherit()).status();
    };
    let mut err = std::io::stderr();
    let mut byte = [0u8; 1];
    let res = loop {
        match std::io::Read::read(&mut std::io::stdin().lock(), &mut byte) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        match byte[0] {
            b'\n' | b'\r' => break Ok(()),
            3 | 4 => break Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "cancelled")),
            b'\t' => complete_last_word(&mut line, &mut err),
            127 | 8 if line.pop().is_some() => {
                let _ = write!(err, "\x08 \x08");
            }
            b if b.is_ascii_graphic() || b == b' ' => {
                line.push(b as char);
                let _ = write!(err, "{}", b as char);
            }
            _ => {}
        }
        let _ = err.flush();
    };
    restore();
    let _ = writeln!(err);
    res.map(|()| line)
}

/// Tab: completes the word being typed when its prefix names exactly one
/// word of the list (three letters always do), else rings the bell.
#[cfg(unix)]
fn complete_last_word(line: &mut String, err: &mut std::io::Stderr) {
    let start = line.rfind(['-', ' ']).map(|i| i + 1).unwrap_or(0);
    let prefix = line[start..].to_ascii_lowercase();
    let matches =
        if prefix.len() >= 2 && !prefix.bytes().all(|b| b.is_ascii_digit()) { pqdrop_proto::code::complete(&prefix) } else { Vec::new() };
    if let [word] = matches[..] {
        let rest = &word[prefix.len()..];
        line.push_str(rest);
        line.push('-');
        let _ = write!(err, "{rest}-");
    } else {
        let _ = write!(err, "\x07");
    }
}

#[cfg(not(unix))]
fn read_with_completion() -> std::io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line)
}
