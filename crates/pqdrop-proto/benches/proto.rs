//! CPU cost of the protocol core: the record layer per cipher and chunk size,
//! and the handshake (whole, and its expensive parts on their own).
//!
//! ```sh
//! cargo bench -p pqdrop-proto --bench proto                       # everything
//! cargo bench -p pqdrop-proto --bench proto -- record/seal        # a filter
//! cargo bench -p pqdrop-proto --bench proto -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Nothing here touches a socket or a file: the figures are the ceiling the
//! engine could reach on one core if I/O were free. CI only compiles this file
//! (`cargo bench --no-run`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use pqdrop_proto::handshake::{Config, Handshake};
use pqdrop_proto::internal::cpace;
use pqdrop_proto::internal::primitives::{mlkem768_encapsulate, MlKemDecapsulationKey};
use pqdrop_proto::msg::{Capabilities, DataCipher};
use pqdrop_proto::record::{RecordCipher, MAX_OVERHEAD, RECORD_HEADROOM};
use rand_core::OsRng;
use zeroize::Zeroizing;

const KIB: usize = 1024;
const CHUNK_SIZES: [(usize, &str); 5] =
    [(KIB, "1KiB"), (16 * KIB, "16KiB"), (64 * KIB, "64KiB"), (256 * KIB, "256KiB"), (1024 * KIB, "1MiB")];
const CIPHERS: [(DataCipher, &str); 3] =
    [(DataCipher::Aes256Gcm, "aes256gcm"), (DataCipher::ChaCha20Poly1305, "chacha20poly1305"), (DataCipher::Cascade, "cascade")];

fn cipher(kind: DataCipher) -> RecordCipher {
    let aes = Zeroizing::new([0x11u8; 32]);
    let chacha = Zeroizing::new([0x22u8; 32]);
    RecordCipher::new(kind, &aes, &chacha).expect("record cipher")
}

/// A record buffer holding `len` bytes of plaintext after the headroom.
fn record_buf(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; RECORD_HEADROOM + len + MAX_OVERHEAD];
    for (i, b) in buf[RECORD_HEADROOM..RECORD_HEADROOM + len].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    buf
}

fn record_seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("record/seal_at");
    for (kind, name) in CIPHERS {
        let rc = cipher(kind);
        for (len, size) in CHUNK_SIZES {
            g.throughput(Throughput::Bytes(len as u64));
            let mut buf = record_buf(len);
            g.bench_with_input(BenchmarkId::new(name, size), &len, |b, &len| {
                // The same counter every time: fine for timing, and it keeps the
                // buffer a valid plaintext (sealing overwrites it with ciphertext,
                // which costs exactly the same to encrypt again).
                b.iter(|| black_box(pqdrop_proto::testing::seal_at(&rc, 0, false, black_box(&mut buf), len).expect("seal")));
            });
        }
    }
    g.finish();
}

fn record_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("record/open_at");
    for (kind, name) in CIPHERS {
        let rc = cipher(kind);
        for (len, size) in CHUNK_SIZES {
            g.throughput(Throughput::Bytes(len as u64));
            let mut buf = record_buf(len);
            let frame = pqdrop_proto::testing::seal_at(&rc, 7, false, &mut buf, len).expect("seal");
            let body = buf[frame.end - len - rc.overhead()..frame.end].to_vec();
            g.bench_with_input(BenchmarkId::new(name, size), &body, |b, body| {
                // Decryption is in place, so every iteration gets a fresh copy of
                // the ciphertext; the copy is made outside the timed section.
                b.iter_batched_ref(|| body.clone(), |ct| black_box(rc.open_at(7, false, ct).expect("open")), BatchSize::LargeInput);
            });
        }
    }
    g.finish();
}

const ALL_CAPS: u64 = Capabilities::AES_256_GCM | Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME | Capabilities::ZSTD;

fn config(password: &[u8]) -> Config<'_> {
    Config { password, nameplate: "7", capabilities: Capabilities(ALL_CAPS) }
}

/// One full handshake in memory: both sides created (the accepter generates
/// its ML-KEM key pair), every flight delivered, both sessions built.
fn full_handshake() {
    let mut r = Handshake::requester(config(b"ocean-tiger"), &mut OsRng).expect("requester");
    let mut a = Handshake::accepter(config(b"ocean-tiger"), &mut OsRng).expect("accepter");
    for _ in 0..8 {
        let mut progressed = false;
        if let Some(out) = r.poll_transmit() {
            a.handle_input(&out).expect("accepter input");
            progressed = true;
        }
        if let Some(out) = a.poll_transmit() {
            r.handle_input(&out).expect("requester input");
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    assert!(r.is_complete() && a.is_complete(), "handshake did not complete");
    black_box(r.into_session().expect("requester session"));
    black_box(a.into_session().expect("accepter session"));
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.bench_function("full_pair_in_memory", |b| b.iter(full_handshake));

    let ci = cpace::lv_cat(&[b"pqdrop bench channel", b"7"]);
    let sid = [0x5au8; 64];
    g.bench_function("cpace_calculate_generator", |b| {
        b.iter(|| black_box(cpace::calculate_generator(black_box(b"ocean-tiger"), &ci, &sid)))
    });

    g.bench_function("mlkem768_keygen", |b| b.iter(|| black_box(MlKemDecapsulationKey::generate().expect("keygen"))));
    let (dk, ek) = MlKemDecapsulationKey::generate().expect("keygen");
    g.bench_function("mlkem768_encaps", |b| b.iter(|| black_box(mlkem768_encapsulate(black_box(&ek)).expect("encaps"))));
    let (ct, _) = mlkem768_encapsulate(&ek).expect("encaps");
    g.bench_function("mlkem768_decaps", |b| b.iter(|| black_box(dk.decapsulate(black_box(&ct)).expect("decaps"))));

    // Baseline in the same run: aws-lc-rs's ML-KEM-768 (randomness from its own DRBG).
    use aws_lc_rs::kem;
    g.bench_function("aws_lc_mlkem768_keygen", |b| {
        b.iter(|| black_box(kem::DecapsulationKey::generate(&kem::ML_KEM_768).expect("keygen")))
    });
    let aws_dk = kem::DecapsulationKey::generate(&kem::ML_KEM_768).expect("keygen");
    let aws_ek_bytes = aws_dk.encapsulation_key().expect("ek").key_bytes().expect("ek").as_ref().to_vec();
    g.bench_function("aws_lc_mlkem768_encaps", |b| {
        b.iter(|| {
            black_box(kem::EncapsulationKey::new(&kem::ML_KEM_768, black_box(&aws_ek_bytes)).expect("ek").encapsulate().expect("encaps"))
        })
    });
    let (aws_ct, _) = kem::EncapsulationKey::new(&kem::ML_KEM_768, &aws_ek_bytes).expect("ek").encapsulate().expect("encaps");
    g.bench_function("aws_lc_mlkem768_decaps", |b| {
        b.iter(|| black_box(aws_dk.decapsulate(kem::Ciphertext::from(black_box(aws_ct.as_ref()))).expect("decaps")))
    });
    g.finish();
}

criterion_group!(benches, record_seal, record_open, handshake);
criterion_main!(benches);
