// Shared pieces of both flows: the relay connection from the page's own
// origin, error display, progress display, and keeping the screen awake.

import { connectRelay, RelayError, webSocketUrl, type ConnectOptions, type Paired } from '../net/relay';
import { openWebSocket, StreamError } from '../net/stream';
import { SessionFailure } from '../session';
import { el, setState, setText, showError } from './dom';
import { Meter } from './format';

/**
 * Connects to the relay that served this page (its `ws` WebSocket), reading
 * the relay's bytes from a streamed HTTP response where the WebSocket is of
 * this page's origin (a redirect to another instance's origin keeps both
 * directions on the WebSocket: that fetch would need CORS).
 */
export async function connectHere(opts: Omit<ConnectOptions, 'url' | 'open'>): Promise<Paired> {
  const paired = await connectRelay({ ...opts, url: webSocketUrl(location.href), open: (u) => openWebSocket(u, { httpDownstream: sameOrigin(u) }) });
  // For whoever looks (and the end-to-end tests): which way the bytes come.
  document.body.dataset.downstream = paired.stream.downstream ?? 'websocket';
  return paired;
}

/** Whether the WebSocket URL `ws` is this page's origin (ws: for http:, wss: for https:). */
function sameOrigin(ws: string): boolean {
  const u = new URL(ws);
  return u.host === location.host && (u.protocol === 'wss:') === (location.protocol === 'https:');
}

/** Shows any failure as the error view with the right `data-error`. */
export function showFailure(e: unknown): void {
  if (e instanceof SessionFailure) return showError(e.kind, e.message);
  if (e instanceof RelayError) return showError('relay', `${e.message}.`);
  if (e instanceof StreamError) return showError('relay', `${e.message.charAt(0).toUpperCase()}${e.message.slice(1)}.`);
  if (e instanceof DOMException && e.name === 'AbortError') return showError('cancelled', 'Cancelled.');
  showError('protocol', `Something went wrong in this page: ${e instanceof Error ? e.message : String(e)}`);
}

/** The progress view: bar, bytes, rate and ETA, refreshed at most ten times a second. */
export class ProgressView {
  private meter: Meter | undefined;
  private pending: { done: number; file?: string } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  start(total: number, title: string): void {
    this.meter = new Meter(total);
    const bar = el<HTMLProgressElement>('progress', HTMLProgressElement);
    bar.max = Math.max(total, 1);
    bar.value = 0;
    setText('progress-title', title);
    setText('progress-text', this.meter.describe());
    setText('progress-file', '');
    setState('progress');
  }

  update(done: number, file?: string): void {
    this.pending = { done, file };
    this.timer ??= setTimeout(() => this.render(), 100);
  }

  /** Draws the last update now (e.g. before the done view). */
  render(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    const m = this.meter;
    if (p === undefined || m === undefined) return;
    m.done = p.done;
    el<HTMLProgressElement>('progress', HTMLProgressElement).value = p.done;
    setText('progress-text', m.describe());
    if (p.file !== undefined) setText('progress-file', p.file);
  }

  /** "in 12 s, 85.3 MiB/s on average" */
  summary(): string {
    const m = this.meter;
    if (m === undefined) return '';
    const s = m.elapsedSeconds();
    return s >= 0.5 ? ` in ${s < 10 ? s.toFixed(1) : Math.round(s)} s` : '';
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

interface WakeLockLike {
  release(): Promise<void>;
}

/** Keeps a phone's screen on during a transfer, where the browser allows it. */
export async function stayAwake(): Promise<() => void> {
  const wl = (navigator as { wakeLock?: { request(type: 'screen'): Promise<WakeLockLike> } }).wakeLock;
  if (wl === undefined) return () => undefined;
  try {
    const lock = await wl.request('screen');
    return () => void lock.release().catch(() => undefined);
  } catch {
    return () => undefined;
  }
}

/** Asks before the page is closed while a transfer runs. */
export function guardUnload(): () => void {
  const onBefore = (e: BeforeUnloadEvent) => {
    e.preventDefault();
  };
  window.addEventListener('beforeunload', onBefore);
  return () => window.removeEventListener('beforeunload', onBefore);
}
