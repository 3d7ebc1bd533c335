import { describe, expect, it } from 'vitest';
import {
  CodeError,
  entropyBits,
  generateCode,
  isListWord,
  isValidNameplate,
  isWeakerThanGenerated,
  parseCode,
  parseNameplate,
  randomNameplate,
  uniform,
  type Random,
} from '../../src/proto/code';
import { WORDLIST, WORDLIST_LEN } from '../../src/proto/wordlist';

const dec = new TextDecoder();

/** A deterministic source that yields the given u32 values (little-endian), then zeros. */
function u32s(...values: number[]): Random {
  const queue = [...values];
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i + 4 <= n; i += 4) new DataView(out.buffer).setUint32(i, queue.shift() ?? 0, true);
    return out;
  };
}

function counter(): Random {
  let x = 0x9e3779b9;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  };
}

describe('parseCode (§2)', () => {
  const ok: [string, string, string][] = [
    ['7-lemon-tiger', '7', 'lemon-tiger'],
    [' 7 Ocean__TIGER ', '7', 'ocean-tiger'],
    ['007-lemon-tiger', '7', 'lemon-tiger'],
    ['65535-a', '65535', 'a'],
    ['7.lemon.tiger', '7', 'lemon-tiger'],
    ['7 -_. lemon\t\ttiger\n', '7', 'lemon-tiger'],
    ['7\u2014lemon\u2212tiger', '7', 'lemon-tiger'], // em dash, minus sign
    ['7\u2010lemon\u2015tiger', '7', 'lemon-tiger'],
    ['7\u00a0lemon\u3000tiger\u0085', '7', 'lemon-tiger'], // NBSP, ideographic space, NEL
    ['-7-lemon-tiger-', '7', 'lemon-tiger'], // leading and trailing separators are dropped
    ['7-a-b-c-d-e-f-g-h', '7', 'a-b-c-d-e-f-g-h'],
    ['7-' + 'x'.repeat(32), '7', 'x'.repeat(32)],
    ['7-lem', '7', 'lem'], // a prefix is never expanded
  ];
  for (const [input, nameplate, prs] of ok) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      const c = parseCode(input);
      expect(c.nameplate).toBe(nameplate);
      expect(dec.decode(c.prs)).toBe(prs);
      expect(c.words).toEqual(prs.split('-'));
    });
  }

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['   ', /empty/],
    ['-_.', /only separators/],
    ['lemon-tiger', /missing the number/],
    ['0-lemon', /between 1 and 65535/],
    ['000-lemon', /between 1 and 65535/],
    ['65536-lemon', /between 1 and 65535/],
    ['0000065535-lemon', /.*/], // valid: leading zeros do not count
    ['1234567-lemon', /between 1 and 65535/],
    ['7', /missing the secret words/],
    ['7-a-b-c-d-e-f-g-h-i', /9 words/],
    ['7-lémon', /not a plain letter/],
    ['7-\u212aelvin', /not a plain letter/], // KELVIN SIGN lowercases to 'k' in Unicode
    ['7-lemon2', /digit/],
    ['7x-lemon', /followed by a separator/],
    ['#7-lemon', /must start with a number/],
    ['٧-lemon', /must start with a number/], // Arabic-Indic digit seven
    ['7-lemon!tiger', /neither a letter/],
    ['7-' + 'x'.repeat(33), /too long/],
    ['7-' + 'a-'.repeat(128), /bytes long/],
    ['7-lemon\ufefftiger', /neither a letter|not a plain letter/], // U+FEFF is not White_Space
  ];
  for (const [input, message] of bad) {
    it(`${input === '0000065535-lemon' ? 'accepts' : 'refuses'} ${JSON.stringify(input.slice(0, 40))}`, () => {
      if (input === '0000065535-lemon') {
        expect(parseCode(input).nameplate).toBe('65535');
        return;
      }
      let err: unknown;
      try {
        parseCode(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CodeError);
      expect((err as Error).message).toMatch(message);
      // Messages never quote the input, which may hold the secret.
      const text = (err as Error).message.replace('codes look like 7-lemon-tiger', '');
      expect(text).not.toMatch(/lemon|tiger|lémon|elvin/);
    });
  }

  it('256 bytes is the limit', () => {
    const s = '7-' + 'ab-'.repeat(84) + 'ab'; // 2 + 252 + 2 = 256 bytes, 85 words
    expect(new TextEncoder().encode(s).length).toBe(256);
    expect(() => parseCode(s)).toThrow(/85 words/);
  });
});

describe('nameplates', () => {
  it('canonical wire form', () => {
    for (const s of ['1', '7', '999', '65535']) expect(isValidNameplate(s)).toBe(true);
    for (const s of ['', '0', '07', '65536', '100000', ' 7', '7 ', '+7', '7a', '٧']) expect(isValidNameplate(s)).toBe(false);
  });
  it('parseNameplate is lenient', () => {
    expect(parseNameplate(' 0042 ')).toBe('42');
    expect(() => parseNameplate('0')).toThrow(CodeError);
  });
  it('randomNameplate is in 1..=999', () => {
    expect(randomNameplate(u32s(0))).toBe('1');
    expect(randomNameplate(u32s(998))).toBe('999');
    const r = counter();
    for (let i = 0; i < 200; i++) {
      const n = Number(randomNameplate(r));
      expect(n >= 1 && n <= 999).toBe(true);
    }
  });
});

describe('uniform', () => {
  it('rejects the biased tail', () => {
    // 2^32 mod 1296 = 1264: the top 1264 values would favour low results and are redrawn.
    const limit = 2 ** 32 - 1264;
    expect(limit % 1296).toBe(0);
    expect(uniform(1296, u32s(limit, 5))).toBe(5);
    expect(uniform(1296, u32s(limit - 1))).toBe((limit - 1) % 1296);
  });
});

describe('word list and generated codes', () => {
  it('is the EFF short list 2.0', () => {
    expect(WORDLIST).toHaveLength(WORDLIST_LEN);
    expect(WORDLIST[0]).toBe('aardvark');
    expect(WORDLIST[WORDLIST_LEN - 1]).toBe('zucchini');
    expect(WORDLIST).toContain('yoyo');
    expect(WORDLIST.every((w) => /^[a-z]{3,10}$/.test(w))).toBe(true);
    expect([...WORDLIST].sort()).toEqual(WORDLIST);
    expect(new Set(WORDLIST.map((w) => w.slice(0, 3))).size).toBe(WORDLIST_LEN);
  });

  it('generates distinct list words that parse back', () => {
    const r = counter();
    for (let n = 1; n <= 8; n++) {
      const s = generateCode('42', n, r);
      const c = parseCode(s);
      expect(c.nameplate).toBe('42');
      expect(c.words).toHaveLength(n);
      expect(new Set(c.words).size).toBe(n);
      expect(c.words.every(isListWord)).toBe(true);
    }
    expect(generateCode('7').split('-')).toHaveLength(3);
  });

  it('redraws a repeated word', () => {
    expect(generateCode('7', 2, u32s(3, 3, 4))).toBe(`7-${WORDLIST[3]}-${WORDLIST[4]}`);
  });

  it('refuses bad arguments', () => {
    expect(() => generateCode('07')).toThrow(RangeError);
    expect(() => generateCode('7', 0)).toThrow(RangeError);
    expect(() => generateCode('7', 9)).toThrow(RangeError);
  });

  it('estimates entropy', () => {
    expect(entropyBits(parseCode('7-lemon-tiger'))).toBeCloseTo(2 * Math.log2(1296));
    expect(isWeakerThanGenerated(parseCode('7-lemon-tiger'))).toBe(false);
    expect(isWeakerThanGenerated(parseCode('7-tiger-tiger'))).toBe(true);
    expect(entropyBits(parseCode('7-qwzx'))).toBe(6);
    expect(isWeakerThanGenerated(parseCode('7-qwzxqwzx-plmoknij'))).toBe(false);
  });
});
