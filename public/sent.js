// Which messages are our own: a signed message by its author id; one without
// (posted anonymously, as in protocol v1) if this tab sent it, by the clientMsgIds
// it sent: names cannot tell, since two people may both be called "ann". Those ids
// are kept in sessionStorage, which is per tab, so a reload still knows them and
// another tab does not; bounded, because a tab may stay open for weeks.

import { myId } from './session.js';

const SENT_KEY = 'chat.sent';
const SENT_MAX = 500;

const sent = load(); // oldest first
const known = new Set(sent);

function load() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SENT_KEY) ?? '[]');
    return Array.isArray(saved) ? saved.filter((id) => typeof id === 'string').slice(-SENT_MAX) : [];
  } catch {
    return []; // storage disabled or its content damaged: start afresh
  }
}

/** Before posting: the message may come back through the sync before the post's answer. */
export function rememberSent(clientMsgId) {
  if (known.has(clientMsgId)) return; // a retry
  sent.push(clientMsgId);
  known.add(clientMsgId);
  while (sent.length > SENT_MAX) known.delete(sent.shift());
  try { sessionStorage.setItem(SENT_KEY, JSON.stringify(sent)); } catch { /* storage disabled or full: known until reload */ }
}

export const sentHere = (clientMsgId) => typeof clientMsgId === 'string' && known.has(clientMsgId);

export const authorIdOf = (m) => (typeof m.authorId === 'string' && m.authorId ? m.authorId : null);

export function isOwn(m) {
  const id = authorIdOf(m);
  return id ? id === myId() : sentHere(m.clientMsgId);
}
