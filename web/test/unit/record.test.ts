import { afterEach, describe, expect, it, vi } from 'vitest';
import { FrameDecoder, type Frame } from '../../src/proto/codec';
import type { CipherName } from '../../src/proto/caps';
import {
  createOpener,
  createSealer,
  MAX_RECORD_PLAINTEXT,
  RecordError,
  recordNonce,
  type DirectionKeys,
} from '../../src/proto/record';
import { hex, readVector, toHex, utf8 } from './helpers';


function frame(bytes: Uint8Array): Frame {
  const d = new FrameDecoder();
  d.handshakeComplete();
  d.push(bytes);
  const f = d.next();
  expect(f).toBeDefined();
  expect(d.buffered).toBe(0);
  return f!;
}

const vectors = (
  (await readVector('handshake.json')) as {
    vectors: {
      name: string;
      key_schedule: Record<string, string>;
      records: Record<string, { plaintext: string; frame: string; final: boolean }>;
    }[];
  }
).vectors;

const CIPHERS: Record<string, CipherName> = {
  aes256gcm: 'aes-256-gcm',
  chacha20poly1305: 'chacha20-poly1305',
  cascade: 'cascade',
};

function keysFor(cipher: CipherName, ks: Record<string, string>, dir: 'r2a' | 'a2r'): DirectionKeys {
  return {
    aes: cipher === 'chacha20-poly1305' ? undefined : hex(ks[`aes_${dir}`]!),
    chacha: cipher === 'aes-256-gcm' ? undefined : hex(ks[`chacha_${dir}`]!),
  };
}

const key = () => crypto.getRandomValues(new Uint8Array(32));
async function pair(cipher: CipherName) {
  const aes = key();
  const chacha = key();
  const k = (): DirectionKeys => ({
    aes: cipher === 'chacha20-poly1305' ? undefined : aes.slice(),
    chacha: cipher === 'aes-256-gcm' ? undefined : chacha.slice(),
  });
  return { sealer: await createSealer(cipher, k()), opener: await createOpener(cipher, k()) };
}

async function rejection(p: Promise<unknown>): Promise<RecordError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RecordError);
  return e as RecordError;
}

describe('record vectors (vectors/handshake.json, first record each way)', () => {
  for (const v of vectors) {
    const cipher = CIPHERS[v.name]!;
    it(v.name, async () => {
      for (const [name, dir] of [
        ['accepter_to_requester', 'a2r'],
        ['requester_to_accepter', 'r2a'],
      ] as const) {
        const rec = v.records[name]!;
        const sealer = await createSealer(cipher, keysFor(cipher, v.key_schedule, dir));
        expect(toHex(await sealer.seal(utf8(rec.plaintext), rec.final))).toBe(rec.frame);
        const opener = await createOpener(cipher, keysFor(cipher, v.key_schedule, dir));
        const out = await opener.open(frame(hex(rec.frame)));
        expect(new TextDecoder().decode(out.plaintext)).toBe(rec.plaintext);
        expect(out.final).toBe(false);
      }
    });
  }
});

describe('nonce', () => {
  it('is 00 00 00 || u64_be(counter) || flag', () => {
    expect(toHex(recordNonce(0, false))).toBe('000000000000000000000000');
    expect(toHex(recordNonce(1, true))).toBe('000000000000000000000101');
    expect(toHex(recordNonce(2 ** 40 + 0x0102, false))).toBe('000000000001000000010200');
  });
});

for (const cipher of ['aes-256-gcm', 'chacha20-poly1305', 'cascade'] as const) {
  describe(`records with ${cipher}`, () => {
    it('round-trips, with an empty final record', async () => {
      const { sealer, opener } = await pair(cipher);
      const msgs = [utf8('one'), new Uint8Array(0), Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) & 0xff)];
      for (const m of msgs) {
        const f = frame(await sealer.seal(m, false));
        expect(f.type).toBe(50);
        expect(f.body.length).toBe(m.length + (cipher === 'cascade' ? 32 : 16));
        expect(await opener.open(f)).toEqual({ plaintext: m, final: false });
      }
      expect(opener.finished).toBe(false); // a connection ending here is truncated
      const last = frame(await sealer.seal(new Uint8Array(0), true));
      expect(last.type).toBe(51);
      expect(sealer.finished).toBe(true);
      expect(await opener.open(last)).toEqual({ plaintext: new Uint8Array(0), final: true });
      expect(opener.finished).toBe(true);
    });

    it('takes exactly 1 MiB and refuses more', async () => {
      const { sealer, opener } = await pair(cipher);
      const big = new Uint8Array(MAX_RECORD_PLAINTEXT).fill(7);
      const f = await sealer.seal(big, false);
      const out = (await opener.open(frame(f))).plaintext;
      expect(out.length === big.length && out.every((b) => b === 7)).toBe(true); // toEqual is slow on 1 MiB
      await expect(sealer.seal(new Uint8Array(MAX_RECORD_PLAINTEXT + 1), false)).rejects.toThrow(RangeError);
    });

    it('refuses a modified record, and everything after it', async () => {
      const { sealer, opener } = await pair(cipher);
      const f = frame(await sealer.seal(utf8('hello'), false));
      const g = frame(await sealer.seal(utf8('world'), false));
      f.body[2]! ^= 1;
      expect((await rejection(opener.open(f))).kind).toBe('auth');
      expect((await rejection(opener.open(g))).kind).toBe('auth');
    });

    it('refuses a modified tag', async () => {
      const { sealer, opener } = await pair(cipher);
      const f = frame(await sealer.seal(utf8('hello'), false));
      f.body[f.body.length - 1]! ^= 0x80;
      expect((await rejection(opener.open(f))).kind).toBe('auth');
    });

    it('refuses a replayed record', async () => {
      const { sealer, opener } = await pair(cipher);
      const bytes = await sealer.seal(utf8('once'), false);
      await opener.open(frame(bytes));
      expect((await rejection(opener.open(frame(bytes)))).kind).toBe('auth');
    });

    it('refuses reordered and dropped records', async () => {
      const { sealer, opener } = await pair(cipher);
      const a = await sealer.seal(utf8('a'), false);
      const b = await sealer.seal(utf8('b'), false);
      expect((await rejection(opener.open(frame(b)))).kind).toBe('auth');
      const p2 = await pair(cipher);
      await p2.sealer.seal(utf8('dropped'), false);
      expect((await rejection(p2.opener.open(frame(await p2.sealer.seal(utf8('next'), false))))).kind).toBe('auth');
      expect(a.length).toBeGreaterThan(0);
    });

    it('refuses a type that disagrees with the final flag', async () => {
      const { sealer, opener } = await pair(cipher);
      const f = frame(await sealer.seal(utf8('not last'), false));
      expect((await rejection(opener.open({ type: 51, body: f.body }))).kind).toBe('auth');
      const p2 = await pair(cipher);
      const last = frame(await p2.sealer.seal(utf8('last'), true));
      expect((await rejection(p2.opener.open({ type: 50, body: last.body }))).kind).toBe('auth');
    });

    it('refuses a record after the final one, and sealing after final', async () => {
      const { sealer, opener } = await pair(cipher);
      await opener.open(frame(await sealer.seal(utf8('end'), true)));
      await expect(sealer.seal(utf8('more'), false)).rejects.toThrow(/final/);
      const other = await pair(cipher);
      const e = await rejection(opener.open(frame(await other.sealer.seal(utf8('x'), false))));
      expect(e.kind).toBe('after-final');
    });

    it('refuses a body shorter than its tag, and non-record frames', async () => {
      const { opener } = await pair(cipher);
      expect((await rejection(opener.open({ type: 50, body: new Uint8Array(15) }))).kind).toBe('auth');
      const o2 = (await pair(cipher)).opener;
      expect((await rejection(o2.open({ type: 43, body: new Uint8Array(33) }))).kind).toBe('type');
    });

    it('opens overlapping calls in order and stops at the first failure', async () => {
      const { sealer, opener } = await pair(cipher);
      const sealed = await Promise.all([0, 1, 2, 3].map((i) => sealer.seal(utf8(`m${i}`), false)));
      const ok = await Promise.all(sealed.slice(0, 2).map((b) => opener.open(frame(b))));
      expect(ok.map((r) => new TextDecoder().decode(r.plaintext))).toEqual(['m0', 'm1']);
      const bad = frame(sealed[2]!);
      bad.body[0]! ^= 1;
      const results = await Promise.allSettled([opener.open(bad), opener.open(frame(sealed[3]!))]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    });
  });
}

describe('AES without WebCrypto', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('falls back to @noble/ciphers and produces the same records', async () => {
    const v = vectors[0]!;
    const rec = v.records.accepter_to_requester!;
    vi.stubGlobal('crypto', { getRandomValues: (a: Uint8Array) => a });
    expect(globalThis.crypto.subtle).toBeUndefined();
    const sealer = await createSealer('aes-256-gcm', keysFor('aes-256-gcm', v.key_schedule, 'a2r'));
    expect(toHex(await sealer.seal(utf8(rec.plaintext), false))).toBe(rec.frame);
    const opener = await createOpener('aes-256-gcm', keysFor('aes-256-gcm', v.key_schedule, 'a2r'));
    const bad = frame(hex(rec.frame));
    bad.body[0]! ^= 1;
    expect((await rejection(opener.open(bad))).kind).toBe('auth');
  });
});

describe('keys', () => {
  it('must match the cipher and are taken over (wiped)', async () => {
    await expect(createSealer('aes-256-gcm', { chacha: key() })).rejects.toThrow(RangeError);
    await expect(createOpener('cascade', { aes: key() })).rejects.toThrow(RangeError);
    const k = { aes: key(), chacha: key() };
    await createSealer('cascade', k);
    expect(k.aes.every((b) => b === 0) && k.chacha.every((b) => b === 0)).toBe(true);
  });
});
