//! The page's files: the copy embedded at build time, or a folder on disk.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::RelayError;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// A file read from a page folder is at most this large.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Where the page's files come from.
#[derive(Debug)]
pub(crate) enum Assets {
    Embedded,
    /// Read at each request, so a page being developed needs no restart.
    Dir(PathBuf),
}

impl Assets {
    pub(crate) fn load(root: Option<&Path>) -> Result<Assets, RelayError> {
        match root {
            None if EMBEDDED.iter().any(|(n, _)| *n == "index.html") => Ok(Assets::Embedded),
            None => Err(RelayError::WebRoot {
                path: PathBuf::from("(built-in)"),
                reason: "this build has no page (crates/pqdrop-relay/web/ was empty when it was compiled); build it with `npm ci --prefix web && npm run --prefix web build`, or pass --web-root".into(),
            }),
            Some(dir) => {
                let bad = |reason: String| RelayError::WebRoot { path: dir.to_path_buf(), reason };
                let index = dir.join("index.html");
                match std::fs::metadata(&index) {
                    Ok(m) if m.is_file() => Ok(Assets::Dir(dir.to_path_buf())),
                    Ok(_) => Err(bad("index.html is not a file".into())),
                    Err(e) => Err(bad(format!("cannot read index.html: {e}"))),
                }
            }
        }
    }

    /// The file `name` (one path component of `[A-Za-z0-9._-]`, not starting
    /// with a dot), if the page has it.
    pub(crate) fn get(&self, name: &str) -> Option<Cow<'static, [u8]>> {
        if !valid_name(name) {
            return None;
        }
        match self {
            Assets::Embedded => EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, b)| Cow::Borrowed(*b)),
            Assets::Dir(dir) => {
                let path = dir.join(name);
                let meta = std::fs::symlink_metadata(&path).ok()?;
                if !meta.is_file() || meta.len() > MAX_FILE {
                    return None;
                }
                std::fs::read(path).ok().map(Cow::Owned)
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The `Content-Type` of a page file, by its extension.
pub(crate) fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_plain_file_names_are_served() {
        for ok in ["index.html", "app.js", "sw.js", "style.css", "icon-192.png"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", ".env", "a\\b", "%2e%2e", "a b", "x:y"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
