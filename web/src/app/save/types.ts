// Where a received transfer goes. Three implementations, best first: the
// File System Access API (fsa.ts), a streamed download through the service
// worker (download.ts), and an in-memory Blob below a size limit (blob.ts).
//
// Every target writes as the data arrives and never holds the transfer in
// memory (except the Blob fallback, which is why it has a limit), and none
// leaves anything under a final name unless that file was verified.

import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export type SavePath = 'fsa' | 'sw-download' | 'blob';

/** The shape of the offer, as far as saving cares. */
export interface SaveOffer {
  files: number;
  dirs: number;
  bytes: number;
  /** The offer's top-level names (validated later, entry by entry). */
  names: readonly string[];
}

/** One manifest entry, after the receiver rules accepted its path. */
export interface SaveEntry {
  index: number;
  kind: 'file' | 'folder';
  /** Path components, each a valid name. */
  path: readonly string[];
  size: number;
  /** Unix seconds. */
  mtime: number;
  /** A stream (Offer kind 3): `size` is unknown until the end. */
  stream?: boolean;
}

/** Something at the destination that an entry would replace. */
export interface Conflict {
  /** The path as the user would see it (`/`-joined, not yet escaped). */
  path: string;
  /** False when replacing would need removing a folder, which this page never does. */
  replaceable: boolean;
}

/** One file being written. */
export interface FileSink {
  write(bytes: Uint8Array): Promise<void>;
  /** The file's length and hash were verified: put it under its final name. */
  commit(): Promise<void>;
  /** The file failed: remove what was written. */
  discard(): Promise<void>;
}

export interface SaveTarget {
  readonly path: SavePath;
  /** What `entry` would replace, if anything. Called for each manifest entry before any data. */
  conflict(entry: SaveEntry): Promise<Conflict | undefined>;
  /** The manifest is complete and conflicts resolved (`replace`): creates folders. */
  prepare(entries: readonly SaveEntry[], replace: boolean): Promise<void>;
  beginFile(entry: SaveEntry): Promise<FileSink>;
  /** Everything was received and verified. Returns what to tell the user, line by line. */
  finish(): Promise<string[]>;
  /** The transfer failed: remove temporary files; nothing unverified keeps a final name. */
  abort(reason: Error): Promise<void>;
}

/** Saving failed on this side (disk, permissions, the user cancelled a download). */
export class SaveError extends Error {
  constructor(
    message: string,
    /** Stop code to send (§8): 1 exists, 2 local problem, 3 no space, 7 user. */
    readonly stopCode: 1 | 2 | 3 | 7 = 2,
  ) {
    super(message);
    this.name = 'SaveError';
  }
}

const utf8 = new TextEncoder();

/**
 * The temporary name of a file being received (§8 "What the receiver
 * writes"): `.NAME.pqdrop-partial`, or `.pqdrop-HEX.pqdrop-partial` when that
 * would pass 255 bytes.
 */
export function partialName(name: string): string {
  const plain = `.${name}.pqdrop-partial`;
  if (utf8.encode(plain).length <= 255) return plain;
  return `.pqdrop-${bytesToHex(blake3(utf8.encode(name)).subarray(0, 16))}.pqdrop-partial`;
}

/** A DOMException (or anything) as a short reason, with the Stop code it calls for. */
export function saveError(what: string, e: unknown): SaveError {
  if (e instanceof SaveError) return e;
  const name = e instanceof DOMException ? e.name : '';
  const detail = e instanceof Error ? e.message : String(e);
  if (name === 'QuotaExceededError') return new SaveError(`${what}: no space left`, 3);
  if (name === 'NotAllowedError' || name === 'SecurityError') return new SaveError(`${what}: permission denied (${detail})`, 2);
  if (name === 'AbortError') return new SaveError(`${what}: cancelled`, 7);
  return new SaveError(`${what}: ${detail}`, 2);
}

/** For offers that need no saving (text, held in memory and shown). */
export const NO_SAVE: SaveTarget = {
  path: 'blob',
  conflict: async () => undefined,
  prepare: async () => undefined,
  beginFile: async () => {
    throw new SaveError('nothing can be saved here', 2);
  },
  finish: async () => [],
  abort: async () => undefined,
};
