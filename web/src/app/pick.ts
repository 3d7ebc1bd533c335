// What the user picked to send: files from `<input type=file multiple>`, a
// folder from the File System Access directory picker where the browser has
// it (walked through its handles, empty folders included) or else from
// `<input type=file webkitdirectory>` (paths from `webkitRelativePath`,
// which lists files only), or files and folders dropped on the page (walked
// with `webkitGetAsEntry`, which also sees empty folders).

/** One thing to send: a file (with its File) or a folder. `path` is `/`-separated and relative. */
export interface PickedItem {
  path: string;
  kind: 'file' | 'folder';
  file?: File;
}

/** Receivers refuse more entries than this (§8), so the page stops collecting there. */
export const MAX_ITEMS = 1_000_000;

export class PickError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickError';
  }
}

/** Files of a plain multiple-file input: each under its own name. */
export function fromFileInput(files: FileList | readonly File[]): PickedItem[] {
  return Array.from(files, (f) => ({ path: f.name, kind: 'file' as const, file: f }));
}

/**
 * Files of a `webkitdirectory` input, under their relative paths (which start
 * with the picked folder's name). The folders they imply are listed before
 * their contents. Empty folders are not reported by browsers here.
 */
export function fromFolderInput(files: FileList | readonly File[]): PickedItem[] {
  const out: PickedItem[] = [];
  const seen = new Set<string>();
  for (const f of Array.from(files)) {
    const rel = f.webkitRelativePath !== '' ? f.webkitRelativePath : f.name;
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!seen.has(dir)) {
        seen.add(dir);
        out.push({ path: dir, kind: 'folder' });
      }
    }
    out.push({ path: rel, kind: 'file', file: f });
  }
  return out;
}

/** A folder from `showDirectoryPicker`, walked in name order, empty folders included. */
export async function fromDirectoryHandle(dir: FileSystemDirectoryHandle): Promise<PickedItem[]> {
  const out: PickedItem[] = [];
  await walkHandle(dir, dir.name, out);
  return out;
}

async function walkHandle(dir: FileSystemDirectoryHandle, path: string, out: PickedItem[]): Promise<void> {
  if (out.length >= MAX_ITEMS) throw new PickError(`more than ${MAX_ITEMS} files and folders`);
  out.push({ path, kind: 'folder' });
  const children: FileSystemHandle[] = [];
  for await (const h of dir.values()) {
    children.push(h);
    if (out.length + children.length > MAX_ITEMS) throw new PickError(`more than ${MAX_ITEMS} files and folders`);
  }
  children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const h of children) {
    const p = `${path}/${h.name}`;
    if (h.kind === 'file') out.push({ path: p, kind: 'file', file: await (h as FileSystemFileHandle).getFile() });
    else await walkHandle(h as FileSystemDirectoryHandle, p, out);
  }
}

/** Dropped items, folders walked recursively. Must be called during the drop event (items expire after it). */
export function fromDrop(dt: DataTransfer): Promise<PickedItem[]> {
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(dt.items)) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.() ?? null;
    if (entry !== null) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f !== null) loose.push(f);
    }
  }
  return (async () => {
    const out: PickedItem[] = fromFileInput(loose);
    for (const e of entries) await walk(e, e.name, out);
    return out;
  })();
}

async function walk(entry: FileSystemEntry, path: string, out: PickedItem[]): Promise<void> {
  if (out.length >= MAX_ITEMS) throw new PickError(`more than ${MAX_ITEMS} files and folders`);
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ path, kind: 'file', file });
    return;
  }
  if (!entry.isDirectory) return;
  out.push({ path, kind: 'folder' });
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, `${path}/${child.name}`, out);
  }
}

/** A one-line summary of a selection. */
export function describeSelection(items: readonly PickedItem[]): { files: number; folders: number; bytes: number } {
  let files = 0;
  let folders = 0;
  let bytes = 0;
  for (const i of items) {
    if (i.kind === 'file') {
      files++;
      bytes += i.file?.size ?? 0;
    } else folders++;
  }
  return { files, folders, bytes };
}
