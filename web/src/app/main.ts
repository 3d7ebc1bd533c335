// The page's entry point. With a code in the fragment (`#7-lemon-tiger`) it
// receives at once; the fragment is removed from the address bar and history
// first, so the secret words are not left behind (fragments never reach the
// server). Without one it shows the home view: a code field and the send
// area.

import { el, setState, setText, wireCopy } from './dom';
import { startReceive } from './receive';
import { hasFileSystemAccess } from './save/fsa';
import { registerDownloadWorker } from './save/download';
import { setupSend } from './send';

/** The fragment's code, removed from the address (and so from history) at once. */
function takeFragment(): string | undefined {
  const raw = location.hash.slice(1);
  if (raw === '') return undefined;
  history.replaceState(history.state, '', `${location.pathname}${location.search}`);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function boot(): void {
  // The download worker is registered early so that it is active when an
  // offer is accepted; where the File System Access API exists it is not needed.
  if (!hasFileSystemAccess()) void registerDownloadWorker();

  const input = el<HTMLInputElement>('code-input', HTMLInputElement);
  const go = () => void startReceive(input.value);
  el<HTMLButtonElement>('receive-button', HTMLButtonElement).addEventListener('click', go);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') go();
  });
  input.addEventListener('input', () => setText('code-error', ''));
  setupSend();
  wireCopy('copy-code', () => el('send-code').textContent ?? '');
  wireCopy('copy-command', () => el('send-command').textContent ?? '');
  wireCopy('copy-link', () => el<HTMLAnchorElement>('send-link', HTMLAnchorElement).href);

  // A link with a code opened in this tab while it shows the home view.
  window.addEventListener('hashchange', () => {
    const code = takeFragment();
    // A transfer in progress is never interrupted by it; after one ended, the new code starts afresh.
    const state = document.body.dataset.state;
    if (code !== undefined && (state === 'home' || state === 'done' || state === 'error')) void startReceive(code);
  });

  const code = takeFragment();
  // Start from a clean state: the server's markup says home, but views are shown by setState.
  document.body.dataset.state = '';
  setState('home');
  if (code !== undefined) void startReceive(code);
}

boot();
