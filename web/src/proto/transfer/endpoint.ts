// What the sender and receiver machines share: the agreed capabilities
// they accept, the liveness clocks, the event queue, how a record is taken
// apart and how a violation becomes a Stop (PROTOCOL.md §7, §8).

import { ProtocolError } from '../codec';
import { iterMessages, StopCode, type Msg } from '../messages';
import { DEFAULT_IDLE_TIMEOUT_MS, earliest, Liveness, Queue } from './liveness';

const KEEPALIVE = 0x40;
/** Capabilities the machines do not implement; they can never be agreed with the page. */
const UNSUPPORTED = 0x08 | 0x10 | 0x80 | 0x200;

/** A failure with the Stop code it is reported with. */
export class Failure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function violation(message: string): never {
  throw new ProtocolError(message);
}

type Side = 'sender' | 'receiver';

export interface EndpointOptions {
  agreed: number;
  idleTimeoutMs?: number;
  /** Without keepalives: how long the peer may be silent (undefined: without limit). */
  silentTimeoutMs?: number;
  nowMs?: number;
}

export abstract class Endpoint<E> {
  protected readonly agreed: number;
  protected readonly live: Liveness;
  protected abstract state: string;
  protected events = new Queue<E>();
  protected peerFinal = false;
  protected done = false;
  protected finalSent = false;

  constructor(
    private readonly self: Side,
    private readonly peer: Side,
    opts: EndpointOptions,
  ) {
    this.agreed = opts.agreed >>> 0;
    if (this.agreed & UNSUPPORTED) {
      throw new RangeError(`capabilities 0x${(this.agreed & UNSUPPORTED).toString(16)} were agreed, but this ${self} does not implement them`);
    }
    this.live = new Liveness({
      keepalive: (this.agreed & KEEPALIVE) !== 0,
      idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      silentTimeoutMs: opts.silentTimeoutMs,
    });
    if (opts.nowMs !== undefined) this.live.touch(opts.nowMs);
  }

  /** True once this side's final record has been handed out by pollTransmit: nothing more will be sent. */
  get finished(): boolean {
    return this.finalSent;
  }

  /** Whether the transfer is over (done, refused or failed); the final record may still be pending. */
  get ended(): boolean {
    return this.state === 'ended';
  }

  /** Whether the transfer completed (the receiver queued DoneAck, or the sender got it). */
  get completed(): boolean {
    return this.done;
  }

  /**
   * One opened record from the peer: its plaintext and whether it was the
   * peer's final record. Never throws: a violation becomes a 'failed' event
   * and a queued Stop(4)/Abort.
   */
  handleRecord(plaintext: Uint8Array, final: boolean, nowMs: number): void {
    this.live.touch(nowMs);
    this.live.heard(nowMs);
    if (this.state === 'ended') return;
    try {
      if (this.peerFinal) violation(`a record after the ${this.peer}'s final record`);
      this.peerFinal = final;
      for (const m of iterMessages(plaintext)) {
        this.onMessage(m);
        if (this.ended) return;
      }
      if (final) violation(`the ${this.peer} ended its side before the transfer was complete`);
    } catch (e) {
      this.failFrom(e);
    }
  }

  /** Call when any byte arrives, so a record that takes long on a slow link does not look idle. */
  noteBytes(nowMs: number): void {
    this.live.touch(nowMs);
    this.live.heard(nowMs);
  }

  /** The application stopped (true) or resumed (false) reading; silence while paused is not the peer's. */
  setReadingPaused(paused: boolean, nowMs: number): void {
    this.live.touch(nowMs);
    this.live.setPaused(paused, nowMs);
  }

  /** The user cancelled: Stop(7) (or Abort) in the final record. */
  cancel(reason: string): void {
    this.failLocal(StopCode.Interrupted, reason);
  }

  /** A problem on this side, e.g. code 2 (disk/permissions) or 3 (no space). */
  localError(code: number, reason: string): void {
    this.failLocal(code, reason);
  }

  pollEvent(): E | undefined {
    return this.events.shift();
  }

  /** When handleTimeout (then pollTransmit) should next be called, in absolute ms. */
  pollTimeout(): number | undefined {
    if (this.state === 'ended') return undefined;
    return earliest(this.live.keepAliveAt(), this.live.idleDeadline());
  }

  /** Gives up on a peer silent for the idle timeout. KeepAlives come from pollTransmit. */
  handleTimeout(nowMs: number): void {
    this.live.touch(nowMs);
    if (this.state === 'ended' || !this.live.idleExpired(nowMs)) return;
    const s = Math.round((this.live.idleMs ?? 0) / 1000);
    this.failLocal(StopCode.Unspecified, `nothing arrived from the ${this.peer} for ${s} s`);
  }

  protected abstract onMessage(m: Msg): void;
  protected abstract failLocal(code: number, reason: string): void;

  protected failFrom(e: unknown): void {
    if (e instanceof ProtocolError) this.failLocal(StopCode.PeerViolation, `the ${this.peer} broke the protocol: ${e.message}`);
    else if (e instanceof Failure) this.failLocal(e.code, e.message);
    else this.failLocal(StopCode.Internal, `internal error in the ${this.self}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
