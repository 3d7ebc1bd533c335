//! KeepAlive (PROTOCOL.md §8): a side that waits for its user keeps the
//! connection alive, so a short idle timeout cuts a silent peer but never a
//! person deciding. Both engines run in this process over loopback TCP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pqdrop_engine::receive::{receive, OfferSummary, ReceiveOptions, ReceiveUi};
use pqdrop_engine::send::{prepare, send, Payload, SendOptions, SendUi};
use pqdrop_engine::sink::ConflictPolicy;
use pqdrop_proto::code::Code;
use pqdrop_proto::transfer::Offer;

struct SlowConsent {
    think: Duration,
    text: Mutex<Vec<u8>>,
}

impl ReceiveUi for SlowConsent {
    fn consent(&self, _offer: &OfferSummary) -> bool {
        // A person reading the offer for longer than the idle timeout.
        std::thread::sleep(self.think);
        true
    }
    fn progress(&self, _done: u64, _total: u64) {}
    fn output(&self, data: &[u8]) -> std::io::Result<()> {
        self.text.lock().expect("lock").extend_from_slice(data);
        Ok(())
    }
    fn warn(&self, _msg: &str) {}
}

struct Quiet;

impl SendUi for Quiet {
    fn connected(&self, _offer: &Offer) {}
    fn progress(&self, _done: u64, _total: u64) {}
    fn warn(&self, _msg: &str) {}
}

/// Sends `payload` over loopback to a receiver whose person reads the offer
/// for three idle timeouts of 800 ms, saving into `out`; both sides must
/// succeed. Returns what the receiver showed as text.
async fn send_to_a_slow_person(payload: Payload, zstd: pqdrop_engine::send::Zstd, out: &std::path::Path) -> Vec<u8> {
    let idle = Duration::from_millis(800);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let code = Code::parse("7-lemon-tiger").expect("code");
    let ui = Arc::new(SlowConsent { think: idle * 3, text: Mutex::new(Vec::new()) });
    let opts = ReceiveOptions {
        out_dir: out.into(),
        policy: ConflictPolicy::Refuse,
        ask: false,
        sender_addr: None,
        max_entries: 10,
        cascade: false,
        idle_timeout: idle,
        identity: None,
    };
    let rx_code = code.clone();
    let rx_ui = ui.clone();
    let receiver = tokio::spawn(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        receive(stream, &rx_code, opts, rx_ui).await
    });
    let (stream, _) = listener.accept().await.expect("accept");
    let prepared = prepare(payload).expect("prepare");
    let sent = tokio::time::timeout(
        Duration::from_secs(30),
        send(stream, &code, prepared, SendOptions { idle_timeout: idle, zstd, ..SendOptions::default() }, Arc::new(Quiet)),
    )
    .await
    .expect("the send finished");
    let received = tokio::time::timeout(Duration::from_secs(30), receiver).await.expect("the receive finished").expect("join");
    sent.expect("the sender succeeded");
    received.expect("the receiver succeeded");
    let text = ui.text.lock().expect("lock").clone();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_deciding_longer_than_the_idle_timeout_does_not_cut_the_transfer() {
    let out = tempfile::tempdir().expect("tempdir");
    let text = send_to_a_slow_person(Payload::Text("still there".into()), pqdrop_engine::send::Zstd::Auto, out.path()).await;
    assert_eq!(text, b"still there");
}

/// The same with a file of several records: the KeepAlives sent while the
/// person decides must not disturb the records that follow (a KeepAlive's
/// buffer was once recycled as a record buffer, and the sender panicked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_many_records_follows_the_keepalives_intact() {
    let src = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    // Incompressible (xorshift), so that every record is full of file data.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..3 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let file = src.path().join("many-records.bin");
    std::fs::write(&file, &data).expect("write");
    send_to_a_slow_person(Payload::Paths(vec![file]), pqdrop_engine::send::Zstd::Off, out.path()).await;
    assert!(std::fs::read(out.path().join("many-records.bin")).expect("the file") == data, "the file arrived intact");
}
