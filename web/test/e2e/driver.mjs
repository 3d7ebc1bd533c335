#!/usr/bin/env node
// Drives the browser page through one scenario in headless Chromium and
// prints JSON lines on stdout: for `send`, first {"event":"code",...} as soon
// as the page shows its code (so the caller can start the receiver), and
// always last one {"event":"result",...}. Diagnostics go to stderr.
//
//   node test/e2e/driver.mjs probe        --url URL
//   node test/e2e/driver.mjs receive      --url URL#CODE --save fsa|sw-download|blob [--expect-offer TEXT]…
//   node test/e2e/driver.mjs receive-code --url URL --code CODE --save fsa|sw-download|blob
//   node test/e2e/driver.mjs send         --url URL (--file PATH… | --folder DIR | --folder-picker DIR)
//
// Options (all scenarios):
//   --screenshots DIR   PNGs of the main states (offer, progress, done, error, …)
//   --timeout-ms N      bound on the whole run (default 120000); every wait is
//                       bounded by what is left of it
//   --choice accept|decline   what to answer an offer (default accept)
//   --download-dir DIR  sw-download, blob: where downloads are saved (default: a temp folder)
//   --marker ID         a switch added to Chromium's command line, to find it in /proc
//   --chromium PATH     the browser (default $PQDROP_CHROMIUM or /usr/bin/chromium)
//
// Exit status: 0 when the scenario ran to a final page state (done or error:
// the result says which), 2 on a driver failure (result.driverError), 3 on
// the overall timeout, 64 on bad arguments.

import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { DEFAULT_CHROMIUM, launch, openPage, recorded, screenshot, sha256Script, waitForState } from './lib/browser.mjs';
import { listOpfs, readPage, removeOpfs, writeOpfsTree } from './lib/page-scripts.mjs';

/** Files up to this size are hashed whole by WebCrypto; larger ones incrementally. */
export const WHOLE_HASH_LIMIT = 256 << 20;

const FINAL = ['done', 'error'];

/** Prints one JSON line on stdout. */
export function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/**
 * Parses `argv` (after the scenario name) into options; repeated `--file`
 * and `--expect-offer` accumulate.
 */
export function parseArgs(argv) {
  const o = { files: [], expectOffer: [], choice: 'accept', timeoutMs: 120_000, save: null };
  const multi = { '--file': 'files', '--expect-offer': 'expectOffer' };
  const single = {
    '--url': 'url',
    '--code': 'code',
    '--save': 'save',
    '--folder': 'folder',
    '--folder-picker': 'folderPicker',
    '--screenshots': 'screenshots',
    '--timeout-ms': 'timeoutMs',
    '--choice': 'choice',
    '--download-dir': 'downloadDir',
    '--marker': 'marker',
    '--chromium': 'chromium',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${k} needs a value`);
    if (k in multi) o[multi[k]].push(v);
    else if (k in single) o[single[k]] = v;
    else throw new UsageError(`unknown option ${k}`);
  }
  o.timeoutMs = Number(o.timeoutMs);
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) throw new UsageError('--timeout-ms must be a positive number');
  if (!o.url) throw new UsageError('--url is required');
  if (o.save !== null && o.save !== 'fsa' && o.save !== 'sw-download' && o.save !== 'blob') throw new UsageError('--save must be fsa, sw-download or blob');
  if (o.choice !== 'accept' && o.choice !== 'decline') throw new UsageError('--choice must be accept or decline');
  // Sending a folder through the (stubbed) directory picker: its pickers are the File System Access stubs.
  if (o.folderPicker) o.save = 'fsa';
  return o;
}

class UsageError extends Error {}

/** A deadline shared by every wait of one run. */
export class Deadline {
  constructor(ms) {
    this.end = Date.now() + ms;
  }
  /** What is left, at least 1 ms (Playwright treats 0 as "no limit"). */
  left() {
    return Math.max(1, this.end - Date.now());
  }
}

/** Races `p` against the deadline, naming `what` on timeout. */
async function bounded(p, deadline, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within the run's time limit`)), deadline.left());
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The run of one scenario in a page made by `openPage`/`preparePage`
 * (`opened` = their result plus the pickers' OPFS `folder`). Fills `res` as
 * it goes, so a failure or timeout still reports everything seen up to then.
 */
export async function runScenario(opened, scenario, o, res) {
  const deadline = new Deadline(o.timeoutMs);
  const { context, page, log, folder } = opened;
  res.console = log.console;
  res.pageErrors = log.pageErrors;
  const shots = (name) => screenshot(page, o.screenshots, name, res.notes);
  const downloads = [];
  if (o.save === 'sw-download' || o.save === 'blob') {
    const onDl = (d) => downloads.push(d);
    page.on('download', onDl);
    context.on('page', (p) => p.on('download', onDl));
  }
  res.timings.openAt = Date.now();
  await page.goto(o.url, { timeout: deadline.left(), waitUntil: 'load' });
  res.timings.loadedMs = Date.now() - res.timings.openAt;

  if (scenario === 'probe') {
    Object.assign(res, await page.evaluate(readPage));
    res.probe = await page.evaluate(() => ({
      secureContext: isSecureContext,
      subtle: typeof crypto.subtle?.digest === 'function',
      serviceWorker: 'serviceWorker' in navigator,
      opfs: typeof navigator.storage?.getDirectory === 'function',
      title: document.title,
      fragment: location.hash,
    }));
    await shots('home');
    return;
  }

  if (scenario === 'send') {
    await runSend(page, o, res, deadline, shots);
  } else {
    if (scenario === 'receive-code') {
      if (!o.code) throw new UsageError('receive-code needs --code');
      await waitForState(page, ['home'], deadline.left());
      await page.fill('#code-input', o.code, { timeout: deadline.left() });
      await page.click('#receive-button', { timeout: deadline.left() });
    }
    await runReceive(page, o, res, deadline, shots);
  }

  const rec = await recorded(page);
  Object.assign(res, await page.evaluate(readPage));
  res.ok = res.state === 'done';
  res.states = rec.states;
  res.pickerCalls = rec.pickerCalls;
  timings(res, rec);

  if (o.save === 'fsa') {
    // For files over WHOLE_HASH_LIMIT (the benchmark's): an incremental hash.
    if (o.hash !== false) await page.evaluate(await sha256Script());
    const hash = o.hash !== false;
    res.saved = await bounded(page.evaluate(listOpfs, { folder, hash, wholeLimit: WHOLE_HASH_LIMIT }), deadline, 'listing OPFS');
    res.saved.folder = folder;
    if (o.cleanOpfs) await page.evaluate(removeOpfs, { folder });
  }
  if (o.save === 'sw-download' || o.save === 'blob') res.downloads = await saveDownloads(downloads, o, res, deadline);
}

/** The receiving part shared by `receive` and `receive-code`. */
async function runReceive(page, o, res, deadline, shots) {
  const first = await waitForState(page, ['offer', ...FINAL], deadline.left());
  if (first === 'offer') {
    res.timings.offerSeenAt = Date.now();
    const shown = await page.evaluate(readPage);
    res.offer = { summary: shown.offerSummary, names: shown.offerNames, bytes: null, check: null };
    const text = `${shown.offerSummary ?? ''}\n${shown.offerNames.join('\n')}`;
    if (o.expectOffer.length > 0) {
      const missing = o.expectOffer.filter((want) => !text.includes(want));
      res.offer.check = { ok: missing.length === 0, missing };
    }
    await shots('offer');
    res.timings.choiceAt = Date.now();
    await page.click(o.choice === 'accept' ? '#accept-button' : '#decline-button', { timeout: deadline.left() });
    const next = await waitForState(page, ['progress', ...FINAL], deadline.left());
    if (next === 'progress') {
      const bar = await page.evaluate(() => {
        const el = document.getElementById('progress');
        return el instanceof HTMLProgressElement ? el.max : null;
      });
      res.offer.bytes = bar;
      await shots('progress');
    }
  }
  await waitForState(page, FINAL, deadline.left());
  const end = await page.evaluate(() => document.body.dataset.state);
  await shots(end === 'done' ? 'done' : 'error');
}

/** The sending scenario: pick, start, print the code, wait for the end. */
async function runSend(page, o, res, deadline, shots) {
  await waitForState(page, ['home'], deadline.left());
  if (o.folderPicker) {
    // The tree goes into OPFS, where the stubbed picker finds it; the label's
    // click (a user gesture) opens the picker as for a person.
    await bounded(page.evaluate(writeOpfsTree, { folder: o.opfsFolder, entries: await treeEntries(resolve(o.folderPicker)) }), deadline, 'copying the tree into OPFS');
    await page.click('label[for="send-folder"]', { timeout: deadline.left() });
    await page.waitForFunction(() => !document.getElementById('send-button')?.disabled || document.body.dataset.state !== 'home', null, {
      timeout: deadline.left(),
      polling: 25,
    });
  } else if (o.folder) await page.setInputFiles('#send-folder', resolve(o.folder), { timeout: deadline.left() });
  else if (o.files.length > 0) await page.setInputFiles('#send-files', o.files.map((f) => resolve(f)), { timeout: deadline.left() });
  else throw new UsageError('send needs --file or --folder');
  await shots('picked');
  // The page may start at once after picking; #send-button must then stay
  // harmless, so it is clicked in both cases (and a second time).
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === 'home') await page.click('#send-button', { timeout: deadline.left() });
  res.sendClicks = (state === 'home' ? 1 : 0) + (await page.evaluate(() => {
    const b = document.getElementById('send-button');
    if (!b) return 0;
    b.click();
    return 1;
  }));
  const s = await waitForState(page, ['waiting', ...FINAL], deadline.left());
  if (s === 'waiting') {
    await page.waitForFunction(() => (document.getElementById('send-code')?.textContent ?? '').trim() !== '', null, {
      timeout: deadline.left(),
      polling: 25,
    });
    const shown = await page.evaluate(readPage);
    res.timings.codeAt = Date.now();
    emit({ event: 'code', code: shown.sendCode, command: shown.sendCommand });
    await shots('waiting');
    const next = await waitForState(page, ['progress', ...FINAL], deadline.left());
    if (next === 'progress') await shots('progress');
  }
  await waitForState(page, FINAL, deadline.left());
  const end = await page.evaluate(() => document.body.dataset.state);
  await shots(end === 'done' ? 'done' : 'error');
}

/** A small tree on disk as `writeOpfsTree` entries (parents first, files base64), under its own name. */
async function treeEntries(dir) {
  const out = [{ path: basename(dir), kind: 'folder' }];
  const walk = async (abs, rel) => {
    for (const d of (await readdir(abs, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = `${rel}/${d.name}`;
      if (d.isDirectory()) {
        out.push({ path: p, kind: 'folder' });
        await walk(join(abs, d.name), p);
      } else if (d.isFile()) out.push({ path: p, kind: 'file', b64: (await readFile(join(abs, d.name))).toString('base64') });
    }
  };
  await walk(dir, basename(dir));
  return out;
}

/** Saves every download into the download folder; waits for each to finish. */
async function saveDownloads(downloads, o, res, deadline) {
  // A download may start a moment after the page says done; give it 5 s.
  if (res.state === 'done' && downloads.length === 0) {
    const until = Date.now() + Math.min(5_000, deadline.left());
    while (downloads.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }
  const dir = o.downloadDir ? resolve(o.downloadDir) : await mkdtemp(join(tmpdir(), 'pqdrop-e2e-dl-'));
  const out = [];
  for (const d of downloads) {
    const suggested = d.suggestedFilename();
    const path = join(dir, suggested);
    const entry = { suggested, url: d.url().slice(0, 200), path, size: null, failure: null };
    try {
      await bounded(d.saveAs(path), deadline, `saving the download ${suggested}`);
      entry.failure = await d.failure();
      entry.size = (await stat(path)).size;
    } catch (e) {
      entry.failure = e.message.split('\n')[0];
    }
    out.push(entry);
  }
  return out;
}

/** Derived times in ms (null when a moment was not seen). */
function timings(res, rec) {
  const t = res.timings;
  const at = (state) => rec.states.find((s) => s.state === state)?.t ?? null;
  const diff = (a, b) => (a !== null && b !== null && a !== undefined && b !== undefined ? b - a : null);
  t.offerAt = at('offer');
  t.progressAt = at('progress');
  t.doneAt = at('done');
  t.errorAt = at('error');
  t.firstByteAt = rec.firstByteAt;
  t.openToOfferMs = diff(t.openAt, t.offerAt);
  t.acceptToProgressMs = diff(t.choiceAt, t.progressAt);
  t.acceptToFirstByteMs = diff(t.choiceAt, t.firstByteAt);
  t.acceptToDoneMs = diff(t.choiceAt, t.doneAt);
  t.openToEndMs = diff(t.openAt, t.doneAt ?? t.errorAt);
  // The sending page: from opening to its code, and from the code to the end.
  t.openToCodeMs = diff(t.openAt, t.codeAt);
  t.codeToFirstByteMs = diff(t.codeAt, t.firstByteAt);
  t.codeToDoneMs = diff(t.codeAt, t.doneAt);
}

/** A fresh OPFS folder name for the pickers of one run. */
export function newFolderName() {
  return `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A fresh result record. */
export function newResult(scenario) {
  return {
    event: 'result',
    scenario,
    ok: false,
    state: null,
    error: null,
    errorMessage: null,
    savePath: null,
    downstream: null,
    offer: null,
    doneMessage: null,
    timings: {},
    states: [],
    pickerCalls: [],
    saved: null,
    downloads: null,
    console: [],
    pageErrors: [],
    notes: [],
    driverError: null,
  };
}

async function main() {
  const [scenario, ...rest] = process.argv.slice(2);
  const scenarios = ['probe', 'receive', 'receive-code', 'send'];
  let o;
  try {
    if (!scenarios.includes(scenario)) throw new UsageError(`the scenario must be one of ${scenarios.join(', ')}`);
    o = parseArgs(rest);
  } catch (e) {
    process.stderr.write(`driver: ${e.message}\n`);
    process.exit(64);
  }
  const res = newResult(scenario);
  let browser = null;
  let reported = false;
  const finish = async (code) => {
    if (reported) return;
    reported = true;
    if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5_000))]);
    emit(res);
    process.exit(code);
  };
  const overall = setTimeout(() => {
    res.driverError = `the run did not finish within ${o.timeoutMs} ms`;
    if (browser) void recordedBestEffort(browser, res).finally(() => finish(3));
    else void finish(3);
  }, o.timeoutMs + 5_000);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, () => {
      res.driverError = res.driverError ?? `stopped by ${sig}`;
      void finish(2);
    });
  }
  try {
    browser = await launch({ executablePath: o.chromium || DEFAULT_CHROMIUM, marker: o.marker });
    res.browserVersion = browser.version();
    const folder = newFolderName();
    o.opfsFolder = folder;
    const pickFolder = o.folderPicker ? basename(resolve(o.folderPicker)) : undefined;
    await runScenario({ ...(await openPage(browser, { save: o.save, folder, pickFolder })), folder }, scenario, o, res);
    clearTimeout(overall);
    await finish(0);
  } catch (e) {
    clearTimeout(overall);
    res.driverError = res.driverError ?? (e && e.stack ? e.stack : String(e));
    await recordedBestEffort(browser, res);
    await finish(e instanceof UsageError ? 64 : 2);
  }
}

/** After a failure: what the page shows, when it still answers within 2 s. */
async function recordedBestEffort(browser, res) {
  try {
    const page = browser?.contexts()[0]?.pages()[0];
    if (!page) return;
    const now = await Promise.race([page.evaluate(readPage), new Promise((_, j) => setTimeout(() => j(new Error('no answer')), 2_000))]);
    Object.assign(res, now);
    const rec = await Promise.race([recorded(page), new Promise((_, j) => setTimeout(() => j(new Error('no answer')), 2_000))]);
    res.states = rec.states;
    res.pickerCalls = rec.pickerCalls;
  } catch {
    // the page is gone; the error says why
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
