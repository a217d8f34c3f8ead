// CORS as a browser enforces it: a page on another origin (another port of
// 127.0.0.1) calling the chat server with fetch. With --cors-origins naming
// that origin, the page must see every answer (errors, 429 and the shutdown
// drain's 503 included) and read Retry-After; a page on an origin not in the
// list must see nothing (fetch throws). Posts carry a token in Authorization,
// as posting needs by default, so their preflights ask for that header too.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from './helpers/browser.js';
import { startTestServer } from './helpers/server.js';
import { newRoom, track, waitParked } from './http/util.js';

// Generous, because a loaded machine can be slow: bounds against hangs, not speed checks.
const TEST_TIMEOUT = 60_000;
/** Seconds the server answers 503 after shutdown() before closing: long enough for the page's fetches. */
const DRAIN_SECONDS = 5;

/** What the page saw: the answer, or the message fetch threw with. */
interface Seen {
  status?: number;
  /** The JSON error's code, if the body was one. */
  code?: string | null;
  /** The parsed JSON body, if it was JSON. */
  body?: unknown;
  retryAfter?: string | null;
  wwwAuthenticate?: string | null;
  error?: string;
}

interface ProbeInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** The page on the other origin: `probe(url, init)` fetches and reports what the page can see. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>another origin</title>
<script>
  window.probe = async (url, init) => {
    try {
      const res = await fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(20000), ...init });
      const text = await res.text();
      let body = null;
      try { body = JSON.parse(text); } catch {}
      return {
        status: res.status,
        code: body && body.error ? body.error.code : null,
        body,
        retryAfter: res.headers.get('retry-after'),
        wwwAuthenticate: res.headers.get('www-authenticate'),
      };
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  };
</script>`;

/** A tiny static server for PAGE on a port of its own: an origin other than the chat server's. */
async function startPageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    // Nothing else (the favicon): empty, so that the console shows only what the fetches caused.
    else res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let allowed: Awaited<ReturnType<typeof startPageServer>> | undefined;
let other: Awaited<ReturnType<typeof startPageServer>> | undefined;
let srv: Awaited<ReturnType<typeof startTestServer>> | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  allowed = await startPageServer();
  other = await startPageServer();
  srv = await startTestServer({ corsOrigins: [allowed.origin], postRate: 1, postBurst: 1, drainTimeout: DRAIN_SECONDS, anonymousPosts: false });
  token = await tokenFor('ann');
  browser = await launchChromium();
}, TEST_TIMEOUT);

afterAll(async () => {
  await browser?.close();
  // The same promise as the drain's if that test started it: waits for the server to be closed.
  await srv?.shutdown();
  for (const s of [allowed, other]) if (s) await new Promise<void>((resolve) => s.server.close(() => resolve()));
}, TEST_TIMEOUT);

const contexts: BrowserContext[] = [];
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

/** Browser console lines (CORS refusals are reported there), for failure messages. */
let consoleLines: string[] = [];

/** A fresh browser profile with PAGE loaded from `origin`. */
async function openPage(origin: string): Promise<Page> {
  const context = await browser!.newContext();
  contexts.push(context);
  const page = await context.newPage();
  consoleLines = [];
  page.on('console', (msg) => void consoleLines.push(msg.text()));
  await page.goto(`${origin}/`);
  expect(await page.evaluate<string>('location.origin')).toBe(origin);
  return page;
}

/** fetch(chat server + path) run by the page. */
function probe(page: Page, path: string, init: ProbeInit = {}): Promise<Seen> {
  return page.evaluate(
    ({ url, init }) => (globalThis as unknown as { probe(url: string, init: ProbeInit): Promise<Seen> }).probe(url, init),
    { url: srv!.baseUrl + path, init },
  );
}

/** A guest session's token, asked for from outside the browser. */
async function tokenFor(name: string): Promise<string> {
  const res = await fetch(`${srv!.baseUrl}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}
let token = '';

/** A signed-in JSON POST: Content-Type application/json and Authorization make the browser send a preflight first. */
const jsonPost = (author: string, text: string): ProbeInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
  body: JSON.stringify({ author, text }),
});

const why = (seen: Seen): string => `page saw ${JSON.stringify(seen)}; console: ${JSON.stringify(consoleLines)}`;

/** The page saw the answer with this status and error code, not a network error. */
function expectSeen(seen: Seen, status: number, code: string | null): void {
  expect(seen.error, why(seen)).toBeUndefined();
  expect(seen.status, why(seen)).toBe(status);
  expect(seen.code, why(seen)).toBe(code);
}

/** Retry-After readable by the page, as a positive whole number of seconds. */
function expectRetryAfter(seen: Seen): void {
  expect(seen.retryAfter ?? '(not readable)', why(seen)).toMatch(/^[1-9][0-9]*$/);
}

/** What a refusal looks like to the page: status, code, a readable Retry-After, no network error. */
const refused = (status: number, code: string) => ({ status, code, retryAfter: expect.stringMatching(/^[1-9][0-9]*$/), error: undefined });
const answered = (status: number, code: string | null) => ({ status, code, error: undefined });
/** Seen without the body, for comparing several answers at once. */
const brief = ({ status, code, retryAfter, error }: Seen): Seen => ({ status, code, retryAfter, error });
const briefNoRetry = ({ status, code, error }: Seen): Seen => ({ status, code, error });

describe('CORS in a browser, from a page on an allowed origin', () => {
  it('sees a rate-limited preflighted POST as 429 rate_limited and reads Retry-After', async () => {
    const page = await openPage(allowed!.origin);
    const path = `/api/rooms/${newRoom('cors')}/messages`;

    const first = await probe(page, path, jsonPost('ann', 'first'));
    expectSeen(first, 201, null);

    // postRate 1, postBurst 1: the next post within a second is refused. A
    // machine slow enough to let a token come back gets a 201 instead: try again, a bounded number of times.
    let limited: Seen | undefined;
    const tries: Seen[] = [];
    for (let i = 0; i < 10 && !limited; i++) {
      const seen = await probe(page, path, jsonPost('ann', `again ${i}`));
      tries.push(seen);
      if (seen.status === 429 || seen.error !== undefined) limited = seen;
    }
    expect(limited, `no 429 in ${JSON.stringify(tries)}`).toBeDefined();
    expectSeen(limited!, 429, 'rate_limited');
    expectRetryAfter(limited!);
  }, TEST_TIMEOUT);

  it('sees joins, room info, health, 404s and 400s as answers, not network errors', async () => {
    const page = await openPage(allowed!.origin);
    const room = newRoom('cors');

    const join = await probe(page, `/api/rooms/${room}/messages`);
    expectSeen(join, 200, null);
    expect(join.body).toMatchObject({ room, messages: [], last: 0 });

    const info = await probe(page, `/api/rooms/${room}`);
    expectSeen(info, 200, null);
    expect(info.body).toMatchObject({ room, head: 0 });

    // Health; unknown routes, inside the API and outside it; bad queries and rooms on the long-poll path.
    const expected = {
      '/healthz': answered(200, null),
      '/api/no-such-route': answered(404, 'not_found'),
      '/no-such-route': answered(404, 'not_found'),
      [`/api/rooms/${room}/messages?after=abc`]: answered(400, 'invalid_parameter'),
      [`/api/rooms/${room}/messages?after=0&before=1`]: answered(400, 'invalid_parameter'),
      '/api/rooms/no.dots/messages': answered(400, 'invalid_room'),
    };
    const seen: Record<string, Seen> = {};
    for (const path of Object.keys(expected)) seen[path] = briefNoRetry(await probe(page, path));
    expect(seen, `console: ${JSON.stringify(consoleLines)}`).toEqual(expected);
  }, TEST_TIMEOUT);

  it('sees the identity errors and private rooms as answers, reading WWW-Authenticate', async () => {
    const page = await openPage(allowed!.origin);
    const room = newRoom('cors');
    const post = (headers: Record<string, string>, body: object = { text: 'hi' }): ProbeInit =>
      ({ method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

    expectSeen(await probe(page, `/api/rooms/${room}/messages`, post({})), 401, 'unauthenticated');
    const bad = await probe(page, `/api/rooms/${room}/messages`, post({ Authorization: 'Bearer not.a.token' }));
    expectSeen(bad, 401, 'invalid_token');
    expect(bad.wwwAuthenticate, why(bad)).toMatch(/^Bearer .*error="invalid_token"/);

    // A session and a private room, all from the page; the room is not found without the token.
    // New sessions count against this address's posting limit (burst 1 here): wait as told, as a client would.
    let session = await probe(page, '/api/sessions', post({}, { name: 'cora' }));
    while (session.status === 429) {
      await page.waitForTimeout(Number(session.retryAfter) * 1000);
      session = await probe(page, '/api/sessions', post({}, { name: 'cora' }));
    }
    expectSeen(session, 201, null);
    const auth = { Authorization: `Bearer ${(session.body as { token: string }).token}` };
    const created = await probe(page, '/api/rooms', post(auth, {}));
    expectSeen(created, 201, null);
    const privateRoom = (created.body as { room: string }).room;
    expectSeen(await probe(page, `/api/rooms/${privateRoom}/messages`, { headers: auth }), 200, null);
    expectSeen(await probe(page, `/api/rooms/${privateRoom}/messages`), 404, 'not_found');
  }, TEST_TIMEOUT);
});

describe('CORS in a browser, from a page on an origin not in the list', () => {
  it('cannot read any answer: fetch throws', async () => {
    const page = await openPage(other!.origin);
    const room = newRoom('cors');
    for (const [path, init] of [
      [`/api/rooms/${room}/messages`, {}],
      [`/api/rooms/${room}`, {}],
      ['/api/no-such-route', {}],
      [`/api/rooms/${room}/messages?after=abc`, {}],
      [`/api/rooms/${room}/messages`, jsonPost('eve', 'from elsewhere')],
    ] as const) {
      const seen = await probe(page, path, init);
      expect(seen.status, `${path}: ${why(seen)}`).toBeUndefined();
      expect(seen.error, `${path}: ${why(seen)}`).toMatch(/Failed to fetch/);
    }
  }, TEST_TIMEOUT);
});

// Last: it shuts the server down.
describe('CORS in a browser during the shutdown drain', () => {
  it('sees the 503 shutting_down of a POST and of a poll, with Retry-After, and the answer of a poll woken by it', async () => {
    const page = await openPage(allowed!.origin);
    const room = newRoom('cors-drain');

    // A poll parked before the shutdown, answered (as a timeout) when it begins.
    await page.evaluate((url) => {
      const g = globalThis as unknown as { held: Promise<Seen>; probe(url: string): Promise<Seen> };
      g.held = g.probe(url);
    }, `${srv!.baseUrl}/api/rooms/${room}/messages?after=0&timeout=30`);
    await waitParked(srv!.baseUrl, 1);

    // Not awaited: the server answers 503 for DRAIN_SECONDS, then closes.
    const drained = track(srv!.shutdown());
    expect(srv!.chat.isClosing).toBe(true);

    const held = await page.evaluate(() => (globalThis as unknown as { held: Promise<Seen> }).held);
    // A URL this page never posted to, so the browser sends the POST's preflight during the drain too.
    const posted = await probe(page, `/api/rooms/${room}/messages`, jsonPost('ann', 'too late'));
    const polled = await probe(page, `/api/rooms/${room}/messages?after=0&timeout=5`);
    const joined = await probe(page, `/api/rooms/${room}/messages`);
    const info = await probe(page, `/api/rooms/${room}`);
    const drainOver = drained.settled();
    const note = drainOver ? ' (the drain was over before the page finished: raise DRAIN_SECONDS)' : '';

    expectSeen(held, 200, null);
    expect(held.body, why(held)).toMatchObject({ room, messages: [], last: 0 });
    expect(
      { posted: brief(posted), polled: brief(polled), joined: brief(joined), info: brief(info) },
      `console: ${JSON.stringify(consoleLines)}${note}`,
    ).toEqual({
      posted: refused(503, 'shutting_down'),
      polled: refused(503, 'shutting_down'),
      joined: refused(503, 'shutting_down'),
      info: refused(503, 'shutting_down'),
    });

    await drained.promise;
    expect(srv!.server.listening).toBe(false);
  }, TEST_TIMEOUT);
});
