// The drawer holding "Your rooms": a sidebar on wide screens, always there; on narrow
// ones (phones) it slides over the conversation when the bar's "Rooms" button opens
// it (the conversation behind it inert meanwhile), and closes on Escape, on a tap
// beside it, or once a room is picked.

import { ui } from './ui.js';

const narrow = matchMedia('(max-width: 760px)');

function setOpen(open, { focus = true } = {}) {
  document.body.dataset.drawer = open ? 'open' : 'closed';
  ui.drawerToggle.setAttribute('aria-expanded', String(open));
  ui.scrim.hidden = !open;
  // Over the conversation: keyboard and screen reader stay in the drawer until it closes.
  ui.chat.inert = open && narrow.matches;
  if (!focus) return;
  if (open) (ui.drawer.querySelector('[aria-current="page"]') ?? ui.drawerClose).focus();
  else ui.drawerToggle.focus();
}

const isOpen = () => document.body.dataset.drawer === 'open';

ui.drawerToggle.addEventListener('click', () => setOpen(!isOpen()));
ui.drawerClose.addEventListener('click', () => setOpen(false));
ui.scrim.addEventListener('click', () => setOpen(false));
ui.drawer.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && narrow.matches && isOpen()) setOpen(false);
});
// A room picked (or created, or a direct message opened): the drawer has done its job.
function picked() {
  if (!narrow.matches || !isOpen()) return;
  setOpen(false, { focus: false });
  // After app.js has entered the room (its hashchange listener runs after this one).
  setTimeout(() => (ui.text.disabled ? ui.scroller : ui.text).focus());
}
addEventListener('hashchange', picked);
ui.drawer.addEventListener('click', (event) => {
  if (event.target.closest('a[href^="#"]')) picked(); // also the room already shown: no hashchange
});
// Turned into a sidebar (a phone turned sideways): nothing to close any more.
narrow.addEventListener('change', () => setOpen(false, { focus: false }));

setOpen(false, { focus: false });
