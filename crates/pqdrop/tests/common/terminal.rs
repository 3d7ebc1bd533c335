//! A command on a pseudo-terminal (util-linux `script`), for the prompts:
//! what the terminal shows is collected as it comes, waits are bounded, and
//! the child is killed if the test fails first.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running command on a terminal of its own.
pub struct Terminal {
    child: Child,
    stdin: Option<ChildStdin>,
    shown: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    deadline: Instant,
}

/// `arg` quoted for `sh -c`.
pub fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

impl Terminal {
    /// Runs the shell command `line` on a pseudo-terminal with `envs` set
    /// (and `removed` unset); every wait ends within `limit` of the start.
    pub fn spawn(line: &str, envs: &[(&str, &std::ffi::OsStr)], removed: &[&str], limit: Duration) -> Terminal {
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", line, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        for k in removed {
            cmd.env_remove(k);
        }
        let mut child = cmd.spawn().expect("script(1) from util-linux runs the command on a pseudo-terminal");
        let shown = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().expect("stdout");
        let sink = shown.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take();
        Terminal { child, stdin, shown, reader: Some(reader), deadline: Instant::now() + limit }
    }

    /// What the terminal has shown so far.
    pub fn shown(&self) -> String {
        self.shown.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `text` has been shown at least `times` times.
    pub fn wait_for(&self, text: &str, times: usize) {
        while self.shown().matches(text).count() < times {
            assert!(Instant::now() < self.deadline, "{text:?} (×{times}) never came; the terminal showed:\n{}", self.shown());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `text` (the caller adds the Enter it wants: "\n" or "\r").
    pub fn type_text(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(text.as_bytes()).expect("type");
        stdin.flush().expect("flush");
    }

    /// Waits for the command to exit: its exit code and all it showed.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < self.deadline, "the command did not finish:\n{}", self.shown());
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stdin = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status.code(), self.shown())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
