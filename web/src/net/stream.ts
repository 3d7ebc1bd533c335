// A byte stream over a WebSocket: binary messages carry a TCP connection's
// bytes in order, and their boundaries mean nothing (the relay's WebSocket,
// §9 over `/ws`).
//
// Reading: where the browser has `WebSocketStream` (Chromium), reads pull
// from its readable stream, so a consumer that stops reading stops the
// socket too (real TCP backpressure). A plain `WebSocket` delivers every
// message as an event whether or not anyone wants it, so its messages are
// queued, and the queue is bounded: past `maxQueued` bytes the stream fails
// rather than grow without limit.
//
// Writing: `write` resolves once the bytes are handed over and the socket's
// own buffer is below a bound, so a fast producer waits for the network.
//
// The downstream over HTTP (PROTOCOL.md §9.8): browsers hand WebSocket
// messages to a page many times slower than the body of a `fetch()`. So the
// page may open `ws?down=http`; a relay that knows it sends `down TOKEN` as
// its first (text) message, and everything it has for the page is then the
// chunked body of `GET down/TOKEN`, read with the body's own backpressure.
// Opening waits for that response before it resolves, so that when the
// downstream cannot be had (a load balancer sent the request to another
// instance, the browser's connections per host are all taken) the page
// opens a plain WebSocket instead, before its hello went anywhere. A relay
// that does not know the query sends nothing before the hello, and after a
// short wait the WebSocket is used as it is.

/** A connection's bytes, in order. */
export interface ByteStream {
  /** The next bytes, or `null` once the connection ended (see `endReason`). */
  read(): Promise<Uint8Array | null>;
  /** Sends bytes; resolves when more may be written. Rejects once the connection is gone. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the connection; pending and later reads return `null`. */
  close(): void;
  /** Why the stream ended, once it did: `undefined` for a clean close by the other end. */
  readonly endReason: string | undefined;
  /** True when it ended because this page read too slowly (a plain WebSocket's bounded queue overflowed). */
  readonly overloaded?: boolean;
  /** Where the other end's bytes come from, once the first arrived: the WebSocket, or the HTTP downstream. */
  readonly downstream?: 'websocket' | 'http';
  /**
   * Where the connection can read into a caller's buffer (the HTTP
   * downstream of a byte-stream body): reads at least one byte into `buf`
   * from `offset`, and returns the buffer as it now is (the read transfers
   * it to a new ArrayBuffer object; `buf` itself is detached) and how many
   * bytes came; `null` at the end, as `read`. Use either this or `read` for
   * a stretch of bytes, never both at once.
   */
  readonly readInto?: ReadInto;
}

export type ReadInto = (buf: Uint8Array<ArrayBuffer>, offset: number) => Promise<{ buf: Uint8Array<ArrayBuffer>; n: number } | null>;

/** The connection could not be used (it failed to open, or ended while writing). */
export class StreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StreamError';
  }
}

export interface OpenOptions {
  /** Give up opening after this long. */
  openTimeoutMs?: number;
  /** Plain WebSocket only: fail when more than this many received bytes wait to be read. */
  maxQueued?: number;
  /** Prefer `WebSocketStream` where it exists (default true). */
  preferStreams?: boolean;
  /** Ask for the relay's bytes as a streamed HTTP response (same origin only: the fetch needs no CORS). */
  httpDownstream?: boolean;
}

/** The send buffer may hold this much before `write` waits. */
const HIGH_WATER = 4 * 1024 * 1024;
/** …and `write` resumes once it drained below this. */
const LOW_WATER = 1024 * 1024;
/** The relay takes WebSocket messages of at most 4 MiB; stay well below. */
const MAX_MESSAGE = 1024 * 1024;
const DEFAULT_MAX_QUEUED = 64 * 1024 * 1024;
const DEFAULT_OPEN_TIMEOUT = 15_000;

/** Opens `url` (ws: or wss:) as a byte stream. */
export async function openWebSocket(url: string, options: OpenOptions = {}): Promise<ByteStream> {
  const timeout = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT;
  const Wss = (globalThis as { WebSocketStream?: WebSocketStreamConstructor }).WebSocketStream;
  const open = (u: string, split: boolean) =>
    Wss !== undefined && options.preferStreams !== false
      ? openStream(Wss, u, timeout, split)
      : openPlain(u, timeout, options.maxQueued ?? DEFAULT_MAX_QUEUED, split);
  if (options.httpDownstream !== true) return open(url, false) as Promise<ByteStream>;
  const split = await open(`${url}${url.includes('?') ? '&' : '?'}down=http`, true);
  return split === NO_DOWNSTREAM ? (open(url, false) as Promise<ByteStream>) : split;
}

// --- the downstream over HTTP ---

/** A relay that knows `down=http` sends its token at once; one that sends nothing for this long does not. */
const TOKEN_WAIT_MS = 2_000;
/** The downstream's response must have begun within this (the relay gives up on a token after 10 s). */
const DOWN_READY_MS = 5_000;
/** The downstream could not be opened: open a plain WebSocket instead. */
const NO_DOWNSTREAM = Symbol('no downstream');
type Opened = ByteStream | typeof NO_DOWNSTREAM;

const sleep = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms));

/** Where `down TOKEN` (the relay's first message on `ws?down=http`) says the relay's bytes are, or `undefined`. */
export function downstreamUrl(wsUrl: string, message: string): string | undefined {
  const m = /^down ([0-9a-f]{32})$/.exec(message);
  if (m === null) return undefined;
  // `…/ws?down=http` → `…/down/TOKEN`, with the WebSocket's origin.
  const u = new URL(`down/${m[1]}`, wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return u.href;
}

/**
 * A plain downstream read (byte-stream body) takes at most this much: a
 * frame header and the start of its body, or a few small frames. A large
 * body's rest is read straight into its own buffer (`readInto`), so a
 * small first read keeps the part that has to be copied small.
 */
const DOWN_READ = 32 * 1024;

/**
 * The body of `GET down/TOKEN`, read as the connection's bytes. Where the
 * body is a byte stream (Chromium), reads go into buffers of our own (a
 * "BYOB" reader), and `readInto` lets the pump read a record's body
 * straight into the buffer it is opened from.
 */
class HttpDownstream {
  private readonly abort = new AbortController();
  private readonly body: Promise<{ byob?: ReadableStreamBYOBReader; plain?: ReadableStreamDefaultReader<Uint8Array> }>;
  /** Set once the body ended: `null` for its clean end, else why. */
  ended: string | null | undefined;
  /** Known once the response came: whether the body is a byte stream (then `readInto` works). */
  byob = false;

  constructor(url: string) {
    this.body = fetch(url, { cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal: this.abort.signal }).then((r) => {
      if (!r.ok || r.body === null) throw new StreamError(`the relay refused the downstream (HTTP ${r.status})`);
      try {
        const byob = r.body.getReader({ mode: 'byob' });
        this.byob = true;
        return { byob };
      } catch {
        return { plain: r.body.getReader() };
      }
    });
    this.body.catch(() => undefined);
  }

  /** Whether the response began well within `ms` (else the request is given up). */
  async ready(ms: number): Promise<boolean> {
    const ok = await Promise.race([this.body.then(() => true, () => false), sleep(ms).then(() => false)]);
    if (!ok) this.close();
    return ok;
  }

  /** The next bytes, or `null` at the end (see `ended`). */
  async read(): Promise<Uint8Array | null> {
    if (this.ended !== undefined) return null;
    try {
      const { byob, plain } = await this.body;
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        if (byob !== undefined) {
          r = await byob.read(new Uint8Array(DOWN_READ));
        } else {
          r = await plain!.read();
        }
        if (r.done) {
          this.ended = null;
          return null;
        }
        if (r.value.byteLength > 0) return r.value;
      }
    } catch (e) {
      this.ended = e instanceof StreamError ? e.message : 'the connection to the relay broke';
      return null;
    }
  }

  /** See {@link ByteStream.readInto}; only once `byob` is true. */
  readonly readInto: ReadInto = async (buf, offset) => {
    if (this.ended !== undefined) return null;
    try {
      const { byob } = await this.body;
      // The read detaches `buf` (its length becomes 0): keep where it was.
      const { byteOffset, length } = buf;
      const r = await byob!.read(new Uint8Array(buf.buffer, byteOffset + offset, length - offset));
      if (r.done) {
        this.ended = null;
        return null;
      }
      return { buf: new Uint8Array(r.value.buffer as ArrayBuffer, byteOffset, length), n: r.value.byteLength };
    } catch (e) {
      this.ended = e instanceof StreamError ? e.message : 'the connection to the relay broke';
      return null;
    }
  };

  close(): void {
    this.ended ??= null;
    this.abort.abort();
  }
}

// --- WebSocketStream (not yet in TypeScript's DOM library) ---

interface WebSocketStreamConstructor {
  new (url: string): WebSocketStreamLike;
}
interface WebSocketStreamLike {
  readonly opened: Promise<{ readable: ReadableStream<ArrayBuffer | string>; writable: WritableStream<ArrayBuffer | Uint8Array> }>;
  readonly closed: Promise<{ closeCode?: number; reason?: string }>;
  close(info?: { closeCode?: number; reason?: string }): void;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new StreamError(`${what}: no answer within ${Math.round(ms / 1000)} s`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

async function openStream(Wss: WebSocketStreamConstructor, url: string, timeout: number, split: boolean): Promise<Opened> {
  let wss: WebSocketStreamLike;
  try {
    wss = new Wss(url);
  } catch (e) {
    throw new StreamError(`cannot connect to the relay: ${e instanceof Error ? e.message : String(e)}`);
  }
  // An unobserved rejection of `closed` would be reported as an error.
  wss.closed.catch(() => undefined);
  let io;
  try {
    io = await withTimeout(wss.opened, timeout, 'connecting to the relay', () => wss.close());
  } catch (e) {
    if (e instanceof StreamError) throw e;
    throw new StreamError('cannot connect to the relay (the connection was refused or the relay is down)');
  }
  const reader = io.readable.getReader();
  const writer = io.writable.getWriter();
  let ended = false;
  let endReason: string | undefined;
  let lastWrite: Promise<void> = Promise.resolve();
  let closed = false;
  let down: HttpDownstream | undefined;
  let directRead: { fn: ReadInto | undefined } | undefined;
  /** A first message read while looking for the downstream's token, not yet returned. */
  let early: Promise<ReadableStreamReadResult<ArrayBuffer | string>> | undefined;
  if (split) {
    early = reader.read();
    early.catch(() => undefined);
    const first = await Promise.race([early, sleep(TOKEN_WAIT_MS)]).catch(() => undefined);
    const token = first !== undefined && first !== 'timeout' && !first.done && typeof first.value === 'string' ? downstreamUrl(url, first.value) : undefined;
    if (token !== undefined) {
      early = undefined;
      const d = new HttpDownstream(token);
      if (!(await d.ready(DOWN_READY_MS))) {
        wss.close({ closeCode: 1000 });
        return NO_DOWNSTREAM;
      }
      down = d;
    }
  }
  const finish = (why: string | undefined) => {
    if (ended) return;
    ended = true;
    endReason = why;
  };
  return {
    async read() {
      if (closed) return null;
      if (down !== undefined) {
        // The WebSocket may have broken (a failed write): what the body still holds is read all the same.
        const b = await down.read();
        if (b === null) finish(down.ended ?? undefined);
        return b;
      }
      if (ended) return null;
      try {
        for (;;) {
          const r = await (early ?? reader.read());
          early = undefined;
          if (r.done) {
            finish(undefined);
            return null;
          }
          if (typeof r.value === 'string') {
            finish('the relay sent a text message');
            wss.close({ closeCode: 1003, reason: 'binary only' });
            return null;
          }
          if (r.value.byteLength > 0) return new Uint8Array(r.value);
        }
      } catch {
        finish('the connection to the relay broke');
        return null;
      }
    },
    async write(bytes) {
      if (ended) throw new StreamError('the connection to the relay is closed');
      try {
        for (let off = 0; off < bytes.length; off += MAX_MESSAGE) {
          await writer.ready;
          // Callers hand over fresh buffers and never reuse them, so the
          // stream may hold the chunk until it is sent without a copy.
          lastWrite = writer.write(bytes.subarray(off, Math.min(bytes.length, off + MAX_MESSAGE))).catch(() => undefined);
        }
        await writer.ready;
      } catch {
        finish('the connection to the relay broke');
        throw new StreamError('the connection to the relay broke');
      }
    },
    close() {
      closed = true;
      finish(endReason);
      down?.close();
      // After what was written went out: the last record must not be cut off.
      void lastWrite.finally(() => {
        try {
          wss.close({ closeCode: 1000 });
        } catch {
          // already closed
        }
      });
    },
    get endReason() {
      return endReason;
    },
    get downstream() {
      return down !== undefined ? 'http' : 'websocket';
    },
    get readInto() {
      // `down` is settled before the stream is handed out.
      return (directRead ??= { fn: direct(down, finish) }).fn;
    },
  };
}

/** The HTTP downstream's `readInto`, where it has one, ending the stream as `read` does. */
function direct(down: HttpDownstream | undefined, end: (why: string | undefined) => void): ReadInto | undefined {
  if (down === undefined || !down.byob) return undefined;
  return async (buf, offset) => {
    const r = await down.readInto(buf, offset);
    if (r === null) end(down.ended ?? undefined);
    return r;
  };
}

// --- plain WebSocket ---

function openPlain(url: string, timeout: number, maxQueued: number, split: boolean): Promise<Opened> {
  return new Promise<Opened>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      reject(new StreamError(`cannot connect to the relay: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    ws.binaryType = 'arraybuffer';
    const queue: Uint8Array[] = [];
    let queued = 0;
    let ended = false;
    let endReason: string | undefined;
    let waiter: ((v: Uint8Array | null) => void) | undefined;
    let opened = false;
    let overloaded = false;
    /** Looking at the first message for the downstream's token (until it comes, or TOKEN_WAIT_MS). */
    let expectToken = split;
    let tokenTimer: ReturnType<typeof setTimeout> | undefined;
    /** The token came: its response is awaited, and nothing else may come on the WebSocket. */
    let tokenSeen = false;
    let down: HttpDownstream | undefined;
    let directRead: { fn: ReadInto | undefined } | undefined;

    const end = (why: string | undefined) => {
      if (ended) return;
      ended = true;
      endReason = why;
      if (waiter !== undefined && queue.length === 0) {
        const w = waiter;
        waiter = undefined;
        w(null);
      }
    };
    const timer = setTimeout(() => {
      if (opened) return;
      ws.close();
      reject(new StreamError(`connecting to the relay: no answer within ${Math.round(timeout / 1000)} s`));
    }, timeout);

    ws.onmessage = (ev: MessageEvent) => {
      if (ended) return;
      const looking = expectToken;
      expectToken = false;
      clearTimeout(tokenTimer);
      const token = looking && typeof ev.data === 'string' ? downstreamUrl(url, ev.data) : undefined;
      if (token !== undefined) {
        tokenSeen = true;
        const d = new HttpDownstream(token);
        void d.ready(DOWN_READY_MS).then((ok) => {
          if (ok && !ended) {
            down = d;
            resolve(stream);
            return;
          }
          d.close();
          ended = true;
          ws.close(1000);
          resolve(NO_DOWNSTREAM);
        });
        return;
      }
      if (looking) resolve(stream); // an older relay: the WebSocket carries both directions
      if (tokenSeen || !(ev.data instanceof ArrayBuffer)) {
        end('the relay sent a text message');
        ws.close(1003, 'binary only');
        return;
      }
      const b = new Uint8Array(ev.data);
      if (b.length === 0) return;
      if (waiter !== undefined) {
        const w = waiter;
        waiter = undefined;
        w(b);
        return;
      }
      queued += b.length;
      queue.push(b);
      if (queued > maxQueued) {
        queue.length = 0;
        queued = 0;
        overloaded = true;
        end(`data arrived faster than this page could save it (over ${Math.round(maxQueued / 1048576)} MiB waiting)`);
        ws.close(1008, 'receiver overloaded');
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      clearTimeout(timer);
      if (!opened) {
        reject(new StreamError('cannot connect to the relay (the connection was refused or the relay is down)'));
        return;
      }
      clearTimeout(tokenTimer);
      end(ev.wasClean ? undefined : 'the connection to the relay broke');
      if (!tokenSeen) resolve(stream); // closed while looking for the token: reads say so
    };
    ws.onerror = () => {
      // `close` follows and says the rest.
    };
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      if (!split) return resolve(stream);
      tokenTimer = setTimeout(() => {
        expectToken = false;
        resolve(stream);
      }, TOKEN_WAIT_MS);
    };

    const drained = async () => {
      while (!ended && ws.readyState === WebSocket.OPEN && ws.bufferedAmount > LOW_WATER) {
        await new Promise((r) => setTimeout(r, 4));
      }
    };

    const stream: ByteStream = {
      read() {
        if (down !== undefined) {
          const d = down;
          return d.read().then((b) => {
            if (b === null) end(d.ended ?? undefined);
            return b;
          });
        }
        const b = queue.shift();
        if (b !== undefined) {
          queued -= b.length;
          return Promise.resolve(b);
        }
        if (ended) return Promise.resolve(null);
        return new Promise((r) => {
          waiter = r;
        });
      },
      async write(bytes) {
        for (let off = 0; off < bytes.length; off += MAX_MESSAGE) {
          if (ended || ws.readyState !== WebSocket.OPEN) throw new StreamError('the connection to the relay is closed');
          ws.send(bytes.subarray(off, Math.min(bytes.length, off + MAX_MESSAGE)));
          if (ws.bufferedAmount > HIGH_WATER) await drained();
        }
      },
      close() {
        clearTimeout(tokenTimer);
        end(endReason);
        down?.close();
        ws.close(1000);
      },
      get endReason() {
        return endReason;
      },
      get overloaded() {
        return overloaded;
      },
      get downstream() {
        return down !== undefined ? 'http' : 'websocket';
      },
      get readInto() {
        return (directRead ??= { fn: direct(down, end) }).fn;
      },
    };
  });
}
