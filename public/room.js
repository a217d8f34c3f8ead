// Following a room: join, then long poll after the cursor, forever, as README.md
// ("A client's loop") describes, until the room is left or turns out to be a private
// room we may not read; and loading older messages on request. One room at a time.

import { ApiError, api, bust, isTransient, messagesUrl, retryDelay, seconds, wait, waitingText } from './http.js';
import { el, isolate, ui } from './ui.js';
import { clearMessages, oldestShown, showMessages, showNotice, showOlder, view } from './messages.js';
import { myId } from './session.js';

const POLL_TIMEOUT_S = 25;
// A poll still unanswered this long after the server's hold ended is stuck behind a
// half-open connection or a buffering proxy; only giving up and reconnecting helps.
const POLL_GRACE_MS = 15_000;
// A poll that brings nothing new normally comes back when its hold runs out: after
// the 25 s we ask for, or sooner where the operator clamps holds to fit a proxy
// (--poll-timeout-max 8, say), so an empty answer after a few seconds is normal
// and must not slow the page down. One within a second was hardly held at all: a
// cache or broken proxy answering for the server, which would have us poll again
// at once, forever. A second is far below any hold worth configuring and far above
// a round trip to such a cache, so it tells the two apart.
const EARLY_ANSWER_MS = 1000;
const EARLY_WAIT_BASE_MS = 1000;
const EARLY_WAIT_CAP_MS = 30_000;

/** Rooms only their members can read (protocol "Private rooms"). */
export const isPrivate = (room) => /^(p_|dm_)/.test(room);

/** 'enter' and 'gone' (not found, or not a member), detail `{ room }`; 'leave'. */
export const roomEvents = new EventTarget();

export function setStatus(state, text, detail = '') {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  ui.status.title = detail;
}

/** Before the next poll, after `run` too-early answers in a row: growing, with jitter. */
function earlyAnswerWait(run) {
  const ms = Math.min(EARLY_WAIT_CAP_MS, EARLY_WAIT_BASE_MS * 2 ** (run - 1));
  // Half of it fixed, so the page never polls in quick succession; half random, so
  // the tabs behind one misbehaving proxy spread out.
  return ms / 2 + Math.random() * (ms / 2);
}

// Each room visit gets a generation; anything answering for an older one is ignored,
// so a late answer can never put the old room's messages into the new room.
let generation = 0;
let roomCtrl = null;
export let currentRoom = null;
let roomGone = false; // the server said not found: no more polls until the room is entered again
export const isGone = () => roomGone;

async function follow(room, gen, signal) {
  let cursor = null; // null: join (no `after`), which answers the room's tail at once
  let failures = 0;
  let earlyRun = 0; // answers in a row that came back too soon with nothing new
  while (gen === generation) {
    try {
      const query = cursor
        ? `after=${cursor.last}&epoch=${encodeURIComponent(cursor.epoch)}&timeout=${POLL_TIMEOUT_S}&${bust()}`
        : bust();
      const asked = performance.now();
      const r = await api(messagesUrl(room, query),
        cursor ? { signal, timeoutMs: POLL_TIMEOUT_S * 1000 + POLL_GRACE_MS } : { signal });
      if (gen !== generation) return;
      if (!Array.isArray(r.messages) || typeof r.epoch !== 'string' || !Number.isSafeInteger(r.last)) {
        throw new ApiError(0, 'unexpected answer');
      }
      // An epoch we do not know is a reset even if the flag is missing.
      const replace = !cursor || r.reset === true || r.epoch !== view.epoch;
      const shown = showMessages(r, replace);
      const nothingNew = !replace && !r.gap && shown === 0 && r.last === cursor.last;
      earlyRun = nothingNew && performance.now() - asked < EARLY_ANSWER_MS ? earlyRun + 1 : 0;
      cursor = { epoch: r.epoch, last: r.last };
      failures = 0;
      // `more` needs no branch: the next poll goes out at once anyway and is answered at once.
      const ms = earlyRun ? earlyAnswerWait(earlyRun) : 0;
      // One early answer happens (a server answers its polls at once as it shuts down);
      // only a run of them is worth a word.
      if (earlyRun > 1) {
        setStatus('early', 'answers too soon',
          `Answers come back too soon with nothing new: a proxy may be caching them. Polling again in ${seconds(ms)} s.`);
      } else {
        setStatus('live', 'live');
      }
      if (ms) await wait(ms, signal);
    } catch (err) {
      if (gen !== generation) return;
      // The server says the same for a private room that does not exist and for one we are
      // not (or no longer) a member of; asking again will not change that.
      if (err.status === 404 && err.code === 'not_found' && isPrivate(room)) return showGone(room);
      // A rejected cursor (400 and the like) will not get better by resending it: rejoin.
      if (!isTransient(err)) cursor = null;
      const ms = retryDelay(err, failures++);
      setStatus('retrying', waitingText(err, ms, 'reconnecting'), err.message);
      await wait(ms, signal, err.status === 0);
      if (gen !== generation) return;
      setStatus('retrying', 'reconnecting…');
    }
  }
}

/** The heading and the tab's title: `#room`, or what rooms.js calls a private room, whose `userText` is isolated. */
export function setTitle(text, userText = '') {
  ui.title.replaceChildren(text);
  if (userText) ui.title.append(el('bdi', '', userText));
  document.title = `${text}${userText && isolate(userText)} · Chat`;
}

/** The room is not there for us: say so plainly, and stop following it. */
export function showGone(room) {
  if (room !== currentRoom || roomGone) return;
  roomGone = true;
  generation++;
  roomCtrl?.abort();
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
  roomEvents.dispatchEvent(new CustomEvent('gone', { detail: { room } }));
}

export function enterRoom(room) {
  leaveRoom();
  currentRoom = room;
  roomCtrl = new AbortController();
  setTitle(isPrivate(room) ? (room.startsWith('dm_') ? 'Direct message' : 'Private room') : `#${room}`);
  ui.status.hidden = false;
  ui.text.disabled = ui.send.disabled = false;
  setStatus('connecting', 'connecting…');
  follow(room, generation, roomCtrl.signal);
  roomEvents.dispatchEvent(new CustomEvent('enter', { detail: { room } }));
}

export function leaveRoom() {
  const was = currentRoom;
  generation++;
  roomCtrl?.abort();
  currentRoom = null;
  roomGone = false;
  clearMessages();
  ui.title.textContent = 'No room yet';
  document.title = 'Chat';
  setStatus('idle', 'not connected');
  ui.status.hidden = true;
  ui.text.disabled = ui.send.disabled = true;
  if (was) roomEvents.dispatchEvent(new CustomEvent('leave', { detail: { room: was } }));
}

/** Follows the room again from its tail (after the session changed, say). */
export function rejoinRoom() {
  if (currentRoom) enterRoom(currentRoom);
}

let loadingOlder = false;
ui.older.addEventListener('click', async () => {
  const before = oldestShown();
  if (loadingOlder || !before) return;
  loadingOlder = true;
  const gen = generation;
  let label = 'Load older messages';
  ui.older.textContent = 'Loading…';
  try {
    const r = await api(messagesUrl(currentRoom, `before=${before}&${bust()}`), { signal: roomCtrl.signal });
    // A reset while we waited made this page meaningless.
    if (gen !== generation || r.epoch !== view.epoch) return;
    if (showOlder(r) === 0 || !r.more) {
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
