// The receiving flow: code → relay → handshake → offer → save → done.

import { CodeError, parseCode, type Code } from '../proto/code';
import { pageCapabilities } from '../proto/caps';
import { escapeName, escapeText } from '../proto/names';
import { ROLE_RECEIVER } from '../net/relay';
import { receive, SessionFailure, type OfferView } from '../session';
import { BLOB_LIMIT, blobTarget } from './save/blob';
import { registerDownloadWorker, startDownloadTarget } from './save/download';
import { hasFileSystemAccess, pickFsaTarget } from './save/fsa';
import { NO_SAVE, SaveError, type Conflict, type SavePath, type SaveTarget } from './save/types';
import { connectHere, guardUnload, ProgressView, showFailure, stayAwake } from './connect';
import { el, setList, setState, setText } from './dom';
import { formatBytes, plural } from './format';

let running = false;

/** The best save path this browser has (the contract's order). */
export async function chooseSavePath(): Promise<SavePath> {
  if (hasFileSystemAccess()) return 'fsa';
  return (await registerDownloadWorker()) !== undefined ? 'sw-download' : 'blob';
}

/**
 * Starts receiving with `text` as the code. A code that does not parse is
 * reported next to the code field (the home view stays), never echoed back.
 */
export async function startReceive(text: string): Promise<void> {
  if (running) return;
  let code: Code;
  try {
    code = parseCode(text);
  } catch (e) {
    setState('home');
    setText('code-error', e instanceof CodeError ? `${e.message.charAt(0).toUpperCase()}${e.message.slice(1)}.` : 'That is not a code.');
    el<HTMLInputElement>('code-input', HTMLInputElement).focus();
    return;
  }
  running = true;
  setText('code-error', '');
  el<HTMLInputElement>('code-input', HTMLInputElement).value = '';
  const ctl = new AbortController();
  const cancelButtons = ['busy-cancel', 'cancel-button'].map((id) => el<HTMLButtonElement>(id, HTMLButtonElement));
  for (const b of cancelButtons) b.onclick = () => ctl.abort();
  const progress = new ProgressView();
  let release: (() => void)[] = [];

  setText('busy-detail', 'Connecting to the relay…');
  setState('connecting');
  try {
    const paired = await connectHere({
      role: ROLE_RECEIVER,
      nameplate: code.nameplate,
      signal: ctl.signal,
      onWaiting: () => setText('busy-detail', 'Waiting for the sender to connect…'),
    });
    const done = await receive({
      stream: paired.stream,
      code,
      caps: pageCapabilities(),
      signal: ctl.signal,
      hooks: {
        onHandshake: () => {
          setText('busy-detail', 'Checking that the sender has the same code…');
          setState('handshake');
        },
        onOffer: (view) => askOffer(view, () => ctl.abort()),
        onConflicts: askConflicts,
        onStart: (total) => {
          progress.start(total, 'Receiving');
          release = [guardUnload()];
          void stayAwake().then((r) => release.push(r));
        },
        onProgress: (p) => progress.update(p.done, p.file),
      },
    });
    progress.render();
    if (done.text !== undefined) {
      setText('done-title', 'Text received');
      setText('done-message', 'The sender sent this text:');
      const pre = el('done-text');
      pre.textContent = escapeText(done.text);
      pre.hidden = false;
      setList('done-names', []);
    } else {
      setText('done-title', 'Received');
      setText('done-message', `${done.lines[0] ?? 'Done.'} ${formatBytes(done.bytes)}${progress.summary()}.`);
      setList('done-names', done.lines.slice(1).map((n) => escapeName(n)));
    }
    setState('done');
  } catch (e) {
    if (ctl.signal.aborted && !(e instanceof SessionFailure)) showFailure(new SessionFailure('cancelled', 'You cancelled; nothing was received.'));
    else showFailure(e);
  } finally {
    progress.stop();
    for (const r of release) r();
    code.prs.fill(0);
    running = false;
  }
}

/** A one-line description of an offer. */
function summarize(v: OfferView): string {
  if (v.kind === 'text') return `A text of ${formatBytes(v.bytes)}`;
  if (v.kind === 'stream') return 'A stream of data (its size is not known in advance)';
  const parts: string[] = [];
  if (v.files > 0 || v.dirs === 0) parts.push(plural(v.files, 'file'));
  if (v.dirs > 0) parts.push(plural(v.dirs, 'folder'));
  return `${parts.join(' and ')}, ${formatBytes(v.bytes)} in total`;
}

/** Shows the offer and resolves with where to save once the user accepted (null: declined). */
async function askOffer(v: OfferView, cancel: () => void): Promise<SaveTarget | null> {
  const path = await chooseSavePath();
  document.body.dataset.savePath = path;
  if (path === 'blob' && v.kind !== 'text' && (v.kind === 'stream' || v.bytes > BLOB_LIMIT)) {
    throw new SessionFailure(
      'too-large',
      `${summarize(v)}: this browser can only keep up to ${formatBytes(BLOB_LIMIT)} in memory before saving, and it has neither the File System Access API nor service workers for a streamed download. Open the link in a current Chrome, Edge or Firefox, or use the pqdrop command line.`,
    );
  }
  setText('offer-summary', summarize(v));
  setList('offer-names', v.names);
  const more = el('offer-more');
  more.hidden = v.complete;
  more.textContent = v.complete ? '' : 'The sender lists only the first 16 names.';
  setText(
    'offer-save',
    v.kind === 'text'
      ? 'The text will be shown here.'
      : path === 'fsa'
        ? v.save.files === 1 && v.save.dirs === 0
          ? 'You will choose where to save it.'
          : 'You will choose a folder to save it in.'
        : path === 'sw-download'
          ? v.save.files === 1 && v.save.dirs === 0
            ? 'It will be saved by your browser as a download.'
            : 'It will be saved by your browser as one zip file.'
          : `It will be kept in memory, then saved by your browser as a download (at most ${formatBytes(BLOB_LIMIT)}).`,
  );
  setText('offer-title', 'Incoming');
  setState('offer');
  const accept = el<HTMLButtonElement>('accept-button', HTMLButtonElement);
  const decline = el<HTMLButtonElement>('decline-button', HTMLButtonElement);
  accept.disabled = false;
  decline.disabled = false;
  return new Promise<SaveTarget | null>((resolve, reject) => {
    const finish = () => {
      accept.onclick = null;
      decline.onclick = null;
    };
    decline.onclick = () => {
      finish();
      resolve(null);
    };
    accept.onclick = () => {
      accept.disabled = true;
      decline.disabled = true;
      // Called at once, inside the click: the pickers and downloads want the user's gesture.
      const chosen: Promise<SaveTarget> =
        v.kind === 'text'
          ? Promise.resolve(NO_SAVE)
          : path === 'fsa'
            ? pickFsaTarget(v.save)
            : path === 'sw-download'
              ? startDownloadTarget(v.save, () => cancel())
              : Promise.resolve(blobTarget(v.save));
      chosen.then(
        (t) => {
          finish();
          resolve(t);
        },
        (e: unknown) => {
          if (e instanceof DOMException && e.name === 'AbortError') {
            // The picker was closed: ask again.
            accept.disabled = false;
            decline.disabled = false;
            setText('offer-save', 'You did not choose where to save. Accept again to choose, or decline.');
            return;
          }
          finish();
          reject(e instanceof SaveError ? e : new SaveError(`cannot save here: ${e instanceof Error ? e.message : String(e)}`, 2));
        },
      );
    };
  });
}

/** Asks whether to replace what exists; resolves true to replace. */
function askConflicts(conflicts: readonly Conflict[]): Promise<boolean> {
  const panel = el('conflict');
  const replace = el<HTMLButtonElement>('conflict-replace', HTMLButtonElement);
  const stop = el<HTMLButtonElement>('conflict-stop', HTMLButtonElement);
  const shown = conflicts.slice(0, 50).map((c) => escapeName(c.path) + (c.replaceable ? '' : ' (a folder: it cannot be replaced)'));
  if (conflicts.length > 50) shown.push(`… and ${conflicts.length - 50} more`);
  setList('conflict-names', shown);
  replace.hidden = conflicts.some((c) => !c.replaceable);
  panel.hidden = false;
  (replace.hidden ? stop : replace).focus();
  return new Promise<boolean>((resolve) => {
    const answer = (yes: boolean) => {
      panel.hidden = true;
      replace.onclick = null;
      stop.onclick = null;
      resolve(yes);
    };
    replace.onclick = () => answer(true);
    stop.onclick = () => answer(false);
  });
}
