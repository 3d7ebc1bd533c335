// Saving as a browser download streamed through the service worker (sw.ts),
// for browsers without the File System Access API. One file is downloaded
// as itself; several files or any folder as a zip made on the fly
// (client-zip, ZIP64 when needed). Nothing is held beyond a bounded pipe:
// the download pulls, the pipe drains, and the session reads on.
//
// The download is started from the click that accepted the offer (browsers
// want a user gesture for downloads); the worker holds the response until
// the page knows the file name and length.

import { makeZip, predictLength } from 'client-zip';
import { Pipe } from './pipe';
import { Conflict, FileSink, SaveEntry, SaveError, SaveOffer, SaveTarget } from './types';

let registration: Promise<ServiceWorkerRegistration | undefined> | undefined;

/**
 * Registers the worker once (at page load, so it is active by the time an
 * offer is accepted). Resolves to undefined where service workers are
 * unavailable (no support, private modes, insecure context).
 */
export function registerDownloadWorker(): Promise<ServiceWorkerRegistration | undefined> {
  registration ??= (async () => {
    if (!('serviceWorker' in navigator) || !isSecureContext) return undefined;
    try {
      await navigator.serviceWorker.register('sw.js', { scope: './' });
      return await withTimeout(navigator.serviceWorker.ready, 10_000);
    } catch {
      return undefined;
    }
  })();
  return registration;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Messages from the worker on a download's port. */
type WorkerMessage = { type: 'registered' | 'requested' | 'pull' | 'cancel' };

/**
 * Starts the download now (from the user's click) and returns the target
 * that feeds it. `onCancel` is called when the user cancels the download in
 * the browser.
 */
export async function startDownloadTarget(offer: SaveOffer, onCancel: (e: SaveError) => void): Promise<SaveTarget> {
  const reg = await registerDownloadWorker();
  const worker = reg?.active;
  if (worker === undefined || worker === null) throw new SaveError('the download helper (service worker) is not available', 2);
  const single = offer.files === 1 && offer.dirs === 0;
  const id = randomId();
  const channel = new MessageChannel();
  const port = channel.port1;
  const target = new DownloadTarget(port, single, zipName(offer), onCancel);
  const registered = target.waitFor('registered', 5_000);
  worker.postMessage({ type: 'register', id }, [channel.port2]);
  await registered;
  const requested = target.waitFor('requested', 10_000);
  const a = document.createElement('a');
  a.href = `download/${id}/${encodeURIComponent(single ? (offer.names[0] ?? 'download') : zipName(offer))}`;
  a.rel = 'noopener';
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  await requested;
  target.keepAlive(worker);
  return target;
}

/** `NAME.zip` for one top-level folder, else a dated name. */
function zipName(offer: SaveOffer): string {
  if (offer.names.length === 1 && offer.names[0] !== undefined) return `${offer.names[0]}.zip`;
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `pqdrop-${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}.zip`;
}

type ZipFolder = { name: string; lastModified: Date };
type ZipFileMeta = { name: string; lastModified: Date; size: number };
type ZipFile = ZipFileMeta & { input: AsyncIterable<Uint8Array> };

/** Where the bytes of the download come from. */
interface ChunkSource {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
}

class DownloadTarget implements SaveTarget {
  readonly path = 'sw-download' as const;
  private waiters = new Map<string, () => void>();
  private source: ChunkSource | undefined;
  private sourceReady: (() => void) | undefined;
  private readonly sourceSet: Promise<void>;
  private delivered: (() => void) | undefined;
  private readonly deliveredAll: Promise<void>;
  private failed: Error | undefined;
  private finished = false;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  /** Zip mode: one pipe per file, by entry index, made when first asked for. */
  private readonly pipes = new Map<number, Pipe>();
  private fileName = '';

  constructor(
    private readonly port: MessagePort,
    private readonly single: boolean,
    private readonly zipFileName: string,
    private readonly onCancel: (e: SaveError) => void,
  ) {
    this.sourceSet = new Promise((r) => (this.sourceReady = r));
    this.deliveredAll = new Promise((r) => (this.delivered = r));
    port.onmessage = (ev: MessageEvent<WorkerMessage>) => this.onMessage(ev.data);
  }

  waitFor(type: 'registered' | 'requested', ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(type);
        reject(new SaveError(type === 'registered' ? 'the download helper did not answer' : 'the browser did not start the download', 2));
      }, ms);
      this.waiters.set(type, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  keepAlive(worker: ServiceWorker): void {
    // A message from a page keeps the worker alive through a long download.
    this.pingTimer = setInterval(() => worker.postMessage({ type: 'ping' }), 10_000);
  }

  private onMessage(msg: WorkerMessage): void {
    const w = this.waiters.get(msg.type);
    if (w !== undefined) {
      this.waiters.delete(msg.type);
      w();
      return;
    }
    if (msg.type === 'pull') void this.pull();
    if (msg.type === 'cancel') {
      const e = new SaveError('the download was cancelled in the browser', 7);
      this.fail(e);
      this.onCancel(e);
    }
  }

  private async pull(): Promise<void> {
    await this.sourceSet;
    if (this.failed !== undefined) return this.port.postMessage({ type: 'error', message: this.failed.message });
    try {
      const src = this.source!;
      const r = await src.read();
      if (r.done) {
        this.port.postMessage({ type: 'end' });
        this.stop();
        this.delivered?.();
        return;
      }
      const v = r.value;
      // Transfer the bytes to the worker; copy only views of a larger buffer.
      const own = v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer ? v : v.slice();
      this.port.postMessage({ type: 'chunk', data: own }, [own.buffer as ArrayBuffer]);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failed ??= err;
      this.port.postMessage({ type: 'error', message: err.message });
      this.stop();
    }
  }

  private setSource(name: string, size: number | undefined, source: Pipe | ReadableStream<Uint8Array>): void {
    this.fileName = name;
    this.port.postMessage({ type: 'start', name, size });
    if (source instanceof Pipe) {
      this.source = {
        read: async () => {
          const c = await source.read();
          return c === null ? { done: true } : { done: false, value: c };
        },
      };
    } else {
      const reader = source.getReader();
      this.source = {
        read: async () => {
          const r = await reader.read();
          return r.done ? { done: true } : { done: false, value: r.value };
        },
      };
    }
    this.sourceReady?.();
  }

  async conflict(): Promise<Conflict | undefined> {
    return undefined; // a download never replaces anything; the browser picks a free name
  }

  async prepare(entries: readonly SaveEntry[]): Promise<void> {
    if (this.single) return;
    const items: (ZipFolder | ZipFileMeta)[] = entries.map((e) =>
      e.kind === 'folder'
        ? { name: `${e.path.join('/')}/`, lastModified: new Date(e.mtime * 1000) }
        : { name: e.path.join('/'), lastModified: new Date(e.mtime * 1000), size: e.size },
    );
    let length: number | undefined;
    try {
      length = Number(predictLength(items));
    } catch {
      length = undefined;
    }
    const pipes = this.pipes;
    const pipeFor = (i: number) => {
      let p = pipes.get(i);
      if (p === undefined) pipes.set(i, (p = new Pipe()));
      return p;
    };
    // A file's pipe is made by whichever side asks first (the zip writer or
    // the session) and forgotten once the zip writer has read all of it.
    async function* consume(index: number): AsyncGenerator<Uint8Array> {
      try {
        yield* pipeFor(index);
      } finally {
        pipes.delete(index);
      }
    }
    async function* files(): AsyncGenerator<ZipFolder | ZipFile> {
      for (let k = 0; k < entries.length; k++) {
        const e = entries[k]!;
        const item = items[k]!;
        if (e.kind === 'folder' || !('size' in item)) yield item;
        else yield { ...item, input: consume(e.index) };
      }
    }
    this.setSource(this.zipFileName, length, makeZip(files(), { buffersAreUTF8: true }));
    this.pipeFor = pipeFor;
  }

  private pipeFor: (i: number) => Pipe = () => {
    throw new Error('prepare was not called');
  };

  async beginFile(entry: SaveEntry): Promise<FileSink> {
    if (this.failed !== undefined) throw this.failed;
    let pipe: Pipe;
    if (this.single) {
      if (this.source !== undefined) throw new SaveError('the sender sent more than the one file it offered', 2);
      pipe = new Pipe();
      this.pipes.set(entry.index, pipe);
      this.setSource(entry.path[entry.path.length - 1]!, entry.stream === true ? undefined : entry.size, pipe);
    } else {
      pipe = this.pipeFor(entry.index);
    }
    return {
      write: async (b) => {
        try {
          await pipe.write(b);
        } catch (e) {
          throw this.failed ?? (e instanceof Error ? e : new Error(String(e)));
        }
      },
      // Waits until the download took all of it, so that only one file's
      // bytes are ever buffered, however many files there are.
      commit: async () => {
        pipe.close();
        await pipe.drained();
        if (this.failed !== undefined) throw this.failed;
      },
      discard: async () => {
        const e = new SaveError('a file failed verification; the download was stopped', 2);
        pipe.fail(e);
        this.fail(e);
      },
    };
  }

  async finish(): Promise<string[]> {
    this.finished = true;
    if (this.single && this.source === undefined) {
      // The one offered file was a folder after all: an empty download.
      this.setSource('download', 0, closedPipe());
    }
    await this.deliveredAll;
    if (this.failed !== undefined) throw this.failed;
    return [`The download of “${this.fileName}” was started; your browser saves it in its downloads folder.`];
  }

  async abort(reason: Error): Promise<void> {
    if (this.finished && this.failed === undefined) return;
    this.fail(reason instanceof SaveError ? reason : new SaveError(reason.message, 2));
    if (this.source === undefined) {
      // The worker still waits for a name: answer so that it can fail the download.
      this.setSource('download', undefined, closedPipe());
    }
    this.sourceReady?.();
  }

  private fail(e: Error): void {
    this.failed ??= e;
    // Readers (the zip writer, the worker's pulls) and writers (the session) both stop.
    for (const p of this.pipes.values()) {
      p.fail(e);
      p.cancel(e);
    }
    this.stop();
    this.delivered?.();
  }

  private stop(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }
}

function closedPipe(): Pipe {
  const p = new Pipe();
  p.close();
  return p;
}
