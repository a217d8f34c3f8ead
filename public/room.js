// Following a room: join, then long poll after the cursor, forever, as README.md
// ("A client's loop") describes; and loading older messages on request.

import { ApiError, api, bust, isTransient, messagesUrl, retryDelay, seconds, wait, waitingText } from './http.js';
import { ui } from './ui.js';
import { clearMessages, oldestShown, showMessages, showOlder, view } from './messages.js';

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

export function enterRoom(room) {
  leaveRoom();
  currentRoom = room;
  roomCtrl = new AbortController();
  ui.title.textContent = `#${room}`;
  document.title = `#${room} · Chat`;
  ui.status.hidden = false;
  ui.text.disabled = ui.send.disabled = false;
  setStatus('connecting', 'connecting…');
  follow(room, generation, roomCtrl.signal);
}

export function leaveRoom() {
  generation++;
  roomCtrl?.abort();
  currentRoom = null;
  clearMessages();
  ui.title.textContent = 'No room yet';
  document.title = 'Chat';
  setStatus('idle', 'not connected');
  ui.status.hidden = true;
  ui.text.disabled = ui.send.disabled = true;
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
