// The last resort, for browsers with neither the File System Access API nor
// service workers: the transfer is collected in memory and offered as a
// Blob download at the end. Only below BLOB_LIMIT, because all of it is held
// (and, for a zip, held twice while the archive is made).

import { makeZip } from 'client-zip';
import { Conflict, FileSink, SaveEntry, SaveOffer, SaveTarget } from './types';

/** Largest transfer saved through a Blob. */
export const BLOB_LIMIT = 256 * 1024 * 1024;

export function blobTarget(offer: SaveOffer): SaveTarget {
  return new BlobTarget(offer.files === 1 && offer.dirs === 0, offer.names.length === 1 ? offer.names[0]! : 'pqdrop-files');
}

interface Held {
  entry: SaveEntry;
  parts: Uint8Array[];
}

class BlobTarget implements SaveTarget {
  readonly path = 'blob' as const;
  private entries: readonly SaveEntry[] = [];
  private readonly files: Held[] = [];
  private held = 0;

  constructor(private readonly single: boolean, private readonly baseName: string) {}

  async conflict(): Promise<Conflict | undefined> {
    return undefined;
  }

  async prepare(entries: readonly SaveEntry[]): Promise<void> {
    this.entries = entries;
  }

  async beginFile(entry: SaveEntry): Promise<FileSink> {
    const held: Held = { entry, parts: [] };
    return {
      write: async (b) => {
        this.held += b.length;
        if (this.held > BLOB_LIMIT) throw new Error(`more than ${BLOB_LIMIT / 1048576} MiB to hold in memory`);
        held.parts.push(b);
      },
      commit: async () => {
        this.files.push(held);
      },
      discard: async () => {
        held.parts = [];
      },
    };
  }

  async finish(): Promise<string[]> {
    let blob: Blob;
    let name: string;
    const first = this.files[0];
    if (this.single && first !== undefined) {
      blob = new Blob(first.parts as BlobPart[], { type: 'application/octet-stream' });
      name = first.entry.path[first.entry.path.length - 1]!;
    } else {
      const byIndex = new Map(this.files.map((f) => [f.entry.index, f]));
      const items = this.entries.map((e) => {
        const lastModified = new Date(e.mtime * 1000);
        if (e.kind === 'folder') return { name: `${e.path.join('/')}/`, lastModified };
        const parts = byIndex.get(e.index)?.parts ?? [];
        return { name: e.path.join('/'), lastModified, input: new Blob(parts as BlobPart[]) };
      });
      blob = await new Response(makeZip(items, { buffersAreUTF8: true })).blob();
      name = `${this.baseName}.zip`;
    }
    this.files.length = 0;
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return [`The download of “${name}” was started; your browser saves it in its downloads folder.`];
  }

  async abort(): Promise<void> {
    this.files.length = 0;
  }
}
