// The page's views and the DOM contract: `body[data-state]`, `data-error`,
// `data-save-path`, and the element ids the page promises. Everything from
// the other side is inserted as text (`textContent`), never as HTML.

import type { FailureKind } from '../session';

export type PageState = 'home' | 'connecting' | 'waiting' | 'handshake' | 'offer' | 'progress' | 'done' | 'error';

/** The contract's `data-error` values: the session's failure kinds. */
export type ErrorKind = FailureKind;

/** The element with `id`, of the expected type; a missing one is a bug in index.html. */
export function el<T extends HTMLElement = HTMLElement>(id: string, type?: { new (): T }): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`index.html has no #${id}`);
  if (type !== undefined && !(e instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return e as T;
}

const TITLES: Partial<Record<PageState, string>> = {
  connecting: 'Connecting…',
  handshake: 'Checking the code…',
};

/** Shows the view of `state` and moves focus to its heading, so screen readers follow. */
export function setState(state: PageState): void {
  const body = document.body;
  if (body.dataset.state === state) return;
  body.dataset.state = state;
  if (state !== 'error') delete body.dataset.error;
  for (const view of document.querySelectorAll<HTMLElement>('[data-view]')) {
    view.hidden = !(view.dataset.view ?? '').split(' ').includes(state);
  }
  const title = TITLES[state];
  if (title !== undefined) el('busy-title').textContent = title;
  const heading = document.querySelector<HTMLElement>(`[data-view~="${state}"] h2`);
  if (heading !== null && state !== 'home') {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: false });
  }
}

export function currentState(): PageState {
  return (document.body.dataset.state ?? 'home') as PageState;
}

/** The error view, with `kind` in `data-error` and the message as text. */
export function showError(kind: ErrorKind, message: string, title?: string): void {
  el('error-message').textContent = message;
  el('error-title').textContent = title ?? ERROR_TITLES[kind];
  document.body.dataset.error = kind;
  setState('error');
}

const ERROR_TITLES: Record<ErrorKind, string> = {
  'wrong-code': 'Wrong code',
  declined: 'Declined',
  disconnected: 'Disconnected',
  integrity: 'Integrity check failed',
  refused: 'Refused',
  cancelled: 'Cancelled',
  local: 'Saving failed',
  relay: 'The relay refused the connection',
  protocol: 'Protocol error',
  'too-large': 'Too large for this browser',
};

export function setText(id: string, text: string): void {
  el(id).textContent = text;
}

/** Replaces the items of a list with one `li` per text. */
export function setList(id: string, items: readonly string[]): void {
  const list = el(id);
  list.replaceChildren(
    ...items.map((t) => {
      const li = document.createElement('li');
      li.textContent = t;
      return li;
    }),
  );
}

/** Says `text` to screen readers. */
export function announce(text: string): void {
  el('announcer').textContent = text;
}

/** Copies `text`, and says so on the button for a moment. */
export function wireCopy(buttonId: string, text: () => string): void {
  const b = el<HTMLButtonElement>(buttonId, HTMLButtonElement);
  b.addEventListener('click', () => {
    const t = text();
    const done = (ok: boolean) => {
      b.textContent = ok ? 'Copied' : 'Select and copy';
      setTimeout(() => (b.textContent = 'Copy'), 1500);
    };
    if (navigator.clipboard?.writeText !== undefined) navigator.clipboard.writeText(t).then(() => done(true), () => done(false));
    else done(false);
  });
}
