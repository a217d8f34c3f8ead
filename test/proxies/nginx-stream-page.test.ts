// The page's stream (GET /api/stream) behind real nginx instances. One buffers
// responses as nginx does by default but honours the server's X-Accel-Buffering: no,
// so the stream works: the page streams, and every message posted from outside shows
// once, in order. The other ignores that header (proxy_ignore_headers) and compresses
// API answers (gzip, event streams included), so it holds the stream back: the page
// sees no event soon after asking, polls instead without ever saying "reconnecting",
// loses and repeats nothing across the switch, and remembers the choice: reloaded, it
// polls at once. A third is the second with postpone_output 0, which lets the headers
// through at once: the page then sees the stream open, and still nothing come.
//
// Why gzip too: nginx 1.22 ignoring the header alone still passes each event on as it
// reads it (its buffering decouples a slow client, it does not wait to fill buffers),
// so the stream works through it. What holds events back is a filter that waits for
// more data unless told to flush: gzip, which the unbuffered proxying that
// X-Accel-Buffering: no asks for flushes after every chunk, and buffered proxying
// does not. With nothing flushed, nginx holds even the headers (its write filter
// postpones output under 1460 bytes), so EventSource never even says 'open'.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { missingBinaries, startNginx, type ProxyProcess } from '../helpers/proxies.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const skip = missingBinaries('the page\'s stream behind nginx (test/proxies/nginx-stream-page.test.ts)', ['nginx', 'chromium']);

const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 60_000;

let srv: TestServer | undefined;
let honouring: ProxyProcess | undefined;
let ignoring: ProxyProcess | undefined;
let ignoringOpens: ProxyProcess | undefined;
let browser: Browser | undefined;

const upstream = (extra: string) => `
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    ${extra}
    location / { proxy_pass ${srv!.baseUrl}; }`;

beforeAll(async () => {
  if (skip) return;
  srv = await startTestServer();
  honouring = await startNginx(() => ({ server: upstream('') }));
  const holding = 'proxy_ignore_headers X-Accel-Buffering;\n    gzip on;\n    gzip_types application/json text/event-stream;';
  ignoring = await startNginx(() => ({ server: upstream(holding) }));
  ignoringOpens = await startNginx(() => ({ server: upstream(`${holding}\n    postpone_output 0;`) }));
  browser = await launchChromium();
}, TEST_TIMEOUT);

afterAll(async () => {
  await browser?.close();
  await honouring?.stop();
  await ignoring?.stop();
  await ignoringOpens?.stop();
  await srv?.close();
});

/** A profile that chose the name "ann" earlier, so that a link to a room joins it at once. */
function newContext(origin: string): Promise<BrowserContext> {
  return browser!.newContext({
    storageState: { cookies: [], origins: [{ origin, localStorage: [{ name: 'chat.name', value: 'ann' }] }] },
  });
}

/**
 * From the start of every load: each status state shown, and each transport in use with
 * the ms since the load began (performance.now()).
 */
const WATCH = `(() => {
  window.states = [];
  window.transports = [];
  addEventListener('DOMContentLoaded', () => {
    const status = document.getElementById('status');
    new MutationObserver(() => window.states.push(status.dataset.state))
      .observe(status, { attributes: true, attributeFilter: ['data-state'] });
  });
  new MutationObserver(() => {
    const t = document.documentElement.dataset.transport;
    if (t !== window.transports.at(-1)?.[0]) window.transports.push([t, Math.round(performance.now())]);
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-transport'] }); // <html> may not be there yet
})()`;

/** Posts `text` to `room` straight to the server, as another client would. */
async function postOutside(room: string, text: string): Promise<void> {
  const res = await fetch(`${srv!.baseUrl}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'zed', text }),
  });
  expect(res.status).toBe(201);
}

const shown = (page: Page) => page.locator('#messages .msg .text').allTextContents();
const transport = (page: Page) => page.evaluate<string | undefined>('document.documentElement.dataset.transport');

/** Which requests a page makes: streams opened and syncs sent. */
function countRequests(page: Page): { streams: number; syncs: number } {
  const seen = { streams: 0, syncs: 0 };
  page.on('request', (req) => {
    const path = new URL(req.url()).pathname;
    if (path.endsWith('/api/stream')) seen.streams++;
    if (path.endsWith('/api/sync')) seen.syncs++;
  });
  return seen;
}

describe.skipIf(skip)('the page\'s stream behind nginx', () => {
  it('streams where nginx honours X-Accel-Buffering: no, and shows each message once, in order', async () => {
    const room = `nginx-stream-${process.pid}`;
    const context = await newContext(honouring!.url);
    await context.addInitScript(WATCH);
    const page = await context.newPage();
    const seen = countRequests(page);
    await page.goto(`${honouring!.url}/#${room}`);
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await transport(page)).toBe('stream');
    expect(await page.locator('#status').getAttribute('title')).toContain('stream');

    const sent: string[] = [];
    const times: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const text = `streamed ${i}`;
      const at = Date.now();
      await postOutside(room, text);
      sent.push(text);
      await page.locator('#messages .msg .text', { hasText: text }).waitFor(WAIT);
      times.push(Date.now() - at);
    }
    // Three at once too: one event each, or one batch.
    for (let i = 6; i <= 8; i++) {
      await postOutside(room, `streamed ${i}`);
      sent.push(`streamed ${i}`);
    }
    await page.locator('#messages .msg .text', { hasText: 'streamed 8' }).waitFor(WAIT);
    expect(await shown(page)).toEqual(sent);
    console.log(`through nginx (X-Accel-Buffering honoured), ms from post to shown: [${times.join(', ')}]; streams opened: ${seen.streams}, syncs: ${seen.syncs}`);
    expect(seen.syncs).toBe(0);
    expect(seen.streams).toBe(1);
    expect(await transport(page)).toBe('stream');
    expect(await page.evaluate<string[]>('window.states')).not.toContain('retrying');
    await context.close();
  }, TEST_TIMEOUT);

  it.each<[string, () => ProxyProcess, string]>([
    ['the stream', () => ignoring!, 'did not even start'],
    ['the stream\'s events, not its headers', () => ignoringOpens!, 'opened, but brought nothing'],
  ])('polls instead where nginx holds back %s, losing and repeating nothing, and remembers it', async (what, proxy, why) => {
    const room = `nginx-buffered-${process.pid}-${why.length}`;
    const context = await newContext(proxy().url);
    await context.addInitScript(WATCH);
    const page = await context.newPage();
    const seen = countRequests(page);
    const sent: string[] = [];
    const post = async (text: string) => {
      await postOutside(room, text);
      sent.push(text);
    };
    await post('before load');
    await page.goto(`${proxy().url}/#${room}`);
    // While the page is on the (buffered) stream: before it switches.
    await expect.poll(() => seen.streams, WAIT).toBeGreaterThan(0);
    await post('while streaming 1');
    await post('while streaming 2');
    await expect.poll(() => transport(page), WAIT).toBe('poll');
    await post('after the switch 1');
    await page.locator('#messages .msg .text', { hasText: 'after the switch 1' }).waitFor(WAIT);
    await post('after the switch 2');
    await post('after the switch 3');
    await page.locator('#messages .msg .text', { hasText: 'after the switch 3' }).waitFor(WAIT);
    expect(await shown(page)).toEqual(sent);

    const transports = await page.evaluate<[string, number][]>('window.transports');
    expect(transports.map(([t]) => t)).toEqual(['stream', 'poll']);
    const title = await page.locator('#status').getAttribute('title');
    console.log(`through nginx holding back ${what}: switched to polling ${transports[1]![1]} ms after the page began loading `
      + `(on the stream since ${transports[0]![1]} ms: ${transports[1]![1] - transports[0]![1]} ms to detect the buffering); `
      + `streams opened: ${seen.streams}; status tooltip: ${JSON.stringify(title)}`);
    expect(title).toContain('polling');
    expect(title).toContain(why);
    expect(seen.streams).toBe(1);
    expect(await page.evaluate<string[]>('window.states')).not.toContain('retrying');
    const saved = JSON.parse((await page.evaluate<string | null>('localStorage.getItem("chat.transport")'))!) as { mode: string; until: number };
    expect(saved.mode).toBe('poll');
    expect(saved.until).toBeGreaterThan(Date.now() + 5 * 60_000);

    // Reloaded: polls from the start, no stream tried.
    const streamsBefore = seen.streams;
    await page.reload();
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await page.evaluate<[string, number][]>('window.transports')).toEqual([['poll', expect.any(Number)]]);
    await post('after the reload');
    await page.locator('#messages .msg .text', { hasText: 'after the reload' }).waitFor(WAIT);
    expect(await shown(page)).toEqual(sent);
    expect(seen.streams).toBe(streamsBefore);
    expect(await page.evaluate<string[]>('window.states')).not.toContain('retrying');
    await context.close();
  }, TEST_TIMEOUT);
});
