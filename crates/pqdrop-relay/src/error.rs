//! The crate's one error type.

use std::net::SocketAddr;

use crate::StatusCode;

/// Everything that can go wrong in the relay server or client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The server could not bind its listening socket.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The client could not connect to the relay.
    #[error("could not connect to the relay at {addr}: {source}")]
    Connect {
        /// The `host:port` that was asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The relay did not do its part in time.
    #[error("the relay at {addr} did not answer in time: it took more than {secs} s {what}")]
    Timeout {
        /// The `host:port` that was asked for.
        addr: String,
        /// What it did not do in time.
        what: &'static str,
        /// The limit, in seconds.
        secs: f64,
    },
    /// An I/O error on an established relay connection.
    #[error("relay connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The relay refused (any status code other than 0 and 1).
    #[error("the relay refused (code {code}): {message}")]
    Refused {
        /// The status code (see [`StatusCode`]).
        code: u64,
        /// The relay's message for humans (control characters replaced).
        message: String,
    },
    /// The nameplate is not canonical decimal from 1 to 65535.
    #[error("invalid nameplate: it must be a number from 1 to 65535, without leading zeros")]
    InvalidNameplate,
    /// The relay refused a contact room's hello: it is older than contact
    /// transfers (PROTOCOL.md §9.1, flag 2).
    #[error("the relay at {addr} does not know contact transfers (it said: {message}); update the relay, or use a code")]
    NoContactRooms {
        /// The `host:port` of the relay.
        addr: String,
        /// The relay's message for humans.
        message: String,
    },
    /// The relay closed the connection before pairing.
    #[error("the relay closed the connection before pairing us with the other side (it may have stopped or restarted); run the same command again")]
    Closed,
    /// The relay sent something that is not valid relay protocol.
    #[error("relay protocol violation: {0}")]
    Protocol(&'static str),
    /// The web listener's certificate or key cannot be used.
    #[error("HTTPS for the page: {0}")]
    Tls(String),
    /// The page's folder (`--web-root`) cannot be read.
    #[error("the page folder {path}: {reason}")]
    WebRoot {
        /// The folder.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The relay serves no browser page, or is too old to say (PROTOCOL.md §9.1, flag 4).
    #[error(
        "the relay at {addr} does not serve the browser page ({message}); start it with `pqdrop relay --web ADDR`, or send without --web"
    )]
    NoWebPage {
        /// The `host:port` of the relay.
        addr: String,
        /// What the relay said, or why it counts as no page.
        message: String,
    },
    /// A [`crate::RelayConfig`] value is out of range.
    #[error("invalid relay configuration: {0}")]
    Config(&'static str),
}

impl RelayError {
    /// The relay's status code, if this is a refusal with a code this crate knows.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            RelayError::Refused { code, .. } => StatusCode::from_code(*code),
            _ => None,
        }
    }
}
