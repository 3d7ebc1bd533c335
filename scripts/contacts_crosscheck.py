#!/usr/bin/env python3
"""Independent implementation of pqdrop's contact state (PROTOCOL.md §8 Identity, §13.4).

Python's `cryptography` package only (through scripts/identity_crosscheck.py,
which derives the public identities), nothing shared with the Rust code. It
produces vectors/contacts.json, which crates/pqdrop-proto/tests/contacts_vectors.rs
checks the Rust implementation against:

    Identity message = 0x13 || IxiBytes(public identity, 1280 bytes) || IxiBytes(proof, 64 bytes),
                       proof = Ed25519(key 17, "pqdrop identity proof v1" || u8(role) || transcript_hash)
    book key         = HKDF-SHA256(salt = "", ikm = state_ikm (key 3), info = "pqdrop contact book v1", L = 32)
    contact book     = "PQDROPCB" || 01 00 00 00 || nonce(12) || ChaCha20-Poly1305(book key, nonce, plaintext, aad = first 24 bytes)
    plaintext        = IxiVarUInt(n) || n x (IxiBytes(name) || IxiBytes(identity) || IxiVarUInt(added) || IxiVarUInt(source)
                       [|| IxiBytes(ticket, 0 or 56 bytes) when source = 2])
    ticket           = u64_be(expires) || nonce(16) || HMAC-SHA256(key 4, "pqdrop/v1 invitation" || u64_be(expires) || nonce)
    invitation       = 01 || public identity || ticket || SHA-256(all before)[:4]
    safety number    = 12 groups of 5 digits from SHA-512("pqdrop safety number v1" || lo || hi)
    LinkSeed         = 0x21 || IxiBytes(P1) || IxiBytes(ChaCha20-Poly1305(k, 0^12, seed)),
                       k = HKDF-SHA256(salt = exporter, ikm = X25519(key 1, N), info = "pqdrop link v1" || N || P1)

Usage:
    python3 scripts/contacts_crosscheck.py            # compare vectors/contacts.json with a fresh computation
    python3 scripts/contacts_crosscheck.py --write    # (re)write it

Exit status: 0 when everything matches, 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import identity_crosscheck as idx  # noqa: E402  (the derivations of §13.1)

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: E402

ROOT = idx.ROOT
VECTORS = ROOT / "vectors" / "contacts.json"
OWNER = bytes(32)  # the all-zero seed owns the book
NONCE = bytes(range(0x60, 0x6C))
CONTACTS = [
    # (name, seed of their identity, added, source)
    ("alice", bytes(range(32)), 1_764_633_600, 1),
    ("Bob Smith", bytes.fromhex("c64a28d4e6049d36d57ae13f80c1932ca3a374add6a1a3ddac9b1686d7f2a615"), 1_764_720_000, 2),
]
# Bob Smith's invitation, whose ticket the book keeps (PROTOCOL.md §13.8).
INVITE_EXPIRES = 1_765_324_800
INVITE_NONCE = bytes(range(0x70, 0x80))


def ticket(seed: bytes, expires: int, nonce: bytes) -> bytes:
    import hmac

    body = struct.pack(">Q", expires) + nonce
    return body + hmac.new(idx.key(seed, 4), b"pqdrop/v1 invitation" + body, hashlib.sha256).digest()


def invitation(seed: bytes, expires: int, nonce: bytes) -> bytes:
    body = b"\x01" + public_identity(seed) + ticket(seed, expires, nonce)
    return body + hashlib.sha256(body).digest()[:4]


def varuint(v: int) -> bytes:
    if v <= 0xF7:
        return bytes([v])
    if v <= 0xFFFF:
        return b"\xfc" + struct.pack("<H", v)
    if v <= 0xFFFF_FFFF:
        return b"\xfd" + struct.pack("<I", v)
    return b"\xfe" + struct.pack("<Q", v)


def ixibytes(b: bytes) -> bytes:
    return varuint(len(b)) + b


def public_identity(seed: bytes) -> bytes:
    v = idx.vector("", seed)
    return bytes.fromhex(v["seed_exchange_public"] + v["io_exchange_public"] + v["sign_public"] + v["io_kem_public"])


def book(owner: bytes, contacts: list, nonce: bytes) -> bytes:
    state_ikm = idx.key(owner, 3)
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=b"pqdrop contact book v1").derive(state_ikm)
    plain = varuint(len(contacts))
    for name, seed, added, source in contacts:
        plain += ixibytes(name.encode()) + ixibytes(public_identity(seed)) + varuint(added) + varuint(source)
        if source == 2:
            plain += ixibytes(ticket(seed, INVITE_EXPIRES, INVITE_NONCE))
    header = b"PQDROPCB" + bytes([1, 0, 0, 0]) + nonce
    return header + ChaCha20Poly1305(k).encrypt(nonce, plain, header)


def safety_number(a: bytes, b: bytes) -> str:
    lo, hi = sorted([a, b])
    d = hashlib.sha512(b"pqdrop safety number v1" + lo + hi).digest()
    return " ".join(f"{int.from_bytes(d[5 * i : 5 * i + 5], 'big') % 100000:05d}" for i in range(12))


def link_seed(seed: bytes, n_secret: bytes, exporter: bytes) -> tuple[bytes, bytes]:
    """LinkRequest and LinkSeed (PROTOCOL.md §13.6) for a fixed new-device key and session exporter."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives import serialization

    n_pub = X25519PrivateKey.from_private_bytes(n_secret).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    k1 = idx.key(seed, 1)
    p1 = idx.x25519_public(k1)
    dh = X25519PrivateKey.from_private_bytes(k1).exchange(X25519PublicKey.from_public_bytes(n_pub))
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=exporter, info=b"pqdrop link v1" + n_pub + p1).derive(dh)
    boxed = ChaCha20Poly1305(k).encrypt(bytes(12), seed, b"")
    return varuint(32) + ixibytes(n_pub), varuint(33) + ixibytes(p1) + ixibytes(boxed)


TRANSCRIPT = b"\x05" * 64  # a session's transcript hash, for the proof vector


def identity_proof(seed: bytes, role: int, transcript: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(idx.key(seed, 17)).sign(b"pqdrop identity proof v1" + bytes([role]) + transcript)


def link_check(exporter: bytes) -> str:
    """The check both devices show (PROTOCOL.md §13.6)."""
    n = int.from_bytes(HKDF(algorithm=hashes.SHA256(), length=4, salt=exporter, info=b"pqdrop link check v1").derive(b""), "big") % 1_000_000
    return f"{n // 1000:03d} {n % 1000:03d}"


def compute() -> dict:
    owner = public_identity(OWNER)
    proof = identity_proof(OWNER, 1, TRANSCRIPT)
    full = book(OWNER, CONTACTS, NONCE)
    return {
        "description": "pqdrop contact vectors (PROTOCOL.md §8 Identity message, §13.4 contact book and safety number). "
        "The book belongs to the identity of the all-zero seed; contacts are given by the seeds of their identities. "
        "Byte values lowercase hex; the book and messages as SHA-256 and in full.",
        "generator": "scripts/contacts_crosscheck.py (Python cryptography)",
        "owner_seed": OWNER.hex(),
        "nonce": NONCE.hex(),
        "contacts": [
            {"name": n, "seed": s.hex(), "added": a, "source": src}
            | ({"ticket": ticket(s, INVITE_EXPIRES, INVITE_NONCE).hex()} if src == 2 else {})
            for n, s, a, src in CONTACTS
        ],
        "invitation": {
            "seed": CONTACTS[1][1].hex(),
            "expires": INVITE_EXPIRES,
            "nonce": INVITE_NONCE.hex(),
            "key4": idx.key(CONTACTS[1][1], 4).hex(),
            "ticket": ticket(CONTACTS[1][1], INVITE_EXPIRES, INVITE_NONCE).hex(),
            "invitation": invitation(CONTACTS[1][1], INVITE_EXPIRES, INVITE_NONCE).hex(),
        },
        "book": full.hex(),
        "empty_book": book(OWNER, [], NONCE).hex(),
        "identity_proof_transcript": TRANSCRIPT.hex(),
        "identity_proof_of_owner_as_sender": proof.hex(),
        "identity_message_of_owner_sha256": hashlib.sha256(b"\x13" + ixibytes(owner) + ixibytes(proof)).hexdigest(),
        "identity_message_prefix": (b"\x13" + varuint(len(owner))).hex(),
        "link": {
            "seed": OWNER.hex(),
            "new_device_secret": (b"\x03" * 32).hex(),
            "exporter": (b"\x04" * 32).hex(),
            "request": link_seed(OWNER, b"\x03" * 32, b"\x04" * 32)[0].hex(),
            "answer": link_seed(OWNER, b"\x03" * 32, b"\x04" * 32)[1].hex(),
            "check": link_check(b"\x04" * 32),
        },
        "safety_numbers": [
            {"a": OWNER.hex(), "b": s.hex(), "safety_number": safety_number(owner, public_identity(s))} for _, s, _, _ in CONTACTS
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="(re)write vectors/contacts.json")
    args = ap.parse_args()
    fresh = compute()
    if args.write:
        VECTORS.write_text(json.dumps(fresh, indent=2) + "\n")
        print(f"wrote {VECTORS.relative_to(ROOT)}")
        return 0
    stored = json.loads(VECTORS.read_text())
    bad = [k for k in fresh if k not in ("generator", "description") and stored.get(k) != fresh[k]]
    for k in bad:
        print(f"MISMATCH {k}")
    if bad:
        return 1
    print("contact vectors: the book, the Identity message, the safety numbers, linking and invitations match an independent computation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
