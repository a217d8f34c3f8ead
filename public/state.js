// What this tab knows of every room it follows, shown or not: the newest messages
// (gap markers among them), the cursor they end at, who is online and typing, how
// many messages from others came while another room was shown, and whether the
// server said the room is not ours to read. Also the room this tab shows, the rooms
// it wants the sync to carry, and how the sync is doing. No DOM here: room.js,
// rooms.js and presence.js draw what changes, from the events below.
//
// Sync room entries (protocol "One poll for many rooms") are applied here, each
// message at most once. The tab leading the sync (tabs.js) relays every entry with
// the cursor it sent; a tab whose own cursor is behind that one would skip messages
// it never saw, so it takes nothing from such an entry but presence, and tells the
// leader where it stands (applyEntry returns true): the leader asks again from there.

import { isOwn } from './sent.js';

// Kept per room not on screen; the one on screen keeps all it shows until left.
const MAX_KEPT = 300;
// Handed to a tab that opens a room this tab already follows, as a join would.
const SNAPSHOT_MAX = 100;
// The server's default --sync-max-rooms: the rooms one sync may carry.
export const MAX_SYNCED = 100;

/** A marker between messages: those before it are no longer kept by the server. */
export const GAP = Object.freeze({ gap: true });

/**
 * 'messages' `{ room, replaced, added }` (added: the items appended, when not replaced),
 * 'presence', 'unread' and 'gone' `{ room }`; 'wanted' (the rooms to sync changed),
 * 'status' (the sync's health), 'reset' (everything forgotten: a new user).
 */
export const stateEvents = new EventTarget();
const emit = (type, detail) => stateEvents.dispatchEvent(new CustomEvent(type, { detail }));

// room -> { epoch (null until the first answer), last, items, presence, unread, gone }
const rooms = new Map();

function roomOf(name) {
  let s = rooms.get(name);
  if (!s) rooms.set(name, (s = { epoch: null, last: 0, items: [], presence: null, unread: 0, gone: false }));
  return s;
}

/** The room this tab shows, or null. */
export let currentRoom = null;

let followed = []; // rooms.js: visited public rooms, then private rooms and direct messages
let lastWanted = '';

/** The rooms this tab wants synced: the one shown first, then those followed; none the server refused. */
export function wanted() {
  const list = [...new Set([currentRoom, ...followed])].filter((r) => r && !rooms.get(r)?.gone);
  return list.slice(0, MAX_SYNCED);
}

function checkWanted() {
  const now = wanted().join(' ');
  if (now === lastWanted) return;
  lastWanted = now;
  emit('wanted');
}

export function setFollowed(list) {
  // A private room listed again after the server refused it: invited back, so asked for again.
  for (const room of list) if (!followed.includes(room) && rooms.get(room)?.gone) rooms.get(room).gone = false;
  followed = list;
  checkWanted();
}

export function setCurrent(room) {
  if (currentRoom) trim(rooms.get(currentRoom));
  currentRoom = room;
  if (room) markSeen(room);
  checkWanted();
}

/** `{ state, text, detail }` as the leading tab reports it; 'connecting' until its first answer. */
export let syncStatus = { state: 'connecting', text: 'connecting…', detail: '' };
export function setSyncStatus(status) {
  if (status.state === syncStatus.state && status.text === syncStatus.text && status.detail === syncStatus.detail) return;
  syncStatus = status;
  emit('status');
}

export const itemsOf = (room) => rooms.get(room)?.items ?? [];
export const hasMessages = (room) => (rooms.get(room)?.epoch ?? null) !== null;
export const epochOf = (room) => rooms.get(room)?.epoch ?? null;
export const isGone = (room) => rooms.get(room)?.gone === true;
export const unreadOf = (room) => rooms.get(room)?.unread ?? 0;
export const presenceOf = (room) => rooms.get(room)?.presence ?? null;
export const oldestSeq = (room) => itemsOf(room).find((i) => i !== GAP)?.seq ?? 0;

/** `{ after, epoch, state }` as far as this tab has the room, `{}` before its first answer. */
export function cursorOf(room) {
  const s = rooms.get(room);
  if (!s || s.epoch === null) return {};
  return { after: s.last, epoch: s.epoch, ...(s.presence?.state ? { state: s.presence.state } : {}) };
}

export function markSeen(room) {
  const s = rooms.get(room);
  if (!s?.unread) return;
  s.unread = 0;
  emit('unread', { room });
}

/** The room may be readable again (invited, or asked for anew): drop the verdict, so it is synced again. */
export function retry(room) {
  const s = rooms.get(room);
  if (s?.gone) s.gone = false;
  checkWanted();
}

/** A new user: nothing known holds for them. */
export function resetAll() {
  rooms.clear();
  emit('reset');
  checkWanted();
}

function trim(s) {
  if (!s || s.items.length <= MAX_KEPT) return;
  s.items = s.items.slice(-MAX_KEPT);
  while (s.items[0] === GAP) s.items.shift(); // "Load older messages" says as much
}

const isUser = (u) => u && typeof u.id === 'string' && typeof u.name === 'string';
const users = (list) => (Array.isArray(list) ? list.filter(isUser) : []);

function applyPresence(room, s, entry) {
  if (!('state' in entry || 'online' in entry || 'typing' in entry)) return;
  const online = users(entry.online);
  s.presence = {
    state: typeof entry.state === 'string' ? entry.state : undefined,
    online,
    onlineCount: Number.isSafeInteger(entry.onlineCount) ? Math.max(entry.onlineCount, online.length) : online.length,
    typing: users(entry.typing),
  };
  emit('presence', { room });
}

function replace(room, s, epoch, last, items) {
  const wasGone = s.gone;
  Object.assign(s, { epoch, last, items, gone: false });
  emit('messages', { room, replaced: true });
  if (wasGone) checkWanted();
}

function markGone(room, s) {
  Object.assign(s, { epoch: null, last: 0, items: [], presence: null, unread: 0, gone: true });
  emit('gone', { room });
  checkWanted();
}

/**
 * Applies one room's sync entry; `sentAfter` is the `after` the sync sent for it
 * (undefined for a join). True when the entry starts past what this tab has, so
 * that the leader must be told this tab's cursor.
 */
export function applyEntry(room, entry, sentAfter) {
  const s = roomOf(room);
  if (entry.error) {
    // not_found, the one error of a room in a sync: the server says the same for a private
    // room that does not exist and for one we are not (or no longer) a member of.
    // Asking again will not change that.
    if (!s.gone) markGone(room, s);
    return false;
  }
  applyPresence(room, s, entry);
  const joined = sentAfter === undefined;
  // A join (or a reset) is the room's tail: a view of its own. Anything else needs a cursor to go on from.
  if (s.epoch === null) {
    if (!joined && !entry.reset) return true;
    replace(room, s, entry.epoch, entry.last, [...entry.messages]);
    return false;
  }
  // An epoch we do not know is a reset even if the flag is missing.
  if (entry.reset || entry.epoch !== s.epoch) {
    replace(room, s, entry.epoch, entry.last, [...entry.messages]);
    return false;
  }
  const from = joined ? (entry.messages.length ? entry.messages[0].seq - 1 : entry.last) : sentAfter;
  if (from > s.last) return true;
  const fresh = entry.messages.filter((m) => m.seq > s.last);
  const added = entry.gap && (fresh.length ? fresh[0].seq > s.last + 1 : entry.last > s.last) ? [GAP, ...fresh] : fresh;
  s.last = Math.max(s.last, entry.last);
  if (!added.length) return false;
  s.items.push(...added);
  if (room !== currentRoom) {
    trim(s);
    const fromOthers = fresh.filter((m) => !isOwn(m)).length;
    if (fromOthers) {
      s.unread += fromOthers;
      emit('unread', { room });
    }
  }
  emit('messages', { room, replaced: false, added });
  return false;
}

/** What a tab opening `room` needs to show it at once, or null when this tab has nothing of it. */
export function snapshotOf(room) {
  const s = rooms.get(room);
  if (!s || s.epoch === null) return null;
  const items = s.items.slice(-SNAPSHOT_MAX);
  while (items[0] === GAP) items.shift();
  return { epoch: s.epoch, last: s.last, messages: items.map((i) => (i === GAP ? null : i)), presence: s.presence };
}

/** Takes another tab's snapshot of `room`, unless this tab has come further meanwhile. */
export function applySnapshot(room, snap) {
  const s = roomOf(room);
  if (s.epoch !== null && snap.epoch === s.epoch && snap.last < s.last) return;
  // Taken after every entry that reached this tab before it: the newest lists there are.
  if (snap.presence) {
    s.presence = snap.presence;
    emit('presence', { room });
  }
  replace(room, s, snap.epoch, snap.last, snap.messages.map((m) => m ?? GAP));
}

/**
 * History from GET …/messages?before=: the messages older than those kept, and a
 * gap marker first when the server keeps nothing older. Returns what was put in front.
 */
export function prependOlder(room, messages, more) {
  const s = rooms.get(room);
  if (!s) return [];
  const oldest = oldestSeq(room);
  const older = messages.filter((m) => !oldest || m.seq < oldest);
  const first = older[0]?.seq ?? oldest;
  const items = !more && first > 1 ? [GAP, ...older] : older;
  s.items.unshift(...items);
  return items;
}
