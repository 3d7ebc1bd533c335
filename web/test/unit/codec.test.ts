import { describe, expect, it } from 'vitest';
import {
  concat,
  encodeFrame,
  encodeVarUInt,
  FrameDecoder,
  frameBodyCap,
  ProtocolError,
  Reader,
  Writer,
} from '../../src/proto/codec';
import * as caps from '../../src/proto/caps';
import { hex, toHex } from './helpers';

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);


describe('IxiVarUInt (§3)', () => {
  const cases: [number, string][] = [
    [0, '00'],
    [100, '64'],
    [0xf7, 'f7'],
    [0xf8, 'fcf800'],
    [1000, 'fce803'],
    [1568, 'fc2006'],
    [0xffff, 'fcffff'],
    [0x10000, 'fd00000100'],
    [0xffffffff, 'fdffffffff'],
    [0x100000000, 'fe0000000001000000'],
    [Number.MAX_SAFE_INTEGER, 'feffffffffffff1f00'],
  ];
  for (const [v, h] of cases) {
    it(`${v} <-> ${h}`, () => {
      expect(toHex(encodeVarUInt(v))).toBe(h);
      const r = new Reader(hex(h));
      expect(r.varuint()).toBe(v);
      r.end();
      expect(new Reader(hex(h)).varbig()).toBe(BigInt(v));
    });
  }

  it('rejects non-shortest forms', () => {
    for (const h of ['fc0000', 'fcf700', 'fdffff0000', 'fd00000000', 'feffffffff00000000', 'fe0000000000000000']) {
      expect(() => new Reader(hex(h)).varuint()).toThrow(/non-shortest/);
      expect(() => new Reader(hex(h)).varbig()).toThrow(/non-shortest/);
    }
  });

  it('rejects the signed and reserved prefixes', () => {
    for (const p of ['f8', 'f9', 'fa', 'fb', 'ff']) {
      expect(() => new Reader(hex(p + '0000000000000000')).varuint()).toThrow(/reserved/);
      expect(() => new Reader(hex(p + '0000000000000000')).varbig()).toThrow(/reserved/);
    }
  });

  it('refuses values over 2^53 - 1 as numbers, reads them as bigints', () => {
    expect(() => new Reader(hex('feffffffffffffffff')).varuint()).toThrow(/too large/);
    expect(new Reader(hex('feffffffffffffffff')).varbig()).toBe(2n ** 64n - 1n);
    expect(() => encodeVarUInt(-1)).toThrow(RangeError);
    expect(() => encodeVarUInt(1.5)).toThrow(RangeError);
  });

  it('reports truncation', () => {
    for (const h of ['', 'fc', 'fc01', 'fd010203', 'fe01020304050607']) {
      expect(() => new Reader(hex(h)).varuint()).toThrow(/truncated/);
      expect(() => new Reader(hex(h)).varbig()).toThrow(/truncated/);
    }
  });
});

describe('IxiBytes and message bodies', () => {
  it('checks the cap before taking anything', () => {
    // Claims 2^32-1 bytes with none present: the cap error wins over truncation.
    expect(() => new Reader(hex('fdffffffff')).bytes(4096, 'name')).toThrow(/over the cap of 4096/);
    expect(() => new Reader(hex('05aabb')).bytes(4096, 'name')).toThrow(/truncated/);
  });

  it('fixed-size fields must be exact', () => {
    expect(toHex(new Reader(hex('02aabb')).fixed(2))).toBe('aabb');
    expect(() => new Reader(hex('01aa')).fixed(2)).toThrow(/expected 2/);
    expect(() => new Reader(hex('03aabbcc')).fixed(2)).toThrow(/over the cap/);
  });

  it('refuses trailing bytes', () => {
    const r = new Reader(hex('0100'));
    r.varuint();
    expect(() => r.end('confirm')).toThrow(/1 trailing/);
  });

  it('Writer builds what Reader reads', () => {
    const body = new Writer().varuint(1000).bytes(hex('abcd')).raw(hex('ff')).finish();
    expect(toHex(body)).toBe('fce80302abcdff');
  });
});

describe('frames and FrameDecoder', () => {
  it('caps', () => {
    for (const t of [40, 41, 42, 43, 44]) expect(frameBodyCap(t)).toBe(4096);
    expect(frameBodyCap(50)).toBe(1024 * 1024 + 32);
    expect(frameBodyCap(51)).toBe(1024 * 1024 + 32);
    for (const t of [0, 1, 39, 45, 49, 52, 255]) expect(frameBodyCap(t)).toBeUndefined();
  });

  const frames = [encodeFrame(40, hex('01' + '20' + '11'.repeat(32))), encodeFrame(44, hex('03')), encodeFrame(43, new Uint8Array(0))];
  const stream = concat(frames);

  it('splits input arriving a byte at a time', () => {
    const d = new FrameDecoder();
    const got: string[] = [];
    for (const b of stream) {
      d.push(Uint8Array.of(b));
      for (let f = d.next(); f !== undefined; f = d.next()) got.push(toHex(encodeFrame(f.type, f.body)));
    }
    expect(got).toEqual(frames.map(toHex));
    expect(d.buffered).toBe(0);
  });

  it('splits input arriving in one piece, and at every split point', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      d.push(stream.subarray(0, cut));
      const got: number[] = [];
      for (let f = d.next(); f !== undefined; f = d.next()) got.push(f.type);
      d.push(stream.subarray(cut));
      for (let f = d.next(); f !== undefined; f = d.next()) got.push(f.type);
      expect(got).toEqual([40, 44, 43]);
    }
  });

  it('returns each body as a view of its own bytes only (a record may be decrypted in place)', () => {
    const d = new FrameDecoder();
    d.push(concat([encodeFrame(43, hex('aabb')), encodeFrame(43, hex('ccdd'))]));
    const f = d.next()!;
    expect(toHex(f.body)).toBe('aabb');
    f.body.fill(0);
    expect(toHex(d.next()!.body)).toBe('ccdd');
    // Across chunks, only the chunks that hold the frame are merged.
    const e = new FrameDecoder();
    const two = concat([encodeFrame(43, hex('0102')), encodeFrame(43, hex('0304'))]);
    e.push(two.subarray(0, 2));
    e.push(two.subarray(2, 5));
    e.push(two.subarray(5));
    expect(toHex(e.next()!.body)).toBe('0102');
    expect(e.buffered).toBe(4);
    expect(toHex(e.next()!.body)).toBe('0304');
    expect(e.next()).toBeUndefined();
  });

  it('lets a large body be read straight into its own buffer', () => {
    const d = new FrameDecoder();
    d.handshakeComplete();
    const body = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7) & 255);
    const frame = concat([encodeFrame(50, body), encodeFrame(50, hex('0102'))]);
    const head = frame.length - body.length - 4;
    d.push(frame.subarray(0, 600));
    d.push(frame.subarray(600, 1000));
    expect(d.next()).toBeUndefined();
    expect(d.openBody(200_000)).toBeUndefined(); // smaller than asked for
    const open = d.openBody(65_536)!;
    expect(open.filled).toBe(1000 - head);
    expect(open.buf.length).toBe(body.length);
    expect(() => d.push(hex('00'))).toThrow(RangeError);
    expect(d.openBody(65_536)).toBe(open); // still open: the same buffer
    const rest = frame.subarray(1000, head + body.length);
    open.buf.set(rest, open.filled);
    d.bodyFilled(open.buf, rest.length);
    expect(d.openBody(65_536)).toBeUndefined();
    const f = d.next()!;
    expect(f.type).toBe(50);
    expect(equalBytes(f.body, body)).toBe(true);
    d.push(frame.subarray(head + body.length));
    expect(toHex(d.next()!.body)).toBe('0102');
    expect(() => d.bodyFilled(open.buf, 1)).toThrow(RangeError);
  });

  it('refuses an unknown type from the header alone', () => {
    const d = new FrameDecoder();
    d.push(hex('01'));
    expect(() => d.next()).toThrow(/unknown frame type 1/);
    const e = new FrameDecoder();
    e.push(hex('fcf800'));
    expect(() => e.next()).toThrow(ProtocolError);
  });

  it('refuses a body over its cap before it arrives', () => {
    const d = new FrameDecoder();
    d.push(hex('28fc0110')); // type 40, length 4097, no body yet
    expect(() => d.next()).toThrow(/over the cap of 4096/);
    const ok = new FrameDecoder();
    ok.push(hex('28fc0010')); // length 4096 is fine: waits for the body
    expect(ok.next()).toBeUndefined();
    const rec = new FrameDecoder();
    rec.handshakeComplete();
    rec.push(hex('32fd21001000')); // type 50, length 1 MiB + 33
    expect(() => rec.next()).toThrow(/over the cap/);
  });

  it('refuses records before the handshake completes, accepts them after', () => {
    const d = new FrameDecoder();
    d.push(hex('3200'));
    expect(() => d.next()).toThrow(/before the handshake/);
    const e = new FrameDecoder();
    e.handshakeComplete();
    e.push(hex('3300'));
    expect(e.next()).toEqual({ type: 51, body: new Uint8Array(0) });
  });

  it('refuses a non-shortest or reserved header', () => {
    for (const h of ['fc2800' + '00', '28fc0000', '28fb']) {
      const d = new FrameDecoder();
      d.push(hex(h));
      expect(() => d.next()).toThrow(ProtocolError);
    }
  });

  it('waits on a partial header', () => {
    const d = new FrameDecoder();
    d.push(hex('28fc'));
    expect(d.next()).toBeUndefined();
    d.push(hex('00'));
    expect(d.next()).toBeUndefined();
    d.push(hex('01')); // length 0x100
    expect(d.next()).toBeUndefined();
    d.push(new Uint8Array(255));
    expect(d.next()).toBeUndefined();
    d.push(new Uint8Array(1));
    expect(d.next()!.body).toHaveLength(256);
  });
});

describe('capabilities (§4)', () => {
  const A = caps.AES_256_GCM;
  const C = caps.CHACHA20_POLY1305;
  const X = caps.CASCADE;
  it('agrees on the cipher', () => {
    expect(caps.agree(A | C, A | C).cipher).toBe('aes-256-gcm');
    expect(caps.agree(A | C, C).cipher).toBe('chacha20-poly1305');
    expect(caps.agree(C, A | C).cipher).toBe('chacha20-poly1305');
    expect(caps.agree(A | C | X, C).cipher).toBe('cascade');
    expect(caps.agree(C, X).cipher).toBe('cascade');
    expect(caps.agree(caps.DEFAULTS, caps.DEFAULTS).cipher).toBe('chacha20-poly1305');
    expect(caps.agree(0, 0).cipher).toBe('chacha20-poly1305');
  });

  it('needs both sides for features, and reports the cipher bit used', () => {
    const r = caps.agree(0x1b, 0x12); // the chacha20poly1305 handshake vector
    expect(r).toEqual({ cipher: 'chacha20-poly1305', agreed: caps.ZSTD | C });
    const s = caps.agree(0x1e, 0x1b); // the cascade vector
    expect(s).toEqual({ cipher: 'cascade', agreed: caps.RESUME | caps.ZSTD | X });
    expect(caps.agree(0xffffffff, 0x3fa).agreed).toBe(0x3f8 | X);
    expect(caps.agree(0x80000000 | C, 0x80000000 | C).agreed).toBe(0x80000002); // unsigned
  });

  it('page defaults', () => {
    expect(caps.pageCapabilities(false)).toBe(C | caps.STOP_CODES | caps.KEEPALIVE | caps.UNHASHED_FRESH);
    expect(caps.pageCapabilities(true)).toBe(A | C | caps.STOP_CODES | caps.KEEPALIVE | caps.UNHASHED_FRESH);
    expect(caps.pageCapabilities() & A).toBe(A); // Node 20 has crypto.subtle
    const p = caps.pageCapabilities(true);
    for (const bit of [X, caps.RESUME, caps.ZSTD, caps.SKIP, caps.IDENTITIES]) expect(p & bit).toBe(0);
  });
});
