// CPace, CPACE-X25519-SHA512 of draft-irtf-cfrg-cpace-21 (PROTOCOL.md §5).
//
// Pure functions only: the handshake (handshake.ts) decides who is initiator
// (the accepter) and responder (the requester) and wipes what it no longer needs.

import { x25519, _map_to_curve_elligator2_curve25519 } from '@noble/curves/ed25519.js';
import { pow } from '@noble/curves/abstract/modular.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { concat } from './codec';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Domain separation of CPACE-X25519-SHA512. */
export const DSI = ascii('CPace255');
/** `s_in_bytes`: the input block size of SHA-512. */
export const S_IN_BYTES = 128;
/** The ISK label, `DSI || "_ISK"`. */
const ISK_LABEL = ascii('CPace255_ISK');
/** PROTOCOL.md §11 CPACE_CI. */
const CPACE_CI = ascii('pqdrop/v1 cpace');

/** p = 2^255 - 19. */
const P = (1n << 255n) - 19n;

/**
 * u-coordinates that X25519 maps to zero whatever the (clamped) scalar: the
 * points of order dividing 8 on the curve and its twist, after RFC 7748
 * decoding (bit 255 cleared, reduced mod p). They are 0, 1, p - 1 and the two
 * order-8 points (the draft's invalid points Y3 and Y4).
 */
const LOW_ORDER_U: ReadonlySet<bigint> = new Set([
  0n,
  1n,
  P - 1n,
  decodeU(hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')),
  decodeU(hex('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157')),
]);

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** RFC 7748 decodeUCoordinate: little-endian, bit 255 cleared, reduced mod p. */
function decodeU(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(i === 31 ? b[i]! & 0x7f : b[i]!);
  return n % P;
}

function encodeU(u: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(u & 0xffn);
    u >>= 8n;
  }
  return out;
}

/** LEB128 encoding of a length (the draft's `prepend_len` prefix). */
export function leb128(n: number): Uint8Array {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Uint8Array.from(out);
}

/** `prepend_len(data) = LEB128(len(data)) || data`. */
export function prependLen(data: Uint8Array): Uint8Array {
  return concat([leb128(data.length), data]);
}

/** `lv_cat(a, b, …) = prepend_len(a) || prepend_len(b) || …`. */
export function lvCat(...parts: Uint8Array[]): Uint8Array {
  return concat(parts.map(prependLen));
}

/** `CI = lv_cat("pqdrop/v1 cpace", nameplate)`, nameplate in canonical decimal ASCII. */
export function channelId(nameplate: string): Uint8Array {
  return lvCat(CPACE_CI, ascii(nameplate));
}

/**
 * `generator_string(DSI, PRS, CI, sid, s_in_bytes)`. The zero padding fills
 * the first hash block so that the password's block is hashed on its own.
 */
export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  const lenPrs = leb128(prs.length).length + prs.length; // len(prepend_len(PRS))
  const lenDsi = leb128(DSI.length).length + DSI.length;
  const zpad = Math.max(0, S_IN_BYTES - 1 - lenPrs - lenDsi);
  return lvCat(DSI, prs, new Uint8Array(zpad), ci, sid);
}

/**
 * The password-derived generator g: Elligator2 (RFC 9380 §6.7.1, u-coordinate
 * only) of the first 32 bytes of SHA-512(generator_string), canonical encoding.
 *
 * JavaScript bigints are not constant-time; the inversion uses a fixed
 * exponent (Fermat) so at least the sequence of operations does not depend on
 * the password.
 */
export function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  const gs = generatorString(prs, ci, sid);
  const h = sha512(gs);
  const u = decodeU(h.subarray(0, 32));
  h.fill(0);
  gs.fill(0);
  const { xMn, xMd } = _map_to_curve_elligator2_curve25519(u);
  return encodeU((xMn * pow(xMd, P - 2n, P)) % P);
}

/** `Y = X25519(y, g)`: this side's public share (clamping happens inside). */
export function cpaceShare(y: Uint8Array, g: Uint8Array): Uint8Array {
  return x25519.scalarMult(y, g);
}

/**
 * `K = X25519(y, Y_peer)`, or `undefined` when K would be all zero (a
 * low-order Y_peer), which the handshake must refuse (§5).
 *
 * The low-order points are recognised before the multiplication: noble
 * throws on them instead of returning zero, and an error thrown here for any
 * other reason must not be mistaken for a zero K.
 */
export function cpaceSecret(y: Uint8Array, yPeer: Uint8Array): Uint8Array | undefined {
  if (yPeer.length !== 32) throw new RangeError('cpaceSecret: a share has 32 bytes');
  if (LOW_ORDER_U.has(decodeU(yPeer))) return undefined;
  const k = x25519.scalarMult(y, yPeer);
  let acc = 0;
  for (const b of k) acc |= b;
  return acc === 0 ? undefined : k;
}

/**
 * `ISK = H(lv_cat(DSI || "_ISK", sid, K) || lv_cat(Ya, ADa) || lv_cat(Yb, ADb))`,
 * the initiator-responder transcript (Ya is the initiator's share).
 */
export function cpaceIsk(
  sid: Uint8Array,
  k: Uint8Array,
  ya: Uint8Array,
  ada: Uint8Array,
  yb: Uint8Array,
  adb: Uint8Array,
): Uint8Array {
  const prefix = lvCat(ISK_LABEL, sid, k);
  const input = concat([prefix, lvCat(ya, ada), lvCat(yb, adb)]);
  const isk = sha512(input);
  prefix.fill(0);
  input.fill(0);
  return isk;
}
