// Functions that run inside the page (passed to `page.addInitScript` or
// `page.evaluate`), so they must be self-contained: no closures over this
// module, only their argument.
//
// Everything the driver keeps in the page lives under `window.__pqdropE2E`,
// a name the page itself never uses.

/**
 * Init script: records every change of `body[data-state]` / `body[data-error]`
 * and the first moment `#progress` shows a byte, with `Date.now()` times (the
 * same clock as the driver's), so that states the page passes through faster
 * than a poll (a small file's `progress`) are still seen and timed.
 */
export function recordStates() {
  const rec = { states: [], firstByteAt: null, pickerCalls: [] };
  Object.defineProperty(window, '__pqdropE2E', { value: rec, configurable: false, enumerable: false });
  const seen = () => {
    const b = document.body;
    if (!b) return;
    const state = b.dataset.state ?? null;
    const error = b.dataset.error ?? null;
    const last = rec.states[rec.states.length - 1];
    if (!last || last.state !== state || last.error !== error) rec.states.push({ state, error, t: Date.now() });
  };
  const progressSeen = (el) => {
    if (rec.firstByteAt === null && el instanceof HTMLProgressElement && Number(el.getAttribute('value')) > 0) {
      rec.firstByteAt = Date.now();
    }
  };
  new MutationObserver((muts) => {
    for (const m of muts) {
      if (m.type === 'attributes' && m.attributeName === 'value') progressSeen(m.target);
      else seen();
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-error', 'value'] });
  document.addEventListener('DOMContentLoaded', seen);
}

/**
 * Init script for the File System Access path: the pickers return handles in
 * the origin-private file system, in the folder `arg.folder` (created on
 * first use), instead of asking a person. Like Chrome's, they refuse to run
 * without a user gesture, so a page that calls them too late fails here as it
 * would for a user.
 */
export function stubPickers(arg) {
  const rec = window.__pqdropE2E;
  const folder = async () => (await navigator.storage.getDirectory()).getDirectoryHandle(arg.folder, { create: true });
  const gesture = (fn, options) => {
    const active = navigator.userActivation ? navigator.userActivation.isActive : true;
    let opts = null;
    try {
      opts = options === undefined ? null : JSON.parse(JSON.stringify(options));
    } catch {
      opts = String(options);
    }
    rec.pickerCalls.push({ fn, options: opts, userActivation: active, t: Date.now() });
    if (!active) throw new DOMException('Must be handling a user gesture to show a file picker.', 'SecurityError');
  };
  const define = (name, impl) =>
    Object.defineProperty(window, name, { value: impl, configurable: true, writable: true, enumerable: true });
  define('showDirectoryPicker', async function showDirectoryPicker(options) {
    gesture('showDirectoryPicker', options);
    // A sending page picks the folder `arg.pickFolder` inside it (see writeOpfsTree).
    return arg.pickFolder ? (await folder()).getDirectoryHandle(arg.pickFolder) : folder();
  });
  define('showSaveFilePicker', async function showSaveFilePicker(options) {
    gesture('showSaveFilePicker', options);
    const name = options && typeof options.suggestedName === 'string' && options.suggestedName !== '' ? options.suggestedName : 'download';
    const dir = await folder();
    try {
      return await dir.getFileHandle(name, { create: true });
    } catch (e) {
      // A name the file system refuses ('..', one with '/'): Chrome's dialog
      // would offer a cleaned-up one; this one falls back to a fixed name.
      if (e instanceof TypeError) return dir.getFileHandle('download', { create: true });
      throw e;
    }
  });
}

/**
 * Writes `arg.entries` (`{ path, kind: 'file' | 'folder', b64? }`, parents
 * first) under the OPFS folder `arg.folder`: a tree for the stubbed
 * directory picker to hand a sending page.
 */
export async function writeOpfsTree(arg) {
  const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(arg.folder, { create: true });
  const dirOf = async (parts) => {
    let d = root;
    for (const p of parts) d = await d.getDirectoryHandle(p, { create: true });
    return d;
  };
  for (const e of arg.entries) {
    const parts = e.path.split('/');
    if (e.kind === 'folder') {
      await dirOf(parts);
      continue;
    }
    const dir = await dirOf(parts.slice(0, -1));
    const w = await (await dir.getFileHandle(parts[parts.length - 1], { create: true })).createWritable();
    await w.write(Uint8Array.from(atob(e.b64), (c) => c.charCodeAt(0)));
    await w.close();
  }
}

/** Init script for the download path: the page must not see any picker. */
export function removePickers() {
  for (const name of ['showSaveFilePicker', 'showDirectoryPicker', 'showOpenFilePicker']) {
    try {
      delete Window.prototype[name];
    } catch {
      // not configurable: shadowed below
    }
    try {
      delete window[name];
    } catch {
      // shadowed below
    }
    if (name in window) Object.defineProperty(window, name, { value: undefined, configurable: true });
  }
}

/**
 * Lists the OPFS folder `arg.folder`: every folder and file below it
 * ('/'-joined relative paths, hidden names included), with each file's size
 * and, when `arg.hash`, its SHA-256 (lowercase hex).
 *
 * Files up to `arg.wholeLimit` bytes are read in 8 MiB slices into one buffer
 * and hashed by WebCrypto (which has no incremental API); larger ones go
 * through `window.__pqdropE2ESha256` (an incremental SHA-256 the driver
 * injects), or get `sha256: null` when it is absent.
 */
export async function listOpfs(arg) {
  const root = await navigator.storage.getDirectory();
  let top;
  try {
    top = await root.getDirectoryHandle(arg.folder);
  } catch {
    return { exists: false, dirs: [], files: {} };
  }
  const SLICE = 8 << 20;
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  const hashFile = async (file) => {
    if (file.size <= arg.wholeLimit) {
      const all = new Uint8Array(file.size);
      for (let off = 0; off < file.size; off += SLICE) {
        all.set(new Uint8Array(await file.slice(off, off + SLICE).arrayBuffer()), off);
      }
      return hex(await crypto.subtle.digest('SHA-256', all));
    }
    const make = window.__pqdropE2ESha256;
    if (typeof make !== 'function') return null;
    const h = make();
    for (let off = 0; off < file.size; off += SLICE) h.update(new Uint8Array(await file.slice(off, off + SLICE).arrayBuffer()));
    return hex(h.digest());
  };
  const dirs = [];
  const files = {};
  const walk = async (dir, prefix) => {
    const kids = [];
    for await (const [name, handle] of dir.entries()) kids.push([name, handle]);
    kids.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [name, handle] of kids) {
      const path = prefix === '' ? name : `${prefix}/${name}`;
      if (handle.kind === 'directory') {
        dirs.push(path);
        await walk(handle, path);
      } else {
        const file = await handle.getFile();
        files[path] = { size: file.size, sha256: arg.hash ? await hashFile(file) : null };
      }
    }
  };
  await walk(top, '');
  return { exists: true, dirs, files };
}

/** Removes the OPFS folder `arg.folder` and everything in it. */
export async function removeOpfs(arg) {
  const root = await navigator.storage.getDirectory();
  try {
    await root.removeEntry(arg.folder, { recursive: true });
  } catch {
    // already gone
  }
}

/** What the page shows now (the DOM contract's elements), for the report. */
export function readPage() {
  const text = (id) => {
    const el = document.getElementById(id);
    return el ? (el.textContent ?? '').trim() : null;
  };
  const names = Array.from(document.querySelectorAll('#offer-names li'), (li) => li.textContent ?? '');
  const bar = document.getElementById('progress');
  return {
    state: document.body.dataset.state ?? null,
    error: document.body.dataset.error ?? null,
    savePath: document.body.dataset.savePath ?? null,
    downstream: document.body.dataset.downstream ?? null,
    errorMessage: text('error-message'),
    offerSummary: text('offer-summary'),
    offerNames: names,
    progress: bar instanceof HTMLProgressElement ? { value: bar.value, max: bar.max } : null,
    progressText: text('progress-text'),
    doneMessage: text('done-message'),
    sendCode: text('send-code'),
    sendCommand: text('send-command'),
  };
}
