// The room this tab shows: entering it, at once from what state.js holds (a room not
// synced yet says "connecting…" until the sync brings it); leaving it; the "not
// found" card of a private room we may not read; the status in the bar; and older
// messages on request. The sync (tabs.js) brings messages to state.js for every
// room followed; this draws those of the room shown as they come.

import { api, bust, messagesUrl } from './http.js';
import { el, isolate, ui } from './ui.js';
import { clearMessages, showAll, showNew, showNotice, showOlder } from './messages.js';
import { myId } from './session.js';
import {
  GAP, currentRoom, epochOf, hasMessages, isGone as goneIn, itemsOf, oldestSeq, prependOlder, retry, setCurrent,
  stateEvents, syncStatus,
} from './state.js';

export { currentRoom } from './state.js';

/** Rooms only their members can read (protocol "Private rooms"). */
export const isPrivate = (room) => /^(p_|dm_)/.test(room);

/** 'enter', detail `{ room }`; 'leave'. */
export const roomEvents = new EventTarget();

/** Whether the server said the room shown is not ours to read. */
export const isGone = () => currentRoom !== null && goneIn(currentRoom);

let olderCtrl = null; // ends a history request when the room is left

export function setStatus(state, text, detail = '') {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  ui.status.title = detail;
}

function showStatus() {
  const room = currentRoom;
  if (!room) return;
  if (goneIn(room)) setStatus('gone', 'not found');
  else if (!hasMessages(room)) setStatus('connecting', 'connecting…');
  else setStatus(syncStatus.state, syncStatus.text, syncStatus.detail);
}

/** The heading and the tab's title: `#room`, or what rooms.js calls a private room, whose `userText` is isolated. */
export function setTitle(text, userText = '') {
  ui.title.replaceChildren(text);
  if (userText) ui.title.append(el('bdi', '', userText));
  document.title = `${text}${userText && isolate(userText)} · Chat`;
}

/** The room is not there for us: say so plainly. */
function showGone(room) {
  setStatus('gone', 'not found');
  ui.text.disabled = ui.send.disabled = true;
  const id = myId();
  const again = el('button', 'secondary small', 'Try again');
  again.type = 'button';
  again.addEventListener('click', () => {
    rejoinRoom();
    ui.text.focus(); // the button went with the notice
  });
  const explained = room.startsWith('dm_')
    ? 'This is a direct message: only its two people can open it. To write to someone, use the button by their name on one of their messages.'
    : 'This is a private room: only its members can open it. If it exists, ask a member to invite you'
      + (id ? ` with your id, ${id} (shown under “Your rooms”).` : '.');
  showNotice(el('h2', '', 'Room not found (or you are not a member)'), el('p', '', explained), again);
}

/** The room shown, from scratch: its messages, or why there are none yet. */
function draw() {
  const room = currentRoom;
  if (goneIn(room)) return showGone(room);
  ui.text.disabled = ui.send.disabled = false;
  if (hasMessages(room)) showAll(itemsOf(room));
  else clearMessages();
  showStatus();
}

export function enterRoom(room) {
  leaveRoom();
  olderCtrl = new AbortController();
  // Asked for anew: a room the server refused may be ours by now (invited since).
  retry(room);
  setCurrent(room);
  setTitle(isPrivate(room) ? (room.startsWith('dm_') ? 'Direct message' : 'Private room') : `#${room}`);
  ui.status.hidden = false;
  draw();
  roomEvents.dispatchEvent(new CustomEvent('enter', { detail: { room } }));
}

export function leaveRoom() {
  const was = currentRoom;
  olderCtrl?.abort();
  setCurrent(null);
  clearMessages();
  ui.title.textContent = 'No room yet';
  document.title = 'Chat';
  setStatus('idle', 'not connected');
  ui.status.hidden = true;
  ui.text.disabled = ui.send.disabled = true;
  if (was) roomEvents.dispatchEvent(new CustomEvent('leave', { detail: { room: was } }));
}

/** Asks the server again for the room shown (after "not found": invited since, or "Try again"). */
export function rejoinRoom() {
  if (currentRoom) enterRoom(currentRoom);
}

stateEvents.addEventListener('messages', ({ detail: { room, replaced, added } }) => {
  if (room !== currentRoom) return;
  if (replaced) draw();
  else showNew(added);
  showStatus();
});
stateEvents.addEventListener('gone', ({ detail: { room } }) => {
  if (room === currentRoom) showGone(room);
});
stateEvents.addEventListener('status', showStatus);
stateEvents.addEventListener('reset', () => {
  if (currentRoom) draw();
});

let loadingOlder = false;
ui.older.addEventListener('click', async () => {
  const room = currentRoom;
  const before = oldestSeq(room);
  if (loadingOlder || !before) return;
  loadingOlder = true;
  const { signal } = olderCtrl;
  let label = 'Load older messages';
  ui.older.textContent = 'Loading…';
  try {
    const r = await api(messagesUrl(room, `before=${before}&${bust()}`), { signal });
    // Another room, or a reset while we waited, made this page meaningless.
    if (signal.aborted || r.epoch !== epochOf(room) || !Array.isArray(r.messages)) return;
    const items = prependOlder(room, r.messages, r.more);
    showOlder(items);
    if (!r.more || !items.some((i) => i !== GAP)) {
      // Hiding the focused button would drop keyboard focus to the top of the page.
      if (document.activeElement === ui.older) ui.scroller.focus();
      ui.older.hidden = true;
    }
  } catch {
    label = 'Could not load, try again';
  } finally {
    // Also when the room changed meanwhile: the button must not come back saying "Loading…".
    ui.older.textContent = label;
    loadingOlder = false;
  }
});
