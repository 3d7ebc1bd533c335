#!/usr/bin/env python3
"""Independent encoding of the relay protocol vectors (vectors/relay.json).

Written from PROTOCOL.md section 9 alone, sharing no code with the Rust relay:
IxiVarUInt / IxiBytes, the version-1 and version-2 hellos (nameplates and
contact rooms), the status frame,
and the rules that refuse a hello. For every vector it encodes the inputs
and compares with the stored hex; every refused hello must be refused here
too. crates/pqdrop-relay/tests/wire_vectors.rs checks the same file against
the Rust encoder and parser.

Usage:
    python3 scripts/relay_crosscheck.py           # verify vectors/relay.json
    python3 scripts/relay_crosscheck.py --write   # (re)write the hex from the inputs
"""
import json
import os
import sys

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors", "relay.json")
MAGIC = b"pqdr"


def varuint(v):
    if v <= 0xF7:
        return bytes([v])
    if v <= 0xFFFF:
        return b"\xfc" + v.to_bytes(2, "little")
    if v <= 0xFFFFFFFF:
        return b"\xfd" + v.to_bytes(4, "little")
    return b"\xfe" + v.to_bytes(8, "little")


def ixibytes(b):
    return varuint(len(b)) + b


def hello(version, role, flags, nameplate):
    out = MAGIC + varuint(version) + varuint(role)
    if version == 2:
        out += varuint(flags)
    return out + ixibytes(nameplate.encode("ascii"))


def status(code, message):
    return varuint(code) + ixibytes(message.encode("utf-8"))


def read_varuint(b, pos):
    """(value, new pos), or None if incomplete; raises ValueError if invalid."""
    if pos >= len(b):
        return None
    first = b[pos]
    if first <= 0xF7:
        return first, pos + 1
    sizes = {0xFC: (2, 0xF8), 0xFD: (4, 0x10000), 0xFE: (8, 0x100000000)}
    if first not in sizes:
        raise ValueError("reserved IxiVarUInt prefix")
    n, minimum = sizes[first]
    if pos + 1 + n > len(b):
        return None
    v = int.from_bytes(b[pos + 1:pos + 1 + n], "little")
    if v < minimum:
        raise ValueError("IxiVarUInt not in shortest form")
    return v, pos + 1 + n


def parse_hello(b):
    """'incomplete', 'bad', or the parsed fields and length."""
    if b[:4] != MAGIC[:len(b[:4])]:
        return "bad"
    if len(b) < 4:
        return "incomplete"
    try:
        fields = []
        pos = 4
        r = read_varuint(b, pos)
        if r is None:
            return "incomplete"
        version, pos = r
        if version not in (1, 2):
            return "bad"
        r = read_varuint(b, pos)
        if r is None:
            return "incomplete"
        role, pos = r
        if role not in (1, 2):
            return "bad"
        flags = None
        if version == 2:
            r = read_varuint(b, pos)
            if r is None:
                return "incomplete"
            flags, pos = r
            if flags & ~7 or (flags & 6) == 6:
                return "bad"
        r = read_varuint(b, pos)
        if r is None:
            return "incomplete"
        n, pos = r
        if flags is not None and flags & 2:
            # A contact room: exactly 32 lowercase hex digits, either role.
            if n != 32:
                return "bad"
            name = b[pos:pos + n]
            if not all(c in b"0123456789abcdef" for c in name):
                return "bad"
            if len(name) < n:
                return "incomplete"
            return (version, role, flags, name.decode("ascii")), pos + n
        minimum = 0 if (version == 2 and role == 1) else 1
        if not (minimum <= n <= 5):
            return "bad"
        name = b[pos:pos + n]
        if not all(0x30 <= c <= 0x39 for c in name) or name[:1] == b"0":
            return "bad"
        if len(name) < n:
            return "incomplete"
        if n and int(name) > 65535:
            return "bad"
        fields = (version, role, flags, name.decode("ascii"))
        return fields, pos + n
    except ValueError:
        return "bad"


def main():
    doc = json.load(open(PATH))
    write = "--write" in sys.argv
    bad = 0
    for v in doc["hellos"]:
        want = hello(v["version"], v["role"], v["flags"], v["nameplate"]).hex()
        if write:
            v["hex"] = want
        elif v["hex"] != want:
            print(f"hello {v}: stored {v['hex']}, encoded {want}")
            bad += 1
        parsed = parse_hello(bytes.fromhex(want))
        if parsed == "bad" or parsed == "incomplete" or parsed[1] != len(want) // 2:
            print(f"hello {v}: does not parse back: {parsed}")
            bad += 1
    for v in doc["statuses"]:
        want = status(v["code"], v["message"]).hex()
        if write:
            v["hex"] = want
        elif v["hex"] != want:
            print(f"status {v}: stored {v['hex']}, encoded {want}")
            bad += 1
    for v in doc["bad_hellos"]:
        if parse_hello(bytes.fromhex(v["hex"])) != "bad":
            print(f"bad hello {v}: not refused")
            bad += 1
    if write:
        with open(PATH, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print(f"relay_crosscheck: wrote {PATH}")
        return 0
    if bad:
        print(f"relay_crosscheck: {bad} mismatch(es)")
        return 1
    print(f"relay_crosscheck: {len(doc['hellos'])} hellos, {len(doc['statuses'])} statuses and "
          f"{len(doc['bad_hellos'])} refused hellos agree with PROTOCOL.md section 9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
