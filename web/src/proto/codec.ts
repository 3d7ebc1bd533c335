// IxiVarUInt, IxiBytes and frames (PROTOCOL.md §3).
//
// Values are JavaScript numbers. Every field this protocol sends fits in
// 2^53 - 1 except capability bits above 52 and u64 sizes no file reaches;
// a larger value is refused as a protocol error rather than silently
// rounded.

/** A malformed message from the other side (PROTOCOL.md: "the other side broke the protocol"). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Reads fields from one message body, which must be consumed exactly. */
export class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }

  private take(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw new ProtocolError(`truncated ${what}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** An IxiVarUInt in its shortest form (§3). */
  varuint(what = 'number'): number {
    const p = this.take(1, what)[0]!;
    if (p <= 0xf7) return p;
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);
    switch (p) {
      case 0xfc: {
        const v = dv(this.take(2, what)).getUint16(0, true);
        if (v < 0xf8) throw new ProtocolError(`${what}: non-shortest encoding`);
        return v;
      }
      case 0xfd: {
        const v = dv(this.take(4, what)).getUint32(0, true);
        if (v <= 0xffff) throw new ProtocolError(`${what}: non-shortest encoding`);
        return v;
      }
      case 0xfe: {
        const v = dv(this.take(8, what)).getBigUint64(0, true);
        if (v <= 0xffffffffn) throw new ProtocolError(`${what}: non-shortest encoding`);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`${what}: value too large`);
        return Number(v);
      }
      default:
        throw new ProtocolError(`${what}: reserved IxiVarUInt prefix 0x${p.toString(16)}`);
    }
  }

  /**
   * An IxiVarUInt of any size, shortest form, as a bigint: for fields whose
   * full u64 range must be accepted (a version number, capability words with
   * reserved high bits), where `varuint` would refuse values over 2^53 - 1.
   */
  varbig(what = 'number'): bigint {
    const p = this.buf[this.pos];
    if (p === 0xfe) {
      this.pos++;
      const b = this.take(8, what);
      const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
      if (v <= 0xffffffffn) throw new ProtocolError(`${what}: non-shortest encoding`);
      return v;
    }
    return BigInt(this.varuint(what));
  }

  /** IxiBytes of at most `cap` bytes; the length is checked before anything is taken. */
  bytes(cap: number, what = 'bytes'): Uint8Array {
    const len = this.varuint(`${what} length`);
    if (len > cap) throw new ProtocolError(`${what}: ${len} bytes, over the cap of ${cap}`);
    return this.take(len, what);
  }

  /** IxiBytes whose length must be exactly `n`. */
  fixed(n: number, what = 'bytes'): Uint8Array {
    const b = this.bytes(n, what);
    if (b.length !== n) throw new ProtocolError(`${what}: ${b.length} bytes, expected ${n}`);
    return b;
  }

  /** Fails unless the body was consumed exactly (§3: trailing bytes are an error). */
  end(what = 'message'): void {
    if (!this.atEnd()) throw new ProtocolError(`${what}: ${this.remaining} trailing bytes`);
  }
}

/** Builds a message body. */
export class Writer {
  private parts: Uint8Array[] = [];
  private len = 0;

  private push(b: Uint8Array): this {
    this.parts.push(b);
    this.len += b.length;
    return this;
  }

  varuint(v: number): this {
    return this.push(encodeVarUInt(v));
  }

  bytes(b: Uint8Array): this {
    this.varuint(b.length);
    return this.push(b);
  }

  raw(b: Uint8Array): this {
    return this.push(b);
  }

  finish(): Uint8Array {
    return concat(this.parts, this.len);
  }
}

export function encodeVarUInt(v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not an unsigned integer: ${v}`);
  if (v <= 0xf7) return Uint8Array.of(v);
  if (v <= 0xffff) return Uint8Array.of(0xfc, v & 0xff, v >>> 8);
  if (v <= 0xffffffff) {
    const out = new Uint8Array(5);
    out[0] = 0xfd;
    new DataView(out.buffer).setUint32(1, v, true);
    return out;
  }
  const out = new Uint8Array(9);
  out[0] = 0xfe;
  new DataView(out.buffer).setBigUint64(1, BigInt(v), true);
  return out;
}

export function concat(parts: readonly Uint8Array[], total?: number): Uint8Array {
  const len = total ?? parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Frame types (§3) and their body caps. */
export const FrameType = {
  RequestAdd2: 40,
  AcceptAdd2: 41,
  Keys2: 42,
  Confirm: 43,
  Abort: 44,
  Record: 50,
  FinalRecord: 51,
} as const;

const RECORD_BODY_CAP = 1024 * 1024 + 32;
const HANDSHAKE_BODY_CAP = 4096;

export function frameBodyCap(type: number): number | undefined {
  if (type >= 40 && type <= 44) return HANDSHAKE_BODY_CAP;
  if (type === 50 || type === 51) return RECORD_BODY_CAP;
  return undefined;
}

/** `IxiVarUInt(type) || IxiVarUInt(body_len) || body`. */
export function encodeFrame(type: number, body: Uint8Array): Uint8Array {
  return concat([encodeVarUInt(type), encodeVarUInt(body.length), body]);
}

export interface Frame {
  type: number;
  body: Uint8Array;
}

/**
 * Splits a byte stream into frames. A frame of an unknown type or over its
 * cap is refused from its header alone, before its body is buffered; before
 * the handshake completes only types 40–44 are accepted.
 */
export class FrameDecoder {
  // Pending chunks, kept as received so that a 1 MiB record arriving in
  // small pieces is copied once, not once per piece.
  private chunks: Uint8Array[] = [];
  private total = 0;
  private handshakeDone = false;
  /** A body being read straight into its own buffer (see `openBody`). */
  private partial: { type: number; len: number; buf: Uint8Array<ArrayBuffer>; filled: number } | undefined;

  /** After the handshake, record frames (50, 51) are accepted too. */
  handshakeComplete(): void {
    this.handshakeDone = true;
  }

  /** Takes `bytes` over: the caller must not change them afterwards (frame bodies are views of them). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.partial !== undefined) throw new RangeError('push: a body is being read straight into its buffer');
    this.chunks.push(bytes);
    this.total += bytes.length;
  }

  /** The first `n` buffered bytes as one array (merging chunks as needed). */
  private head(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first;
    // Only the chunks that hold the first `n` bytes: merging everything
    // buffered would copy megabytes for every frame.
    let k = 0;
    let len = 0;
    while (len < n && k < this.chunks.length) len += this.chunks[k++]!.length;
    const merged = concat(this.chunks.slice(0, k), len);
    this.chunks.splice(0, k, merged);
    return merged;
  }

  /** The next frame's header, once buffered; throws on a type or length it refuses. */
  private header(): { type: number; len: number; headLen: number } | undefined {
    if (this.total === 0) return undefined;
    // A header is at most 9 + 9 bytes.
    const r = new Reader(this.head(Math.min(this.total, 18)).subarray(0, Math.min(this.total, 18)));
    let type: number;
    let len: number;
    try {
      type = r.varuint('frame type');
      const cap = frameBodyCap(type);
      if (cap === undefined) throw new ProtocolError(`unknown frame type ${type}`);
      if (!this.handshakeDone && type >= 50) throw new ProtocolError('record frame before the handshake completed');
      len = r.varuint('frame length');
      if (len > cap) throw new ProtocolError(`frame type ${type}: body of ${len} bytes, over the cap of ${cap}`);
    } catch (e) {
      if (e instanceof ProtocolError && e.message.startsWith('truncated')) return undefined;
      throw e;
    }
    return { type, len, headLen: Math.min(this.total, 18) - r.remaining };
  }

  /** The next whole frame, or undefined when more bytes are needed. */
  next(): Frame | undefined {
    const p = this.partial;
    if (p !== undefined) {
      if (p.filled < p.len) return undefined;
      this.partial = undefined;
      return { type: p.type, body: p.buf };
    }
    const h = this.header();
    if (h === undefined) return undefined;
    const { type, len, headLen } = h;
    if (this.total < headLen + len) return undefined;
    const all = this.head(headLen + len);
    // A view, not a copy: pushed chunks are never written to again (see `push`).
    const body = all.subarray(headLen, headLen + len);
    const rest = all.subarray(headLen + len);
    this.chunks[0] = rest;
    if (rest.length === 0) this.chunks.shift();
    this.total -= headLen + len;
    return { type, body };
  }

  /**
   * For reading a large body straight into a buffer of its own (no copy
   * from network chunks): when the next frame's header is buffered but not
   * all of its body, and the body is at least `min` bytes, its buffer, with
   * the part already buffered copied in, and how far it is filled. The
   * caller fills the rest and reports it with `bodyFilled`; meanwhile
   * nothing may be pushed. `next` returns the frame once it is whole.
   * Throws as `next` does on a refused header.
   */
  openBody(min: number): { buf: Uint8Array<ArrayBuffer>; filled: number } | undefined {
    if (this.partial !== undefined) return this.partial.filled < this.partial.len ? this.partial : undefined;
    const h = this.header();
    if (h === undefined || h.len < min || this.total >= h.headLen + h.len) return undefined;
    // Every buffered byte belongs to this frame.
    const buf = new Uint8Array(h.len);
    let skip = h.headLen;
    let filled = 0;
    for (const c of this.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      buf.set(skip > 0 ? c.subarray(skip) : c, filled);
      filled += c.length - skip;
      skip = 0;
    }
    this.chunks = [];
    this.total = 0;
    this.partial = { type: h.type, len: h.len, buf, filled };
    return this.partial;
  }

  /**
   * `n` more bytes of the open body were written into it; `buf` is the
   * body's buffer as it now is (a transferring read moves it to a new
   * ArrayBuffer object).
   */
  bodyFilled(buf: Uint8Array<ArrayBuffer>, n: number): void {
    const p = this.partial;
    // (`p.buf` itself may be detached by now, with length 0.)
    if (p === undefined || buf.length !== p.len || p.filled + n > p.len) throw new RangeError('bodyFilled: no such open body');
    p.buf = buf;
    p.filled += n;
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.total + (this.partial?.filled ?? 0);
  }
}
