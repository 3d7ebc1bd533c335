import { describe, expect, it } from 'vitest';
import { blake3 } from '@noble/hashes/blake3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ProtocolError } from '../../src/proto/codec';
import {
  chunkHeader,
  chunkSize,
  decodeMessages,
  encodeMessage,
  encodeMessages,
  EntryKind,
  knownStopCode,
  MAX_CHUNK_DATA,
  OfferKind,
  reasonBytes,
  stopMessage,
  type Msg,
} from '../../src/proto/messages';
import { hex, readVector, toHex, utf8 } from './helpers';
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

const entry = {
  index: 3,
  kind: EntryKind.File,
  path: utf8('docs/a.txt'),
  size: 70_000,
  flags: 1,
  mtime: 1_700_000_000,
};

/** One of every message type, 1..19. */
const every: Msg[] = [
  { type: 'offer', offer: { kind: OfferKind.Files, files: 2, dirs: 1, bytes: 1000, names: [utf8('docs'), utf8('b.bin')] } },
  { type: 'accept' },
  { type: 'refuse' },
  { type: 'entry', entry },
  { type: 'manifest-end' },
  { type: 'have', index: 7, len: 4096, hash: fill(32, 0xaa) },
  { type: 'ready' },
  { type: 'file-start', entry, offset: 0 },
  { type: 'chunk', flags: 0, data: utf8('hello') },
  { type: 'file-end', hash: fill(32, 0x55) },
  { type: 'file-skip', index: 9 },
  { type: 'done' },
  { type: 'done-ack' },
  { type: 'abort', reason: utf8('gone') },
  { type: 'stream-end', len: 12345, hash: fill(32, 1) },
  { type: 'stop', code: 5, reason: utf8('bad hash') },
  { type: 'keepalive' },
  { type: 'skip', index: 2 },
  { type: 'identity', identity: fill(1280, 7), proof: fill(64, 9) },
];

function decodeOne(b: Uint8Array): Msg {
  const all = decodeMessages(b);
  expect(all).toHaveLength(1);
  return all[0]!;
}

describe('transfer messages', () => {
  it('round-trips every message type', () => {
    const seen = new Set<number>();
    for (const m of every) {
      const b = encodeMessage(m);
      seen.add(b[0]!);
      expect(decodeOne(b)).toEqual(m);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
  });

  it('decodes several messages of one record in order', () => {
    const b = encodeMessages(every);
    expect(decodeMessages(b)).toEqual(every);
    expect(decodeMessages(new Uint8Array(0))).toEqual([]);
  });

  it('matches the byte examples of §8', () => {
    // Stop(1, "a.txt already exists")
    const stop = hex('10 01 14 612e74787420616c726561647920657869737473');
    expect(toHex(encodeMessage({ type: 'stop', code: 1, reason: utf8('a.txt already exists') }))).toBe(toHex(stop));
    expect(decodeOne(stop)).toEqual({ type: 'stop', code: 1, reason: utf8('a.txt already exists') });
    // FileEnd without a hash, and with hash H.
    expect(toHex(encodeMessage({ type: 'file-end', hash: new Uint8Array(0) }))).toBe('0a00');
    const h = blake3(utf8('x'));
    expect(toHex(encodeMessage({ type: 'file-end', hash: h }))).toBe(`0a20${toHex(h)}`);
    expect(decodeOne(hex(`0a20${toHex(h)}`))).toEqual({ type: 'file-end', hash: h });
    // Identity: 13 FC 00 05 || 1280 bytes || 40 || 64 bytes.
    const id = encodeMessage({ type: 'identity', identity: fill(1280, 1), proof: fill(64, 2) });
    expect(toHex(id.subarray(0, 4))).toBe('13fc0005');
    expect(id[4 + 1280]).toBe(0x40);
    expect(id.length).toBe(4 + 1280 + 1 + 64);
  });

  it('hand-built encodings of the other messages', () => {
    // Entry: index 0, file, "a", size 5, flags 0, mtime 100.
    const e = { index: 0, kind: EntryKind.File, path: utf8('a'), size: 5, flags: 0, mtime: 100 };
    expect(toHex(encodeMessage({ type: 'entry', entry: e }))).toBe('04000101610500' + '64');
    // FileStart of it at offset 1000: the entry then FC E8 03.
    expect(toHex(encodeMessage({ type: 'file-start', entry: e, offset: 1000 }))).toBe('080001016105006' + '4fce803');
    // Offer: files, 1 file, 0 dirs, 5 bytes, names ["a"].
    const o = { kind: OfferKind.Files, files: 1, dirs: 0, bytes: 5, names: [utf8('a')] };
    expect(toHex(encodeMessage({ type: 'offer', offer: o }))).toBe('01010100050101' + '61');
    // Chunk raw "hi"; a 1568-byte chunk header uses FC 20 06.
    expect(toHex(encodeMessage({ type: 'chunk', flags: 0, data: utf8('hi') }))).toBe('0900026869');
    expect(toHex(chunkHeader(1568))).toBe('0900fc2006');
    expect(chunkSize(1568)).toBe(1568 + 5);
    expect(chunkSize(70_000)).toBe(70_000 + 7);
    expect(toHex(encodeMessage({ type: 'keepalive' }))).toBe('11');
    expect(toHex(encodeMessage({ type: 'abort', reason: utf8('no') }))).toBe('0e026e6f');
  });

  it('matches the Identity message of vectors/contacts.json', async () => {
    const ids = (await readVector('identity.json')) as {
      vectors: Array<{ seed: string; seed_exchange_public: string; io_exchange_public: string; sign_public: string; io_kem_public: string }>;
    };
    const c = (await readVector('contacts.json')) as {
      owner_seed: string;
      identity_proof_of_owner_as_sender: string;
      identity_message_of_owner_sha256: string;
      identity_message_prefix: string;
    };
    const v = ids.vectors.find((x) => x.seed === c.owner_seed)!;
    const pub = hex(v.seed_exchange_public + v.io_exchange_public + v.sign_public + v.io_kem_public);
    expect(pub.length).toBe(1280);
    const msg = encodeMessage({ type: 'identity', identity: pub, proof: hex(c.identity_proof_of_owner_as_sender) });
    expect(toHex(msg.subarray(0, 4))).toBe(c.identity_message_prefix);
    expect(toHex(sha256(msg))).toBe(c.identity_message_of_owner_sha256);
  });

  it('refuses fields over their caps, from the length alone', () => {
    const bad = (s: string, what: RegExp) => expect(() => decodeMessages(hex(s))).toThrow(what);
    // A name of 4097 bytes (FC 01 10) with no body: the cap, not truncation.
    bad('01 01 01 00 00 01 fc0110', /over the cap of 4096/);
    // 17 names.
    bad('01 01 00 00 00 11', /17 names, over the cap of 16/);
    // Chunk data of 1 MiB + 1.
    bad('09 00 fd01001000', /over the cap of 1048576/);
    // A reason of 1025 bytes, Abort and Stop.
    bad('0e fc0104', /over the cap of 1024/);
    bad('10 00 fc0104', /over the cap of 1024/);
    // Hashes of the wrong length.
    bad(`06 00 00 1f ${'00'.repeat(31)}`, /expected 32/);
    bad(`0a 10 ${'00'.repeat(16)}`, /must be 32, or empty/);
    bad(`0a 21 ${'00'.repeat(33)}`, /over the cap of 32/);
    bad(`0f 00 00`, /expected 32/);
    // Identity sizes.
    bad(`13 fc 0105`, /over the cap of 1280/);
    bad(`13 fc ff04`, /truncated/);
    bad(`13 fc0005 ${'00'.repeat(1280)} 3f ${'00'.repeat(63)}`, /expected 64/);
  });

  it('refuses malformed messages', () => {
    const bad = (s: string, what: RegExp) => expect(() => decodeMessages(hex(s))).toThrow(what);
    bad('00', /unknown transfer message type 0/);
    bad('14', /unknown transfer message type 20/);
    bad('01 04 00 00 00 00', /unknown kind 4/);
    bad('04 00 03 01 61 00 00 00', /unknown entry kind 3/);
    bad('04 00 01 01 61 00 02 00', /invalid flags/);
    bad('04 00 02 01 61 05 00 00', /folder with size 5/);
    bad('04 00 02 01 61 00 01 00', /folder with size 0 and flags 1/);
    bad('09 02 00', /Chunk: invalid flags 2/);
    bad('09 00 05 6869', /truncated/);
    bad('0b', /truncated/);
    // Non-shortest IxiVarUInt, reserved prefix.
    bad('0b fc 0500', /non-shortest/);
    bad('0b f8', /reserved IxiVarUInt prefix/);
    // A good message followed by half of one.
    bad('11 10 01', /truncated/);
    expect(() => decodeMessages(new Uint8Array(1024 * 1024 + 1))).toThrow(ProtocolError);
  });

  it('reads unknown and huge Stop codes as 0', () => {
    const m = decodeOne(hex('10 fe 0000000000000001 00'));
    expect(m).toEqual({ type: 'stop', code: 0, reason: new Uint8Array(0) });
    expect(knownStopCode(9)).toBe(0);
    expect(knownStopCode(8)).toBe(8);
  });

  it('chunk data of exactly 1 MiB passes the cap', () => {
    const b = encodeMessage({ type: 'chunk', flags: 0, data: new Uint8Array(MAX_CHUNK_DATA) });
    // Over the record plaintext cap as a whole, so decode the message on its own terms.
    expect(b.length).toBe(MAX_CHUNK_DATA + 7);
    expect(() => encodeMessage({ type: 'chunk', flags: 0, data: new Uint8Array(MAX_CHUNK_DATA + 1) })).toThrow(RangeError);
  });

  it('refuses to encode what must never be sent', () => {
    expect(() => encodeMessage({ type: 'file-end', hash: new Uint8Array(5) })).toThrow(RangeError);
    expect(() => encodeMessage({ type: 'have', index: 0, len: 0, hash: new Uint8Array(31) })).toThrow(RangeError);
    expect(() => encodeMessage({ type: 'abort', reason: new Uint8Array(1025) })).toThrow(RangeError);
    const names = Array.from({ length: 17 }, () => utf8('x'));
    expect(() => encodeMessage({ type: 'offer', offer: { kind: 1, files: 0, dirs: 0, bytes: 0, names } })).toThrow(RangeError);
  });

  it('builds Stop or Abort by capability 0x20, reasons cut at a character boundary', () => {
    expect(stopMessage(0x20, 7, 'user')).toEqual({ type: 'stop', code: 7, reason: utf8('user') });
    expect(stopMessage(0x02, 7, 'user')).toEqual({ type: 'abort', reason: utf8('user') });
    const long = reasonBytes('é'.repeat(600)); // 1200 bytes
    expect(long.length).toBe(1024);
    expect(new TextDecoder('utf-8', { fatal: true }).decode(long)).toBe('é'.repeat(512));
    const odd = reasonBytes('a' + 'é'.repeat(600));
    expect(odd.length).toBe(1023);
  });
});
