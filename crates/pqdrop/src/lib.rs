//! # pqdrop
//!
//! The async transfer engine around the sans-IO core in `pqdrop-proto`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;

pub use error::{Error, Result};
