//! An in-memory file tree for the simulator: what a sender offers and what a
//! receiver ends up with.

use std::collections::BTreeMap;

/// One node of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// Its bytes.
        data: Vec<u8>,
        /// The executable bit.
        executable: bool,
        /// Modification time (Unix seconds).
        mtime: u64,
    },
    /// A folder.
    Dir {
        /// Modification time (Unix seconds).
        mtime: u64,
    },
}

/// Paths (`/`-separated, relative) to nodes. Parents of a node need not be
/// listed; folders listed come before their contents when walked, because
/// `a` sorts before `a/…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree(pub BTreeMap<String, Node>);

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Tree::default()
    }

    /// Adds a file (mtime 1,700,000,000, not executable).
    pub fn file(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.0.insert(path.into(), Node::File { data: data.into(), executable: false, mtime: 1_700_000_000 });
        self
    }

    /// Adds a folder.
    pub fn dir(mut self, path: &str) -> Self {
        self.0.insert(path.into(), Node::Dir { mtime: 1_700_000_000 });
        self
    }

    /// The bytes of the file at `path`.
    pub fn data(&self, path: &str) -> Option<&[u8]> {
        match self.0.get(path) {
            Some(Node::File { data, .. }) => Some(data),
            _ => None,
        }
    }

    /// Paths of all files.
    pub fn files(&self) -> Vec<&str> {
        self.0.iter().filter(|(_, n)| matches!(n, Node::File { .. })).map(|(p, _)| p.as_str()).collect()
    }

    /// The same files and folders (data and kinds; times and modes ignored).
    pub fn same_content(&self, other: &Tree) -> bool {
        let strip = |t: &Tree| -> Vec<(String, Option<Vec<u8>>)> {
            t.0.iter()
                .map(|(p, n)| {
                    (
                        p.clone(),
                        match n {
                            Node::File { data, .. } => Some(data.clone()),
                            Node::Dir { .. } => None,
                        },
                    )
                })
                .collect()
        };
        strip(self) == strip(other)
    }
}
