#!/usr/bin/env python3
"""Independent implementation of the pqdrop key hierarchy ("seed 004").

It uses only Python's `cryptography` package (OpenSSL underneath), so it shares
no code with the Rust implementation (aws-lc-rs + x25519-dalek). It produces the
known-answer vectors in vectors/keys.json that crates/pqdrop-proto/tests/
keys_vectors.rs and crates/pqdrop/tests/keys_cli.rs check the Rust code
against.

    key_N = HKDF-SHA256(salt = HALVING_SALT, ikm = seed || index(N), info, L = 32)

    spec:    index(N) = uint8(N),           info = b""
    enclave: index(N) = u32_big_endian(N),  info = b"seed"

Public keys are X25519(clamp(private), 9) (RFC 7748).

Usage:
    python3 scripts/keys_crosscheck.py              # compare vectors/keys.json with a fresh computation
    python3 scripts/keys_crosscheck.py --write      # (re)write vectors/keys.json
    python3 scripts/keys_crosscheck.py --markdown   # print the vectors as a markdown table
    python3 scripts/keys_crosscheck.py --cli target/debug/pqdrop
                                                    # also run the Rust CLI on every seed and compare

Exit status: 0 when everything matches, 1 on any mismatch.
Requires: pip install cryptography
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    import cryptography
except ImportError:  # pragma: no cover - explained to the user
    sys.exit("keys_crosscheck.py needs the 'cryptography' package: pip install cryptography")

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "vectors" / "keys.json"

# Bitcoin block 630,000 (the 2020 halving).
HALVING_SALT = bytes.fromhex("000000000000000000024bead8df69990852c202db0e0097c1a12ea637d7e96d")

# (name, seed). The third is SHA-256("pqdrop keys test vector 3"), written out
# so that the file does not depend on how it was chosen.
SEEDS = [
    ("all-zero", bytes(32)),
    ("counting", bytes(range(32))),
    ("random-looking", bytes.fromhex("c64a28d4e6049d36d57ae13f80c1932ca3a374add6a1a3ddac9b1686d7f2a615")),
]

# Index -> field name. 1..4 in both variants; 5..8 only in the enclave code.
NAMED = [
    (1, "seed_exchange_private"),
    (2, "io_exchange_private"),
    (3, "state_ikm"),
    (4, "callback_secret"),
]
ENCLAVE_EXTRA = [
    (5, "randomness_encryption_key"),
    (6, "initial_randomness_seed"),
    (7, "admin_proof"),
    (8, "contract_key_proof"),
]
# Field order in the JSON and the table.
FIELDS = [
    "seed_exchange_private",
    "seed_exchange_public",
    "io_exchange_private",
    "io_exchange_public",
    "state_ikm",
    "callback_secret",
]
CLI_FIELDS = FIELDS  # what `pqdrop keys derive --json` prints besides "variant"


def derive(seed: bytes, variant: str, n: int) -> bytes:
    if variant == "spec":
        if not 0 <= n <= 255:
            raise ValueError("spec index must fit in one byte")
        ikm, info = seed + bytes([n]), b""
    elif variant == "enclave":
        ikm, info = seed + n.to_bytes(4, "big"), b"seed"
    else:
        raise ValueError(variant)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=HALVING_SALT, info=info).derive(ikm)


def x25519_public(private: bytes) -> bytes:
    # OpenSSL clamps the scalar inside, as RFC 7748 says.
    return (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def vector(name: str, seed: bytes, variant: str) -> dict:
    v = {"name": name, "seed": seed.hex(), "variant": variant}
    keys = {field: derive(seed, variant, n) for n, field in NAMED}
    v["seed_exchange_private"] = keys["seed_exchange_private"].hex()
    v["seed_exchange_public"] = x25519_public(keys["seed_exchange_private"]).hex()
    v["io_exchange_private"] = keys["io_exchange_private"].hex()
    v["io_exchange_public"] = x25519_public(keys["io_exchange_private"]).hex()
    v["state_ikm"] = keys["state_ikm"].hex()
    v["callback_secret"] = keys["callback_secret"].hex()
    if variant == "enclave":
        for n, field in ENCLAVE_EXTRA:
            v[field] = derive(seed, variant, n).hex()
    return v


def self_test() -> None:
    """Checks the two building blocks against their RFCs before trusting them."""
    # RFC 5869 A.1 (HKDF-SHA256).
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=42,
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
    ).derive(bytes.fromhex("0b" * 22))
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    ), "RFC 5869 A.1"
    # RFC 7748 6.1 (Alice's key pair).
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert x25519_public(alice).hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    ), "RFC 7748 6.1"


def compute() -> dict:
    vectors = [vector(name, seed, variant) for name, seed in SEEDS for variant in ("spec", "enclave")]
    return {
        "description": (
            "pqdrop key hierarchy (seed 004) known-answer vectors: "
            "key_N = HKDF-SHA256(salt = hkdf_salt, ikm = seed || index(N), info, L = 32); "
            "spec: index = uint8(N), info = empty; enclave: index = u32_big_endian(N), info = \"seed\". "
            "Publics are X25519(private, 9) with RFC 7748 clamping. Indices: 1 seed_exchange_private, "
            "2 io_exchange_private, 3 state_ikm, 4 callback_secret, 5 randomness_encryption_key, "
            "6 initial_randomness_seed, 7 admin_proof, 8 contract_key_proof. All values lowercase hex."
        ),
        "generator": "scripts/keys_crosscheck.py (Python cryptography %s)" % cryptography.__version__,
        "hkdf_salt": HALVING_SALT.hex(),
        "vectors": vectors,
    }


def comparable(doc: dict) -> dict:
    # The generator line names the library version, which may differ between
    # machines without the values differing.
    return {k: v for k, v in doc.items() if k != "generator"}


def markdown(doc: dict) -> str:
    lines = [
        "Salt: `%s` (Bitcoin block 630,000)." % doc["hkdf_salt"],
        "",
        "| seed | variant | N | key | value (hex) |",
        "|---|---|---|---|---|",
    ]
    index_of = {field: n for n, field in NAMED + ENCLAVE_EXTRA}
    for v in doc["vectors"]:
        first = True
        for field in FIELDS + [f for _, f in ENCLAVE_EXTRA]:
            if field not in v:
                continue
            n = index_of.get(field)
            seed_cell = "%s `%s`" % (v["name"], v["seed"]) if first else ""
            variant_cell = v["variant"] if first else ""
            lines.append(
                "| %s | %s | %s | %s | `%s` |"
                % (seed_cell, variant_cell, n if n is not None else "pub", field, v[field])
            )
            first = False
    return "\n".join(lines)


def check_cli(binary: str, doc: dict) -> list[str]:
    problems = []
    for v in doc["vectors"]:
        proc = subprocess.run(
            [binary, "keys", "derive", "--variant", v["variant"], "--json"],
            input=(v["seed"] + "\n").encode(),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            problems.append("%s/%s: CLI exited %d: %s" % (v["name"], v["variant"], proc.returncode, proc.stderr.decode()))
            continue
        out = json.loads(proc.stdout)
        want = {"variant": v["variant"], **{f: v[f] for f in CLI_FIELDS}}
        if out != want:
            problems.append("%s/%s: CLI printed %s, expected %s" % (v["name"], v["variant"], out, want))
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write vectors/keys.json instead of comparing")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table of the vectors")
    ap.add_argument("--cli", metavar="PATH", help="also check the pqdrop binary at PATH against the vectors")
    args = ap.parse_args()

    self_test()
    doc = compute()
    status = 0
    if args.write:
        VECTORS.parent.mkdir(parents=True, exist_ok=True)
        VECTORS.write_text(json.dumps(doc, indent=2) + "\n")
        print("wrote %s (%d vectors)" % (VECTORS.relative_to(ROOT), len(doc["vectors"])), file=sys.stderr)
    else:
        try:
            stored = json.loads(VECTORS.read_text())
        except FileNotFoundError:
            print("%s is missing: run with --write" % VECTORS, file=sys.stderr)
            return 1
        if comparable(stored) != comparable(doc):
            print("MISMATCH: %s differs from this independent computation" % VECTORS, file=sys.stderr)
            status = 1
        else:
            print("ok: %s matches (%d vectors)" % (VECTORS.relative_to(ROOT), len(doc["vectors"])), file=sys.stderr)
    if args.cli:
        problems = check_cli(args.cli, doc)
        for p in problems:
            print("MISMATCH: " + p, file=sys.stderr)
        if problems:
            status = 1
        else:
            print("ok: %s agrees on all %d vectors" % (args.cli, len(doc["vectors"])), file=sys.stderr)
    if args.markdown:
        print(markdown(doc))
    return status


if __name__ == "__main__":
    sys.exit(main())
