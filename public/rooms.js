// The user's rooms, listed in the drawer with their unread counts: the public rooms
// they visited (kept in localStorage, shared by the tabs), and their private rooms
// and direct messages as the server lists them (GET /api/rooms: on load, on
// entering a room, every 30 s, and when the session changes). These are the rooms
// the sync follows (state.js). Also what a room is called; creating a private room;
// and opening a direct message from any avatar button (messages, members).

import { api, bust } from './http.js';
import { el, isolate, notify, ui } from './ui.js';
import { avatar, describeUser } from './avatar.js';
import { myId, session, sessionEvents } from './session.js';
import { currentRoom, isGone, isPrivate, rejoinRoom, roomEvents, setTitle } from './room.js';
import { setFollowed, stateEvents, unreadOf } from './state.js';

const VISITED_KEY = 'chat.rooms';
const VISITED_MAX = 30;
const REFRESH_MS = 30_000;
const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** 'record', detail `{ room }`: what we know of a private room changed (members.js shows it). */
export const roomsEvents = new EventTarget();

let visited = loadVisited(); // public room names, the latest first
const records = new Map(); // private room -> { room, title, owner, members }, as last heard

function loadVisited() {
  try {
    const saved = JSON.parse(localStorage.getItem(VISITED_KEY) ?? '[]');
    return Array.isArray(saved) ? saved.filter((r) => typeof r === 'string' && ROOM_RE.test(r) && !isPrivate(r)).slice(0, VISITED_MAX) : [];
  } catch {
    return []; // storage disabled or its content damaged
  }
}

function saveVisited() {
  try { localStorage.setItem(VISITED_KEY, JSON.stringify(visited)); } catch { /* storage disabled: this load only */ }
}

const isUser = (u) => u && typeof u.id === 'string' && typeof u.name === 'string';
/** A room's record: with its members (from a room's own routes), or as the room list gives it, with their count only. */
const isRecord = (r) => r && typeof r.room === 'string' && ROOM_RE.test(r.room) && isPrivate(r.room) && isUser(r.owner)
  && (Array.isArray(r.members) ? r.members.every(isUser) : Number.isInteger(r.memberCount));
const memberCount = (r) => r.members?.length ?? r.memberCount;

export const recordOf = (room) => records.get(room);

/** The other person in a direct message (yourself, in one with yourself). */
export const otherMember = (record) => record.members?.find((m) => m.id !== myId()) ?? record.members?.[0] ?? record.owner;

/** [page text, user text]: what the room is called, its user-given part apart. */
export function nameOf(room) {
  if (!isPrivate(room)) return [`#${room}`, ''];
  const record = records.get(room);
  if (room.startsWith('dm_')) return record ? ['Direct message with ', otherMember(record).name] : ['Direct message', ''];
  return record?.title ? ['', record.title] : ['Private room', ''];
}

/** Somewhere else learned a newer record (members added or removed). */
export function putRecord(record) {
  if (!isRecord(record)) return;
  records.set(record.room, { ...record, title: typeof record.title === 'string' ? record.title : '' });
  render();
}

/** Takes a room off the list (left, or it turned out not to be ours). */
export function forget(room) {
  visited = visited.filter((r) => r !== room);
  saveVisited();
  records.delete(room);
  render();
}

// Drawn, not an emoji: not every system has a font with one.
function lockIcon() {
  const box = el('span', 'room-icon');
  box.setAttribute('aria-hidden', 'true');
  const svg = box.appendChild(document.createElementNS('http://www.w3.org/2000/svg', 'svg'));
  svg.setAttribute('viewBox', '0 0 16 16');
  const path = svg.appendChild(document.createElementNS('http://www.w3.org/2000/svg', 'path'));
  path.setAttribute('d', 'M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z');
  path.setAttribute('fill', 'currentColor');
  return box;
}

function entry(room) {
  const link = el('a', 'room-link');
  link.href = `#${room}`;
  if (room === currentRoom) link.setAttribute('aria-current', 'page');
  const record = records.get(room);
  if (room.startsWith('dm_') && record) {
    const other = otherMember(record);
    link.append(avatar(other), el('bdi', 'room-name', other.name));
    link.title = `Direct message with ${describeUser(other)}`;
  } else if (isPrivate(room)) {
    const [text, userText] = nameOf(room);
    link.append(lockIcon(), el('bdi', 'room-name', userText || text));
    if (record) link.title = `${memberCount(record)} member${memberCount(record) === 1 ? '' : 's'}`;
  } else {
    link.append(el('span', 'room-icon', '#'), el('span', 'room-name', room));
    link.firstChild.setAttribute('aria-hidden', 'true');
  }
  const badge = unreadBadge(unreadOf(room));
  if (badge) link.append(badge);
  const item = el('li');
  item.append(link);
  return item;
}

/** "3 unread" to a screen reader, a "3" in a pill to the eye; null when there is nothing unread. */
function unreadBadge(count) {
  if (!count) return null;
  const badge = el('span', 'unread', count > 99 ? '99+' : String(count));
  badge.append(el('span', 'visually-hidden', ' unread'));
  return badge;
}

/** On the button that opens the drawer, the total: on a phone the list itself is out of sight. */
function showTotal() {
  const total = [...visited, ...records.keys()].reduce((sum, room) => sum + unreadOf(room), 0);
  ui.drawerToggle.querySelector('.unread')?.remove();
  const badge = unreadBadge(total);
  if (badge) ui.drawerToggle.append(badge);
}

function fill({ title, list }, rooms) {
  list.replaceChildren(...rooms.map(entry));
  title.hidden = list.hidden = rooms.length === 0;
}

function render() {
  const all = [...records.keys()];
  fill(ui.lists.dm, all.filter((r) => r.startsWith('dm_')));
  fill(ui.lists.private, all.filter((r) => r.startsWith('p_')));
  fill(ui.lists.public, visited);
  ui.roomsEmpty.hidden = all.length + visited.length > 0;
  ui.createForm.hidden = !session;
  setFollowed([...visited, ...all]);
  showTotal();
  if (currentRoom && isPrivate(currentRoom)) {
    setTitle(...nameOf(currentRoom));
    roomsEvents.dispatchEvent(new CustomEvent('record', { detail: { room: currentRoom } }));
  }
}

let refreshing = null;
/** Asks the server for the user's private rooms; the list shown stays as it was on failure. */
export function refreshRooms() {
  if (!session) {
    records.clear();
    render();
    return Promise.resolve();
  }
  refreshing ??= (async () => {
    const asker = myId();
    try {
      const r = await api(`api/rooms?${bust()}`);
      if (asker !== myId() || !Array.isArray(r.rooms)) return; // a new guest meanwhile: their list is asked for anew
      const known = new Map(records);
      records.clear();
      for (const record of r.rooms) {
        if (!isRecord(record)) continue;
        // The list names members only in direct messages; those of a room already looked at are
        // kept while their count still holds (members.js asks again for the room shown otherwise).
        const members = record.members ?? known.get(record.room)?.members;
        const current = members && members.length === memberCount(record);
        records.set(record.room, current ? { ...record, members } : record);
      }
      render();
      // Invited while looking at "not found": in now.
      if (currentRoom && isGone() && records.has(currentRoom)) rejoinRoom();
    } catch {
      // Offline or busy: the next refresh tries again.
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Into `room` through the hash (app.js follows it), then to the message box. */
function goTo(room) {
  const focus = () => (ui.text.disabled ? ui.scroller : ui.text).focus();
  if (location.hash.slice(1) === room) return focus();
  // After app.js has entered the room: its listener was added first, so it runs first.
  addEventListener('hashchange', focus, { once: true });
  location.hash = room;
}

/** The direct-message room with `user` ({ id, name }), created on first use; then go there. */
export async function openDirect(user) {
  try {
    const record = await api('api/dms', { body: { userId: user.id, name: user.name } });
    putRecord(record);
    goTo(record.room);
  } catch (err) {
    notify(`Could not open a direct message with ${isolate(user.name)}: ${err.message}.`);
  }
}

// Any avatar that is a button (in messages, in the member list) starts a direct message.
document.addEventListener('click', (event) => {
  const button = event.target.closest?.('button[data-user-id]');
  if (button) openDirect({ id: button.dataset.userId, name: button.dataset.userName });
});

// The room already shown, picked again after "not found": no hashchange, so ask again here.
ui.drawer.querySelector('nav').addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="#"]');
  if (link && link.getAttribute('href') === `#${currentRoom}` && isGone()) rejoinRoom();
});

ui.createForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (ui.create.disabled) return;
  ui.create.disabled = true;
  ui.createError.hidden = true;
  try {
    const record = await api('api/rooms', { body: { title: ui.newTitle.value.trim() } });
    ui.newTitle.value = '';
    putRecord(record);
    goTo(record.room);
  } catch (err) {
    ui.createError.textContent = `Could not create the room: ${err.message}.`;
    ui.createError.hidden = false;
    ui.newTitle.focus();
  } finally {
    ui.create.disabled = false;
  }
});

roomEvents.addEventListener('enter', ({ detail: { room } }) => {
  if (!isPrivate(room)) {
    visited = [room, ...visited.filter((r) => r !== room)].slice(0, VISITED_MAX);
    saveVisited();
  }
  render();
  refreshRooms();
});
roomEvents.addEventListener('leave', render);
// Not ours (any more): off the list, which a reload would confirm.
stateEvents.addEventListener('gone', ({ detail: { room } }) => {
  records.delete(room);
  render();
});
// Only the badge: the rest of the entry has not changed.
stateEvents.addEventListener('unread', ({ detail: { room } }) => {
  for (const link of ui.drawer.querySelectorAll(`nav a[href="#${room}"]`)) {
    link.querySelector('.unread')?.remove();
    const badge = unreadBadge(unreadOf(room));
    if (badge) link.append(badge);
  }
  showTotal();
});
stateEvents.addEventListener('reset', render);
// A room visited in another tab is followed here too.
addEventListener('storage', (event) => {
  if (event.key !== VISITED_KEY) return;
  visited = loadVisited();
  render();
});
sessionEvents.addEventListener('change', ({ detail: { reason } }) => {
  if (reason !== 'refreshed') refreshRooms();
  else render();
});

setInterval(() => {
  if (document.visibilityState === 'visible') refreshRooms();
}, REFRESH_MS);
render();
