//! Fixed-RNG handshake transcript vectors: `vectors/handshake.json`.
//!
//! The handshake takes its randomness and its KEM by injection, so with a
//! deterministic RNG and the protocol's ML-KEM-768 given deterministic
//! randomness (keygen from seeds d, z and encapsulation from m, FIPS 203 §6) every byte
//! of a run is fixed. This test runs complete requester <-> accepter
//! handshakes that way and checks, byte for byte, every flight, the transcript
//! hash, the key schedule, the confirmation tags, the exporter, the agreed
//! cipher and the first application record of each direction.
//!
//! Cross-implementation checks:
//! - aws-lc-rs, an independent ML-KEM, decapsulates the vector ciphertext with
//!   the expanded decapsulation key and gets the same shared secret (and the
//!   same implicit-rejection secret for a modified ciphertext);
//! - `scripts/handshake_crosscheck.py` recomputes every derived value from the
//!   inputs with Python's `cryptography` (OpenSSL) and plain-integer
//!   Elligator2, and decapsulates with OpenSSL's ML-KEM.
//!
//! Regenerate after an intended protocol change with
//! `PQDROP_WRITE_VECTORS=1 cargo test -p pqdrop-proto --test handshake_vectors`,
//! then run `python3 scripts/handshake_crosscheck.py`.
//!
//! ## The deterministic RNG
//!
//! `DetRng(label)` outputs the byte stream
//! `SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || ...`;
//! each `fill_bytes` takes the next bytes of the stream in order (a partly
//! used block carries over to the next call). Four independent streams per
//! vector, with label `"pqdrop/v1 handshake vector " || name || "/" || stream`:
//! - `requester`: requestAdd2 nonce (32), CPace scalar yb (32), chaChaSalt (32);
//! - `accepter`: CPace scalar ya (32), aesSalt (32);
//! - `accepter-kem`: ML-KEM d (32), z (32);
//! - `requester-kem`: ML-KEM m (32).

use std::path::PathBuf;

use aws_lc_rs::kem as aws_kem;
#[allow(deprecated)]
use ml_kem::ExpandedKeyEncoding;
use ml_kem::KeyExport;
use pqdrop_proto::handshake::{Config, Established, Handshake};
use pqdrop_proto::internal::cpace::{self, CpaceSecret};
use pqdrop_proto::internal::labels;
use pqdrop_proto::internal::primitives::{hmac_sha256, mlkem768_encapsulate_deterministic, sha512, HkdfPrk, MlKemDecapsulationKey};
use pqdrop_proto::msg::{parse_frame_header, Agreed, Capabilities, DataCipher, Message, MsgType};
use pqdrop_proto::testing::{DetMlKem, DetRng};
use serde_json::{json, Map, Value};

const LABEL_PREFIX: &str = "pqdrop/v1 handshake vector ";
const PASSWORD: &str = "ocean-tiger";
const NAMEPLATE: &str = "7";
const PT_A2R: &[u8] = b"hello from accepter";
const PT_R2A: &[u8] = b"hello from requester";

/// The stream `stream` of vector `name` (module documentation).
fn det_rng(name: &str, stream: &str) -> DetRng {
    DetRng::new(format!("{LABEL_PREFIX}{name}/{stream}"))
}

type MlKemDk = ml_kem::ml_kem_768::DecapsulationKey;

fn mlkem_from_dz(d: &[u8; 32], z: &[u8; 32]) -> MlKemDk {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(d);
    seed[32..].copy_from_slice(z);
    MlKemDk::from_seed(ml_kem::Seed::from(seed))
}

/// One vector's fixed inputs.
struct Spec {
    name: &'static str,
    requester_caps: u64,
    accepter_caps: u64,
    cipher: DataCipher,
}

const AES: u64 = Capabilities::AES_256_GCM;
const CHACHA: u64 = Capabilities::CHACHA20_POLY1305;
const CASCADE: u64 = Capabilities::CASCADE;
const RESUME: u64 = Capabilities::RESUME;
const ZSTD: u64 = Capabilities::ZSTD;

const SPECS: [Spec; 3] = [
    Spec {
        name: "aes256gcm",
        requester_caps: AES | CHACHA | RESUME | ZSTD,
        accepter_caps: AES | CHACHA | RESUME | ZSTD,
        cipher: DataCipher::Aes256Gcm,
    },
    Spec {
        name: "chacha20poly1305",
        requester_caps: AES | CHACHA | RESUME,
        accepter_caps: CHACHA | ZSTD,
        cipher: DataCipher::ChaCha20Poly1305,
    },
    Spec {
        name: "cascade",
        requester_caps: CHACHA | CASCADE | RESUME | ZSTD,
        accepter_caps: AES | CHACHA | RESUME | ZSTD,
        cipher: DataCipher::Cascade,
    },
];

fn cipher_name(c: DataCipher) -> &'static str {
    match c {
        DataCipher::Aes256Gcm => "AES-256-GCM",
        DataCipher::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        DataCipher::Cascade => "AES-256-GCM+ChaCha20-Poly1305 cascade",
    }
}

fn h(b: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(b))
}

/// Splits a flight into its frames: (type, whole frame bytes).
fn frames(flight: &[u8]) -> Vec<(MsgType, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = flight;
    while !rest.is_empty() {
        let hd = parse_frame_header(rest).expect("frame header").expect("complete header");
        out.push((hd.msg_type, rest[..hd.frame_len()].to_vec()));
        rest = &rest[hd.frame_len()..];
    }
    out
}

fn decode(frame: &[u8]) -> Message {
    let hd = parse_frame_header(frame).unwrap().unwrap();
    Message::decode(hd.msg_type, &frame[hd.header_len..]).unwrap()
}

fn seal(s: &mut Established, pt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    s.sealer.seal_to_vec(pt, false, &mut out).unwrap();
    out
}

fn open(o: &mut Established, frame: &[u8]) -> Vec<u8> {
    let hd = parse_frame_header(frame).unwrap().unwrap();
    assert_eq!(hd.frame_len(), frame.len());
    let mut body = frame[hd.header_len..].to_vec();
    let n = o.opener.open(hd.msg_type, &mut body).unwrap();
    body.truncate(n);
    body
}

fn expand32(prk: &HkdfPrk, info: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 32];
    prk.expand(info, &mut k).unwrap();
    k
}

/// Runs one vector and returns its JSON object. Asserts the internal
/// consistency that does not depend on the stored file.
fn run(spec: &Spec) -> Value {
    let pw = PASSWORD.as_bytes();
    let rcfg = Config { password: pw, nameplate: NAMEPLATE, capabilities: Capabilities(spec.requester_caps) };
    let acfg = Config { password: pw, nameplate: NAMEPLATE, capabilities: Capabilities(spec.accepter_caps) };
    let mut r_rng = det_rng(spec.name, "requester");
    let mut a_rng = det_rng(spec.name, "accepter");
    let mut r =
        Handshake::requester_with_kem(rcfg, DetMlKem::new(format!("{LABEL_PREFIX}{}/requester-kem", spec.name)), &mut r_rng).unwrap();
    let mut a = Handshake::accepter_with_kem(acfg, DetMlKem::new(format!("{LABEL_PREFIX}{}/accepter-kem", spec.name)), &mut a_rng).unwrap();

    // Flights: 0 requestAdd2 (r->a), 1 acceptAdd2 (a->r), 2 keys2+confirm (r->a), 3 confirm (a->r).
    let f0 = r.poll_transmit().expect("requestAdd2");
    assert_eq!(a.handle_input(&f0).unwrap(), f0.len());
    let f1 = a.poll_transmit().expect("acceptAdd2");
    assert_eq!(r.handle_input(&f1).unwrap(), f1.len());
    let f2 = r.poll_transmit().expect("keys2 + confirm");
    assert_eq!(a.handle_input(&f2).unwrap(), f2.len());
    let f3 = a.poll_transmit().expect("confirm");
    assert_eq!(r.handle_input(&f3).unwrap(), f3.len());
    assert!(r.poll_transmit().is_none() && a.poll_transmit().is_none());
    assert!(r.is_complete() && a.is_complete(), "{}: handshake did not complete", spec.name);
    let mut rs = r.into_session().unwrap();
    let mut as_ = a.into_session().unwrap();

    // Re-derive every input from the RNG streams, in the documented order.
    let mut rr = det_rng(spec.name, "requester");
    let (nonce, yb_scalar, chacha_salt) = (rr.take32(), rr.take32(), rr.take32());
    let mut ar = det_rng(spec.name, "accepter");
    let (ya_scalar, aes_salt) = (ar.take32(), ar.take32());
    let mut akr = det_rng(spec.name, "accepter-kem");
    let (d, z) = (akr.take32(), akr.take32());
    let m = det_rng(spec.name, "requester-kem").take32();
    // The runs drew exactly that much (the stream is a pure function of the label).
    assert_eq!(r_rng.consumed(), rr.consumed());
    assert_eq!(a_rng.consumed(), ar.consumed());

    // ML-KEM-768 from (d, z, m), and the aws-lc-rs cross-check.
    let dk = mlkem_from_dz(&d, &z);
    let ek = dk.encapsulation_key().to_bytes().to_vec();
    #[allow(deprecated)]
    let dk_expanded = dk.to_expanded_bytes().to_vec();
    let (ct, ss) = mlkem768_encapsulate_deterministic(&ek, &m).unwrap();
    let mut dz = [0u8; 64];
    dz[..32].copy_from_slice(&d);
    dz[32..].copy_from_slice(&z);
    let (ours, our_ek) = MlKemDecapsulationKey::from_seed(&dz);
    assert_eq!(our_ek, ek);
    assert_eq!(ours.decapsulate(&ct).unwrap().0, ss.0);
    let aws = aws_kem::DecapsulationKey::new(&aws_kem::ML_KEM_768, &dk_expanded).expect("aws-lc-rs accepts the expanded dk");
    let aws_ss = |c: &[u8]| aws.decapsulate(aws_kem::Ciphertext::from(c)).expect("aws-lc-rs decapsulates").as_ref().to_vec();
    assert_eq!(aws_ss(&ct), ss.0, "aws-lc-rs and ml-kem disagree on the shared secret");
    let mut ct_bad = ct.clone();
    ct_bad[0] ^= 1;
    assert_ne!(aws_ss(&ct_bad), ss.0);
    assert_eq!(aws_ss(&ct_bad), ours.decapsulate(&ct_bad).unwrap().0, "implicit rejection differs");

    // The messages carry exactly those values.
    let Message::RequestAdd2(m0) = decode(&f0) else { panic!("flight 0 is not requestAdd2") };
    assert_eq!(m0.nonce, nonce);
    let Message::AcceptAdd2(m1) = decode(&f1) else { panic!("flight 1 is not acceptAdd2") };
    assert_eq!((m1.aes_salt, &m1.mlkem_pub_key), (aes_salt, &ek));
    let f2_frames = frames(&f2);
    assert_eq!(f2_frames.iter().map(|f| f.0).collect::<Vec<_>>(), [MsgType::KEYS2, MsgType::CONFIRM]);
    let Message::Keys2(m2) = decode(&f2_frames[0].1) else { panic!() };
    assert_eq!((m2.chacha_salt, &m2.mlkem_ciphertext), (chacha_salt, &ct));
    let Message::Confirm(tag_r2a) = decode(&f2_frames[1].1) else { panic!() };
    let Message::Confirm(tag_a2r) = decode(&f3) else { panic!("flight 3 is not confirm") };

    // CPace.
    let ci = cpace::lv_cat(&[labels::CPACE_CI, NAMEPLATE.as_bytes()]);
    let mut sid = [0u8; 64];
    sid[..32].copy_from_slice(&nonce);
    sid[32..].copy_from_slice(&aes_salt);
    let g = cpace::calculate_generator(pw, &ci, &sid);
    let (ya_s, yb_s) = (CpaceSecret::from_bytes(ya_scalar), CpaceSecret::from_bytes(yb_scalar));
    let (ya, yb) = (ya_s.public_value(&g), yb_s.public_value(&g));
    assert_eq!((m1.ecdh_pub_key, m2.ecdh_pub_key), (ya, yb));
    let k = yb_s.shared_k(&ya).unwrap();
    assert_eq!(&k[..], &ya_s.shared_k(&yb).unwrap()[..]);
    let isk = cpace::isk_ir(&sid, &k, &ya, b"", &yb, b"");

    // Transcript and key schedule (PROTOCOL.md §5), recomputed from the public primitives.
    let transcript = [&f0[..], &f1[..], &f2_frames[0].1[..]].concat();
    let th = sha512(&[&cpace::lv_cat(&[labels::TRANSCRIPT, &ci]), &transcript]);
    assert_eq!(rs.transcript_hash, th);
    assert_eq!(as_.transcript_hash, th);
    let combined = [&isk[..], &ss.0[..]].concat();
    let prk_aes = HkdfPrk::extract(&aes_salt, &combined);
    let prk_chacha = HkdfPrk::extract(&chacha_salt, &combined);
    let prk_confirm = HkdfPrk::extract(&th, &combined);
    use labels::{AES_KEY, CHACHA_KEY, CONFIRM_KEY, DIR_ACCEPTER_TO_REQUESTER as A2R, DIR_REQUESTER_TO_ACCEPTER as R2A, EXPORTER};
    let aes_r2a = expand32(&prk_aes, &[AES_KEY, R2A, &th]);
    let aes_a2r = expand32(&prk_aes, &[AES_KEY, A2R, &th]);
    let chacha_r2a = expand32(&prk_chacha, &[CHACHA_KEY, R2A, &th]);
    let chacha_a2r = expand32(&prk_chacha, &[CHACHA_KEY, A2R, &th]);
    let confirm_r2a = expand32(&prk_confirm, &[CONFIRM_KEY, R2A]);
    let confirm_a2r = expand32(&prk_confirm, &[CONFIRM_KEY, A2R]);
    let exporter = expand32(&prk_confirm, &[EXPORTER]);
    assert_eq!(hmac_sha256(&confirm_r2a, &[&th]), tag_r2a);
    assert_eq!(hmac_sha256(&confirm_a2r, &[&th]), tag_a2r);
    assert_eq!(&rs.exporter[..], &exporter);
    assert_eq!(&as_.exporter[..], &exporter);

    // Negotiation.
    let agreed = Agreed::negotiate(Capabilities(spec.accepter_caps), Capabilities(spec.requester_caps));
    assert_eq!(rs.agreed, agreed);
    assert_eq!(as_.agreed, agreed);
    assert_eq!(agreed.cipher, spec.cipher, "{}: the capabilities do not select the intended cipher", spec.name);

    // First application record of each direction, and that the peer opens it.
    let rec_a2r = seal(&mut as_, PT_A2R);
    let rec_r2a = seal(&mut rs, PT_R2A);
    assert_eq!(open(&mut rs, &rec_a2r), PT_A2R);
    assert_eq!(open(&mut as_, &rec_r2a), PT_R2A);

    json!({
        "name": spec.name,
        "inputs": {
            "password": PASSWORD,
            "nameplate": NAMEPLATE,
            "requester_capabilities": spec.requester_caps,
            "accepter_capabilities": spec.accepter_caps,
            "rng_labels": {
                "requester": format!("{LABEL_PREFIX}{}/requester", spec.name),
                "accepter": format!("{LABEL_PREFIX}{}/accepter", spec.name),
                "accepter_kem": format!("{LABEL_PREFIX}{}/accepter-kem", spec.name),
                "requester_kem": format!("{LABEL_PREFIX}{}/requester-kem", spec.name),
            },
        },
        "random": {
            "requester_nonce": h(nonce),
            "requester_cpace_scalar": h(yb_scalar),
            "chacha_salt": h(chacha_salt),
            "accepter_cpace_scalar": h(ya_scalar),
            "aes_salt": h(aes_salt),
            "mlkem_d": h(d),
            "mlkem_z": h(z),
            "mlkem_m": h(m),
        },
        "mlkem": {
            "ek": h(&ek),
            "dk_expanded": h(&dk_expanded),
            "ct": h(&ct),
            "shared_secret": h(ss.0),
        },
        "cpace": {
            "channel_id": h(&ci),
            "sid": h(sid),
            "generator": h(g),
            "ya": h(ya),
            "yb": h(yb),
            "k": h(&k[..]),
            "isk": h(&isk[..]),
        },
        "flights": [h(&f0), h(&f1), h(&f2), h(&f3)],
        "transcript_hash": h(th),
        "key_schedule": {
            "aes_r2a": h(aes_r2a),
            "aes_a2r": h(aes_a2r),
            "chacha_r2a": h(chacha_r2a),
            "chacha_a2r": h(chacha_a2r),
            "confirm_key_r2a": h(confirm_r2a),
            "confirm_key_a2r": h(confirm_a2r),
            "exporter": h(exporter),
        },
        "confirm_tag_r2a": h(tag_r2a),
        "confirm_tag_a2r": h(tag_a2r),
        "agreed": {
            "cipher": cipher_name(agreed.cipher),
            "resume": agreed.resume,
            "zstd": agreed.zstd,
        },
        "records": {
            "accepter_to_requester": { "counter": 0, "final": false, "plaintext": String::from_utf8(PT_A2R.to_vec()).unwrap(), "frame": h(&rec_a2r) },
            "requester_to_accepter": { "counter": 0, "final": false, "plaintext": String::from_utf8(PT_R2A.to_vec()).unwrap(), "frame": h(&rec_r2a) },
        },
    })
}

fn vector_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors/handshake.json")
}

fn document() -> Value {
    let mut doc = Map::new();
    doc.insert("description".into(), json!("pqdrop/v1 handshake vectors: full requester<->accepter runs with a fixed RNG and a deterministic ML-KEM-768. Written by crates/pqdrop-proto/tests/handshake_vectors.rs (PQDROP_WRITE_VECTORS=1); every derived value is recomputed independently by scripts/handshake_crosscheck.py."));
    doc.insert(
        "rng".into(),
        json!({
            "construction": "stream(label) = SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || ...; every draw takes the next bytes of the stream",
            "requester": "nonce[32], cpace_scalar[32], chacha_salt[32]",
            "accepter": "cpace_scalar[32], aes_salt[32]",
            "accepter_kem": "mlkem_d[32], mlkem_z[32] (FIPS 203 ML-KEM.KeyGen_internal(d, z))",
            "requester_kem": "mlkem_m[32] (FIPS 203 ML-KEM.Encaps_internal(ek, m))",
        }),
    );
    doc.insert("vectors".into(), Value::Array(SPECS.iter().map(run).collect()));
    Value::Object(doc)
}

/// Compares `got` with `want` leaf by leaf so that a failure names the field.
fn compare(path: &str, got: &Value, want: &Value, errs: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for k in g.keys().chain(w.keys().filter(|k| !g.contains_key(*k))) {
                compare(&format!("{path}.{k}"), g.get(k).unwrap_or(&Value::Null), w.get(k).unwrap_or(&Value::Null), errs);
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                compare(&format!("{path}[{i}]"), a, b, errs);
            }
        }
        _ if got == want => {}
        _ => errs.push(format!("{path}: computed {got}, vector file has {want}")),
    }
}

#[test]
fn handshake_matches_vectors() {
    let doc = document();
    let path = vector_path();
    if std::env::var_os("PQDROP_WRITE_VECTORS").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (generate with PQDROP_WRITE_VECTORS=1)", path.display()));
    let want: Value = serde_json::from_str(&text).expect("vectors/handshake.json is not valid JSON");
    let mut errs = Vec::new();
    compare("$", &doc, &want, &mut errs);
    assert!(errs.is_empty(), "{} mismatches with vectors/handshake.json:\n{}", errs.len(), errs.join("\n"));
}

/// Two runs with the same labels give the same bytes (no hidden randomness:
/// neither the handshake nor the record layer draws from anywhere else).
#[test]
fn deterministic_run_is_repeatable() {
    let a = run(&SPECS[0]);
    let b = run(&SPECS[0]);
    assert_eq!(a, b);
}
