#!/usr/bin/env python3
"""Independent implementation of pqdrop identities (PROTOCOL.md §13.1-13.3).

Only Python's `cryptography` package (OpenSSL underneath) and the BIP-39
English word list in vectors/bip39-english.txt are used, so nothing is shared
with the Rust implementation (aws-lc-rs, x25519-dalek, RustCrypto ml-kem and
argon2, the bip39 crate). It produces vectors/identity.json, which
crates/pqdrop-proto/tests/identity_vectors.rs checks the Rust code against.

    io_kem_seed = HKDF-SHA256(salt = HALVING_SALT, ikm = seed || u32_be(16), info = "seed", L = 64)
    ek          = ML-KEM-768 from the 64-byte seed io_kem_seed
    sign_public = Ed25519 public key of the RFC 8032 seed key_17
    fingerprint = Crockford base 32 of the first 100 bits of
                  SHA-256("pqdrop identity fingerprint v1" || seed_exchange_public || io_exchange_public || sign_public || ek)
    phrase      = BIP-39 English words of the 32-byte seed as entropy
    file        = the 100-byte identity file of §13.2

Usage:
    python3 scripts/identity_crosscheck.py            # compare vectors/identity.json with a fresh computation
    python3 scripts/identity_crosscheck.py --write    # (re)write it

Exit status: 0 when everything matches, 1 on any mismatch.
Requires: pip install 'cryptography>=45' (ML-KEM needs OpenSSL 3.5 inside it)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    import cryptography
except ImportError as e:  # pragma: no cover - explained to the user
    sys.exit(f"identity_crosscheck.py needs a recent 'cryptography' package (pip install cryptography): {e}")

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors" / "identity.json"
WORDS = (ROOT / "vectors" / "bip39-english.txt").read_text().split("\n")[:2048]
WORDLIST_SHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"  # BIP-39's english.txt

HALVING_SALT = bytes.fromhex("000000000000000000024bead8df69990852c202db0e0097c1a12ea637d7e96d")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

SEEDS = [
    ("all-zero", bytes(32)),
    ("counting", bytes(range(32))),
    ("random-looking", bytes.fromhex("c64a28d4e6049d36d57ae13f80c1932ca3a374add6a1a3ddac9b1686d7f2a615")),
]
# Identity files: cheap Argon2id costs so that the vectors check quickly.
PASSPHRASE = "correct horse battery staple"
COST = (256, 2, 1)  # KiB, passes, lanes
SALT = bytes(range(0x10, 0x20))
NONCE = bytes(range(0x40, 0x4C))


def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HALVING_SALT, info=info).derive(ikm)


def key(seed: bytes, n: int) -> bytes:
    return hkdf(seed + struct.pack(">I", n), b"seed", 32)


def x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def fingerprint(public: bytes) -> str:
    h = hashlib.sha256(b"pqdrop identity fingerprint v1" + public).digest()
    bits = int.from_bytes(h[:13], "big") >> 4  # the first 100 bits
    syms = [CROCKFORD[(bits >> (5 * (19 - i))) & 31] for i in range(20)]
    return "-".join("".join(syms[i : i + 4]) for i in range(0, 20, 4))


def phrase(seed: bytes) -> str:
    checksum = hashlib.sha256(seed).digest()[0]
    bits = (int.from_bytes(seed, "big") << 8) | checksum  # 264 bits
    return " ".join(WORDS[(bits >> (11 * (23 - i))) & 2047] for i in range(24))


def identity_file(seed: bytes, passphrase: str | None) -> bytes:
    if passphrase is None:
        header = b"PQDROPID" + bytes([1, 1, 0, 0]) + bytes(12) + bytes(16) + NONCE
        k = bytes(32)
    else:
        m, t, p = COST
        header = b"PQDROPID" + bytes([1, 1, 1, 0]) + struct.pack(">III", m, t, p) + SALT + NONCE
        k = Argon2id(salt=SALT, length=32, iterations=t, lanes=p, memory_cost=m).derive(passphrase.encode())
    assert len(header) == 52
    return header + ChaCha20Poly1305(k).encrypt(NONCE, seed, header)


def vector(name: str, seed: bytes) -> dict:
    sx = x25519_public(key(seed, 1))
    io = x25519_public(key(seed, 2))
    sign = Ed25519PrivateKey.from_private_bytes(key(seed, 17)).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kem_seed = hkdf(seed + struct.pack(">I", 16), b"seed", 64)
    ek = MLKEM768PrivateKey.from_seed_bytes(kem_seed).public_key().public_bytes_raw()
    assert len(ek) == 1184
    return {
        "name": name,
        "seed": seed.hex(),
        "seed_exchange_public": sx.hex(),
        "io_exchange_public": io.hex(),
        "sign_public": sign.hex(),
        "io_kem_seed": kem_seed.hex(),
        "io_kem_public": ek.hex(),
        "fingerprint": fingerprint(sx + io + sign + ek),
        "recovery_phrase": phrase(seed),
        "file_without_passphrase": identity_file(seed, None).hex(),
        "file_with_passphrase": identity_file(seed, PASSPHRASE).hex(),
    }


def compute() -> dict:
    return {
        "description": "pqdrop identity vectors (PROTOCOL.md §13.1-13.3): enclave-variant keys, the ML-KEM-768 key of index 16, "
        "the fingerprint, the BIP-39 recovery phrase and the 100-byte identity file. Files use the salt, nonce, "
        "passphrase and Argon2id cost given here. All byte values lowercase hex.",
        "generator": f"scripts/identity_crosscheck.py (Python cryptography {cryptography.__version__})",
        "passphrase": PASSPHRASE,
        "argon2id": {"memory_kib": COST[0], "passes": COST[1], "lanes": COST[2]},
        "salt": SALT.hex(),
        "nonce": NONCE.hex(),
        "vectors": [vector(n, s) for n, s in SEEDS],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="(re)write vectors/identity.json")
    args = ap.parse_args()
    listed = hashlib.sha256(("\n".join(WORDS) + "\n").encode()).hexdigest()
    if listed != WORDLIST_SHA256:
        print(f"vectors/bip39-english.txt is not BIP-39's English list (SHA-256 {listed})")
        return 1
    # BIP-39's own test vector for 32 zero bytes of entropy.
    assert phrase(bytes(32)) == "abandon " * 23 + "art"
    fresh = compute()
    if args.write:
        VECTORS.write_text(json.dumps(fresh, indent=2) + "\n")
        print(f"wrote {VECTORS.relative_to(ROOT)}")
        return 0
    stored = json.loads(VECTORS.read_text())
    if stored["vectors"] != fresh["vectors"]:
        for a, b in zip(stored["vectors"], fresh["vectors"]):
            for k in b:
                if a.get(k) != b[k]:
                    print(f"MISMATCH {b['name']}.{k}")
        return 1
    print(f"identity vectors: {len(fresh['vectors'])} seeds match an independent computation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
