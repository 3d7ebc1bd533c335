import { describe, expect, it } from 'vitest';
import { blake3 } from '@noble/hashes/blake3.js';
import { decodeMessages, encodeMessages, EntryKind, OfferKind, type Entry, type Msg } from '../../src/proto/messages';
import {
  ReceiverMachine,
  SenderMachine,
  type ReceiverEvent,
  type ReceiverOptions,
  type SendEntry,
  type SenderEvent,
} from '../../src/proto/transfer';
import { hex, toHex, utf8 } from './helpers';

const AGREED = 0x02 | 0x20 | 0x40 | 0x100;
const HASHED = 0x02 | 0x20 | 0x40;

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

type Plain = { plaintext: Uint8Array; final: boolean };

/** A sender and a receiver connected back to back: plaintexts pass directly, no encryption. */
class Pair {
  now = 1_000;
  readonly s: SenderMachine;
  readonly r: ReceiverMachine;
  readonly sEvents: SenderEvent[] = [];
  readonly rEvents: ReceiverEvent[] = [];
  readonly s2r: Plain[] = [];
  readonly r2s: Plain[] = [];
  readonly files = new Map<number, Uint8Array[]>();
  answer: 'accept' | 'refuse' | 'none' = 'accept';
  /** Called for every receiver event; may act on the machines. */
  onReceiver: (e: ReceiverEvent, p: Pair) => void = () => {};
  /** Answers need-data; the default reads the source at once. */
  onNeed: (e: Extract<SenderEvent, { type: 'need-data' }>, p: Pair) => void = (e, p) =>
    p.s.pushData(e.index, p.sources.get(e.index)!.subarray(e.offset, e.offset + e.max));

  constructor(
    readonly sources: Map<number, Uint8Array>,
    sender: ConstructorParameters<typeof SenderMachine>[0],
    receiver: Partial<ReceiverOptions> = {},
  ) {
    this.s = new SenderMachine({ nowMs: this.now, ...sender });
    this.r = new ReceiverMachine({ agreed: sender.agreed, nowMs: this.now, ...receiver });
  }

  static files(list: Array<{ path: string; data?: Uint8Array; folder?: boolean }>, agreed = AGREED): Pair {
    const sources = new Map<number, Uint8Array>();
    const entries: SendEntry[] = list.map((f, i) => {
      if (f.folder) return { kind: 'folder', path: f.path, mtime: 1_700_000_000 };
      sources.set(i, f.data ?? new Uint8Array(0));
      return { kind: 'file', path: f.path, size: (f.data ?? new Uint8Array(0)).length, mtime: 1_700_000_000 + i };
    });
    return new Pair(sources, { agreed, entries });
  }

  /** One round, in the order an application would use: handle input, drain events, then transmit. */
  step(): boolean {
    let progress = false;
    for (let t; (t = this.s.pollTransmit(this.now)); progress = true) {
      this.s2r.push(t);
      this.r.handleRecord(t.plaintext, t.final, this.now);
    }
    for (let e; (e = this.r.pollEvent()); progress = true) {
      this.rEvents.push(e);
      if (e.type === 'offer' && this.answer === 'accept') this.r.accept();
      if (e.type === 'offer' && this.answer === 'refuse') this.r.refuse();
      if (e.type === 'data') {
        const l = this.files.get(e.index) ?? [];
        l.push(e.bytes.slice());
        this.files.set(e.index, l);
      }
      this.onReceiver(e, this);
    }
    for (let t; (t = this.r.pollTransmit(this.now)); progress = true) {
      this.r2s.push(t);
      this.s.handleRecord(t.plaintext, t.final, this.now);
    }
    for (let e; (e = this.s.pollEvent()); progress = true) {
      this.sEvents.push(e);
      if (e.type === 'need-data') this.onNeed(e, this);
    }
    return progress;
  }

  run(): this {
    for (let i = 0; i < 100_000 && this.step(); i++);
    return this;
  }

  received(index: number): Uint8Array {
    const parts = this.files.get(index) ?? [];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  sentMessages(): Msg[] {
    return this.s2r.flatMap((t) => decodeMessages(t.plaintext));
  }
}

const types = (events: Array<{ type: string }>) => events.map((e) => e.type);

describe('sender ↔ receiver', () => {
  const tree = [
    { path: 'docs', folder: true },
    { path: 'docs/a.txt', data: utf8('hello, world\n') },
    { path: 'docs/empty.bin', data: new Uint8Array(0) },
    { path: 'docs/big.bin', data: pattern(2_500_000, 1) },
    { path: 'empty-folder', folder: true },
    { path: 'x/y/z.dat', data: pattern(300_000, 2) },
    { path: 'one', data: Uint8Array.of(7) },
  ];

  for (const agreed of [AGREED, HASHED]) {
    it(`moves files, an empty folder and an empty file (caps 0x${agreed.toString(16)})`, () => {
      const p = Pair.files(tree, agreed).run();
      expect(types(p.sEvents).filter((t) => t !== 'need-data' && t !== 'progress')).toEqual(['accepted', 'done']);
      const rt = types(p.rEvents);
      expect(rt.slice(0, 1 + tree.length + 1)).toEqual(['offer', ...tree.map(() => 'entry'), 'ready']);
      expect(rt.at(-1)).toBe('done');
      expect(rt.filter((t) => t === 'file-end')).toHaveLength(5);
      const offer = p.rEvents[0] as Extract<ReceiverEvent, { type: 'offer' }>;
      expect(offer.offer).toEqual({ kind: OfferKind.Files, files: 5, dirs: 2, bytes: 13 + 2_500_000 + 300_000 + 1, names: [utf8('docs'), utf8('empty-folder'), utf8('x'), utf8('one')] });
      tree.forEach((f, i) => {
        if (!f.folder) expect(toHex(blake3(p.received(i)))).toBe(toHex(blake3(f.data!)));
      });
      // FileEnd hashes: empty with 0x100, else the BLAKE3 of the file.
      const ends = p.sentMessages().filter((m) => m.type === 'file-end');
      const fileData = tree.filter((f) => !f.folder).map((f) => f.data!);
      expect(ends.map((m) => toHex(m.hash))).toEqual(fileData.map((d) => (agreed & 0x100 ? '' : toHex(blake3(d)))));
      // Both directions end with a final record: DoneAck in the receiver's, an empty one from the sender.
      expect(p.r2s.at(-1)).toEqual({ plaintext: Uint8Array.of(0x0d), final: true });
      expect(p.s2r.at(-1)).toEqual({ plaintext: new Uint8Array(0), final: true });
      expect(p.r2s.map((t) => toHex(t.plaintext))).toEqual(['02', '07', '0d']);
      expect(p.s.finished && p.r.finished && p.s.completed && p.r.completed).toBe(true);
      expect(p.s.pollTimeout()).toBeUndefined();
      expect(p.r.pollTimeout()).toBeUndefined();
    });
  }

  it('packs records up to 1 MiB with chunks of at most 256 KiB', () => {
    const p = Pair.files([{ path: 'big', data: pattern(3 * 1024 * 1024 + 5, 3) }]).run();
    expect(p.r.completed).toBe(true);
    const data = p.s2r.filter((t) => decodeMessages(t.plaintext).some((m) => m.type === 'chunk'));
    for (const t of data) expect(t.plaintext.length).toBeLessThanOrEqual(1024 * 1024);
    expect(data.length).toBe(4);
    expect(data[0]!.plaintext.length).toBeGreaterThan(1024 * 1024 - 64);
    for (const m of p.sentMessages()) if (m.type === 'chunk') expect(m.data.length).toBeLessThanOrEqual(256 * 1024);
    const progress = p.sEvents.filter((e) => e.type === 'progress');
    expect(progress.at(-1)).toMatchObject({ sent: 3 * 1024 * 1024 + 5, total: 3 * 1024 * 1024 + 5 });
  });

  it('asks for data only when the last record was taken', () => {
    const p = Pair.files([{ path: 'f', data: pattern(5_000_000, 4) }]);
    let outstanding = 0;
    p.onNeed = (e, q) => {
      outstanding++;
      expect(outstanding).toBe(1);
      q.s.pushData(e.index, q.sources.get(e.index)!.subarray(e.offset, e.offset + e.max));
      outstanding--;
    };
    p.run();
    expect(p.r.completed).toBe(true);
    expect(() => p.s.pushData(0, new Uint8Array(1))).not.toThrow(); // ended: ignored
  });

  it('moves an empty offer, and stops with Stop(3) instead of Ready', () => {
    expect(Pair.files([]).run().r.completed).toBe(true);
    const p = Pair.files([{ path: 'f', data: utf8('x') }]);
    p.onReceiver = (e, q) => {
      if (e.type === 'ready') q.r.localError(3, 'no space left for 1 byte');
    };
    p.run();
    expect(p.r2s.map((t) => decodeMessages(t.plaintext).map((m) => m.type))).toEqual([['accept'], ['stop']]);
    expect(p.sEvents.at(-1)).toEqual({ type: 'failed', side: 'peer', code: 3, reason: 'no space left for 1 byte' });
  });

  it('sends text', () => {
    const text = 'line 1\nzweite Zeile\n' + 'x'.repeat(600_000);
    const p = new Pair(new Map(), { agreed: AGREED, text }).run();
    const got = p.rEvents.find((e) => e.type === 'text');
    expect(got).toMatchObject({ type: 'text', text });
    expect(types(p.rEvents)).toEqual(['offer', 'text', 'done']);
    expect(p.s.completed && p.r.completed).toBe(true);
  });

  it('handles a refusal', () => {
    const p = Pair.files([{ path: 'a', data: utf8('a') }]);
    p.answer = 'refuse';
    p.run();
    expect(types(p.sEvents)).toEqual(['refused']);
    expect(types(p.rEvents)).toEqual(['offer', 'refused']);
    expect(p.r2s).toEqual([{ plaintext: Uint8Array.of(0x03), final: true }]);
    expect(p.s2r.at(-1)).toEqual({ plaintext: new Uint8Array(0), final: true });
    expect(p.s.finished && p.r.finished).toBe(true);
  });

  it('the receiver cancels: Stop(7), or Abort without 0x20', () => {
    for (const agreed of [AGREED, 0x02 | 0x40]) {
      const p = Pair.files([{ path: 'f', data: pattern(3_000_000, 5) }], agreed);
      p.onReceiver = (e, q) => {
        if (e.type === 'data') q.r.cancel('the user pressed stop');
      };
      p.run();
      expect(p.rEvents.at(-1)).toEqual({ type: 'failed', side: 'local', code: 7, reason: 'the user pressed stop' });
      expect(p.sEvents.at(-1)).toEqual({ type: 'failed', side: 'peer', code: agreed & 0x20 ? 7 : 0, reason: 'the user pressed stop' });
      expect(decodeMessages(p.r2s.at(-1)!.plaintext)[0]!.type).toBe(agreed & 0x20 ? 'stop' : 'abort');
      expect(p.r2s.at(-1)!.final && p.s2r.at(-1)!.final).toBe(true);
      expect(p.s2r.at(-1)!.plaintext.length).toBe(0);
      // Events already queued from the record being handled come before 'failed'; nothing after it.
      expect(p.rEvents.some((e) => e.type === 'file-end')).toBe(false);
      expect(p.s.finished && p.r.finished).toBe(true);
    }
  });

  it('the sender cancels, or its file shrinks', () => {
    const p = Pair.files([{ path: 'f', data: pattern(3_000_000, 6) }]);
    p.onReceiver = (e, q) => {
      if (e.type === 'data') q.s.cancel('changed my mind');
    };
    p.run();
    expect(p.rEvents.at(-1)).toEqual({ type: 'failed', side: 'peer', code: 7, reason: 'changed my mind' });
    expect(p.sEvents.at(-1)).toMatchObject({ type: 'failed', side: 'local', code: 7 });
    expect(p.rEvents.some((e) => e.type === 'file-end')).toBe(false);

    const q = Pair.files([{ path: 'f', data: pattern(100, 7) }]);
    q.onNeed = (e, r) => {
      r.s.pushData(e.index, r.sources.get(0)!.subarray(0, 60));
      r.s.endFile(e.index);
    };
    q.run();
    expect(q.rEvents.at(-1)).toMatchObject({ type: 'failed', side: 'peer', code: 2 });
    expect((q.rEvents.at(-1) as { reason: string }).reason).toMatch(/changed while it was being sent: 60 of its 100 bytes/);
  });

  it('endFile after the whole file is a no-op', () => {
    const p = Pair.files([{ path: 'f', data: pattern(10, 8) }, { path: 'g', data: pattern(10, 9) }]);
    p.onNeed = (e, q) => {
      q.s.pushData(e.index, q.sources.get(e.index)!.subarray(e.offset, e.offset + e.max));
      q.s.endFile(e.index);
    };
    p.run();
    expect(p.r.completed).toBe(true);
  });

  it('refuses pushData that answers no request', () => {
    const p = Pair.files([{ path: 'f', data: pattern(10, 8) }]);
    expect(() => p.s.pushData(0, new Uint8Array(1))).toThrow(/without a matching need-data/);
    p.onNeed = (e, q) => expect(() => q.s.pushData(e.index, new Uint8Array(e.max + 1))).toThrow(/more than the 10 requested/);
    p.step();
    p.step();
    p.step();
  });

  it('the sender refuses entries a receiver would refuse', () => {
    const mk = (entries: SendEntry[]) => () => new SenderMachine({ agreed: AGREED, entries });
    expect(mk([{ kind: 'file', path: '../x', size: 1 }])).toThrow(/cannot send "\.\.\/x"/);
    expect(mk([{ kind: 'file', path: 'a', size: 1 }, { kind: 'file', path: 'A', size: 1 }])).toThrow(/letter case/);
    expect(mk([{ kind: 'file', path: 'a', size: -1 }])).toThrow(/bad size/);
    expect(() => new SenderMachine({ agreed: AGREED | 0x08, entries: [] })).toThrow(/0x8 were agreed/);
    expect(() => new ReceiverMachine({ agreed: AGREED | 0x10 })).toThrow(/0x10 were agreed/);
  });

  it('lists at most 16 distinct top-level names in manifest order', () => {
    const entries: SendEntry[] = [];
    for (let i = 0; i < 20; i++) entries.push({ kind: 'file', path: `t${i}/f`, size: 0 }, { kind: 'file', path: `t${i}/g`, size: 0 });
    const s = new SenderMachine({ agreed: AGREED, entries, nowMs: 0 });
    const [m] = decodeMessages(s.pollTransmit(0)!.plaintext);
    expect(m).toMatchObject({ type: 'offer', offer: { files: 40, dirs: 0, bytes: 0 } });
    const names = (m as Extract<Msg, { type: 'offer' }>).offer.names.map((n) => new TextDecoder().decode(n));
    expect(names).toEqual(Array.from({ length: 16 }, (_, i) => `t${i}`));
  });
});

// --- The receiver against hand-built senders ---------------------------------

function file(index: number, path: string, size: number, over: Partial<Entry> = {}): Entry {
  return { index, kind: EntryKind.File, path: typeof path === 'string' ? utf8(path) : path, size, flags: 0, mtime: 100, ...over };
}
function folder(index: number, path: string): Entry {
  return { index, kind: EntryKind.Folder, path: utf8(path), size: 0, flags: 0, mtime: 100 };
}
function offerFor(entries: Entry[], names?: string[]): Msg {
  const files = entries.filter((e) => e.kind === EntryKind.File);
  const tops = names ?? [...new Set(entries.map((e) => new TextDecoder().decode(e.path).split('/')[0]!))];
  return {
    type: 'offer',
    offer: { kind: OfferKind.Files, files: files.length, dirs: entries.length - files.length, bytes: files.reduce((n, e) => n + e.size, 0), names: tops.map(utf8) },
  };
}

/** Feeds records (each a list of messages, or raw bytes) to an accepting receiver. */
function feed(records: Array<Msg[] | Uint8Array>, opts: Partial<ReceiverOptions> = {}, lastFinal = false) {
  const r = new ReceiverMachine({ agreed: AGREED, nowMs: 0, ...opts });
  const events: ReceiverEvent[] = [];
  const out: Plain[] = [];
  const drain = () => {
    for (let e; (e = r.pollEvent()); ) {
      events.push(e);
      if (e.type === 'offer') r.accept();
    }
    for (let t; (t = r.pollTransmit(0)); ) out.push(t);
  };
  records.forEach((rec, i) => {
    r.handleRecord(rec instanceof Uint8Array ? rec : encodeMessages(rec), lastFinal && i === records.length - 1, 0);
    drain();
  });
  drain();
  const last = events.at(-1);
  return { r, events, out, last, failed: last?.type === 'failed' ? last : undefined };
}

function expectViolation(records: Array<Msg[] | Uint8Array>, why: RegExp, code = 4, opts: Partial<ReceiverOptions> = {}) {
  const f = feed(records, opts);
  expect(f.failed, `expected a failure matching ${why}`).toMatchObject({ side: 'local', code });
  expect(f.failed!.reason).toMatch(why);
  const fin = f.out.at(-1)!;
  expect(fin.final).toBe(true);
  const [stop] = decodeMessages(fin.plaintext);
  expect(stop).toMatchObject({ type: 'stop', code });
  expect(f.r.finished).toBe(true);
  return f;
}

describe('receiver rules', () => {
  it('takes the hand-built byte vectors of §8', () => {
    // Offer(files 1, 5 bytes, name "a"); Entry(0, file, "a", 5, 0, 100); ManifestEnd.
    const f = feed([
      hex('01 01 01 00 05 01 01 61'),
      hex('04 00 01 01 61 05 00 64 05'),
      hex('08 00 01 01 61 05 00 64 00  09 00 05 68656c6c6f  0a 00  0c'),
    ]);
    expect(types(f.events)).toEqual(['offer', 'entry', 'ready', 'file-start', 'data', 'file-end', 'done']);
    expect(f.out.map((t) => [toHex(t.plaintext), t.final])).toEqual([['02', false], ['07', false], ['0d', true]]);
    // The §8 Stop example, from the sender.
    const g = feed([hex('01 01 01 00 05 01 01 61'), hex('10 01 14 612e74787420616c726561647920657869737473')]);
    expect(g.last).toEqual({ type: 'failed', side: 'peer', code: 1, reason: 'a.txt already exists' });
    expect(g.out.at(-1)).toEqual({ plaintext: new Uint8Array(0), final: true });
  });

  const hostile: Array<[string | Uint8Array, RegExp]> = [
    ['../etc/passwd', /'\.' or '\.\.'/],
    ['/etc/passwd', /absolute/],
    ['C:x', /':'/],
    ['a\\b', /backslash/],
    ['a\0b', /control/],
    ['a\x1b[31m', /control/],
    ['a\u0085', /control/],
    ['x\u2028y', /separator/],
    ['gpj.\u202eexe', /bidirectional/],
    ['a\u200bb', /invisible/],
    ['a\ufdd0', /noncharacter/],
    ['CON.txt', /device/],
    ['lpt¹', /device/],
    ['a.', /trailing dot/],
    ['a ', /trailing dot or space/],
    ['.pqdrop-resume-00', /reserved/],
    ['x.PQDROP-PARTIAL', /reserved/],
    [Uint8Array.of(0x61, 0xff), /not valid UTF-8/],
    ['a//b', /empty path component/],
    ['x'.repeat(256), /over 255 bytes/],
  ];
  for (const [path, why] of hostile) {
    it(`refuses the entry ${JSON.stringify(typeof path === 'string' ? path.slice(0, 20) : toHex(path))}`, () => {
      const e: Entry = { index: 0, kind: EntryKind.File, path: typeof path === 'string' ? utf8(path) : path, size: 1, flags: 0, mtime: 0 };
      const off: Msg = { type: 'offer', offer: { kind: 1, files: 1, dirs: 0, bytes: 1, names: Array(16).fill(utf8('n')) } };
      const f = expectViolation([[off], [{ type: 'entry', entry: e }]], why);
      expect(f.failed!.reason).toMatch(/^the sender broke the protocol: refused entry 0 "/);
      expect(f.events.some((x) => x.type === 'entry')).toBe(false);
    });
  }

  it('refuses colliding entries', () => {
    const cases: Array<[Entry[], RegExp]> = [
      [[file(0, 'a', 1), file(1, 'a', 1)], /duplicate/],
      [[file(0, 'a', 1), folder(1, 'a')], /a file and a folder/],
      [[folder(0, 'a'), file(1, 'a', 1)], /a file and a folder/],
      [[file(0, 'a', 1), file(1, 'a/b', 1)], /is a file where this path needs a folder/],
      [[file(0, 'README', 1), file(1, 'readme', 1)], /letter case/],
      [[file(0, 'caf\u00e9', 1), file(1, 'cafe\u0301', 1)], /normalisation/],
    ];
    for (const [entries, why] of cases) {
      expectViolation([[offerFor(entries, ['a', 'README', 'readme', 'caf\u00e9', 'cafe\u0301'])], entries.map((entry) => ({ type: 'entry', entry }))], why);
    }
    // An implied folder listed later is fine.
    const ok = [file(0, 'd/x', 1), folder(1, 'd')];
    const f = feed([[offerFor(ok)], [...ok.map((entry): Msg => ({ type: 'entry', entry })), { type: 'manifest-end' }]]);
    expect(f.last?.type).toBe('ready');
  });

  it('refuses an entry whose top-level name the complete Offer list lacks', () => {
    const es = [file(0, 'a/x', 1), file(1, 'b', 1)];
    expectViolation([[offerFor(es, ['a'])], es.map((entry) => ({ type: 'entry', entry }))], /not among the offer's names/);
  });

  const one = [file(0, 'f', 10)];
  const start: Msg[][] = [[offerFor(one)], [{ type: 'entry', entry: one[0]! }, { type: 'manifest-end' }]];
  const chunk = (n: number, flags = 0): Msg => ({ type: 'chunk', flags, data: pattern(n, 1) });

  it('counts entries and the manifest against the offer', () => {
    expectViolation([[offerFor(one)], [{ type: 'entry', entry: file(1, 'f', 10) }]], /entry 1 where entry 0 was due/);
    expectViolation([[offerFor(one)], [{ type: 'entry', entry: one[0]! }, { type: 'entry', entry: file(1, 'g', 1) }]], /more entries than the 1/);
    expectViolation([[offerFor(one)], [{ type: 'entry', entry: folder(0, 'f') }]], /more folders than the 0/);
    expectViolation([[offerFor(one)], [{ type: 'entry', entry: file(0, 'f', 11) }]], /more than the 10 bytes/);
    expectViolation([[offerFor([...one, file(1, 'g', 0)])], [{ type: 'entry', entry: one[0]! }, { type: 'manifest-end' }]], /manifest has 1 files/);
  });

  it('refuses data before Ready', () => {
    expectViolation([[offerFor(one)], [{ type: 'entry', entry: one[0]! }, { type: 'file-start', entry: one[0]!, offset: 0 }]], /before the manifest ended \(data before Ready\)/);
    expectViolation([[offerFor(one)], [chunk(1)]], /Chunk before the manifest ended/);
    expectViolation([[offerFor(one), chunk(1)]], /before the offer was accepted/);
  });

  it('checks FileStart against the manifest entry', () => {
    for (const e of [file(0, 'f', 9), file(0, 'f', 10, { mtime: 101 }), file(0, 'f', 10, { flags: 1 }), file(0, 'g', 10)]) {
      expectViolation([...start, [{ type: 'file-start', entry: e, offset: 0 }]], /differs from its manifest entry/);
    }
    expectViolation([...start, [{ type: 'file-start', entry: one[0]!, offset: 4 }]], /offset 4, but this receiver sent no Have/);
    const two = [folder(0, 'd'), file(1, 'd/a', 1), file(2, 'd/b', 1)];
    const s2: Msg[][] = [[offerFor(two)], [...two.map((entry): Msg => ({ type: 'entry', entry })), { type: 'manifest-end' }]];
    expectViolation([...s2, [{ type: 'file-start', entry: two[2]!, offset: 0 }]], /entry 2 where entry 1 was due/);
    expectViolation([...s2, [{ type: 'file-start', entry: two[0]!, offset: 0 }]], /entry 0 where entry 1 was due/);
    expectViolation([...s2, [{ type: 'done' }]], /Done before every file was sent \(entry 1/);
  });

  it('counts chunks against the size when parsed', () => {
    const f = expectViolation([...start, [{ type: 'file-start', entry: one[0]!, offset: 0 }, chunk(6), chunk(5)]], /chunk of 5 bytes goes past the end of entry 0 \(4 bytes were left\)/);
    // The first chunk was handed on, the second never.
    expect(f.events.filter((e) => e.type === 'data').map((e) => (e as { bytes: Uint8Array }).bytes.length)).toEqual([6]);
    expectViolation([...start, [{ type: 'file-start', entry: one[0]!, offset: 0 }, chunk(3, 1)]], /zstd chunk, but zstd/);
    expectViolation([...start, [chunk(1)]], /Chunk outside a file/);
    expectViolation([...start, [{ type: 'file-skip', index: 0 }]], /FileSkip for entry 0, but this receiver claimed no file/);
  });

  it('applies the FileEnd hash rules', () => {
    const data = pattern(10, 1);
    const body: Msg[] = [{ type: 'file-start', entry: one[0]!, offset: 0 }, chunk(10)];
    // 0x100 agreed: an empty hash, and only that.
    expect(feed([...start, [...body, { type: 'file-end', hash: new Uint8Array(0) }, { type: 'done' }]]).last?.type).toBe('done');
    expectViolation([...start, [...body, { type: 'file-end', hash: blake3(data) }]], /with a hash, but none is owed/);
    // Without 0x100: the BLAKE3 of the file.
    const o = { agreed: HASHED };
    expect(feed([...start, [...body, { type: 'file-end', hash: blake3(data) }, { type: 'done' }]], o).last?.type).toBe('done');
    expectViolation([...start, [...body, { type: 'file-end', hash: new Uint8Array(0) }]], /without a hash, but one is owed/, 4, o);
    const bad = blake3(data);
    bad[0]! ^= 1;
    const f = expectViolation([...start, [...body, { type: 'file-end', hash: bad }]], /failed verification/, 5, o);
    expect(f.events.some((e) => e.type === 'file-end')).toBe(false);
    expectViolation([...start, [{ type: 'file-start', entry: one[0]!, offset: 0 }, chunk(9), { type: 'file-end', hash: new Uint8Array(0) }]], /ended after 9 of its 10 bytes/, 5);
  });

  it('enforces the offer limits before asking (Stop 6)', () => {
    const big: Msg = { type: 'offer', offer: { kind: 1, files: 1_000_000, dirs: 1, bytes: 0, names: [] } };
    const f = expectViolation([[big]], /1000001 entries, over this receiver's limit of 1000000/, 6);
    expect(f.events.some((e) => e.type === 'offer')).toBe(false);
    expectViolation([[{ type: 'offer', offer: { kind: 1, files: 3, dirs: 0, bytes: 0, names: [] } }]], /over this receiver's limit of 2/, 6, { maxEntries: 2 });
    expectViolation([[{ type: 'offer', offer: { kind: 2, files: 0, dirs: 0, bytes: 16 * 1024 * 1024 + 1, names: [] } }]], /the text is 16777217 bytes/, 6);
    expectViolation([[{ type: 'offer', offer: { kind: 2, files: 1, dirs: 0, bytes: 3, names: [] } }]], /counts files, folders or names/);
    expectViolation([[{ type: 'offer', offer: { kind: 3, files: 0, dirs: 0, bytes: 3, names: [] } }]], /stream offer of 3 bytes/);
  });

  it('refuses messages out of place', () => {
    expectViolation([[offerFor(one)], [offerFor(one)]], /a second Offer/);
    expectViolation([[offerFor(one)], [{ type: 'ready' }]], /ready is a receiver's message/);
    expectViolation([[offerFor(one)], [{ type: 'identity', identity: new Uint8Array(1280), proof: new Uint8Array(64) }]], /identities \(capability 0x200\) were not agreed/);
    expectViolation([[offerFor(one)], hex('63')], /unknown transfer message type 99/);
    expectViolation([...start, [{ type: 'done-ack' }]], /done-ack is a receiver's message/);
    // The sender may not end its side early.
    const f = feed([...start], {}, true);
    expect(f.failed).toMatchObject({ code: 4, reason: expect.stringMatching(/ended its side before the transfer was complete/) });
    // KeepAlive is ignored anywhere.
    expect(feed([[{ type: 'keepalive' }, offerFor(one), { type: 'keepalive' }], [{ type: 'keepalive' }]]).last?.type).toBe('offer');
  });

  it('uses Abort without capability 0x20', () => {
    const f = feed([[offerFor(one)], [chunk(1)]], { agreed: 0x02 | 0x40 });
    expect(decodeMessages(f.out.at(-1)!.plaintext)[0]).toMatchObject({ type: 'abort' });
  });

  it('verifies text and streams', () => {
    const t = utf8('hi there');
    const text: Msg = { type: 'offer', offer: { kind: 2, files: 0, dirs: 0, bytes: t.length, names: [] } };
    const ok = feed([[text], [{ type: 'chunk', flags: 0, data: t }, { type: 'stream-end', len: t.length, hash: blake3(t) }, { type: 'done' }]]);
    expect(types(ok.events)).toEqual(['offer', 'text', 'done']);
    expect(ok.events[1]).toMatchObject({ text: 'hi there' });
    expectViolation([[text], [{ type: 'chunk', flags: 0, data: t }, { type: 'stream-end', len: t.length, hash: blake3(utf8('other')) }]], /text failed verification/, 5);
    expectViolation([[text], [{ type: 'chunk', flags: 0, data: utf8('hi there!') }]], /past the 8 bytes of text/);
    expectViolation([[text], [{ type: 'done' }]], /Done before StreamEnd/);
    const s = pattern(5000, 3);
    const stream: Msg = { type: 'offer', offer: { kind: 3, files: 0, dirs: 0, bytes: 0, names: [] } };
    const st = feed([[stream], [{ type: 'chunk', flags: 0, data: s.subarray(0, 3000) }], [{ type: 'chunk', flags: 0, data: s.subarray(3000) }, { type: 'stream-end', len: 5000, hash: blake3(s) }, { type: 'done' }]]);
    expect(types(st.events)).toEqual(['offer', 'file-start', 'data', 'data', 'file-end', 'done']);
    expect(st.events[1]).toMatchObject({ type: 'file-start', path: 'stream', stream: true });
    expectViolation([[stream], [{ type: 'chunk', flags: 0, data: s }, { type: 'stream-end', len: 4999, hash: blake3(s) }]], /stream ended after 5000 bytes, but StreamEnd says 4999/, 5);
  });

  it('the sender refuses what the page never agreed', () => {
    const mk = () => {
      const s = new SenderMachine({ agreed: AGREED, entries: [{ kind: 'file', path: 'f', size: 3 }], nowMs: 0 });
      s.pollTransmit(0);
      return s;
    };
    const cases: Array<[Msg[], RegExp]> = [
      [[{ type: 'ready' }], /Ready out of order/],
      [[{ type: 'done-ack' }], /DoneAck before Done/],
      [[{ type: 'accept' }, { type: 'ready' }, { type: 'have', index: 0, len: 1, hash: new Uint8Array(32) }], /Have for entry 0, but resume/],
      [[{ type: 'accept' }, { type: 'skip', index: 0 }], /Skip for entry 0, but skip/],
      [[{ type: 'accept' }, { type: 'chunk', flags: 0, data: new Uint8Array(1) }], /chunk is a sender's message/],
    ];
    for (const [msgs, why] of cases) {
      const s = mk();
      s.handleRecord(encodeMessages(msgs), false, 0);
      const evs: SenderEvent[] = [];
      for (let e; (e = s.pollEvent()); ) evs.push(e);
      expect(evs.at(-1)).toMatchObject({ type: 'failed', side: 'local', code: 4, reason: expect.stringMatching(why) });
      const fin = s.pollTransmit(0)!;
      expect(fin.final).toBe(true);
      expect(decodeMessages(fin.plaintext)[0]).toMatchObject({ type: 'stop', code: 4 });
    }
  });
});

describe('liveness', () => {
  it('the receiver sends KeepAlive after 5 s of silence and times out a silent sender', () => {
    const r = new ReceiverMachine({ agreed: AGREED, nowMs: 0 });
    expect(r.pollTimeout()).toBe(5_000);
    expect(r.pollTransmit(4_999)).toBeUndefined();
    expect(r.pollTransmit(5_000)).toEqual({ plaintext: Uint8Array.of(0x11), final: false });
    expect(r.pollTimeout()).toBe(10_000);
    r.handleTimeout(59_999);
    expect(r.pollEvent()).toBeUndefined();
    r.noteBytes(30_000); // a record still arriving
    expect(r.pollTimeout()).toBe(10_000);
    r.handleTimeout(89_999);
    expect(r.pollEvent()).toBeUndefined();
    r.handleTimeout(90_000);
    expect(r.pollEvent()).toEqual({ type: 'failed', side: 'local', code: 0, reason: 'nothing arrived from the sender for 60 s' });
    expect(decodeMessages(r.pollTransmit(90_000)!.plaintext)[0]).toMatchObject({ type: 'stop', code: 0 });
    expect(r.pollTimeout()).toBeUndefined();
  });

  it('keepalive interval: a quarter of a short idle timeout; at least 10 s of timeout', () => {
    const r = new ReceiverMachine({ agreed: AGREED, nowMs: 0, idleTimeoutMs: 12_000 });
    expect(r.pollTimeout()).toBe(3_000);
    expect(() => new ReceiverMachine({ agreed: AGREED, idleTimeoutMs: 9_999 })).toThrow(/at least 10000/);
  });

  it('the clocks start at the first time given', () => {
    const r = new ReceiverMachine({ agreed: AGREED });
    expect(r.pollTimeout()).toBeUndefined();
    r.pollTransmit(1_000_000);
    expect(r.pollTimeout()).toBe(1_005_000);
  });

  it('keeps alive while its user decides, and pauses the idle clock while reading is held off', () => {
    const r = new ReceiverMachine({ agreed: AGREED, nowMs: 0 });
    r.handleRecord(encodeMessages([offerFor([file(0, 'f', 1)])]), false, 0);
    expect(r.pollEvent()?.type).toBe('offer');
    expect(r.pollTransmit(5_000)?.plaintext).toEqual(Uint8Array.of(0x11));
    r.setReadingPaused(true, 6_000);
    r.handleTimeout(200_000);
    expect(r.pollEvent()).toBeUndefined();
    r.setReadingPaused(false, 200_000);
    r.handleTimeout(259_999);
    expect(r.pollEvent()).toBeUndefined();
    r.handleTimeout(260_000);
    expect(r.pollEvent()).toMatchObject({ type: 'failed', code: 0 });
  });

  it('without 0x40: no KeepAlive; the receiver waits 600 s, not while its user decides', () => {
    const r = new ReceiverMachine({ agreed: 0x02 | 0x20, nowMs: 0 });
    expect(r.pollTimeout()).toBe(600_000);
    expect(r.pollTransmit(100_000)).toBeUndefined();
    r.handleRecord(encodeMessages([offerFor([file(0, 'f', 1)])]), false, 1_000);
    r.pollEvent();
    expect(r.pollTimeout()).toBeUndefined();
    r.handleTimeout(10_000_000);
    expect(r.pollEvent()).toBeUndefined();
    r.accept();
    expect(r.pollTransmit(10_000_000)?.plaintext).toEqual(Uint8Array.of(0x02));
    expect(r.pollTimeout()).toBe(10_600_000);
    const s = new SenderMachine({ agreed: 0x02 | 0x20, entries: [], nowMs: 0 });
    s.pollTransmit(0);
    expect(s.pollTimeout()).toBeUndefined();
  });

  it('the sender keeps alive while it waits, and sends a held partial record when a KeepAlive is due', () => {
    const p = Pair.files([{ path: 'a', data: pattern(10, 1) }, { path: 'b', data: pattern(2_000_000, 2) }]);
    p.now = 0;
    const pending: Array<Extract<SenderEvent, { type: 'need-data' }>> = [];
    p.onNeed = (e) => pending.push(e);
    // Before the offer is answered the sender keeps alive.
    p.answer = 'none';
    p.step();
    p.now = 5_000;
    expect(p.s.pollTransmit(p.now)?.plaintext).toEqual(Uint8Array.of(0x11));
    p.r.accept();
    p.run();
    // File "a" is requested; its FileStart waits in a partial record for the data.
    expect(pending).toHaveLength(1);
    const n = p.s2r.length;
    p.s.pushData(0, p.sources.get(0)!);
    p.run();
    expect(pending).toHaveLength(2); // "b", with room left in the same record
    expect(p.s2r.length).toBe(n);
    expect(p.s.pollTimeout()).toBe(10_000);
    p.now = 10_000;
    p.run();
    expect(p.s2r.length).toBe(n + 1);
    const held = decodeMessages(p.s2r.at(-1)!.plaintext).map((m) => m.type);
    expect(held).toEqual(['file-start', 'chunk', 'file-end', 'file-start']);
    p.onNeed = (e, q) => q.s.pushData(e.index, q.sources.get(e.index)!.subarray(e.offset, e.offset + e.max));
    const last = pending.at(-1)!;
    p.s.pushData(last.index, p.sources.get(last.index)!.subarray(last.offset, last.offset + last.max));
    p.run();
    expect(p.r.completed).toBe(true);
    expect(toHex(blake3(p.received(1)))).toBe(toHex(blake3(p.sources.get(1)!)));
  });

  it('the sender times out a silent receiver only with 0x40', () => {
    const s = new SenderMachine({ agreed: AGREED, entries: [], nowMs: 0 });
    s.pollTransmit(0);
    s.handleTimeout(60_000);
    expect(s.pollEvent()).toEqual({ type: 'failed', side: 'local', code: 0, reason: 'nothing arrived from the receiver for 60 s' });
    expect(s.pollTransmit(60_000)?.final).toBe(true);
    expect(s.finished).toBe(true);
  });
});
