// The page in a real browser against a real server with the real default (posting
// needs a token: the page signs in as a guest): two people chatting, user text
// that looks like HTML staying text, bidi controls kept in their box, the layout
// on a phone, own messages, the token never in a URL (a stream's ticket is), cache
// busting, syncs answered too soon (the page made to poll), and
// messages from before accounts (no author id). Private rooms, direct messages and
// the session's lifetime are in private-rooms-browser.test.ts; many tabs of one
// browser sharing one sync, unread counts, presence and typing in tabs-browser.test.ts.
import { describe, expect, it } from 'vitest';
import { type Page } from 'playwright-core';
import { joinThroughForm, useBrowserChat } from './helpers/browser.js';
import { startTestServer } from './helpers/server.js';

// Generous, because a loaded machine can be slow; every wait ends as soon as its condition holds.
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 60_000;

const chat = useBrowserChat({ anonymousPosts: false }, TEST_TIMEOUT);

let roomCounter = 0;
const newRoom = () => `browser-${process.pid}-${Date.now()}-${++roomCounter}`;

/** A page in a fresh browser profile (own localStorage and sessionStorage), not loaded yet. */
const newPage = (viewport?: { width: number; height: number }): Promise<Page> => chat.newPage(viewport);

/** A fresh browser profile that has joined `room` as `name`. */
async function openChat(name: string, room: string, page?: Page): Promise<Page> {
  return joinThroughForm(page ?? (await newPage()), chat.server().baseUrl, name, room, WAIT.timeout);
}

async function send(page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
}

/** A guest session's token for `name`, as any client gets one. */
async function tokenFor(baseUrl: string, name: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

/** Posts through the server's API, as another client would: signed in, or (`token` null) anonymously as in v1. */
async function post(room: string, text: string, { baseUrl = chat.server().baseUrl, author = 'zed', token }: { baseUrl?: string; author?: string; token?: string | null } = {}): Promise<void> {
  token = token === undefined ? await tokenFor(baseUrl, author) : token;
  const res = await fetch(`${baseUrl}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ author, text }),
  });
  expect(res.status).toBe(201);
}

/** The one shown message containing `snippet`, once it has arrived. */
async function shown(page: Page, snippet: string) {
  const msg = page.locator('#messages .msg', { hasText: snippet });
  await msg.waitFor(WAIT);
  return msg;
}

describe('chat page', () => {
  it('lets two people in the same room talk', async () => {
    const room = newRoom();
    const alice = await openChat('alice', room);
    const bob = await openChat('bob', room);

    await send(alice, 'hello from alice');
    const atBob = await shown(bob, 'hello from alice');
    expect(await atBob.locator('.author').textContent()).toBe('alice');
    expect(await atBob.locator('.text').textContent()).toBe('hello from alice');
    // Cleared once the server accepted it.
    await expect.poll(() => alice.locator('#text').inputValue(), WAIT).toBe('');

    const reply = 'hi alice,\nbob here';
    await send(bob, reply);
    const atAlice = await shown(alice, 'bob here');
    expect(await atAlice.locator('.author').textContent()).toBe('bob');
    expect(await atAlice.locator('.text').textContent()).toBe(reply);

    // Each page shows both messages exactly once, with the room's numbering.
    for (const page of [alice, bob]) {
      await shown(page, 'bob here');
      const msgs = await page.locator('#messages .msg').all();
      const seqs = await Promise.all(msgs.map((msg) => msg.getAttribute('data-seq')));
      expect(seqs).toEqual(['1', '2']);
    }
  }, TEST_TIMEOUT);

  it('shows text that looks like HTML as text', async () => {
    const room = newRoom();
    const alice = await openChat('alice', room);
    const bob = await openChat('bob', room);
    const raw = '<b>bold</b><img src=x onerror="window.__xss=1">';

    await send(alice, raw);
    for (const page of [bob, alice]) {
      // Found by number, not by text, so a page that renders markup fails on the assertion.
      const msg = page.locator('#messages .msg[data-seq="1"]');
      await msg.waitFor(WAIT);
      expect(await msg.locator('.text').textContent()).toBe(raw);
      expect(await page.locator('#messages b, #messages img').count()).toBe(0);
      expect(await page.evaluate('typeof window.__xss')).toBe('undefined');
    }
  }, TEST_TIMEOUT);

  it('switches room when the hash changes and leaves the old room behind', async () => {
    const first = newRoom();
    const second = newRoom();
    const alice = await openChat('alice', first);
    const bob = await openChat('bob', first);

    await send(alice, 'still in the first room');
    await shown(alice, 'still in the first room');
    await alice.evaluate(`location.hash = ${JSON.stringify(second)}`);
    await alice.locator('#room-title', { hasText: second }).waitFor(WAIT);
    await alice.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await alice.locator('#messages .msg').count()).toBe(0);

    await send(bob, 'only for the first room');
    await shown(bob, 'only for the first room');
    await send(alice, 'hello second room');
    await shown(alice, 'hello second room');
    expect(await alice.locator('#messages .msg').count()).toBe(1);
  }, TEST_TIMEOUT);

  it('explains an invalid room name next to the field', async () => {
    const page = await newPage();
    await page.goto(`${chat.server().baseUrl}/`);
    await page.locator('#name').fill('carol');
    await page.locator('#room').fill('no spaces!');
    await page.locator('#join-form [type="submit"]').click();
    await page.locator('#room-error').waitFor(WAIT);
    expect(await page.locator('#room').getAttribute('aria-invalid')).toBe('true');
    expect(page.url()).not.toContain('#');
  }, TEST_TIMEOUT);

  it.each([
    ['an override', '\u202Eann', '\u202Ehello world'],
    // A pop-directional-isolate with no isolate of its own would end the page's isolate around the name early.
    ['a stray isolate end, then an override', '\u2069\u202Eann', '\u2069\u202Ehello world'],
    ['isolates closed one time too many', 'a\u2067b\u2069\u2069\u202Enn', 'x\u2066y\u2069\u2069\u202Ez'],
    // The page's own closing of its isolate would close this one instead.
    ['an override, then an isolate left open', '\u202Eevil\u2067', '\u202Eevil\u2067'],
  ])('keeps bidi controls in user text (%s) from reordering anything outside its own box', async (_what, name, text) => {
    const room = newRoom();
    const page = await openChat(name, room);
    await send(page, text);
    const msg = page.locator('#messages .msg[data-seq="1"]');
    await msg.waitFor(WAIT);
    // What is shown is what was sent, but for isolate ends that close nothing of the text's own, or close what it left open.
    const visible = (s: string) => s.replace(/[\u2066-\u2069]/g, '');
    expect(visible((await msg.locator('.author').textContent())!)).toBe(visible(name));
    expect(visible((await msg.locator('.text').textContent())!)).toBe(visible(text));

    const geometry = await msg.evaluate((node) => {
      const box = (selector?: string) => {
        const r = (selector ? node.querySelector(selector)! : node).getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      };
      return { msg: box(), meta: box('.meta'), author: box('.meta .author'), time: box('.meta time'), text: box('.text') };
    });
    // An override leaking out of the name would put the time before it (and reverse it).
    expect(geometry.time.left).toBeGreaterThanOrEqual(geometry.author.right - 0.5);
    expect(geometry.author.left).toBeGreaterThanOrEqual(geometry.meta.left - 0.5);
    expect(geometry.text.top).toBeGreaterThanOrEqual(geometry.meta.bottom - 0.5);
    expect(geometry.text.left).toBeGreaterThanOrEqual(geometry.msg.left);
    expect(geometry.text.right).toBeLessThanOrEqual(geometry.msg.right);
    // The name shown in the header is isolated too, and the page's "as" stays before it.
    expect(visible((await page.locator('#my-name').textContent())!)).toBe(visible(name));
    expect(await page.locator('#my-name').evaluate((node) => node.ownerDocument.defaultView!.getComputedStyle(node).unicodeBidi)).toBe('isolate');
    const me = await page.locator('#me').evaluate((node) => {
      const range = node.ownerDocument.createRange();
      range.setStart(node.firstChild!, 0);
      range.setEnd(node.firstChild!, 2);
      return { as: range.getBoundingClientRect().right, name: node.querySelector('#my-name')!.getBoundingClientRect().left };
    });
    expect(me.name).toBeGreaterThanOrEqual(me.as - 0.5);
  }, TEST_TIMEOUT);

  it('fits a 390 px wide screen, with the join form collapsed after joining and whole when reopened', async () => {
    const viewport = { width: 390, height: 800 };
    const page = await openChat('ann', newRoom(), await newPage(viewport));
    const overflow = () => page.evaluate<number>('document.documentElement.scrollWidth');
    const inViewport = async (selector: string) => {
      const r = (await page.locator(selector).boundingBox())!;
      return r.x >= 0 && r.y >= 0 && r.x + r.width <= viewport.width && r.y + r.height <= viewport.height;
    };

    expect(await page.locator('#join-form').isVisible()).toBe(false);
    expect(await page.locator('#my-name').textContent()).toBe('ann');
    // The room list is a drawer behind a button here, not a sidebar taking the conversation's width.
    expect(await page.locator('#drawer').isVisible()).toBe(false);
    for (const selector of ['#drawer-toggle', '#room-title', '#status', '#change', '#room-menu', '#text', '#send']) {
      expect(await page.locator(selector).isVisible(), selector).toBe(true);
      expect(await inViewport(selector), selector).toBe(true);
    }
    expect(await overflow()).toBeLessThanOrEqual(viewport.width);

    await page.locator('#change').click();
    await page.locator('#join-form').waitFor(WAIT);
    expect(await page.evaluate('document.activeElement?.id')).toBe('name');
    for (const selector of ['#name', '#room', '#join']) {
      expect(await page.locator(selector).isVisible(), selector).toBe(true);
      expect(await inViewport(selector), selector).toBe(true);
    }
    expect(await overflow()).toBeLessThanOrEqual(viewport.width);

    await page.locator('#name').fill('ann2');
    await page.locator('#join').click();
    await page.locator('#join-form').waitFor({ ...WAIT, state: 'hidden' });
    expect(await page.locator('#my-name').textContent()).toBe('ann2');
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
  }, TEST_TIMEOUT);

  it('asks for a name before joining a room named in the link', async () => {
    const room = newRoom();
    const page = await newPage();
    await page.goto(`${chat.server().baseUrl}/#${room}`);
    await page.locator('#join-hint', { hasText: `Choose a name to join #${room}` }).waitFor(WAIT);
    expect(await page.evaluate('document.activeElement?.id')).toBe('name');
    expect(await page.locator('#room').inputValue()).toBe(room);
    expect(await page.locator('#status').getAttribute('data-state')).not.toBe('live');
    expect(await page.locator('#send').isDisabled()).toBe(true);
    expect(await page.locator('#text').isDisabled()).toBe(true);

    await page.locator('#name').fill('erin');
    await page.locator('#join').click();
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await page.locator('#room-title').textContent()).toBe(`#${room}`);
    expect(await page.locator('#join-hint').isVisible()).toBe(false);
    await send(page, 'erin is here');
    await shown(page, 'erin is here');
  }, TEST_TIMEOUT);

  it('marks as own exactly the messages of this user (by id, not name), also after a reload', async () => {
    const room = newRoom();
    const first = await openChat('ann', room);
    const second = await openChat('ann', room);
    await send(first, 'from the first tab');
    await shown(first, 'from the first tab');
    await send(second, 'from the second tab');

    const mine = (page: Page) => page.locator('#messages .msg.mine .text').allTextContents();
    for (const [page, own] of [[first, 'from the first tab'], [second, 'from the second tab']] as const) {
      await shown(page, 'from the second tab');
      expect(await page.locator('#messages .msg').count()).toBe(2);
      expect(await mine(page)).toEqual([own]);
    }

    await first.reload();
    await shown(first, 'from the second tab');
    expect(await mine(first)).toEqual(['from the first tab']);

    // Another tab of the first browser is the same user (the session is shared): the same message is its own too.
    const third = await first.context().newPage();
    await third.goto(`${chat.server().baseUrl}/#${room}`);
    await shown(third, 'from the second tab');
    expect(await mine(third)).toEqual(['from the first tab']);
    expect(await third.locator('#my-id').textContent()).toBe(await first.locator('#my-id').textContent());
  }, TEST_TIMEOUT);

  it('sends the session token on every request but the stream (a ticket for it instead), and never in a URL', async () => {
    const room = newRoom();
    const page = await newPage();
    const seen: { method: string; url: string; auth: string | undefined }[] = [];
    page.on('request', (req) => {
      if (req.url().includes('/api/')) seen.push({ method: req.method(), url: req.url(), auth: req.headers().authorization });
    });
    await openChat('ann', room, page);
    await send(page, 'signed');
    await shown(page, 'signed');
    await post(room, 'wakes the sync');
    await shown(page, 'wakes the sync');
    const token = await page.evaluate<string>('JSON.parse(localStorage.getItem("chat.session")).token');

    const syncs = seen.filter((r) => r.method === 'POST' && r.url.endsWith('/api/sync'));
    const isStream = (r: { method: string; url: string }) => r.method === 'GET' && new URL(r.url).pathname.endsWith('/api/stream');
    const streams = seen.filter(isStream);
    const tickets = seen.filter((r) => r.method === 'POST' && r.url.endsWith('/api/stream-tickets'));
    expect(await page.evaluate('document.documentElement.dataset.transport')).toBe('stream');
    expect(syncs).toEqual([]);
    expect(streams.length).toBeGreaterThan(0);
    expect(tickets.length).toBeGreaterThanOrEqual(streams.length);
    for (const r of seen) {
      expect(r.url).not.toContain(token);
      // Only asking for the session goes without one; a stream (EventSource can send no
      // header) carries a ticket, single use and short-lived, got with the token.
      if (r.url.endsWith('/api/sessions')) continue;
      if (isStream(r)) {
        expect(r.auth).toBeUndefined();
        expect(new URL(r.url).searchParams.get('ticket'), r.url).toMatch(/^[A-Za-z0-9._-]+$/);
        continue;
      }
      expect(r.auth, `${r.method} ${r.url}`).toMatch(/^Bearer [A-Za-z0-9._-]+$/);
    }
  }, TEST_TIMEOUT);

  it('still shows messages from before accounts (no author id), told apart from signed ones', async () => {
    // A server that still takes v1 posts without a token.
    const v1 = await startTestServer({ anonymousPosts: true });
    try {
      const room = newRoom();
      await post(room, 'from the v1 era', { baseUrl: v1.baseUrl, author: 'ann', token: null });
      await post(room, 'signed in', { baseUrl: v1.baseUrl, author: 'ann' });
      const page = await newPage();
      await page.goto(`${v1.baseUrl}/`);
      await page.locator('#name').fill('ann');
      await page.locator('#room').fill(room);
      await page.locator('#join').click();
      const old = await shown(page, 'from the v1 era');
      const signed = await shown(page, 'signed in');
      expect(await old.locator('.author').textContent()).toBe('ann');
      expect(await old.locator('.avatar.anon').count()).toBe(1);
      expect(await old.locator('.uid, button').count()).toBe(0); // no id to show or to write to
      expect(await old.getAttribute('class')).not.toContain('mine'); // same name, but not us
      expect(await signed.locator('button.avatar').count()).toBe(1);
      expect(await signed.getAttribute('class')).not.toContain('mine');
      await send(page, 'mine, signed');
      const own = await shown(page, 'mine, signed');
      await expect.poll(() => own.getAttribute('class'), WAIT).toContain('mine');
      expect(await own.locator('button').count()).toBe(0); // no direct message with oneself
    } finally {
      await chat.closePages();
      await v1.close();
    }
  }, TEST_TIMEOUT);

  it('never sends the same GET URL from two page loads', async () => {
    const room = newRoom();
    const loads: string[][] = [];
    const syncs: number[] = [];
    /** From now on, the GET URLs `page` asks for go into a list of their own, and its syncs are counted. */
    const record = (page: Page) => {
      const urls: string[] = [];
      const load = loads.push(urls) - 1;
      syncs[load] = 0;
      page.removeAllListeners('request');
      page.on('request', (req) => {
        if (req.method() === 'GET' && req.url().includes('/api/')) urls.push(req.url());
        // Its sync or stream: whichever transport the page uses (public/transport.js).
      if ((req.method() === 'POST' && req.url().endsWith('/api/sync')) || new URL(req.url()).pathname.endsWith('/api/stream')) syncs[load]!++;
      });
    };
    const first = await newPage();
    record(first);
    await openChat('ann', room, first);
    const second = await newPage();
    record(second);
    await openChat('bob', room, second);
    await post(room, 'wakes both syncs');
    for (const page of [first, second]) await shown(page, 'wakes both syncs');
    record(first);
    await first.reload();
    await shown(first, 'wakes both syncs');

    // Each load has asked for its room list (a GET, as history and members are) and synced.
    await expect.poll(() => loads.map((urls, i) => urls.length >= 1 && syncs[i]! >= 1), WAIT).toEqual([true, true, true]);
    for (const [i, urls] of loads.entries()) {
      for (const other of loads.slice(i + 1)) expect(urls.filter((url) => other.includes(url))).toEqual([]);
    }
  }, TEST_TIMEOUT);

  it('slows down when answers come back at once with nothing new, and recovers', async () => {
    const room = newRoom();
    // About the sync poll: chosen by hand (public/transport.js), as a user may.
    const page = await newPage();
    await page.addInitScript(`localStorage.setItem('chat.transport', 'poll')`);
    await openChat('ann', room, page);
    expect(await page.evaluate('document.documentElement.dataset.transport')).toBe('poll');
    const info = (await (await fetch(`${chat.server().baseUrl}/api/rooms/${room}`)).json()) as { epoch: string };

    // A broken proxy answering for the server: every sync answered at once, each room
    // with nothing after the cursor it was sent.
    let syncs = 0;
    await page.route('**/api/sync', (route) => {
      syncs++;
      const { rooms } = route.request().postDataJSON() as { rooms: Record<string, { after?: number; epoch?: string }> };
      const answers = Object.fromEntries(Object.entries(rooms).map(([name, cursor]) =>
        [name, { epoch: cursor.epoch ?? info.epoch, messages: [], last: cursor.after ?? 0, more: false }]));
      return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ rooms: answers, timeout: 25 }) });
    });
    // Answers the sync already held by the server; the page's next syncs meet the "proxy".
    await post(room, 'before the cache');
    await shown(page, 'before the cache');
    await expect.poll(() => syncs, WAIT).toBeGreaterThan(0);
    const from = syncs;
    await page.waitForTimeout(3000);
    expect(syncs - from).toBeLessThan(10);
    expect(await page.locator('#status').getAttribute('title')).toContain('too soon');

    await page.unroute('**/api/sync');
    await post(room, 'after the cache');
    await shown(page, 'after the cache');
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await page.locator('#status').getAttribute('title')).not.toContain('too soon');
  }, TEST_TIMEOUT);
});
