// Whole transfers through the session glue (handshake, record pump, transfer
// machines, save targets) between the page's two roles, over an in-memory
// byte pipe instead of a WebSocket; and the relay client (§9) against a fake
// relay.

import { describe, expect, it } from 'vitest';
import { parseCode } from '../../src/proto/code';
import { pageCapabilities } from '../../src/proto/caps';
import type { ByteStream } from '../../src/net/stream';
import { connectRelay, encodeHello, parseStatus, redirectUrl, webSocketUrl, RelayError } from '../../src/net/relay';
import { receive, send, SessionFailure, checkSendable, type SendItem, type ReceiveHooks, type OfferView } from '../../src/session';
import { SaveError, type Conflict, type FileSink, type SaveEntry, type SaveTarget } from '../../src/app/save/types';

/** Two connected ends; bytes are delivered in pieces of random size, as TCP might. */
/**
 * Two connected in-memory streams. `split` cuts what is written into random
 * pieces; `readInto` gives both ends a `readInto` (as the HTTP downstream
 * has), which transfers the caller's buffer like a BYOB read, and counts its
 * calls in `directReads`.
 */
function pipePair(
  opts: { split?: boolean; readInto?: boolean; directReads?: { n: number } } = {},
): [ByteStream & { kill(): void }, ByteStream & { kill(): void }] {
  type Side = { queue: Uint8Array[]; waiter?: (b: Uint8Array | null) => void; closed: boolean };
  const a: Side = { queue: [], closed: false };
  const b: Side = { queue: [], closed: false };
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const deliver = (to: Side, bytes: Uint8Array) => {
    if (to.closed) return;
    const pieces: Uint8Array[] = [];
    if (opts.split === false) pieces.push(bytes.slice());
    else for (let off = 0; off < bytes.length; ) {
      const n = Math.min(bytes.length - off, 1 + (rnd() % 300_000));
      pieces.push(bytes.slice(off, off + n));
      off += n;
    }
    for (const p of pieces) {
      if (to.waiter !== undefined) {
        const w = to.waiter;
        to.waiter = undefined;
        w(p);
      } else to.queue.push(p);
    }
  };
  const end = (me: Side, other: Side): ByteStream & { kill(): void } => {
    const close = () => {
      for (const s of [me, other]) {
        if (s.closed) continue;
        s.closed = true;
        if (s.waiter !== undefined && s.queue.length === 0) {
          const w = s.waiter;
          s.waiter = undefined;
          w(null);
        }
      }
    };
    return {
      read() {
        const q = me.queue.shift();
        if (q !== undefined) return Promise.resolve(q);
        if (me.closed) return Promise.resolve(null);
        return new Promise((r) => (me.waiter = r));
      },
      async write(bytes) {
        if (me.closed) throw new Error('closed');
        await Promise.resolve();
        deliver(other, bytes);
      },
      close: () => {
        // Like TCP: what was written still arrives, then the end.
        setTimeout(close, 0);
      },
      kill: () => {
        // A broken connection: what was in flight is lost.
        me.queue.length = 0;
        other.queue.length = 0;
        close();
      },
      endReason: undefined,
      readInto: opts.readInto !== true ? undefined : async (buf, offset) => {
        const q = me.queue.shift() ?? (me.closed ? null : await new Promise<Uint8Array | null>((r) => (me.waiter = r)));
        if (q === null) return null;
        const n = Math.min(q.length, buf.length - offset);
        if (n < q.length) me.queue.unshift(q.subarray(n));
        buf.set(q.subarray(0, n), offset);
        if (opts.directReads) opts.directReads.n++;
        // Like a BYOB read: the caller's buffer is detached, the bytes live on in a new ArrayBuffer object.
        const { byteOffset, length } = buf;
        const moved = structuredClone(buf.buffer, { transfer: [buf.buffer] });
        return { buf: new Uint8Array(moved, byteOffset, length), n };
      },
    };
  };
  return [end(a, b), end(b, a)];
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** A save target that keeps files in memory. */
class MemoryTarget implements SaveTarget {
  readonly path = 'blob' as const;
  files = new Map<string, Uint8Array>();
  folders: string[] = [];
  existing = new Set<string>();
  aborted: Error | undefined;
  discarded: string[] = [];
  finished = false;
  failWrites = false;

  async conflict(e: SaveEntry): Promise<Conflict | undefined> {
    const p = e.path.join('/');
    return this.existing.has(p) ? { path: p, replaceable: true } : undefined;
  }
  async prepare(entries: readonly SaveEntry[]): Promise<void> {
    for (const e of entries) if (e.kind === 'folder') this.folders.push(e.path.join('/'));
  }
  began = 0;
  async beginFile(e: SaveEntry): Promise<FileSink> {
    this.began++;
    const parts: Uint8Array[] = [];
    const p = e.path.join('/');
    return {
      write: async (b) => {
        if (this.failWrites) throw new SaveError('disk full', 3);
        parts.push(b.slice());
      },
      commit: async () => {
        const all = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
        let off = 0;
        for (const x of parts) {
          all.set(x, off);
          off += x.length;
        }
        this.files.set(p, all);
      },
      discard: async () => {
        this.discarded.push(p);
      },
    };
  }
  async finish(): Promise<string[]> {
    this.finished = true;
    return [`saved ${this.files.size} files`];
  }
  async abort(reason: Error): Promise<void> {
    this.aborted = reason;
  }
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function items(): { items: SendItem[]; content: Map<string, Uint8Array> } {
  const content = new Map<string, Uint8Array>([
    ['tree/a.txt', new TextEncoder().encode('hello')],
    ['tree/sub/big.bin', bytes(3 * 1024 * 1024 + 17, 1)],
    ['tree/sub/empty', new Uint8Array(0)],
    ['tree/ünï cödé.txt', bytes(70_000, 2)],
    ['single.bin', bytes(1_000_000, 3)],
  ]);
  const list: SendItem[] = [
    { entry: { kind: 'folder', path: 'tree' } },
    { entry: { kind: 'folder', path: 'tree/sub' } },
    { entry: { kind: 'folder', path: 'tree/empty-folder' } },
  ];
  for (const [path, data] of content) {
    list.push({ entry: { kind: 'file', path, size: data.length, mtime: 1_700_000_000 }, file: new Blob([data as BlobPart]) });
  }
  return { items: list, content };
}

interface RunOptions {
  senderCode?: string;
  receiverCode?: string;
  senderCaps?: number;
  receiverCaps?: number;
  hooks?: Partial<ReceiveHooks>;
  target?: MemoryTarget;
  sendAbort?: AbortController;
  receiveAbort?: AbortController;
  items?: SendItem[];
  onPipe?: (ends: ReturnType<typeof pipePair>) => void;
  /** Give the connections a `readInto`, counting its calls here. */
  directReads?: { n: number };
}

async function run(o: RunOptions = {}) {
  const ends = pipePair({ readInto: o.directReads !== undefined, directReads: o.directReads });
  o.onPipe?.(ends);
  const [toReceiver, toSender] = ends;
  const target = o.target ?? new MemoryTarget();
  const offers: OfferView[] = [];
  const hooks: ReceiveHooks = {
    onOffer: async (v) => {
      offers.push(v);
      return target;
    },
    onConflicts: async () => false,
    ...o.hooks,
  };
  const picked = o.items ?? items().items;
  const [r, s] = await Promise.allSettled([
    receive({
      stream: toSender,
      code: parseCode(o.receiverCode ?? '7-lemon-tiger'),
      caps: o.receiverCaps ?? pageCapabilities(),
      hooks,
      signal: o.receiveAbort?.signal,
    }),
    send({
      stream: toReceiver,
      code: parseCode(o.senderCode ?? '7-lemon-tiger'),
      caps: o.senderCaps ?? pageCapabilities(),
      items: picked,
      hooks: {},
      signal: o.sendAbort?.signal,
    }),
  ]);
  return { r, s, target, offers };
}

function failureKind(p: PromiseSettledResult<unknown>): string {
  if (p.status === 'fulfilled') return 'ok';
  return p.reason instanceof SessionFailure ? p.reason.kind : `unexpected: ${String(p.reason)}`;
}

describe('a whole transfer between the page roles', () => {
  for (const [name, caps] of [
    ['ChaCha20-Poly1305', 0x02 | 0x20 | 0x40 | 0x100],
    ['AES-256-GCM (WebCrypto)', 0x01 | 0x02 | 0x20 | 0x40 | 0x100],
    ['the cascade, hashed files, no Stop codes', 0x04 | 0x02],
  ] as const) {
    it(`moves files and folders intact: ${name}`, async () => {
      const { content } = items();
      const { r, s, target, offers } = await run({ senderCaps: caps, receiverCaps: caps });
      expect(failureKind(r)).toBe('ok');
      expect(failureKind(s)).toBe('ok');
      expect(offers).toHaveLength(1);
      expect(offers[0]!.files).toBe(5);
      expect(offers[0]!.dirs).toBe(3);
      expect(offers[0]!.names).toEqual(['tree', 'single.bin']);
      expect(target.finished).toBe(true);
      expect(target.folders).toEqual(['tree', 'tree/sub', 'tree/empty-folder']);
      expect([...target.files.keys()].sort()).toEqual([...content.keys()].sort());
      for (const [path, data] of content) expect(equal(target.files.get(path)!, data)).toBe(true);
    }, 30_000);
  }

  for (const [name, caps] of [
    ['ChaCha20-Poly1305, opened in place', 0x02 | 0x20 | 0x40 | 0x100],
    ['AES-256-GCM (WebCrypto)', 0x01 | 0x02 | 0x20 | 0x40 | 0x100],
  ] as const) {
    it(`moves files intact when large bodies are read straight into their buffers: ${name}`, async () => {
      const { content } = items();
      const directReads = { n: 0 };
      const { r, s, target } = await run({ senderCaps: caps, receiverCaps: caps, directReads });
      expect(failureKind(r)).toBe('ok');
      expect(failureKind(s)).toBe('ok');
      expect(directReads.n).toBeGreaterThan(0);
      for (const [path, data] of content) expect(equal(target.files.get(path)!, data)).toBe(true);
    }, 30_000);
  }

  it('reports a wrong code on both sides, before anything moves', async () => {
    const target = new MemoryTarget();
    const { r, s, offers } = await run({ receiverCode: '7-lemon-tigers', target });
    expect(failureKind(r)).toBe('wrong-code');
    expect(failureKind(s)).toBe('wrong-code');
    expect(offers).toHaveLength(0);
    expect(target.files.size).toBe(0);
  });

  it('declines: the receiver saves nothing and the sender is told', async () => {
    const { r, s, target } = await run({ hooks: { onOffer: async () => null } });
    expect(failureKind(r)).toBe('declined');
    expect(failureKind(s)).toBe('declined');
    expect(target.files.size).toBe(0);
  });

  it('asks before replacing existing files, and stops when told not to', async () => {
    const target = new MemoryTarget();
    target.existing.add('tree/a.txt');
    let asked: readonly Conflict[] = [];
    const { r, s } = await run({
      target,
      hooks: {
        onConflicts: async (c) => {
          asked = c;
          // Ready is held while the user decides: no data may arrive meanwhile.
          await new Promise((r) => setTimeout(r, 200));
          expect(target.began).toBe(0);
          return false;
        },
      },
    });
    expect(asked.map((c) => c.path)).toEqual(['tree/a.txt']);
    expect(failureKind(r)).toBe('cancelled');
    expect(failureKind(s)).toBe('cancelled');
    expect(target.files.size).toBe(0);
  });

  it('replaces existing files when the user allows it', async () => {
    const target = new MemoryTarget();
    target.existing.add('single.bin');
    const { r, s } = await run({
      target,
      hooks: {
        onConflicts: async () => {
          await new Promise((res) => setTimeout(res, 200));
          expect(target.began).toBe(0);
          return true;
        },
      },
    });
    expect(failureKind(r)).toBe('ok');
    expect(failureKind(s)).toBe('ok');
    expect(target.files.has('single.bin')).toBe(true);
  });

  it('a local save failure stops the transfer on both sides and keeps nothing half-written', async () => {
    const target = new MemoryTarget();
    target.failWrites = true;
    const { r, s } = await run({ target });
    expect(failureKind(r)).toBe('local');
    expect(failureKind(s)).toBe('cancelled');
    expect(r.status === 'rejected' && (r.reason as Error).message).toMatch(/disk full/i);
    expect(s.status === 'rejected' && (s.reason as Error).message).toMatch(/no space left/);
    expect(target.aborted).toBeDefined();
    expect(target.files.size).toBe(0);
  });

  it('cancel on the receiver sends Stop(7), reported on both sides', async () => {
    const ctl = new AbortController();
    const target = new MemoryTarget();
    const { r, s } = await run({ target, receiveAbort: ctl, hooks: { onOffer: async () => (setTimeout(() => ctl.abort(), 0), target) } });
    expect(failureKind(r)).toBe('cancelled');
    expect(failureKind(s)).toBe('cancelled');
    expect(s.status === 'rejected' && (s.reason as Error).message).toMatch(/its user cancelled/);
    expect(target.aborted).toBeDefined();
  });

  it('cancel on the sender while the receiver decides', async () => {
    const ctl = new AbortController();
    const { r, s, target } = await run({
      sendAbort: ctl,
      hooks: {
        onOffer: () =>
          new Promise((resolve) => {
            ctl.abort();
            setTimeout(() => resolve(null), 50);
          }),
      },
    });
    expect(failureKind(s)).toBe('cancelled');
    expect(failureKind(r)).toBe('cancelled');
    expect(target.files.size).toBe(0);
  });

  it('a connection that drops mid-transfer is "disconnected", and nothing unfinished is kept', async () => {
    const target2 = new MemoryTarget();
    let ends2: ReturnType<typeof pipePair> | undefined;
    let seen = 0;
    const res = await run({
      target: target2,
      onPipe: (e) => (ends2 = e),
      // More than the receiver reads ahead (16 MiB), so that the end of it is lost.
      items: [{ entry: { kind: 'file', path: 'big', size: 40 * 1024 * 1024 }, file: new Blob([bytes(40 * 1024 * 1024, 9) as BlobPart]) }],
      hooks: {
        onOffer: async () => target2,
        onProgress: (p) => {
          seen = p.done;
          if (p.done > 0) ends2![0].kill();
        },
      },
    });
    expect(seen).toBeGreaterThan(0);
    expect(failureKind(res.r)).toBe('disconnected');
    expect(failureKind(res.s)).toBe('disconnected');
    expect(target2.files.size).toBe(0);
    expect(target2.aborted).toBeDefined();
  });

  it('refuses to start with names a receiver would refuse', () => {
    expect(() => checkSendable([{ entry: { kind: 'file', path: 'a:b', size: 0 } }])).toThrow(RangeError);
    expect(() => checkSendable([{ entry: { kind: 'file', path: 'CON.txt', size: 0 } }])).toThrow(RangeError);
    expect(() => checkSendable([{ entry: { kind: 'file', path: 'ok.txt', size: 0 } }])).not.toThrow();
  });

  it('times out a handshake the other side never answers', async () => {
    const [, toSender] = pipePair();
    const t0 = Date.now();
    await expect(
      receive({ stream: toSender, code: parseCode('7-lemon-tiger'), caps: pageCapabilities(), handshakeTimeoutMs: 200, hooks: { onOffer: async () => null, onConflicts: async () => false } }),
    ).rejects.toMatchObject({ kind: 'disconnected' });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

// --- the relay client -----------------------------------------------------------

// Node's fs without Node's type declarations (the project compiles against the DOM only).
const fsModule = 'node:fs';
const { readFileSync } = (await import(/* @vite-ignore */ fsModule)) as { readFileSync(p: URL, enc: 'utf8'): string };
const asciiHex = (s: string) => hex(new TextEncoder().encode(s));

interface RelayVectors {
  hellos: { version: number; role: number; flags: number | null; nameplate: string; hex: string }[];
  statuses: { code: number; message: string; hex: string }[];
}
const vectors = JSON.parse(readFileSync(new URL('../../../vectors/relay.json', import.meta.url), 'utf8')) as RelayVectors;

/** A fake relay connection that answers the hello with `replies` (hex), then carries `after`. */
function fakeRelay(replies: string, after = ''): { stream: ByteStream; written: Uint8Array[]; closed: () => boolean } {
  const written: Uint8Array[] = [];
  let closed = false;
  const chunks = [unhex(replies + after)];
  return {
    written,
    closed: () => closed,
    stream: {
      async read() {
        // one byte at a time first: statuses may arrive split
        const c = chunks.shift();
        if (c === undefined) return null;
        if (c.length > 1) chunks.unshift(c.subarray(1));
        return c.subarray(0, 1);
      },
      async write(b) {
        written.push(b.slice());
      },
      close() {
        closed = true;
      },
      endReason: undefined,
    },
  };
}

describe('the relay client (§9)', () => {
  it('encodes version-2 hellos as in vectors/relay.json', () => {
    for (const v of vectors.hellos) {
      if (v.version !== 2 || v.flags === null || v.flags > 1) continue;
      expect(hex(encodeHello(v.role as 1 | 2, v.nameplate, v.flags === 1))).toBe(v.hex);
    }
  });

  it('parses statuses as in vectors/relay.json, and waits for a whole one', () => {
    for (const v of vectors.statuses) {
      const b = unhex(v.hex);
      const p = parseStatus(b)!;
      expect(p.status.code).toBe(v.code);
      expect(new TextDecoder().decode(p.status.message)).toBe(v.message);
      expect(p.used).toBe(b.length);
      expect(parseStatus(b.subarray(0, b.length - 1))).toBeUndefined();
    }
  });

  it('an allocating sender learns its nameplate, waits, pairs, and keeps the session bytes after status 1', async () => {
    const f = fakeRelay('02023137' + '000777616974696e67' + '0100', 'abcdef');
    const events: string[] = [];
    const paired = await connectRelay({
      url: 'ws://127.0.0.1/ws',
      role: 1,
      nameplate: '',
      open: async () => f.stream,
      onAllocated: (n) => events.push(`allocated ${n}`),
      onWaiting: () => events.push('waiting'),
    });
    expect(events).toEqual(['allocated 17', 'waiting']);
    expect(paired.nameplate).toBe('17');
    expect(hex(f.written[0]!)).toBe('7071647202010000');
    const rest: number[] = [];
    for (;;) {
      const b = await paired.stream.read();
      if (b === null) break;
      rest.push(...b);
    }
    expect(hex(Uint8Array.from(rest))).toBe('abcdef');
  });

  it('keeps the connection\'s downstream and readInto when session bytes came with status 1', async () => {
    const chunks = [unhex('0100abcd')];
    const readInto = async () => null;
    const stream: ByteStream = {
      read: async () => chunks.shift() ?? null,
      write: async () => undefined,
      close: () => undefined,
      endReason: undefined,
      downstream: 'http',
      readInto,
    };
    const paired = await connectRelay({ url: 'ws://127.0.0.1/ws', role: 2, nameplate: '42', open: async () => stream });
    expect(paired.stream).not.toBe(stream); // the session bytes are put in front
    expect(paired.stream.downstream).toBe('http');
    expect(paired.stream.readInto).toBeUndefined(); // not before those bytes were read
    expect(hex((await paired.stream.read())!)).toBe('abcd');
    expect(paired.stream.readInto).toBe(readInto);
  });

  it('follows one redirect with the redirected flag, and no second one', async () => {
    const page = 'https://relay2.example.org/';
    const msg = asciiHex(page);
    const redirect = `03${page.length.toString(16).padStart(2, '0')}${msg}`;
    const opened: string[] = [];
    const conns = [fakeRelay(redirect), fakeRelay('0100')];
    const paired = await connectRelay({ url: 'ws://a/ws', role: 2, nameplate: '42', open: async (u) => (opened.push(u), conns.shift()!.stream) });
    expect(opened).toEqual(['ws://a/ws', 'wss://relay2.example.org/ws']);
    expect(paired.redirected).toBe(true);

    const twice = [fakeRelay(redirect), fakeRelay(redirect)];
    await expect(connectRelay({ url: 'ws://a/ws', role: 2, nameplate: '42', open: async () => twice.shift()!.stream })).rejects.toThrow(/twice/);
  });

  it('names the meaning of an error status and shows the message with control characters replaced', async () => {
    const m = asciiHex('busy\x1b[31m now');
    const f = fakeRelay(`12${(m.length / 2).toString(16).padStart(2, '0')}${m}`);
    const err = await connectRelay({ url: 'ws://a/ws', role: 2, nameplate: '42', open: async () => f.stream }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RelayError);
    expect((err as RelayError).code).toBe(18);
    expect((err as Error).message).toContain('status 18: the relay is full');
    expect((err as Error).message).toContain('busy\uFFFD[31m now');
    expect(f.closed()).toBe(true);
  });

  it('treats an unknown status code as an error, and a relay that closes early as one too', async () => {
    const e1 = await connectRelay({ url: 'ws://a/ws', role: 2, nameplate: '42', open: async () => fakeRelay('1a00').stream }).catch((e: unknown) => e);
    expect((e1 as Error).message).toContain('status 26');
    const e2 = await connectRelay({ url: 'ws://a/ws', role: 2, nameplate: '42', open: async () => fakeRelay('').stream }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(RelayError);
  });

  it('maps page URLs to their WebSocket and refuses odd redirects', () => {
    expect(webSocketUrl('http://127.0.0.1:8080/')).toBe('ws://127.0.0.1:8080/ws');
    expect(webSocketUrl('https://x.org/drop/#7-a-b')).toBe('wss://x.org/drop/ws');
    expect(() => redirectUrl(new TextEncoder().encode('javascript:alert(1)'))).toThrow(RelayError);
    expect(() => redirectUrl(new TextEncoder().encode('relay2:4733'))).toThrow(RelayError);
  });
});
