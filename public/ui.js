// The page's elements, the one way anything is built from user data, and copying to
// the clipboard.

const $ = (id) => document.getElementById(id);

export const ui = {
  title: $('room-title'), me: $('me'), myName: $('my-name'), status: $('status'), change: $('change'),
  online: $('online'), typing: $('typing'),
  joinForm: $('join-form'), joinHint: $('join-hint'), cancelJoin: $('join-cancel'),
  name: $('name'), nameError: $('name-error'), nameNote: $('name-note'), join: $('join'), room: $('room'), roomError: $('room-error'),
  scroller: $('scroller'), older: $('older'), messages: $('messages'),
  sendForm: $('send-form'), text: $('text'), send: $('send'), sendStatus: $('send-status'), cancel: $('cancel'),
  // The drawer: who you are, your rooms, a new private room.
  chat: $('chat'), drawer: $('drawer'), drawerToggle: $('drawer-toggle'), drawerClose: $('drawer-close'), scrim: $('scrim'),
  identity: $('identity'), myAvatar: $('my-avatar'), identityName: $('identity-name'), myId: $('my-id'), copyId: $('copy-id'),
  roomsEmpty: $('rooms-empty'),
  lists: {
    dm: { title: $('dms-title'), list: $('dm-list') },
    private: { title: $('private-title'), list: $('private-list') },
    public: { title: $('public-title'), list: $('public-list') },
  },
  createForm: $('create-form'), newTitle: $('new-title'), create: $('create'), createError: $('create-error'),
  // The room panel: link, leave, members, invite.
  roomMenu: $('room-menu'), roomPanel: $('room-panel'), copyLink: $('copy-link'), leave: $('leave'), panelStatus: $('panel-status'),
  membersBox: $('members-box'), members: $('members'), inviteForm: $('invite-form'), inviteId: $('invite-id'),
  inviteName: $('invite-name'), invite: $('invite'), inviteError: $('invite-error'),
  notice: $('notice'), noticeText: $('notice-text'), noticeClose: $('notice-close'),
};

// The page shows user text inside an isolate (<bdi>, unicode-bidi: isolate), which the
// text's own isolate controls can undo: a pop-directional-isolate (U+2069) with no
// isolate of the text's own open before it ends the page's isolate early, and an
// isolate left open at the end takes the page's closing for its own. Either way what
// follows (an override, say) reorders the page's own text beside it. Dropping the
// strays and closing what is left open keeps every control inside its box.
export function balancedIsolates(text) {
  let open = 0;
  const kept = text.replace(/[\u2066-\u2069]/g, (c) => {
    if (c !== '\u2069') open++;
    else if (open === 0) return '';
    else open--;
    return c;
  });
  return kept + '\u2069'.repeat(open);
}

/** User text to go inside page text (a notice, the tab's title): in an isolate of its own. */
export const isolate = (text) => `\u2068${balancedIsolates(text)}\u2069`;

// User data goes in only through textContent: never markup.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = balancedIsolates(text);
  return node;
}

/** Puts `text` on the clipboard and says so on `button` for a moment. */
export async function copyText(text, button) {
  let ok = true;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (a page served over plain http): the old way, through a selection.
    const area = Object.assign(document.createElement('textarea'), { value: text, readOnly: true });
    area.className = 'visually-hidden';
    document.body.append(area);
    area.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    button.focus();
  }
  const label = button.dataset.label ?? (button.dataset.label = button.textContent);
  button.textContent = ok ? 'Copied' : 'Copy failed';
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(setTimeout(() => { button.textContent = label; }, 2000));
  return ok;
}

/** A word to the user above the conversation (a new guest, a failed action), until dismissed; user text in it isolated. */
export function notify(text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
}
ui.noticeClose.addEventListener('click', () => {
  ui.notice.hidden = true;
  ui.text.disabled ? ui.scroller.focus() : ui.text.focus();
});
