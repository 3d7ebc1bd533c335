// Transfer messages (PROTOCOL.md §8).
//
// A record's plaintext holds one or more whole messages, each
// `IxiVarUInt(type) || fields`; a message never spans records. Decoding
// checks every length against its cap before anything is taken, and keeps
// paths, names and reasons as raw bytes: the receiver rules (names.ts)
// decide what is acceptable, and display goes through `escapeName`.
//
// Decoded byte fields (paths, chunk data, hashes) are views into the
// plaintext they came from, not copies: a 1 MiB chunk is never copied on the
// way to the file it belongs to. The plaintext must not be reused while they
// are in use.

import { encodeVarUInt, ProtocolError, Reader, Writer } from './codec';

/** Message type numbers (§8 table). */
export const MsgType = {
  Offer: 1,
  Accept: 2,
  Refuse: 3,
  Entry: 4,
  ManifestEnd: 5,
  Have: 6,
  Ready: 7,
  FileStart: 8,
  Chunk: 9,
  FileEnd: 10,
  FileSkip: 11,
  Done: 12,
  DoneAck: 13,
  Abort: 14,
  StreamEnd: 15,
  Stop: 16,
  KeepAlive: 17,
  Skip: 18,
  Identity: 19,
} as const;

/** Largest plaintext of one record, and so of all the messages it holds (§7). */
export const MAX_PLAINTEXT = 1024 * 1024;
/** Largest path or Offer name in bytes. */
export const MAX_NAME_BYTES = 4096;
/** Largest Chunk data in bytes (the record cap makes the real limit a little lower). */
export const MAX_CHUNK_DATA = 1024 * 1024;
/** Largest Abort or Stop reason in bytes. */
export const MAX_REASON_BYTES = 1024;
/** Most names an Offer lists. */
export const MAX_OFFER_NAMES = 16;
/** BLAKE3 output length used throughout §8. */
export const HASH_LEN = 32;
/** A public identity (§13.1) and its proof (§8 Identity). */
export const IDENTITY_LEN = 1280;
export const IDENTITY_PROOF_LEN = 64;

export const OfferKind = { Files: 1, Text: 2, Stream: 3 } as const;
export type OfferKind = (typeof OfferKind)[keyof typeof OfferKind];

export const EntryKind = { File: 1, Folder: 2 } as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

/** Entry flag bit 0: the file is executable. No other bit is valid. */
export const ENTRY_EXECUTABLE = 1;

/** Chunk flags: 0 raw, 1 one zstd frame. */
export const ChunkFlags = { Raw: 0, Zstd: 1 } as const;

/**
 * Stop codes (§8): what the side that sends Stop says about whose side the
 * problem is on. Codes the table does not list are treated as `Unspecified`.
 */
export const StopCode = {
  Unspecified: 0,
  Exists: 1,
  Local: 2,
  NoSpace: 3,
  PeerViolation: 4,
  PeerDataBad: 5,
  OverLimit: 6,
  Interrupted: 7,
  Internal: 8,
} as const;
export type StopCode = (typeof StopCode)[keyof typeof StopCode];

export interface Offer {
  kind: OfferKind;
  files: number;
  dirs: number;
  /** Sum of file sizes (files), text length (text), 0 (stream). */
  bytes: number;
  /** Top-level names, raw bytes, at most 16. */
  names: Uint8Array[];
}

export interface Entry {
  /** Position in the manifest, from 0 without gaps. */
  index: number;
  kind: EntryKind;
  /** Raw '/'-separated path as sent; check it with names.ts before use. */
  path: Uint8Array;
  /** 0 for a folder. */
  size: number;
  /** Bit 0 executable; 0 for a folder. */
  flags: number;
  /** Whole seconds since the Unix epoch. */
  mtime: number;
}

export type Msg =
  | { type: 'offer'; offer: Offer }
  | { type: 'accept' }
  | { type: 'refuse' }
  | { type: 'entry'; entry: Entry }
  | { type: 'manifest-end' }
  | { type: 'have'; index: number; len: number; hash: Uint8Array }
  | { type: 'ready' }
  | { type: 'file-start'; entry: Entry; offset: number }
  | { type: 'chunk'; flags: number; data: Uint8Array }
  /** `hash` is 32 bytes, or empty when capability 0x100 was agreed and the file started at offset 0. */
  | { type: 'file-end'; hash: Uint8Array }
  | { type: 'file-skip'; index: number }
  | { type: 'done' }
  | { type: 'done-ack' }
  | { type: 'abort'; reason: Uint8Array }
  | { type: 'stream-end'; len: number; hash: Uint8Array }
  /** `code` as sent, or 0 when it does not fit a safe integer (unknown codes mean 0 anyway). */
  | { type: 'stop'; code: number; reason: Uint8Array }
  | { type: 'keepalive' }
  | { type: 'skip'; index: number }
  | { type: 'identity'; identity: Uint8Array; proof: Uint8Array };

export type MsgName = Msg['type'];

const TYPE_OF: { readonly [K in MsgName]: number } = {
  offer: MsgType.Offer,
  accept: MsgType.Accept,
  refuse: MsgType.Refuse,
  entry: MsgType.Entry,
  'manifest-end': MsgType.ManifestEnd,
  have: MsgType.Have,
  ready: MsgType.Ready,
  'file-start': MsgType.FileStart,
  chunk: MsgType.Chunk,
  'file-end': MsgType.FileEnd,
  'file-skip': MsgType.FileSkip,
  done: MsgType.Done,
  'done-ack': MsgType.DoneAck,
  abort: MsgType.Abort,
  'stream-end': MsgType.StreamEnd,
  stop: MsgType.Stop,
  keepalive: MsgType.KeepAlive,
  skip: MsgType.Skip,
  identity: MsgType.Identity,
};

function writeEntry(w: Writer, e: Entry): void {
  w.varuint(e.index).varuint(e.kind).bytes(e.path).varuint(e.size).varuint(e.flags).varuint(e.mtime);
}

function checkLen(b: Uint8Array, cap: number, what: string): void {
  if (b.length > cap) throw new RangeError(`${what}: ${b.length} bytes, over the cap of ${cap}`);
}

function checkExact(b: Uint8Array, n: number, what: string): void {
  if (b.length !== n) throw new RangeError(`${what}: ${b.length} bytes, expected ${n}`);
}

/**
 * Encodes one message. Refuses (RangeError) a message this side must never
 * send: a field over its cap or of the wrong size, so that a local bug is
 * caught here rather than reported by the peer as a violation.
 */
export function encodeMessage(m: Msg): Uint8Array {
  const w = new Writer().varuint(TYPE_OF[m.type]);
  switch (m.type) {
    case 'offer': {
      const o = m.offer;
      if (o.names.length > MAX_OFFER_NAMES) throw new RangeError(`Offer: ${o.names.length} names, over ${MAX_OFFER_NAMES}`);
      w.varuint(o.kind).varuint(o.files).varuint(o.dirs).varuint(o.bytes).varuint(o.names.length);
      for (const n of o.names) {
        checkLen(n, MAX_NAME_BYTES, 'Offer name');
        w.bytes(n);
      }
      break;
    }
    case 'entry':
      checkLen(m.entry.path, MAX_NAME_BYTES, 'Entry path');
      writeEntry(w, m.entry);
      break;
    case 'file-start':
      checkLen(m.entry.path, MAX_NAME_BYTES, 'FileStart path');
      writeEntry(w, m.entry);
      w.varuint(m.offset);
      break;
    case 'have':
      checkExact(m.hash, HASH_LEN, 'Have hash');
      w.varuint(m.index).varuint(m.len).bytes(m.hash);
      break;
    case 'chunk':
      checkLen(m.data, MAX_CHUNK_DATA, 'Chunk data');
      w.varuint(m.flags).bytes(m.data);
      break;
    case 'file-end':
      if (m.hash.length !== 0 && m.hash.length !== HASH_LEN) throw new RangeError(`FileEnd hash: ${m.hash.length} bytes, expected 0 or 32`);
      w.bytes(m.hash);
      break;
    case 'file-skip':
    case 'skip':
      w.varuint(m.index);
      break;
    case 'abort':
      checkLen(m.reason, MAX_REASON_BYTES, 'Abort reason');
      w.bytes(m.reason);
      break;
    case 'stream-end':
      checkExact(m.hash, HASH_LEN, 'StreamEnd hash');
      w.varuint(m.len).bytes(m.hash);
      break;
    case 'stop':
      checkLen(m.reason, MAX_REASON_BYTES, 'Stop reason');
      w.varuint(m.code).bytes(m.reason);
      break;
    case 'identity':
      checkExact(m.identity, IDENTITY_LEN, 'Identity');
      checkExact(m.proof, IDENTITY_PROOF_LEN, 'Identity proof');
      w.bytes(m.identity).bytes(m.proof);
      break;
    case 'accept':
    case 'refuse':
    case 'manifest-end':
    case 'ready':
    case 'done':
    case 'done-ack':
    case 'keepalive':
      break;
  }
  return w.finish();
}

/**
 * The header of a raw Chunk carrying `len` bytes (type, flags 0, length), so
 * that a sender can write the data straight into a record without first
 * building the message.
 */
export function chunkHeader(len: number): Uint8Array {
  const l = encodeVarUInt(len);
  const h = new Uint8Array(2 + l.length);
  h[0] = MsgType.Chunk;
  h[1] = ChunkFlags.Raw;
  h.set(l, 2);
  return h;
}

/** Bytes a raw Chunk of `len` data bytes takes in a record. */
export function chunkSize(len: number): number {
  return 2 + encodeVarUInt(len).length + len;
}

function readEntry(r: Reader, what: string): Entry {
  const index = r.varuint(`${what} index`);
  const kind = r.varuint(`${what} kind`);
  if (kind !== EntryKind.File && kind !== EntryKind.Folder) throw new ProtocolError(`${what}: unknown entry kind ${kind}`);
  const path = r.bytes(MAX_NAME_BYTES, `${what} path`);
  const size = r.varuint(`${what} size`);
  const flags = r.varuint(`${what} flags`);
  const mtime = r.varuint(`${what} mtime`);
  if (flags & ~ENTRY_EXECUTABLE) throw new ProtocolError(`${what} ${index}: invalid flags 0x${flags.toString(16)}`);
  if (kind === EntryKind.Folder && (size !== 0 || flags !== 0)) {
    throw new ProtocolError(`${what} ${index}: a folder with size ${size} and flags ${flags} (both must be 0)`);
  }
  return { index, kind, path, size, flags, mtime };
}

/** Reads one message from `r` (which may hold more after it). */
export function readMessage(r: Reader): Msg {
  const t = r.varuint('message type');
  switch (t) {
    case MsgType.Offer: {
      const kind = r.varuint('Offer kind');
      if (kind !== OfferKind.Files && kind !== OfferKind.Text && kind !== OfferKind.Stream) {
        throw new ProtocolError(`Offer: unknown kind ${kind}`);
      }
      const files = r.varuint('Offer files');
      const dirs = r.varuint('Offer dirs');
      const bytes = r.varuint('Offer bytes');
      const count = r.varuint('Offer name count');
      if (count > MAX_OFFER_NAMES) throw new ProtocolError(`Offer: ${count} names, over the cap of ${MAX_OFFER_NAMES}`);
      const names: Uint8Array[] = [];
      for (let i = 0; i < count; i++) names.push(r.bytes(MAX_NAME_BYTES, 'Offer name'));
      return { type: 'offer', offer: { kind, files, dirs, bytes, names } };
    }
    case MsgType.Accept:
      return { type: 'accept' };
    case MsgType.Refuse:
      return { type: 'refuse' };
    case MsgType.Entry:
      return { type: 'entry', entry: readEntry(r, 'Entry') };
    case MsgType.ManifestEnd:
      return { type: 'manifest-end' };
    case MsgType.Have: {
      const index = r.varuint('Have index');
      const len = r.varuint('Have len');
      return { type: 'have', index, len, hash: r.fixed(HASH_LEN, 'Have hash') };
    }
    case MsgType.Ready:
      return { type: 'ready' };
    case MsgType.FileStart: {
      const entry = readEntry(r, 'FileStart');
      return { type: 'file-start', entry, offset: r.varuint('FileStart offset') };
    }
    case MsgType.Chunk: {
      const flags = r.varuint('Chunk flags');
      if (flags !== ChunkFlags.Raw && flags !== ChunkFlags.Zstd) throw new ProtocolError(`Chunk: invalid flags ${flags}`);
      return { type: 'chunk', flags, data: r.bytes(MAX_CHUNK_DATA, 'Chunk data') };
    }
    case MsgType.FileEnd: {
      const hash = r.bytes(HASH_LEN, 'FileEnd hash');
      if (hash.length !== 0 && hash.length !== HASH_LEN) {
        throw new ProtocolError(`FileEnd: hash of ${hash.length} bytes (must be 32, or empty)`);
      }
      return { type: 'file-end', hash };
    }
    case MsgType.FileSkip:
      return { type: 'file-skip', index: r.varuint('FileSkip index') };
    case MsgType.Done:
      return { type: 'done' };
    case MsgType.DoneAck:
      return { type: 'done-ack' };
    case MsgType.Abort:
      return { type: 'abort', reason: r.bytes(MAX_REASON_BYTES, 'Abort reason') };
    case MsgType.StreamEnd: {
      const len = r.varuint('StreamEnd len');
      return { type: 'stream-end', len, hash: r.fixed(HASH_LEN, 'StreamEnd hash') };
    }
    case MsgType.Stop: {
      // Any u64 is a valid code; those the table does not list mean 0.
      const big = r.varbig('Stop code');
      const code = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : 0;
      return { type: 'stop', code, reason: r.bytes(MAX_REASON_BYTES, 'Stop reason') };
    }
    case MsgType.KeepAlive:
      return { type: 'keepalive' };
    case MsgType.Skip:
      return { type: 'skip', index: r.varuint('Skip index') };
    case MsgType.Identity: {
      const identity = r.fixed(IDENTITY_LEN, 'Identity');
      return { type: 'identity', identity, proof: r.fixed(IDENTITY_PROOF_LEN, 'Identity proof') };
    }
    default:
      throw new ProtocolError(`unknown transfer message type ${t}`);
  }
}

/**
 * Iterates over the messages of one record's plaintext, lazily, so that a
 * receiver acts on each before the next is parsed and stops at the first bad
 * one. Throws ProtocolError on a malformed message. An empty plaintext
 * holds no message (the usual final record).
 */
export function* iterMessages(plaintext: Uint8Array): Generator<Msg, void, void> {
  if (plaintext.length > MAX_PLAINTEXT) throw new ProtocolError(`record plaintext of ${plaintext.length} bytes, over 1 MiB`);
  const r = new Reader(plaintext);
  while (!r.atEnd()) yield readMessage(r);
}

/** Decodes every message of one record's plaintext (see `iterMessages`). */
export function decodeMessages(plaintext: Uint8Array): Msg[] {
  return [...iterMessages(plaintext)];
}

/** Concatenates the encodings of `msgs` into one plaintext. */
export function encodeMessages(msgs: readonly Msg[]): Uint8Array {
  const parts = msgs.map(encodeMessage);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const utf8 = new TextEncoder();

/** A reason as UTF-8, cut at a character boundary to fit 1024 bytes. */
export function reasonBytes(reason: string): Uint8Array {
  const b = utf8.encode(reason);
  if (b.length <= MAX_REASON_BYTES) return b;
  let end = MAX_REASON_BYTES;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((b[end] ?? 0) & 0xc0) === 0x80) end--;
  return b.slice(0, end);
}

/**
 * How a side ends a transfer: Stop(code, reason) when both sides set
 * capability 0x20, otherwise Abort(reason), which carries no code.
 */
export function stopMessage(agreed: number, code: number, reason: string): Msg {
  const r = reasonBytes(reason);
  return agreed & 0x20 ? { type: 'stop', code, reason: r } : { type: 'abort', reason: r };
}

/** A Stop code as the receiving side must read it: unknown codes are 0. */
export function knownStopCode(code: number): StopCode {
  return (Number.isInteger(code) && code >= 0 && code <= 8 ? code : 0) as StopCode;
}
