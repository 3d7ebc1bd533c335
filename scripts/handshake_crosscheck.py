#!/usr/bin/env python3
"""Independent recomputation of the pqdrop/v1 handshake vectors (vectors/handshake.json).

The vectors are written once by the Rust test
crates/pqdrop-proto/tests/handshake_vectors.rs (PQDROP_WRITE_VECTORS=1), which
runs real requester <-> accepter handshakes with a fixed RNG and a
deterministic ML-KEM-768. This script shares no code with that: starting from
the vector's *inputs* only (password, nameplate, capabilities, RNG labels) it
recomputes

  - the RNG streams: stream(label) = SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || ...
  - ML-KEM-768 (FIPS 203): ek from the seed d || z and decapsulation of the
    ciphertext with OpenSSL via `cryptography`; if the optional pure-Python
    `kyber-py` is installed, also ek, the expanded dk and (ct, ss) from m;
  - CPace (draft-irtf-cfrg-cpace-21, CPACE-X25519-SHA512): the generator string,
    the RFC 9380 Elligator2 map written here with plain integers, Ya, Yb and K
    with OpenSSL's X25519, and ISK;
  - the wire encoding of every handshake message (IxiVarUInt / IxiBytes frames),
    rebuilt field by field and compared with the stored flights;
  - the transcript hash, the HKDF-SHA256 key schedule, both confirmation tags and
    the exporter;
  - the capability negotiation and the first application record of each
    direction (STREAM nonce, AES-256-GCM / ChaCha20-Poly1305 / the cascade).

Everything must agree with the file, byte for byte.

Usage:
    pip install cryptography            # required (>= 44 for ML-KEM; older skips that check)
    pip install kyber-py                # optional: full ML-KEM recomputation from d, z, m
    python3 scripts/handshake_crosscheck.py             # verify vectors/handshake.json
    python3 scripts/handshake_crosscheck.py --markdown  # also print a summary for PROTOCOL.md
    python3 scripts/handshake_crosscheck.py --file other.json

To regenerate after an intended protocol change:
    PQDROP_WRITE_VECTORS=1 cargo test -p pqdrop-proto --test handshake_vectors
    python3 scripts/handshake_crosscheck.py

Exit status: 0 when everything matches, 1 on any mismatch, 2 when a required
module is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

try:
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError:  # pragma: no cover
    print("error: this script needs the `cryptography` package: pip install cryptography", file=sys.stderr)
    sys.exit(2)

try:
    from cryptography.hazmat.primitives.asymmetric import mlkem as openssl_mlkem
except ImportError:  # cryptography < 44
    openssl_mlkem = None

try:
    from kyber_py.ml_kem import ML_KEM_768 as kyber_mlkem768
except ImportError:
    kyber_mlkem768 = None

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = ROOT / "vectors" / "handshake.json"

# ---------------------------------------------------------------------------
# Constants of the protocol (crates/pqdrop-proto/src/labels.rs, msg.rs, cpace.rs)
# ---------------------------------------------------------------------------
CPACE_CI = b"pqdrop/v1 cpace"
TRANSCRIPT = b"pqdrop/v1 transcript"
AES_KEY = b"pqdrop/v1 AES Key"
CHACHA_KEY = b"pqdrop/v1 ChaCha Key"
CONFIRM_KEY = b"pqdrop/v1 confirm"
EXPORTER = b"pqdrop/v1 exporter"
R2A = b" requester->accepter"
A2R = b" accepter->requester"

DSI = b"CPace255"
DSI_ISK = b"CPace255_ISK"

PROTOCOL_VERSION = 1
T_REQUEST_ADD2, T_ACCEPT_ADD2, T_KEYS2, T_CONFIRM = 40, 41, 42, 43
T_RECORD, T_RECORD_FINAL = 50, 51

CAP_AES, CAP_CHACHA, CAP_CASCADE, CAP_RESUME, CAP_ZSTD = 1, 2, 4, 8, 16

P = 2**255 - 19
CURVE_A = 486662


class Mismatch(Exception):
    pass


failures: list[str] = []
checks = 0
notes: set[str] = set()


def note(msg: str) -> None:
    if msg not in notes:
        notes.add(msg)
        print("note: " + msg)


def check(what: str, got, want) -> None:
    global checks
    checks += 1
    if got != want:
        g = got.hex() if isinstance(got, (bytes, bytearray)) else got
        w = want.hex() if isinstance(want, (bytes, bytearray)) else want
        failures.append(f"{what}:\n    recomputed {g}\n    vector     {w}")


# ---------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------
def leb128(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def prepend_len(b: bytes) -> bytes:
    return leb128(len(b)) + b


def lv_cat(*parts: bytes) -> bytes:
    return b"".join(prepend_len(p) for p in parts)


def varuint(v: int) -> bytes:
    """Ixian IxiVarUInt, shortest form."""
    if v <= 0xF7:
        return bytes([v])
    if v <= 0xFFFF:
        return b"\xfc" + v.to_bytes(2, "little")
    if v <= 0xFFFFFFFF:
        return b"\xfd" + v.to_bytes(4, "little")
    return b"\xfe" + v.to_bytes(8, "little")


def read_varuint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    if first <= 0xF7:
        return first, pos + 1
    width = {0xFC: 2, 0xFD: 4, 0xFE: 8}[first]
    return int.from_bytes(buf[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def ixibytes(b: bytes) -> bytes:
    return varuint(len(b)) + b


def frame(msg_type: int, body: bytes) -> bytes:
    return varuint(msg_type) + ixibytes(body)


def split_frames(flight: bytes) -> list[tuple[int, bytes]]:
    """[(type, whole frame)] of a flight."""
    out, pos = [], 0
    while pos < len(flight):
        start = pos
        t, pos = read_varuint(flight, pos)
        n, pos = read_varuint(flight, pos)
        pos += n
        if pos > len(flight):
            raise Mismatch("truncated frame in flight")
        out.append((t, flight[start:pos]))
    return out


# ---------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------
def sha512(*parts: bytes) -> bytes:
    h = hashlib.sha512()
    for p in parts:
        h.update(p)
    return h.digest()


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def x25519(scalar: bytes, u: bytes) -> bytes:
    """RFC 7748 X25519 via OpenSSL (clamps the scalar, masks bit 255 of u)."""
    return X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(u))


class DetRng:
    """stream(label) = SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || ..."""

    def __init__(self, label: str):
        self.label = label.encode()
        self.buf = b""
        self.counter = 0

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += sha512(self.label, self.counter.to_bytes(8, "big"))
            self.counter += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


# ---------------------------------------------------------------------------
# CPace (draft-irtf-cfrg-cpace-21, CPACE-X25519-SHA512)
# ---------------------------------------------------------------------------
def generator_string(prs: bytes, ci: bytes, sid: bytes) -> bytes:
    len_zpad = max(0, 128 - 1 - len(prepend_len(prs)) - len(prepend_len(DSI)))
    return lv_cat(DSI, prs, bytes(len_zpad), ci, sid)


def elligator2_curve25519_u(r: bytes) -> bytes:
    """RFC 9380 §6.7.1 map_to_curve_elligator2 for curve25519 (J = 486662, K = 1,
    Z = 2), returning only the u-coordinate, preceded by decodeUCoordinate
    (RFC 7748: clear bit 255, little-endian)."""
    u = int.from_bytes(r, "little") & ((1 << 255) - 1)
    u %= P
    inv0 = lambda x: pow(x, P - 2, P)  # noqa: E731  (inv0(0) = 0)
    is_square = lambda x: pow(x, (P - 1) // 2, P) in (0, 1)  # noqa: E731
    tv1 = (2 * u * u) % P
    if tv1 == P - 1:  # Z * u^2 == -1: cannot happen for curve25519, kept for fidelity
        tv1 = 0
    x1 = (-CURVE_A * inv0(tv1 + 1)) % P
    gx1 = (x1 * x1 * x1 + CURVE_A * x1 * x1 + x1) % P
    x2 = (-x1 - CURVE_A) % P
    x = x1 if is_square(gx1) else x2
    return x.to_bytes(32, "little")


def calculate_generator(prs: bytes, ci: bytes, sid: bytes) -> bytes:
    return elligator2_curve25519_u(sha512(generator_string(prs, ci, sid))[:32])


def isk_ir(sid: bytes, k: bytes, ya: bytes, ada: bytes, yb: bytes, adb: bytes) -> bytes:
    return sha512(lv_cat(DSI_ISK, sid, k) + lv_cat(ya, ada) + lv_cat(yb, adb))


def self_test() -> None:
    """The CPace code above against draft-irtf-cfrg-cpace-21 Appendix B.1 (G_25519)."""
    x = bytes.fromhex
    ci = x("0b415f696e69746961746f720b425f726573706f6e646572")
    sid = x("7e4b4791d6a8ef019b936c79fb7f2c57")
    g = calculate_generator(b"Password", ci, sid)
    check("draft-21 B.1 generator g", g, x("d04bf6d41f6a289632a2e929fa29bebd51092512a7829fdde7d314b62f05a73f"))
    ya = x25519(x("21b4f4bd9e64ed355c3eb676a28ebedaf6d8f17bdc365995b319097153044080"), g)
    check("draft-21 B.1 Ya", ya, x("1d13c89278cdadd826f6d8d7f887701430f8380ddc17611cdd6dc989ce0c9f32"))


# ---------------------------------------------------------------------------
# Negotiation and records
# ---------------------------------------------------------------------------
def negotiate(a: int, b: int) -> dict:
    if (a | b) & CAP_CASCADE:
        cipher = "AES-256-GCM+ChaCha20-Poly1305 cascade"
    elif a & b & CAP_AES:
        cipher = "AES-256-GCM"
    else:
        cipher = "ChaCha20-Poly1305"
    return {"cipher": cipher, "resume": bool(a & b & CAP_RESUME), "zstd": bool(a & b & CAP_ZSTD)}


def stream_nonce(counter: int, last: bool) -> bytes:
    return bytes(3) + counter.to_bytes(8, "big") + bytes([1 if last else 0])


def seal_record(cipher: str, aes_key: bytes, chacha_key: bytes, counter: int, last: bool, pt: bytes) -> bytes:
    n = stream_nonce(counter, last)
    if cipher == "AES-256-GCM":
        body = AESGCM(aes_key).encrypt(n, pt, b"")
    elif cipher == "ChaCha20-Poly1305":
        body = ChaCha20Poly1305(chacha_key).encrypt(n, pt, b"")
    else:  # cascade: AES-256-GCM inside, ChaCha20-Poly1305 over its ciphertext and tag
        body = ChaCha20Poly1305(chacha_key).encrypt(n, AESGCM(aes_key).encrypt(n, pt, b""), b"")
    return frame(T_RECORD_FINAL if last else T_RECORD, body)


# ---------------------------------------------------------------------------
# One vector
# ---------------------------------------------------------------------------
def verify(v: dict) -> None:
    name = v["name"]
    inp = v["inputs"]
    x = lambda s: bytes.fromhex(s)  # noqa: E731
    prs = inp["password"].encode()
    nameplate = inp["nameplate"].encode()
    rcaps, acaps = inp["requester_capabilities"], inp["accepter_capabilities"]
    labels = inp["rng_labels"]

    # RNG streams, in the documented draw order.
    rr, ar, akr, rkr = (DetRng(labels[k]) for k in ("requester", "accepter", "accepter_kem", "requester_kem"))
    nonce, yb_scalar, chacha_salt = rr.take(32), rr.take(32), rr.take(32)
    ya_scalar, aes_salt = ar.take(32), ar.take(32)
    d, z = akr.take(32), akr.take(32)
    m = rkr.take(32)
    rnd = v["random"]
    for key, val in [
        ("requester_nonce", nonce),
        ("requester_cpace_scalar", yb_scalar),
        ("chacha_salt", chacha_salt),
        ("accepter_cpace_scalar", ya_scalar),
        ("aes_salt", aes_salt),
        ("mlkem_d", d),
        ("mlkem_z", z),
        ("mlkem_m", m),
    ]:
        check(f"{name}: random.{key}", val, x(rnd[key]))

    # ML-KEM-768.
    mk = v["mlkem"]
    ek_v, dk_v, ct_v, ss_v = x(mk["ek"]), x(mk["dk_expanded"]), x(mk["ct"]), x(mk["shared_secret"])
    ek, ct, ss = ek_v, ct_v, ss_v  # used below; replaced by recomputed values where possible
    if openssl_mlkem is not None:
        sk = openssl_mlkem.MLKEM768PrivateKey.from_seed_bytes(d + z)
        ek = sk.public_key().public_bytes_raw()
        check(f"{name}: mlkem.ek (OpenSSL keygen from d||z)", ek, ek_v)
        ss = sk.decapsulate(ct_v)
        check(f"{name}: mlkem.shared_secret (OpenSSL decapsulation)", ss, ss_v)
    else:
        note(f"cryptography {__import__('cryptography').__version__} has no ML-KEM; ek and ss taken from the vector")
    if kyber_mlkem768 is not None:
        ek_k, dk_k = kyber_mlkem768._keygen_internal(d, z)
        check(f"{name}: mlkem.ek (kyber-py)", ek_k, ek_v)
        check(f"{name}: mlkem.dk_expanded (kyber-py)", dk_k, dk_v)
        ss_k, ct_k = kyber_mlkem768._encaps_internal(ek_k, m)
        check(f"{name}: mlkem.ct (kyber-py encapsulation with m)", ct_k, ct_v)
        check(f"{name}: mlkem.shared_secret (kyber-py encapsulation with m)", ss_k, ss_v)
        check(f"{name}: kyber-py decapsulation", kyber_mlkem768.decaps(dk_k, ct_v), ss_v)
        ek, ct, ss = ek_k, ct_k, ss_k
    else:
        note("kyber-py not installed; the ML-KEM ciphertext is taken from the vector (pip install kyber-py for the full check)")

    # CPace.
    cp = v["cpace"]
    ci = lv_cat(CPACE_CI, nameplate)
    sid = nonce + aes_salt
    g = calculate_generator(prs, ci, sid)
    ya, yb = x25519(ya_scalar, g), x25519(yb_scalar, g)
    k = x25519(yb_scalar, ya)
    check(f"{name}: K is the same on both sides", x25519(ya_scalar, yb), k)
    isk = isk_ir(sid, k, ya, b"", yb, b"")
    for key, val in [("channel_id", ci), ("sid", sid), ("generator", g), ("ya", ya), ("yb", yb), ("k", k), ("isk", isk)]:
        check(f"{name}: cpace.{key}", val, x(cp[key]))

    # Handshake messages, rebuilt from the recomputed values.
    f0 = frame(T_REQUEST_ADD2, varuint(PROTOCOL_VERSION) + ixibytes(nonce))
    f1 = frame(T_ACCEPT_ADD2, varuint(PROTOCOL_VERSION) + ixibytes(ya) + ixibytes(ek) + ixibytes(aes_salt) + varuint(acaps))
    keys2 = frame(T_KEYS2, ixibytes(yb) + ixibytes(ct) + ixibytes(chacha_salt) + varuint(rcaps))
    flights = [x(f) for f in v["flights"]]
    check(f"{name}: number of flights", len(flights), 4)
    check(f"{name}: flight 0 (requestAdd2)", f0, flights[0])
    check(f"{name}: flight 1 (acceptAdd2)", f1, flights[1])
    f2_frames = split_frames(flights[2])
    check(f"{name}: flight 2 frame types", [t for t, _ in f2_frames], [T_KEYS2, T_CONFIRM])
    check(f"{name}: flight 2, keys2", keys2, f2_frames[0][1])

    # Transcript hash and key schedule.
    transcript = f0 + f1 + keys2
    th = sha512(lv_cat(TRANSCRIPT, ci) + transcript)
    check(f"{name}: transcript_hash", th, x(v["transcript_hash"]))
    combined = isk + ss
    ks = {
        "aes_r2a": hkdf(aes_salt, combined, AES_KEY + R2A + th),
        "aes_a2r": hkdf(aes_salt, combined, AES_KEY + A2R + th),
        "chacha_r2a": hkdf(chacha_salt, combined, CHACHA_KEY + R2A + th),
        "chacha_a2r": hkdf(chacha_salt, combined, CHACHA_KEY + A2R + th),
        "confirm_key_r2a": hkdf(th, combined, CONFIRM_KEY + R2A),
        "confirm_key_a2r": hkdf(th, combined, CONFIRM_KEY + A2R),
        "exporter": hkdf(th, combined, EXPORTER),
    }
    for key, val in ks.items():
        check(f"{name}: key_schedule.{key}", val, x(v["key_schedule"][key]))
    tag_r2a = hmac_sha256(ks["confirm_key_r2a"], th)
    tag_a2r = hmac_sha256(ks["confirm_key_a2r"], th)
    check(f"{name}: confirm_tag_r2a", tag_r2a, x(v["confirm_tag_r2a"]))
    check(f"{name}: confirm_tag_a2r", tag_a2r, x(v["confirm_tag_a2r"]))
    check(f"{name}: flight 2 (keys2 || confirm)", keys2 + frame(T_CONFIRM, ixibytes(tag_r2a)), flights[2])
    check(f"{name}: flight 3 (confirm)", frame(T_CONFIRM, ixibytes(tag_a2r)), flights[3])

    # Negotiation and the first record of each direction.
    agreed = negotiate(acaps, rcaps)
    check(f"{name}: agreed", agreed, v["agreed"])
    recs = v["records"]
    for direction, aes_k, chacha_k in [
        ("accepter_to_requester", ks["aes_a2r"], ks["chacha_a2r"]),
        ("requester_to_accepter", ks["aes_r2a"], ks["chacha_r2a"]),
    ]:
        r = recs[direction]
        got = seal_record(agreed["cipher"], aes_k, chacha_k, r["counter"], r["final"], r["plaintext"].encode())
        check(f"{name}: records.{direction}.frame", got, x(r["frame"]))


def markdown(doc: dict) -> str:
    lines = []
    for v in doc["vectors"]:
        lines.append(f"#### Vector `{v['name']}`\n")
        inp = v["inputs"]
        lines.append(
            f"password `{inp['password']}`, nameplate `{inp['nameplate']}`, requester capabilities "
            f"`{inp['requester_capabilities']:#x}`, accepter capabilities `{inp['accepter_capabilities']:#x}` "
            f"→ {v['agreed']['cipher']} (resume {str(v['agreed']['resume']).lower()}, zstd {str(v['agreed']['zstd']).lower()})\n"
        )
        lines.append("| value | hex |\n| --- | --- |")
        rows = [(f"random.{k}", val) for k, val in v["random"].items()]
        rows += [("mlkem.shared_secret", v["mlkem"]["shared_secret"])]
        rows += [(f"cpace.{k}", val) for k, val in v["cpace"].items()]
        rows += [("transcript_hash", v["transcript_hash"])]
        rows += [(f"key_schedule.{k}", val) for k, val in v["key_schedule"].items()]
        rows += [("confirm_tag_r2a", v["confirm_tag_r2a"]), ("confirm_tag_a2r", v["confirm_tag_a2r"])]
        rows += [(f"record {k} (\"{r['plaintext']}\")", r["frame"]) for k, r in v["records"].items()]
        rows += [(f"flight {i} ({len(f) // 2} bytes), SHA-256", hashlib.sha256(bytes.fromhex(f)).hexdigest()) for i, f in enumerate(v["flights"])]
        for k, val in rows:
            lines.append(f"| {k} | `{val}` |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--markdown", action="store_true", help="print the vectors as markdown tables")
    args = ap.parse_args()
    doc = json.loads(args.file.read_text())
    vectors = doc.get("vectors", [])
    self_test()
    if not vectors:
        print(f"error: no vectors in {args.file}", file=sys.stderr)
        return 1
    for v in vectors:
        try:
            verify(v)
        except (Mismatch, KeyError, ValueError, IndexError) as e:
            failures.append(f"{v.get('name', '?')}: cannot verify: {e!r}")
    if args.markdown:
        print(markdown(doc))
    if failures:
        print(f"{len(failures)} mismatches:", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        print(f"handshake crosscheck: {checks - len(failures)} passed, {len(failures)} failed")
        return 1
    print(f"handshake crosscheck: {checks} passed, 0 failed ({len(vectors)} vectors, {args.file.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
