// One sync per browser, however many tabs show the page: browsers open at most six
// connections to a host, so six tabs each holding a long poll would stall them all.
//
// The scheme: a Web Lock per signed-in user ('chat-sync:<user id>') elects the tab
// that leads, and a BroadcastChannel of the same name carries everything else.
// Chosen because the browser itself releases the lock when its tab closes or
// crashes, so the next tab waiting for it takes over at once, with no timeout to
// guess; and both are shared by every tab of the origin without a server round trip
// or a SharedWorker (missing on Chrome for Android). Electing a leader through
// localStorage would need timeouts for everything.
//
// The leader runs transport.js (a stream, or sync.js's poll where streams do not
// work) for the union of the rooms all tabs want and relays each answer's room
// entries, with the cursors it sent, to every tab; each tab applies
// them to its own state.js, which skips what the tab already shows. A tab tells the
// leader which rooms it wants and how far it has them ('want'). One it lacks, the
// leader hands over from its own state ('snapshot'), or joins on the server when it
// lacks it too. The leader syncs each room from the lowest cursor any tab reports:
// a new leader, or a tab that fell behind, loses nothing, and the others drop what
// they already have.
//
// A leader that hangs or is frozen keeps its lock. So it beats every HEARTBEAT_MS; a
// follower that hears nothing for LEADER_SILENT_MS asks ('ping'), and with still no
// word takes the lock with { steal: true }. The old leader's held sync is superseded
// on the server (same client id); when it wakes, its lock request has failed and it
// follows. (A stream has no client id to supersede: the old leader's stream lasts until
// it wakes and stops it, or the server ends it.) Where navigator.locks or
// BroadcastChannel is missing, every tab syncs for itself, under a client id of its
// own so that the tabs do not supersede each other.
// document.documentElement.dataset.syncRole says which: leader, follower or alone;
// dataset.transport how the leader gets the news (transport.js), in every tab.

import { startTransport } from './transport.js';
import {
  MAX_SYNCED, applyEntry, applySnapshot, currentRoom, cursorOf, resetAll, setSyncStatus, snapshotOf,
  stateEvents, syncStatus, wanted,
} from './state.js';
import { myId, sessionEvents } from './session.js';

const HEARTBEAT_MS = 2000;
const LEADER_SILENT_MS = 6000;
const PING_WAIT_MS = 1000;
const CLIENT_KEY = 'chat.client';

const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
const coordinated = typeof BroadcastChannel === 'function' && typeof navigator.locks?.request === 'function';

/** The browser's id as the server's supersede rule knows it: the same for every tab and leader. */
function browserClientId() {
  try {
    let id = localStorage.getItem(CLIENT_KEY);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id ?? '')) localStorage.setItem(CLIENT_KEY, (id = `b_${randomId()}`));
    return id;
  } catch {
    return `t_${randomId()}`; // storage disabled: the lock still keeps to one leader at a time
  }
}

const tabId = randomId();
let key = null; // the lock's and the channel's name: one per user
let channel = null;
let queued = null; // aborts this tab's lock request while it waits
let leading = null; // while this tab leads: its sync, and what it knows of every tab
let lastHeard = 0; // when the leader last said anything
let pinging = false;

const setRole = (role) => { document.documentElement.dataset.syncRole = role; };
/** The leader's status, in this tab: with the transport it uses (transport.js). */
function showStatus(status) {
  if (status.transport) document.documentElement.dataset.transport = status.transport;
  setSyncStatus(status);
}
const post = (msg) => channel?.postMessage({ ...msg, from: tabId });

/** Starts coordinating this tab (app.js, once signed in); for another user, starts over. */
export function startTabs() {
  const next = `chat-sync:${myId() ?? ''}`;
  if (next === key) return;
  const before = key;
  stop();
  key = next;
  // Private rooms, own messages, presence: nothing known holds for another user.
  if (before !== null) resetAll();
  if (!coordinated) return void lead('alone');
  channel = new BroadcastChannel(key);
  channel.onmessage = ({ data }) => onMessage(data);
  follow();
}

function stop() {
  stopLeading();
  queued?.abort();
  channel?.close();
  channel = null;
  key = null;
}

function follow() {
  setRole('follower');
  lastHeard = performance.now();
  requestLock(false);
  announce();
}

function requestLock(steal) {
  const name = key;
  const ctrl = steal ? null : new AbortController();
  queued = ctrl;
  let ours = null;
  navigator.locks.request(name, steal ? { steal: true } : { signal: ctrl.signal }, () => {
    if (name !== key) return undefined; // another user meanwhile: let it go at once
    if (queued === ctrl) queued = null;
    return new Promise((release) => { ours = lead('leader', release); });
  }).catch(() => {
    // Either a waiting request aborted (by this tab, to steal or for another user), which
    // needs nothing, or the lock we held was stolen by a tab that found us unresponsive.
    if (!ours || leading !== ours) return;
    stopLeading();
    follow();
  });
}

function lead(role, release = () => {}) {
  setRole(role);
  const L = { wants: new Map(), cursors: new Map(), synced: '', dirty: false, release, beat: null };
  leading = L;
  L.sync = startTransport({
    client: role === 'alone' ? `t_${randomId()}` : browserClientId(),
    rooms: () => syncRooms(L),
    onAnswer: (entries, sent) => onAnswer(L, entries, sent),
    onStatus: (status) => {
      showStatus(status);
      post({ type: 'status', status });
    },
    // Joins instead: the tabs' own cursors may be the ones refused.
    onRefused: () => unionOf(L).forEach((room) => L.cursors.set(room, {})),
  });
  if (channel) L.beat = setInterval(() => post({ type: 'beat', status: syncStatus }), HEARTBEAT_MS);
  post({ type: 'hello' });
  announce();
  return L;
}

function stopLeading() {
  if (!leading) return;
  leading.sync.stop();
  clearInterval(leading.beat);
  leading.release();
  leading = null;
}

let announcing = false;
/** Tells the leader (this tab's own, or by the channel) what this tab wants now; once per turn. */
function announce() {
  if (announcing || key === null) return;
  announcing = true;
  queueMicrotask(() => {
    announcing = false;
    const rooms = wanted();
    const want = {
      rooms: rooms.map((room) => {
        const { after, epoch } = cursorOf(room);
        return { room, after, epoch };
      }),
      shown: rooms[0] === currentRoom ? currentRoom : null,
    };
    if (leading) onWant(leading, tabId, want);
    else post({ type: 'want', want });
  });
}

/** A tab's want, on the leader: snapshots for what it lacks, and the lowest cursor for each room. */
function onWant(L, tab, want) {
  L.wants.set(tab, want);
  const snapshots = {};
  for (const { room, after, epoch } of want.rooms) {
    // Nothing told yet: as far as this tab has it ({} when it has nothing).
    const c = L.cursors.get(room) ?? cursorOf(room);
    if (after === undefined) {
      const snap = tab !== tabId && snapshotOf(room);
      if (snap) snapshots[room] = snap;
      else if (c.after !== undefined) rewind(L, room, { state: c.state }); // nobody has it: the room's tail, for all
    } else if (c.after === undefined ? !L.cursors.has(room) : c.epoch === epoch && after < c.after) {
      rewind(L, room, { after, epoch, state: c.state });
    }
  }
  if (tab !== tabId) post({ type: 'snapshot', to: tab, rooms: snapshots, status: syncStatus });
  resync(L);
}

function rewind(L, room, cursor) {
  L.cursors.set(room, cursor);
  L.dirty = true;
}

/** Every tab's shown room first, then all they follow; at most what one sync may carry. */
function unionOf(L) {
  const wants = [...L.wants.values()];
  const rooms = [...wants.map((w) => w.shown).filter(Boolean), ...wants.flatMap((w) => w.rooms.map((r) => r.room))];
  return [...new Set(rooms)].slice(0, MAX_SYNCED);
}

const bodyOf = (c) => ({
  ...(c.after !== undefined ? { after: c.after, epoch: c.epoch } : {}),
  ...(c.state ? { state: c.state } : {}),
});

function syncRooms(L) {
  const rooms = unionOf(L);
  L.synced = rooms.join(' ');
  L.dirty = false;
  return rooms.map((room) => [room, bodyOf(L.cursors.get(room) ?? cursorOf(room))]);
}

/** A new sync at once when the rooms or a cursor changed (after this turn's other wants). */
function resync(L) {
  queueMicrotask(() => {
    if (leading !== L || (!L.dirty && unionOf(L).join(' ') === L.synced)) return;
    L.sync.restart();
  });
}

function onAnswer(L, entries, sent) {
  const after = {};
  for (const [room, entry] of Object.entries(entries)) {
    after[room] = sent[room].after ?? null;
    if (entry.error) {
      // Off every tab's list until one asks for it again.
      L.cursors.delete(room);
      for (const want of L.wants.values()) {
        want.rooms = want.rooms.filter((r) => r.room !== room);
        if (want.shown === room) want.shown = null;
      }
    } else {
      L.cursors.set(room, { after: entry.last, epoch: entry.epoch, state: entry.state ?? sent[room].state });
    }
  }
  post({ type: 'entries', rooms: entries, after });
  applyAll(entries, after);
}

function applyAll(entries, after) {
  const mine = new Set(wanted());
  let behind = false;
  for (const [room, entry] of Object.entries(entries)) {
    // Behind in a room this tab does not follow (another tab's) is nothing to tell.
    if (applyEntry(room, entry, after[room] ?? undefined) && mine.has(room)) behind = true;
  }
  if (behind) announce();
}

function onMessage(msg) {
  if (!msg || msg.from === tabId) return;
  if (['hello', 'beat', 'status', 'entries', 'snapshot', 'pong'].includes(msg.type)) lastHeard = performance.now();
  switch (msg.type) {
    case 'hello': // a new leader knows nothing of this tab
      return announce();
    case 'beat':
    case 'status':
      if (!leading) showStatus(msg.status);
      return;
    case 'entries':
      return applyAll(msg.rooms, msg.after);
    case 'snapshot':
      if (msg.to !== tabId) return;
      for (const [room, snap] of Object.entries(msg.rooms)) applySnapshot(room, snap);
      return showStatus(msg.status);
    case 'want':
      return leading && onWant(leading, msg.from, msg.want);
    case 'bye':
      if (!leading) return;
      leading.wants.delete(msg.from);
      return resync(leading);
    case 'ping':
      return leading && post({ type: 'pong' });
  }
}

// A leader silent too long: ask, and take its place if it still says nothing. Its beats
// may just be slowed down (browsers run timers of hidden tabs once a minute), but a
// message it receives wakes it at once: only a leader silent since the ping is gone.
setInterval(() => {
  if (!channel || leading || pinging || performance.now() - lastHeard < LEADER_SILENT_MS) return;
  pinging = true;
  const pingedAt = performance.now();
  post({ type: 'ping' });
  // Random, so that of the tabs that noticed together one goes first and the others hear its hello.
  setTimeout(() => {
    pinging = false;
    if (!channel || leading || lastHeard > pingedAt) return;
    setSyncStatus({ state: 'retrying', text: 'reconnecting…', detail: 'The tab that synced for this browser stopped answering.' });
    queued?.abort();
    requestLock(true);
  }, PING_WAIT_MS * (1 + Math.random()));
}, 1000);

stateEvents.addEventListener('wanted', announce);
sessionEvents.addEventListener('change', () => {
  if (key !== null) startTabs();
});
// Leaving: out of the leader's union; and, leading, stopped before the page's requests
// are cut, so that their failure is not told to the other tabs as the sync's.
let stoppedOnHide = false;
addEventListener('pagehide', () => {
  post({ type: 'bye' });
  stoppedOnHide = key !== null;
  stop();
});
// Back from the back-forward cache: as if loaded again, with what the page had.
addEventListener('pageshow', (event) => {
  if (event.persisted && stoppedOnHide) startTabs();
  stoppedOnHide = false;
});
