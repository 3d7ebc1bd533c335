//! The relay's parsers: a hello from any bytes (the relay reads it from
//! anyone) parses or is refused without panicking, and a parsed hello
//! re-encodes to exactly its bytes; a status from any bytes (the client reads
//! it from the relay) is read without panicking, never longer than 512 bytes,
//! and without control characters.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pqdrop_relay::fuzz_hello(data);
    // A slice never makes the reader wait: one poll finishes.
    let mut input = data;
    let mut read = pin!(pqdrop_relay::read_status(&mut input));
    match read.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok((_code, msg))) => {
            assert!(msg.chars().count() <= 512);
            assert!(!msg.chars().any(char::is_control));
        }
        Poll::Ready(Err(_)) => {}
        Poll::Pending => panic!("reading from a slice never waits"),
    }
});
