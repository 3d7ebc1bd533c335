import { describe, expect, it } from 'vitest';
import {
  calculateGenerator,
  channelId,
  cpaceIsk,
  cpaceSecret,
  cpaceShare,
  generatorString,
  leb128,
  lvCat,
  prependLen,
} from '../../src/proto/cpace';
import { hex, readVector, toHex } from './helpers';


const draft = (await readVector('cpace-draft21-testvectors.json')) as { G_25519: Record<string, string>; X25519_points: Record<string, string> };
const G = draft.G_25519;
const v = (k: string) => hex(G[k]!.toLowerCase());

describe('CPace building blocks', () => {
  it('LEB128 and lv_cat', () => {
    expect(toHex(leb128(0))).toBe('00');
    expect(toHex(leb128(127))).toBe('7f');
    expect(toHex(leb128(128))).toBe('8001');
    expect(toHex(leb128(300))).toBe('ac02');
    expect(toHex(leb128(16384))).toBe('808001');
    expect(toHex(prependLen(new Uint8Array(0)))).toBe('00');
    expect(toHex(lvCat(hex('aa'), new Uint8Array(0), hex('bbcc')))).toBe('01aa0002bbcc');
  });

  it('channel id of the handshake vectors (§14.2)', () => {
    expect(toHex(channelId('7'))).toBe('0f707164726f702f76312063706163650137');
  });

  it('generator string pads the first SHA-512 block', () => {
    const prs = new TextEncoder().encode('Password');
    const gs = generatorString(prs, v('CI'), v('sid'));
    // lv(DSI) = 9 bytes, lv(PRS) = 9 bytes, lv(zpad) = 1 + 109: the first 128 bytes hold DSI, PRS and padding.
    expect(gs.length).toBe(9 + 9 + 1 + 109 + 1 + v('CI').length + 1 + v('sid').length);
    expect(gs[18]).toBe(109);
    expect(gs.subarray(19, 128).every((b) => b === 0)).toBe(true);
    // A password longer than the block gets no padding (length byte 0).
    const long = generatorString(new Uint8Array(200), v('CI'), v('sid'));
    expect(long[9 + 2 + 200]).toBe(0);
  });
});

describe('draft-irtf-cfrg-cpace-21 G_25519', () => {
  const prs = v('PRS');
  const g = calculateGenerator(prs, v('CI'), v('sid'));

  it('generator', () => expect(toHex(g)).toBe(G.g!.toLowerCase()));

  it('shares', () => {
    expect(toHex(cpaceShare(v('ya'), g))).toBe(G.Ya!.toLowerCase());
    expect(toHex(cpaceShare(v('yb'), g))).toBe(G.Yb!.toLowerCase());
  });

  it('K, both ways', () => {
    expect(toHex(cpaceSecret(v('ya'), v('Yb'))!)).toBe(G.K!.toLowerCase());
    expect(toHex(cpaceSecret(v('yb'), v('Ya'))!)).toBe(G.K!.toLowerCase());
  });

  it('ISK, initiator-responder order', () => {
    expect(toHex(cpaceIsk(v('sid'), v('K'), v('Ya'), v('ADa'), v('Yb'), v('ADb')))).toBe(G.ISK_IR!.toLowerCase());
  });
});

describe('draft-irtf-cfrg-cpace-21 X25519_points', () => {
  const points = draft.X25519_points;
  expect(Object.keys(points)).toHaveLength(12);
  const lowOrder = new Set(['Y0', 'Y1', 'Y2', 'Y3', 'Y4', 'Y5', 'Y7']);
  for (const [name, point] of Object.entries(points)) {
    const id = name.replace('Invalid ', '');
    const low = lowOrder.has(id);
    it(`${id} ${low ? 'gives K = 0' : 'is an ordinary point'}`, () => {
      for (const scalar of [v('ya'), v('yb')]) {
        const k = cpaceSecret(scalar, hex(point.toLowerCase()));
        if (low) expect(k).toBeUndefined();
        else expect(k!.some((b) => b !== 0)).toBe(true);
      }
    });
  }
});
