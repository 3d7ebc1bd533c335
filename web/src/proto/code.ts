// Transfer codes such as `7-lemon-tiger` (PROTOCOL.md §2).
//
// The nameplate (`7`) is public: it names the relay room. The words are the
// secret and the CPace password; nothing derived from them is ever sent.

import { WORDLIST, WORDLIST_LEN } from './wordlist';

/** Fills `n` bytes with randomness; tests pass a deterministic stream. */
export type Random = (n: number) => Uint8Array;

/** The platform CSPRNG (`crypto.getRandomValues`, which takes at most 65,536 bytes a call). */
export const systemRandom: Random = (n) => {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
};

/** A parsed code. `prs` is the CPace password: the words joined by `-`, as ASCII. */
export interface Code {
  /** Canonical decimal, no leading zero, 1..=65535. Public. */
  nameplate: string;
  /** The normalised words joined by `-`. Secret. */
  prs: Uint8Array;
  /** The normalised words. Secret. */
  words: string[];
}

/** A code the user typed cannot be used. The message is for the user and never quotes the input. */
export class CodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodeError';
  }
}

export const MIN_NAMEPLATE = 1;
export const MAX_NAMEPLATE = 65535;
/** Generated nameplates are in 1..=999 so that codes stay short to read out. */
export const GENERATED_NAMEPLATE_MAX = 999;
export const DEFAULT_WORDS = 2;
export const MAX_WORDS = 8;
/** Longest input looked at, in UTF-8 bytes; longer pastes are refused before any other work. */
export const MAX_CODE_LEN = 256;
/** Longest word, in letters (list words have at most 10). */
export const MAX_WORD_LEN = 32;

const EXAMPLE = 'codes look like 7-lemon-tiger';

// Separators: '-', '_', '.', Unicode White_Space, and the Unicode dashes
// U+2010..U+2015 and U+2212 (chat apps turn hyphens into these). `\p{White_Space}`
// is used rather than `\s`, whose set differs (it has U+FEFF, lacks U+0085).
const SEPARATORS = /[-_.\u2010-\u2015\u2212\p{White_Space}]+/u;
const EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;

const utf8 = new TextEncoder();

/**
 * Parses what a user typed or pasted: trims, treats any run of separators as
 * one, and lowercases (ASCII letters only; anything else in a word is refused,
 * so no Unicode case mapping can turn a foreign letter into a-z). A prefix of
 * a list word is never expanded: that would change the secret silently.
 */
export function parseCode(input: string): Code {
  const bytes = utf8.encode(input).length;
  if (bytes > MAX_CODE_LEN) {
    throw new CodeError(`the code is ${bytes} bytes long, more than the limit of ${MAX_CODE_LEN}: ${EXAMPLE}`);
  }
  const s = input.replace(EDGE_SPACE, '');
  if (s === '') throw new CodeError(`the code is empty: ${EXAMPLE}`);
  const parts = s.split(SEPARATORS).filter((p) => p !== '');
  const first = parts.shift();
  if (first === undefined) throw new CodeError(`the code has only separators: ${EXAMPLE}`);
  const nameplate = parseNameplate(first);
  if (parts.length === 0) throw new CodeError(`missing the secret words after the number: ${EXAMPLE}`);
  if (parts.length > MAX_WORDS) {
    throw new CodeError(`the code has ${parts.length} words, more than the limit of ${MAX_WORDS}: ${EXAMPLE}`);
  }
  const words = parts.map((w, i) => checkWord(w, i + 1));
  return { nameplate, words, prs: utf8.encode(words.join('-')) };
}

function checkWord(word: string, position: number): string {
  const len = utf8.encode(word).length;
  if (len > MAX_WORD_LEN) {
    throw new CodeError(`word ${position} is too long (${len} characters); words have at most ${MAX_WORD_LEN} letters`);
  }
  if (/[^\x00-\x7f]/.test(word)) {
    throw new CodeError(
      `word ${position} contains a character that is not a plain letter a-z (type letters without accents): ${EXAMPLE}`,
    );
  }
  if (/[0-9]/.test(word)) {
    throw new CodeError(`word ${position} contains a digit; only the number at the start has digits: ${EXAMPLE}`);
  }
  if (!/^[A-Za-z]+$/.test(word)) {
    throw new CodeError(
      `word ${position} contains a character that is neither a letter a-z nor a separator ('-', ' ', '_', '.'): ${EXAMPLE}`,
    );
  }
  return word.toLowerCase(); // ASCII only at this point
}

/**
 * A nameplate as a user typed it (decimal digits, leading zeros allowed),
 * returned in canonical form. Throws CodeError.
 */
export function parseNameplate(input: string): string {
  const s = input.replace(EDGE_SPACE, '');
  const c = s.charAt(0);
  if (c === '' || /[A-Za-z]/.test(c)) throw new CodeError(`missing the number at the start: ${EXAMPLE}`);
  if (!/[0-9]/.test(c)) throw new CodeError(`the code must start with a number: ${EXAMPLE}`);
  if (!/^[0-9]+$/.test(s)) {
    throw new CodeError(`the number at the start must be followed by a separator ('-' or a space): ${EXAMPLE}`);
  }
  const digits = s.replace(/^0+/, '');
  const n = digits.length > 5 ? Infinity : Number(digits); // '' (all zeros) is 0
  if (n < MIN_NAMEPLATE || n > MAX_NAMEPLATE) {
    throw new CodeError(`the number at the start must be between ${MIN_NAMEPLATE} and ${MAX_NAMEPLATE}: ${EXAMPLE}`);
  }
  return String(n);
}

/**
 * Whether `s` is a nameplate in its canonical wire form (§9.1, §10): 1 to 5
 * ASCII digits, no leading zero, at most 65535. What comes from the network
 * must pass this; what users type goes through `parseNameplate`.
 */
export function isValidNameplate(s: string): boolean {
  return /^[1-9][0-9]{0,4}$/.test(s) && Number(s) <= MAX_NAMEPLATE;
}

/** A uniform integer in 0..n (n ≤ 2^32), by rejection sampling so that no value is favoured. */
export function uniform(n: number, random: Random = systemRandom): number {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`uniform: bad bound ${n}`);
  const limit = Math.floor(2 ** 32 / n) * n;
  for (;;) {
    const b = random(4);
    const x = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
    b.fill(0);
    if (x < limit) return x % n;
  }
}

/** A uniformly random nameplate in 1..=999, canonical decimal. */
export function randomNameplate(random: Random = systemRandom): string {
  return String(MIN_NAMEPLATE + uniform(GENERATED_NAMEPLATE_MAX, random));
}

/**
 * A fresh code `nameplate-word-word…`: `words` distinct words drawn uniformly
 * from the EFF short list (≈10.34 bits each). Distinct because a repeated word
 * looks like a typo and adds no guessing work. The result is the secret: show
 * it to its owner, never log it.
 */
export function generateCode(nameplate: string, words = DEFAULT_WORDS, random: Random = systemRandom): string {
  if (!isValidNameplate(nameplate)) throw new RangeError('generateCode: the nameplate must be canonical decimal 1..=65535');
  if (!Number.isInteger(words) || words < 1 || words > MAX_WORDS) {
    throw new RangeError(`generateCode: a code has 1 to ${MAX_WORDS} words`);
  }
  const picked: number[] = [];
  while (picked.length < words) {
    const i = uniform(WORDLIST_LEN, random);
    if (!picked.includes(i)) picked.push(i);
  }
  const out = [nameplate, ...picked.map((i) => WORDLIST[i]!)].join('-');
  picked.fill(0);
  return out;
}

/** Whether `word` (any ASCII case) is one of the list's words. */
export function isListWord(word: string): boolean {
  const w = word.toLowerCase();
  let lo = 0;
  let hi = WORDLIST.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = WORDLIST[mid]!;
    if (m === w) return true;
    if (m < w) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

/**
 * Estimated guessing entropy of a code's words, in bits: a list word counts
 * log2(1296); another word 1.5 bits a letter, at most one list word (people
 * pick common words, attackers try those first); a repeated word nothing.
 */
export function entropyBits(code: Code): number {
  const perWord = Math.log2(WORDLIST_LEN);
  const seen = new Set<string>();
  let total = 0;
  for (const w of code.words) {
    if (seen.has(w)) continue;
    seen.add(w);
    total += isListWord(w) ? perWord : Math.min(w.length * 1.5, perWord);
  }
  return total;
}

/** True when the code is weaker than a generated two-word one, so the page can warn. */
export function isWeakerThanGenerated(code: Code): boolean {
  return entropyBits(code) + 1e-9 < DEFAULT_WORDS * Math.log2(WORDLIST_LEN);
}
