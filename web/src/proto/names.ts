// Entry names: the receiver rules for entries (PROTOCOL.md §8), collision
// detection across one transfer, and escaping for display.
//
// The sender is authenticated but may be hostile. Everything here is pure:
// no storage is touched, and a name is used only after `checkPath` passed it.

import { MAX_NAME_BYTES, MAX_OFFER_NAMES } from './messages';

/** Largest path in bytes. */
export const MAX_PATH_BYTES = MAX_NAME_BYTES;
/** Largest path component in bytes. */
export const MAX_COMPONENT_BYTES = 255;
/** Deepest path in components. */
export const MAX_DEPTH = 64;
/** Longest escaped name in characters before it is cut (then `…` follows). */
export const MAX_SHOWN_CHARS = 300;
/** Default cap on distinct paths of one transfer (files and folders, implied parents included). */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** Prefix of pqdrop's own state files; no received component may start with it (any case). */
export const RESERVED_PREFIX = '.pqdrop';
/** Suffix of partial files; no received component may end with it (any case). */
export const PARTIAL_SUFFIX = '.pqdrop-partial';

// `ignoreBOM` matters: without it a leading U+FEFF would be silently dropped,
// so a refused character would slip through and the name would not be the
// sender's bytes.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/** `bytes` as a string if it is valid UTF-8 (overlong forms and surrogates are invalid). */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Why code point `c` may not appear in a received name, if it may not. */
export function refusedChar(c: number): string | undefined {
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return 'control character in name';
  if (c === 0x2028 || c === 0x2029) return 'line or paragraph separator in name';
  if (c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) {
    return 'bidirectional control character in name';
  }
  if (
    c === 0x200b ||
    c === 0x180e ||
    (c >= 0x2060 && c <= 0x2064) ||
    (c >= 0x206a && c <= 0x206f) ||
    c === 0xfeff ||
    (c >= 0xfff9 && c <= 0xfffb) ||
    c === 0x3164 ||
    c === 0xffa0
  ) {
    return 'invisible character in name';
  }
  if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) === 0xfffe) return 'Unicode noncharacter in name';
  return undefined;
}

const DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|(com|lpt)[0-9¹²³])$/;

/**
 * A Windows device name, reserved in every folder: `CON`, `PRN`, `AUX`,
 * `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`, `COM¹²³`, `LPT¹²³`, `CONIN$`,
 * `CONOUT$`, in any case, also with an extension (Windows reads the part
 * before the first dot, and ignores spaces at its end: `CON .txt` is CON).
 */
export function isWindowsDevice(component: string): boolean {
  const dot = component.indexOf('.');
  const base = (dot < 0 ? component : component.slice(0, dot)).replace(/ +$/, '');
  return DEVICE.test(base.toLowerCase());
}

/**
 * Why one path component is refused, or undefined. `byteLen` is its length
 * in UTF-8 when the caller already knows it.
 */
export function checkComponent(c: string, byteLen: number = utf8.encode(c).length): string | undefined {
  if (c.length === 0) return 'empty path component (// or a trailing /)';
  if (c === '.' || c === '..') return "'.' or '..' path component";
  if (byteLen > MAX_COMPONENT_BYTES) return `name component over ${MAX_COMPONENT_BYTES} bytes`;
  if (c.includes(':')) return "':' in name (drive letter or alternate data stream)";
  if (c.includes('\\')) return 'backslash in name (Windows path separator)';
  for (const ch of c) {
    const why = refusedChar(ch.codePointAt(0)!);
    if (why !== undefined) return why;
  }
  if (c.endsWith('.') || c.endsWith(' ')) return 'trailing dot or space in name (Windows strips them)';
  if (isWindowsDevice(c)) return 'Windows device name';
  const lower = c.toLowerCase();
  if (lower.startsWith(RESERVED_PREFIX) || lower.endsWith(PARTIAL_SUFFIX)) return "name reserved for pqdrop's own state files";
  return undefined;
}

export type PathCheck =
  | { ok: true; path: string; components: string[] }
  | { ok: false; reason: string; shown: string };

/**
 * Applies the path rules of §8 to a raw path from the sender: valid UTF-8,
 * at most 4096 bytes and 64 components, each component passing
 * `checkComponent`. On refusal `shown` is the escaped name for messages.
 */
export function checkPath(raw: Uint8Array): PathCheck {
  const refuse = (reason: string): PathCheck => ({ ok: false, reason, shown: escapeName(raw) });
  if (raw.length === 0) return refuse('empty path');
  if (raw.length > MAX_PATH_BYTES) return refuse(`path over ${MAX_PATH_BYTES} bytes`);
  if (raw[0] === 0x2f) return refuse('absolute path');
  const text = decodeUtf8(raw);
  if (text === undefined) return refuse('name is not valid UTF-8');
  const components = text.split('/');
  if (components.length > MAX_DEPTH) return refuse(`path deeper than ${MAX_DEPTH} components`);
  // Component lengths in bytes, from the raw path: '/' is one byte and never
  // part of a longer UTF-8 sequence, so its positions split both alike.
  let start = 0;
  let k = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i < raw.length && raw[i] !== 0x2f) continue;
    const why = checkComponent(components[k++]!, i - start);
    if (why !== undefined) return refuse(why);
    start = i + 1;
  }
  return { ok: true, path: text, components };
}

/**
 * The Offer-names rule: with fewer than 16 names the list is complete, and
 * an entry whose first path component is not in it is refused; with 16 the
 * list may have been cut and allows anything.
 */
export function offerAllowsFirstComponent(names: readonly Uint8Array[], first: Uint8Array): boolean {
  if (names.length >= MAX_OFFER_NAMES) return true;
  return names.some((n) => n.length === first.length && n.every((b, i) => b === first[i]));
}

/** The first component of a raw path (the bytes before the first '/'). */
export function firstComponent(raw: Uint8Array): Uint8Array {
  const slash = raw.indexOf(0x2f);
  return slash < 0 ? raw : raw.subarray(0, slash);
}

// --- Collisions --------------------------------------------------------------

const KIND_FILE = 0;
const KIND_IMPLIED = 1;
const KIND_FOLDER = 2;

/**
 * A streaming non-cryptographic hash of UTF-16 code units, four 32-bit
 * lanes (two cyrb53-style pairs), read after each path component without
 * ending the stream. Collision resistance is not needed here: a collision
 * can only make distinct paths look alike, so the worst a sender that forges
 * one achieves is the refusal of its own transfer (or, for the exact-spelling
 * check, one folder where a case-sensitive disk would have had two). What
 * matters is speed: BLAKE3 in JavaScript costs microseconds per short
 * input, times every component of up to a million entries.
 */
class LaneHash {
  a = 0x9e3779b9;
  b = 0x41c64e6d;
  c = 0x85ebca6b;
  d = 0xc2b2ae35;
  /** Finalised lanes of the stream so far (`lanes`). */
  out = new Uint32Array(4);

  update(s: string): void {
    let { a, b, c, d } = this;
    for (let i = 0; i < s.length; i++) {
      const ch = s.charCodeAt(i);
      a = Math.imul(a ^ ch, 2654435761);
      b = Math.imul(b ^ ch, 1597334677);
      c = Math.imul(c ^ ch, 2246822519);
      d = Math.imul(d ^ ch, 3266489917);
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  reset(): void {
    this.a = 0x9e3779b9;
    this.b = 0x41c64e6d;
    this.c = 0x85ebca6b;
    this.d = 0xc2b2ae35;
  }

  /** Fills `out` with the finalised lanes; the stream goes on unchanged. */
  lanes(): Uint32Array {
    let { a, b, c, d } = this;
    a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
    b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
    c = Math.imul(c ^ (c >>> 16), 2246822507) ^ Math.imul(d ^ (d >>> 13), 3266489909);
    d = Math.imul(d ^ (d >>> 16), 2246822507) ^ Math.imul(c ^ (c >>> 13), 3266489909);
    this.out[0] = a;
    this.out[1] = b;
    this.out[2] = c;
    this.out[3] = d;
    return this.out;
  }
}

/**
 * An open-addressing table of 96-bit keys with a 32-bit value each, 16
 * bytes a slot in one typed array: a million paths take 32 MiB at most,
 * with no per-key allocation.
 */
class SlotTable {
  private slots = new Uint32Array(4 * 1024);
  private mask = 1023;
  size = 0;

  /** The slot holding this key, or the empty slot where it would go. */
  private find(k0: number, k1: number, k2: number): number {
    let i = k0 & this.mask;
    for (;;) {
      const o = i * 4;
      const s0 = this.slots[o]!;
      if (s0 === 0 || (s0 === k0 && this.slots[o + 1] === k1 && this.slots[o + 2] === k2)) return o;
      i = (i + 1) & this.mask;
    }
  }

  /** The value of a key, or -1. `k0` must not be 0 (0 marks an empty slot). */
  get(k0: number, k1: number, k2: number): number {
    const o = this.find(k0, k1, k2);
    return this.slots[o] === 0 ? -1 : this.slots[o + 3]!;
  }

  set(k0: number, k1: number, k2: number, v: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const o = this.find(k0, k1, k2);
    if (this.slots[o] === 0) this.size++;
    this.slots[o] = k0;
    this.slots[o + 1] = k1;
    this.slots[o + 2] = k2;
    this.slots[o + 3] = v;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    this.mask = this.slots.length / 4 - 1;
    for (let o = 0; o < old.length; o += 4) {
      if (old[o] === 0) continue;
      const n = this.find(old[o]!, old[o + 1]!, old[o + 2]!);
      this.slots.set(old.subarray(o, o + 4), n);
    }
  }
}

/** The case- and normalisation-folded form two names are compared by. */
export function foldComponent(c: string): string {
  // ASCII is its own NFC form, and normalising is the costly part.
  if (ASCII.test(c)) return c.toLowerCase();
  return c.normalize('NFC').toLowerCase().normalize('NFC');
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * Detects collisions among the entries of one transfer: the same path twice,
 * a file and a folder with the same path (in either order, so also a file
 * used as a parent), and two paths equal after NFC normalisation and
 * lower-casing (one file on macOS and Windows). A folder entry for a folder
 * already implied by an earlier path is fine.
 *
 * Memory is bounded: each path and each of its parents is kept as a 96-bit
 * hash of its folded form, with 30 bits of a hash of its exact spelling
 * beside it (to tell a true duplicate from a look-alike) and its kind, at
 * most `maxKeys` of them. Equal folded paths always share a key, so no
 * collision is ever missed (see LaneHash for what a forged one can do).
 */
export class CollisionSet {
  private readonly table = new SlotTable();
  // Scratch space for one entry's keys: three key words and the exact check per component.
  private keys = new Uint32Array(4 * 64);
  private readonly folded = new LaneHash();
  private readonly exact = new LaneHash();

  constructor(private readonly maxKeys: number = DEFAULT_MAX_ENTRIES) {}

  /** Distinct paths tracked (implied parents included). */
  get size(): number {
    return this.table.size;
  }

  /**
   * Records one entry given by its checked components. Returns why it is
   * refused (the set is then unchanged), or undefined. `limit` is true when
   * the refusal is the key cap, not a collision.
   */
  insert(components: readonly string[], isFolder: boolean): { reason: string; limit: boolean } | undefined {
    const n = components.length;
    if (this.keys.length < 4 * n) this.keys = new Uint32Array(4 * n);
    const keys = this.keys;
    const { folded, exact } = this;
    folded.reset();
    exact.reset();
    for (let i = 0; i < n; i++) {
      if (i > 0) {
        folded.update('/');
        exact.update('/');
      }
      const c = components[i]!;
      folded.update(foldComponent(c));
      exact.update(c);
      const f = folded.lanes();
      keys[4 * i] = f[0]! || 1; // 0 marks an empty slot
      keys[4 * i + 1] = f[1]!;
      keys[4 * i + 2] = f[2]!;
      keys[4 * i + 3] = exact.lanes()[0]! >>> 2;
    }
    let fresh = 0;
    for (let i = 0; i < n; i++) {
      const v = this.table.get(keys[4 * i]!, keys[4 * i + 1]!, keys[4 * i + 2]!);
      if (v < 0) {
        fresh++;
        continue;
      }
      const kind = v & 3;
      if (v >>> 2 !== keys[4 * i + 3]) {
        return { reason: 'differs from an earlier entry only in letter case or Unicode normalisation', limit: false };
      }
      if (i < n - 1) {
        if (kind === KIND_FILE) return { reason: 'an earlier entry is a file where this path needs a folder', limit: false };
      } else if ((kind === KIND_FILE && !isFolder) || (kind === KIND_FOLDER && isFolder)) {
        return { reason: 'duplicate entry', limit: false };
      } else if (kind === KIND_FILE || !isFolder) {
        return { reason: 'a file and a folder have the same name', limit: false };
      }
    }
    if (this.table.size + fresh > this.maxKeys) {
      return { reason: `more than ${this.maxKeys} distinct paths in one transfer`, limit: true };
    }
    for (let i = 0; i < n; i++) {
      const k0 = keys[4 * i]!;
      const k1 = keys[4 * i + 1]!;
      const k2 = keys[4 * i + 2]!;
      const ex = keys[4 * i + 3]! << 2;
      if (i < n - 1) {
        if (this.table.get(k0, k1, k2) < 0) this.table.set(k0, k1, k2, (ex | KIND_IMPLIED) >>> 0);
      } else {
        // An implied folder becomes an explicit one when listed.
        this.table.set(k0, k1, k2, (ex | (isFolder ? KIND_FOLDER : KIND_FILE)) >>> 0);
      }
    }
    return undefined;
  }
}

// --- Escaping ------------------------------------------------------------------

// Format and space characters, shown escaped so that look-alikes look
// different, plus a few invisible letters and marks that are neither (the
// combining grapheme joiner, Hangul fillers, Khmer inherent vowels). U+0020
// is excluded below.
const SHOWN_ESCAPED = /^[\p{Cf}\p{Zs}\p{Zl}\p{Zp}\u034F\u115F\u1160\u17B4\u17B5]$/u;

function hex2(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}

/** The escape for code point `c`, or undefined when it is shown as is. */
function escapeCodePoint(c: number, keepLayout: boolean): string | undefined {
  switch (c) {
    case 0x5c:
      return keepLayout ? undefined : '\\\\';
    case 0x0a:
      return keepLayout ? undefined : '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return keepLayout ? undefined : '\\t';
    case 0x1b:
      return '\\e';
  }
  if (c < 0x20 || c === 0x7f) return `\\x${hex2(c)}`;
  const isSurrogate = c >= 0xd800 && c <= 0xdfff;
  if (c !== 0x20 && (isSurrogate || refusedChar(c) !== undefined || SHOWN_ESCAPED.test(String.fromCodePoint(c)))) {
    return `\\u{${c.toString(16).toUpperCase().padStart(4, '0')}}`;
  }
  return undefined;
}

/**
 * Decodes UTF-8 leniently, calling `cp` for each valid code point and `bad`
 * for each byte that is not part of a valid sequence (Unicode's table 3-7:
 * no overlong forms, no surrogates, nothing above U+10FFFF).
 */
function walkUtf8(b: Uint8Array, cp: (c: number) => boolean, bad: (byte: number) => boolean): void {
  let i = 0;
  while (i < b.length) {
    const b0 = b[i]!;
    let need = 0;
    let c = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b0 < 0x80) {
      if (!cp(b0)) return;
      i++;
      continue;
    } else if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      c = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      c = b0 & 0x0f;
      if (b0 === 0xe0) lo = 0xa0;
      if (b0 === 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      c = b0 & 0x07;
      if (b0 === 0xf0) lo = 0x90;
      if (b0 === 0xf4) hi = 0x8f;
    }
    let ok = need > 0;
    for (let k = 1; ok && k <= need; k++) {
      const bk = b[i + k];
      const min = k === 1 ? lo : 0x80;
      const max = k === 1 ? hi : 0xbf;
      if (bk === undefined || bk < min || bk > max) ok = false;
      else c = (c << 6) | (bk & 0x3f);
    }
    if (ok) {
      if (!cp(c)) return;
      i += need + 1;
    } else {
      if (!bad(b0)) return;
      i++;
    }
  }
}

function escapeWith(input: Uint8Array | string, keepLayout: boolean, limit: number): string {
  let out = '';
  let count = 0;
  let cut = false;
  const push = (piece: string, n: number): boolean => {
    if (count + n > limit) {
      cut = true;
      return false;
    }
    count += n;
    out += piece;
    return true;
  };
  const onCp = (c: number): boolean => {
    const e = escapeCodePoint(c, keepLayout);
    return e === undefined ? push(String.fromCodePoint(c), 1) : push(e, e.length);
  };
  const onBad = (byte: number): boolean => push(`\\x${hex2(byte)}`, 4);
  if (typeof input === 'string') {
    for (let i = 0; i < input.length; ) {
      const c = input.codePointAt(i)!;
      if (!onCp(c)) break;
      i += c > 0xffff ? 2 : 1;
    }
  } else {
    walkUtf8(input, onCp, onBad);
  }
  return cut ? `${out}…` : out;
}

/**
 * A name (or an Abort/Stop reason) as it may be shown (§8): `\` as `\\`;
 * newline, CR, tab and ESC as `\n`, `\r`, `\t`, `\e`; other C0 controls and
 * DEL as `\xHH`; every other character refused in names and every format or
 * space character other than U+0020 as `\u{HHHH}` (at least four digits);
 * invalid UTF-8 bytes as `\xHH`; hex in upper case. Output is cut after 300
 * characters (code points), never inside an escape, and then ends in `…`.
 */
export function escapeName(input: Uint8Array | string, limit: number = MAX_SHOWN_CHARS): string {
  return escapeWith(input, false, limit);
}

/**
 * Received text (an Offer of kind 2) as it may be shown: like `escapeName`
 * but not cut, and newline, tab and backslash are kept, so ordinary text
 * reads normally while controls, bidi overrides and invisible characters
 * are still made visible.
 */
export function escapeText(input: Uint8Array | string): string {
  return escapeWith(input, true, Number.POSITIVE_INFINITY);
}
