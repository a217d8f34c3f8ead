// The room panel under the bar ("Room"): copying the room's invite link (the page's
// address with the room's name, never a token), leaving the room, and for a private
// room its members: invite someone by user id, and, for the owner, remove a member.
// A direct message has exactly its two members: no invitations there.

import { api, bust } from './http.js';
import { copyText, el, isolate, notify, ui } from './ui.js';
import { avatar, describeUser, idTag } from './avatar.js';
import { nameProblem } from './name.js';
import { myId } from './session.js';
import { currentRoom, isPrivate, roomEvents } from './room.js';
import { forget, nameOf, putRecord, recordOf, roomsEvents } from './rooms.js';
import { stateEvents } from './state.js';

const USER_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const CONFIRM_MS = 6000;

const say = (text) => { ui.panelStatus.textContent = text; };

function fieldError(message) {
  ui.inviteError.textContent = message;
  ui.inviteError.hidden = !message;
  ui.inviteId.setAttribute('aria-invalid', String(Boolean(message)));
}

function setOpen(open) {
  ui.roomPanel.hidden = !open;
  ui.roomMenu.setAttribute('aria-expanded', String(open));
  if (open) {
    render();
    // Who joined since the list was last asked for.
    if (isPrivate(currentRoom)) loadMembers(currentRoom);
  }
}

/** A private room's members, which the room list leaves out (but for a direct message's). */
async function loadMembers(room) {
  try {
    const record = await api(`api/rooms/${room}/members?${bust()}`);
    if (room === currentRoom) putRecord(record);
  } catch {
    // A 404 reaches the sync too, which says so; anything else: the list we had.
  }
}

function member(user, record) {
  const me = user.id === myId();
  const item = el('li', 'member');
  item.append(avatar(user, { button: !me, label: `Message ${user.name} directly (id ${user.id})` }));
  const name = item.appendChild(el('bdi', 'member-name', user.name));
  name.title = describeUser(user);
  item.append(' ', idTag(user.id));
  if (user.id === record.owner.id && !record.room.startsWith('dm_')) item.append(' ', el('span', 'badge', 'owner'));
  if (me) item.append(' ', el('span', 'badge', 'you'));
  if (!me && record.owner.id === myId() && !record.room.startsWith('dm_')) {
    const remove = item.appendChild(el('button', 'link remove', 'Remove'));
    remove.type = 'button';
    remove.dataset.remove = user.id;
    remove.setAttribute('aria-label', `Remove ${user.name} (id ${user.id}) from the room`);
  }
  return item;
}

function render() {
  const room = currentRoom;
  ui.roomMenu.hidden = !room;
  if (!room) return;
  const record = isPrivate(room) ? recordOf(room) : undefined;
  ui.copyLink.hidden = room.startsWith('dm_'); // a DM has no one else to invite
  // The room list names a room's members only for a direct message; the rest come from loadMembers.
  ui.membersBox.hidden = !record?.members;
  if (!record?.members) return;
  ui.members.replaceChildren(...record.members.map((user) => member(user, record)));
  ui.inviteForm.hidden = room.startsWith('dm_');
}

function resetLeave() {
  delete ui.leave.dataset.confirm;
  ui.leave.textContent = 'Leave room';
}

async function leave() {
  const room = currentRoom;
  if (!room) return;
  const [text, userText] = nameOf(room);
  // Leaving a private room cannot be undone without a new invitation: ask once more.
  if (isPrivate(room) && !ui.leave.dataset.confirm) {
    ui.leave.dataset.confirm = '1';
    ui.leave.textContent = 'Yes, leave';
    say('Leave? You will need a new invitation to come back.');
    setTimeout(() => { if (ui.leave.dataset.confirm) { resetLeave(); say(''); } }, CONFIRM_MS);
    return;
  }
  resetLeave();
  if (isPrivate(room)) {
    try {
      await api(`api/rooms/${room}/leave`, { body: {} });
    } catch (err) {
      if (err.status !== 404) return say(`Could not leave: ${err.message}.`);
    }
  }
  forget(room);
  setOpen(false);
  notify(`You left ${text}${userText && isolate(userText)}.`);
  // The hash drives the room (app.js): no room, and the form to pick another.
  addEventListener('hashchange', () => ui.room.focus(), { once: true });
  location.hash = '';
}

ui.roomMenu.addEventListener('click', () => setOpen(ui.roomPanel.hidden));
ui.roomPanel.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') {
    setOpen(false);
    ui.roomMenu.focus();
  }
});

ui.copyLink.addEventListener('click', async () => {
  // Only the room's name after the page's address: whoever gets it still needs to be a member.
  const link = `${location.origin}${location.pathname}#${currentRoom}`;
  const ok = await copyText(link, ui.copyLink);
  say(ok ? (isPrivate(currentRoom) ? 'Link copied. It opens the room only for its members: invite them too.' : 'Link copied.') : `Copy this link: ${link}`);
});

ui.leave.addEventListener('click', leave);

ui.inviteForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const room = currentRoom;
  const userId = ui.inviteId.value.trim();
  const name = ui.inviteName.value.trim();
  if (!USER_ID_RE.test(userId)) {
    fieldError('A user id is 1–64 letters, digits, “-” or “_”: they find theirs under “Your rooms”.');
    return ui.inviteId.focus();
  }
  const problem = name && nameProblem(name);
  if (problem) {
    fieldError(`Name: ${problem}`);
    return ui.inviteName.focus();
  }
  fieldError('');
  ui.invite.disabled = true;
  try {
    putRecord(await api(`api/rooms/${room}/members`, { body: name ? { userId, name } : { userId } }));
    ui.inviteId.value = ui.inviteName.value = '';
    say(`Invited ${name ? isolate(name) : userId}. Send them the invite link.`);
    ui.inviteId.focus();
  } catch (err) {
    fieldError(`Could not invite: ${err.message}.`);
  } finally {
    ui.invite.disabled = false;
  }
});

ui.members.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-remove]');
  if (!button) return;
  const room = currentRoom;
  try {
    putRecord(await api(`api/rooms/${room}/members/remove`, { body: { userId: button.dataset.remove } }));
    say('Removed.');
    ui.inviteId.focus();
  } catch (err) {
    say(`Could not remove: ${err.message}.`);
  }
});

roomEvents.addEventListener('enter', () => {
  resetLeave();
  say('');
  fieldError('');
  render();
  if (currentRoom && isPrivate(currentRoom)) loadMembers(currentRoom);
});
roomEvents.addEventListener('leave', () => setOpen(false));
stateEvents.addEventListener('gone', ({ detail: { room } }) => {
  if (room !== currentRoom) return;
  ui.membersBox.hidden = true;
  ui.copyLink.hidden = true;
});
roomsEvents.addEventListener('record', () => {
  render();
  // The list had news of the room shown, without its members: ask for them.
  const record = currentRoom && recordOf(currentRoom);
  if (record && !record.members) loadMembers(currentRoom);
});
