#!/usr/bin/env node
// Benchmark: one large file from `pqdrop send` (CLI) to the browser page,
// saved through the File System Access path into the origin-private file
// system (on disk: a fresh persistent profile), or with --save sw-download
// through the service-worker download (into a temporary folder, removed
// after each run). Prints one JSON object.
//
//   node test/e2e/bench.mjs [--runs 3] [--size-mib 1024] [--pqdrop PATH]
//                           [--web-root DIR] [--no-verify] [--sample-ms 200]
//                           [--screenshots DIR] [--timeout-ms 900000]
//                           [--profile FILE] [--save fsa|sw-download]
//
// Per run: throughput (decimal MB/s, from Accept to done and from the first
// byte to done), time from opening the link to the offer and from Accept to
// the first byte, and the page's JS heap (CDP Runtime.getHeapUsage, sampled
// every --sample-ms during the transfer; the peak is reported). The summary
// holds the median of each over the runs. With verification on (default) the
// saved file's SHA-256 is computed in the page and compared. With --profile,
// the page's main thread is profiled (CDP Profiler) during the first run: the
// .cpuprofile goes to FILE (DevTools opens it) and the summary gets the
// functions with the most self time, and how long the thread sat idle.
// Each run also reports the CPU seconds (Linux /proc) of the sender, the
// relay and each kind of Chromium process over the scenario (with
// verification on, the page's hashing is in it too: use --no-verify).
//
// Run by hand or by scripts/bench.sh; never in CI. Loopback only. The pqdrop
// binary defaults to target/release/pqdrop (then target/debug/pqdrop).

import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

import { newFolderName, newResult, runScenario } from './driver.mjs';
import { CHROMIUM_ARGS, DEFAULT_CHROMIUM, WEB_DIR, preparePage } from './lib/browser.mjs';

function parse(argv) {
  const o = { runs: 3, sizeMib: 1024, pqdrop: null, webRoot: null, verify: true, sampleMs: 200, screenshots: null, timeoutMs: 900_000, profile: null, save: 'fsa' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--runs') o.runs = Number(v());
    else if (k === '--size-mib') o.sizeMib = Number(v());
    else if (k === '--pqdrop') o.pqdrop = v();
    else if (k === '--web-root') o.webRoot = v();
    else if (k === '--no-verify') o.verify = false;
    else if (k === '--sample-ms') o.sampleMs = Number(v());
    else if (k === '--screenshots') o.screenshots = v();
    else if (k === '--timeout-ms') o.timeoutMs = Number(v());
    else if (k === '--profile') o.profile = v();
    else if (k === '--save') o.save = v();
    else throw new Error(`unknown option ${k}`);
  }
  if (o.save !== 'fsa' && o.save !== 'sw-download') throw new Error('--save must be fsa or sw-download');
  for (const k of ['runs', 'sizeMib', 'sampleMs', 'timeoutMs']) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`--${k} must be a positive integer`);
  }
  return o;
}

function findPqdrop(given) {
  const candidates = [given, process.env.PQDROP_BIN, join(WEB_DIR, '..', 'target', 'release', 'pqdrop'), join(WEB_DIR, '..', 'target', 'debug', 'pqdrop')];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error('no pqdrop binary: build one (cargo build --release -p pqdrop) or pass --pqdrop PATH');
  return resolve(found);
}

/** The SHA-256 (hex) of a file. */
async function sha256File(path) {
  const f = await open(path, 'r');
  const h = createHash('sha256');
  try {
    for await (const chunk of f.createReadStream()) h.update(chunk);
  } finally {
    await f.close().catch(() => {});
  }
  return h.digest('hex');
}

/** Writes `bytes` random bytes to `path`, returning their SHA-256 (hex). */
async function writeRandomFile(path, bytes) {
  const f = await open(path, 'w');
  const h = createHash('sha256');
  const block = Buffer.alloc(16 << 20);
  try {
    for (let left = bytes; left > 0; ) {
      const n = Math.min(left, block.length);
      randomFillSync(block, 0, n);
      h.update(block.subarray(0, n));
      await f.write(block, 0, n);
      left -= n;
    }
  } finally {
    await f.close();
  }
  return h.digest('hex');
}

/** A pqdrop child with an isolated home; its output is collected. */
function pqdrop(bin, args, home) {
  const child = spawn(bin, args, {
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, 'config'), PQDROP_RELAY: '', PQDROP_CODE: '', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, out, exited };
}

/** Resolves with the first match of `re` in `get()`, polling; rejects on timeout or exit. */
async function waitFor(get, re, ms, what, exited) {
  const until = Date.now() + ms;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    const m = get().match(re);
    if (m) return m;
    if (gone) throw new Error(`${what}: the process exited first`);
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** utime + stime (seconds) of every process, by pid, with its parent and command line. */
function processTimes() {
  const tick = 100; // USER_HZ on Linux
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Chromium rewrites its command line into one space-separated string.
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split(/[\0 ]/);
      out.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / tick, cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds between two `processTimes()` of the sender, the relay and Chromium's processes (by --type). */
function cpuUse(before, after, pids, profileDir) {
  const groups = {};
  const add = (k, v) => (groups[k] = Math.round(((groups[k] ?? 0) + v) * 100) / 100);
  const browser = [...after.entries()].find(([, p]) => p.cmd.some((a) => a === `--user-data-dir=${profileDir}`) && !p.cmd.some((a) => a.startsWith('--type=')));
  const tree = new Set(browser ? [browser[0]] : []);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of after) if (!tree.has(pid) && tree.has(p.ppid)) tree.add(pid), (grew = true);
  }
  for (const [pid, p] of after) {
    const used = p.cpu - (before.get(pid)?.cpu ?? 0);
    if (pid === pids.sender) continue; // counted from its last sample
    if (pid === pids.sender) add('pqdrop send', used);
    else if (pid === pids.relay) add('pqdrop relay', used);
    else if (tree.has(pid)) {
      const type = p.cmd.find((a) => a.startsWith('--type='))?.slice(7) ?? 'browser';
      const sub = p.cmd.find((a) => a.startsWith('--utility-sub-type='))?.slice(19);
      add(`chromium ${sub ? sub.split('.').pop() : type}`, used);
    }
  }
  if (pids.senderCpu !== undefined) add('pqdrop send', pids.senderCpu - (before.get(pids.sender)?.cpu ?? 0));
  return groups;
}

/** utime + stime (seconds) of one process, or undefined once it is gone. */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Self time per function (top 15) and the idle share of a CDP CPU profile. */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const n = byId.get(profile.samples[i]);
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.split('/').pop()}:${f.lineNumber + 1}` : ''}`.trim();
    const us = dt[i + 1] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
  return { totalMs: Math.round(total / 1000), top: top.map(([k, us]) => ({ fn: k, ms: Math.round(us / 1000), share: Math.round((us / total) * 1000) / 10 })) };
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

async function main() {
  const o = parse(process.argv.slice(2));
  const bin = findPqdrop(o.pqdrop);
  const bytes = o.sizeMib * 1024 * 1024;
  const work = await mkdtemp(join(tmpdir(), 'pqdrop-bench-'));
  const children = [];
  let context = null;
  const report = { event: 'bench', pqdrop: bin, sizeBytes: bytes, runs: [], median: null, browserVersion: null };
  try {
    await mkdir(join(work, 'home', 'config'), { recursive: true });
    const file = join(work, 'bench.bin');
    const want = await writeRandomFile(file, bytes);

    const relayArgs = ['relay', '--listen', '127.0.0.1:0', '--web', '127.0.0.1:0'];
    if (o.webRoot) relayArgs.push('--web-root', resolve(o.webRoot));
    const relay = pqdrop(bin, relayArgs, join(work, 'home'));
    children.push(relay.child);
    const addr = (await waitFor(() => relay.out.stderr, /relay listening on (\S+)/, 30_000, 'the relay', relay.exited))[1];
    await waitFor(() => relay.out.stderr, /reached at (http:\/\/\S+)/, 30_000, 'the relay page', relay.exited);

    // A persistent profile in a fresh folder: OPFS on disk, as for a user.
    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: DEFAULT_CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 900, height: 900 },
      handleSIGINT: true,
      handleSIGTERM: true,
    });
    report.browserVersion = context.browser()?.version() ?? null;
    // The init scripts are the context's, added once; every run uses a new
    // page and the same OPFS folder, removed after each run.
    const folder = newFolderName();
    const base = { ...(await preparePage(context, { save: o.save, folder })), folder };

    for (let run = 0; run < o.runs; run++) {
      const send = pqdrop(bin, ['send', '--relay', addr, '--web', '--json', file], join(work, 'home'));
      children.push(send.child);
      const url = JSON.parse((await waitFor(() => send.out.stdout, /^\{.*"event":"code".*\}$/m, 30_000, 'the sender', send.exited))[0]).url;
      if (typeof url !== 'string') throw new Error('the sender printed no link (is the relay serving the page?)');

      const opened = run === 0 ? base : { ...base, page: await context.newPage() };
      base.log.console.length = 0;
      base.log.pageErrors.length = 0;
      const cdp = await context.newCDPSession(opened.page);
      const heap = [];
      let sampling = true;
      // The sender exits at the end: its CPU time is what was last seen.
      let senderCpu;
      const sampler = (async () => {
        while (sampling) {
          try {
            senderCpu = cpuOf(send.child.pid) ?? senderCpu;
            const u = await cdp.send('Runtime.getHeapUsage');
            heap.push(u.usedSize);
          } catch {
            // the page is navigating
          }
          await new Promise((r) => setTimeout(r, o.sampleMs));
        }
      })();
      const profiling = o.profile !== null && run === 0;
      if (profiling) {
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
        await cdp.send('Profiler.start');
      }
      const res = newResult('receive');
      const cpuBefore = processTimes();
      const screenshots = o.screenshots ? join(resolve(o.screenshots), `run-${run + 1}`) : null;
      try {
        const downloadDir = o.save === 'sw-download' ? await mkdtemp(join(work, 'dl-')) : undefined;
        await runScenario(opened, 'receive', { url, save: o.save, downloadDir, expectOffer: [], choice: 'accept', timeoutMs: o.timeoutMs, screenshots, hash: o.verify, cleanOpfs: true }, res);
        if (downloadDir !== undefined) {
          const d = res.downloads?.[0];
          res.saved = d?.size != null ? { files: { [d.suggested]: { size: d.size, sha256: o.verify ? await sha256File(d.path) : null } } } : null;
          await rm(downloadDir, { recursive: true, force: true });
        }
      } finally {
        sampling = false;
        res.cpuSeconds = cpuUse(cpuBefore, processTimes(), { sender: send.child.pid, senderCpu, relay: relay.child.pid }, join(work, 'profile'));
        await sampler;
        if (profiling) {
          const { profile } = await cdp.send('Profiler.stop');
          await writeFile(resolve(o.profile), JSON.stringify(profile));
          report.profile = summarize(profile);
        }
        await cdp.detach().catch(() => {});
      }
      const sent = await Promise.race([send.exited, new Promise((r) => setTimeout(() => r(null), 60_000))]);
      const t = res.timings;
      const mbps = (ms) => (typeof ms === 'number' && ms > 0 ? bytes / 1e6 / (ms / 1e3) : null);
      const savedFile = res.saved?.files ? Object.values(res.saved.files)[0] : null;
      report.runs.push({
        ok: res.state === 'done' && sent?.code === 0,
        state: res.state,
        error: res.error,
        senderExit: sent ? sent.code : 'still running after 60 s',
        mbpsAcceptToDone: mbps(t.acceptToDoneMs),
        mbpsFirstByteToDone: mbps(t.doneAt !== null && t.firstByteAt !== null ? t.doneAt - t.firstByteAt : null),
        openToOfferMs: t.openToOfferMs,
        acceptToFirstByteMs: t.acceptToFirstByteMs,
        acceptToDoneMs: t.acceptToDoneMs,
        heapPeakBytes: heap.length > 0 ? Math.max(...heap) : null,
        heapSamples: heap.length,
        savedBytes: savedFile ? savedFile.size : null,
        verified: o.verify ? savedFile?.sha256 === want : null,
        pageErrors: res.pageErrors,
        cpuSeconds: res.cpuSeconds,
      });
      await opened.page.close();
      if (sent === null) send.child.kill('SIGKILL');
    }
    const col = (k) => median(report.runs.map((r) => r[k]));
    report.median = {
      mbpsAcceptToDone: col('mbpsAcceptToDone'),
      mbpsFirstByteToDone: col('mbpsFirstByteToDone'),
      openToOfferMs: col('openToOfferMs'),
      acceptToFirstByteMs: col('acceptToFirstByteMs'),
      heapPeakBytes: col('heapPeakBytes'),
    };
  } catch (e) {
    report.error = e && e.stack ? e.stack : String(e);
  } finally {
    if (context) await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(report.error || report.runs.some((r) => !r.ok || r.verified === false) ? 1 : 0);
}

await main();
