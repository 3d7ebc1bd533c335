// Saving through the File System Access API (Chromium): one file into the
// file the user picked, or a whole transfer into the folder the user picked,
// with its folders recreated inside. The page never writes anywhere else.
//
// In a folder, each file is written to `.NAME.pqdrop-partial` and renamed to
// NAME (`FileSystemFileHandle.move`) only after its length and hash were
// verified. Where `move` is missing the file is written under its final name
// and removed if it fails. An existing file is never replaced unless the user
// said so (see `conflict`).

import { Conflict, FileSink, partialName, SaveEntry, SaveError, saveError, SaveOffer, SaveTarget } from './types';

// Parts of the API that TypeScript's DOM library does not have yet.
interface SaveFilePickerOptions {
  suggestedName?: string;
  id?: string;
}
interface DirectoryPickerOptions {
  mode?: 'read' | 'readwrite';
  id?: string;
}
interface PickerWindow {
  showSaveFilePicker?: (o?: SaveFilePickerOptions) => Promise<FileSystemFileHandle>;
  showDirectoryPicker?: (o?: DirectoryPickerOptions) => Promise<FileSystemDirectoryHandle>;
}
interface MovableHandle {
  move?: (name: string) => Promise<void>;
  remove?: () => Promise<void>;
}

/** Whether this browser has both pickers (the contract for choosing this path). */
export function hasFileSystemAccess(): boolean {
  const w = globalThis as unknown as PickerWindow;
  return typeof w.showSaveFilePicker === 'function' && typeof w.showDirectoryPicker === 'function';
}

/**
 * Asks the user where to save (call from the click that accepted the
 * offer: the pickers need a user gesture). Rejects with an AbortError
 * DOMException when the user closes the picker.
 */
export async function pickFsaTarget(offer: SaveOffer): Promise<SaveTarget> {
  const w = globalThis as unknown as PickerWindow;
  if (offer.files === 1 && offer.dirs === 0 && offer.names.length === 1) {
    const handle = await w.showSaveFilePicker!({ suggestedName: offer.names[0], id: 'pqdrop-save' });
    // The picker may have created the file; it is ours to remove on failure only if it is empty.
    let wasEmpty = false;
    try {
      wasEmpty = (await handle.getFile()).size === 0;
    } catch {
      // unknown: keep it
    }
    return new SingleFileTarget(handle, wasEmpty);
  }
  const dir = await w.showDirectoryPicker!({ mode: 'readwrite', id: 'pqdrop-save' });
  return new FolderTarget(dir);
}

/** Bytes gathered into one write: each write costs the browser a blob and a round trip, whatever its size. */
const BATCH = 4 * 1024 * 1024;

/**
 * Gathers chunks into writes of {@link BATCH} bytes and keeps several in
 * flight, so the disk is never idle while the next chunk is decrypted.
 */
class Writer {
  private inflight: Promise<void>[] = [];
  private inflightBytes = 0;
  private failed: unknown;
  private batch: Uint8Array | undefined;
  private batched = 0;
  /** Bytes taken so far. */
  private written = 0;

  /** `size`: the file's announced size (a small file gets a small buffer); unknown for a stream. */
  constructor(
    private readonly stream: FileSystemWritableFileStream,
    private readonly size: number | undefined,
    private readonly maxInflight = 16 * 1024 * 1024,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    for (let off = 0; off < bytes.length; ) {
      this.batch ??= new Uint8Array(this.size === undefined ? BATCH : Math.max(1, Math.min(BATCH, this.size - this.written)));
      const n = Math.min(this.batch.length - this.batched, bytes.length - off);
      this.batch.set(bytes.subarray(off, off + n), this.batched);
      this.batched += n;
      this.written += n;
      off += n;
      if (this.batched === this.batch.length) await this.flush();
    }
  }

  /** Hands the gathered bytes to the stream (a fresh buffer follows: the stream holds this one until written). */
  private async flush(): Promise<void> {
    if (this.batch === undefined || this.batched === 0) return;
    const bytes = this.batch.subarray(0, this.batched);
    this.batch = undefined;
    this.batched = 0;
    await this.put(bytes);
  }

  private async put(bytes: Uint8Array): Promise<void> {
    const n = bytes.length;
    const p = this.stream.write(bytes as Uint8Array<ArrayBuffer>).then(
      () => {
        this.inflightBytes -= n;
      },
      (e: unknown) => {
        this.inflightBytes -= n;
        this.failed ??= e;
      },
    );
    this.inflight.push(p);
    this.inflightBytes += n;
    while (this.inflightBytes > this.maxInflight && this.inflight.length > 0) await this.inflight.shift();
    if (this.failed !== undefined) throw this.failed;
  }

  async close(): Promise<void> {
    await this.flush();
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.failed !== undefined) throw this.failed;
    await this.stream.close();
  }

  async abort(): Promise<void> {
    this.batch = undefined;
    this.batched = 0;
    await Promise.allSettled(this.inflight);
    this.inflight = [];
    try {
      await this.stream.abort();
    } catch {
      // already closed or errored
    }
  }
}

class SingleFileTarget implements SaveTarget {
  readonly path = 'fsa' as const;
  private started = false;
  private committed = false;
  private writer: Writer | undefined;

  constructor(private readonly handle: FileSystemFileHandle, private readonly wasEmpty: boolean) {}

  async conflict(): Promise<Conflict | undefined> {
    return undefined; // the picker asked the user already
  }

  async prepare(): Promise<void> {}

  async beginFile(entry: SaveEntry): Promise<FileSink> {
    if (this.started || entry.kind !== 'file') throw new SaveError('the sender sent more than the one file it offered', 2);
    this.started = true;
    let writer: Writer;
    try {
      writer = new Writer(await this.handle.createWritable({ keepExistingData: false }), entry.stream === true ? undefined : entry.size);
    } catch (e) {
      throw saveError(`cannot write ${this.handle.name}`, e);
    }
    this.writer = writer;
    return {
      write: async (b) => {
        try {
          await writer.write(b);
        } catch (e) {
          throw saveError(`cannot write ${this.handle.name}`, e);
        }
      },
      // The writable is atomic: the file gets the new content only at close.
      commit: async () => {
        try {
          await writer.close();
        } catch (e) {
          throw saveError(`cannot finish ${this.handle.name}`, e);
        }
        this.committed = true;
      },
      discard: async () => {
        await writer.abort();
        await this.removeIfOurs();
      },
    };
  }

  async finish(): Promise<string[]> {
    if (!this.committed) {
      // An offer of one file whose manifest held only a folder: nothing to keep.
      await this.removeIfOurs();
    }
    return [`Saved ${this.handle.name}.`];
  }

  async abort(): Promise<void> {
    if (this.committed) return;
    await this.writer?.abort();
    await this.removeIfOurs();
  }

  private async removeIfOurs(): Promise<void> {
    const h = this.handle as unknown as MovableHandle;
    if (this.wasEmpty && typeof h.remove === 'function') {
      try {
        await h.remove();
      } catch {
        // best effort: it is empty
      }
    }
  }
}

interface Placed {
  path: string;
}

class FolderTarget implements SaveTarget {
  readonly path = 'fsa' as const;
  /** Folder handles by `/`-joined path ('' is the picked folder). */
  private readonly dirs = new Map<string, FileSystemDirectoryHandle>();
  /** Final names (`/`-joined) the user allowed to replace. */
  private readonly replaceable = new Set<string>();
  private replace = false;
  /** Partial or final files being written, to remove on failure. */
  private readonly open = new Set<{ dir: FileSystemDirectoryHandle; name: string; writer: Writer }>();
  private readonly placed: Placed[] = [];
  private topLevel = new Set<string>();
  private readonly canMove: boolean;

  constructor(private readonly root: FileSystemDirectoryHandle) {
    this.dirs.set('', root);
    this.canMove = typeof (FileSystemFileHandle.prototype as unknown as MovableHandle).move === 'function';
  }

  async conflict(entry: SaveEntry): Promise<Conflict | undefined> {
    const shown = entry.path.join('/');
    let dir = this.root;
    for (let i = 0; i < entry.path.length; i++) {
      const name = entry.path[i]!;
      const last = i === entry.path.length - 1;
      const wantFolder = !last || entry.kind === 'folder';
      const found = await lookup(dir, name);
      if (found === undefined) return undefined; // nothing there: nothing below it either
      if (wantFolder) {
        if (found.kind === 'file') {
          const p = entry.path.slice(0, i + 1).join('/');
          this.replaceable.add(p);
          return { path: p, replaceable: true };
        }
        dir = found as FileSystemDirectoryHandle;
        continue;
      }
      if (found.kind === 'directory') return { path: shown, replaceable: false };
      this.replaceable.add(shown);
      return { path: shown, replaceable: true };
    }
    return undefined;
  }

  async prepare(entries: readonly SaveEntry[], replace: boolean): Promise<void> {
    this.replace = replace;
    for (const e of entries) {
      const first = e.path[0];
      if (first !== undefined) this.topLevel.add(first);
      await this.folder(e.kind === 'folder' ? e.path : e.path.slice(0, -1));
    }
  }

  async beginFile(entry: SaveEntry): Promise<FileSink> {
    const name = entry.path[entry.path.length - 1]!;
    const shown = entry.path.join('/');
    const dir = await this.folder(entry.path.slice(0, -1));
    const temp = this.canMove ? partialName(name) : name;
    let handle: FileSystemFileHandle;
    let writer: Writer;
    try {
      if (!this.canMove) await this.clearFinal(dir, name, shown);
      handle = await dir.getFileHandle(temp, { create: true });
      writer = new Writer(await handle.createWritable({ keepExistingData: false }), entry.stream === true ? undefined : entry.size);
    } catch (e) {
      throw saveError(`cannot create ${shown}`, e);
    }
    const record = { dir, name: temp, writer };
    this.open.add(record);
    return {
      write: async (b) => {
        try {
          await writer.write(b);
        } catch (e) {
          throw saveError(`cannot write ${shown}`, e);
        }
      },
      commit: async () => {
        try {
          await writer.close();
          if (this.canMove) {
            await this.clearFinal(dir, name, shown);
            await (handle as unknown as Required<MovableHandle>).move(name);
          }
        } catch (e) {
          throw saveError(`cannot finish ${shown}`, e);
        }
        this.open.delete(record);
        this.placed.push({ path: shown });
      },
      discard: async () => {
        this.open.delete(record);
        await writer.abort();
        await removeQuietly(dir, temp);
      },
    };
  }

  async finish(): Promise<string[]> {
    const names = [...this.topLevel];
    const lines = [`Saved ${this.placed.length} file${this.placed.length === 1 ? '' : 's'} into the folder “${this.root.name}”.`];
    if (names.length > 0) lines.push(...names);
    return lines;
  }

  async abort(): Promise<void> {
    for (const r of [...this.open]) {
      await r.writer.abort();
      await removeQuietly(r.dir, r.name);
    }
    this.open.clear();
  }

  /** An existing final file is removed only when the user allowed replacing it. */
  private async clearFinal(dir: FileSystemDirectoryHandle, name: string, shown: string): Promise<void> {
    const found = await lookup(dir, name);
    if (found === undefined) return;
    if (found.kind !== 'file' || !this.replace || !this.replaceable.has(shown)) {
      throw new SaveError(`${shown} already exists`, 1);
    }
    await dir.removeEntry(name);
  }

  /** The folder at `path`, created as needed (a file in the way only if the user allowed replacing it). */
  private async folder(path: readonly string[]): Promise<FileSystemDirectoryHandle> {
    let dir = this.root;
    for (let i = 0; i < path.length; i++) {
      const key = path.slice(0, i + 1).join('/');
      const known = this.dirs.get(key);
      if (known !== undefined) {
        dir = known;
        continue;
      }
      const name = path[i]!;
      try {
        const found = await lookup(dir, name);
        if (found?.kind === 'file') {
          if (!this.replace || !this.replaceable.has(key)) throw new SaveError(`${key} exists and is a file`, 1);
          await dir.removeEntry(name);
        }
        dir = await dir.getDirectoryHandle(name, { create: true });
      } catch (e) {
        throw saveError(`cannot create the folder ${key}`, e);
      }
      this.dirs.set(key, dir);
    }
    return dir;
  }
}

/** What is at `name` in `dir`, without creating anything. */
async function lookup(dir: FileSystemDirectoryHandle, name: string): Promise<FileSystemHandle | undefined> {
  try {
    return await dir.getFileHandle(name);
  } catch (e) {
    if (!(e instanceof DOMException)) throw e;
    if (e.name === 'TypeMismatchError') return dir.getDirectoryHandle(name);
    if (e.name === 'NotFoundError') return undefined;
    throw saveError(`cannot look at ${name}`, e);
  }
}

async function removeQuietly(dir: FileSystemDirectoryHandle, name: string): Promise<void> {
  try {
    await dir.removeEntry(name);
  } catch {
    // already gone, or never created
  }
}
