// The page in a real browser against a real server: two people chatting, and
// user text that looks like HTML staying text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer } from './helpers/server.js';

// Generous, because a loaded machine can be slow; every wait ends as soon as its condition holds.
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 60_000;

let srv: Awaited<ReturnType<typeof startTestServer>> | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  srv = await startTestServer();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, TEST_TIMEOUT);

afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

let roomCounter = 0;
const newRoom = () => `browser-${process.pid}-${Date.now()}-${++roomCounter}`;

/** A fresh browser profile (own localStorage) that has joined `room` as `name`. */
async function openChat(name: string, room: string): Promise<Page> {
  const context = await browser!.newContext();
  const page = await context.newPage();
  await page.goto(`${srv!.baseUrl}/`);
  await page.locator('#name').fill(name);
  await page.locator('#room').fill(room);
  await page.locator('#join-form [type="submit"]').click();
  await page.locator('#status[data-state="live"]').waitFor(WAIT);
  return page;
}

async function send(page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
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
    const page = await browser!.newPage();
    await page.goto(`${srv!.baseUrl}/`);
    await page.locator('#name').fill('carol');
    await page.locator('#room').fill('no spaces!');
    await page.locator('#join-form [type="submit"]').click();
    await page.locator('#room-error').waitFor(WAIT);
    expect(await page.locator('#room').getAttribute('aria-invalid')).toBe('true');
    expect(page.url()).not.toContain('#');
  }, TEST_TIMEOUT);
});
