// Launching Chromium for the end-to-end runs and waiting on the page's states.
//
// One browser per run, with a fresh empty profile (Playwright makes one in a
// temporary folder and deletes it on close), headless, and no network of its
// own: it only ever loads the http://127.0.0.1 page it is given.

import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { readPage, recordStates, removePickers, stubPickers } from './page-scripts.mjs';

/** The web/ folder (for esbuild's module resolution). */
export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Debian's Chromium unless `$PQDROP_CHROMIUM` names another. */
export const DEFAULT_CHROMIUM = process.env.PQDROP_CHROMIUM || '/usr/bin/chromium';

/** Flags that keep Chromium quiet, headless and off the network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Starts Chromium. `marker` is added as a switch Chromium ignores, so a
 * caller that has to kill a browser left behind (its driver was killed) can
 * find exactly this one in /proc.
 * @param {{ executablePath?: string, marker?: string }} opts
 */
export async function launch(opts = {}) {
  const args = [...CHROMIUM_ARGS];
  if (opts.marker) args.push(`--pqdrop-e2e=${opts.marker}`);
  return chromium.launch({
    executablePath: opts.executablePath || DEFAULT_CHROMIUM,
    args,
    // The driver handles signals itself (it closes the browser, then reports).
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: 30_000,
  });
}

/**
 * A new context and page with the state recorder and the chosen save path.
 * `save`: 'fsa' (pickers return OPFS handles in `folder`), 'sw-download'
 * (no pickers at all), 'blob' (no pickers and service workers blocked), or
 * null (the page as it is).
 * @param {import('playwright-core').Browser} browser
 * @param {{ save?: 'fsa' | 'sw-download' | 'blob' | null, folder?: string, pickFolder?: string }} opts
 */
export async function openPage(browser, opts = {}) {
  const downloads = opts.save === 'sw-download' || opts.save === 'blob';
  // 'blob': no pickers and no service worker, so the page has only its in-memory fallback.
  const context = await browser.newContext({
    acceptDownloads: downloads,
    serviceWorkers: opts.save === 'blob' ? 'block' : 'allow',
    viewport: { width: 900, height: 900 },
  });
  return preparePage(context, opts);
}

/**
 * Like {@link openPage}, in a context the caller made (e.g. a persistent one,
 * whose origin-private file system is on disk rather than in memory).
 * @param {import('playwright-core').BrowserContext} context
 * @param {{ save?: 'fsa' | 'sw-download' | 'blob' | null, folder?: string, pickFolder?: string }} opts
 */
export async function preparePage(context, opts = {}) {
  await context.addInitScript(recordStates);
  if (opts.save === 'fsa') await context.addInitScript(stubPickers, { folder: opts.folder, pickFolder: opts.pickFolder });
  if (opts.save === 'sw-download' || opts.save === 'blob') await context.addInitScript(removePickers);
  const page = context.pages()[0] ?? (await context.newPage());
  const log = { console: [], pageErrors: [] };
  const watch = (p) => {
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') log.console.push(`${m.type()}: ${m.text()}`.slice(0, 2000));
    });
    p.on('pageerror', (e) => log.pageErrors.push(String(e && e.stack ? e.stack : e).slice(0, 2000)));
  };
  watch(page);
  context.on('page', (p) => {
    if (p !== page) watch(p);
  });
  return { context, page, log };
}

/**
 * Waits until `body[data-state]` is one of `states` (polled every 25 ms) and
 * returns it; throws a clear error naming what the page shows on timeout.
 * @param {import('playwright-core').Page} page
 * @param {string[]} states
 * @param {number} timeoutMs
 */
export async function waitForState(page, states, timeoutMs) {
  try {
    const h = await page.waitForFunction((want) => want.includes(document.body?.dataset.state ?? ''), states, {
      timeout: timeoutMs,
      polling: 25,
    });
    await h.dispose();
  } catch (e) {
    const now = await page.evaluate(readPage).catch(() => null);
    throw new Error(`the page did not reach ${states.join('/')} within ${timeoutMs} ms (it shows ${JSON.stringify(now)}): ${e.message.split('\n')[0]}`);
  }
  return page.evaluate(() => document.body.dataset.state ?? '');
}

/** The recorded state changes, first byte time and picker calls. */
export async function recorded(page) {
  return page.evaluate(() => {
    const r = window.__pqdropE2E;
    return r ? { states: r.states, firstByteAt: r.firstByteAt, pickerCalls: r.pickerCalls } : { states: [], firstByteAt: null, pickerCalls: [] };
  });
}

/**
 * Saves a screenshot `NAME.png` into `dir` (when one was given). Best effort:
 * a failing screenshot never fails the run, it is only noted.
 * @returns {Promise<string | null>} the file written
 */
export async function screenshot(page, dir, name, notes) {
  if (!dir) return null;
  try {
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
    return file;
  } catch (e) {
    notes.push(`screenshot ${name}: ${e.message.split('\n')[0]}`);
    return null;
  }
}

/**
 * An incremental SHA-256 (from the pinned @noble/hashes) as a script that
 * defines `window.__pqdropE2ESha256()`, for hashing OPFS files too large to
 * hold whole for WebCrypto. Built with the pinned esbuild, in memory.
 */
export async function sha256Script() {
  const { build } = await import('esbuild');
  const out = await build({
    stdin: {
      contents: "import { sha256 } from '@noble/hashes/sha2.js'; window.__pqdropE2ESha256 = () => sha256.create();",
      resolveDir: WEB_DIR,
      loader: 'js',
    },
    bundle: true,
    format: 'iife',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}
