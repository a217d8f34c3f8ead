// The chat page, a client of the long poll with no framework and no build step.
// This module chooses who you are and which room you are in (the join form, the
// bar it collapses into, the URL hash). session.js signs you in as a guest; tabs.js
// elects the one tab of the browser that gets every room followed, for all its tabs,
// by a stream (stream.js) or, where streams do not work, the sync poll (sync.js),
// as transport.js decides; state.js keeps what each room has; room.js shows the
// room you are in, messages.js its messages, presence.js who is online and typing;
// send.js posts to it; rooms.js lists your rooms with their unread counts,
// members.js is the room's panel, identity.js shows who you are, drawer.js opens and
// closes the room list, and http.js talks to the server.

import { ui, balancedIsolates } from './ui.js';
import { myName, nameProblem, setMyName } from './name.js';
import { ensureSession, session } from './session.js';
import { currentRoom, enterRoom, leaveRoom } from './room.js';
import { refreshRooms } from './rooms.js';
import { startTabs } from './tabs.js';
import './send.js';
import './presence.js';
import './members.js';
import './identity.js';
import './drawer.js';

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

function fieldError(input, errorEl, message) {
  errorEl.textContent = message;
  errorEl.hidden = !message;
  input.setAttribute('aria-invalid', String(Boolean(message)));
  return !message;
}

/** The display name typed in, or null after showing why it cannot be used. */
function checkedName() {
  const name = ui.name.value.trim();
  return fieldError(ui.name, ui.nameError, nameProblem(name)) ? name : null;
}

function checkRoom(room) {
  return fieldError(ui.room, ui.roomError,
    ROOM_RE.test(room) ? '' : 'Room names are 1–64 letters, digits, “-” or “_”.');
}

/** Brings the form back; `hint` says why it is needed. */
function openForm(hint = '') {
  ui.joinHint.textContent = hint;
  ui.joinHint.hidden = !hint;
  ui.joinForm.hidden = false;
  ui.change.hidden = true;
  ui.me.hidden = !currentRoom;
  // Only while in a room is there something to go back to.
  ui.cancelJoin.hidden = !currentRoom;
}

/** In a room, the form gives its space to the conversation and leaves a bar. */
function closeForm() {
  // Edits never submitted are dropped: reopened, the form shows what is in use.
  ui.name.value = myName;
  ui.room.value = currentRoom;
  fieldError(ui.name, ui.nameError, '');
  fieldError(ui.room, ui.roomError, '');
  ui.joinForm.hidden = ui.joinHint.hidden = true;
  ui.myName.textContent = balancedIsolates(myName);
  ui.me.hidden = ui.change.hidden = false;
}

// Why the last sign-in failed, shown with the form; null once signed in.
let signInFailure = null;
// Where the server gives no guest sessions, the page reads (and posts where anonymous posts are allowed) without.
let guestsOff = false;
const signedIn = () => session !== null || guestsOff;

/** A session for `name` (the one kept, refreshed, or a new guest); false after saying why not. */
async function signIn(name) {
  try {
    await ensureSession(name);
    signInFailure = null;
  } catch (err) {
    guestsOff = err.code === 'guest_sessions_disabled';
    signInFailure = guestsOff ? null : `Could not sign in: ${err.message}. Try again.`;
  }
  // Syncing needs to know whose rooms: the lock and channel of the browser's tabs are per user.
  if (signedIn()) startTabs();
  return signedIn();
}

// A new name cannot be given to the id you have: it makes a new guest.
function nameNote() {
  const renaming = session && ui.name.value.trim() && ui.name.value.trim() !== session.user.name;
  ui.nameNote.hidden = !renaming;
}
ui.name.addEventListener('input', nameNote);

function cancelForm() {
  closeForm();
  ui.change.focus();
}

function roomFromHash() {
  try { return decodeURIComponent(location.hash.slice(1)); } catch { return location.hash.slice(1); }
}

// The hash is the source of truth for the room, so links, reloads and Back all work.
function onHashChange() {
  const room = roomFromHash();
  if (room) ui.room.value = room;
  if (!room || !checkRoom(room)) {
    leaveRoom();
    return openForm();
  }
  if (myName === null) {
    // Joining now would show "live" and a composer that cannot send: ask first.
    leaveRoom();
    return openForm(`Choose a name to join #${room}.`);
  }
  if (!signedIn()) {
    leaveRoom();
    return openForm(signInFailure ?? `Choose a name to join #${room}.`);
  }
  if (room !== currentRoom) enterRoom(room);
  closeForm();
}

ui.joinForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (ui.join.disabled) return;
  const name = checkedName();
  const room = ui.room.value.trim();
  if (!checkRoom(room)) return ui.room.focus();
  if (name === null) return ui.name.focus();
  ui.join.disabled = true;
  ui.join.textContent = 'Signing in…';
  const ok = await signIn(name);
  ui.join.disabled = false;
  ui.join.textContent = 'Join';
  if (!ok) {
    fieldError(ui.name, ui.nameError, signInFailure);
    return ui.name.focus();
  }
  setMyName(name);
  nameNote();
  if (roomFromHash() !== room) location.hash = room;
  // Now rather than on the (later) hashchange event, so the message box is ready to focus.
  onHashChange();
  ui.text.focus();
});

ui.change.addEventListener('click', () => {
  openForm();
  ui.name.focus();
});
ui.cancelJoin.addEventListener('click', cancelForm);
ui.joinForm.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && currentRoom) cancelForm();
});

ui.name.value = myName ?? '';
addEventListener('hashchange', onHashChange);
// A name chosen on an earlier visit: its session, kept or new, before any room is joined.
if (myName !== null) await signIn(myName);
refreshRooms();
onHashChange();
(currentRoom ? ui.text : myName && signedIn() ? ui.room : ui.name).focus();
