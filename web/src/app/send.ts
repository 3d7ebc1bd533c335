// The sending flow: pick → relay allocates a nameplate → code shown →
// receiver connects → handshake (as the accepter) → send → done.

import { generateCode, parseCode, type Code } from '../proto/code';
import { pageCapabilities } from '../proto/caps';
import { escapeName } from '../proto/names';
import { ROLE_SENDER } from '../net/relay';
import { checkSendable, send, SessionFailure, type SendItem } from '../session';
import { connectHere, guardUnload, ProgressView, showFailure, stayAwake } from './connect';
import { el, setState, setText } from './dom';
import { formatBytes, plural } from './format';
import { describeSelection, fromDirectoryHandle, fromDrop, fromFileInput, fromFolderInput, PickError, type PickedItem } from './pick';

/** The relay's default TCP port, for the command shown to CLI receivers. */
const DEFAULT_RELAY_PORT = 4733;

let selection: SendItem[] = [];
let started = false;

function toItems(picked: readonly PickedItem[]): SendItem[] {
  return picked.map((p) =>
    p.kind === 'file' && p.file !== undefined
      ? { entry: { kind: 'file', path: p.path, size: p.file.size, mtime: Math.floor(p.file.lastModified / 1000) }, file: p.file }
      : { entry: { kind: 'folder', path: p.path } },
  );
}

/** Takes a new selection: checks it against the receiver rules and shows what it holds. */
function select(picked: readonly PickedItem[]): void {
  const button = el<HTMLButtonElement>('send-button', HTMLButtonElement);
  const note = el('send-selection');
  const items = toItems(picked);
  if (items.length === 0) {
    selection = [];
    button.disabled = true;
    note.textContent = 'Nothing chosen yet.';
    return;
  }
  try {
    checkSendable(items);
  } catch (e) {
    selection = [];
    button.disabled = true;
    note.textContent = `This cannot be sent: ${e instanceof Error ? e.message : String(e)}.`;
    return;
  }
  selection = items;
  const d = describeSelection(picked);
  const parts = [plural(d.files, 'file')];
  if (d.folders > 0) parts.push(plural(d.folders, 'folder'));
  const first = picked[0]!.path.split('/')[0]!;
  note.textContent = `${parts.join(' and ')}, ${formatBytes(d.bytes)}: ${escapeName(first)}${d.files + d.folders > 1 ? ' …' : ''}`;
  button.disabled = false;
}

/** Wires the pickers, the drop zone and the send button. */
export function setupSend(): void {
  const files = el<HTMLInputElement>('send-files', HTMLInputElement);
  const folder = el<HTMLInputElement>('send-folder', HTMLInputElement);
  files.addEventListener('change', () => select(fromFileInput(files.files ?? [])));
  folder.addEventListener('change', () => select(fromFolderInput(folder.files ?? [])));
  // Where the browser has the directory picker, "Choose a folder" uses it:
  // unlike the folder input, it shows empty folders too.
  const folderLabel = document.querySelector<HTMLLabelElement>('label[for="send-folder"]');
  const w = window as { showDirectoryPicker?: (o: { mode: 'read'; id: string }) => Promise<FileSystemDirectoryHandle> };
  if (folderLabel !== null && typeof w.showDirectoryPicker === 'function') {
    folderLabel.addEventListener('click', (e) => {
      e.preventDefault();
      w.showDirectoryPicker!({ mode: 'read', id: 'pqdrop-send' })
        .then(fromDirectoryHandle)
        .then(select, (err: unknown) => {
          if (err instanceof DOMException && err.name === 'AbortError') return; // the user closed the picker
          setText('send-selection', err instanceof PickError ? `Too much: ${err.message}.` : 'The folder could not be read.');
        });
    });
  }
  const zone = el('drop-zone');
  const over = (e: DragEvent) => {
    if (document.body.dataset.state !== 'home') return;
    e.preventDefault();
    if (e.dataTransfer !== null) e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  };
  zone.addEventListener('dragenter', over);
  zone.addEventListener('dragover', over);
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (document.body.dataset.state !== 'home' || e.dataTransfer === null) return;
    fromDrop(e.dataTransfer).then(select, (err: unknown) => {
      setText('send-selection', err instanceof PickError ? `Too much: ${err.message}.` : 'The dropped items could not be read.');
    });
  });
  // A drop outside the zone must not make the browser open the file instead of this page.
  for (const t of ['dragover', 'drop'] as const) document.addEventListener(t, (e) => e.preventDefault());
  el<HTMLButtonElement>('send-button', HTMLButtonElement).addEventListener('click', () => void startSend());
}

/** Starts sending the selection. A second click, or one with nothing picked, does nothing. */
async function startSend(): Promise<void> {
  if (started || selection.length === 0) return;
  started = true;
  el<HTMLButtonElement>('send-button', HTMLButtonElement).disabled = true;
  const items = selection;
  const ctl = new AbortController();
  for (const id of ['busy-cancel', 'waiting-cancel', 'cancel-button']) el<HTMLButtonElement>(id, HTMLButtonElement).onclick = () => ctl.abort();
  const progress = new ProgressView();
  let code: Code | undefined;
  let release: (() => void)[] = [];
  setText('busy-detail', 'Asking the relay for a code…');
  setState('connecting');
  try {
    const paired = await connectHere({
      role: ROLE_SENDER,
      nameplate: '',
      signal: ctl.signal,
      onAllocated: (nameplate) => {
        const text = generateCode(nameplate);
        code = parseCode(text);
        showCode(text);
      },
      onWaiting: () => setState('waiting'),
    });
    if (code === undefined) throw new SessionFailure('relay', 'The relay paired this page without giving it a nameplate.');
    setText('busy-detail', 'The receiver connected. Checking that it has the same code…');
    const done = await send({
      stream: paired.stream,
      code,
      caps: pageCapabilities(),
      items,
      signal: ctl.signal,
      hooks: {
        onHandshake: () => setState('handshake'),
        onAccepted: (total) => {
          progress.start(total, 'Sending');
          release = [guardUnload()];
          void stayAwake().then((r) => release.push(r));
        },
        onProgress: (p) => progress.update(p.done, p.file),
      },
    });
    progress.render();
    const files = items.filter((i) => i.entry.kind === 'file').length;
    setText('done-title', 'Sent');
    setText('done-message', `Sent ${plural(files, 'file')}, ${formatBytes(done.bytes)}${progress.summary()}. The receiver confirmed that it has everything.`);
    setState('done');
  } catch (e) {
    if (ctl.signal.aborted && !(e instanceof SessionFailure)) showFailure(new SessionFailure('cancelled', 'You cancelled; nothing was sent.'));
    else showFailure(e);
  } finally {
    progress.stop();
    for (const r of release) r();
    code?.prs.fill(0);
  }
}

function showCode(code: string): void {
  setText('send-code', code);
  setText('send-command', `pqdrop receive --relay ${location.hostname}:${DEFAULT_RELAY_PORT} ${code}`);
  const link = el<HTMLAnchorElement>('send-link', HTMLAnchorElement);
  const url = new URL(location.href);
  url.hash = code;
  url.search = '';
  link.href = url.toString();
  link.textContent = url.toString();
}
