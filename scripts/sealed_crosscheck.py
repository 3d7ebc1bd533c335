#!/usr/bin/env python3
"""Independent implementation of pqdrop sealed files (PROTOCOL.md §13.5).

Python's `cryptography` package only (the identities come from
scripts/identity_crosscheck.py), nothing shared with the Rust code:

    es     = X25519(e, recipient io_exchange)        (recipient: X25519(io_private, E))
    C, kss = ML-KEM-768 encapsulation to the recipient's ek
    k_hdr  = HKDF-SHA256(salt = "pqdrop sealed v1", ikm = es || kss,
                         info = "header" || E || C || recipient public identity, L = 32)
    header = "PQDROPSF" 01 00 00 00 || E || C || ChaCha20-Poly1305(k_hdr, 0^12, sender public identity, aad = the bytes before)
    ss     = X25519(sender io_private, recipient io_exchange)
    k_data = HKDF-SHA256(salt = "pqdrop sealed v1", ikm = es || kss || ss, info = "data" || SHA-256(header), L = 32)
    then records of §7 (ChaCha20-Poly1305 under k_data, STREAM nonces), the last one type 51, then the end of the file.

Usage:
    python3 scripts/sealed_crosscheck.py           # open vectors/sealed-rust.json and vectors/sealed-python.json
    python3 scripts/sealed_crosscheck.py --write   # seal a new vectors/sealed-python.json (random, so it changes)

Exit status: 0 when both open to the stated contents, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import identity_crosscheck as idx  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

ROOT = idx.ROOT
RUST = ROOT / "vectors" / "sealed-rust.json"
PYTHON = ROOT / "vectors" / "sealed-python.json"
SALT = b"pqdrop sealed v1"
HEADER_LEN = 12 + 32 + 1088 + 1280 + 16


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


def hkdf(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=info).derive(ikm)


def varuint(v: int) -> bytes:
    if v <= 0xF7:
        return bytes([v])
    if v <= 0xFFFF:
        return b"\xfc" + struct.pack("<H", v)
    if v <= 0xFFFF_FFFF:
        return b"\xfd" + struct.pack("<I", v)
    return b"\xfe" + struct.pack("<Q", v)


def read_varuint(b: bytes, i: int) -> tuple[int, int]:
    p = b[i]
    if p <= 0xF7:
        return p, i + 1
    n = {0xFC: 2, 0xFD: 4, 0xFE: 8}[p]
    return int.from_bytes(b[i + 1 : i + 1 + n], "little"), i + 1 + n


def nonce(counter: int, last: bool) -> bytes:
    return bytes(3) + struct.pack(">Q", counter) + bytes([1 if last else 0])


def open_sealed(recipient: Keys, file: bytes) -> tuple[bytes, list[bytes]]:
    header = file[:HEADER_LEN]
    assert header[:12] == b"PQDROPSF" + bytes([1, 0, 0, 0]), "not a version 1 sealed file"
    e, c, sender_box = header[12:44], header[44:1132], header[1132:]
    es = x25519(recipient.io_private, e)
    kss = recipient.dk.decapsulate(c)
    k_hdr = hkdf(es + kss, b"header" + e + c + recipient.public)
    sender = ChaCha20Poly1305(k_hdr).decrypt(bytes(12), sender_box, header[:1132])
    ss = x25519(recipient.io_private, sender[32:64])
    aead = ChaCha20Poly1305(hkdf(es + kss + ss, b"data" + hashlib.sha256(header).digest()))
    records, i, counter = [], HEADER_LEN, 0
    while True:
        t, i = read_varuint(file, i)
        n, i = read_varuint(file, i)
        assert t in (50, 51), f"frame type {t}"
        records.append(aead.decrypt(nonce(counter, t == 51), file[i : i + n], b""))
        i, counter = i + n, counter + 1
        if t == 51:
            break
    assert i == len(file), "bytes after the final record"
    return sender, records


def seal(sender: Keys, recipient: Keys, transfer: bytes) -> bytes:
    e = os.urandom(32)
    e_pub = X25519PrivateKey.from_private_bytes(e).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    es = x25519(e, recipient.io_public)
    kss, c = MLKEM768PublicKey.from_public_bytes(recipient.public[96:]).encapsulate()
    head = b"PQDROPSF" + bytes([1, 0, 0, 0]) + e_pub + c
    k_hdr = hkdf(es + kss, b"header" + e_pub + c + recipient.public)
    header = head + ChaCha20Poly1305(k_hdr).encrypt(bytes(12), sender.public, head)
    assert len(header) == HEADER_LEN
    ss = x25519(sender.io_private, recipient.io_public)
    aead = ChaCha20Poly1305(hkdf(es + kss + ss, b"data" + hashlib.sha256(header).digest()))
    out = header
    for counter, (t, pt) in enumerate([(50, transfer), (51, b"")]):
        body = aead.encrypt(nonce(counter, t == 51), pt, b"")
        out += varuint(t) + varuint(len(body)) + body
    return out


def transfer_bytes(content: bytes) -> bytes:
    """Offer, the folder d, the file d/hello.txt, its data and Done (PROTOCOL.md §8)."""
    mtime = varuint(1_764_633_600)

    def ixi(b: bytes) -> bytes:
        return varuint(len(b)) + b

    entry_dir = varuint(0) + varuint(2) + ixi(b"d") + varuint(0) + varuint(0) + mtime
    entry_file = varuint(1) + varuint(1) + ixi(b"d/hello.txt") + varuint(len(content)) + varuint(0) + mtime
    return (
        bytes([1, 1, 1, 1]) + varuint(len(content)) + varuint(1) + ixi(b"d")
        + bytes([4]) + entry_dir + bytes([4]) + entry_file + bytes([5])
        + bytes([8]) + entry_file + varuint(0)
        + bytes([9, 0]) + ixi(content) + bytes([10, 0]) + bytes([12])
    )  # fmt: skip


def check(path: Path) -> bool:
    doc = json.loads(path.read_text())
    sender, recipient = Keys(bytes.fromhex(doc["sender_seed"])), Keys(bytes.fromhex(doc["recipient_seed"]))
    who, records = open_sealed(recipient, bytes.fromhex(doc["file"]))
    want = bytes.fromhex(doc["contents"]["d/hello.txt"])
    # The transfer inside, byte for byte (its Chunk carries the contents), then the empty final record.
    ok = who == sender.public and records == [transfer_bytes(want), b""]
    print(f"{path.relative_to(ROOT)}: {'opens to the stated sender and contents' if ok else 'MISMATCH'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="seal a new vectors/sealed-python.json")
    args = ap.parse_args()
    if args.write:
        rust = json.loads(RUST.read_text())
        content = b"sealed by an independent implementation\n"
        sender, recipient = Keys(bytes.fromhex(rust["sender_seed"])), Keys(bytes.fromhex(rust["recipient_seed"]))
        doc = {
            "description": "A sealed file (PROTOCOL.md §13.5) made by scripts/sealed_crosscheck.py with random ephemeral keys; "
            "crates/pqdrop-proto/tests/sealed_vectors.rs opens it.",
            "sender_seed": rust["sender_seed"],
            "recipient_seed": rust["recipient_seed"],
            "contents": {"d/hello.txt": content.hex()},
            "file": seal(sender, recipient, transfer_bytes(content)).hex(),
        }
        PYTHON.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {PYTHON.relative_to(ROOT)}")
    return 0 if all([check(RUST), check(PYTHON)]) else 1


if __name__ == "__main__":
    sys.exit(main())
