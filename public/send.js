// Sending: each message gets a clientMsgId, reused on every retry, so that a post
// whose answer was lost is stored once.

import { api, isTransient, messagesUrl, retryDelay, wait, waitingText } from './http.js';
import { ui } from './ui.js';
import { currentRoom } from './room.js';
import { myName } from './name.js';
import { rememberSent } from './sent.js';
import { typingEnded } from './presence.js';

// getRandomValues, unlike randomUUID, also works on plain-http pages.
const newClientMsgId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

// A send that failed or was cancelled may still have been stored (only its answer
// lost); sending the same text again reuses its id so the server can drop the copy.
let unsent = null; // { room, text, clientMsgId }
let sendCtrl = null;

function setSendStatus(state, text) {
  ui.sendStatus.dataset.state = state;
  ui.sendStatus.textContent = text;
  ui.cancel.hidden = state !== 'pending';
}

async function send() {
  const text = ui.text.value;
  const author = myName;
  if (sendCtrl || !currentRoom || !author || !text.trim()) return;
  const room = currentRoom;
  const clientMsgId = unsent && unsent.room === room && unsent.text === text ? unsent.clientMsgId : newClientMsgId();
  unsent = { room, text, clientMsgId };
  rememberSent(clientMsgId);
  sendCtrl = new AbortController();
  const { signal } = sendCtrl;
  // The text stays, read-only, until the server has it: nothing typed is lost on failure.
  ui.text.readOnly = true;
  setSendStatus('pending', 'Sending…');
  for (let attempt = 0; ; attempt++) {
    try {
      // Not added to the list from this answer: it arrives through the sync, in the room's order.
      await api(messagesUrl(room), { body: { text, author, clientMsgId }, signal });
      typingEnded();
      unsent = null;
      ui.text.value = '';
      setSendStatus('', '');
      break;
    } catch (err) {
      if (signal.aborted) { setSendStatus('failed', 'Not sent (cancelled).'); break; }
      if (!isTransient(err)) { setSendStatus('failed', `Not sent: ${err.message}`); break; }
      const ms = retryDelay(err, attempt);
      setSendStatus('pending', `Not sent yet: ${waitingText(err, ms, 'retrying')}.`);
      await wait(ms, signal, err.status === 0);
      if (signal.aborted) { setSendStatus('failed', 'Not sent (cancelled).'); break; }
      setSendStatus('pending', 'Sending…');
    }
  }
  sendCtrl = null;
  ui.text.readOnly = false;
  if (document.activeElement === document.body) ui.text.focus(); // the Cancel button went away
}

ui.cancel.addEventListener('click', () => sendCtrl?.abort());

ui.sendForm.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});

ui.text.addEventListener('keydown', (event) => {
  // While an IME is composing, Enter picks a candidate; it must not send.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.sendForm.requestSubmit();
  }
});
