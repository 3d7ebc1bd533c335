#!/usr/bin/env python3
"""Independent check of the pqdrop contact handshake (PROTOCOL.md §13.7).

Python's `cryptography` package only (the identities come from
scripts/identity_crosscheck.py), nothing shared with the Rust code. From the
private keys and the fresh values of vectors/contact-handshake.json it
recomputes, as PROTOCOL.md §13.7 and §6 say:

    es = X25519(e_I, R.io)   k_s = ML-KEM.Decaps(R.dk, hello.ct_s)
    k_hello = HKDF-SHA256(salt = "pqdrop/v1 contact hello", ikm = es || k_s,
                          info = SHA-512(R) || e_I || ct_s)
    the initiator's identity = ChaCha20-Poly1305-Open(k_hello, 0^12, sealedIdentity, aad = the hello body before it)
    ss = X25519(I.io, R.io)  ee = X25519(e_I, e_R)  se = X25519(I.io, e_R)
    k_e = ML-KEM.Decaps(dk_e, answer.ct_e)   k_i = ML-KEM.Decaps(I.dk, answer.ct_i)
    combined = es || k_s || ss || ee || se || k_e || k_i
    TH = SHA-512(lv_cat("pqdrop/v1 contact transcript", R, I) || frame(hello) || frame(answer))
    then §6 from prk_aes on: both confirmation tags, the traffic keys (checked by
    opening one record each way) and the exporter; and the responder's room.

Usage: python3 scripts/contact_crosscheck.py      (exit status 0 when everything matches)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import identity_crosscheck as idx  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand  # noqa: E402

VECTORS = idx.ROOT / "vectors" / "contact-handshake.json"


class Keys:
    """The keys of an identity (PROTOCOL.md §13.1)."""

    def __init__(self, seed: bytes):
        self.io_private = idx.key(seed, 2)
        self.dk = MLKEM768PrivateKey.from_seed_bytes(idx.hkdf(seed + struct.pack(">I", 16), b"seed", 64))
        v = idx.vector("", seed)
        self.public = bytes.fromhex(v["seed_exchange_public"] + v["io_exchange_public"] + v["sign_public"] + v["io_kem_public"])
        self.io_public = self.public[32:64]


def x25519(private: bytes, public: bytes) -> bytes:
    out = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    assert out != bytes(32), "all-zero X25519 result"
    return out


def x25519_base(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def expand(prk: bytes, info: bytes) -> bytes:
    return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info).derive(prk)


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def lv_cat(*parts: bytes) -> bytes:
    return b"".join(leb128(len(p)) + p for p in parts)


def read_varuint(b: bytes, i: int) -> tuple[int, int]:
    p = b[i]
    if p <= 0xF7:
        return p, i + 1
    n = {0xFC: 2, 0xFD: 4, 0xFE: 8}[p]
    return int.from_bytes(b[i + 1 : i + 1 + n], "little"), i + 1 + n


def read_bytes(b: bytes, i: int) -> tuple[bytes, int]:
    n, i = read_varuint(b, i)
    return b[i : i + n], i + n


def frames(flight: bytes) -> list[tuple[int, bytes, bytes]]:
    """(type, body, whole frame) of each frame in a flight."""
    out, i = [], 0
    while i < len(flight):
        start = i
        t, i = read_varuint(flight, i)
        n, i = read_varuint(flight, i)
        out.append((t, flight[i : i + n], flight[start : i + n]))
        i += n
    return out


def nonce(counter: int, last: bool) -> bytes:
    return bytes(3) + struct.pack(">Q", counter) + bytes([1 if last else 0])


def check(what: str, got, want) -> None:
    if got != want:
        sys.exit(f"contact_crosscheck: MISMATCH in {what}:\n  python: {got!r}\n  vector: {want!r}")


def main() -> int:
    v = json.loads(VECTORS.read_text())
    I, R = Keys(bytes.fromhex(v["initiator_seed"])), Keys(bytes.fromhex(v["responder_seed"]))
    fi = {k: bytes.fromhex(x) for k, x in v["initiator_fresh"].items()}
    fr = {k: bytes.fromhex(x) for k, x in v["responder_fresh"].items()}

    [(t, hello, hello_frame)] = frames(bytes.fromhex(v["contact_hello"]))
    check("contactHello type", t, 45)
    version, i = read_varuint(hello, 0)
    e_i, i = read_bytes(hello, i)
    ct_s, i = read_bytes(hello, i)
    ek_e, i = read_bytes(hello, i)
    chacha_salt, i = read_bytes(hello, i)
    caps_i, i = read_varuint(hello, i)
    bound = hello[:i]
    sealed, i = read_bytes(hello, i)
    check("end of contactHello", i, len(hello))
    check("version", version, 1)
    check("e_I", e_i, x25519_base(fi["e"]))
    dk_e = MLKEM768PrivateKey.from_seed_bytes(fi["kem_seed"])
    check("ek_e", ek_e, dk_e.public_key().public_bytes_raw())
    check("chaChaSalt", chacha_salt, fi["chacha_salt"])
    check("initiator capabilities", caps_i, v["initiator_capabilities"])

    es = x25519(R.io_private, e_i)
    check("es from both sides", es, x25519(fi["e"], R.io_public))
    k_s = R.dk.decapsulate(ct_s)
    k_hello = hkdf(b"pqdrop/v1 contact hello", es + k_s, hashlib.sha512(R.public).digest() + e_i + ct_s)
    caller = ChaCha20Poly1305(k_hello).decrypt(bytes(12), sealed, bound)
    check("the initiator's sealed identity", caller, I.public)

    [(t, answer, answer_frame), (t2, confirm_a, _)] = frames(bytes.fromhex(v["contact_answer_and_confirm"]))
    check("contactAnswer and confirm types", (t, t2), (46, 43))
    version_r, i = read_varuint(answer, 0)
    e_r, i = read_bytes(answer, i)
    ct_e, i = read_bytes(answer, i)
    ct_i, i = read_bytes(answer, i)
    aes_salt, i = read_bytes(answer, i)
    caps_r, i = read_varuint(answer, i)
    check("end of contactAnswer", i, len(answer))
    check("answer version", version_r, 1)
    check("e_R", e_r, x25519_base(fr["e"]))
    check("aesSalt", aes_salt, fr["aes_salt"])
    check("responder capabilities", caps_r, v["responder_capabilities"])

    ss = x25519(I.io_private, R.io_public)
    ee = x25519(fi["e"], e_r)
    check("ee from both sides", ee, x25519(fr["e"], e_i))
    se = x25519(I.io_private, e_r)
    check("se from both sides", se, x25519(fr["e"], I.io_public))
    k_e = dk_e.decapsulate(ct_e)
    k_i = I.dk.decapsulate(ct_i)
    combined = es + k_s + ss + ee + se + k_e + k_i
    th = hashlib.sha512(lv_cat(b"pqdrop/v1 contact transcript", R.public, I.public) + hello_frame + answer_frame).digest()
    check("transcript hash", th.hex(), v["transcript_hash"])

    prk_aes, prk_chacha, prk_confirm = extract(aes_salt, combined), extract(chacha_salt, combined), extract(th, combined)
    r2a, a2r = b" requester->accepter", b" accepter->requester"
    tag_a = hmac.new(expand(prk_confirm, b"pqdrop/v1 confirm" + a2r), th, hashlib.sha256).digest()
    tag_r = hmac.new(expand(prk_confirm, b"pqdrop/v1 confirm" + r2a), th, hashlib.sha256).digest()
    check("the responder's confirm tag", confirm_a, bytes([32]) + tag_a)
    [(t, confirm_r, _)] = frames(bytes.fromhex(v["initiator_confirm"]))
    check("the initiator's confirm", (t, confirm_r), (43, bytes([32]) + tag_r))
    check("exporter", expand(prk_confirm, b"pqdrop/v1 exporter").hex(), v["exporter"])

    both_aes = caps_i & caps_r & 1
    check("cipher", "Aes256Gcm" if both_aes and not ((caps_i | caps_r) & 4) else "other", v["cipher"])
    aes_i = expand(prk_aes, b"pqdrop/v1 AES Key" + r2a + th)
    aes_r = expand(prk_aes, b"pqdrop/v1 AES Key" + a2r + th)
    expand(prk_chacha, b"pqdrop/v1 ChaCha Key" + r2a + th)  # unused with AES-256-GCM
    for name, key, last, want in [("initiator", aes_i, False, b"from the initiator"), ("responder", aes_r, True, b"from the responder")]:
        [(t, body, _)] = frames(bytes.fromhex(v[f"record_{name}"]))
        check(f"{name} record type", t, 51 if last else 50)
        check(f"{name} record", AESGCM(key).decrypt(nonce(0, last), body, b""), want)

    window = v["unix_time"] // 600
    check("window", window, v["window"])
    room = hkdf(b"pqdrop/v1 contact room", R.public, struct.pack(">Q", window), 16)
    check("responder room", room.hex(), v["responder_room"])
    # An invited initiator (PROTOCOL.md §13.8): its sealed identity is
    # pub_I || ticket, and the ticket is the responder's HMAC under key 4.
    inv = v["invited"]
    e2, _, _, m2 = (bytes.fromhex(x) for x in inv["initiator_fresh"])
    expires, tnonce = inv["ticket_expires"], bytes.fromhex(inv["ticket_nonce"])
    body = struct.pack(">Q", expires) + tnonce
    ticket = body + hmac.new(idx.key(bytes.fromhex(v["responder_seed"]), 4), b"pqdrop/v1 invitation" + body, hashlib.sha256).digest()
    check("ticket", ticket.hex(), inv["ticket"])
    [(t, hello, _)] = frames(bytes.fromhex(inv["contact_hello"]))
    check("invited contactHello type", t, 45)
    i = 0
    _, i = read_varuint(hello, i)
    e_i, i = read_bytes(hello, i)
    ct_s, i = read_bytes(hello, i)
    for _ in range(2):
        _, i = read_bytes(hello, i)
    _, i = read_varuint(hello, i)
    bound = hello[:i]
    sealed, i = read_bytes(hello, i)
    check("end of the invited contactHello", i, len(hello))
    check("invited e_I", e_i, x25519_base(e2))
    es = x25519(R.io_private, e_i)
    k_s = R.dk.decapsulate(ct_s)
    k_hello = hkdf(b"pqdrop/v1 contact hello", es + k_s, hashlib.sha512(R.public).digest() + e_i + ct_s)
    check("the invited sealed identity", ChaCha20Poly1305(k_hello).decrypt(bytes(12), sealed, bound), I.public + ticket)
    check("the ticket is valid at unix_time", v["unix_time"] < expires, True)
    print("contact_crosscheck: contact handshake, confirmations, records, room and an invited hello match PROTOCOL.md §13.7-13.8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
