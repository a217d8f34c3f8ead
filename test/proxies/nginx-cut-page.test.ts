// The page behind a real nginx that cuts every request idle longer than 10 s
// (proxy_read_timeout 10s). The page streams first: the server's heartbeat (a
// comment every 15 s, the default) comes too late, so nginx cuts each idle stream at
// 10 s, and after the third cut within two minutes the page polls instead. Its polls
// ask for 25 s holds: after two cuts at about 10 s it asks for 5 s holds and is cut
// no more. No cut is shown as trouble ("reconnecting"); and every message posted
// meanwhile, around the cuts too, shows exactly once and in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { missingBinaries, startNginx, type ProxyProcess } from '../helpers/proxies.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { post as postMessage } from '../http/util.js';

const skip = missingBinaries('the page behind an nginx that cuts held requests (test/proxies/nginx-cut-page.test.ts)', ['nginx', 'chromium']);

const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 120_000;
const CUT_S = 10;

let srv: TestServer | undefined;
let nginx: ProxyProcess | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  if (skip) return;
  srv = await startTestServer();
  nginx = await startNginx(() => ({
    server: `
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout ${CUT_S}s;
    location / { proxy_pass ${srv!.baseUrl}; }`,
  }));
  browser = await launchChromium();
}, TEST_TIMEOUT);

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  await srv?.close();
});

describe.skipIf(skip)(`the page behind an nginx that cuts held requests at ${CUT_S} s`, () => {
  it('polls after three cut streams, lowers its hold below the cut after two cuts, is cut no more, never says "reconnecting", and loses or repeats nothing', async () => {
    const room = `nginx-cut-${process.pid}`;
    const context = await browser!.newContext({
      storageState: { cookies: [], origins: [{ origin: nginx!.url, localStorage: [{ name: 'chat.name', value: 'ann' }] }] },
    });
    const page = await context.newPage();
    const sent: string[] = [];
    const postings: Promise<void>[] = [];
    /** A message straight to the server, as another client would send it. */
    const post = (text: string): void => {
      postings.push((async () => {
        const res = await postMessage(srv!.baseUrl, room, { author: 'zed', text });
        expect(res.status).toBe(201);
        sent.push(text);
      })());
    };
    // Each sync: when it was sent, the hold it asked for, and how it ended. Right after
    // each cut a message is posted, landing while the page reconnects.
    const syncs: { at: number; hold: number; status?: number }[] = [];
    const started = Date.now();
    // Each stream: when it was asked for, and when it ended. Each one after the first
    // replaces one cut: a message is posted as it goes out.
    const streams: { at: number; ended?: number }[] = [];
    const streamOf = new Map<object, { at: number; ended?: number }>();
    const streamEnded = (req: object): void => {
      const stream = streamOf.get(req);
      if (stream) stream.ended ??= Date.now() - started;
    };
    page.on('requestfinished', streamEnded);
    page.on('requestfailed', streamEnded);
    page.on('request', (req) => {
      if (req.method() === 'GET' && new URL(req.url()).pathname.endsWith('/api/stream')) {
        const stream = { at: Date.now() - started };
        streams.push(stream);
        streamOf.set(req, stream);
        if (streams.length > 1) post(`around stream cut ${streams.length - 1}`);
        return;
      }
      if (req.method() !== 'POST' || !req.url().endsWith('/api/sync')) return;
      const entry: { at: number; hold: number; status?: number } = { at: Date.now() - started, hold: (JSON.parse(req.postData() ?? '{}') as { timeout: number }).timeout };
      syncs.push(entry);
      req.response().then((res) => {
        entry.status = res?.status();
        if (entry.status === 504) post(`around cut ${syncs.length}`);
      }, () => {});
    });
    await page.goto(`${nginx!.url}/#${room}`);
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    await page.evaluate(`(() => {
      window.states = [];
      new MutationObserver(() => window.states.push(document.getElementById('status').dataset.state))
        .observe(document.getElementById('status'), { attributes: true, attributeFilter: ['data-state'] });
    })()`);

    // Three cut streams (about 30 s), then two cut polls (20 s more).
    await expect.poll(() => page.evaluate('document.documentElement.dataset.transport'), { timeout: 60_000, interval: 500 }).toBe('poll');
    const switchedAt = Date.now() - started;
    await expect.poll(() => syncs.some((s) => s.hold < CUT_S), { timeout: 60_000, interval: 500 }).toBe(true);
    const adaptedAt = syncs.find((s) => s.hold < CUT_S)!.at;
    // Held 5 s at a time now: three cuts' worth of time, with messages now and then.
    for (let i = 1; i <= 3; i++) {
      await page.waitForTimeout(CUT_S * 1000 - 1700 * i);
      post(`after adapting ${i}`);
    }
    await page.waitForTimeout(CUT_S * 1000);
    await Promise.all(postings);
    const after = syncs.filter((s) => s.at >= adaptedAt && s.status !== undefined);
    const cutBefore = syncs.filter((s) => s.at < adaptedAt && s.status === 504);
    console.log(`streams cut: ${streams.filter((s) => s.ended !== undefined).length} of ${streams.length}, after [${streams.map((s) => (s.ended ?? NaN) - s.at).join(', ')}] ms; `
      + `polling from ${switchedAt} ms after the page loaded; syncs cut (504) before adapting: ${cutBefore.length}; `
      + `adapted ${adaptedAt} ms after the page loaded, to a ${after[0]?.hold} s hold; syncs since: ${after.length}, cut: ${after.filter((s) => s.status !== 200).length}`);
    expect(streams.length).toBe(3);
    for (const stream of streams) expect((stream.ended ?? Infinity) - stream.at).toBeGreaterThan((CUT_S - 1) * 1000);
    // Polling only once the third stream was cut: one connection at a time.
    expect(syncs[0]!.at).toBeGreaterThan(streams[2]!.at + (CUT_S - 1) * 1000);
    expect(await page.evaluate('document.documentElement.dataset.transport')).toBe('poll');
    expect(cutBefore.length).toBeGreaterThanOrEqual(2);
    expect(after.length).toBeGreaterThan(2);
    expect(after.every((s) => s.hold === CUT_S - 5)).toBe(true);
    expect(after.filter((s) => s.status !== 200)).toEqual([]);
    expect(await page.evaluate<string[]>('window.states')).not.toContain('retrying');

    await fetch(`${srv!.baseUrl}/api/rooms/${room}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ author: 'zed', text: 'last' }),
    });
    await page.locator('#messages .msg', { hasText: 'last' }).waitFor(WAIT);
    const shown = await page.locator('#messages .msg .text').allTextContents();
    expect(shown).toEqual([...sent, 'last']);
    await context.close();
  }, 180_000);
});
