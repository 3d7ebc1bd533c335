// The record layer, STREAM construction (PROTOCOL.md §7).
//
// Each direction has its own keys and a 64-bit record counter from 0. The
// nonce is `00 00 00 || u64_be(counter) || flag` (flag 1 on the final
// record), the AAD is empty, and the frame type (50, or 51 for the final
// record) must agree with the flag. AES-256-GCM runs on WebCrypto, which is
// much faster than any JavaScript AES; ChaCha20-Poly1305 on @noble/ciphers.

import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import { encodeVarUInt, FrameType, ProtocolError, type Frame } from './codec';
import type { CipherName } from './caps';

/** Largest plaintext of one record (1 MiB). */
export const MAX_RECORD_PLAINTEXT = 1024 * 1024;
const TAG = 16;

export interface RecordSealer {
  /**
   * Encrypts one record and returns its encoded frame (type 50, or 51 when
   * `final`). Calls may overlap; their promises resolve in call order, which
   * is the order the frames must be sent in.
   */
  seal(plaintext: Uint8Array, final: boolean): Promise<Uint8Array>;
  /** True once the final record was sealed. */
  readonly finished: boolean;
  /** Zeroes the key material; the sealer is unusable afterwards. */
  wipe(): void;
}

export interface RecordOpener {
  /**
   * Authenticates and decrypts the next record. The frame's body may be
   * decrypted in place, so it must not be used afterwards. Calls may overlap
   * (decryptions then run concurrently); results resolve in call order, and
   * after one failure every later call fails too.
   */
  open(frame: Frame): Promise<{ plaintext: Uint8Array; final: boolean }>;
  /** True once the final record was opened: a connection that ends before is truncated. */
  readonly finished: boolean;
  wipe(): void;
}

/** A record that cannot be accepted. Always the other side's (or the network's) fault. */
export class RecordError extends ProtocolError {
  constructor(
    readonly kind: 'auth' | 'type' | 'size' | 'after-final',
    message: string,
  ) {
    super(message);
    this.name = 'RecordError';
  }
}

/** One direction's keys; which are present depends on the cipher. */
export interface DirectionKeys {
  aes?: Uint8Array;
  chacha?: Uint8Array;
}

/** The 12-byte nonce of record `counter`. */
export function recordNonce(counter: number, final: boolean): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(3, Math.floor(counter / 2 ** 32));
  v.setUint32(7, counter >>> 0);
  n[11] = final ? 1 : 0;
  return n;
}

/** The inner AES-256-GCM, on WebCrypto when present, else (no secure context) on @noble/ciphers. */
interface Aes {
  encrypt(nonce: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
  /** `undefined` when authentication fails. */
  decrypt(nonce: Uint8Array, body: Uint8Array): Promise<Uint8Array | undefined>;
  wipe(): void;
}

type Bytes = Uint8Array<ArrayBuffer>;

async function makeAes(key: Uint8Array): Promise<Aes> {
  if (key.length !== 32) throw new RangeError('AES-256-GCM key must be 32 bytes');
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== undefined) {
    // Non-extractable, imported once: the raw key is wiped below and only the CryptoKey remains.
    const k = await subtle.importKey('raw', key as Bytes, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
    key.fill(0);
    return {
      async encrypt(nonce, pt) {
        return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce as Bytes }, k, pt as Bytes));
      },
      async decrypt(nonce, body) {
        try {
          return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: nonce as Bytes }, k, body as Bytes));
        } catch {
          return undefined; // OperationError: the tag did not verify
        }
      },
      wipe() {},
    };
  }
  const raw = key.slice();
  key.fill(0);
  return {
    async encrypt(nonce, pt) {
      return gcm(raw, nonce).encrypt(pt);
    },
    async decrypt(nonce, body) {
      try {
        return gcm(raw, nonce).decrypt(body);
      } catch {
        return undefined;
      }
    },
    wipe() {
      raw.fill(0);
    },
  };
}

/** The tag bytes a cipher adds to a record. */
function overhead(cipher: CipherName): number {
  return cipher === 'cascade' ? 2 * TAG : TAG;
}

/**
 * A frame buffer with the body 4-byte aligned in its ArrayBuffer, so that
 * ChaCha20 can take its fast word-aligned path writing straight into it.
 */
function allocFrame(type: number, bodyLen: number): { frame: Uint8Array; body: Uint8Array } {
  const t = encodeVarUInt(type);
  const l = encodeVarUInt(bodyLen);
  const head = t.length + l.length;
  const pad = (4 - (head % 4)) % 4;
  const buf = new Uint8Array(pad + head + bodyLen);
  buf.set(t, pad);
  buf.set(l, pad + t.length);
  return { frame: buf.subarray(pad), body: buf.subarray(pad + head) };
}

function checkKeys(cipher: CipherName, keys: DirectionKeys): void {
  const needAes = cipher !== 'chacha20-poly1305';
  const needChacha = cipher !== 'aes-256-gcm';
  if (needAes !== (keys.aes !== undefined) || needChacha !== (keys.chacha !== undefined)) {
    throw new RangeError(`record keys do not match the cipher ${cipher}`);
  }
  if (keys.chacha !== undefined && keys.chacha.length !== 32) throw new RangeError('ChaCha20 key must be 32 bytes');
}

/** A sealer for one direction. Takes ownership of (and wipes) the key arrays. */
export async function createSealer(cipher: CipherName, keys: DirectionKeys): Promise<RecordSealer> {
  checkKeys(cipher, keys);
  const aes = keys.aes !== undefined ? await makeAes(keys.aes) : undefined;
  const chacha = keys.chacha?.slice();
  keys.chacha?.fill(0);
  let counter = 0;
  let finished = false;
  let wiped = false;
  let broken: Error | undefined;
  let tail: Promise<unknown> = Promise.resolve();

  async function encrypt(n: number, pt: Uint8Array, final: boolean): Promise<Uint8Array> {
    const nonce = recordNonce(n, final);
    const type = final ? FrameType.FinalRecord : FrameType.Record;
    const bodyLen = pt.length + overhead(cipher);
    if (chacha === undefined) {
      const ct = await aes!.encrypt(nonce, pt);
      const { frame, body } = allocFrame(type, bodyLen);
      body.set(ct);
      return frame;
    }
    const inner = aes === undefined ? pt : await aes.encrypt(nonce, pt);
    const { frame, body } = allocFrame(type, bodyLen);
    chacha20poly1305(chacha, nonce).encrypt(inner, body);
    if (inner !== pt) inner.fill(0);
    return frame;
  }

  return {
    get finished() {
      return finished;
    },
    seal(plaintext, final) {
      // Checked and counted synchronously, so overlapping calls get consecutive counters.
      if (wiped) return Promise.reject(new Error('seal: the sealer was wiped'));
      if (broken !== undefined) return Promise.reject(broken);
      if (finished) return Promise.reject(new Error('seal: this direction already sent its final record'));
      if (plaintext.length > MAX_RECORD_PLAINTEXT) {
        return Promise.reject(
          new RangeError(`seal: ${plaintext.length} bytes, over the record limit of ${MAX_RECORD_PLAINTEXT}`),
        );
      }
      if (counter >= Number.MAX_SAFE_INTEGER) return Promise.reject(new Error('seal: record counter exhausted'));
      const n = counter++;
      if (final) finished = true;
      const work = encrypt(n, plaintext, final).catch((e: unknown) => {
        // A record that could not be sealed leaves a gap in the counters: nothing after it may be sent.
        broken ??= e instanceof Error ? e : new Error(String(e));
        throw broken;
      });
      const prev = tail;
      const result = (async () => {
        const frame = await work;
        await prev.catch(() => undefined);
        return frame;
      })();
      tail = result;
      return result;
    },
    wipe() {
      wiped = true;
      chacha?.fill(0);
      aes?.wipe();
    },
  };
}

/** An opener for the peer's direction. Takes ownership of (and wipes) the key arrays. */
export async function createOpener(cipher: CipherName, keys: DirectionKeys): Promise<RecordOpener> {
  checkKeys(cipher, keys);
  const aes = keys.aes !== undefined ? await makeAes(keys.aes) : undefined;
  const chacha = keys.chacha?.slice();
  keys.chacha?.fill(0);
  const tagBytes = overhead(cipher);
  let next = 0; // counter of the next record to arrive
  let finalQueued = false;
  let finished = false;
  let failed: RecordError | undefined;
  let wiped = false;
  let tail: Promise<unknown> = Promise.resolve();

  /** The plaintext, or undefined when authentication failed. */
  async function decrypt(n: number, body: Uint8Array, final: boolean): Promise<Uint8Array | undefined> {
    const nonce = recordNonce(n, final);
    if (chacha === undefined) return aes!.decrypt(nonce, body);
    const inner = body.subarray(0, body.length - TAG);
    try {
      chacha20poly1305(chacha, nonce).decrypt(body, inner); // in place
    } catch {
      return undefined;
    }
    return aes === undefined ? inner : aes.decrypt(nonce, inner);
  }

  function refuse(err: RecordError): Promise<never> {
    failed ??= err;
    return Promise.reject(err);
  }

  return {
    get finished() {
      return finished;
    },
    open(frame) {
      if (wiped) return Promise.reject(new Error('open: the opener was wiped'));
      if (failed !== undefined) return Promise.reject(failed);
      if (frame.type !== FrameType.Record && frame.type !== FrameType.FinalRecord) {
        return refuse(new RecordError('type', `the other side sent frame type ${frame.type} where a record was due`));
      }
      if (finalQueued) {
        return refuse(new RecordError('after-final', 'the other side sent a record after its final record'));
      }
      const final = frame.type === FrameType.FinalRecord;
      const body = frame.body;
      if (body.length < tagBytes) {
        return refuse(new RecordError('auth', `record ${next} is shorter than its authentication tag`));
      }
      if (body.length - tagBytes > MAX_RECORD_PLAINTEXT) {
        return refuse(new RecordError('size', `record ${next} holds more than ${MAX_RECORD_PLAINTEXT} bytes`));
      }
      const n = next++;
      if (final) finalQueued = true;
      const work = decrypt(n, body, final).catch(() => undefined);
      const prev = tail;
      const result = (async () => {
        const plaintext = await work;
        await prev.catch(() => undefined);
        if (failed !== undefined) throw failed; // an earlier record failed: nothing after it counts
        if (plaintext === undefined) {
          failed = new RecordError(
            'auth',
            `record ${n} failed authentication: it was modified, replayed, reordered or dropped on the way, ` +
              'or the other side is broken',
          );
          throw failed;
        }
        if (final) finished = true;
        return { plaintext, final };
      })();
      tail = result;
      return result;
    },
    wipe() {
      wiped = true;
      chacha?.fill(0);
      aes?.wipe();
    },
  };
}
