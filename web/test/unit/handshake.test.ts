import { describe, expect, it } from 'vitest';
import { sha512 } from '@noble/hashes/sha2.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { concat, encodeFrame, FrameDecoder, type Frame } from '../../src/proto/codec';
import { parseCode, type Code } from '../../src/proto/code';
import { calculateGenerator, channelId, cpaceIsk, cpaceSecret, cpaceShare } from '../../src/proto/cpace';
import * as caps from '../../src/proto/caps';
import {
  abortFrame,
  confirmTag,
  deriveKeys,
  Handshake,
  HandshakeError,
  parseAcceptAdd2,
  parseKeys2,
  parseRequestAdd2,
  transcriptHash,
  type Random,
} from '../../src/proto/handshake';
import { hex, readVector, toHex, utf8 } from './helpers';


interface Vector {
  name: string;
  inputs: {
    nameplate: string;
    password: string;
    requester_capabilities: number;
    accepter_capabilities: number;
    rng_labels: { requester: string; accepter: string; requester_kem: string; accepter_kem: string };
  };
  random: Record<
    | 'requester_nonce'
    | 'requester_cpace_scalar'
    | 'chacha_salt'
    | 'accepter_cpace_scalar'
    | 'aes_salt'
    | 'mlkem_d'
    | 'mlkem_z'
    | 'mlkem_m',
    string
  >;
  mlkem: { ek: string; dk_expanded: string; ct: string; shared_secret: string };
  cpace: { channel_id: string; sid: string; generator: string; ya: string; yb: string; k: string; isk: string };
  flights: string[];
  transcript_hash: string;
  key_schedule: Record<
    'aes_r2a' | 'aes_a2r' | 'chacha_r2a' | 'chacha_a2r' | 'confirm_key_r2a' | 'confirm_key_a2r' | 'exporter',
    string
  >;
  confirm_tag_r2a: string;
  confirm_tag_a2r: string;
  agreed: { cipher: string; resume: boolean; zstd: boolean };
  records: Record<
    'accepter_to_requester' | 'requester_to_accepter',
    { counter: number; final: boolean; frame: string; plaintext: string }
  >;
}

const file = (await readVector('handshake.json')) as {
  vectors: Vector[];
};

/** `stream(label) = SHA-512(label || u64_be(0)) || SHA-512(label || u64_be(1)) || …`; each draw takes the next bytes. */
function streamRandom(label: string): Random {
  let buf: Uint8Array = new Uint8Array(0);
  let block = 0n;
  return (n) => {
    while (buf.length < n) {
      const ctr = new Uint8Array(8);
      new DataView(ctr.buffer).setBigUint64(0, block++);
      buf = concat([buf, sha512(concat([utf8(label), ctr]))]);
    }
    const out = buf.slice(0, n);
    buf = buf.slice(n);
    return out;
  };
}

function frames(bytes: Uint8Array): Frame[] {
  const d = new FrameDecoder();
  d.handshakeComplete(); // tests split records too
  d.push(bytes);
  const out: Frame[] = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  expect(d.buffered).toBe(0);
  return out;
}

const CIPHER: Record<string, caps.CipherName> = {
  'AES-256-GCM': 'aes-256-gcm',
  'ChaCha20-Poly1305': 'chacha20-poly1305',
  'AES-256-GCM+ChaCha20-Poly1305 cascade': 'cascade',
};

describe('handshake vectors (vectors/handshake.json)', () => {
  expect(file.vectors.map((v) => v.name)).toEqual(['aes256gcm', 'chacha20poly1305', 'cascade']);

  for (const v of file.vectors) {
    describe(v.name, () => {
      const code = parseCode(`${v.inputs.nameplate}-${v.inputs.password}`);

      it('draws the documented randomness', () => {
        const req = streamRandom(v.inputs.rng_labels.requester);
        expect(toHex(req(32))).toBe(v.random.requester_nonce);
        expect(toHex(req(32))).toBe(v.random.requester_cpace_scalar);
        expect(toHex(req(32))).toBe(v.random.chacha_salt);
        const acc = streamRandom(v.inputs.rng_labels.accepter);
        expect(toHex(acc(32))).toBe(v.random.accepter_cpace_scalar);
        expect(toHex(acc(32))).toBe(v.random.aes_salt);
        const kemA = streamRandom(v.inputs.rng_labels.accepter_kem);
        expect(toHex(kemA(32))).toBe(v.random.mlkem_d);
        expect(toHex(kemA(32))).toBe(v.random.mlkem_z);
        expect(toHex(streamRandom(v.inputs.rng_labels.requester_kem)(32))).toBe(v.random.mlkem_m);
      });

      it('reproduces ML-KEM-768', () => {
        const { publicKey, secretKey } = ml_kem768.keygen(hex(v.random.mlkem_d + v.random.mlkem_z));
        expect(toHex(publicKey)).toBe(v.mlkem.ek);
        expect(toHex(secretKey)).toBe(v.mlkem.dk_expanded);
        const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, hex(v.random.mlkem_m));
        expect(toHex(cipherText)).toBe(v.mlkem.ct);
        expect(toHex(sharedSecret)).toBe(v.mlkem.shared_secret);
        expect(toHex(ml_kem768.decapsulate(cipherText, secretKey))).toBe(v.mlkem.shared_secret);
      });

      it('reproduces CPace', () => {
        const ci = channelId(v.inputs.nameplate);
        expect(toHex(ci)).toBe(v.cpace.channel_id);
        const sid = hex(v.random.requester_nonce + v.random.aes_salt);
        expect(toHex(sid)).toBe(v.cpace.sid);
        const g = calculateGenerator(code.prs, ci, sid);
        expect(toHex(g)).toBe(v.cpace.generator);
        const ya = cpaceShare(hex(v.random.accepter_cpace_scalar), g);
        const yb = cpaceShare(hex(v.random.requester_cpace_scalar), g);
        expect(toHex(ya)).toBe(v.cpace.ya);
        expect(toHex(yb)).toBe(v.cpace.yb);
        expect(toHex(cpaceSecret(hex(v.random.accepter_cpace_scalar), yb)!)).toBe(v.cpace.k);
        expect(toHex(cpaceSecret(hex(v.random.requester_cpace_scalar), ya)!)).toBe(v.cpace.k);
        const empty = new Uint8Array(0);
        expect(toHex(cpaceIsk(sid, hex(v.cpace.k), ya, empty, yb, empty))).toBe(v.cpace.isk);
      });

      it('reproduces the transcript hash, key schedule and confirm tags', () => {
        const keys2 = frames(hex(v.flights[2]!))[0]!;
        const transcript = concat([hex(v.flights[0]!), hex(v.flights[1]!), encodeFrame(keys2.type, keys2.body)]);
        const th = transcriptHash(hex(v.cpace.channel_id), transcript);
        expect(toHex(th)).toBe(v.transcript_hash);
        const ks = deriveKeys(hex(v.cpace.isk), hex(v.mlkem.shared_secret), hex(v.random.aes_salt), hex(v.random.chacha_salt), th);
        expect(toHex(ks.aes.r2a)).toBe(v.key_schedule.aes_r2a);
        expect(toHex(ks.aes.a2r)).toBe(v.key_schedule.aes_a2r);
        expect(toHex(ks.chacha.r2a)).toBe(v.key_schedule.chacha_r2a);
        expect(toHex(ks.chacha.a2r)).toBe(v.key_schedule.chacha_a2r);
        expect(toHex(ks.confirm.r2a)).toBe(v.key_schedule.confirm_key_r2a);
        expect(toHex(ks.confirm.a2r)).toBe(v.key_schedule.confirm_key_a2r);
        expect(toHex(ks.exporter)).toBe(v.key_schedule.exporter);
        expect(toHex(confirmTag(ks.confirm.r2a, th))).toBe(v.confirm_tag_r2a);
        expect(toHex(confirmTag(ks.confirm.a2r, th))).toBe(v.confirm_tag_a2r);
      });

      it('parses the messages', () => {
        const [req] = frames(hex(v.flights[0]!));
        expect(toHex(parseRequestAdd2(req!.body).nonce)).toBe(v.random.requester_nonce);
        const acc = parseAcceptAdd2(frames(hex(v.flights[1]!))[0]!.body);
        expect(acc.version).toBe(1n);
        expect(toHex(acc.ya)).toBe(v.cpace.ya);
        expect(toHex(acc.ek)).toBe(v.mlkem.ek);
        expect(toHex(acc.aesSalt)).toBe(v.random.aes_salt);
        expect(acc.caps).toBe(v.inputs.accepter_capabilities);
        const [k2, conf] = frames(hex(v.flights[2]!));
        const keys2 = parseKeys2(k2!.body);
        expect(toHex(keys2.yb)).toBe(v.cpace.yb);
        expect(toHex(keys2.ct)).toBe(v.mlkem.ct);
        expect(toHex(keys2.chachaSalt)).toBe(v.random.chacha_salt);
        expect(keys2.caps).toBe(v.inputs.requester_capabilities);
        expect(toHex(conf!.body)).toBe('20' + v.confirm_tag_r2a);
        expect(v.flights.map((f) => f.length / 2)).toEqual([36, 1259, 1197, 35]);
      });

      it('drives both roles to the exact flights, keys and records', async () => {
        const requester = Handshake.requester({
          code,
          caps: v.inputs.requester_capabilities,
          random: streamRandom(v.inputs.rng_labels.requester),
          kemRandom: streamRandom(v.inputs.rng_labels.requester_kem),
        });
        const accepter = Handshake.accepter({
          code,
          caps: v.inputs.accepter_capabilities,
          random: streamRandom(v.inputs.rng_labels.accepter),
          kemRandom: streamRandom(v.inputs.rng_labels.accepter_kem),
        });
        expect(accepter.start()).toEqual([]);
        const f0 = requester.start();
        expect(toHex(concat(f0))).toBe(v.flights[0]);
        expect(requester.status).toBe(0);
        expect(accepter.status).toBe(0);

        const f1 = await accepter.receive(frames(concat(f0))[0]!);
        expect(toHex(concat(f1))).toBe(v.flights[1]);
        expect(accepter.status).toBe(1);

        const f2 = await requester.receive(frames(concat(f1))[0]!);
        expect(f2).toHaveLength(2);
        expect(toHex(concat(f2))).toBe(v.flights[2]);
        expect(requester.status).toBe(2);

        const [keys2, confirm] = frames(concat(f2));
        expect(await accepter.receive(keys2!)).toEqual([]);
        expect(accepter.status).toBe(1);
        const f3 = await accepter.receive(confirm!);
        expect(toHex(concat(f3))).toBe(v.flights[3]);
        expect(accepter.status).toBe(3);

        expect(await requester.receive(frames(concat(f3))[0]!)).toEqual([]);
        expect(requester.status).toBe(3);

        const r = requester.established!;
        const a = accepter.established!;
        for (const e of [r, a]) {
          expect(toHex(e.transcriptHash)).toBe(v.transcript_hash);
          expect(toHex(e.exporter)).toBe(v.key_schedule.exporter);
          expect(e.cipher).toBe(CIPHER[v.agreed.cipher]);
          expect(e.version).toBe(1);
          expect(Boolean(e.agreed & caps.RESUME)).toBe(v.agreed.resume);
          expect(Boolean(e.agreed & caps.ZSTD)).toBe(v.agreed.zstd);
        }
        expect(r.ours).toBe(v.inputs.requester_capabilities);
        expect(r.theirs).toBe(v.inputs.accepter_capabilities);
        expect(a.ours).toBe(v.inputs.accepter_capabilities);
        expect(a.theirs).toBe(v.inputs.requester_capabilities);

        const a2r = v.records.accepter_to_requester;
        const sealedA = await a.sealer.seal(utf8(a2r.plaintext), a2r.final);
        expect(toHex(sealedA)).toBe(a2r.frame);
        const openedA = await r.opener.open(frames(sealedA)[0]!);
        expect(new TextDecoder().decode(openedA.plaintext)).toBe(a2r.plaintext);
        expect(openedA.final).toBe(false);

        const r2a = v.records.requester_to_accepter;
        const sealedR = await r.sealer.seal(utf8(r2a.plaintext), r2a.final);
        expect(toHex(sealedR)).toBe(r2a.frame);
        const openedR = await a.opener.open(frames(hex(r2a.frame))[0]!);
        expect(new TextDecoder().decode(openedR.plaintext)).toBe(r2a.plaintext);
      });
    });
  }
});

// ---- live handshakes -------------------------------------------------------

interface Run {
  requester: Handshake;
  accepter: Handshake;
}

/** Runs a handshake in memory; `tamper` may rewrite any frame on the way (flight index, frame). */
async function run(
  reqCode: Code,
  accCode: Code,
  reqCaps: number,
  accCaps: number,
  tamper: (flight: number, f: Frame) => Frame = (_i, f) => f,
): Promise<Run> {
  const requester = Handshake.requester({ code: reqCode, caps: reqCaps });
  const accepter = Handshake.accepter({ code: accCode, caps: accCaps });
  const deliver = async (to: Handshake, flight: number, out: Uint8Array[]) => {
    const replies: Uint8Array[] = [];
    for (const f of frames(concat(out))) replies.push(...(await to.receive(tamper(flight, f))));
    return replies;
  };
  accepter.start();
  const f1 = await deliver(accepter, 0, requester.start());
  const f2 = await deliver(requester, 1, f1);
  const f3 = await deliver(accepter, 2, f2);
  await deliver(requester, 3, f3);
  return { requester, accepter };
}

async function exchange({ requester, accepter }: Run): Promise<void> {
  const r = requester.established!;
  const a = accepter.established!;
  const big = crypto.getRandomValues(new Uint8Array(65536));
  const fa = await a.sealer.seal(big, false);
  expect((await r.opener.open(frames(fa)[0]!)).plaintext).toEqual(big);
  const fr = await r.sealer.seal(utf8('bye'), true);
  const opened = await a.opener.open(frames(fr)[0]!);
  expect(opened).toEqual({ plaintext: utf8('bye'), final: true });
  expect(a.opener.finished).toBe(true);
}

async function failure(p: Promise<unknown>): Promise<HandshakeError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(HandshakeError);
  return e as HandshakeError;
}

const code = parseCode('7-ocean-tiger');
const page = caps.pageCapabilities(true);

describe('live handshake', () => {
  it('agrees on AES-256-GCM when both have it', async () => {
    const res = await run(code, code, page, caps.AES_256_GCM | caps.CHACHA20_POLY1305 | caps.RESUME | caps.STOP_CODES);
    expect(res.requester.established!.cipher).toBe('aes-256-gcm');
    expect(res.accepter.established!.agreed).toBe(caps.AES_256_GCM | caps.STOP_CODES);
    expect(res.requester.established!.transcriptHash).toEqual(res.accepter.established!.transcriptHash);
    expect(res.requester.established!.exporter).toEqual(res.accepter.established!.exporter);
    await exchange(res);
  });

  it('agrees on ChaCha20-Poly1305 when one side lacks AES', async () => {
    const res = await run(code, code, caps.pageCapabilities(false), page);
    expect(res.accepter.established!.cipher).toBe('chacha20-poly1305');
    await exchange(res);
  });

  it('agrees on the cascade when either side asks', async () => {
    const res = await run(code, code, page, caps.CHACHA20_POLY1305 | caps.CASCADE);
    expect(res.requester.established!.cipher).toBe('cascade');
    await exchange(res);
  });

  it('fails on both sides with a wrong code', async () => {
    const requester = Handshake.requester({ code, caps: page });
    const accepter = Handshake.accepter({ code: parseCode('7-ocean-tigers'), caps: page });
    const f1 = await accepter.receive(frames(concat(requester.start()))[0]!);
    const [keys2, confirm] = frames(concat(await requester.receive(frames(concat(f1))[0]!)));
    expect(await accepter.receive(keys2!)).toEqual([]);
    const ea = await failure(accepter.receive(confirm!));
    expect(ea.kind).toBe('wrong-code');
    expect(ea.fromPeer).toBe(false);
    expect(ea.reason).toBe(1);
    expect(toHex(ea.abortFrame!)).toBe('2c0101');
    expect(accepter.established).toBeUndefined();
    const er = await failure(requester.receive(frames(ea.abortFrame!)[0]!));
    expect(er.kind).toBe('wrong-code');
    expect(er.fromPeer).toBe(true);
    expect(er.reason).toBe(1);
    expect(er.abortFrame).toBeUndefined();
    expect(requester.established).toBeUndefined();
    // The connection is spent: nothing more is accepted.
    await failure(requester.receive(frames(abortFrame(3))[0]!));
  });

  it('fails with a different nameplate (bound through CI)', async () => {
    const e = await failure(run(code, parseCode('8-ocean-tiger'), page, page));
    expect(e.kind).toBe('wrong-code');
  });

  // Every public value is bound: flipping one bit anywhere makes confirmation fail.
  const flips: [string, number, number, number][] = [
    ['requestAdd2 nonce', 0, 40, 5],
    ['acceptAdd2 ek', 1, 41, 100],
    ['acceptAdd2 aesSalt', 1, 41, 1250 - 3],
    ['acceptAdd2 capabilities', 1, 41, -1],
    ['keys2 ct', 2, 42, 500],
    ['keys2 chaChaSalt', 2, 42, -5],
    ['keys2 capabilities', 2, 42, -1],
    ['confirm tag_r', 2, 43, 10],
  ];
  for (const [what, flight, type, at] of flips) {
    it(`detects a flipped bit in ${what}`, async () => {
      const e = await failure(
        run(code, code, page, page, (i, f) => {
          if (i !== flight || f.type !== type) return f;
          const body = f.body.slice();
          const pos = at < 0 ? body.length + at : at;
          body[pos]! ^= 0x04;
          return { type: f.type, body };
        }),
      );
      expect(e.kind).toBe('wrong-code');
    });
  }

  it('detects a flipped tag_a on the requester, which sends abort(1)', async () => {
    const requester = Handshake.requester({ code, caps: page });
    const accepter = Handshake.accepter({ code, caps: page });
    const f1 = await accepter.receive(frames(concat(requester.start()))[0]!);
    const f2 = frames(concat(await requester.receive(frames(concat(f1))[0]!)));
    await accepter.receive(f2[0]!);
    const [conf] = frames(concat(await accepter.receive(f2[1]!)));
    conf!.body[5]! ^= 1;
    const e = await failure(requester.receive(conf!));
    expect(e.kind).toBe('wrong-code');
    expect(toHex(e.abortFrame!)).toBe('2c0101');
  });
});

describe('handshake checks', () => {
  /** An accepter's first flight, and a fresh requester that is waiting for it. */
  async function acceptFlight() {
    const requester = Handshake.requester({ code, caps: page });
    const accepter = Handshake.accepter({ code, caps: page });
    const [f1] = frames(concat(await accepter.receive(frames(concat(requester.start()))[0]!)));
    return { requester, accepter, f1: f1! };
  }
  /** acceptAdd2 body fields: version(1) || 20 Ya(32) || fc a0 04 ek(1184) || 20 aesSalt(32) || caps. */
  const YA = 2;
  const EK_LEN = 1 + 1 + 32;

  async function protocolFailure(p: Promise<unknown>, abortHex = '2c0103') {
    const e = await failure(p);
    expect(e.kind).toBe('protocol');
    expect(e.fromPeer).toBe(false);
    expect(toHex(e.abortFrame!)).toBe(abortHex);
    return e;
  }

  it('accepter answers version min(request, 1) and refuses version 0 with abort(2)', async () => {
    const nonce = '20' + '11'.repeat(32);
    const a = Handshake.accepter({ code, caps: page });
    const [f] = frames(concat(await a.receive(frames(hex('282a' + 'fe0000000000000080' + nonce))[0]!)));
    // A request body over 34 bytes is fine; version 2^63 is answered with 1.
    expect(parseAcceptAdd2(f!.body).version).toBe(1n);
    const b = Handshake.accepter({ code, caps: page });
    const e = await failure(b.receive(frames(hex('2822' + '00' + nonce))[0]!));
    expect(e.kind).toBe('version');
    expect(toHex(e.abortFrame!)).toBe('2c0102');
  });

  it('requester refuses an answer above its version with abort(2)', async () => {
    const { requester, f1 } = await acceptFlight();
    f1.body[0] = 2;
    const e = await failure(requester.receive(f1));
    expect(e.kind).toBe('version');
    expect(toHex(e.abortFrame!)).toBe('2c0102');
  });

  it('refuses a low-order CPace share with abort(3)', async () => {
    const { requester, f1 } = await acceptFlight();
    f1.body.fill(0, YA, YA + 32);
    const e = await protocolFailure(requester.receive(f1));
    expect(e.message).toMatch(/low-order/);
  });

  it('refuses an ML-KEM key that is not exactly 1184 bytes, or over the cap', async () => {
    const { requester, f1 } = await acceptFlight();
    // Shorten the ek to 1183 bytes: fc 9f 04, drop one byte.
    const body = concat([f1.body.subarray(0, EK_LEN), hex('fc9f04'), f1.body.subarray(EK_LEN + 3 + 1)]);
    await protocolFailure(requester.receive({ type: 41, body }));
    const r2 = (await acceptFlight()).requester;
    const over = concat([f1.body.subarray(0, EK_LEN), hex('fca104'), f1.body.subarray(EK_LEN + 3), hex('00')]);
    const e = await protocolFailure(r2.receive({ type: 41, body: over }));
    expect(e.message).toMatch(/over the cap/);
  });

  it('refuses trailing bytes and accepts absent capabilities', async () => {
    const { requester, f1 } = await acceptFlight();
    await protocolFailure(requester.receive({ type: 41, body: concat([f1.body, hex('00')]) }));
    const noCaps = f1.body.subarray(0, f1.body.length - 3); // page caps 0x163 = fc 63 01
    expect(toHex(f1.body.subarray(-3))).toBe('fc6301');
    expect(parseAcceptAdd2(noCaps).caps).toBe(caps.DEFAULTS);
    // Reserved high bits are ignored.
    const high = concat([noCaps, hex('fe1b01000000000080')]);
    expect(parseAcceptAdd2(high).caps).toBe(0x11b);
  });

  it('refuses messages out of order', async () => {
    const { requester, accepter, f1 } = await acceptFlight();
    await protocolFailure(accepter.receive(f1)); // the accepter's own message
    await protocolFailure(requester.receive({ type: 43, body: concat([hex('20'), new Uint8Array(32)]) }));
    const a = Handshake.accepter({ code, caps: page });
    await protocolFailure(a.receive({ type: 42, body: new Uint8Array(10) }));
    const r = Handshake.requester({ code, caps: page });
    await protocolFailure(r.receive(f1)); // before start()
  });

  it('refuses a keys2 with a short ciphertext', async () => {
    const requester = Handshake.requester({ code, caps: page });
    const accepter = Handshake.accepter({ code, caps: page });
    const f1 = await accepter.receive(frames(concat(requester.start()))[0]!);
    const [k2] = frames(concat(await requester.receive(frames(concat(f1))[0]!)));
    // 20 Yb(32) || fc 40 04 ct(1088): claim 1087 and drop a byte.
    const body = concat([k2!.body.subarray(0, 33), hex('fc3f04'), k2!.body.subarray(37)]);
    await protocolFailure(accepter.receive({ type: 42, body }));
  });

  it('reports peer aborts by reason', async () => {
    for (const [reason, kind] of [
      [1, 'wrong-code'],
      [2, 'version'],
      [3, 'peer-abort'],
      [4, 'peer-abort'],
      [9, 'peer-abort'],
    ] as const) {
      const r = Handshake.requester({ code, caps: page });
      r.start();
      const e = await failure(r.receive(frames(abortFrame(reason))[0]!));
      expect(e.kind).toBe(kind);
      expect(e.reason).toBe(reason);
      expect(e.fromPeer).toBe(true);
      expect(e.abortFrame).toBeUndefined();
    }
    const r = Handshake.requester({ code, caps: page });
    r.start();
    const e = await failure(r.receive({ type: 44, body: hex('0300') }));
    expect(e.kind).toBe('peer-abort');
    expect(e.reason).toBeUndefined();
  });

  it('refuses a handshake frame after completion', async () => {
    const { requester } = await run(code, code, page, page);
    const e = await failure(requester.receive({ type: 41, body: new Uint8Array(0) }));
    expect(e.kind).toBe('protocol');
    expect(requester.established).toBeDefined();
  });
});
