// One stream for many rooms (GET api/stream, protocol "Streams: GET /api/stream"):
// the same job as sync.js, with the same arguments and the same { restart, stop },
// so that transport.js runs whichever works on this path. The server pushes each
// room's news as a `room` event (a sync room entry with its room's name), which
// goes to onAnswer exactly as a sync answer's entry would, with the cursor it
// follows: state.js and tabs.js cannot tell the two apart.
//
// EventSource reconnects on its own, but with the URL it was opened with, whose
// ticket (single use: POST api/stream-tickets, because EventSource cannot send
// Authorization) is spent by then. So every error closes it, and a new stream
// goes out with a fresh ticket and the cursors rooms() gives now. The server ends
// every stream after a few minutes (--stream-max-age): that is normal, and the
// next one goes out at once without a word to the user.
//
// Where the stream does not work, onFallback(why) is called once and this stops:
// transport.js then polls (sync.js) and remembers the choice for a while. The
// signs: no event soon after opening (something on the way buffers the stream),
// streams cut again and again (something on the way cuts idle connections), or
// streams that cannot be opened at all (EventSource tells no status, so a proxy
// refusing them, a server without streams and a cursor the server refuses all
// look alike; polling says which, and handles each).

import { ApiError, api, bust, hasToken, isTransient, retryDelay, wait, waitingText } from './http.js';
import { MAX_SYNCED } from './state.js';

const LIMIT = 100;
// A new stream reports every room at once (it starts with no presence state, so each
// room's lists are news), and the server writes that within milliseconds of the
// request. Four seconds is far above that plus any round trip a chat is usable over
// (the connection is already up: the ticket just came over it), and short enough that
// a page behind a buffering proxy shows messages soon by polling instead. Counted from
// the request, not from 'open': a proxy that buffers the body may hold the headers
// back too (nginx's gzip filter does, waiting for more than a packet's worth).
const FIRST_EVENT_MS = 4000;
// A stream that ends by itself is normal once per --stream-max-age (300 s by default),
// and a network change or a server restart ends one now and then. Three within two
// minutes is neither: a proxy or load balancer cutting connections idle for less than
// the server's heartbeat (15 s), where each stream lives only that long and polls
// (whose holds adapt to the cut, hold.js) work better. Three, so that one restart of
// the server plus one network change do not count; two minutes, so that the server's
// own rotation never does (it ends streams minutes apart, unless an operator sets
// --stream-max-age under 40 s, which no one should).
const CUTS_TO_FALL_BACK = 3;
const CUT_WINDOW_MS = 2 * 60_000;
// A stream that errs before it opens was refused (a 4xx or 5xx, a proxy that does not
// pass streams) or never reached the server. Once can be bad luck (a server restarting
// between the ticket and the stream); twice in a row, the poll does better: it reads
// the status and knows what to do about each.
const OPEN_FAILURES_TO_FALL_BACK = 2;
// The server ends each stream after --stream-max-age, 5 minutes by default. One open
// much longer may be a connection that died without a word (a NAT that forgot it, a
// laptop that slept): EventSource cannot tell, as the server's heartbeats are comments
// it does not report. Reopened then, at the cost of one reconnect where an operator
// configured longer streams.
const MAX_OPEN_MS = 6 * 60_000;

const isEntry = (e) => e && typeof e === 'object' && typeof e.room === 'string' && (typeof e.error?.code === 'string'
  || (typeof e.epoch === 'string' && Number.isSafeInteger(e.last) && Array.isArray(e.messages)
    && e.messages.every((m) => Number.isSafeInteger(m?.seq))));

/** `rooms=` of a stream: `name[:after[:epoch]]` for each room (just the name joins it). */
const roomsParam = (list) => list.map(([room, c]) => (c.after === undefined ? room : `${room}:${c.after}:${c.epoch}`)).join(',');

/**
 * Streams until stopped. `rooms()`, `onAnswer(entries, sent)`, `onStatus({ state, text,
 * detail })` and `onRefused()` as startSync takes them (onRefused is left to the poll: a
 * stream cannot tell a refused cursor from other refusals); `onFallback(why)` once the
 * stream does not work here, after which it does nothing more.
 */
export function startStream({ rooms, onAnswer, onStatus, onFallback }) {
  const stopCtrl = new AbortController();
  let attempt = null; // aborts the ticket request or the stream in flight
  let idle = null; // ends the wait for rooms to stream
  let said = '';
  const status = (state, text, detail = '') => {
    if (`${state}\n${text}\n${detail}` === said) return;
    said = `${state}\n${text}\n${detail}`;
    onStatus({ state, text, detail });
  };
  const ends = []; // when streams that had opened ended, for CUTS_TO_FALL_BACK
  let openFailures = 0; // in a row

  function fallBack(why) {
    if (stopCtrl.signal.aborted) return;
    stopCtrl.abort();
    onFallback(why);
  }

  /**
   * One stream, until it ends: 'restart' (rooms changed, or stopped), 'ended' (by the
   * server or cut after opening), 'unopened' (failed before), 'silent' (no event within
   * FIRST_EVENT_MS: 'held' when not even the headers came), 'old' (open past MAX_OPEN_MS)
   * or 'bad' (an event not of this protocol).
   */
  function run(url, cursors, signal) {
    return new Promise((resolve) => {
      const es = new EventSource(url);
      let opened = false;
      let heard = false;
      const firstTimer = setTimeout(() => finish(opened ? 'silent' : 'held'), FIRST_EVENT_MS);
      let ageTimer = null;
      let done = false;
      const finish = (how) => {
        if (done) return;
        done = true;
        es.close();
        clearTimeout(firstTimer);
        clearTimeout(ageTimer);
        signal.removeEventListener('abort', restarted);
        resolve(how);
      };
      const restarted = () => finish('restart');
      signal.addEventListener('abort', restarted);
      es.onopen = () => {
        if (opened) return;
        opened = true;
        openFailures = 0;
        ageTimer = setTimeout(() => finish('old'), MAX_OPEN_MS);
      };
      es.onerror = () => finish(opened ? 'ended' : 'unopened');
      es.addEventListener('room', (event) => {
        if (done) return;
        let data = null;
        try {
          data = JSON.parse(event.data);
        } catch {
          /* judged below */
        }
        if (!isEntry(data)) return finish('bad');
        if (!heard) {
          heard = true;
          clearTimeout(firstTimer);
        }
        const { room, ...entry } = data;
        const sent = cursors[room];
        if (!sent) return; // not asked for (the server does not do that)
        // What the next event of the room follows, as the next sync would send it.
        if (!entry.error) cursors[room] = { after: entry.last, epoch: entry.epoch, ...((entry.state ?? sent.state) ? { state: entry.state ?? sent.state } : {}) };
        status('live', 'live');
        onAnswer({ [room]: entry }, { [room]: sent });
      });
    });
  }

  async function loop() {
    let failures = 0; // ticket requests failed in a row, for the backoff
    while (!stopCtrl.signal.aborted) {
      const list = rooms().slice(0, MAX_SYNCED);
      if (!list.length) {
        await new Promise((resolve) => { idle = resolve; });
        idle = null;
        continue;
      }
      const ctrl = new AbortController();
      attempt = ctrl;
      let ticket = null;
      // Signed in: a ticket for this stream. Without a token (guest sessions off), public
      // rooms stream without one.
      if (hasToken()) {
        try {
          const r = await api('api/stream-tickets', { body: {}, signal: ctrl.signal });
          if (typeof r.ticket !== 'string') throw new ApiError(0, 'unexpected answer');
          ticket = r.ticket;
        } catch (err) {
          if (stopCtrl.signal.aborted) return;
          if (ctrl.signal.aborted) continue; // the rooms changed: a new ticket for them
          // A server that gives no tickets, or refuses ours: polls carry the token itself.
          if (!isTransient(err)) return fallBack(`stream tickets refused (${err.message})`);
          const ms = retryDelay(err, failures++);
          status('retrying', waitingText(err, ms, 'reconnecting'), err.message);
          await wait(ms, stopCtrl.signal, err.status === 0);
          if (stopCtrl.signal.aborted) return;
          status('retrying', 'reconnecting…');
          continue;
        }
      }
      failures = 0;
      const cursors = Object.fromEntries(list.map(([room, c]) => [room, { ...c }]));
      const url = `api/stream?rooms=${encodeURIComponent(roomsParam(list))}&limit=${LIMIT}`
        + `${ticket ? `&ticket=${encodeURIComponent(ticket)}` : ''}&${bust()}`;
      const how = await run(url, cursors, ctrl.signal);
      if (attempt === ctrl) attempt = null;
      if (stopCtrl.signal.aborted) return;
      switch (how) {
        case 'silent':
          return fallBack(`the stream opened, but brought nothing within ${FIRST_EVENT_MS / 1000} s: something on the way holds it back`);
        case 'held':
          return fallBack(`the stream did not even start within ${FIRST_EVENT_MS / 1000} s: something on the way holds it back`);
        case 'unopened':
          if (++openFailures >= OPEN_FAILURES_TO_FALL_BACK) return fallBack(`the stream could not be opened ${openFailures} times in a row`);
          // Spread out, so that the pages a restarting server dropped do not all come back at once.
          await wait(Math.random() * 1000, stopCtrl.signal);
          break;
        case 'ended':
        case 'bad': {
          const now = performance.now();
          ends.push(now);
          while (ends.length && now - ends[0] > CUT_WINDOW_MS) ends.shift();
          if (ends.length >= CUTS_TO_FALL_BACK) {
            return fallBack(`the stream was cut ${ends.length} times within ${CUT_WINDOW_MS / 60_000} minutes`);
          }
          break;
        }
        default: // 'restart', 'old': at once
      }
    }
  }

  loop();
  return {
    /** The rooms or cursors changed: a new stream for them, with a new ticket. */
    restart() {
      if (idle) return idle();
      attempt?.abort(); // waiting for a retry: the next stream reads the rooms anew anyway
    },
    stop() {
      stopCtrl.abort();
      attempt?.abort();
      idle?.();
    },
  };
}
