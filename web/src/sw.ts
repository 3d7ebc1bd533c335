// The service worker behind streamed downloads, for browsers without the
// File System Access API.
//
// The page registers a download (an id and a MessagePort) and then navigates
// to `download/<id>/<name>` under this worker's scope. The worker answers
// that request with a streamed response whose `pull` asks the page for the
// next chunk, so the browser's download writer sets the pace all the way
// back to the network. The response waits until the page says what it is
// (its file name and, when known, its length), so the page may start the
// download from the user's click, before the first file is announced.
//
// Messages, page → worker (on the registration): {type:'register', id, port}
// and {type:'ping'}. Page → worker (on the port): {type:'start', name, size?},
// {type:'chunk', data}, {type:'end'}, {type:'error', message}. Worker →
// page (on the port): {type:'registered'}, {type:'requested'}, {type:'pull'},
// {type:'cancel'}.

/// <reference lib="webworker" />
export {};

declare const self: ServiceWorkerGlobalScope;

interface Pending {
  port: MessagePort;
  /** Set once the page says what the download is. */
  start?: { name: string; size?: number };
  onStart?: () => void;
  claimed: boolean;
  /** Registered at; an unclaimed registration is dropped after a while. */
  at: number;
}

const downloads = new Map<string, Pending>();
const UNCLAIMED_TTL_MS = 60_000;
const ID_RE = /^[0-9a-f]{32}$/;

self.addEventListener('install', () => {
  void self.skipWaiting();
});

self.addEventListener('activate', (ev: ExtendableEvent) => {
  ev.waitUntil(self.clients.claim());
});

self.addEventListener('message', (ev: ExtendableMessageEvent) => {
  const msg: unknown = ev.data;
  if (!isObject(msg)) return;
  if (msg.type === 'register' && typeof msg.id === 'string' && ID_RE.test(msg.id) && ev.ports[0] !== undefined) {
    const now = Date.now();
    for (const [id, d] of downloads) if (!d.claimed && now - d.at > UNCLAIMED_TTL_MS) downloads.delete(id);
    const port = ev.ports[0];
    const entry: Pending = { port, claimed: false, at: now };
    port.onmessage = (m: MessageEvent) => {
      const data: unknown = m.data;
      if (isObject(data) && data.type === 'start' && typeof data.name === 'string' && entry.start === undefined) {
        entry.start = { name: data.name, size: typeof data.size === 'number' ? data.size : undefined };
        entry.onStart?.();
      }
    };
    downloads.set(msg.id, entry);
    port.postMessage({ type: 'registered' });
  }
  // A 'ping' needs no answer: a message from a client keeps this worker alive
  // while a long download runs.
});

self.addEventListener('fetch', (ev: FetchEvent) => {
  const url = new URL(ev.request.url);
  const scope = new URL(self.registration.scope);
  if (url.origin !== scope.origin || !url.pathname.startsWith(`${scope.pathname}download/`)) return;
  const id = url.pathname.slice(scope.pathname.length + 'download/'.length).split('/')[0] ?? '';
  const d = downloads.get(id);
  if (d === undefined || d.claimed) {
    ev.respondWith(new Response('This download is over or was never started.', { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' } }));
    return;
  }
  d.claimed = true;
  downloads.delete(id);
  d.port.postMessage({ type: 'requested' });
  ev.respondWith(respond(d));
});

async function respond(d: Pending): Promise<Response> {
  if (d.start === undefined) await new Promise<void>((r) => (d.onStart = r));
  const { name, size } = d.start!;
  const port = d.port;
  let wake: ((m: unknown) => void) | undefined;
  port.onmessage = (m: MessageEvent) => {
    const w = wake;
    wake = undefined;
    w?.(m.data);
  };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        return new Promise<void>((resolve) => {
          wake = (msg: unknown) => {
            if (isObject(msg) && msg.type === 'chunk' && msg.data instanceof Uint8Array) {
              controller.enqueue(msg.data);
            } else if (isObject(msg) && msg.type === 'end') {
              controller.close();
              port.close();
            } else {
              const why = isObject(msg) && typeof msg.message === 'string' ? msg.message : 'the transfer failed';
              controller.error(new Error(why));
              port.close();
            }
            resolve();
          };
          port.postMessage({ type: 'pull' });
        });
      },
      cancel() {
        port.postMessage({ type: 'cancel' });
        port.close();
      },
    },
    { highWaterMark: 1 },
  );
  const headers = new Headers({
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': contentDisposition(name),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
  });
  if (size !== undefined && Number.isSafeInteger(size) && size >= 0) headers.set('Content-Length', String(size));
  return new Response(body, { status: 200, headers });
}

/** `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266, RFC 8187). */
function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%;]/g, '_') || 'download';
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
