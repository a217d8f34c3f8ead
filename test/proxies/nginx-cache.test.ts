// A real nginx that caches the API although it says no-store, and whose cache key
// leaves out the query string: every GET poll, whatever its cursor and cache
// buster, gets the one cached answer at once. The page streams (a GET, but nginx
// caches no response it does not buffer, and the server's X-Accel-Buffering: no
// turns buffering off) or syncs with POST, which such a cache passes on: either way
// it stays live behind it. (A page answered too soon anyway slows down and says so:
// test/browser.test.ts.)
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Request } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { missingBinaries, startNginx, type ProxyProcess } from '../helpers/proxies.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const skip = missingBinaries('the nginx cache tests (test/proxies/nginx-cache.test.ts)', ['nginx', 'chromium']);

// Bounds against hangs only; every wait ends as soon as its condition holds.
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 60_000;

let srv: TestServer | undefined;
let nginx: ProxyProcess | undefined;
let browser: Browser | undefined;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (skip) return;
  srv = await startTestServer();
  nginx = await startNginx((dir) => ({
    http: `  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=chat:1m max_size=10m inactive=10m use_temp_path=off;`,
    server: `
    location / {
      proxy_pass ${srv!.baseUrl};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache chat;
      proxy_cache_key $scheme$host$uri;
      proxy_ignore_headers Cache-Control Expires Set-Cookie;
      proxy_cache_valid 200 10m;
      add_header X-Cache-Status $upstream_cache_status always;
    }`,
  }));
  browser = await launchChromium();
}, TEST_TIMEOUT);

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  await srv?.close();
});

describe.skipIf(skip)('the page behind an nginx cache that ignores no-store and query strings', () => {
  it('serves every poll the same cached answer', async () => {
    const room = `nginx-cache-${process.pid}-probe`;
    const url = (query: string) => `${nginx!.url}/api/rooms/${room}/messages?${query}`;
    const first = await fetch(url('t=1'));
    expect(first.headers.get('cache-control')).toContain('no-store');
    const joined = await first.text();
    // Stored once the answer is complete; a later GET is a hit whatever its query.
    await expect.poll(async () => (await fetch(url('t=2'))).headers.get('x-cache-status'), WAIT).toBe('HIT');
    const poll = await fetch(url('after=0&timeout=25&t=3'));
    expect(poll.headers.get('x-cache-status')).toBe('HIT');
    expect(await poll.text()).toBe(joined);
  });

  it('leaves the page live: its stream is not buffered, so not cached, and its syncs are POSTs, which the cache passes to the server', async () => {
    const room = `nginx-cache-${process.pid}-page`;
    // The room's join answer is in the cache before the page comes: a page that
    // polled with GET would get it back at once, for ever (10 minutes).
    const join = `${nginx!.url}/api/rooms/${room}/messages`;
    await fetch(join);
    await expect.poll(async () => (await fetch(join)).headers.get('x-cache-status'), WAIT).toBe('HIT');

    const context = await browser!.newContext({
      storageState: { cookies: [], origins: [{ origin: nginx!.url, localStorage: [{ name: 'chat.name', value: 'ann' }] }] },
    });
    contexts.push(context);
    const page = await context.newPage();
    const gets: string[] = [];
    const syncs: string[] = [];
    const streams: Request[] = [];
    page.on('request', (req) => {
      if (req.method() === 'GET' && req.url().includes('/messages?') && req.url().includes('after=')) gets.push(req.url());
      if (req.method() === 'POST' && req.url().endsWith('/api/sync')) syncs.push(req.url());
      if (req.method() === 'GET' && new URL(req.url()).pathname.endsWith('/api/stream')) streams.push(req);
    });
    await page.goto(`${nginx!.url}/#${room}`);
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    const res = await fetch(`${srv!.baseUrl}/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ author: 'zed', text: 'past the cache' }),
    });
    expect(res.status).toBe(201);
    await page.locator('#messages .msg', { hasText: 'past the cache' }).waitFor(WAIT);
    expect(await page.locator('#status').getAttribute('data-state')).toBe('live');
    expect(gets).toEqual([]);
    const transport = await page.evaluate<string>('document.documentElement.dataset.transport');
    console.log(`behind the nginx cache, the page uses ${transport}: ${streams.length} stream(s), ${syncs.length} sync(s)`);
    const logged = async (prefix: string) => (await nginx!.read('access.log')).split('\n').filter((line) => line.startsWith(prefix));
    if (transport === 'stream') {
      // Each stream reached the server: a MISS (never stored, so never a HIT). As the
      // response's header says: nginx logs a stream only once it ends.
      expect(streams.length).toBeGreaterThan(0);
      expect(await Promise.all(streams.map(async (req) => (await req.response())?.headers()['x-cache-status']))).toEqual(streams.map(() => 'MISS'));
    } else {
      expect(transport).toBe('poll');
      expect(syncs.length).toBeGreaterThan(0);
      // Every sync reached the server (nginx caches GET and HEAD only): no cache status, 200.
      const syncLines = await logged('/api/sync ');
      expect(syncLines.length).toBeGreaterThan(0);
      for (const line of syncLines) expect(line).toBe('/api/sync - 200');
    }
  }, TEST_TIMEOUT);
});
