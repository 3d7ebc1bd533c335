// The sending side of a transfer (PROTOCOL.md §8), sans-IO.
//
// The machine is given the list of entries (or a text) up front. It produces
// the plaintexts to seal (`pollTransmit`), takes the receiver's opened
// records (`handleRecord`), and asks the application for file data with
// 'need-data' events, which the application answers with `pushData`. It
// holds at most about two records of data: a new request is made only when
// no complete record waits to be sealed.
//
// Capabilities as the page sets them: no resume (so every file starts at
// offset 0 and a Have is a violation), no zstd (raw chunks only), no skip,
// no identities. With 0x100 a file's FileEnd carries an empty hash;
// otherwise the BLAKE3 of the file, hashed as the data passes.

import { blake3 } from '@noble/hashes/blake3.js';
import {
  chunkHeader,
  chunkSize,
  encodeMessage,
  EntryKind,
  knownStopCode,
  MAX_OFFER_NAMES,
  MAX_PLAINTEXT,
  MsgType,
  OfferKind,
  StopCode,
  stopMessage,
  type Entry,
  type Msg,
  type Offer,
} from '../messages';
import { checkPath, CollisionSet, escapeName } from '../names';
import { Endpoint, Failure, violation } from './endpoint';

/** Senders use chunks of 256 KiB (§8 Sizes). */
export const CHUNK_SIZE = 256 * 1024;
/** A request smaller than this would make a needlessly small read: the record is sent first. */
const MIN_REQUEST = 16 * 1024;

const UNHASHED_FRESH = 0x100;

export type SendEntry =
  | { kind: 'file'; path: string; size: number; mtime?: number }
  | { kind: 'folder'; path: string; mtime?: number };

export interface SenderOptions {
  agreed: number;
  /** Files and folders, '/'-separated relative paths, folders before their contents. */
  entries?: readonly SendEntry[];
  /** A text to send instead (Offer kind 2; bytes are not copied); the receiver takes at most 16 MiB. */
  text?: string | Uint8Array;
  /** Idle timeout with capability 0x40 (default 60 s, at least 10 s); without it the sender waits without limit. */
  idleTimeoutMs?: number;
  nowMs?: number;
}

export type SenderEvent =
  | { type: 'accepted' }
  /** The receiver refused; an empty final record is queued. */
  | { type: 'refused' }
  /** Read up to `max` bytes of entry `index` from `offset` and call pushData (or endFile at end of file). */
  | { type: 'need-data'; index: number; offset: number; max: number }
  /** `offset` of `size` bytes of entry `index` queued; `sent` of `total` bytes overall. */
  | { type: 'progress'; index: number; offset: number; size: number; sent: number; total: number }
  /** DoneAck arrived: every file was received and verified; an empty final record is queued. */
  | { type: 'done' }
  | { type: 'failed'; side: 'peer' | 'local'; code: number; reason: string };


/** Largest raw chunk data that fits in `room` bytes of a record, at most 256 KiB. */
function fitChunk(room: number): number {
  let len = Math.min(CHUNK_SIZE, room - 7);
  if (len < 0) len = 0;
  while (len < CHUNK_SIZE && chunkSize(len + 1) <= room) len++;
  return chunkSize(len) <= room ? len : -1;
}

/** Data bytes that fit in `room` bytes as a run of chunks. */
function capacity(room: number): number {
  let cap = 0;
  for (;;) {
    const c = fitChunk(room);
    if (c <= 0) return cap;
    cap += c;
    room -= chunkSize(c);
  }
}

/** Packs whole messages into record plaintexts of at most 1 MiB. */
class RecordBuilder {
  private buf: Uint8Array | undefined;
  len = 0;

  get room(): number {
    return MAX_PLAINTEXT - this.len;
  }

  private space(n: number): Uint8Array {
    this.buf ??= new Uint8Array(MAX_PLAINTEXT);
    if (n > this.room) throw new Error('record overflow');
    return this.buf;
  }

  append(b: Uint8Array): void {
    this.space(b.length).set(b, this.len);
    this.len += b.length;
  }

  /** The plaintext so far, and a fresh start. Small records are copied so the 1 MiB buffer is not kept alive. */
  take(): Uint8Array {
    const b = this.buf ?? new Uint8Array(0);
    const out = this.len < 64 * 1024 ? b.slice(0, this.len) : b.subarray(0, this.len);
    this.buf = undefined;
    this.len = 0;
    return out;
  }
}

type State = 'offered' | 'manifest' | 'wait-ready' | 'files' | 'text' | 'wait-done-ack' | 'ended';

export class SenderMachine extends Endpoint<SenderEvent> {
  private readonly entries: Entry[] = [];
  private readonly textBytes: Uint8Array | undefined;
  private readonly totalBytes: number;
  protected state: State = 'offered';
  private builder = new RecordBuilder();
  private ready: Uint8Array[] = [];
  private finalPlain: Uint8Array | undefined;

  /** Next entry to list (manifest) or to consider sending (files); text offset for text. */
  private cursor = 0;
  private current: Entry | undefined;
  private offset = 0;
  private hasher: ReturnType<typeof blake3.create> | undefined;
  private requested: number | undefined;
  private sent = 0;

  constructor(opts: SenderOptions) {
    super('sender', 'receiver', opts);
    if ((opts.entries === undefined) === (opts.text === undefined)) throw new RangeError('give either entries or a text to send');
    let offer: Offer;
    if (opts.text !== undefined) {
      this.textBytes = typeof opts.text === 'string' ? new TextEncoder().encode(opts.text) : opts.text;
      this.totalBytes = this.textBytes.length;
      offer = { kind: OfferKind.Text, files: 0, dirs: 0, bytes: this.textBytes.length, names: [] };
    } else {
      offer = this.buildManifest(opts.entries!);
      this.totalBytes = offer.bytes;
    }
    this.builder.append(encodeMessage({ type: 'offer', offer }));
  }

  /** Checks the entries against the receiver rules (a CLI receiver would refuse them) and builds the Offer. */
  private buildManifest(list: readonly SendEntry[]): Offer {
    const collisions = new CollisionSet(Number.MAX_SAFE_INTEGER);
    const names: Uint8Array[] = [];
    const seenNames = new Set<string>();
    let files = 0;
    let bytes = 0;
    const enc = new TextEncoder();
    list.forEach((s, index) => {
      const path = enc.encode(s.path);
      const p = checkPath(path);
      if (!p.ok) throw new RangeError(`cannot send "${p.shown}": ${p.reason}`);
      if (p.path !== s.path) throw new RangeError(`cannot send "${escapeName(s.path)}": not valid Unicode`);
      const c = collisions.insert(p.components, s.kind === 'folder');
      if (c !== undefined) throw new RangeError(`cannot send "${escapeName(s.path)}": ${c.reason}`);
      const size = s.kind === 'file' ? s.size : 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`cannot send "${escapeName(s.path)}": bad size ${size}`);
      const m = s.mtime ?? 0;
      // Whole seconds; 0 for times before the epoch (§8).
      const mtime = Number.isFinite(m) && m > 0 ? Math.floor(m) : 0;
      this.entries.push({ index, kind: s.kind === 'file' ? EntryKind.File : EntryKind.Folder, path, size, flags: 0, mtime });
      if (s.kind === 'file') {
        files++;
        bytes += size;
      }
      const top = p.components[0]!;
      if (!seenNames.has(top) && names.length < MAX_OFFER_NAMES) {
        seenNames.add(top);
        names.push(enc.encode(top));
      }
    });
    if (!Number.isSafeInteger(bytes)) throw new RangeError('the files add up to more bytes than can be counted');
    return { kind: OfferKind.Files, files, dirs: list.length - files, bytes, names };
  }

  /** True once this side's final record has been handed out by pollTransmit: nothing more will be sent. */
  /**
   * Data for the outstanding 'need-data' request: at most `max` bytes of
   * entry `index`, from its `offset`. Throws RangeError on a call that does
   * not answer the request (a bug in the caller); does nothing once ended.
   */
  pushData(index: number, bytes: Uint8Array): void {
    if (this.state === 'ended') return;
    const e = this.current;
    if (this.state !== 'files' || e === undefined || this.requested === undefined || e.index !== index) {
      throw new RangeError(`pushData(${index}) without a matching need-data request`);
    }
    if (bytes.length > this.requested) throw new RangeError(`pushData(${index}): ${bytes.length} bytes, more than the ${this.requested} requested`);
    this.requested = undefined;
    let off = 0;
    while (off < bytes.length) {
      let n = fitChunk(this.builder.room);
      if (n <= 0) {
        this.flush();
        n = fitChunk(this.builder.room);
      }
      n = Math.min(n, bytes.length - off);
      this.builder.append(chunkHeader(n));
      this.builder.append(bytes.subarray(off, off + n));
      off += n;
    }
    this.hasher?.update(bytes);
    this.offset += bytes.length;
    this.sent += bytes.length;
    this.events.push({ type: 'progress', index, offset: this.offset, size: e.size, sent: this.sent, total: this.totalBytes });
    if (this.offset === e.size) this.endCurrent();
    this.produce();
  }

  /**
   * The source of entry `index` has no more bytes. Nothing to do when all
   * of it was pushed; if it is shorter than announced the transfer fails
   * with Stop(2): the file changed while it was being sent.
   */
  endFile(index: number): void {
    const e = this.current;
    if (this.state !== 'files' || e === undefined || e.index !== index) return;
    this.failLocal(
      StopCode.Local,
      `"${escapeName(new TextDecoder().decode(e.path))}" changed while it was being sent: ${this.offset} of its ${e.size} bytes were there`,
    );
  }

  /**
   * The next plaintext to seal. Call until it returns undefined after every
   * other call, and then drain pollEvent (taking a record may make room for
   * the next 'need-data').
   */
  pollTransmit(nowMs: number): { plaintext: Uint8Array; final: boolean } | undefined {
    this.live.touch(nowMs);
    if (this.finalSent) return undefined;
    if (this.state === 'ended') {
      this.finalSent = true;
      this.live.sealed(nowMs);
      return { plaintext: this.finalPlain ?? new Uint8Array(0), final: true };
    }
    this.produce();
    let plaintext = this.ready.shift();
    // A partial record waits while the application reads data that will fill
    // it, but not past the keepalive interval.
    if (plaintext === undefined && this.builder.len > 0 && (this.requested === undefined || this.live.keepAliveDue(nowMs))) {
      plaintext = this.builder.take();
    }
    if (plaintext === undefined && this.live.keepAliveDue(nowMs)) plaintext = Uint8Array.of(MsgType.KeepAlive);
    if (plaintext === undefined) return undefined;
    this.live.sealed(nowMs);
    this.produce();
    return { plaintext, final: false };
  }

  // --- internals -------------------------------------------------------------

  private flush(): void {
    if (this.builder.len > 0) this.ready.push(this.builder.take());
  }

  private add(m: Msg): void {
    const b = encodeMessage(m);
    if (b.length > this.builder.room) this.flush();
    this.builder.append(b);
  }

  private endWith(finalPlain: Uint8Array | undefined): void {
    this.state = 'ended';
    this.finalPlain = finalPlain;
    this.builder = new RecordBuilder();
    this.ready = [];
    this.current = undefined;
    this.requested = undefined;
    this.hasher = undefined;
  }

  protected failLocal(code: number, reason: string): void {
    if (this.state === 'ended') return;
    this.endWith(encodeMessage(stopMessage(this.agreed, code, reason)));
    this.events.push({ type: 'failed', side: 'local', code, reason });
  }

  protected onMessage(m: Msg): void {
    switch (m.type) {
      case 'keepalive':
        return;
      case 'stop':
      case 'abort': {
        const code = m.type === 'stop' ? knownStopCode(m.code) : 0;
        this.endWith(undefined);
        this.events.push({ type: 'failed', side: 'peer', code, reason: escapeName(m.reason) });
        return;
      }
      case 'accept':
        if (this.state !== 'offered') violation('Accept out of order');
        this.state = this.textBytes !== undefined ? 'text' : 'manifest';
        this.events.push({ type: 'accepted' });
        this.produce();
        return;
      case 'refuse':
        if (this.state !== 'offered') violation('Refuse out of order');
        this.endWith(undefined);
        this.events.push({ type: 'refused' });
        return;
      case 'ready':
        if (this.state !== 'wait-ready') violation(this.state === 'manifest' ? 'Ready before the manifest ended' : 'Ready out of order');
        this.state = 'files';
        this.cursor = 0;
        this.produce();
        return;
      case 'done-ack':
        if (this.state !== 'wait-done-ack') violation('DoneAck before Done');
        this.done = true;
        this.endWith(undefined);
        this.events.push({ type: 'done' });
        return;
      case 'have':
        return violation(`Have for entry ${m.index}, but resume (capability 0x08) was not agreed`);
      case 'skip':
        return violation(`Skip for entry ${m.index}, but skip (capability 0x80) was not agreed`);
      case 'identity':
        return violation('Identity, but identities (capability 0x200) were not agreed');
      default:
        return violation(`${m.type} is a sender's message, but the receiver sent it`);
    }
  }

  /**
   * Makes progress without the application: lists the manifest, sends text,
   * starts files (and finishes empty ones), asks for data. Stops once a
   * complete record waits, so memory stays bounded.
   */
  private produce(): void {
    while (this.ready.length === 0 && this.state !== 'ended') {
      if (this.state === 'manifest') {
        const e = this.entries[this.cursor];
        if (e !== undefined) {
          this.add({ type: 'entry', entry: e });
          this.cursor++;
        } else {
          this.add({ type: 'manifest-end' });
          this.flush();
          this.state = 'wait-ready';
        }
      } else if (this.state === 'text') {
        const t = this.textBytes!;
        if (this.cursor < t.length) {
          let n = fitChunk(this.builder.room);
          if (n <= 0) {
            this.flush();
            continue;
          }
          n = Math.min(n, t.length - this.cursor);
          this.builder.append(chunkHeader(n));
          this.builder.append(t.subarray(this.cursor, this.cursor + n));
          this.cursor += n;
        } else {
          this.add({ type: 'stream-end', len: t.length, hash: blake3(t) });
          this.add({ type: 'done' });
          this.flush();
          this.state = 'wait-done-ack';
        }
      } else if (this.state === 'files') {
        if (this.current !== undefined) {
          this.request();
          return;
        }
        this.startNextFile();
      } else {
        return;
      }
    }
  }

  /** FileStart for the next file entry, FileEnd at once if it is empty; Done after the last. */
  private startNextFile(): void {
    while (this.cursor < this.entries.length && this.entries[this.cursor]!.kind !== EntryKind.File) this.cursor++;
    const e = this.entries[this.cursor];
    if (e === undefined) {
      this.add({ type: 'done' });
      this.flush();
      this.state = 'wait-done-ack';
      return;
    }
    this.cursor++;
    this.add({ type: 'file-start', entry: e, offset: 0 });
    this.current = e;
    this.offset = 0;
    this.hasher = this.agreed & UNHASHED_FRESH ? undefined : blake3.create();
    if (e.size === 0) {
      this.events.push({ type: 'progress', index: e.index, offset: 0, size: 0, sent: this.sent, total: this.totalBytes });
      this.endCurrent();
    }
  }

  private endCurrent(): void {
    const hash = this.hasher ? this.hasher.digest() : new Uint8Array(0);
    this.add({ type: 'file-end', hash });
    this.current = undefined;
    this.hasher = undefined;
  }

  /** Emits 'need-data' for the current file unless one is outstanding. */
  private request(): void {
    const e = this.current!;
    if (this.requested !== undefined) return;
    const left = e.size - this.offset;
    const max = Math.min(left, capacity(this.builder.room));
    if (max < left && max < MIN_REQUEST) {
      this.flush();
      return; // asked again once that record was taken
    }
    this.requested = max;
    this.events.push({ type: 'need-data', index: e.index, offset: this.offset, max });
  }
}
