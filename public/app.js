// The chat page: a client of the long poll exactly as PROTOCOL.md ("A client's loop") describes.

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const POLL_TIMEOUT_S = 25;
// A poll still unanswered this long after the server's hold ended is stuck behind a
// half-open connection or a buffering proxy; only giving up and reconnecting helps.
const POLL_GRACE_MS = 15_000;
const REQUEST_TIMEOUT_MS = 15_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const NAME_KEY = 'chat.name';

const $ = (id) => document.getElementById(id);
const ui = {
  joinForm: $('join-form'), name: $('name'), nameError: $('name-error'),
  room: $('room'), roomError: $('room-error'),
  title: $('room-title'), status: $('status'),
  scroller: $('scroller'), older: $('older'), messages: $('messages'),
  sendForm: $('send-form'), text: $('text'), send: $('send'), sendStatus: $('send-status'), cancel: $('cancel'),
};

// ---- HTTP --------------------------------------------------------------------

class ApiError extends Error {
  /** status 0 means no usable HTTP answer (network error, timeout, not JSON). */
  constructor(status, message, retryAfterMs = null) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

let requestCounter = 0;
// The server ignores unknown parameters; this defeats caches that ignore no-store.
const bust = () => `t=${++requestCounter}`;
// Relative, so the page also works where the chat router is mounted under a path.
const messagesUrl = (room, query = '') => `api/rooms/${room}/messages${query && '?' + query}`;

async function api(url, { signal, body, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  // A controller per request, so a timeout aborts this request only, while the
  // caller's signal (room switch, cancel) still reaches it.
  const ctrl = new AbortController();
  const abort = () => ctrl.abort();
  signal?.addEventListener('abort', abort);
  const timer = setTimeout(abort, timeoutMs);
  try {
    const res = await fetch(url, {
      method: body ? 'POST' : 'GET',
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body && JSON.stringify(body),
      cache: 'no-store',
      signal: ctrl.signal,
    });
    const data = await res.json().catch(() => null);
    if (res.ok && data && typeof data === 'object') return data;
    // A proxy's HTML error page has no JSON error; say what we know.
    const message = data?.error?.message ?? (res.ok ? 'unexpected answer' : `HTTP ${res.status}`);
    throw new ApiError(res.ok ? 0 : res.status, message, retryAfterMs(res));
  } catch (err) {
    if (err instanceof ApiError || signal?.aborted) throw err;
    throw new ApiError(0, navigator.onLine ? 'network error' : 'offline');
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  }
}

function retryAfterMs(res) {
  const value = res.headers.get('retry-after');
  if (value === null) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const when = Date.parse(value); // the HTTP-date form
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

// 408 comes from proxies that gave up on a slow request; retrying is right.
const isTransient = (err) => err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;

function retryDelay(err, attempt) {
  if ((err.status === 429 || err.status === 503) && err.retryAfterMs !== null) {
    // Up to a second more, so clients sent away together do not all return together.
    return err.retryAfterMs + Math.random() * 1000;
  }
  // Full jitter: after a restart, every cut-off client comes back at a different moment.
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/** Sleep ms; ends early on abort, and on the network coming back when that is what we wait for. */
function wait(ms, signal, untilOnline) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      removeEventListener('online', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (untilOnline) addEventListener('online', done);
    signal?.addEventListener('abort', done);
  });
}

function waitingText(err, ms, what) {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (err.status === 429 || err.status === 503) return `server busy, ${what} in ${s} s`;
  if (!navigator.onLine) return `offline, ${what} in ${s} s`;
  return `${what} in ${s} s`;
}

// ---- Rendering -----------------------------------------------------------------

// The epoch and last seq of what is on screen: a message at or below `last` in
// the same epoch is already shown and is dropped.
const view = { epoch: null, last: 0 };
let lastSentId = null;

const pad = (n) => String(n).padStart(2, '0');

// User data goes in only through textContent: never markup.
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderMessage(m) {
  const node = el('div', m.author === ui.name.value.trim() ? 'msg mine' : 'msg');
  node.dataset.seq = String(m.seq);
  const meta = node.appendChild(el('div', 'meta'));
  meta.append(el('span', 'author', m.author), ' ');
  const when = new Date(m.ts);
  if (!Number.isNaN(when.getTime())) {
    const time = meta.appendChild(el('time', '', `${pad(when.getHours())}:${pad(when.getMinutes())}`));
    time.dateTime = when.toISOString();
    time.title = when.toLocaleString();
  }
  node.append(el('div', 'text', m.text));
  return node;
}

const gapMarker = () => el('div', 'gap', 'Some earlier messages are no longer available.');
const oldestShown = () => Number(ui.messages.querySelector('.msg')?.dataset.seq ?? 0);
const nearBottom = () => ui.scroller.scrollHeight - ui.scroller.scrollTop - ui.scroller.clientHeight < 48;
const scrollToBottom = () => { ui.scroller.scrollTop = ui.scroller.scrollHeight; };

function showMessages(r, replace) {
  const stick = replace || nearBottom();
  if (replace) {
    ui.messages.replaceChildren();
    view.epoch = r.epoch;
    view.last = 0;
  }
  const fresh = r.messages.filter((m) => m.seq > view.last);
  const batch = document.createDocumentFragment();
  if (r.gap && !replace) batch.append(gapMarker());
  for (const m of fresh) batch.append(renderMessage(m));
  ui.messages.append(batch);
  if (fresh.length) view.last = fresh[fresh.length - 1].seq;
  if (replace) ui.older.hidden = oldestShown() <= 1;
  // Follow the conversation unless the reader scrolled up; always show one's own message.
  if (stick || fresh.some((m) => m.clientMsgId && m.clientMsgId === lastSentId)) scrollToBottom();
}

function setStatus(state, text, detail = '') {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  ui.status.title = detail;
}

// ---- Following a room ----------------------------------------------------------

// Each room visit gets a generation; anything answering for an older one is ignored,
// so a late answer can never put the old room's messages into the new room.
let generation = 0;
let roomCtrl = null;
let currentRoom = null;

async function follow(room, gen, signal) {
  let cursor = null; // null: join (no `after`), which answers the room's tail at once
  let failures = 0;
  while (gen === generation) {
    try {
      const query = cursor
        ? `after=${cursor.last}&epoch=${encodeURIComponent(cursor.epoch)}&timeout=${POLL_TIMEOUT_S}&${bust()}`
        : bust();
      const r = await api(messagesUrl(room, query), {
        signal,
        timeoutMs: cursor ? POLL_TIMEOUT_S * 1000 + POLL_GRACE_MS : REQUEST_TIMEOUT_MS,
      });
      if (gen !== generation) return;
      if (!Array.isArray(r.messages) || typeof r.epoch !== 'string' || !Number.isSafeInteger(r.last)) {
        throw new ApiError(0, 'unexpected answer');
      }
      // An epoch we do not know is a reset even if the flag is missing.
      showMessages(r, !cursor || r.reset === true || r.epoch !== view.epoch);
      cursor = { epoch: r.epoch, last: r.last };
      failures = 0;
      setStatus('live', 'live');
      // `more` needs no branch: the next poll goes out at once anyway and is answered at once.
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

function enterRoom(room) {
  leaveRoom();
  currentRoom = room;
  roomCtrl = new AbortController();
  ui.room.value = room;
  ui.title.textContent = `#${room}`;
  document.title = `#${room} · Chat`;
  ui.status.hidden = false;
  ui.text.disabled = ui.send.disabled = false;
  setStatus('connecting', 'connecting…');
  follow(room, generation, roomCtrl.signal);
}

function leaveRoom() {
  generation++;
  roomCtrl?.abort();
  currentRoom = null;
  view.epoch = null;
  view.last = 0;
  ui.messages.replaceChildren();
  ui.older.hidden = true;
  ui.title.textContent = 'No room yet';
  document.title = 'Chat';
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
    const older = r.messages.filter((m) => m.seq < oldestShown());
    // Keep what the reader is looking at in place while content grows above it.
    const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
    ui.messages.prepend(...older.map(renderMessage));
    if (!r.more && oldestShown() > 1) ui.messages.prepend(gapMarker());
    ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
    if (!r.more || older.length === 0) {
      // Hiding the focused button would drop keyboard focus to the top of the page.
      if (document.activeElement === ui.older) ui.scroller.focus();
      ui.older.hidden = true;
    }
    label = 'Load older messages';
  } catch {
    label = 'Could not load, try again';
  } finally {
    // Also when the room changed meanwhile: the button must not come back saying "Loading…".
    ui.older.textContent = label;
    loadingOlder = false;
  }
});

// ---- Choosing name and room ----------------------------------------------------

function fieldError(input, errorEl, message) {
  errorEl.textContent = message;
  errorEl.hidden = !message;
  input.setAttribute('aria-invalid', String(Boolean(message)));
  return !message;
}

/** The display name, or null after showing why it cannot be used. */
function checkedName() {
  const name = ui.name.value.trim();
  const length = [...name].length; // the server counts code points
  const problem = !name ? 'Pick a display name.'
    : length > 64 ? 'At most 64 characters.'
    : CONTROL_RE.test(name) ? 'No control characters.'
    : '';
  return fieldError(ui.name, ui.nameError, problem) ? name : null;
}

function checkRoom(room) {
  return fieldError(ui.room, ui.roomError,
    ROOM_RE.test(room) ? '' : 'Room names are 1–64 letters, digits, “-” or “_”.');
}

function saveName(name) {
  try { localStorage.setItem(NAME_KEY, name); } catch { /* storage disabled: just do not remember */ }
}

function roomFromHash() {
  try { return decodeURIComponent(location.hash.slice(1)); } catch { return location.hash.slice(1); }
}

// The hash is the source of truth for the room, so links, reloads and Back all work.
function onHashChange() {
  const room = roomFromHash();
  if (!room) return leaveRoom();
  ui.room.value = room;
  if (!checkRoom(room)) return leaveRoom();
  if (room !== currentRoom) enterRoom(room);
}

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = checkedName();
  const room = ui.room.value.trim();
  if (!checkRoom(room)) return ui.room.focus();
  if (name === null) return ui.name.focus();
  saveName(name);
  if (roomFromHash() !== room) location.hash = room;
  // Now rather than on the (later) hashchange event, so the message box is ready to focus.
  onHashChange();
  ui.text.focus();
});

ui.name.addEventListener('change', () => {
  const name = checkedName();
  if (name !== null) saveName(name);
});

// ---- Sending -------------------------------------------------------------------

// getRandomValues, unlike randomUUID, also works on plain-http pages.
const newClientMsgId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

// A send that failed or was cancelled may still have been stored (only its answer
// lost); sending the same text again reuses its id so the server can drop the copy.
let unsent = null; // { room, text, clientMsgId }
let sendCtrl = null;

function setSendStatus(state, text) {
  ui.sendStatus.dataset.state = state;
  ui.sendStatus.textContent = text;
  ui.cancel.hidden = state !== 'pending';
}

ui.cancel.addEventListener('click', () => sendCtrl?.abort());

async function send() {
  const text = ui.text.value;
  if (sendCtrl || !currentRoom || !text.trim()) return;
  const author = checkedName();
  if (author === null) return ui.name.focus();
  const room = currentRoom;
  const clientMsgId = unsent && unsent.room === room && unsent.text === text ? unsent.clientMsgId : newClientMsgId();
  unsent = { room, text, clientMsgId };
  lastSentId = clientMsgId;
  sendCtrl = new AbortController();
  const { signal } = sendCtrl;
  // The text stays, read-only, until the server has it: nothing typed is lost on failure.
  ui.text.readOnly = true;
  setSendStatus('pending', 'Sending…');
  for (let attempt = 0; ; attempt++) {
    try {
      // Not added to the list from this answer: it arrives through the poll, in the room's order.
      await api(messagesUrl(room), { body: { text, author, clientMsgId }, signal });
      unsent = null;
      ui.text.value = '';
      setSendStatus('', '');
      break;
    } catch (err) {
      if (signal.aborted) { setSendStatus('failed', 'Not sent (cancelled).'); break; }
      if (!isTransient(err)) { setSendStatus('failed', `Not sent: ${err.message}`); break; }
      const ms = retryDelay(err, attempt);
      setSendStatus('pending', `Not sent yet: ${waitingText(err, ms, 'retrying')}.`);
      await wait(ms, signal, err.status === 0);
      if (signal.aborted) { setSendStatus('failed', 'Not sent (cancelled).'); break; }
      setSendStatus('pending', 'Sending…');
    }
  }
  sendCtrl = null;
  ui.text.readOnly = false;
  if (document.activeElement === document.body) ui.text.focus(); // the Cancel button went away
}

ui.sendForm.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});

ui.text.addEventListener('keydown', (event) => {
  // While an IME is composing, Enter picks a candidate; it must not send.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.sendForm.requestSubmit();
  }
});

// ---- Start ---------------------------------------------------------------------

try { ui.name.value = localStorage.getItem(NAME_KEY) ?? ''; } catch { /* storage disabled */ }
addEventListener('hashchange', onHashChange);
onHashChange();
(ui.name.value ? (currentRoom ? ui.text : ui.room) : ui.name).focus();
