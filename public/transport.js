// How the leading tab (tabs.js) gets the news of every room: a stream (stream.js)
// where one works, else the sync poll (sync.js). Both take the same arguments and
// read the cursors from the caller's state each time, so swapping one for the other
// loses and repeats nothing. Still one connection per browser either way.
//
// A stream that does not work here (stream.js says why: a buffering proxy, one that
// cuts idle connections, one that refuses streams) is replaced by polling at once,
// and the choice is remembered in localStorage for REMEMBER_MS, for this and every
// later page of the origin; then the stream is tried again, in case the path changed.
//
// localStorage 'chat.transport' holds either what was learnt,
//   {"mode":"poll","until":<ms since 1970>,"why":"…"},
// or a choice made by hand, which wins and is never replaced:
//   "stream"  always the stream (it keeps trying even where it does not work),
//   "poll"    always the sync poll.
// e.g. in the browser's console: localStorage.setItem('chat.transport', '"poll"')
// — as JSON, or plainly: localStorage.setItem('chat.transport', 'poll').
//
// document.documentElement.dataset.transport says which runs ('stream' or 'poll'),
// and the status's tooltip says it in words, with the reason for polling.

import { startStream } from './stream.js';
import { startSync } from './sync.js';

const KEY = 'chat.transport';
// Long enough that a page behind a bad proxy does not pay the stream's detection time
// (seconds of "connecting…", or a few cut streams) on every load; short enough that a
// laptop that moved to a better network streams again soon.
const REMEMBER_MS = 10 * 60_000;
// A stream chosen by hand that does not work: tried again after this, not in a loop.
const FORCED_RETRY_MS = 5000;

/** 'stream' or 'poll' chosen by hand, else null. */
function chosen() {
  try {
    const raw = localStorage.getItem(KEY);
    if (raw === null) return null;
    const value = raw === 'stream' || raw === 'poll' ? raw : JSON.parse(raw);
    return value === 'stream' || value === 'poll' ? value : null;
  } catch {
    return null;
  }
}

/** `{ until, why }` while polling is remembered, else null. */
function remembered() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? 'null');
    return saved?.mode === 'poll' && Number.isFinite(saved.until) && saved.until > Date.now() ? saved : null;
  } catch {
    return null;
  }
}

function remember(why) {
  const saved = { mode: 'poll', until: Date.now() + REMEMBER_MS, why };
  try {
    // Never over a choice made by hand.
    if (chosen() === null) localStorage.setItem(KEY, JSON.stringify(saved));
  } catch {
    /* storage disabled: this page still polls */
  }
  return saved;
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/**
 * startSync's arguments (`client`, `rooms`, `onAnswer`, `onStatus`, `onRefused`); runs
 * the stream or the poll, and reports statuses with `transport` ('stream' or 'poll')
 * and the transport named in `detail`.
 */
export function startTransport(options) {
  let running = null;
  let mode = null;
  let note = '';
  let last = null; // the running transport's last status, to show again with a new note
  let timer = null;
  let stopped = false;

  const report = (status) => {
    last = status;
    options.onStatus({ ...status, detail: [status.detail, note].filter(Boolean).join('\n'), transport: mode });
  };

  function use(next, why) {
    running?.stop();
    clearTimeout(timer);
    mode = next;
    document.documentElement.dataset.transport = next;
    note = next === 'stream' ? 'Connected by a stream (Server-Sent Events).' : `Connected by polling${why ? `: ${why}` : ''}.`;
    // Followers are told by the status relayed to them (tabs.js), which names the transport.
    if (last) report(last);
    // Fresh for each transport: `last` above is the one the user saw until now.
    running = next === 'stream'
      ? startStream({ ...options, onStatus: report, onFallback })
      : startSync({ ...options, onStatus: report });
  }

  function onFallback(why) {
    if (stopped) return;
    if (chosen() === 'stream') {
      report({ state: 'retrying', text: 'reconnecting…', detail: `The stream does not work here: ${why}. Trying again (localStorage chat.transport says "stream").` });
      running = null;
      timer = setTimeout(() => use('stream'), FORCED_RETRY_MS);
      return;
    }
    pollUntil(remember(why));
  }

  /** Polls, and tries the stream again once `saved` expires. */
  function pollUntil(saved) {
    use('poll', `${saved.why}. The stream is tried again at ${clock(saved.until)}`);
    timer = setTimeout(() => use('stream'), Math.max(0, saved.until - Date.now()));
  }

  const pick = chosen();
  const saved = remembered();
  if (pick) use(pick, pick === 'poll' ? 'chosen in localStorage "chat.transport"' : '');
  else if (typeof EventSource !== 'function') use('poll', 'this browser has no EventSource');
  else if (saved) pollUntil(saved);
  else use('stream');

  return {
    restart: () => running?.restart(),
    stop() {
      stopped = true;
      clearTimeout(timer);
      running?.stop();
    },
  };
}
