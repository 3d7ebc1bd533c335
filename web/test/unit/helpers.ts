// What several unit-test files need: hex in and out, UTF-8, and the
// published vectors.

/** Bytes from hex; whitespace in `s` is ignored. */
export const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g) ?? [], (b) => parseInt(b, 16));
/** Lowercase hex of `b`. */
export const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Reads a file of /vectors. Node's fs is imported untyped: the project compiles against DOM types only. */
export async function readVector(name: string): Promise<unknown> {
  const fs = (await import(/* @vite-ignore */ `node:${'fs'}`)) as { readFileSync(p: URL, enc: 'utf8'): string };
  return JSON.parse(fs.readFileSync(new URL(`../../../vectors/${name}`, import.meta.url), 'utf8'));
}
