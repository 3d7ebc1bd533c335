//! The code prompt. On a terminal, Tab completes a word from the word list
//! (every word has a unique three-letter prefix) and a second Tab lists the
//! candidates of an ambiguous prefix; a word that is not in the list is
//! caught on Enter, with the nearest words, before it can reach the
//! handshake and use up the sender's code.

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
    let mut line = read_with_completion("")?;
    // Bounded: a person gets a few chances, then the code is used as typed.
    for _ in 0..5 {
        let unknown = unlisted_words(&line);
        if unknown.is_empty() {
            break;
        }
        for w in &unknown {
            let near = pqdrop_proto::code::suggest(w);
            let hint = if near.is_empty() { String::new() } else { format!(" (did you mean {}?)", near.join(", ")) };
            writeln!(err, "\u{201c}{w}\u{201d} is not in the word list{hint}.")?;
        }
        write!(err, "Fix the code, or press Enter to use it as typed: ")?;
        err.flush()?;
        let again = read_with_completion(&line)?;
        if again.trim().is_empty() || *again == *line {
            break;
        }
        line = again;
    }
    Ok(line)
}

/// The words after the number that are not in the list (a code typed with
/// `--code` may use other words; the prompt only asks).
fn unlisted_words(line: &str) -> Vec<String> {
    line.split(|c: char| c == '-' || c == '_' || c == '.' || c.is_whitespace())
        .filter(|w| !w.is_empty() && !w.bytes().all(|b| b.is_ascii_digit()))
        .filter(|w| !pqdrop_proto::code::is_word(w))
        .map(str::to_owned)
        .collect()
}

/// Reads a line with completion, starting from `start` (shown, editable).
#[cfg(unix)]
fn read_with_completion(start: &str) -> std::io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(start.to_owned());
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
        line.clear();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line);
    }
    let restore = || {
        let _ = std::process::Command::new("stty").arg(&saved).stdin(std::process::Stdio::inherit()).status();
    };
    let mut err = std::io::stderr();
    let _ = write!(err, "{}", &*line);
    let _ = err.flush();
    let mut byte = [0u8; 1];
    let mut tabs = 0u32;
    let res = loop {
        match std::io::Read::read(&mut std::io::stdin().lock(), &mut byte) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        match byte[0] {
            b'\n' | b'\r' => break Ok(()),
            3 | 4 => break Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "cancelled")),
            b'\t' => {
                tabs += 1;
                complete_last_word(&mut line, &mut err, tabs >= 2);
                let _ = err.flush();
                continue;
            }
            127 | 8 if line.pop().is_some() => {
                let _ = write!(err, "\x08 \x08");
            }
            b if b.is_ascii_graphic() || b == b' ' => {
                line.push(b as char);
                let _ = write!(err, "{}", b as char);
            }
            _ => {}
        }
        tabs = 0;
        let _ = err.flush();
    };
    restore();
    let _ = writeln!(err);
    res.map(|()| line)
}

/// Tab: completes the word being typed when its prefix names exactly one
/// word of the list (three letters always do), else rings the bell; on a
/// second Tab in a row, lists the candidates (as a shell does) and shows the
/// line again.
#[cfg(unix)]
fn complete_last_word(line: &mut String, err: &mut std::io::Stderr, list: bool) {
    let start = line.rfind(['-', ' ']).map(|i| i + 1).unwrap_or(0);
    let prefix = line[start..].to_ascii_lowercase();
    let matches =
        if prefix.len() >= 2 && !prefix.bytes().all(|b| b.is_ascii_digit()) { pqdrop_proto::code::complete(&prefix) } else { Vec::new() };
    if let [word] = matches[..] {
        let rest = &word[prefix.len()..];
        line.push_str(rest);
        line.push('-');
        let _ = write!(err, "{rest}-");
    } else if list && matches.len() > 1 {
        let shown: Vec<&str> = matches.iter().take(40).copied().collect();
        let more = if matches.len() > shown.len() { format!(" … ({} in all)", matches.len()) } else { String::new() };
        let _ = write!(err, "\r\n{}{more}\r\nEnter the code (Tab completes words): {line}", shown.join("  "));
    } else {
        let _ = write!(err, "\x07");
    }
}

#[cfg(not(unix))]
fn read_with_completion(_start: &str) -> std::io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::unlisted_words;

    #[test]
    fn only_words_outside_the_list_are_flagged() {
        assert!(unlisted_words("7-lemon-tiger").is_empty());
        assert!(unlisted_words(" 12 Lemon TIGER\n").is_empty());
        assert_eq!(unlisted_words("7-lemn-tiger"), ["lemn"]);
        assert_eq!(unlisted_words("7-ocean-tigre"), ["ocean", "tigre"]);
    }
}
