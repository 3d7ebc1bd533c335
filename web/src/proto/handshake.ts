// The handshake (PROTOCOL.md §4) and key schedule (§6), both roles, sans-IO:
// frames in, frames out, no sockets and no timers.
//
//   requester                                      accepter
//     requestAdd2(version, nonce)            ->
//                                            <-    acceptAdd2(version, Ya, ek, aesSalt, caps)
//     keys2(Yb, ct, chaChaSalt, caps)        ->
//     confirm(tag_r)                         ->
//                                            <-    confirm(tag_a)
//
// CPace (§5) makes both sides prove the same words; ML-KEM-768 adds a
// post-quantum secret; both go into the key schedule together with the hash
// of every handshake frame, so changing any bit of any message makes key
// confirmation fail.

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { extract, expand } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { concat, encodeFrame, FrameType, ProtocolError, Reader, Writer, type Frame } from './codec';
import { isValidNameplate, systemRandom, type Code, type Random } from './code';
import { calculateGenerator, channelId, cpaceIsk, cpaceSecret, cpaceShare, lvCat } from './cpace';
import { agree, DEFAULTS, type CipherName } from './caps';
import { createOpener, createSealer, type RecordOpener, type RecordSealer } from './record';

export type { Random } from './code';
export type { RecordOpener, RecordSealer } from './record';

export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

export const MLKEM_EK_BYTES = 1184;
export const MLKEM_CT_BYTES = 1088;

/** Reasons carried by abort (44). */
export const AbortReason = {
  KeyConfirmation: 1,
  Version: 2,
  Protocol: 3,
  Identity: 4,
} as const;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const L = {
  transcript: ascii('pqdrop/v1 transcript'),
  aes: ascii('pqdrop/v1 AES Key'),
  chacha: ascii('pqdrop/v1 ChaCha Key'),
  confirm: ascii('pqdrop/v1 confirm'),
  exporter: ascii('pqdrop/v1 exporter'),
  r2a: ascii(' requester->accepter'),
  a2r: ascii(' accepter->requester'),
};
const EMPTY = new Uint8Array(0);
const LOW_ORDER = 'the other side sent an invalid CPace share (a low-order point, which would make K zero)';

export interface Established {
  cipher: CipherName;
  version: number;
  /** Capability words as sent (low 32 bits; the reserved high bits are ignored). */
  ours: number;
  theirs: number;
  /** Feature bits both set, plus the one cipher bit in use (see caps.ts `agree`). */
  agreed: number;
  /** TH, 64 bytes. */
  transcriptHash: Uint8Array;
  /** 32 bytes, for binding later proofs (e.g. identities) to this session. */
  exporter: Uint8Array;
  /** Seals our direction. */
  sealer: RecordSealer;
  /** Opens the peer's direction. */
  opener: RecordOpener;
}

export type HandshakeErrorKind = 'wrong-code' | 'version' | 'protocol' | 'peer-abort';

/**
 * The handshake failed. `fromPeer` tells who detected it: false means this
 * side did, and `abortFrame` (when set) should be sent before closing; true
 * means the other side sent abort(`reason`).
 */
export class HandshakeError extends Error {
  constructor(
    readonly kind: HandshakeErrorKind,
    message: string,
    readonly fromPeer: boolean,
    readonly reason?: number,
    readonly abortFrame?: Uint8Array,
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

// ---- messages --------------------------------------------------------------

export function abortFrame(reason: number): Uint8Array {
  return encodeFrame(FrameType.Abort, new Writer().varuint(reason).finish());
}

function confirmFrame(tag: Uint8Array): Uint8Array {
  return encodeFrame(FrameType.Confirm, new Writer().bytes(tag).finish());
}

/** An optional trailing capability word: absent means DEFAULTS; only the low 32 bits are kept. */
function readCaps(r: Reader, what: string): number {
  if (r.atEnd()) return DEFAULTS;
  return Number(r.varbig(`${what} capabilities`) & 0xffffffffn);
}

/** An ML-KEM field: capped at its size, and unusable unless exactly that size. */
function readKemField(r: Reader, exact: number, what: string): Uint8Array {
  const b = r.bytes(exact, what);
  if (b.length !== exact) throw new ProtocolError(`${what}: ${b.length} bytes, expected ${exact}`);
  return b.slice();
}

export interface RequestAdd2 {
  version: bigint;
  nonce: Uint8Array;
}
export interface AcceptAdd2 {
  version: bigint;
  ya: Uint8Array;
  ek: Uint8Array;
  aesSalt: Uint8Array;
  caps: number;
}
export interface Keys2 {
  yb: Uint8Array;
  ct: Uint8Array;
  chachaSalt: Uint8Array;
  caps: number;
}

/** Message bodies (§4). Each is consumed exactly; values are copies. Throw ProtocolError. */
export function parseRequestAdd2(body: Uint8Array): RequestAdd2 {
  const r = new Reader(body);
  const version = r.varbig('requestAdd2 version');
  const nonce = r.fixed(32, 'requestAdd2 nonce').slice();
  r.end('requestAdd2');
  return { version, nonce };
}

export function parseAcceptAdd2(body: Uint8Array): AcceptAdd2 {
  const r = new Reader(body);
  const version = r.varbig('acceptAdd2 version');
  const ya = r.fixed(32, 'acceptAdd2 ecdhPubKey').slice();
  const ek = readKemField(r, MLKEM_EK_BYTES, 'acceptAdd2 mlkemPubKey');
  const aesSalt = r.fixed(32, 'acceptAdd2 aesSalt').slice();
  const caps = readCaps(r, 'acceptAdd2');
  r.end('acceptAdd2');
  return { version, ya, ek, aesSalt, caps };
}

export function parseKeys2(body: Uint8Array): Keys2 {
  const r = new Reader(body);
  const yb = r.fixed(32, 'keys2 ecdhPubKey').slice();
  const ct = readKemField(r, MLKEM_CT_BYTES, 'keys2 mlkemCiphertext');
  const chachaSalt = r.fixed(32, 'keys2 chaChaSalt').slice();
  const caps = readCaps(r, 'keys2');
  r.end('keys2');
  return { yb, ct, chachaSalt, caps };
}

export function parseConfirm(body: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const tag = r.fixed(32, 'confirm tag').slice();
  r.end('confirm');
  return tag;
}

/** The reason of an abort body, or undefined when it is malformed (it still ends the handshake). */
export function parseAbort(body: Uint8Array): number | undefined {
  try {
    const r = new Reader(body);
    const v = r.varbig('abort reason');
    r.end('abort');
    return v <= 0xffffn ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

function checkedCaps(caps: number): number {
  if (!Number.isInteger(caps) || caps < 0 || caps > 0xffffffff) {
    throw new RangeError(`capabilities out of range: ${caps}`);
  }
  return caps;
}

// ---- key schedule ----------------------------------------------------------

export interface KeySchedule {
  aes: { r2a: Uint8Array; a2r: Uint8Array };
  chacha: { r2a: Uint8Array; a2r: Uint8Array };
  confirm: { r2a: Uint8Array; a2r: Uint8Array };
  exporter: Uint8Array;
}

/** `TH = SHA-512(lv_cat("pqdrop/v1 transcript", CI) || transcript)`. */
export function transcriptHash(ci: Uint8Array, transcript: Uint8Array): Uint8Array {
  return sha512.create().update(lvCat(L.transcript, ci)).update(transcript).digest();
}

/** §6, from `combined = ISK || ss`. Wipes its intermediate values (not its inputs). */
export function deriveKeys(
  isk: Uint8Array,
  ss: Uint8Array,
  aesSalt: Uint8Array,
  chachaSalt: Uint8Array,
  th: Uint8Array,
): KeySchedule {
  const combined = concat([isk, ss]);
  const prkAes = extract(sha256, combined, aesSalt);
  const prkChacha = extract(sha256, combined, chachaSalt);
  const prkConfirm = extract(sha256, combined, th);
  const x = (prk: Uint8Array, ...info: Uint8Array[]) => expand(sha256, prk, concat(info), 32);
  const ks: KeySchedule = {
    aes: { r2a: x(prkAes, L.aes, L.r2a, th), a2r: x(prkAes, L.aes, L.a2r, th) },
    chacha: { r2a: x(prkChacha, L.chacha, L.r2a, th), a2r: x(prkChacha, L.chacha, L.a2r, th) },
    confirm: { r2a: x(prkConfirm, L.confirm, L.r2a), a2r: x(prkConfirm, L.confirm, L.a2r) },
    exporter: x(prkConfirm, L.exporter),
  };
  for (const b of [combined, prkAes, prkChacha, prkConfirm]) b.fill(0);
  return ks;
}

/** `tag = HMAC-SHA256(confirm_key, TH)`. */
export function confirmTag(confirmKey: Uint8Array, th: Uint8Array): Uint8Array {
  return hmac(sha256, confirmKey, th);
}

function wipeKeys(ks: KeySchedule): void {
  for (const pair of [ks.aes, ks.chacha, ks.confirm]) {
    pair.r2a.fill(0);
    pair.a2r.fill(0);
  }
}

/** Constant-time equality of two tags. */
export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

// ---- the state machine -----------------------------------------------------

type Role = 'requester' | 'accepter';

type Phase =
  | 'new' // requester before start(), accepter waiting for requestAdd2
  | 'requested' // requester: requestAdd2 sent
  | 'accepted' // accepter: acceptAdd2 sent, waiting for keys2
  | 'confirming' // keys derived, waiting for the peer's confirm
  | 'establishing' // tag checked, record keys being imported
  | 'done'
  | 'failed';

export interface HandshakeOptions {
  code: Code;
  /** This side's capability word (a u32; see caps.ts). */
  caps: number;
  /** Nonces, salts and CPace scalars. Defaults to the platform CSPRNG. */
  random?: Random;
  /**
   * ML-KEM randomness (the accepter's d || z, the requester's m). Defaults to
   * `random`; separate only so that the published vectors, which draw it from
   * its own stream, can be reproduced.
   */
  kemRandom?: Random;
}

export class Handshake {
  private phase: Phase = 'new';
  private statusValue: 0 | 1 | 2 | 3 = 0;
  private readonly random: Random;
  private readonly kemRandom: Random;
  private readonly ci: Uint8Array;
  private readonly ours: number;
  private theirs = DEFAULTS;
  private version = PROTOCOL_VERSION;
  /** Frames exactly as sent and received, in order: requestAdd2, acceptAdd2, keys2. */
  private readonly transcript: Uint8Array[] = [];
  private nonce: Uint8Array = EMPTY;
  private aesSalt: Uint8Array = EMPTY;
  private sid: Uint8Array = EMPTY;
  private y: Uint8Array = EMPTY; // CPace scalar
  private ya: Uint8Array = EMPTY; // the accepter's share
  private dk: Uint8Array = EMPTY; // ML-KEM decapsulation key (accepter)
  private keys: KeySchedule | undefined;
  private th: Uint8Array = EMPTY;
  private expectedTag: Uint8Array = EMPTY;
  private result: Established | undefined;

  private constructor(
    private readonly role: Role,
    private readonly code: Code,
    opts: HandshakeOptions,
  ) {
    if (!isValidNameplate(code.nameplate)) throw new RangeError('handshake: the nameplate must be canonical decimal');
    this.ours = checkedCaps(opts.caps);
    this.random = opts.random ?? systemRandom;
    this.kemRandom = opts.kemRandom ?? this.random;
    this.ci = channelId(code.nameplate);
  }

  /** The side that typed the code and receives files. */
  static requester(opts: HandshakeOptions): Handshake {
    return new Handshake('requester', opts.code, opts);
  }

  /** The side that made the code and sends files. */
  static accepter(opts: HandshakeOptions): Handshake {
    return new Handshake('accepter', opts.code, opts);
  }

  /** `handshakeStatus` (§4): 0 request sent; 1 request accepted; 2 keys2 sent (requester); 3 complete. */
  get status(): 0 | 1 | 2 | 3 {
    return this.statusValue;
  }

  /** Defined once status is 3. */
  get established(): Established | undefined {
    return this.result;
  }

  /** Frames to send right away: the requester's requestAdd2; nothing for the accepter. */
  start(): Uint8Array[] {
    if (this.role === 'accepter') return [];
    if (this.phase !== 'new' || this.transcript.length > 0) throw new Error('start: called twice');
    this.nonce = this.draw(this.random, 32);
    const f = encodeFrame(
      FrameType.RequestAdd2,
      new Writer().varuint(PROTOCOL_VERSION).bytes(this.nonce).finish(),
    );
    this.transcript.push(f);
    this.phase = 'requested';
    return [f];
  }

  /**
   * One received handshake frame (types 40–44). Returns the frames to send
   * now. Throws HandshakeError; after that the handshake is over and the
   * connection must be closed (after sending `abortFrame`, if any).
   */
  async receive(frame: Frame): Promise<Uint8Array[]> {
    if (this.phase === 'failed') throw new HandshakeError('protocol', 'the handshake already failed', false);
    if (this.phase === 'establishing') throw new Error('receive: the previous call has not finished');
    if (this.phase === 'done') {
      const detail = `the other side sent handshake frame type ${frame.type} after key confirmation`;
      throw this.fail('protocol', detail, undefined);
    }
    try {
      if (frame.type === FrameType.Abort) throw this.peerAbort(frame.body);
      const { role, phase } = this;
      if (role === 'accepter' && phase === 'new' && frame.type === FrameType.RequestAdd2) return this.onRequest(frame);
      if (role === 'requester' && phase === 'requested' && frame.type === FrameType.AcceptAdd2) return this.onAccept(frame);
      if (role === 'accepter' && phase === 'accepted' && frame.type === FrameType.Keys2) return this.onKeys2(frame);
      if (phase === 'confirming' && frame.type === FrameType.Confirm) return await this.onConfirm(frame);
      throw new ProtocolError(`unexpected frame type ${frame.type} (${role}, ${phase})`);
    } catch (e) {
      if (e instanceof HandshakeError) {
        this.phase = 'failed';
        this.wipe();
        throw e;
      }
      if (e instanceof ProtocolError) throw this.fail('protocol', e.message, AbortReason.Protocol);
      this.phase = 'failed';
      this.wipe();
      throw e;
    }
  }

  // -- accepter --

  private onRequest(frame: Frame): Uint8Array[] {
    const { version, nonce } = parseRequestAdd2(frame.body);
    if (version < BigInt(MIN_PROTOCOL_VERSION)) {
      const detail = `the other side speaks protocol version ${version}, older than this page's ${MIN_PROTOCOL_VERSION}`;
      throw this.fail('version', detail, AbortReason.Version);
    }
    this.version = Number(version < BigInt(PROTOCOL_VERSION) ? version : BigInt(PROTOCOL_VERSION));
    this.transcript.push(encodeFrame(frame.type, frame.body));
    this.nonce = nonce;

    this.y = this.draw(this.random, 32);
    this.aesSalt = this.draw(this.random, 32);
    const seed = this.draw(this.kemRandom, 64); // d || z
    const { publicKey: ek, secretKey: dk } = ml_kem768.keygen(seed);
    seed.fill(0);
    this.dk = dk;

    this.sid = concat([this.nonce, this.aesSalt]);
    const g = calculateGenerator(this.code.prs, this.ci, this.sid);
    this.ya = cpaceShare(this.y, g);
    const body = new Writer()
      .varuint(this.version)
      .bytes(this.ya)
      .bytes(ek)
      .bytes(this.aesSalt)
      .varuint(this.ours)
      .finish();
    const f = encodeFrame(FrameType.AcceptAdd2, body);
    this.transcript.push(f);
    this.phase = 'accepted';
    this.statusValue = 1;
    return [f];
  }

  private onKeys2(frame: Frame): Uint8Array[] {
    const { yb, ct, chachaSalt, caps } = parseKeys2(frame.body);
    this.theirs = caps;
    this.transcript.push(encodeFrame(frame.type, frame.body));

    const k = cpaceSecret(this.y, yb);
    if (k === undefined) throw this.fail('protocol', LOW_ORDER, AbortReason.Protocol);
    const isk = cpaceIsk(this.sid, k, this.ya, EMPTY, yb, EMPTY);
    const ss = ml_kem768.decapsulate(ct, this.dk);
    this.derive(isk, ss, chachaSalt);
    for (const b of [k, isk, ss, this.y, this.dk]) b.fill(0);
    return [];
  }

  // -- requester --

  private onAccept(frame: Frame): Uint8Array[] {
    const { version, ya, ek, aesSalt, caps } = parseAcceptAdd2(frame.body);
    this.aesSalt = aesSalt;
    this.theirs = caps;
    if (version > BigInt(PROTOCOL_VERSION) || version < BigInt(MIN_PROTOCOL_VERSION)) {
      const detail = `the other side answered with protocol version ${version}; this page speaks ${PROTOCOL_VERSION}`;
      throw this.fail('version', detail, AbortReason.Version);
    }
    this.version = Number(version);
    this.transcript.push(encodeFrame(frame.type, frame.body));
    this.ya = ya;

    this.y = this.draw(this.random, 32);
    this.sid = concat([this.nonce, this.aesSalt]);
    const g = calculateGenerator(this.code.prs, this.ci, this.sid);
    const yb = cpaceShare(this.y, g);
    const k = cpaceSecret(this.y, ya);
    if (k === undefined) throw this.fail('protocol', LOW_ORDER, AbortReason.Protocol);
    const isk = cpaceIsk(this.sid, k, ya, EMPTY, yb, EMPTY);
    k.fill(0);
    this.y.fill(0);

    const m = this.draw(this.kemRandom, 32);
    let kem: { cipherText: Uint8Array; sharedSecret: Uint8Array };
    try {
      kem = ml_kem768.encapsulate(ek, m);
    } catch {
      isk.fill(0);
      throw this.fail('protocol', 'the other side sent an invalid ML-KEM-768 public key', AbortReason.Protocol);
    } finally {
      m.fill(0);
    }
    const chachaSalt = this.draw(this.random, 32);
    const body = new Writer().bytes(yb).bytes(kem.cipherText).bytes(chachaSalt).varuint(this.ours).finish();
    const f = encodeFrame(FrameType.Keys2, body);
    this.transcript.push(f);
    this.derive(isk, kem.sharedSecret, chachaSalt);
    isk.fill(0);
    kem.sharedSecret.fill(0);
    this.statusValue = 2;
    return [f, confirmFrame(confirmTag(this.keys!.confirm.r2a, this.th))];
  }

  // -- both --

  /** TH and the key schedule, once all three frames are in the transcript. */
  private derive(isk: Uint8Array, ss: Uint8Array, chachaSalt: Uint8Array): void {
    this.th = transcriptHash(this.ci, concat(this.transcript));
    this.keys = deriveKeys(isk, ss, this.aesSalt, chachaSalt, this.th);
    const peer = this.role === 'requester' ? this.keys.confirm.a2r : this.keys.confirm.r2a;
    this.expectedTag = confirmTag(peer, this.th);
    this.phase = 'confirming';
  }

  private async onConfirm(frame: Frame): Promise<Uint8Array[]> {
    const tag = parseConfirm(frame.body);
    if (!tagsEqual(tag, this.expectedTag)) {
      throw this.fail(
        'wrong-code',
        'the code does not match: the other side could not prove it has the same code ' +
          '(or the connection was tampered with)',
        AbortReason.KeyConfirmation,
      );
    }
    const keys = this.keys!;
    const out = this.role === 'accepter' ? [confirmFrame(confirmTag(keys.confirm.a2r, this.th))] : [];
    this.phase = 'establishing';
    const { cipher, agreed } = agree(this.ours, this.theirs);
    const [send, recv] = this.role === 'requester' ? (['r2a', 'a2r'] as const) : (['a2r', 'r2a'] as const);
    const useAes = cipher !== 'chacha20-poly1305';
    const useChacha = cipher !== 'aes-256-gcm';
    const dir = (d: 'r2a' | 'a2r') => ({
      aes: useAes ? keys.aes[d].slice() : undefined,
      chacha: useChacha ? keys.chacha[d].slice() : undefined,
    });
    const sendKeys = dir(send);
    const recvKeys = dir(recv);
    const exporter = keys.exporter;
    wipeKeys(keys); // the sealer and opener own their copies from here on
    this.keys = undefined;
    const sealer = await createSealer(cipher, sendKeys);
    const opener = await createOpener(cipher, recvKeys);
    this.result = {
      cipher,
      version: this.version,
      ours: this.ours,
      theirs: this.theirs,
      agreed,
      transcriptHash: this.th,
      exporter,
      sealer,
      opener,
    };
    this.phase = 'done';
    this.statusValue = 3;
    this.wipe();
    return out;
  }

  private peerAbort(body: Uint8Array): HandshakeError {
    const reason = parseAbort(body);
    const who = this.role === 'requester' ? 'sender' : 'receiver';
    switch (reason) {
      case AbortReason.KeyConfirmation:
        return new HandshakeError('wrong-code', `the code does not match: the ${who} rejected it`, true, reason);
      case AbortReason.Version:
        return new HandshakeError('version', `the ${who} does not speak this page's protocol version`, true, reason);
      case AbortReason.Protocol:
        return new HandshakeError(
          'peer-abort',
          `the ${who} ended the handshake: it says this side broke the protocol`,
          true,
          reason,
        );
      case AbortReason.Identity:
        return new HandshakeError('peer-abort', `the ${who} did not accept this side's identity`, true, reason);
      default:
        return new HandshakeError(
          'peer-abort',
          `the ${who} ended the handshake (reason ${reason ?? 'unreadable'})`,
          true,
          reason,
        );
    }
  }

  /** A failure this side detected: the error to throw, with the abort frame to send. */
  private fail(kind: HandshakeErrorKind, detail: string, reason: number | undefined): HandshakeError {
    const message = kind === 'protocol' ? `the other side broke the handshake protocol: ${detail}` : detail;
    this.phase = 'failed';
    this.wipe();
    return new HandshakeError(kind, message, false, reason, reason === undefined ? undefined : abortFrame(reason));
  }

  private draw(random: Random, n: number): Uint8Array {
    const b = random(n);
    if (b.length !== n) throw new Error(`random source returned ${b.length} bytes, not ${n}`);
    return b;
  }

  /** Zeroes every secret this object still holds (the Established values live on). */
  private wipe(): void {
    this.y.fill(0);
    this.dk.fill(0);
    this.expectedTag.fill(0);
    if (this.keys !== undefined) {
      wipeKeys(this.keys);
      this.keys.exporter.fill(0);
      this.keys = undefined;
    }
  }
}
