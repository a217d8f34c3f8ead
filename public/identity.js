// Who you are, shown in the drawer: your name, your avatar and your user id with a
// button to copy it (others need it to invite you); the bar's "as <name>"; and a
// word to you when the session ran out and you became a new guest, with a new id.

import { balancedIsolates, copyText, notify, ui } from './ui.js';
import { avatar } from './avatar.js';
import { session, sessionEvents } from './session.js';
import { setMyName } from './name.js';
import { markOwn } from './messages.js';

function render() {
  ui.identity.hidden = !session;
  if (!session) return;
  const { user } = session;
  ui.myAvatar.replaceChildren(avatar(user));
  ui.identityName.textContent = balancedIsolates(user.name);
  ui.myId.textContent = user.id;
  ui.myName.textContent = balancedIsolates(user.name);
}

ui.copyId.addEventListener('click', () => {
  if (session) copyText(session.user.id, ui.copyId);
});

sessionEvents.addEventListener('change', ({ detail: { reason } }) => {
  if (reason === 'other-tab') setMyName(session.user.name); // renamed there: the name goes with the id
  render();
  markOwn();
  if (reason === 'expired' || reason === 'rejected') {
    notify(`${reason === 'expired' ? 'Your session expired' : 'The server no longer accepted your session'}, `
      + `so you are now a new guest, with a new id (${session.user.id}). `
      + 'Private rooms and direct messages of your old id are not yours any more: ask to be invited again.');
  }
});

render();
