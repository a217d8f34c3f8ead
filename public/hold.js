// How long to ask the server to hold a sync. Something on the way (a proxy's read
// timeout, a load balancer's idle timeout) may cut every request held longer than T
// seconds, with a network error, a 502 or a 504. Each cut costs a new request, and
// is not the server failing: no backoff, no "reconnecting". Cuts at about the same
// elapsed time again and again mean such a limit: the hold drops to T − 5 s (not
// below 5 s), so that polls come back as answers, not cuts. Every few minutes the
// full hold is tried again, in case the path changed (another network, a proxy
// reconfigured); if it is cut again, the lower hold stays.

const FULL_S = 25;
const MIN_S = 5;
const MARGIN_S = 5;
// A request failing sooner than this was not cut for being held: the server or the
// network failed, and the usual backoff applies.
const MIN_CUT_MS = 3000;
// Two cuts this close in elapsed time are the same limit (timers on the way are exact
// to well within it; the round trip adds a little).
const SAME_CUT_MS = 2000;
const TRY_FULL_AFTER_MS = 5 * 60_000;

const cutStatus = (status) => status === 0 || status === 502 || status === 504;

/** The hold to ask for, learnt from where the path cuts held requests. */
export function adaptiveHold() {
  let lowered = null; // seconds, while a limit is known
  let loweredAt = 0;
  let lastCutMs = null;
  let trying = false; // this request tries the full hold again
  return {
    /** Seconds to ask for in the next sync. */
    next() {
      trying = lowered !== null && performance.now() - loweredAt >= TRY_FULL_AFTER_MS;
      return trying ? FULL_S : lowered ?? FULL_S;
    },
    /**
     * The sync was answered after `elapsedMs`. Only one held past where the path cut
     * says something: the limit is not (or no longer) there. One answered sooner (a
     * message came) says nothing, and the cuts around it still count as repeated.
     */
    answered(elapsedMs) {
      if (lastCutMs !== null && elapsedMs > lastCutMs + SAME_CUT_MS) lastCutMs = null;
      if (trying && elapsedMs > (lowered + MARGIN_S) * 1000 + SAME_CUT_MS) lowered = null;
    },
    /**
     * The sync that asked for `askedS` failed with `err` after `elapsedMs`: true when it
     * was cut on the path while held (the caller then syncs again at once).
     */
    cut(err, elapsedMs, askedS) {
      if (!cutStatus(err.status) || elapsedMs < MIN_CUT_MS || elapsedMs > askedS * 1000 - 1000) return false;
      if (trying || (lastCutMs !== null && Math.abs(elapsedMs - lastCutMs) <= SAME_CUT_MS)) {
        lowered = Math.max(MIN_S, Math.floor(elapsedMs / 1000) - MARGIN_S);
        loweredAt = performance.now();
        trying = false;
      }
      lastCutMs = elapsedMs;
      return true;
    },
  };
}
