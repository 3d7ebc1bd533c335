// Bookkeeping shared by the sender and receiver machines: when to send
// KeepAlive and when to give up on a silent peer (PROTOCOL.md §8,
// KeepAlive), and their event queue. Times come in as numbers (milliseconds,
// any monotonic clock); nothing here reads a clock or sets a timer.

/** A side that has sealed nothing for this long sends a KeepAlive. */
export const KEEPALIVE_BOUND_MS = 5_000;
/** ...or for a quarter of its own idle timeout if shorter, but never under this. */
export const KEEPALIVE_FLOOR_MS = 100;
/** The idle timeout must be at least twice the keepalive bound. */
export const MIN_IDLE_TIMEOUT_MS = 10_000;
/** pqdrop's idle timeout with capability 0x40. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Without 0x40 a receiver waits this long for the sender (not while its own user decides). */
export const SILENT_SENDER_TIMEOUT_MS = 600_000;

/** The keepalive interval for a side whose idle timeout is `idleTimeoutMs`. */
export function keepAliveIntervalMs(idleTimeoutMs: number): number {
  return Math.max(KEEPALIVE_FLOOR_MS, Math.min(KEEPALIVE_BOUND_MS, Math.floor(idleTimeoutMs / 4)));
}

export interface LivenessOptions {
  /** Capability 0x40 was agreed: send KeepAlive, time out after `idleTimeoutMs`. */
  keepalive: boolean;
  idleTimeoutMs: number;
  /**
   * Without 0x40: how long the peer may be silent, or undefined to wait
   * without limit (pqdrop's sender). Never applied while this side waits for
   * its own user, since the peer then has nothing to say.
   */
  silentTimeoutMs: number | undefined;
}

/**
 * One side's clocks. Both start at the first time it is given (`touch`), so
 * a machine built before the connection is up does not time out at once.
 */
export class Liveness {
  private lastSealed: number | undefined;
  private lastHeard: number | undefined;
  private paused = false;
  private waitingForUser = false;
  readonly keepAliveMs: number | undefined;
  readonly idleMs: number | undefined;

  constructor(opts: LivenessOptions) {
    if (!(opts.idleTimeoutMs >= MIN_IDLE_TIMEOUT_MS)) {
      throw new RangeError(`idle timeout of ${opts.idleTimeoutMs} ms: must be at least ${MIN_IDLE_TIMEOUT_MS} ms`);
    }
    this.keepAliveMs = opts.keepalive ? keepAliveIntervalMs(opts.idleTimeoutMs) : undefined;
    this.idleMs = opts.keepalive ? opts.idleTimeoutMs : opts.silentTimeoutMs;
  }

  /** Starts (or restarts, after `restart`) whichever clock has not started yet. */
  touch(now: number): void {
    this.lastSealed ??= now;
    this.lastHeard ??= now;
  }

  /** A record was sealed: every record counts, not only KeepAlive. */
  sealed(now: number): void {
    this.lastSealed = now;
  }

  /** Bytes arrived from the peer. */
  heard(now: number): void {
    this.lastHeard = now;
  }

  /** The idle clock restarts at the next time given. */
  restart(): void {
    this.lastHeard = undefined;
  }

  /** While this side itself holds off reading, the peer cannot be blamed for silence. */
  setPaused(paused: boolean, now: number): void {
    if (this.paused && !paused) this.lastHeard = now;
    this.paused = paused;
  }

  /** Whether this side waits for its own user (the consent prompt). */
  setWaitingForUser(waiting: boolean): void {
    if (this.waitingForUser && !waiting) this.restart();
    this.waitingForUser = waiting;
  }

  /** When the next KeepAlive is due, if one will be. */
  keepAliveAt(): number | undefined {
    if (this.keepAliveMs === undefined || this.lastSealed === undefined) return undefined;
    return this.lastSealed + this.keepAliveMs;
  }

  keepAliveDue(now: number): boolean {
    const at = this.keepAliveAt();
    return at !== undefined && now >= at;
  }

  /** When the peer has been silent too long, if that can happen now. */
  idleDeadline(): number | undefined {
    if (this.idleMs === undefined || this.lastHeard === undefined || this.paused) return undefined;
    // Without keepalives a peer waiting for our user says nothing, rightly.
    if (this.keepAliveMs === undefined && this.waitingForUser) return undefined;
    return this.lastHeard + this.idleMs;
  }

  idleExpired(now: number): boolean {
    const at = this.idleDeadline();
    return at !== undefined && now >= at;
  }
}

/** The earlier of two optional deadlines. */
export function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * A FIFO with O(1) take: one record may queue tens of thousands of events
 * (a manifest of small entries), and Array.prototype.shift is linear.
 */
export class Queue<T> {
  private items: T[] = [];
  private head = 0;

  push(x: T): void {
    this.items.push(x);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head++];
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }

  get length(): number {
    return this.items.length - this.head;
  }
}
