import { describe, expect, it } from 'vitest';
import {
  checkPath,
  CollisionSet,
  escapeName,
  escapeText,
  firstComponent,
  isWindowsDevice,
  MAX_SHOWN_CHARS,
  offerAllowsFirstComponent,
} from '../../src/proto/names';
import { utf8 } from './helpers';

const bytes = (...b: number[]) => Uint8Array.from(b);

function refused(raw: Uint8Array | string): string {
  const r = checkPath(typeof raw === 'string' ? utf8(raw) : raw);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(raw)}`);
  return r.reason;
}

function accepted(raw: string): string[] {
  const r = checkPath(utf8(raw));
  if (!r.ok) throw new Error(`refused ${JSON.stringify(raw)}: ${r.reason}`);
  expect(r.path).toBe(raw);
  return r.components;
}

describe('path rules', () => {
  it('accepts ordinary names', () => {
    expect(accepted('a.txt')).toEqual(['a.txt']);
    expect(accepted('dir/sub/file')).toEqual(['dir', 'sub', 'file']);
    for (const ok of [
      'grüße/日本.txt',
      'a b',
      '.hidden',
      'a..b',
      'family 👨\u200d👩\u200d👧', // ZWJ is allowed (escaped when shown)
      'می\u200cخواهم', // ZWNJ too
      'CONSOLE',
      'com10',
      'comx',
      'lpt',
      'nul_',
      'aux-file.txt',
      'con2',
      'pqdrop.txt',
      'x.pqdrop-partial.txt',
      'a\u00a0b', // NBSP is allowed, shown escaped
    ]) {
      accepted(ok);
    }
  });

  it('refuses empty, absolute and dot components', () => {
    expect(refused('')).toMatch(/empty path/);
    expect(refused('/etc/passwd')).toMatch(/absolute/);
    expect(refused('a//b')).toMatch(/empty path component/);
    expect(refused('a/')).toMatch(/empty path component/);
    expect(refused('.')).toMatch(/'\.' or '\.\.'/);
    expect(refused('..')).toMatch(/'\.' or '\.\.'/);
    expect(refused('a/../b')).toMatch(/'\.' or '\.\.'/);
    expect(refused('a/./b')).toMatch(/'\.' or '\.\.'/);
  });

  it('refuses drive letters, streams and backslashes', () => {
    expect(refused('C:')).toMatch(/':'/);
    expect(refused('C:/x')).toMatch(/':'/);
    expect(refused('file.txt:stream')).toMatch(/':'/);
    expect(refused('a\\b')).toMatch(/backslash/);
    expect(refused('\\\\server\\share')).toMatch(/backslash/);
  });

  it('refuses control characters: NUL, C0, DEL, C1', () => {
    for (const c of [0, 1, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f, 0x80, 0x85, 0x9b, 0x9f]) {
      expect(refused(`a${String.fromCodePoint(c)}b`)).toMatch(/control character/);
    }
  });

  it('refuses line separators, bidi controls, invisible characters and noncharacters', () => {
    const cls: Array<[number[], RegExp]> = [
      [[0x2028, 0x2029], /line or paragraph separator/],
      [[0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069], /bidirectional/],
      [
        [0x200b, 0x180e, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f, 0xfeff, 0xfff9, 0xfffa, 0xfffb, 0x3164, 0xffa0],
        /invisible/,
      ],
      [[0xfdd0, 0xfde0, 0xfdef, 0xfffe, 0xffff, 0x1fffe, 0x1ffff, 0x10fffe, 0x10ffff], /noncharacter/],
    ];
    for (const [cps, why] of cls) {
      for (const c of cps) expect(refused(`x${String.fromCodePoint(c)}.txt`), c.toString(16)).toMatch(why);
    }
    // Neighbours that are fine.
    for (const c of [0x2027, 0x202f, 0x2065, 0x2070, 0xfdcf, 0xfdf0, 0xfffd, 0x1fffd]) accepted(`x${String.fromCodePoint(c)}y`);
  });

  it('does not drop a leading byte order mark', () => {
    expect(refused(bytes(0xef, 0xbb, 0xbf, 0x61))).toMatch(/invisible/);
    expect(checkPath(bytes(0xef, 0xbb, 0xbf, 0x61))).toMatchObject({ shown: '\\u{FEFF}a' });
  });

  it('refuses invalid UTF-8', () => {
    for (const b of [
      bytes(0xff),
      bytes(0x61, 0x80),
      bytes(0xc0, 0x80), // overlong NUL
      bytes(0xe0, 0x80, 0xaf), // overlong '/'
      bytes(0xed, 0xa0, 0x80), // a surrogate
      bytes(0xf4, 0x90, 0x80, 0x80), // above U+10FFFF
      bytes(0xe2, 0x82), // truncated
    ]) {
      expect(refused(b)).toMatch(/not valid UTF-8/);
    }
  });

  it('refuses Windows device names in any case, with extensions', () => {
    for (const d of [
      'CON',
      'con',
      'Con.txt',
      'nul.tar.gz',
      'PRN',
      'aux',
      'COM0',
      'COM1',
      'com9',
      'LPT0',
      'lpt5',
      'COM¹',
      'com²',
      'LPT³.log',
      'CONIN$',
      'conout$.x',
      'CON .txt',
      'a/PRN',
      'nul/x',
    ]) {
      expect(refused(d), d).toMatch(/Windows device name/);
    }
    expect(isWindowsDevice('COM⁴')).toBe(false);
    expect(isWindowsDevice('CONOUT')).toBe(false);
    expect(isWindowsDevice('xcon')).toBe(false);
  });

  it('refuses a trailing dot or space', () => {
    expect(refused('a.')).toMatch(/trailing dot or space/);
    expect(refused('a ')).toMatch(/trailing dot or space/);
    expect(refused('...')).toMatch(/trailing dot or space/);
    expect(refused('dir./x')).toMatch(/trailing dot or space/);
    expect(refused('dir /x')).toMatch(/trailing dot or space/);
  });

  it("refuses pqdrop's own state names in any case", () => {
    for (const n of ['.pqdrop', '.PQDROP-resume-0011', '.pqdropx', 'x.pqdrop-partial', 'X.PQDROP-PARTIAL', '.a.txt.pqdrop-partial', '.Pqdrop-x/y', 'a/.pqdrop-resume-ab']) {
      expect(refused(n), n).toMatch(/reserved/);
    }
  });

  it('limits lengths and depth', () => {
    accepted('x'.repeat(255));
    expect(refused('x'.repeat(256))).toMatch(/over 255 bytes/);
    accepted('é'.repeat(127) + 'x'); // 255 bytes
    expect(refused('é'.repeat(128))).toMatch(/over 255 bytes/); // 256 bytes
    accepted(Array(64).fill('d').join('/'));
    expect(refused(Array(65).fill('d').join('/'))).toMatch(/deeper than 64/);
    const long = Array(17).fill('y'.repeat(240)).join('/'); // 4096 bytes
    expect(utf8(long).length).toBe(4096);
    accepted(long);
    expect(refused(long + 'z')).toMatch(/over 4096 bytes/);
  });

  it('shows the refused name escaped', () => {
    const r = checkPath(utf8('evil\u202etxt.exe'));
    expect(r).toEqual({ ok: false, reason: 'bidirectional control character in name', shown: 'evil\\u{202E}txt.exe' });
  });
});

describe('collisions', () => {
  const add = (set: CollisionSet, path: string, folder = false) => set.insert(path.split('/'), folder)?.reason;

  it('refuses duplicates and file/folder clashes in either order', () => {
    const s = new CollisionSet();
    expect(add(s, 'a.txt')).toBeUndefined();
    expect(add(s, 'a.txt')).toMatch(/duplicate/);
    expect(add(s, 'a.txt', true)).toMatch(/a file and a folder/);
    expect(add(s, 'd', true)).toBeUndefined();
    expect(add(s, 'd', true)).toMatch(/duplicate/);
    expect(add(s, 'd')).toMatch(/a file and a folder/);
    expect(add(s, 'a.txt/x')).toMatch(/is a file where this path needs a folder/);
    expect(add(s, 'p/q/r')).toBeUndefined();
    expect(add(s, 'p/q')).toMatch(/a file and a folder/);
    expect(add(s, 'p')).toMatch(/a file and a folder/);
  });

  it('allows a folder entry for an implied folder, before or after its contents', () => {
    const s = new CollisionSet();
    expect(add(s, 'top/sub/f')).toBeUndefined();
    expect(add(s, 'top', true)).toBeUndefined();
    expect(add(s, 'top/sub', true)).toBeUndefined();
    expect(add(s, 'top/sub', true)).toMatch(/duplicate/);
    expect(add(s, 'x', true)).toBeUndefined();
    expect(add(s, 'x/y')).toBeUndefined();
  });

  it('refuses names equal after NFC and lower-casing', () => {
    const s = new CollisionSet();
    expect(add(s, 'README.md')).toBeUndefined();
    expect(add(s, 'readme.MD')).toMatch(/letter case or Unicode normalisation/);
    expect(add(s, 'caf\u00e9')).toBeUndefined();
    expect(add(s, 'cafe\u0301')).toMatch(/normalisation/);
    expect(add(s, 'CAFE\u0301')).toMatch(/normalisation/);
    // Parents too: 'Dir/x' and 'dir/y' would share one folder on macOS and Windows.
    expect(add(s, 'Dir/x')).toBeUndefined();
    expect(add(s, 'dir/y')).toMatch(/normalisation/);
    expect(add(s, 'Dir/y')).toBeUndefined();
    // Different names stay different.
    expect(add(s, 'straße')).toBeUndefined();
    expect(add(s, 'strasse')).toBeUndefined();
  });

  it('leaves the set unchanged on refusal and caps the number of paths', () => {
    const s = new CollisionSet(4);
    expect(add(s, 'a/b/c')).toBeUndefined();
    expect(s.size).toBe(3);
    expect(add(s, 'a/b/c')).toMatch(/duplicate/);
    expect(s.size).toBe(3);
    expect(s.insert(['x', 'y'], false)).toEqual({ reason: 'more than 4 distinct paths in one transfer', limit: true });
    expect(s.size).toBe(3);
    expect(add(s, 'a/d')).toBeUndefined();
    expect(s.size).toBe(4);
  });
});

describe('offer names', () => {
  it('with fewer than 16 names the list is complete', () => {
    const names = [utf8('a'), utf8('b.txt')];
    expect(offerAllowsFirstComponent(names, firstComponent(utf8('a/x/y')))).toBe(true);
    expect(offerAllowsFirstComponent(names, firstComponent(utf8('b.txt')))).toBe(true);
    expect(offerAllowsFirstComponent(names, firstComponent(utf8('c/a')))).toBe(false);
    expect(offerAllowsFirstComponent(names, firstComponent(utf8('ab')))).toBe(false);
    expect(offerAllowsFirstComponent([], utf8('a'))).toBe(false);
  });

  it('with 16 names the list may have been cut', () => {
    const names = Array.from({ length: 16 }, (_, i) => utf8(`n${i}`));
    expect(offerAllowsFirstComponent(names, utf8('anything'))).toBe(true);
  });
});

describe('escapeName', () => {
  it('escapes exactly as §8 says', () => {
    expect(escapeName(utf8('plain name.txt'))).toBe('plain name.txt');
    expect(escapeName(utf8('a\\b'))).toBe('a\\\\b');
    expect(escapeName(utf8('\x1b]0;owned\x07x'))).toBe('\\e]0;owned\\x07x');
    expect(escapeName(utf8('\x1b[2J\r\n\t'))).toBe('\\e[2J\\r\\n\\t');
    expect(escapeName(bytes(0x61, 0x9b, 0x62, 0xff))).toBe('a\\x9Bb\\xFF');
    expect(escapeName(utf8('a\u009bb'))).toBe('a\\u{009B}b');
    expect(escapeName(utf8('evil\u202etxt.exe'))).toBe('evil\\u{202E}txt.exe');
    expect(escapeName(utf8('a\u200bb\ufeff'))).toBe('a\\u{200B}b\\u{FEFF}');
    expect(escapeName(utf8('x\u2028\u3000'))).toBe('x\\u{2028}\\u{3000}');
    expect(escapeName(utf8('\x7f\x00'))).toBe('\\x7F\\x00');
    expect(escapeName(utf8('grüße/日本.txt'))).toBe('grüße/日本.txt');
    expect(escapeName(utf8('\u{E0041}'))).toBe('\\u{E0041}');
    expect(escapeName(utf8('a\u00a0b\u00adc\u200dd'))).toBe('a\\u{00A0}b\\u{00AD}c\\u{200D}d');
    expect(escapeName(utf8('\ufffe\u{10ffff}'))).toBe('\\u{FFFE}\\u{10FFFF}');
    expect(escapeName(utf8('a\u115fb\u034f'))).toBe('a\\u{115F}b\\u{034F}');
    expect(escapeName(utf8('a b:c'))).toBe('a b:c');
  });

  it('escapes invalid UTF-8 byte by byte', () => {
    expect(escapeName(bytes(0xc0, 0x80))).toBe('\\xC0\\x80');
    expect(escapeName(bytes(0xed, 0xa0, 0x80, 0x61))).toBe('\\xED\\xA0\\x80a');
    expect(escapeName(bytes(0xe2, 0x82, 0x61))).toBe('\\xE2\\x82a');
    expect(escapeName(bytes(0xf0, 0x9f, 0x98, 0x80))).toBe('😀');
    expect(escapeName(bytes(0xf4, 0x90, 0x80, 0x80))).toBe('\\xF4\\x90\\x80\\x80');
  });

  it('takes strings, lone surrogates included', () => {
    expect(escapeName('a\nb')).toBe('a\\nb');
    expect(escapeName('x\ud800y')).toBe('x\\u{D800}y');
    expect(escapeName('😀\u202e')).toBe('😀\\u{202E}');
  });

  it('cuts at 300 characters, never inside an escape', () => {
    const a = escapeName(utf8('a'.repeat(10_000)));
    expect([...a]).toHaveLength(MAX_SHOWN_CHARS + 1);
    expect(a.endsWith('a…')).toBe(true);
    const ff = escapeName(new Uint8Array(10_000).fill(0xff));
    expect(ff).toBe('\\xFF'.repeat(75) + '…');
    const mixed = escapeName('a'.repeat(298) + '\u202e');
    expect(mixed).toBe('a'.repeat(298) + '…');
    const emoji = escapeName('😀'.repeat(400));
    expect([...emoji]).toHaveLength(301);
    expect(escapeName('a'.repeat(300))).toBe('a'.repeat(300));
  });

  it('escapeText keeps newlines, tabs and backslashes', () => {
    expect(escapeText(utf8('line 1\n\tC:\\x\r\n\u202e'))).toBe('line 1\n\tC:\\x\\r\n\\u{202E}');
    expect(escapeText('x'.repeat(1000))).toHaveLength(1000);
  });
});
