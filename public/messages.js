// The conversation on screen: messages (each with its author's avatar, which opens a
// direct message, see rooms.js) and gap markers, drawn from a room's items in
// state.js: all at once when a room is shown, then as they arrive or as older ones
// are loaded. Which messages are our own is sent.js's to say.

import { el, ui } from './ui.js';
import { authorIdOf, isOwn } from './sent.js';
import { myId } from './session.js';
import { avatar, describeUser, idTag } from './avatar.js';
import { GAP } from './state.js';

const pad = (n) => String(n).padStart(2, '0');

function renderMessage(m) {
  const id = authorIdOf(m);
  const node = el('div', isOwn(m) ? 'msg mine' : 'msg');
  node.dataset.seq = String(m.seq);
  if (id) node.dataset.authorId = id;
  const user = { id, name: m.author };
  // Someone else's avatar starts a direct message with them.
  const canWrite = id && id !== myId();
  node.append(avatar(user, { button: canWrite, label: canWrite ? `Message ${m.author} directly (id ${id})` : '' }));
  const meta = node.appendChild(el('div', 'meta'));
  // <bdi> and dir="auto" keep bidi controls and right-to-left script inside the user's
  // own box: a name ending in U+202E must not reverse the time beside it.
  const author = meta.appendChild(el('bdi', 'author', m.author));
  author.title = describeUser(user);
  if (id) meta.append(' ', idTag(id));
  meta.append(' ');
  const when = new Date(m.ts);
  if (!Number.isNaN(when.getTime())) {
    const time = meta.appendChild(el('time', '', `${pad(when.getHours())}:${pad(when.getMinutes())}`));
    time.dateTime = when.toISOString();
    time.title = when.toLocaleString();
  }
  node.appendChild(el('div', 'text', m.text)).dir = 'auto';
  return node;
}

const render = (item) => (item === GAP ? el('div', 'gap', 'Some earlier messages are no longer available.') : renderMessage(item));
const oldestShown = () => Number(ui.messages.querySelector('.msg')?.dataset.seq ?? 0);
const nearBottom = () => ui.scroller.scrollHeight - ui.scroller.scrollTop - ui.scroller.clientHeight < 48;
const scrollToBottom = () => { ui.scroller.scrollTop = ui.scroller.scrollHeight; };

export function clearMessages() {
  ui.messages.replaceChildren();
  ui.older.hidden = true;
}

/** A room's items in place of what was shown, at the newest. */
export function showAll(items) {
  ui.messages.replaceChildren(...items.map(render));
  ui.older.hidden = oldestShown() <= 1 || ui.messages.firstChild?.classList.contains('gap');
  scrollToBottom();
}

/** Items that arrived, below the others. */
export function showNew(items) {
  const stick = nearBottom();
  ui.messages.append(...items.map(render));
  // Follow the conversation unless the reader scrolled up; always show one's own message.
  if (stick || items.some((i) => i !== GAP && isOwn(i))) scrollToBottom();
}

/** Older items above the others. */
export function showOlder(items) {
  // Keep what the reader is looking at in place while content grows above it.
  const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
  ui.messages.prepend(...items.map(render));
  ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
}

/** After the session changed (a new guest): which shown messages are ours now. */
export function markOwn() {
  for (const node of ui.messages.querySelectorAll('.msg[data-author-id]')) {
    node.classList.toggle('mine', node.dataset.authorId === myId());
  }
}

/** Instead of a conversation: why there is none (a private room we may not read). */
export function showNotice(...parts) {
  clearMessages();
  const box = el('div', 'room-notice');
  box.append(...parts);
  ui.messages.append(box);
}
