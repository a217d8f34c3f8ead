// Who this browser is to the server: a guest session (POST /api/sessions) whose
// token is kept in localStorage, handed to http.js for every request, refreshed
// once less than half of its lifetime is left (on load, on a timer, and when the
// tab comes back), and replaced by a new guest session, with a word to the user,
// when it has expired or the server no longer takes it. No UI here: identity.js
// shows who you are and tells of a new guest.

import { api, isTransient, onInvalidToken, setToken } from './http.js';

const SESSION_KEY = 'chat.session';
const RETRY_MAX_MS = 60_000; // a refresh that failed goes again after this, or sooner near the end
const TIMER_MAX_MS = 2 ** 31 - 1; // setTimeout's limit

/**
 * 'change' events, detail `{ reason }`: 'new' (a name was chosen), 'renamed', 'refreshed',
 * 'expired' or 'rejected' (a new guest: the old id is gone), 'other-tab'.
 */
export const sessionEvents = new EventTarget();

/** `{ token, user: { id, name }, expiresAt, receivedAt, lifetime }`, or null before a name is chosen. */
export let session = null;

export const myId = () => session?.user.id ?? null;

// The token's issue time is the server's clock, as expiresAt is: their difference is the
// lifetime whatever this machine's clock says, and it is counted from our own receivedAt.
function issuedAt(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const iat = JSON.parse(atob(part)).iat;
    return Number.isFinite(iat) ? iat * 1000 : null;
  } catch {
    return null;
  }
}

function valid(s) {
  return s && typeof s.token === 'string' && typeof s.user?.id === 'string' && typeof s.user?.name === 'string'
    && Number.isFinite(s.expiresAt) && Number.isFinite(s.receivedAt) && Number.isFinite(s.lifetime);
}

function fromAnswer(r) {
  const receivedAt = Date.now();
  const iat = typeof r.token === 'string' ? issuedAt(r.token) : null;
  const s = { token: r.token, user: { id: r.user?.id, name: r.user?.name }, expiresAt: r.expiresAt, receivedAt };
  s.lifetime = Math.max(0, r.expiresAt - (iat ?? receivedAt));
  if (!valid(s)) throw new Error('unexpected answer');
  return s;
}

const endsAt = (s) => s.receivedAt + s.lifetime;
// A little early (the request takes time), but not so early that short lifetimes end at once.
const expired = (s) => Date.now() >= endsAt(s) - Math.min(5000, s.lifetime / 10);
const refreshDue = (s) => Date.now() >= s.receivedAt + s.lifetime / 2;

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null');
    return valid(saved) ? saved : null;
  } catch {
    return null; // storage disabled or its content damaged
  }
}

function use(s, reason) {
  session = s;
  setToken(s?.token ?? null);
  try { localStorage.setItem(SESSION_KEY, JSON.stringify(s)); } catch { /* storage disabled: this tab only */ }
  schedule();
  sessionEvents.dispatchEvent(new CustomEvent('change', { detail: { reason } }));
}

// One request about the session at a time: a refresh, a new guest or a name change.
let pending = null;
function once(work) {
  pending ??= work().finally(() => { pending = null; });
  return pending;
}

async function startGuestNow(name, reason) {
  use(fromAnswer(await api('api/sessions', { body: { name }, auth: false })), reason);
}
const startGuest = (name, reason) => once(() => startGuestNow(name, reason));

/** A new token for the same user; an expired or refused one makes a new guest instead. */
function refresh() {
  return once(async () => {
    if (!session) return;
    if (expired(session)) return void await startGuestNow(session.user.name, 'expired');
    try {
      use(fromAnswer(await api('api/sessions/refresh', { body: {}, renew: false })), 'refreshed');
    } catch (err) {
      if (err.code === 'invalid_token') return void await startGuestNow(session.user.name, 'rejected');
      // Refused otherwise (guest sessions turned off): the token lasts until it ends, no sooner.
      if (isTransient(err)) retryLater();
      else schedule(Math.max(1000, endsAt(session) - Date.now()));
      throw err;
    }
  });
}

let timer = null;
function schedule(ms = session ? Math.max(0, session.receivedAt + session.lifetime / 2 - Date.now()) : null) {
  clearTimeout(timer);
  if (ms !== null) timer = setTimeout(() => refresh().catch(() => {}), Math.min(ms, TIMER_MAX_MS));
}

function retryLater() {
  const left = endsAt(session) - Date.now();
  schedule(Math.max(1000, Math.min(RETRY_MAX_MS, left / 4)));
}

/**
 * A usable session named `name`: the one kept if it is still good (refreshed if due),
 * else a new guest. Throws (with the server's message) when none can be had.
 */
export async function ensureSession(name) {
  if (pending) await pending.catch(() => {});
  if (session && session.user.name !== name) return startGuest(name, 'renamed');
  if (!session) return startGuest(name, 'new');
  if (expired(session)) return startGuest(name, 'expired');
  // A failed refresh leaves a token that still works: carry on with it.
  if (refreshDue(session)) await refresh().catch(() => {});
}

// A request found the token invalid (expired while the computer slept, a new server key).
onInvalidToken(async (sent) => {
  if (pending) await pending.catch(() => {});
  if (session?.token !== sent) return; // replaced meanwhile
  await startGuest(session.user.name, expired(session) ? 'expired' : 'rejected');
});

// Timers sleep with the computer and are slowed in background tabs: look again on return.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && session && refreshDue(session)) refresh().catch(() => {});
});

// Another tab refreshed the token or became a new guest: follow it.
addEventListener('storage', (event) => {
  if (event.key !== SESSION_KEY) return;
  const saved = load();
  if (!saved || saved.token === session?.token) return;
  session = saved;
  setToken(saved.token);
  schedule();
  sessionEvents.dispatchEvent(new CustomEvent('change', { detail: { reason: 'other-tab' } }));
});

session = load();
// An expired session is kept (not sent) until ensureSession replaces it, so that the user can be told.
if (session && !expired(session)) {
  setToken(session.token);
  schedule();
}
