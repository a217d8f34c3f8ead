// The conversation on screen: messages (each with its author's avatar, which opens a
// direct message, see rooms.js), gap markers, which seqs are shown, and which are our own.

import { el, ui } from './ui.js';
import { sentHere } from './sent.js';
import { myId } from './session.js';
import { avatar, describeUser, idTag } from './avatar.js';

// The epoch and last seq of what is on screen: a message at or below `last` in
// the same epoch is already shown and is dropped.
export const view = { epoch: null, last: 0 };

const pad = (n) => String(n).padStart(2, '0');

const authorIdOf = (m) => (typeof m.authorId === 'string' && m.authorId ? m.authorId : null);

// Own is by user id, never by name: two people may both be called "ann". A message
// from before accounts has no id; it is ours if this tab sent it.
function isOwn(m) {
  const id = authorIdOf(m);
  return id ? id === myId() : sentHere(m.clientMsgId);
}

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

const gapMarker = () => el('div', 'gap', 'Some earlier messages are no longer available.');
export const oldestShown = () => Number(ui.messages.querySelector('.msg')?.dataset.seq ?? 0);
const nearBottom = () => ui.scroller.scrollHeight - ui.scroller.scrollTop - ui.scroller.clientHeight < 48;
const scrollToBottom = () => { ui.scroller.scrollTop = ui.scroller.scrollHeight; };

export function clearMessages() {
  ui.messages.replaceChildren();
  view.epoch = null;
  view.last = 0;
  ui.older.hidden = true;
}

/** Shows a join's or a poll's answer; returns how many of its messages were new. */
export function showMessages(r, replace) {
  const stick = replace || nearBottom();
  if (replace) {
    clearMessages();
    view.epoch = r.epoch;
  }
  const fresh = r.messages.filter((m) => m.seq > view.last);
  const batch = document.createDocumentFragment();
  if (r.gap && !replace) batch.append(gapMarker());
  for (const m of fresh) batch.append(renderMessage(m));
  ui.messages.append(batch);
  if (fresh.length) view.last = fresh[fresh.length - 1].seq;
  if (replace) ui.older.hidden = oldestShown() <= 1;
  // Follow the conversation unless the reader scrolled up; always show one's own message.
  if (stick || fresh.some(isOwn)) scrollToBottom();
  return fresh.length;
}

/** Puts a page of history above what is shown; returns how many of its messages were older. */
export function showOlder(r) {
  const older = r.messages.filter((m) => m.seq < oldestShown());
  // Keep what the reader is looking at in place while content grows above it.
  const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
  ui.messages.prepend(...older.map(renderMessage));
  if (!r.more && oldestShown() > 1) ui.messages.prepend(gapMarker());
  ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
  return older.length;
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
