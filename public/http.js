// Talking to the server: JSON requests with their own timeouts, cache busting, the
// session's token on every request, and how long to wait before trying again.

const REQUEST_TIMEOUT_MS = 15_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;

export class ApiError extends Error {
  /** status 0 means no usable HTTP answer (network error, timeout, not JSON); code is the JSON error's, if any. */
  constructor(status, message, retryAfterMs = null, code = null) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
    this.code = code;
  }
}

// The bearer token sent on every request (session.js keeps it), and what to do when
// the server calls it invalid: session.js gets a new one, and the request goes again once.
let token = null;
let renewToken = null;
export const setToken = (value) => { token = value; };
/** Whether requests carry a token (stream.js asks for a ticket only then). */
export const hasToken = () => token !== null;
export const onInvalidToken = (fn) => { renewToken = fn; };

// The server ignores unknown parameters; this defeats caches that ignore no-store.
// A counter alone starts again at 1 on every load, so another tab or the next load
// would ask for URLs this one already asked for, and such a cache would hand it
// this load's stale answers; the random part makes them unique to this load.
const loadId = Array.from(crypto.getRandomValues(new Uint32Array(2)), (n) => n.toString(36)).join('');
let requestCounter = 0;
export const bust = () => `t=${loadId}-${++requestCounter}`;

// Relative, so the page also works where the chat router is mounted under a path.
export const messagesUrl = (room, query = '') => `api/rooms/${room}/messages${query && '?' + query}`;

/**
 * A JSON request (POST when there is a body) with the session's token; `auth: false`
 * sends none, `renew: false` does not replace a token the server calls invalid.
 */
export async function api(url, options = {}) {
  const sent = options.auth === false ? null : token;
  try {
    return await request(url, options, sent);
  } catch (err) {
    if (err.code !== 'invalid_token' || !sent || !renewToken || options.renew === false || options.signal?.aborted) throw err;
    // Expired while the tab slept, or the server's key changed: once more with a new token.
    await renewToken(sent);
    if (token === sent) throw err;
    return request(url, options, token);
  }
}

async function request(url, { signal, body, timeoutMs = REQUEST_TIMEOUT_MS }, bearer) {
  // A controller per request, so a timeout aborts this request only, while the
  // caller's signal (room switch, cancel) still reaches it.
  const ctrl = new AbortController();
  const abort = () => ctrl.abort();
  signal?.addEventListener('abort', abort);
  const timer = setTimeout(abort, timeoutMs);
  try {
    const res = await fetch(url, {
      method: body ? 'POST' : 'GET',
      headers: {
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      },
      body: body && JSON.stringify(body),
      cache: 'no-store',
      signal: ctrl.signal,
    });
    // 204: done, nothing to say (typing).
    if (res.status === 204) return {};
    const data = await res.json().catch(() => null);
    if (res.ok && data && typeof data === 'object') return data;
    // A proxy's HTML error page has no JSON error; say what we know.
    const message = data?.error?.message ?? (res.ok ? 'unexpected answer' : `HTTP ${res.status}`);
    throw new ApiError(res.ok ? 0 : res.status, message, retryAfterMs(res), data?.error?.code ?? null);
  } catch (err) {
    if (err instanceof ApiError || signal?.aborted) throw err;
    throw new ApiError(0, navigator.onLine ? 'network error' : 'offline');
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  }
}

function retryAfterMs(res) {
  const value = res.headers.get('retry-after');
  if (value === null) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const when = Date.parse(value); // the HTTP-date form
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

// 408 comes from proxies that gave up on a slow request; retrying is right.
export const isTransient = (err) => err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;

export function retryDelay(err, attempt) {
  if ((err.status === 429 || err.status === 503) && err.retryAfterMs !== null) {
    // Up to a second more, so clients sent away together do not all return together.
    return err.retryAfterMs + Math.random() * 1000;
  }
  // Full jitter: after a restart, every cut-off client comes back at a different moment.
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/** Sleep ms; ends early on abort, and on the network coming back when that is what we wait for. */
export function wait(ms, signal, untilOnline = false) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      removeEventListener('online', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (untilOnline) addEventListener('online', done);
    signal?.addEventListener('abort', done);
  });
}

export const seconds = (ms) => Math.max(1, Math.ceil(ms / 1000));

export function waitingText(err, ms, what) {
  if (err.status === 429 || err.status === 503) return `server busy, ${what} in ${seconds(ms)} s`;
  if (!navigator.onLine) return `offline, ${what} in ${seconds(ms)} s`;
  return `${what} in ${seconds(ms)} s`;
}
