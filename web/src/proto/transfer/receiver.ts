// The receiving side of a transfer (PROTOCOL.md §8), sans-IO.
//
// Plaintexts of opened records go in (`handleRecord`), plaintexts to seal
// come out (`pollTransmit`), and what the application must do comes out as
// events (`pollEvent`). Nothing here does I/O, reads a clock or buffers file
// data: time is passed in, and every chunk is handed on as it is parsed.
//
// This receiver speaks the capabilities the page sets: 0x02 (and maybe
// 0x01), 0x20 Stop codes, 0x40 keepalive, 0x100 unhashed fresh files. It
// never claims a file (no resume) and never skips one, so every file arrives
// whole from offset 0. Streams (Offer kind 3) are accepted and delivered as
// the data of one pseudo-entry, index 0, path "stream", whose size is not
// known in advance (`stream: true` on its file-start event).

import { blake3 } from '@noble/hashes/blake3.js';
import {
  ChunkFlags,
  encodeMessage,
  encodeMessages,
  EntryKind,
  HASH_LEN,
  knownStopCode,
  MsgType,
  OfferKind,
  StopCode,
  stopMessage,
  type Entry,
  type Msg,
  type Offer,
} from '../messages';
import { checkPath, CollisionSet, decodeUtf8, DEFAULT_MAX_ENTRIES, escapeName, firstComponent, offerAllowsFirstComponent } from '../names';

export { DEFAULT_MAX_ENTRIES };
import { Endpoint, Failure, violation } from './endpoint';
import { SILENT_SENDER_TIMEOUT_MS } from './liveness';

/** Largest text a receiver takes (§8); text is held in memory until verified. */
export const MAX_TEXT = 16 * 1024 * 1024;

const STOP_CODES = 0x20;
const UNHASHED_FRESH = 0x100;

export interface ReceiverOptions {
  /** The agreed capability bits (caps.ts `agree(...).agreed`). */
  agreed: number;
  /** Most entries an offer may announce (default 1,000,000); more is refused with Stop(6). */
  maxEntries?: number;
  /** Longest text accepted (default and at most 16 MiB); longer is refused with Stop(6). */
  maxText?: number;
  /** Idle timeout with capability 0x40 (default 60 s, at least 10 s). */
  idleTimeoutMs?: number;
  /** The time now; otherwise the clocks start at the first time given to any method. */
  nowMs?: number;
}

export type ReceiverEvent =
  /** Show it, then call accept() or refuse(). */
  | { type: 'offer'; offer: Offer }
  /** A validated manifest entry (folder or file); `path` is its checked text. */
  | { type: 'entry'; entry: Entry; path: string }
  /**
   * The manifest is complete and checked; Ready was queued; data follows.
   * To stop for lack of space instead, call localError(3, …) now, before the
   * next pollTransmit: the Stop then replaces the queued Ready.
   */
  | { type: 'ready' }
  | { type: 'file-start'; entry: Entry; path: string; stream?: true }
  /** File data in order; a view into the record's plaintext (see messages.ts). */
  | { type: 'data'; index: number; bytes: Uint8Array }
  /** The file's length (and hash, when one was sent) checked: only now may it be put in place. */
  | { type: 'file-end'; index: number }
  /** Offer kind 2, length and hash checked. `text` is decoded leniently; show it with escapeText. */
  | { type: 'text'; text: string; bytes: Uint8Array }
  /** DoneAck queued (in the final record): the transfer is complete. */
  | { type: 'done' }
  /** refuse() was called; Refuse is queued in the final record. */
  | { type: 'refused' }
  /**
   * The transfer failed. `peer`: the sender sent Stop/Abort (its code; 0 for
   * Abort or an unknown code; `reason` already escaped). `local`: this side
   * stopped it (a rule the sender broke, a limit, cancel, a local error, a
   * timeout) and queued Stop/Abort with `code` for the sender.
   */
  | { type: 'failed'; side: 'peer' | 'local'; code: number; reason: string };

type State =
  | 'expect-offer'
  | 'consent'
  | 'manifest'
  | 'between-files'
  | 'in-file'
  | 'stream'
  | 'stream-ended'
  | 'ended';

/** The pseudo-entry a stream's data is delivered under. */
export const STREAM_ENTRY: Readonly<Entry> = Object.freeze({
  index: 0,
  kind: EntryKind.File,
  path: new TextEncoder().encode('stream'),
  size: 0,
  flags: 0,
  mtime: 0,
});

const DIGEST = 16;
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

function digestOf(e: Entry): Uint8Array {
  return blake3(encodeMessage({ type: 'entry', entry: e })).subarray(0, DIGEST);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export class ReceiverMachine extends Endpoint<ReceiverEvent> {
  private readonly maxEntries: number;
  private readonly maxText: number;
  protected state: State = 'expect-offer';
  private offer: Offer | undefined;
  private out: Msg[] = [];
  private finalQueued = false;

  // Manifest: a 16-byte digest and a kind per entry, nothing else.
  private total = 0;
  private digests = new Uint8Array(0);
  private isFile = new Uint8Array(0);
  private seen = 0;
  private filesSeen = 0;
  private dirsSeen = 0;
  private bytesSeen = 0;
  private collisions: CollisionSet | undefined;
  /** The next entry index a FileStart may name (folders are passed over). */
  private next = 0;

  // The file, text or stream being received.
  private current: Entry | undefined;
  private remaining = 0;
  private received = 0;
  private hasher: ReturnType<typeof blake3.create> | undefined;
  private text: Uint8Array | undefined;

  constructor(opts: ReceiverOptions) {
    super('receiver', 'sender', { ...opts, silentTimeoutMs: SILENT_SENDER_TIMEOUT_MS });
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.maxText = Math.min(opts.maxText ?? MAX_TEXT, MAX_TEXT);
  }

  /** The user accepted the offer. Does nothing unless the offer awaits an answer. */
  accept(): void {
    if (this.state !== 'consent' || this.offer === undefined) return;
    const o = this.offer;
    this.live.setWaitingForUser(false);
    this.queue({ type: 'accept' });
    if (o.kind === OfferKind.Files) {
      this.total = o.files + o.dirs;
      this.digests = new Uint8Array(this.total * DIGEST);
      this.isFile = new Uint8Array(this.total);
      this.collisions = new CollisionSet(this.maxEntries);
      this.state = 'manifest';
      return;
    }
    this.hasher = blake3.create();
    this.received = 0;
    if (o.kind === OfferKind.Text) {
      this.text = new Uint8Array(o.bytes);
    } else {
      this.current = STREAM_ENTRY;
      this.events.push({ type: 'file-start', entry: STREAM_ENTRY, path: 'stream', stream: true });
    }
    this.state = 'stream';
  }

  /** The user refused the offer: Refuse goes in the final record. */
  refuse(): void {
    if (this.state !== 'consent') return;
    this.live.setWaitingForUser(false);
    this.queue({ type: 'refuse' });
    this.end();
    this.events.push({ type: 'refused' });
  }

  /**
   * The next plaintext to seal, in order: queued messages (all in one
   * record), or a KeepAlive when one is due. Call until it returns
   * undefined after every other call.
   */
  pollTransmit(nowMs: number): { plaintext: Uint8Array; final: boolean } | undefined {
    this.live.touch(nowMs);
    if (this.finalSent) return undefined;
    if (this.out.length > 0 || this.finalQueued) {
      const plaintext = encodeMessages(this.out);
      this.out = [];
      const final = this.finalQueued;
      if (final) this.finalSent = true;
      this.live.sealed(nowMs);
      return { plaintext, final };
    }
    if (this.state !== 'ended' && this.live.keepAliveDue(nowMs)) {
      this.live.sealed(nowMs);
      return { plaintext: Uint8Array.of(MsgType.KeepAlive), final: false };
    }
    return undefined;
  }

  // --- internals -------------------------------------------------------------

  private queue(m: Msg): void {
    this.out.push(m);
  }

  private end(): void {
    this.state = 'ended';
    this.finalQueued = true;
    this.current = undefined;
    this.hasher = undefined;
    this.text?.fill(0);
    this.text = undefined;
  }

  protected failLocal(code: number, reason: string): void {
    if (this.state === 'ended') return;
    this.out = [stopMessage(this.agreed, code, reason)];
    this.end();
    this.events.push({ type: 'failed', side: 'local', code, reason });
  }

  protected onMessage(m: Msg): void {
    switch (m.type) {
      case 'keepalive':
        return;
      case 'stop':
      case 'abort': {
        const code = m.type === 'stop' ? knownStopCode(m.code) : 0;
        this.out = [];
        this.end();
        this.events.push({ type: 'failed', side: 'peer', code, reason: escapeName(m.reason) });
        return;
      }
      case 'offer':
        return this.onOffer(m.offer);
      case 'entry':
        return this.onEntry(m.entry);
      case 'manifest-end':
        return this.onManifestEnd();
      case 'file-start':
        return this.onFileStart(m.entry, m.offset);
      case 'chunk':
        return this.onChunk(m.flags, m.data);
      case 'file-end':
        return this.onFileEnd(m.hash);
      case 'stream-end':
        return this.onStreamEnd(m.len, m.hash);
      case 'done':
        return this.onDone();
      case 'file-skip':
        this.expectData('FileSkip');
        return violation(`FileSkip for entry ${m.index}, but this receiver claimed no file (it sent no Have)`);
      case 'identity':
        return violation('Identity, but identities (capability 0x200) were not agreed');
      case 'accept':
      case 'refuse':
      case 'have':
      case 'ready':
      case 'done-ack':
      case 'skip':
        return violation(`${m.type} is a receiver's message, but the sender sent it`);
    }
  }

  /** Fails unless file data may come now (after Ready). */
  private expectData(what: string): void {
    if (this.state === 'manifest') violation(`${what} before the manifest ended (data before Ready)`);
    if (this.state === 'expect-offer' || this.state === 'consent') violation(`${what} before the offer was accepted`);
    if (this.state === 'stream' || this.state === 'stream-ended') violation(`${what} in a text or stream transfer`);
  }

  private onOffer(o: Offer): void {
    if (this.state !== 'expect-offer') violation('a second Offer');
    if (o.kind === OfferKind.Text && o.bytes > this.maxText) {
      throw new Failure(StopCode.OverLimit, `the text is ${o.bytes} bytes, over this receiver's limit of ${this.maxText}; send it as a file`);
    }
    if (o.kind === OfferKind.Files && o.files + o.dirs > this.maxEntries) {
      throw new Failure(StopCode.OverLimit, `the offer has ${o.files + o.dirs} entries, over this receiver's limit of ${this.maxEntries}`);
    }
    if (o.kind !== OfferKind.Files && (o.files !== 0 || o.dirs !== 0 || o.names.length !== 0)) {
      violation('a text or stream offer that counts files, folders or names');
    }
    if (o.kind === OfferKind.Stream && o.bytes !== 0) violation(`a stream offer of ${o.bytes} bytes (must be 0)`);
    this.offer = o;
    this.state = 'consent';
    this.live.setWaitingForUser(true);
    this.events.push({ type: 'offer', offer: o });
  }

  private onEntry(e: Entry): void {
    if (this.state !== 'manifest') {
      if (this.state === 'expect-offer' || this.state === 'consent') violation('an Entry before the offer was accepted');
      violation('an Entry after the manifest ended');
    }
    const o = this.offer!;
    if (e.index !== this.seen) violation(`entry ${e.index} where entry ${this.seen} was due (entries are numbered from 0 without gaps)`);
    if (this.seen >= this.total) violation(`more entries than the ${this.total} the offer announced`);
    const isFile = e.kind === EntryKind.File;
    if (isFile ? this.filesSeen >= o.files : this.dirsSeen >= o.dirs) {
      violation(`more ${isFile ? 'files' : 'folders'} than the ${isFile ? o.files : o.dirs} the offer announced`);
    }
    if (isFile && this.bytesSeen + e.size > o.bytes) violation(`the files' sizes add up to more than the ${o.bytes} bytes the offer announced`);
    const p = checkPath(e.path);
    if (!p.ok) violation(`refused entry ${e.index} "${p.shown}": ${p.reason}`);
    if (!offerAllowsFirstComponent(o.names, firstComponent(e.path))) {
      violation(`refused entry ${e.index} "${escapeName(p.path)}": its top-level name is not among the offer's names`);
    }
    const c = this.collisions!.insert(p.components, !isFile);
    if (c !== undefined) {
      const why = `refused entry ${e.index} "${escapeName(p.path)}": ${c.reason}`;
      if (c.limit) throw new Failure(StopCode.OverLimit, why);
      violation(why);
    }
    this.digests.set(digestOf(e), e.index * DIGEST);
    this.isFile[e.index] = isFile ? 1 : 0;
    this.seen++;
    if (isFile) {
      this.filesSeen++;
      this.bytesSeen += e.size;
    } else {
      this.dirsSeen++;
    }
    this.events.push({ type: 'entry', entry: e, path: p.path });
  }

  private onManifestEnd(): void {
    if (this.state !== 'manifest') violation('ManifestEnd out of order');
    const o = this.offer!;
    if (this.filesSeen !== o.files || this.dirsSeen !== o.dirs || this.bytesSeen !== o.bytes) {
      violation(
        `the manifest has ${this.filesSeen} files, ${this.dirsSeen} folders and ${this.bytesSeen} bytes, ` +
          `but the offer announced ${o.files}, ${o.dirs} and ${o.bytes}`,
      );
    }
    this.queue({ type: 'ready' });
    this.state = 'between-files';
    this.events.push({ type: 'ready' });
  }

  /** Moves `next` past folders to the next file entry (or the end). */
  private skipFolders(): void {
    while (this.next < this.total && this.isFile[this.next] === 0) this.next++;
  }

  private onFileStart(e: Entry, offset: number): void {
    this.expectData('FileStart');
    if (this.state === 'in-file') violation(`FileStart for entry ${e.index} inside entry ${this.current!.index}`);
    this.skipFolders();
    if (this.next >= this.total) violation(`FileStart for entry ${e.index} after every file was sent`);
    if (e.index !== this.next) violation(`FileStart for entry ${e.index} where entry ${this.next} was due (files come in index order)`);
    const pinned = this.digests.subarray(e.index * DIGEST, (e.index + 1) * DIGEST);
    if (!sameBytes(digestOf(e), pinned)) violation(`FileStart for entry ${e.index} differs from its manifest entry`);
    if (offset !== 0) violation(`FileStart for entry ${e.index} at offset ${offset}, but this receiver sent no Have (resume was not agreed)`);
    // The digest matched an entry whose path was checked, so this is valid UTF-8.
    const path = decodeUtf8(e.path) ?? '';
    this.current = e;
    this.remaining = e.size;
    this.received = 0;
    // A hash is owed only without 0x100 (the page never resumes, so offset is 0).
    this.hasher = this.agreed & UNHASHED_FRESH ? undefined : blake3.create();
    this.state = 'in-file';
    this.events.push({ type: 'file-start', entry: e, path });
  }

  private onChunk(flags: number, data: Uint8Array): void {
    if (this.state === 'stream') {
      if (flags !== ChunkFlags.Raw) violation('a zstd chunk in a text or stream transfer (those chunks are raw)');
      return this.onStreamChunk(data);
    }
    this.expectData('Chunk');
    if (this.state !== 'in-file') violation('a Chunk outside a file (no FileStart)');
    const e = this.current!;
    if (flags !== ChunkFlags.Raw) violation('a zstd chunk, but zstd (capability 0x10) was not agreed');
    // Counted against what remains when parsed, before anything is handed on.
    if (data.length > this.remaining) {
      violation(`a chunk of ${data.length} bytes goes past the end of entry ${e.index} (${this.remaining} bytes were left)`);
    }
    if (data.length === 0) return;
    this.remaining -= data.length;
    this.received += data.length;
    this.hasher?.update(data);
    this.events.push({ type: 'data', index: e.index, bytes: data });
  }

  private onFileEnd(hash: Uint8Array): void {
    this.expectData('FileEnd');
    if (this.state !== 'in-file') violation('FileEnd outside a file (no FileStart)');
    const e = this.current!;
    const owed = (this.agreed & UNHASHED_FRESH) === 0;
    if (owed && hash.length === 0) violation(`FileEnd for entry ${e.index} without a hash, but one is owed (capability 0x100 not agreed)`);
    if (!owed && hash.length !== 0) violation(`FileEnd for entry ${e.index} with a hash, but none is owed (capability 0x100 agreed, offset 0)`);
    if (this.remaining !== 0) {
      throw new Failure(StopCode.PeerDataBad, `entry ${e.index} ended after ${this.received} of its ${e.size} bytes`);
    }
    if (owed) {
      const h = this.hasher!.digest();
      if (!sameBytes(h, hash)) throw new Failure(StopCode.PeerDataBad, `entry ${e.index} failed verification: its BLAKE3 does not match`);
    }
    this.hasher = undefined;
    this.current = undefined;
    this.next = e.index + 1;
    this.state = 'between-files';
    this.events.push({ type: 'file-end', index: e.index });
  }

  private onStreamChunk(data: Uint8Array): void {
    if (this.text !== undefined) {
      if (data.length > this.text.length - this.received) {
        violation(`a chunk of ${data.length} bytes goes past the ${this.text.length} bytes of text the offer announced`);
      }
      this.text.set(data, this.received);
    } else if (data.length > 0) {
      this.events.push({ type: 'data', index: 0, bytes: data });
    }
    this.received += data.length;
    this.hasher!.update(data);
  }

  private onStreamEnd(len: number, hash: Uint8Array): void {
    if (this.state !== 'stream') {
      if (this.state === 'stream-ended') violation('a second StreamEnd');
      violation('StreamEnd in a files transfer');
    }
    if (hash.length !== HASH_LEN) violation('StreamEnd without a 32-byte hash');
    const what = this.text !== undefined ? 'text' : 'stream';
    if (len !== this.received || (this.text !== undefined && len !== this.text.length)) {
      throw new Failure(
        StopCode.PeerDataBad,
        `the ${what} ended after ${this.received} bytes, but StreamEnd says ${len}` +
          (this.text !== undefined ? ` and the offer ${this.text.length}` : ''),
      );
    }
    if (!sameBytes(this.hasher!.digest(), hash)) throw new Failure(StopCode.PeerDataBad, `the ${what} failed verification: its BLAKE3 does not match`);
    this.hasher = undefined;
    this.state = 'stream-ended';
    if (this.text !== undefined) {
      const bytes = this.text;
      this.text = undefined;
      this.events.push({ type: 'text', text: lenientUtf8.decode(bytes), bytes });
    } else {
      this.events.push({ type: 'file-end', index: 0 });
    }
  }

  private onDone(): void {
    if (this.state === 'stream') violation('Done before StreamEnd');
    if (this.state !== 'stream-ended') {
      this.expectData('Done');
      if (this.state === 'in-file') violation(`Done inside entry ${this.current!.index} (no FileEnd)`);
      this.skipFolders();
      if (this.next < this.total) violation(`Done before every file was sent (entry ${this.next} is missing)`);
    }
    this.queue({ type: 'done-ack' });
    this.done = true;
    this.end();
    this.events.push({ type: 'done' });
  }
}
