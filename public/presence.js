// Who is here and who is typing, in the room shown: the line under the bar ("3
// online: ann, bob, …") and the line above the composer ("ann is typing…"), both
// from the presence fields the sync brings (state.js), so a server without presence
// leaves them empty. And telling the server when we type (POST
// api/rooms/:room/typing): again every TYPING_REPEAT_MS while typing goes on, since
// the server forgets it after 6 s, and that we stopped once the box is emptied or
// left. A post ends typing on the server by itself: send.js calls typingEnded.

import { api } from './http.js';
import { el, isolate, ui } from './ui.js';
import { myId, session } from './session.js';
import { currentRoom, presenceOf, stateEvents } from './state.js';
import { roomEvents } from './room.js';

const TYPING_REPEAT_MS = 3000;
const NAMES_SHOWN = 5;

const others = (users) => users.filter((u) => u.id !== myId());

function showOnline(presence) {
  const count = presence?.onlineCount ?? 0;
  ui.online.hidden = count === 0;
  if (!count) return;
  // Others by name, then "you": you know you are here.
  const me = presence.online.some((u) => u.id === myId());
  const names = others(presence.online).slice(0, NAMES_SHOWN - (me ? 1 : 0)).map((u) => el('bdi', '', u.name));
  const shown = me ? [...names, 'you'] : names;
  ui.online.replaceChildren(`${count} online: `);
  shown.forEach((name, i) => ui.online.append(...(i ? [', ', name] : [name])));
  if (count > shown.length) ui.online.append(', …');
  // Everyone the server named, for those cut from the line.
  ui.online.title = presence.online.map((u) => isolate(u.name)).join(', ')
    + (count > presence.online.length ? ` and ${count - presence.online.length} more` : '');
}

function showTyping(presence) {
  const typing = others(presence?.typing ?? []);
  const name = (user) => el('bdi', '', user.name);
  if (typing.length === 0) ui.typing.replaceChildren();
  else if (typing.length === 1) ui.typing.replaceChildren(name(typing[0]), ' is typing…');
  else if (typing.length === 2) ui.typing.replaceChildren(name(typing[0]), ' and ', name(typing[1]), ' are typing…');
  else ui.typing.replaceChildren('Several people are typing…');
}

function render() {
  const presence = currentRoom ? presenceOf(currentRoom) : null;
  showOnline(presence);
  showTyping(presence);
}

stateEvents.addEventListener('presence', ({ detail: { room } }) => {
  if (room === currentRoom) render();
});
for (const type of ['gone', 'reset']) stateEvents.addEventListener(type, render);
roomEvents.addEventListener('enter', render);

let typingIn = null; // the room the server was told we type in
let saidAt = 0;

const tell = (room, typing) => api(`api/rooms/${room}/typing`, { body: { typing } }).catch(() => {
  // Only a hint to others: not worth a word, nor a retry.
});

function typed() {
  const room = currentRoom;
  // Readers without a token cannot type (protocol "Presence and typing").
  if (!room || !session) return;
  if (!ui.text.value.trim()) return stopTyping();
  if (typingIn === room && performance.now() - saidAt < TYPING_REPEAT_MS) return;
  typingIn = room;
  saidAt = performance.now();
  tell(room, true);
}

function stopTyping() {
  if (!typingIn) return;
  const room = typingIn;
  typingIn = null;
  tell(room, false);
}

/** The message was posted, which ended our typing on the server. */
export function typingEnded() {
  typingIn = null;
}

ui.text.addEventListener('input', typed);
ui.text.addEventListener('blur', stopTyping);
roomEvents.addEventListener('leave', () => {
  stopTyping();
  render();
});
