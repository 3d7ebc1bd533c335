// One end-to-end session over a paired relay connection: the handshake
// (§4–§6, with the 30 s limit of §8), then the transfer (§7–§8) through the
// record pump, for either role:
//
//   receive(): the page typed the code (requester) and saves what it is sent;
//   send():    the page made the code (accepter) and sends files.
//
// Every way a session can fail ends in a SessionFailure whose `kind` is one
// of the page's error kinds, with a message that says whose side is at fault.

import { FrameDecoder, ProtocolError } from './proto/codec';
import type { Code } from './proto/code';
import { abortFrame, AbortReason, Handshake, HandshakeError, type Established } from './proto/handshake';
import { EntryKind, OfferKind, StopCode, type Offer } from './proto/messages';
import { checkPath, escapeName } from './proto/names';
import { ReceiverMachine, SenderMachine, type ReceiverEvent, type SenderEvent, type SendEntry } from './proto/transfer';
import { Pump } from './net/pump';
import type { ByteStream } from './net/stream';
import { SaveError, type Conflict, type FileSink, type SaveEntry, type SaveOffer, type SaveTarget } from './app/save/types';

export type FailureKind =
  | 'wrong-code'
  | 'declined'
  | 'disconnected'
  | 'integrity'
  | 'refused'
  | 'cancelled'
  | 'local'
  | 'relay'
  | 'protocol'
  | 'too-large';

/** A session that did not complete. `message` is for the user. */
export class SessionFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'SessionFailure';
  }
}

/** §8: "The handshake must complete within 30 s." */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

export type Role = 'sender' | 'receiver';

/**
 * Runs the handshake on `stream`. Frames after the handshake stay in
 * `decoder` for the record layer. Throws SessionFailure.
 */
export async function runHandshake(
  stream: ByteStream,
  hs: Handshake,
  decoder: FrameDecoder,
  role: Role,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Established> {
  const peer = role === 'receiver' ? 'sender' : 'receiver';
  let timedOut = false;
  let aborted = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.close();
  }, opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
  const onAbort = () => {
    aborted = true;
    stream.close();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const sendAbort = async (frame: Uint8Array | undefined) => {
    if (frame === undefined) return;
    try {
      await stream.write(frame);
    } catch {
      // the connection is gone already
    }
  };
  try {
    for (const f of hs.start()) await stream.write(f);
    for (;;) {
      let frame = decoder.next();
      while (frame === undefined) {
        const bytes = await stream.read();
        if (bytes === null) {
          if (aborted) throw new SessionFailure('cancelled', 'You cancelled before the connection was set up.');
          if (timedOut) {
            throw new SessionFailure('disconnected', `The ${peer} did not complete the handshake within ${Math.round((opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS) / 1000)} s.`);
          }
          throw new SessionFailure(
            'disconnected',
            `The connection ended during the handshake${stream.endReason !== undefined ? ` (${stream.endReason})` : ''}: the ${peer} left, or the relay closed the connection.`,
          );
        }
        decoder.push(bytes);
        frame = decoder.next();
      }
      const out = await hs.receive(frame);
      for (const f of out) await stream.write(f);
      if (hs.status === 3) {
        decoder.handshakeComplete();
        return hs.established!;
      }
    }
  } catch (e) {
    if (e instanceof SessionFailure) throw e;
    if (e instanceof HandshakeError) {
      await sendAbort(e.abortFrame);
      if (e.kind === 'wrong-code') {
        throw new SessionFailure(
          'wrong-code',
          role === 'receiver'
            ? 'Wrong code: the sender has a different code. Check the code and try again; nothing was received.'
            : 'Wrong code: the receiver typed a different code. Nothing was sent; the receiver can try again with a new code.',
        );
      }
      throw new SessionFailure('protocol', `The handshake failed: ${e.message}.`);
    }
    if (e instanceof ProtocolError) {
      await sendAbort(abortFrame(AbortReason.Protocol));
      throw new SessionFailure('protocol', `The ${peer} broke the handshake protocol: ${e.message}.`);
    }
    throw new SessionFailure('disconnected', `The connection failed during the handshake: ${e instanceof Error ? e.message : String(e)}.`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** What the user needs to decide on an offer. Names are escaped (§8) and must still be shown as text. */
export interface OfferView {
  kind: 'files' | 'text' | 'stream';
  files: number;
  dirs: number;
  bytes: number;
  /** The offer's top-level names, escaped for display. */
  names: string[];
  /** False when the sender listed 16 names: the list may have been cut. */
  complete: boolean;
  /** For choosing where to save: the names that are valid single path components, raw. */
  save: SaveOffer;
}

export interface ProgressInfo {
  done: number;
  total: number;
  /** The file being moved, escaped; undefined between files. */
  file?: string;
}

export interface ReceiveHooks {
  /** Paired: the handshake starts. */
  onHandshake?(): void;
  /**
   * The offer arrived. Resolve with where to save to accept it, or null to
   * decline. Reject with SaveError (a local problem) or SessionFailure
   * (e.g. 'too-large') to stop the transfer instead.
   */
  onOffer(offer: OfferView): Promise<SaveTarget | null>;
  /** Things at the destination would be replaced: resolve true to replace them. */
  onConflicts(conflicts: readonly Conflict[]): Promise<boolean>;
  /** Data started moving (after the manifest). */
  onStart?(total: number): void;
  onProgress?(p: ProgressInfo): void;
}

export interface ReceiveDone {
  /** What the save target reports (which file or folder, or that a download started). */
  lines: string[];
  /** A text transfer's text (show it with escapeText). */
  text?: string;
  bytes: number;
}

export interface SessionOptions {
  stream: ByteStream;
  code: Code;
  caps: number;
  signal?: AbortSignal;
  handshakeTimeoutMs?: number;
  now?: () => number;
}

/** A Stop code and reason for an error thrown while saving. */
function stopFor(e: unknown): { code: number; reason: string } {
  if (e instanceof SaveError) return { code: e.stopCode, reason: e.message };
  if (e instanceof SessionFailure) return { code: e.kind === 'too-large' ? StopCode.OverLimit : StopCode.Local, reason: e.message };
  return { code: StopCode.Local, reason: e instanceof Error ? e.message : String(e) };
}

const STOP_MEANING: Record<number, string> = {
  0: 'no reason given',
  1: 'a file exists there and was not replaced',
  2: 'a problem on its side (disk, permissions)',
  3: 'no space left on its side',
  4: 'it says this page broke the protocol',
  5: "it says this page's data failed verification",
  6: 'the transfer is over one of its limits',
  7: 'its user cancelled',
  8: 'an internal error on its side',
};

/** The failure for a machine's 'failed' event. */
export function classifyFailure(role: Role, side: 'peer' | 'local', code: number, reason: string): SessionFailure {
  const peer = role === 'receiver' ? 'sender' : 'receiver';
  if (side === 'peer') {
    const said = reason !== '' ? `: “${reason}”` : '';
    const msg = `The ${peer} stopped the transfer (${STOP_MEANING[code] ?? STOP_MEANING[0]})${said}.`;
    if (code === StopCode.PeerDataBad) return new SessionFailure('integrity', msg);
    if (code === StopCode.PeerViolation || code === StopCode.Internal) return new SessionFailure('protocol', msg);
    return new SessionFailure('cancelled', msg);
  }
  const text = reason.charAt(0).toUpperCase() + reason.slice(1);
  switch (code) {
    case StopCode.PeerViolation:
      if (/refused entry/.test(reason)) return new SessionFailure('refused', `${text}. The transfer was refused; nothing was saved under that name.`);
      return new SessionFailure('protocol', `${text}.`);
    case StopCode.PeerDataBad:
      return new SessionFailure(
        'integrity',
        role === 'receiver'
          ? `The sender's data failed verification: ${reason}. The file was not kept.`
          : `The receiver's data failed verification: ${reason}.`,
      );
    case StopCode.OverLimit:
      return new SessionFailure(role === 'receiver' ? 'refused' : 'protocol', `${text}.`);
    case StopCode.Interrupted:
      return new SessionFailure('cancelled', `${text}.`);
    case StopCode.Exists:
    case StopCode.Local:
    case StopCode.NoSpace:
      return new SessionFailure('local', `${text}.`);
    case StopCode.Unspecified:
      return new SessionFailure('disconnected', `${text}.`);
    default:
      return new SessionFailure('protocol', `${text}.`);
  }
}

function offerView(o: Offer): OfferView {
  const kind = o.kind === OfferKind.Text ? 'text' : o.kind === OfferKind.Stream ? 'stream' : 'files';
  const raw: string[] = [];
  for (const n of o.names) {
    const p = checkPath(n);
    if (p.ok && p.components.length === 1) raw.push(p.path);
  }
  const save: SaveOffer =
    kind === 'files'
      ? { files: o.files, dirs: o.dirs, bytes: o.bytes, names: raw }
      : { files: 1, dirs: 0, bytes: o.bytes, names: [kind === 'text' ? 'text.txt' : 'stream'] };
  return { kind, files: o.files, dirs: o.dirs, bytes: o.bytes, names: o.names.map((n) => escapeName(n)), complete: o.names.length < 16, save };
}

/**
 * Receives over a paired connection as the requester. Resolves when the
 * transfer completed and everything was saved; throws SessionFailure.
 */
export async function receive(opts: SessionOptions & { hooks: ReceiveHooks }): Promise<ReceiveDone> {
  const { stream, hooks } = opts;
  const now = opts.now ?? (() => performance.now());
  const decoder = new FrameDecoder();
  hooks.onHandshake?.();
  const est = await runHandshake(stream, Handshake.requester({ code: opts.code, caps: opts.caps }), decoder, 'receiver', {
    timeoutMs: opts.handshakeTimeoutMs,
    signal: opts.signal,
  });
  const m = new ReceiverMachine({ agreed: est.agreed, nowMs: now() });

  let target: SaveTarget | undefined;
  let sink: FileSink | undefined;
  const entries: SaveEntry[] = [];
  const conflicts: Conflict[] = [];
  let total = 0;
  let done = 0;
  let fileName: string | undefined;
  let failure: SessionFailure | undefined;
  let forced: SessionFailure | undefined;
  let result: ReceiveDone | undefined;

  const pump: Pump<ReceiverEvent> = new Pump<ReceiverEvent>({
    stream,
    decoder,
    established: est,
    machine: m,
    readBackpressure: true,
    now,
    errorCode: (e) => {
      if (e instanceof SessionFailure) forced ??= e;
      return stopFor(e);
    },
    onEvent: async (ev) => {
      switch (ev.type) {
        case 'offer': {
          const view = offerView(ev.offer);
          total = ev.offer.bytes;
          // Not awaited here: the pump keeps reading (KeepAlives, a Stop) while the user decides.
          hooks.onOffer(view).then(
            (t) => {
              if (m.ended) {
                void t?.abort(new Error('the transfer ended'));
                return;
              }
              if (t === null) {
                m.refuse();
              } else {
                target = t;
                m.accept();
                hooks.onStart?.(total);
              }
              pump.flush();
            },
            (e: unknown) => {
              if (e instanceof SessionFailure) forced ??= e;
              const s = stopFor(e);
              if (!m.ended) pump.fail(s.code, s.reason);
            },
          );
          return;
        }
        case 'entry': {
          const path = ev.path.split('/');
          const entry: SaveEntry = { index: ev.entry.index, kind: ev.entry.kind === EntryKind.File ? 'file' : 'folder', path, size: ev.entry.size, mtime: ev.entry.mtime };
          entries.push(entry);
          const c = await target!.conflict(entry);
          if (c !== undefined) conflicts.push(c);
          return;
        }
        case 'ready': {
          if (conflicts.length === 0) {
            await target!.prepare(entries, false);
            return;
          }
          // Ready was queued; it stays queued until the user answers.
          pump.setHold(true);
          hooks.onConflicts(conflicts).then(
            async (replace) => {
              if (m.ended) return;
              if (!replace || conflicts.some((c) => !c.replaceable)) {
                forced ??= new SessionFailure('cancelled', `Stopped: ${conflicts.length === 1 ? `“${escapeName(conflicts[0]!.path)}” already exists` : `${conflicts.length} files already exist`} in the folder you chose, and were not replaced.`);
                pump.fail(StopCode.Exists, `${escapeName(conflicts[0]!.path)} already exists at the receiver, which did not replace it`);
                return;
              }
              try {
                await target!.prepare(entries, true);
                pump.setHold(false);
              } catch (e) {
                const s = stopFor(e);
                pump.fail(s.code, s.reason);
              }
            },
            () => pump.fail(StopCode.Exists, 'files exist at the receiver'),
          );
          return;
        }
        case 'file-start': {
          fileName = escapeName(ev.path);
          const entry: SaveEntry = {
            index: ev.entry.index,
            kind: 'file',
            path: ev.path.split('/'),
            size: ev.entry.size,
            mtime: ev.entry.mtime,
            stream: ev.stream === true,
          };
          sink = await target!.beginFile(entry);
          hooks.onProgress?.({ done, total, file: fileName });
          return;
        }
        case 'data':
          await sink!.write(ev.bytes);
          done += ev.bytes.length;
          hooks.onProgress?.({ done, total, file: fileName });
          return;
        case 'file-end': {
          const s = sink!;
          sink = undefined;
          await s.commit();
          return;
        }
        case 'text':
          result = { lines: [], text: ev.text, bytes: ev.bytes.length };
          return;
        case 'done': {
          // DoneAck was queued; it leaves once everything is saved.
          pump.setHold(true);
          try {
            const lines = target !== undefined && result?.text === undefined ? await target.finish() : [];
            result = { lines, text: result?.text, bytes: done };
          } catch (e) {
            // Too late to tell the sender (it has every byte); the user must know.
            failure = new SessionFailure('local', `Saving failed at the end: ${stopFor(e).reason}.`);
          }
          pump.setHold(false);
          return;
        }
        case 'refused':
          failure = new SessionFailure('declined', 'You declined the transfer; the sender was told.');
          return;
        case 'failed': {
          failure = forced ?? classifyFailure('receiver', ev.side, ev.code, ev.reason);
          const err = new SaveError(failure.message);
          await sink?.discard().catch(() => undefined);
          sink = undefined;
          await target?.abort(err).catch(() => undefined);
          return;
        }
      }
    },
  });

  const onAbort = () => {
    forced ??= new SessionFailure('cancelled', 'You cancelled the transfer; the sender was told.');
    pump.cancel('the receiver cancelled');
    // At once, not after the event being handled: it may be waiting on the save target itself.
    void target?.abort(new SaveError('cancelled', StopCode.Interrupted)).catch(() => undefined);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const end = await pump.run();
    if (failure !== undefined) throw failure;
    if (end.kind === 'disconnected' || result === undefined) {
      await sink?.discard().catch(() => undefined);
      await target?.abort(new Error('disconnected')).catch(() => undefined);
      if (end.kind === 'disconnected' && end.overloaded) {
        throw new SessionFailure(
          'local',
          'This browser could not save the data as fast as it arrived (more than 64 MiB were waiting), so the transfer was stopped. A browser with WebSocketStream (Chrome, Edge) slows the sender down instead. Nothing unfinished was kept.',
        );
      }
      throw new SessionFailure(
        'disconnected',
        `The connection to the sender was lost before the transfer finished${end.kind === 'disconnected' && end.reason !== undefined ? ` (${end.reason})` : ''}. Nothing unfinished was kept.`,
      );
    }
    return result;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** One thing to send: a manifest entry and, for a file, where its bytes come from. */
export interface SendItem {
  entry: SendEntry;
  file?: Blob;
}

export interface SendHooks {
  onHandshake?(): void;
  /** The receiver accepted; data will follow its Ready. */
  onAccepted?(total: number): void;
  onProgress?(p: ProgressInfo): void;
}

export interface SendDone {
  bytes: number;
}

/** Reads a Blob in large blocks, one block ahead, so the disk and the cipher overlap. */
class BlockReader {
  private static readonly BLOCK = 4 * 1024 * 1024;
  private buf: Uint8Array = new Uint8Array(0);
  private bufAt = 0;
  private next: Promise<Uint8Array> | undefined;
  private nextAt = 0;

  constructor(private readonly blob: Blob) {}

  private fetch(at: number): Promise<Uint8Array> {
    const end = Math.min(this.blob.size, at + BlockReader.BLOCK);
    const p = this.blob.slice(at, end).arrayBuffer().then((b) => new Uint8Array(b));
    p.catch(() => undefined);
    return p;
  }

  /** Up to `max` bytes at `offset` (reads are sequential); empty at the end of the blob. */
  async read(offset: number, max: number): Promise<Uint8Array> {
    if (offset < this.bufAt || offset >= this.bufAt + this.buf.length) {
      if (this.next !== undefined && this.nextAt === offset) {
        this.buf = await this.next;
      } else {
        this.buf = await this.fetch(offset);
      }
      this.bufAt = offset;
      this.next = undefined;
      const after = offset + this.buf.length;
      if (this.buf.length > 0 && after < this.blob.size) {
        this.nextAt = after;
        this.next = this.fetch(after);
      }
    }
    const start = offset - this.bufAt;
    return this.buf.subarray(start, Math.min(this.buf.length, start + max));
  }
}

/** Checks a selection against the receiver rules before anything is sent; throws RangeError. */
export function checkSendable(items: readonly SendItem[]): void {
  new SenderMachine({ agreed: 0x02, entries: items.map((i) => i.entry) });
}

/**
 * Sends over a paired connection as the accepter. Resolves once the
 * receiver confirmed (DoneAck); throws SessionFailure.
 */
export async function send(opts: SessionOptions & { items: readonly SendItem[]; hooks: SendHooks }): Promise<SendDone> {
  const { stream, hooks, items } = opts;
  const now = opts.now ?? (() => performance.now());
  const decoder = new FrameDecoder();
  hooks.onHandshake?.();
  const est = await runHandshake(stream, Handshake.accepter({ code: opts.code, caps: opts.caps }), decoder, 'sender', {
    timeoutMs: opts.handshakeTimeoutMs,
    signal: opts.signal,
  });
  const m = new SenderMachine({ agreed: est.agreed, entries: items.map((i) => i.entry), nowMs: now() });
  const total = items.reduce((n, i) => n + (i.entry.kind === 'file' ? i.entry.size : 0), 0);
  const readers = new Map<number, BlockReader>();
  let failure: SessionFailure | undefined;
  let forced: SessionFailure | undefined;
  let completed = false;
  let sent = 0;

  const pump: Pump<SenderEvent> = new Pump<SenderEvent>({
    stream,
    decoder,
    established: est,
    machine: m,
    readBackpressure: false,
    now,
    errorCode: (e) => ({ code: StopCode.Local, reason: `the sender could not read a file: ${e instanceof Error ? e.message : String(e)}` }),
    onEvent: async (ev) => {
      switch (ev.type) {
        case 'accepted':
          hooks.onAccepted?.(total);
          return;
        case 'need-data': {
          const item = items[ev.index];
          if (item?.file === undefined) throw new Error(`no data for entry ${ev.index}`);
          let r = readers.get(ev.index);
          if (r === undefined) {
            readers.clear();
            readers.set(ev.index, (r = new BlockReader(item.file)));
          }
          let bytes: Uint8Array;
          try {
            bytes = await r.read(ev.offset, ev.max);
          } catch (e) {
            forced ??= new SessionFailure('local', `Reading “${escapeName(item.entry.path)}” failed (${e instanceof Error ? e.message : String(e)}); was it changed or removed?`);
            throw e;
          }
          if (m.ended) return;
          if (bytes.length === 0) m.endFile(ev.index);
          else m.pushData(ev.index, bytes);
          pump.flush();
          await pump.writable();
          return;
        }
        case 'progress':
          sent = ev.sent;
          hooks.onProgress?.({ done: ev.sent, total: ev.total, file: escapeName(items[ev.index]?.entry.path ?? '') });
          return;
        case 'done':
          completed = true;
          return;
        case 'refused':
          failure = new SessionFailure('declined', 'The receiver declined the transfer. Nothing was sent.');
          return;
        case 'failed':
          failure = forced ?? classifyFailure('sender', ev.side, ev.code, ev.reason);
          return;
      }
    },
  });

  const onAbort = () => {
    forced ??= new SessionFailure('cancelled', 'You cancelled the transfer; the receiver was told.');
    pump.cancel('the sender cancelled');
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const end = await pump.run();
    if (failure !== undefined) throw failure;
    if (!completed) {
      throw new SessionFailure(
        'disconnected',
        `The connection to the receiver was lost before it confirmed the transfer${end.kind === 'disconnected' && end.reason !== undefined ? ` (${end.reason})` : ''}.`,
      );
    }
    return { bytes: sent };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
