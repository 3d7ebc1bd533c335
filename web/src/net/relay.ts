// The relay protocol, client side (PROTOCOL.md §9), over the relay's
// WebSocket: a version-2 hello, then statuses until "paired", after which
// the connection is the byte pipe of the end-to-end session.

import { ProtocolError, Reader, Writer } from '../proto/codec';
import type { ByteStream } from './stream';

export const ROLE_SENDER = 1;
export const ROLE_RECEIVER = 2;
export type RelayRole = typeof ROLE_SENDER | typeof ROLE_RECEIVER;

const MAGIC = Uint8Array.of(0x70, 0x71, 0x64, 0x72); // "pqdr"
const FLAG_REDIRECTED = 1;
/** §9.2: a status message is at most 512 bytes. */
const MAX_STATUS_MESSAGE = 512;

export const STATUS_WAITING = 0;
export const STATUS_PAIRED = 1;
export const STATUS_ALLOCATED = 2;
export const STATUS_REDIRECT = 3;

/** §9.2's meaning of each error code, for the user. */
const ERROR_MEANINGS: ReadonlyMap<number, string> = new Map([
  [16, 'room taken: someone with the same role already waits under this number'],
  [17, 'too many waiting rooms from your address'],
  [18, 'the relay is full'],
  [19, 'too many connections from your address'],
  [20, 'timed out waiting for the other side'],
  [21, 'the relay did not understand the request (bad hello)'],
  [22, 'the relay is shutting down'],
  [23, 'too many bytes before the other side arrived'],
  [24, 'the relay directory is unavailable; try again'],
  [25, 'cannot redirect: the other side waits at another relay instance'],
]);

/** The relay refused or ended the connection, or broke its protocol. The relay's side, or the network's. */
export class RelayError extends Error {
  constructor(
    message: string,
    /** The status code, when the relay sent one. */
    readonly code?: number,
  ) {
    super(message);
    this.name = 'RelayError';
  }
}

/** The relay's status message as safe text: control characters replaced, at most 512 bytes already. */
export function cleanStatusMessage(bytes: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  // C0, DEL, C1, and the line/paragraph separators and bidirectional controls.
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]/g, '\uFFFD');
}

/** The user-facing text of an error status. */
export function describeStatus(code: number, message: Uint8Array): string {
  const meaning = ERROR_MEANINGS.get(code) ?? 'an error this page does not know';
  const said = cleanStatusMessage(message);
  return `The relay refused the connection (status ${code}: ${meaning})${said !== '' ? `. It said: “${said}”` : ''}`;
}

/** The version-2 hello (§9.1). An empty nameplate (senders only) asks the relay to allocate one. */
export function encodeHello(role: RelayRole, nameplate: string, redirected: boolean): Uint8Array {
  if (nameplate !== '' && !/^[1-9][0-9]{0,4}$/.test(nameplate)) throw new RangeError('encodeHello: not a canonical nameplate');
  if (nameplate !== '' && Number(nameplate) > 65535) throw new RangeError('encodeHello: nameplate over 65535');
  if (nameplate === '' && role !== ROLE_SENDER) throw new RangeError('encodeHello: a receiver must name a nameplate');
  return new Writer()
    .raw(MAGIC)
    .varuint(2)
    .varuint(role)
    .varuint(redirected ? FLAG_REDIRECTED : 0)
    .bytes(new TextEncoder().encode(nameplate))
    .finish();
}

export interface Status {
  code: number;
  message: Uint8Array;
}

/**
 * Parses one status from the front of `buf`: the status and how many bytes it
 * took, or `undefined` when more bytes are needed. Throws RelayError on a
 * malformed status (the relay's fault).
 */
export function parseStatus(buf: Uint8Array): { status: Status; used: number } | undefined {
  const r = new Reader(buf);
  try {
    const code = r.varuint('status code');
    const message = r.bytes(MAX_STATUS_MESSAGE, 'status message');
    return { status: { code, message: message.slice() }, used: buf.length - r.remaining };
  } catch (e) {
    if (e instanceof ProtocolError && e.message.startsWith('truncated')) return undefined;
    if (e instanceof ProtocolError) throw new RelayError(`The relay sent a malformed status (${e.message})`);
    throw e;
  }
}

export interface ConnectOptions {
  /** The WebSocket URL of the relay, e.g. `wss://relay.example.org/ws`. */
  url: string;
  role: RelayRole;
  /** Canonical decimal; empty (sender) to have the relay allocate one. */
  nameplate: string;
  /** Opens a byte stream; the WebSocket in the page, a fake in tests. */
  open: (url: string) => Promise<ByteStream>;
  /** Called once with the relay's nameplate (status 2), before the waiting status. */
  onAllocated?: (nameplate: string) => void;
  /** Called when the relay says it waits for the other peer (status 0). */
  onWaiting?: () => void;
  /** Stops waiting: the connection is closed and `connectRelay` rejects with this signal's reason. */
  signal?: AbortSignal;
}

/** A paired connection: everything read from `stream` is the other peer's session bytes. */
export interface Paired {
  stream: ByteStream;
  /** The nameplate the room has (the allocated one for an allocating sender). */
  nameplate: string;
  /** Whether this connection followed a redirect. */
  redirected: boolean;
}

/**
 * A redirect's target: the other instance's page URL (`https://host/…/`),
 * whose WebSocket is `ws` under it. Anything but an http(s) URL is refused.
 */
export function redirectUrl(message: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(message);
  let page: URL;
  try {
    page = new URL(text);
  } catch {
    throw new RelayError(`The relay sent a redirect to something that is not a URL (“${cleanStatusMessage(message)}”)`, STATUS_REDIRECT);
  }
  if (page.protocol !== 'https:' && page.protocol !== 'http:') {
    throw new RelayError(`The relay sent a redirect that is not an http(s) URL (“${cleanStatusMessage(message)}”)`, STATUS_REDIRECT);
  }
  return webSocketUrl(page);
}

/** The relay WebSocket that belongs to the page at `page`: `ws` next to it, ws: or wss:. */
export function webSocketUrl(page: URL | string): string {
  const u = new URL('ws', page);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.hash = '';
  u.search = '';
  return u.toString();
}

/**
 * Connects, says hello, and waits until paired. Follows at most one
 * redirect (status 3). Rejects with RelayError for every status error, with
 * the code's meaning and the relay's own (cleaned) message.
 */
export async function connectRelay(opts: ConnectOptions): Promise<Paired> {
  let url = opts.url;
  let nameplate = opts.nameplate;
  let redirected = false;
  for (;;) {
    const outcome = await once(opts, url, nameplate, redirected);
    if (outcome.kind === 'paired') return { stream: outcome.stream, nameplate: outcome.nameplate, redirected };
    if (redirected) throw new RelayError('The relay redirected this connection twice; a client follows at most one redirect', STATUS_REDIRECT);
    redirected = true;
    url = outcome.url;
    nameplate = outcome.nameplate;
  }
}

type Outcome = { kind: 'paired'; stream: ByteStream; nameplate: string } | { kind: 'redirect'; url: string; nameplate: string };

async function once(opts: ConnectOptions, url: string, nameplate: string, redirected: boolean): Promise<Outcome> {
  if (opts.signal?.aborted) throw opts.signal.reason;
  const stream = await opts.open(url);
  const onAbort = () => stream.close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await stream.write(encodeHello(opts.role, nameplate, redirected));
    let buf: Uint8Array = new Uint8Array(0);
    let first = true;
    let room = nameplate;
    for (;;) {
      let parsed = parseStatus(buf);
      while (parsed === undefined) {
        const more = await stream.read();
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (more === null) {
          throw new RelayError(
            stream.endReason !== undefined
              ? `The connection to the relay ended: ${stream.endReason}`
              : 'The relay closed the connection without saying why',
          );
        }
        buf = join(buf, more);
        if (buf.length > 4096) throw new RelayError('The relay sent a malformed status (far too long)');
        parsed = parseStatus(buf);
      }
      buf = buf.subarray(parsed.used);
      const { code, message } = parsed.status;
      const wasFirst = first;
      first = false;
      switch (code) {
        case STATUS_WAITING:
          opts.onWaiting?.();
          break;
        case STATUS_ALLOCATED: {
          const np = new TextDecoder().decode(message);
          if (!wasFirst || nameplate !== '' || !/^[1-9][0-9]{0,4}$/.test(np) || Number(np) > 65535) {
            throw new RelayError('The relay sent an allocation this page did not ask for, or a bad nameplate');
          }
          room = np;
          opts.onAllocated?.(np);
          break;
        }
        case STATUS_REDIRECT: {
          if (!wasFirst) throw new RelayError('The relay sent a redirect after another status', STATUS_REDIRECT);
          const target = redirectUrl(message);
          stream.close();
          return { kind: 'redirect', url: target, nameplate };
        }
        case STATUS_PAIRED: {
          if (room === '') throw new RelayError('The relay paired this connection before allocating a nameplate');
          opts.signal?.removeEventListener('abort', onAbort);
          return { kind: 'paired', stream: prepend(buf, stream), nameplate: room };
        }
        default:
          throw new RelayError(describeStatus(code, message), code);
      }
    }
  } catch (e) {
    stream.close();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** `stream`, with `head` (session bytes that came with the last status) read first. */
function prepend(head: Uint8Array, stream: ByteStream): ByteStream {
  if (head.length === 0) return stream;
  let pending: Uint8Array | undefined = head.slice();
  return {
    read() {
      if (pending !== undefined) {
        const p = pending;
        pending = undefined;
        return Promise.resolve(p);
      }
      return stream.read();
    },
    write: (b) => stream.write(b),
    close: () => stream.close(),
    get endReason() {
      return stream.endReason;
    },
    get overloaded() {
      return stream.overloaded;
    },
    get downstream() {
      return stream.downstream;
    },
    // Only once the head was read: `readInto` must not skip it.
    get readInto() {
      return pending === undefined ? stream.readInto : undefined;
    },
  };
}
