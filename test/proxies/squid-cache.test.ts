// The page behind a real forward proxy (squid) told to cache everything for a
// minute in spite of no-store, as some corporate proxies are. Such a cache keys on
// the whole URL, query string included, so the page's cache buster must make every
// GET of every page load unique (its streams' URLs too): a second load of the page
// must get fresh answers, not the first load's, and both must keep receiving messages.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { getThroughProxy, missingBinaries, startSquid, type ProxyProcess } from '../helpers/proxies.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const skip = missingBinaries('the squid cache tests (test/proxies/squid-cache.test.ts)', ['squid', 'chromium']);

// Bounds against hangs only; every wait ends as soon as its condition holds.
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 60_000;

// Fresh for at least a minute whatever the answer says; `.` matches every URL,
// those with a query string included (no earlier pattern exempts them).
const REFRESH = 'refresh_pattern . 1 100% 60 ignore-no-store ignore-private override-expire ignore-reload';

let srv: TestServer | undefined;
let squid: ProxyProcess | undefined;
let browser: Browser | undefined;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (skip) return;
  srv = await startTestServer();
  squid = await startSquid(`strip_query_terms off\n${REFRESH}`);
  browser = await launchChromium(squid.url);
}, TEST_TIMEOUT);

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

afterAll(async () => {
  await browser?.close();
  await squid?.stop();
  await srv?.close();
});

let roomCounter = 0;
const newRoom = () => `squid-${process.pid}-${++roomCounter}`;

/** Posts straight to the server, as another client would. */
async function post(room: string, text: string): Promise<void> {
  const res = await fetch(`${srv!.baseUrl}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'zed', text }),
  });
  expect(res.status).toBe(201);
}

async function shown(page: Page, text: string): Promise<void> {
  await page.locator('#messages .msg', { hasText: text }).waitFor(WAIT);
}

interface Seen {
  method: string;
  url: string;
  xCache: string;
  /** The body, read for syncs only. */
  body?: Promise<string>;
  stream: boolean;
}

/** Loads the page in a fresh browser profile whose name is already chosen, into `room`; records its API answers. */
async function load(room: string): Promise<{ page: Page; seen: Seen[] }> {
  const context = await browser!.newContext({
    storageState: { cookies: [], origins: [{ origin: srv!.baseUrl, localStorage: [{ name: 'chat.name', value: 'ann' }] }] },
  });
  contexts.push(context);
  const page = await context.newPage();
  const seen: Seen[] = [];
  page.on('response', (res) => {
    const url = res.url();
    if (!url.includes('/api/')) return;
    const method = res.request().method();
    const sync = method === 'POST' && url.endsWith('/api/sync');
    const stream = method === 'GET' && new URL(url).pathname.endsWith('/api/stream');
    seen.push({ method, url, xCache: res.headers()['x-cache'] ?? '', body: sync ? res.text().catch(() => '') : undefined, stream });
  });
  await page.goto(`${srv!.baseUrl}/#${room}`);
  await page.locator('#status[data-state="live"]').waitFor(WAIT);
  return { page, seen };
}

describe.skipIf(skip)('the page behind a squid that caches in spite of no-store', () => {
  it('answers a repeated GET of a poll URL from its cache, stale', async () => {
    const room = newRoom();
    const url = `${srv!.baseUrl}/api/rooms/${room}/messages?t=1`;
    // What fetch(…, { cache: 'no-store' }) sends; ignore-reload makes squid disregard it.
    const headers = { 'cache-control': 'no-cache', pragma: 'no-cache' };
    const first = await getThroughProxy(squid!.port, url, headers);
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toContain('no-store');
    expect(first.headers['x-cache']).toMatch(/^MISS/);
    await post(room, 'posted between the two GETs');

    const second = await getThroughProxy(squid!.port, url, headers);
    expect(second.headers['x-cache']).toMatch(/^HIT/);
    expect(second.body).toBe(first.body);
    expect(JSON.parse(second.body)).toMatchObject({ messages: [], last: 0 });
    // The server itself has the message.
    const direct = await (await fetch(url)).json();
    expect(direct).toMatchObject({ messages: [{ text: 'posted between the two GETs' }], last: 1 });
  });

  it('gives a second page load fresh answers, and keeps both loads receiving messages', async () => {
    const room = newRoom();
    const first = await load(room);
    await post(room, 'between the loads');
    await shown(first.page, 'between the loads');

    const second = await load(room);
    await shown(second.page, 'between the loads');
    // Its first sync or stream (the join) came from the server, with the message, not
    // from a cache. (A stream's events cannot be read here; the message shown is its.)
    const join = second.seen.find((s) => s.body || s.stream);
    const transport = await second.page.evaluate<string>('document.documentElement.dataset.transport');
    console.log(`behind squid, the second load uses ${transport}; joined by ${join?.method} ${join && new URL(join.url).pathname}, ${join?.xCache}`);
    expect(join, 'the second load synced or streamed').toBeDefined();
    expect(join!.stream).toBe(transport === 'stream');
    expect(join!.xCache, join!.url).toMatch(/^MISS/);
    if (join!.body) expect(JSON.parse(await join!.body)).toMatchObject({ rooms: { [room]: { messages: [{ text: 'between the loads' }] } } });

    await post(room, 'after both loads');
    for (const { page } of [first, second]) await shown(page, 'after both loads');
    for (const { page } of [first, second]) {
      expect(await page.locator('#messages .msg').allTextContents()).toEqual([
        expect.stringContaining('between the loads'),
        expect.stringContaining('after both loads'),
      ]);
    }

    // No API request of either load was answered from squid's cache; each carries
    // squid's X-Cache, so each went through it: its GETs (streams included), whose
    // cache busters make each URL new, and its syncs, which are POSTs.
    const all = [...first.seen, ...second.seen];
    expect(all.filter((s) => !/^MISS/.test(s.xCache)).map((s) => `${s.xCache} ${s.method} ${s.url}`)).toEqual([]);
    const joins = all.filter((s) => s.body || s.stream);
    expect(joins.length).toBeGreaterThanOrEqual(2);
    expect(new Set(all.filter((s) => s.method === 'GET').map((s) => s.url)).size).toBe(all.filter((s) => s.method === 'GET').length);
    // squid logs a request once it ends: the streams, once the pages are gone.
    await Promise.all(contexts.splice(0).map((context) => context.close()));
    const logged = async () => {
      const log = await squid!.read('access.log');
      return [...all.filter((s) => s.body).map((s) => ` POST ${s.url} `), ...all.filter((s) => s.method === 'GET').map((s) => ` GET ${s.url} `)]
        .filter((line) => !log.includes(line));
    };
    await expect.poll(logged, WAIT).toEqual([]);
  }, TEST_TIMEOUT);
});
