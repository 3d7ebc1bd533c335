#!/usr/bin/env node
// Benchmark of the parts the browser page's receiving speed is made of, each
// alone, in the same headless Chromium as bench.mjs: reading a WebSocket (plain
// and WebSocketStream), reading a streamed HTTP response (fetch), WebCrypto
// AES-256-GCM opening 256 KiB records, and writing a file through the File
// System Access API (a writable of an origin-private file). Prints one JSON
// object with the median MB/s (decimal) of each over the runs.
//
//   node test/e2e/components.mjs [--runs 3] [--size-mib 512]
//
// The bytes come from a small server in this process on 127.0.0.1 (node:http,
// plus the few lines of RFC 6455 a server needs to send binary messages), so
// these figures are the browser's, not the relay's. Run by hand or by
// scripts/bench.sh; never in CI. Loopback only.

import { createHash, randomFillSync } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

import { CHROMIUM_ARGS, DEFAULT_CHROMIUM } from './lib/browser.mjs';

function parse(argv) {
  const o = { runs: 3, sizeMib: 512 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = Number(argv[++i]);
    if (k === '--runs') o.runs = v;
    else if (k === '--size-mib') o.sizeMib = v;
    else throw new Error(`unknown option ${k}`);
  }
  for (const k of ['runs', 'sizeMib']) if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`--${k} must be a positive integer`);
  return o;
}

const CHUNK = 256 * 1024;
const block = Buffer.alloc(4 << 20);
randomFillSync(block);

/** Writes `total` bytes to `out` in `size`-byte pieces, waiting on backpressure. */
async function pour(out, total, size, frame = (b) => b) {
  for (let sent = 0; sent < total; ) {
    const n = Math.min(size, total - sent);
    const off = sent % (block.length - size + 1);
    if (!out.write(frame(block.subarray(off, off + n)))) await new Promise((r) => out.once('drain', r));
    sent += n;
  }
}

/** An unmasked binary WebSocket frame (RFC 6455 §5.2) holding `payload`. */
function wsFrame(payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x82, n]) : n < 65536 ? Buffer.from([0x82, 126, n >> 8, n & 255]) : Buffer.alloc(10);
  if (n >= 65536) {
    head[0] = 0x82;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

function serve() {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>components</title>');
      return;
    }
    if (url.pathname === '/stream') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
      await pour(res, Number(url.searchParams.get('bytes')), CHUNK);
      res.end();
      return;
    }
    res.writeHead(404).end();
  });
  server.on('upgrade', async (req, socket) => {
    const key = req.headers['sec-websocket-key'];
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('error', () => {});
    socket.on('data', () => {});
    const bytes = Number(new URL(req.url, 'http://127.0.0.1').searchParams.get('bytes'));
    await pour(socket, bytes, CHUNK, wsFrame);
    socket.end(Buffer.from([0x88, 0]));
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

// --- the measurements, run in the page; each returns milliseconds ---

async function readFetch(bytes) {
  const t0 = performance.now();
  const r = await fetch(`/stream?bytes=${bytes}`);
  const reader = r.body.getReader();
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got += value.byteLength;
  }
  if (got !== bytes) throw new Error(`fetch: ${got} of ${bytes}`);
  return performance.now() - t0;
}

async function readWebSocket(bytes) {
  const t0 = performance.now();
  const ws = new WebSocket(`ws://${location.host}/ws?bytes=${bytes}`);
  ws.binaryType = 'arraybuffer';
  let got = 0;
  await new Promise((resolve, reject) => {
    ws.onmessage = (m) => (got += m.data.byteLength);
    ws.onclose = resolve;
    ws.onerror = reject;
  });
  if (got !== bytes) throw new Error(`WebSocket: ${got} of ${bytes}`);
  return performance.now() - t0;
}

async function readWebSocketStream(bytes) {
  if (typeof WebSocketStream === 'undefined') return null;
  const t0 = performance.now();
  const wss = new WebSocketStream(`ws://${location.host}/ws?bytes=${bytes}`);
  const { readable } = await wss.opened;
  const reader = readable.getReader();
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got += value.byteLength;
  }
  if (got !== bytes) throw new Error(`WebSocketStream: ${got} of ${bytes}`);
  return performance.now() - t0;
}

async function openAesGcm([bytes, inFlight]) {
  const key = await crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), 'AES-GCM', false, ['encrypt', 'decrypt']);
  const iv = new Uint8Array(12);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, new Uint8Array(256 * 1024)));
  const n = Math.ceil(bytes / (256 * 1024));
  const t0 = performance.now();
  const running = [];
  for (let i = 0; i < n; i++) {
    running.push(crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, sealed));
    if (running.length >= inFlight) await running.shift();
  }
  await Promise.all(running);
  return performance.now() - t0;
}

async function writeOpfs([bytes, size]) {
  const root = await navigator.storage.getDirectory();
  const name = `components-${size}.bin`;
  const file = await root.getFileHandle(name, { create: true });
  const buf = new Uint8Array(size);
  crypto.getRandomValues(buf.subarray(0, 65536));
  const t0 = performance.now();
  const w = await file.createWritable();
  for (let done = 0; done < bytes; done += size) await w.write(buf.subarray(0, Math.min(size, bytes - done)));
  await w.close();
  const ms = performance.now() - t0;
  await root.removeEntry(name);
  return ms;
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  return v.length === 0 ? null : v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

async function main() {
  const o = parse(process.argv.slice(2));
  const bytes = o.sizeMib * 1024 * 1024;
  const server = await serve();
  const work = await mkdtemp(join(tmpdir(), 'pqdrop-components-'));
  let context = null;
  const report = { event: 'components', sizeBytes: bytes, runs: o.runs, browserVersion: null, mbps: {} };
  try {
    // A persistent profile: its origin-private file system is on disk.
    context = await chromium.launchPersistentContext(join(work, 'profile'), { executablePath: DEFAULT_CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    report.browserVersion = context.browser()?.version() ?? null;
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const cases = [
      ['websocket', readWebSocket, bytes],
      ['websocketStream', readWebSocketStream, bytes],
      ['fetchStream', readFetch, bytes],
      ['aesGcmOpen256KiB', openAesGcm, [bytes, 1]],
      ['aesGcmOpen256KiB4InFlight', openAesGcm, [bytes, 4]],
      ['opfsWritable256KiB', writeOpfs, [bytes, 256 * 1024]],
      ['opfsWritable4MiB', writeOpfs, [bytes, 4 << 20]],
    ];
    for (const [name, fn, arg] of cases) {
      const ms = [];
      for (let i = 0; i < o.runs; i++) ms.push(await page.evaluate(fn, arg));
      const m = median(ms);
      report.mbps[name] = m === null ? null : Math.round((bytes / 1e6 / (m / 1e3)) * 10) / 10;
    }
  } catch (e) {
    report.error = e && e.stack ? e.stack : String(e);
  } finally {
    if (context) await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
    server.closeAllConnections?.();
    server.close();
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(report.error ? 1 : 0);
}

await main();
