// How a person looks on the page: a colour and initials, and a short tag of their
// user id, so that two people who chose the same name still look different (the
// tag, not only the colour, for those who cannot tell the colours apart). The full
// id is shown on hover. Messages from before accounts (no id) get a grey avatar.

import { el } from './ui.js';

/** 0..359 from the id (FNV-1a): the same id always gets the same colour. */
export function hueOf(id) {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 360;
}

// Bidi and other format controls, and the marks that combine with nothing, make no initial.
const INVISIBLE_RE = /[\p{Cf}\p{Cc}\p{Z}]/gu;
const segmenter = typeof Intl.Segmenter === 'function' ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;
const firstGrapheme = (word) => (segmenter ? segmenter.segment(word)[Symbol.iterator]().next().value?.segment : [...word][0]) ?? '';

/** Up to two letters: the first of the first word and of the last, "?" when there are none. */
export function initialsOf(name) {
  const words = name.replace(INVISIBLE_RE, ' ').trim().split(/\s+/).filter(Boolean);
  if (!words.length) return '?';
  const picked = words.length > 1 ? [words[0], words[words.length - 1]] : [words[0]];
  return picked.map(firstGrapheme).join('').toUpperCase();
}

/** The last four characters of the id: enough to tell apart the people in one room. */
export const tagOf = (id) => id.slice(-4);

export const describeUser = (user) => (user.id ? `${user.name} (id ${user.id})` : `${user.name} (no account: an older anonymous message)`);

/**
 * The avatar of `user` ({ id?, name }): with `button`, a button carrying data-user-id and
 * data-user-name for whoever listens to its clicks (rooms.js opens a direct message);
 * else a plain box, hidden from screen readers since the name beside it says who it is.
 */
export function avatar(user, { button = false, label = '' } = {}) {
  const node = el(button ? 'button' : 'span', user.id ? 'avatar' : 'avatar anon', initialsOf(user.name));
  if (user.id) node.style.setProperty('--hue', String(hueOf(user.id)));
  node.title = describeUser(user);
  if (button) {
    node.type = 'button';
    node.dataset.userId = user.id;
    node.dataset.userName = user.name;
    node.setAttribute('aria-label', label || node.title);
  } else {
    node.setAttribute('aria-hidden', 'true');
  }
  return node;
}

/** The short id tag shown after a name. */
export function idTag(id) {
  const node = el('span', 'uid', tagOf(id));
  node.title = `user id ${id}`;
  return node;
}
