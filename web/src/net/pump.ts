// Moves records between a connection and a transfer machine (sender or
// receiver, PROTOCOL.md §7–§8) once the handshake is done:
//
//   bytes → FrameDecoder → opener.open → machine.handleRecord → events
//   machine.pollTransmit → sealer.seal → bytes
//
// plus the machine's timers (KeepAlive, idle timeout). Events go to an
// async handler one at a time, in order; with `readBackpressure` the next
// bytes are read only once the handler caught up, so a slow disk slows the
// network instead of filling memory.
//
// A "hold" keeps queued messages (a receiver's Ready while its user answers
// a question, its DoneAck while the last bytes are saved) from being sent,
// while KeepAlives still go out so that the other side does not give up.

import { FrameDecoder, FrameType, ProtocolError } from '../proto/codec';
import type { Established } from '../proto/handshake';
import { RecordError } from '../proto/record';
import type { ByteStream, ReadInto } from './stream';

/** What the pump needs of a transfer machine (SenderMachine and ReceiverMachine both fit). */
export interface TransferMachine<E> {
  handleRecord(plaintext: Uint8Array, final: boolean, nowMs: number): void;
  noteBytes(nowMs: number): void;
  setReadingPaused(paused: boolean, nowMs: number): void;
  pollTransmit(nowMs: number): { plaintext: Uint8Array; final: boolean } | undefined;
  pollTimeout(): number | undefined;
  handleTimeout(nowMs: number): void;
  pollEvent(): E | undefined;
  localError(code: number, reason: string): void;
  cancel(reason: string): void;
  readonly ended: boolean;
  readonly finished: boolean;
}

export interface PumpOptions<E extends { type: string }> {
  stream: ByteStream;
  /** The decoder the handshake used: it may already hold the first records. */
  decoder: FrameDecoder;
  established: Established;
  machine: TransferMachine<E>;
  /** Handles one event; a rejection becomes a local failure (see `errorCode`). */
  onEvent: (event: E) => Promise<void>;
  /** Stop code and reason for a handler's rejection. */
  errorCode: (error: unknown) => { code: number; reason: string };
  /** Read no more while the event handler is busy (the receiver). */
  readBackpressure: boolean;
  now?: () => number;
}

/** How the pump ended: with the machine finished, or with the connection gone before. */
export type PumpEnd = { kind: 'finished' } | { kind: 'disconnected'; reason: string | undefined; overloaded: boolean };

const KEEPALIVE_CAP = 0x40;
const KEEPALIVE_PLAINTEXT = Uint8Array.of(17);
/** While held, KeepAlives are sent this often (the bound is 5 s, §8). */
const HELD_KEEPALIVE_MS = 4_000;
const HELD_TICK_MS = 1_000;
/** Sealed bytes not yet handed to the connection, above which senders wait. */
const WRITE_HIGH_WATER = 8 * 1024 * 1024;
/** After the final record, how long to wait for the other side to close first. */
const LINGER_MS = 1_000;
/** Bytes of records being opened or waiting for the machine, above which reading waits. */
const READ_AHEAD = 16 * 1024 * 1024;

/** A body at least this large is read straight into its own buffer where the connection can. */
const DIRECT_BODY = 64 * 1024;

/** A record on its way from the decoder to the machine. */
interface PendingRecord {
  opened?: Promise<{ plaintext: Uint8Array; final: boolean }>;
  size?: number;
  /** A frame that could not be decoded: the transfer fails once the records before it are handled. */
  error?: unknown;
}

export class Pump<E extends { type: string }> {
  private readonly stream: ByteStream;
  private readonly decoder: FrameDecoder;
  private readonly est: Established;
  private readonly m: TransferMachine<E>;
  private readonly opts: PumpOptions<E>;
  private readonly now: () => number;
  private readonly keepalive: boolean;

  private held = false;
  private lastSealAt: number;
  private writeTail: Promise<void> = Promise.resolve();
  private pendingBytes = 0;
  private writeWaiters: (() => void)[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private eventsRunning = false;
  /** Events taken from the machine, not yet handled. */
  private readonly queue: E[] = [];
  private idleWaiters: (() => void)[] = [];
  private streamGone = false;
  private readonly records: PendingRecord[] = [];
  private openedBytes = 0;
  private badFrame = false;
  private consuming = false;
  private readerWaiter: (() => void) | undefined;
  private consumerWaiter: (() => void) | undefined;
  private streamEndReason: string | undefined;
  private settled = false;
  private resolveEnd!: (e: PumpEnd) => void;
  private markGone!: () => void;
  private readonly gone = new Promise<void>((r) => (this.markGone = r));
  private readonly endPromise: Promise<PumpEnd>;

  constructor(opts: PumpOptions<E>) {
    this.opts = opts;
    this.stream = opts.stream;
    this.decoder = opts.decoder;
    this.est = opts.established;
    this.m = opts.machine;
    this.now = opts.now ?? (() => performance.now());
    this.keepalive = (this.est.agreed & KEEPALIVE_CAP) !== 0;
    this.lastSealAt = this.now();
    this.endPromise = new Promise((r) => (this.resolveEnd = r));
  }

  /** Runs until the machine finished (its final record written) or the connection ended first. */
  run(): Promise<PumpEnd> {
    this.flush();
    void this.readLoop();
    void this.consumeLoop();
    return this.endPromise;
  }

  /**
   * Sends what the machine has queued (after the application called
   * accept, pushData, …). While events of the last record still wait to be
   * handled, sending waits for them: a handler may put a hold on what that
   * record made the machine queue (a receiver's Ready, its DoneAck).
   */
  flush(): void {
    if (this.settled) return;
    if (this.queue.length > 0) {
      this.kick();
      return;
    }
    this.transmit();
  }

  /** Seals and sends everything the machine has queued now (unless held). */
  private transmit(): void {
    if (this.held || this.settled) return;
    const now = this.now();
    for (;;) {
      const t = this.m.pollTransmit(now);
      if (t === undefined) break;
      this.seal(t.plaintext, t.final, now);
    }
    this.collect();
    this.arm();
    this.kick();
  }

  /** Moves the machine's events into the pump's queue. */
  private collect(): void {
    for (let e = this.m.pollEvent(); e !== undefined; e = this.m.pollEvent()) this.queue.push(e);
  }

  /** Holds (or releases) queued messages; KeepAlives continue while held. */
  setHold(held: boolean): void {
    this.held = held;
    if (!held) this.flush();
    else this.arm();
  }

  /** The user cancelled: Stop(7) goes out in the final record, at once. */
  cancel(reason: string): void {
    this.endNow(() => this.m.cancel(reason));
  }

  /** A failure on this side (disk, limits) with its Stop code, sent at once. */
  fail(code: number, reason: string): void {
    this.endNow(() => this.m.localError(code, reason));
  }

  /**
   * Ends the transfer from this side: what waits to be handled is dropped
   * except the failure, and the final record (with the Stop) leaves now,
   * even while a handler is still busy (e.g. waiting for a stalled download).
   */
  private endNow(end: () => void): void {
    if (this.settled) return;
    const wasEnded = this.m.ended;
    end();
    this.held = false;
    if (!wasEnded) this.dropUntilFailure();
    this.transmit();
  }

  /** Keeps only the first 'failed' event of the queue (after collecting the machine's). */
  private dropUntilFailure(): void {
    this.collect();
    const failed = this.queue.find((e) => e.type === 'failed');
    this.queue.length = 0;
    if (failed !== undefined) this.queue.push(failed);
  }

  /** Resolves once fewer than a few MiB of sealed records wait for the connection. */
  async writable(): Promise<void> {
    while (this.pendingBytes > WRITE_HIGH_WATER && !this.streamGone) {
      await new Promise<void>((r) => this.writeWaiters.push(r));
    }
  }

  private seal(plaintext: Uint8Array, final: boolean, now: number): void {
    this.lastSealAt = now;
    const n = plaintext.length;
    this.pendingBytes += n;
    const sealed = this.est.sealer.seal(plaintext, final);
    sealed.catch(() => undefined); // observed below, in order
    this.writeTail = this.writeTail
      .then(async () => {
        const frame = await sealed;
        if (!this.streamGone) await this.stream.write(frame);
      })
      .catch(() => {
        // The connection is gone; the read side reports it.
      })
      .finally(() => {
        this.pendingBytes -= n;
        const ws = this.writeWaiters;
        this.writeWaiters = [];
        for (const w of ws) w();
      });
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.settled) return;
    let delay: number | undefined;
    if (this.held) {
      delay = HELD_TICK_MS;
    } else {
      const at = this.m.pollTimeout();
      if (at !== undefined) delay = Math.max(0, at - this.now());
    }
    if (delay !== undefined) this.timer = setTimeout(() => this.onTimer(), delay);
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.settled) return;
    const now = this.now();
    const wasEnded = this.m.ended;
    this.m.handleTimeout(now);
    if (!wasEnded && this.m.ended) return this.endNow(() => undefined);
    if (this.held && !this.m.ended && !this.m.finished && this.keepalive && now - this.lastSealAt >= HELD_KEEPALIVE_MS) {
      this.seal(KEEPALIVE_PLAINTEXT, false, now);
    }
    if (this.m.ended) this.held = false;
    this.flush();
    this.arm();
  }

  private kick(): void {
    if (this.eventsRunning || this.settled) return;
    void this.runEvents();
  }

  private async runEvents(): Promise<void> {
    this.eventsRunning = true;
    try {
      for (;;) {
        this.collect();
        const e = this.queue.shift();
        if (e === undefined) break;
        try {
          await this.opts.onEvent(e);
        } catch (err) {
          const { code, reason } = this.opts.errorCode(err);
          // Events queued behind the one that failed (more data, the end of
          // the file whose write failed) must not be acted on: only the
          // failure that localError queues.
          this.endNow(() => this.m.localError(code, reason));
        }
        this.collect();
        if (this.queue.length === 0) this.transmit();
      }
    } finally {
      this.eventsRunning = false;
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of ws) w();
      void this.maybeFinish();
    }
  }

  private idle(): Promise<void> {
    if (!this.eventsRunning) return Promise.resolve();
    return new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /**
   * Reads, splits frames and starts opening them, ahead of the machine by
   * at most READ_AHEAD bytes of records, so that the network, the cipher
   * and the machine overlap.
   */
  private async readLoop(): Promise<void> {
    // The handshake's last read may have brought the first records along
    // (a sender's Offer in the same message as its confirm): frame those
    // before waiting for more bytes, or they would wait for the next ones.
    let buffered = this.decoder.buffered > 0;
    read: for (;;) {
      while (this.openedBytes > READ_AHEAD && !this.settled && !this.m.ended) {
        await new Promise<void>((r) => (this.readerWaiter = r));
      }
      if (!buffered) {
        const body = this.openBody();
        if (body !== undefined) {
          // A large record body, read straight into its own buffer.
          const got = await body.readInto(body.buf, body.filled);
          if (got === null) break;
          if (this.settled && !this.m.ended) return;
          this.m.noteBytes(this.now());
          this.decoder.bodyFilled(got.buf, got.n);
        } else {
          const chunk = await this.stream.read();
          if (chunk === null) break;
          if (this.settled && !this.m.ended) return;
          this.m.noteBytes(this.now());
          if (this.m.ended || this.badFrame) continue; // e.g. the other side's final record after ours
          this.decoder.push(chunk);
        }
      }
      buffered = false;
      for (;;) {
        let f;
        try {
          f = this.decoder.next();
          if (f !== undefined && f.type !== FrameType.Record && f.type !== FrameType.FinalRecord) {
            throw new ProtocolError(`a handshake frame (type ${f.type}) after the handshake`);
          }
        } catch (e) {
          // Records before the bad frame are still handled, then the transfer fails.
          this.badFrame = true;
          this.queueRecord({ error: e });
          continue read;
        }
        if (f === undefined) break;
        const size = f.body.length;
        const opened = this.est.opener.open(f);
        opened.catch(() => undefined); // observed in order by the consumer
        this.queueRecord({ opened, size });
      }
    }
    this.streamGone = true;
    this.markGone();
    this.streamEndReason = this.stream.endReason;
    const ws = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of ws) w();
    this.wakeConsumer();
    void this.maybeFinish();
  }

  /**
   * Where the connection reads into a caller's buffer, and the next frame is
   * a large body only partly here: that body's buffer, to read the rest into
   * (saving the copy of a body pieced together from network chunks).
   */
  private openBody(): { buf: Uint8Array<ArrayBuffer>; filled: number; readInto: ReadInto } | undefined {
    const readInto = this.stream.readInto;
    if (readInto === undefined || this.badFrame || this.m.ended) return undefined;
    try {
      const b = this.decoder.openBody(DIRECT_BODY);
      return b === undefined ? undefined : { ...b, readInto };
    } catch {
      return undefined; // a refused header: `next` reports it
    }
  }

  private queueRecord(r: PendingRecord): void {
    this.records.push(r);
    this.openedBytes += r.size ?? 0;
    this.wakeConsumer();
  }

  private wakeConsumer(): void {
    const w = this.consumerWaiter;
    this.consumerWaiter = undefined;
    w?.();
  }

  /** Hands opened records to the machine in order; with backpressure, only as fast as the events are handled. */
  private async consumeLoop(): Promise<void> {
    for (;;) {
      const r = this.records.shift();
      if (r === undefined) {
        this.consuming = false;
        if (this.settled) return;
        if (this.streamGone) return void this.maybeFinish();
        await new Promise<void>((w) => (this.consumerWaiter = w));
        continue;
      }
      this.consuming = true;
      let rec: { plaintext: Uint8Array; final: boolean } | undefined;
      let failure: unknown;
      if (r.opened !== undefined) {
        try {
          rec = await r.opened;
        } catch (e) {
          failure = e;
        }
      } else {
        failure = r.error;
      }
      this.openedBytes -= r.size ?? 0;
      const w = this.readerWaiter;
      this.readerWaiter = undefined;
      w?.();
      if (this.m.ended) continue;
      if (rec === undefined) {
        if (failure instanceof RecordError && failure.kind === 'auth') {
          this.fail(5, 'a record failed authentication: the data was changed on the way, or it is not from the holder of the code');
        } else {
          const what = failure instanceof RecordError ? 'the record layer' : 'the protocol';
          this.fail(4, `the other side broke ${what}: ${failure instanceof Error ? failure.message : String(failure)}`);
        }
        continue;
      }
      this.m.handleRecord(rec.plaintext, rec.final, this.now());
      this.collect();
      this.flush();
      if (this.opts.readBackpressure && this.eventsRunning) {
        this.m.setReadingPaused(true, this.now());
        await this.idle();
        this.m.setReadingPaused(false, this.now());
      }
    }
  }

  private async maybeFinish(): Promise<void> {
    if (this.settled || this.eventsRunning) return;
    // Records that arrived before the connection closed are handled first.
    if (this.streamGone && (this.records.length > 0 || this.consuming) && !this.m.ended) return;
    if (this.m.ended && this.m.finished && !this.held) {
      this.settled = true;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.readerWaiter?.();
      await this.writeTail;
      // Linger: read (and drop) what the other side still sends until it
      // closes, for a moment. Closing with its bytes unread can make the
      // relay reset the other connection, and a reset may destroy our final
      // record (a Stop, a DoneAck) before the other side has read it.
      if (!this.streamGone) {
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.gone, new Promise<void>((r) => (t = setTimeout(r, LINGER_MS)))]);
        clearTimeout(t);
      }
      this.stream.close();
      this.resolveEnd({ kind: 'finished' });
      return;
    }
    if (this.streamGone) {
      this.settled = true;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.stream.close();
      this.resolveEnd(this.m.ended ? { kind: 'finished' } : { kind: 'disconnected', reason: this.streamEndReason, overloaded: this.stream.overloaded === true });
    }
  }
}
