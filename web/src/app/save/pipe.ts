// A bounded in-memory pipe between the session (which writes file data as it
// is decrypted) and a consumer that sets the pace (a download, a zip
// writer). `write` waits while more than `capacity` bytes are unread, so
// memory stays flat and the session stops reading the network.

export class Pipe {
  private chunks: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private cancelled: Error | undefined;
  private dataWaiter: (() => void) | undefined;
  private spaceWaiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly capacity = 8 * 1024 * 1024) {}

  /** Queues bytes; resolves when the pipe has room again. Rejects once the reader cancelled. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.cancelled !== undefined) throw this.cancelled;
    if (this.ended) throw new Error('Pipe.write after close');
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    this.queued += bytes.length;
    this.wakeReader();
    while (this.queued > this.capacity && this.cancelled === undefined) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
    if (this.cancelled !== undefined) throw this.cancelled;
  }

  /** No more bytes: the reader gets `null` after what is queued. */
  close(): void {
    this.ended = true;
    this.wakeReader();
  }

  /** The writer failed: the reader gets this error (queued bytes are dropped). */
  fail(error: Error): void {
    if (this.ended && this.failure === undefined && this.chunks.length === 0) return;
    this.failure = error;
    this.ended = true;
    this.chunks = [];
    this.queued = 0;
    this.wakeReader();
    this.wakeWriters();
  }

  /** The reader gave up: writers get this error. */
  cancel(error: Error): void {
    this.cancelled = error;
    this.chunks = [];
    this.queued = 0;
    this.wakeWriters();
  }

  /** The next bytes, or `null` at the end. Rejects with the writer's failure. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const c = this.chunks.shift();
      if (c !== undefined) {
        this.queued -= c.length;
        if (this.queued <= this.capacity) this.wakeWriters();
        return c;
      }
      if (this.ended) {
        this.wakeWriters();
        return null;
      }
      await new Promise<void>((r) => (this.dataWaiter = r));
    }
  }

  /** Resolves once everything written was read (or the pipe failed). */
  drained(): Promise<void> {
    if (this.queued === 0 || this.failure !== undefined || this.cancelled !== undefined) return Promise.resolve();
    return new Promise<void>((r) => this.drainWaiters.push(r));
  }

  /** The pipe as an async iterable, for client-zip. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const c = await this.read();
      if (c === null) return;
      yield c;
    }
  }

  private wakeReader(): void {
    const w = this.dataWaiter;
    this.dataWaiter = undefined;
    w?.();
  }

  private wakeWriters(): void {
    const ws = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of ws) w();
    if (this.queued === 0 || this.failure !== undefined || this.cancelled !== undefined) {
      const ds = this.drainWaiters;
      this.drainWaiters = [];
      for (const d of ds) d();
    }
  }
}
