// One long poll for many rooms (POST api/sync, protocol "One poll for many rooms"),
// again and again, for the rooms and cursors the caller hands it each time: the
// client loop of README.md, with the lessons of the one-room loop it replaces. The
// hold asked for adapts to where the path cuts held requests (hold.js). A
// sync still unanswered well past its hold is given up; answers that come back at
// once with nothing new slow it down; network errors and 5xx back off with jitter,
// 429 and 503 wait as Retry-After says; http.js renews a token the server calls
// invalid. Nothing here knows of tabs: tabs.js runs this in the one tab that leads
// and relays what it brings to the others.

import { ApiError, api, isTransient, retryDelay, seconds, wait, waitingText } from './http.js';
import { adaptiveHold } from './hold.js';
import { MAX_SYNCED } from './state.js';

const LIMIT = 100;
// A sync still unanswered this long after the server's hold ended is stuck behind a
// half-open connection or a buffering proxy; only giving up and reconnecting helps.
const POLL_GRACE_MS = 15_000;
// A sync that brings nothing new normally comes back when its hold runs out: after
// the 25 s we ask for, or sooner where the operator clamps holds to fit a proxy
// (--poll-timeout-max 8, say), so an empty answer after a few seconds is normal
// and must not slow the page down. One within a second was hardly held at all: a
// cache or broken proxy answering for the server, which would have us sync again
// at once, forever. A second is far below any hold worth configuring and far above
// a round trip to such a cache, so it tells the two apart.
const EARLY_ANSWER_MS = 1000;
const EARLY_WAIT_BASE_MS = 1000;
const EARLY_WAIT_CAP_MS = 30_000;
// Superseded: a sync of this browser's client id came after ours. tabs.js stops this
// loop if another tab leads now; if this one still does, the other sync was a former
// leader's last, and one more try settles it. Growing, so two never take turns for long.
const SUPERSEDED_WAIT_MS = 2000;

/** Before the next sync, after `run` too-early answers in a row: growing, with jitter. */
function earlyAnswerWait(run) {
  const ms = Math.min(EARLY_WAIT_CAP_MS, EARLY_WAIT_BASE_MS * 2 ** (run - 1));
  // Half of it fixed, so the page never syncs in quick succession; half random, so
  // the browsers behind one misbehaving proxy spread out.
  return ms / 2 + Math.random() * (ms / 2);
}

const isEntry = (e) => e && typeof e === 'object' && (typeof e.error?.code === 'string'
  || (typeof e.epoch === 'string' && Number.isSafeInteger(e.last) && Array.isArray(e.messages)
    && e.messages.every((m) => Number.isSafeInteger(m?.seq))));

/** The answer's entries for the rooms we asked about; throws on an answer not of this protocol. */
function entriesOf(r, sent) {
  if (!r.rooms || typeof r.rooms !== 'object') throw new ApiError(0, 'unexpected answer');
  const entries = {};
  for (const [room, entry] of Object.entries(r.rooms)) {
    if (!(room in sent)) continue;
    if (!isEntry(entry)) throw new ApiError(0, 'unexpected answer');
    entries[room] = entry;
  }
  return entries;
}

/** Whether an entry changes anything for the cursor it answers: a replayed answer does not. */
const brings = (entry, cursor) => entry.error !== undefined || cursor.after === undefined
  || entry.reset === true || entry.gap === true || entry.messages.length > 0
  || entry.last !== cursor.after || entry.epoch !== cursor.epoch
  || (entry.state !== undefined && entry.state !== cursor.state);

/**
 * Syncs until stopped. `rooms()` gives `[room, { after?, epoch?, state? }]` pairs, most
 * wanted first, read anew for each sync (none: it waits for restart()). `onAnswer(entries,
 * sent)` gets each answer's room entries with the cursors sent; `onStatus({ state, text,
 * detail })` how it goes; `onRefused()` says the server refused the cursors themselves.
 * `client` is the id whose newest sync the server keeps.
 */
export function startSync({ client, rooms, onAnswer, onStatus, onRefused }) {
  const stopCtrl = new AbortController();
  let fetchCtrl = null; // the sync in flight
  let restarting = false;
  let idle = null; // ends the wait for rooms to sync
  let lastSeq = 0;
  let cap = MAX_SYNCED;
  const hold = adaptiveHold();
  let said = '';
  const status = (state, text, detail = '') => {
    if (`${state}\n${text}\n${detail}` === said) return;
    said = `${state}\n${text}\n${detail}`;
    onStatus({ state, text, detail });
  };

  async function loop() {
    let failures = 0;
    let earlyRun = 0; // answers in a row that came back too soon with nothing new
    let supersededRun = 0;
    while (!stopCtrl.signal.aborted) {
      const list = rooms().slice(0, cap);
      if (!list.length) {
        await new Promise((resolve) => { idle = resolve; });
        idle = null;
        continue;
      }
      const sent = Object.fromEntries(list);
      // Above every earlier sync of this browser, whichever tab sent it: Date-based, so a
      // new leader starts above the one before without being told its number.
      lastSeq = Math.max(lastSeq + 1, Date.now());
      restarting = false;
      fetchCtrl = new AbortController();
      const holdS = hold.next();
      const asked = performance.now();
      // Held past the time an early answer would take: the server has it, so we are live (a
      // new leader says so without waiting for the hold to end). Not after a failure, where
      // a request that hangs may never have reached the server: only an answer ends that.
      const held = failures ? null : setTimeout(() => status('live', 'live'), EARLY_ANSWER_MS);
      try {
        const r = await api('api/sync', {
          body: { rooms: sent, timeout: holdS, limit: LIMIT, client, seq: lastSeq },
          signal: fetchCtrl.signal,
          timeoutMs: holdS * 1000 + POLL_GRACE_MS,
        });
        fetchCtrl = null;
        clearTimeout(held);
        if (stopCtrl.signal.aborted) return;
        // Not an error, and no reason to show one: see SUPERSEDED_WAIT_MS.
        if (r.superseded === true) {
          await wait(SUPERSEDED_WAIT_MS * 2 ** Math.min(supersededRun++, 4), stopCtrl.signal);
          continue;
        }
        supersededRun = 0;
        hold.answered(performance.now() - asked);
        const entries = entriesOf(r, sent);
        const news = Object.keys(entries).some((room) => brings(entries[room], sent[room]));
        failures = 0;
        onAnswer(entries, sent);
        // `more` needs no branch: the next sync goes out at once anyway and is answered at once.
        earlyRun = !news && performance.now() - asked < EARLY_ANSWER_MS ? earlyRun + 1 : 0;
        const ms = earlyRun ? earlyAnswerWait(earlyRun) : 0;
        // One early answer happens (a server answers its syncs at once as it shuts down);
        // only a run of them is worth a word.
        if (earlyRun > 1) {
          status('early', 'answers too soon',
            `Answers come back too soon with nothing new: a proxy may be caching them. Syncing again in ${seconds(ms)} s.`);
        } else {
          status('live', 'live');
        }
        if (ms) await wait(ms, stopCtrl.signal);
      } catch (err) {
        fetchCtrl = null;
        clearTimeout(held);
        if (stopCtrl.signal.aborted) return;
        if (restarting) continue; // the rooms changed: the next sync carries them
        // Held, then cut on the way: not the server failing (hold.js); at once, and still live.
        if (hold.cut(err, performance.now() - asked, holdS)) continue;
        // An operator's --sync-max-rooms below ours: fewer rooms until they fit.
        if (err.code === 'too_many_rooms' && list.length > 1) {
          cap = Math.ceil(list.length / 2);
          continue;
        }
        // Cursors refused (400 and the like) will not get better by resending them.
        if (!isTransient(err)) onRefused();
        const ms = retryDelay(err, failures++);
        status('retrying', waitingText(err, ms, 'reconnecting'), err.message);
        await wait(ms, stopCtrl.signal, err.status === 0);
        if (stopCtrl.signal.aborted) return;
        status('retrying', 'reconnecting…');
      }
    }
  }

  loop();
  return {
    /** The rooms or cursors changed: ends the sync in flight (the next one also supersedes it on the server). */
    restart() {
      if (idle) return idle();
      if (!fetchCtrl) return; // waiting: the next sync reads the rooms anew anyway
      restarting = true;
      fetchCtrl.abort();
    },
    stop() {
      stopCtrl.abort();
      fetchCtrl?.abort();
      idle?.();
    },
  };
}
