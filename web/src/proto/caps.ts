// Capability bits and their agreement (PROTOCOL.md §4).
//
// Capabilities travel as a u64; this implementation keeps the low 32 bits as
// an unsigned number (JavaScript's bitwise operators are 32-bit) and ignores
// the rest, which are reserved and ignored anyway.

export const AES_256_GCM = 0x01;
/** Mandatory to implement. */
export const CHACHA20_POLY1305 = 0x02;
/** Requests the cascade (AES-256-GCM inside, ChaCha20-Poly1305 outside). */
export const CASCADE = 0x04;
export const RESUME = 0x08;
export const ZSTD = 0x10;
/** Stop (16) with a reason code instead of Abort (14). */
export const STOP_CODES = 0x20;
/** KeepAlive (17) and idle timeouts. */
export const KEEPALIVE = 0x40;
/** Skip (18). */
export const SKIP = 0x80;
/** A file sent from offset 0 ends with an empty FileEnd hash. */
export const UNHASHED_FRESH = 0x100;
/** Identity (19). */
export const IDENTITIES = 0x200;

/** What a side that sends no capabilities field is taken to have set. */
export const DEFAULTS = CHACHA20_POLY1305;

/** The bits that choose the cipher; the rest are features that need both sides. */
export const CIPHER_BITS = AES_256_GCM | CHACHA20_POLY1305 | CASCADE;

export type CipherName = 'aes-256-gcm' | 'chacha20-poly1305' | 'cascade';

export interface Agreement {
  cipher: CipherName;
  /**
   * The feature bits both sides set, plus the one cipher bit actually used
   * (0x01, 0x02 or 0x04), so `agreed & AES_256_GCM` means "records use
   * AES-256-GCM alone".
   */
  agreed: number;
}

/** Capability words are kept as unsigned 32-bit numbers (see the file comment). */
export function u32(caps: number): number {
  return caps >>> 0;
}

/**
 * The agreement rule, identical on both sides: cascade if either side asks
 * for it; else AES-256-GCM if both have it; else ChaCha20-Poly1305. Every
 * other bit needs both sides.
 */
export function agree(ours: number, theirs: number): Agreement {
  const a = u32(ours);
  const b = u32(theirs);
  let cipher: CipherName;
  let bit: number;
  if ((a | b) & CASCADE) {
    cipher = 'cascade';
    bit = CASCADE;
  } else if (a & b & AES_256_GCM) {
    cipher = 'aes-256-gcm';
    bit = AES_256_GCM;
  } else {
    cipher = 'chacha20-poly1305';
    bit = CHACHA20_POLY1305;
  }
  return { cipher, agreed: u32((a & b & ~CIPHER_BITS) | bit) };
}

/** Whether WebCrypto's AES-GCM can be used here (secure contexts and Node ≥ 20). */
export function hasWebCryptoAes(): boolean {
  return typeof globalThis.crypto !== 'undefined' && typeof globalThis.crypto.subtle?.encrypt === 'function';
}

/**
 * The page's own capabilities. AES-256-GCM only through WebCrypto, which is
 * far faster than pure JavaScript AES; no resume, zstd, skip or identities,
 * which the page does not implement.
 */
export function pageCapabilities(webCryptoAes = hasWebCryptoAes()): number {
  return CHACHA20_POLY1305 | STOP_CODES | KEEPALIVE | UNHASHED_FRESH | (webCryptoAes ? AES_256_GCM : 0);
}
