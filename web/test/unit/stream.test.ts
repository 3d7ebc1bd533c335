import { afterEach, describe, expect, it, vi } from 'vitest';

import { downstreamUrl, openWebSocket } from '../../src/net/stream';

const token = '0123456789abcdef0123456789abcdef';

describe('the downstream over HTTP (§9.8)', () => {
  it('is beside the WebSocket, with its origin and the matching http scheme', () => {
    expect(downstreamUrl('ws://127.0.0.1:8080/ws?down=http', `down ${token}`)).toBe(`http://127.0.0.1:8080/down/${token}`);
    expect(downstreamUrl('wss://drop.example.org/pq/ws?down=http', `down ${token}`)).toBe(`https://drop.example.org/pq/down/${token}`);
  });
  it('takes only a well-formed token message', () => {
    for (const m of ['', 'down', `down ${token.toUpperCase()}`, `down ${token}0`, `down ../${token.slice(3)}`, `Down ${token}`, `down  ${token}`]) {
      expect(downstreamUrl('ws://h/ws', m)).toBeUndefined();
    }
  });
});

/** A plain WebSocket that the test drives by hand. */
class FakeWebSocket {
  static readonly OPEN = 1;
  static last: FakeWebSocket | undefined;
  binaryType = 'blob';
  readyState = 1;
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  onopen: (() => void) | undefined;
  onmessage: ((ev: { data: unknown }) => void) | undefined;
  onclose: ((ev: { wasClean: boolean }) => void) | undefined;
  onerror: (() => void) | undefined;
  constructor(readonly url: string) {
    FakeWebSocket.last = this;
    queueMicrotask(() => this.onopen?.());
  }
  send(b: Uint8Array) {
    this.sent.push(b.slice());
  }
  close() {
    this.readyState = 3;
  }
  message(data: string | Uint8Array) {
    this.onmessage?.({ data: typeof data === 'string' ? data : data.slice().buffer });
  }
}

/** A response body of these chunks, then `end` ('done', or an error). */
function body(chunks: Uint8Array[], end: 'done' | 'cut'): Response {
  let i = 0;
  return new Response(
    new ReadableStream<Uint8Array>({
      pull(c) {
        if (i < chunks.length) c.enqueue(chunks[i++]!);
        else if (end === 'done') c.close();
        else c.error(new TypeError('network error'));
      },
    }),
  );
}

async function readAll(s: { read(): Promise<Uint8Array | null> }): Promise<number[]> {
  const out: number[] = [];
  for (let b = await s.read(); b !== null; b = await s.read()) out.push(...b);
  return out;
}

/** Lets the fake socket's open (a microtask) and the page's reaction run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('openWebSocket with httpDownstream (a plain WebSocket)', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('reads the relay from GET down/TOKEN when the first message is the token', async () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const fetch = vi.fn(async (_url: string) => body([Uint8Array.of(1, 2), Uint8Array.of(3)], 'done'));
    vi.stubGlobal('fetch', fetch);
    const opening = openWebSocket('ws://h:1/ws', { preferStreams: false, httpDownstream: true });
    const ws = FakeWebSocket.last!;
    expect(ws.url).toBe('ws://h:1/ws?down=http');
    await settle();
    ws.message(`down ${token}`);
    // Opening waits for the downstream's response: nothing is sent before it came.
    const s = await opening;
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(fetch.mock.calls[0]![0]).toBe(`http://h:1/down/${token}`);
    await s.write(Uint8Array.of(9));
    expect(ws.sent).toEqual([Uint8Array.of(9)]);
    expect(await readAll(s)).toEqual([1, 2, 3]);
    expect(s.endReason).toBeUndefined();
    expect(s.downstream).toBe('http');
  });

  it('keeps reading the WebSocket from a relay that sends no token', async () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const fetch = vi.fn();
    vi.stubGlobal('fetch', fetch);
    const opening = openWebSocket('ws://h:1/ws', { preferStreams: false, httpDownstream: true });
    const ws = FakeWebSocket.last!;
    await settle();
    ws.message(Uint8Array.of(4, 5));
    const s = await opening;
    expect([...(await s.read())!]).toEqual([4, 5]);
    // Only the first message may be the token: later text is an error.
    ws.message(`down ${token}`);
    expect(await s.read()).toBeNull();
    expect(s.endReason).toBe('the relay sent a text message');
    expect(fetch).not.toHaveBeenCalled();
    expect(s.downstream).toBe('websocket');
  });

  it('reports a downstream cut off before its last chunk as a broken connection', async () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    vi.stubGlobal('fetch', async () => body([Uint8Array.of(1)], 'cut'));
    const opening = openWebSocket('ws://h:1/ws', { preferStreams: false, httpDownstream: true });
    await settle();
    FakeWebSocket.last!.message(`down ${token}`);
    const s = await opening;
    expect(await readAll(s)).toEqual([1]);
    expect(s.endReason).toBe('the connection to the relay broke');
  });

  it('opens a plain WebSocket instead when the downstream is refused (another instance behind a load balancer)', async () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    vi.stubGlobal('fetch', async () => new Response('no such downstream', { status: 404 }));
    const opening = openWebSocket('ws://h:1/ws', { preferStreams: false, httpDownstream: true });
    const first = FakeWebSocket.last!;
    await settle();
    first.message(`down ${token}`);
    const s = await opening;
    expect(first.readyState).toBe(3); // closed, before any hello went out on it
    expect(first.sent).toEqual([]);
    const second = FakeWebSocket.last!;
    expect(second).not.toBe(first);
    expect(second.url).toBe('ws://h:1/ws');
    expect(s.downstream).toBe('websocket');
    second.message(Uint8Array.of(6));
    expect([...(await s.read())!]).toEqual([6]);
  });
});
