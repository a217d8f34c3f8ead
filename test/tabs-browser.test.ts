// Many tabs of one browser against a real server: eight tabs of one profile share a
// single stream or sync (the leading tab's, relayed to the others), show every message
// exactly once and in order, and carry on when the leading tab closes or freezes;
// tabs of a browser without Web Locks each sync for themselves without superseding
// each other; unread counts in the room list; who is online and who is typing; and
// screenshots of these (/tmp/shots) on a desktop and a phone. Arrival times are
// printed, not asserted: a loaded machine is slow, and these are not speed checks.
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type BrowserContext, type Page } from 'playwright-core';
import { DESKTOP, PHONE, SHOTS, joinThroughForm, useBrowserChat } from './helpers/browser.js';
import { metricsText, metricValue } from './http/util.js';

// Generous, because a loaded machine can be slow; every wait ends as soon as its condition holds.
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 120_000;
const TABS = 8;
/** Long enough for the other tabs to give up on a leader that says nothing (6 s, then a ping). */
const HUNG_MS = 15_000;

const chat = useBrowserChat({ anonymousPosts: false }, TEST_TIMEOUT);

let roomCounter = 0;
const newRoom = () => `tabs-${process.pid}-${Date.now()}-${++roomCounter}`;

/** A fresh browser profile (its own storage and locks: its own guest) signed in as `name`, in `room`. */
async function openChat(name: string, room: string, viewport = DESKTOP): Promise<Page> {
  return joinThroughForm(await chat.newPage(viewport), chat.server().baseUrl, name, room, WAIT.timeout);
}

/** Another tab of the profile, opened on `room` as a link would be. */
async function openTab(context: BrowserContext, room: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${chat.server().baseUrl}/#${room}`);
  await page.locator('#status[data-state="live"]').waitFor(WAIT);
  return page;
}

async function send(page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
  await expect.poll(() => page.locator('#text').inputValue(), WAIT).toBe('');
}

const goToRoom = async (page: Page, room: string): Promise<void> => {
  await page.evaluate(`location.hash = ${JSON.stringify(room)}`);
  await page.locator('#room-title', { hasText: room }).waitFor(WAIT);
  await page.locator('#status[data-state="live"]').waitFor(WAIT);
};

/** A guest's token, as any other client gets one. */
async function tokenFor(name: string): Promise<string> {
  const res = await fetch(`${chat.server().baseUrl}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { token: string }).token;
}

/** Posts from outside the browser; the time it was sent. */
async function postOutside(token: string, room: string, text: string): Promise<number> {
  const at = Date.now();
  const res = await fetch(`${chat.server().baseUrl}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ text }),
  });
  expect(res.status).toBe(201);
  return at;
}

const role = (page: Page) => page.evaluate<string | undefined>('document.documentElement.dataset.syncRole');

/** From now on, the page notes when each message text first shows, and when it starts leading. */
const watchArrivals = (page: Page) => page.evaluate(`(() => {
  window.arrivals = {};
  new MutationObserver(() => {
    for (const node of document.querySelectorAll('#messages .msg .text')) window.arrivals[node.textContent] ??= Date.now();
  }).observe(document.getElementById('messages'), { childList: true, subtree: true });
  new MutationObserver(() => {
    if (document.documentElement.dataset.syncRole === 'leader') window.ledAt ??= Date.now();
  }).observe(document.documentElement, { attributes: true, attributeFilter: ['data-sync-role'] });
})()`);

/** Once `text` shows in every tab: how long after `since` it showed in each. */
async function arrivals(tabs: Page[], text: string, since: number): Promise<number[]> {
  return Promise.all(tabs.map(async (tab) => {
    await tab.locator('#messages .msg .text', { hasText: text }).first().waitFor(WAIT);
    return (await tab.evaluate<number>(`window.arrivals[${JSON.stringify(text)}]`)) - since;
  }));
}

/** The messages a tab shows, as [seq, text]. */
const shownMessages = (page: Page) => page.locator('#messages .msg').evaluateAll((msgs) =>
  msgs.map((m) => [Number(m.getAttribute('data-seq')), m.querySelector('.text')!.textContent]));

/** The room's messages as the server has them, as [seq, text]. */
async function serverMessages(room: string): Promise<[number, string][]> {
  const r = (await (await fetch(`${chat.server().baseUrl}/api/rooms/${room}/messages?limit=1000`)).json()) as { messages: { seq: number; text: string }[] };
  return r.messages.map((m) => [m.seq, m.text]);
}

/**
 * [syncs held + streams open, parked polls] from /metrics: what the browser's tabs hold,
 * whichever transport the leading tab uses (public/transport.js; a stream waiting for
 * news is a parked poll too).
 */
async function held(): Promise<[number | undefined, number | undefined]> {
  const text = await metricsText(chat.server().baseUrl);
  return [(metricValue(text, 'chat_syncs_held') ?? 0) + (metricValue(text, 'chat_streams_open') ?? 0), metricValue(text, 'chat_parked_polls')];
}

const transport = (page: Page) => page.evaluate<string | undefined>('document.documentElement.dataset.transport');

/** Once the server holds exactly one sync or stream and nothing else, it stays so (never two) for a while. */
async function expectOneSync(): Promise<void> {
  await expect.poll(held, WAIT).toEqual([1, 1]);
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    const [syncs, parked] = await held();
    expect(syncs).toBeLessThanOrEqual(1);
    expect(parked).toBeLessThanOrEqual(1);
  }
  await expect.poll(held, WAIT).toEqual([1, 1]);
}

const max = (values: number[]) => Math.max(...values);

describe('tabs of one browser', () => {
  it('share one sync: every message in all eight tabs exactly once, in order, also after the leading tab closes', async () => {
    const room = newRoom();
    const first = await openChat('ann', room);
    const tabs = [first];
    for (let i = 1; i < TABS; i++) tabs.push(await openTab(first.context(), room));
    await expect.poll(async () => (await Promise.all(tabs.map(role))).sort(), WAIT)
      .toEqual([...Array(TABS - 1).fill('follower'), 'leader'].sort());
    await expectOneSync();
    // The leader streams (nothing on the way here stops a stream), and every tab says so.
    expect(await Promise.all(tabs.map(transport))).toEqual(Array(TABS).fill('stream'));
    for (const tab of tabs) await watchArrivals(tab);

    // From outside: each message in all tabs.
    const zed = await tokenFor('zed');
    const outside: number[][] = [];
    for (let i = 1; i <= 3; i++) {
      const text = `from outside ${i}`;
      outside.push(await arrivals(tabs, text, await postOutside(zed, room, text)));
    }
    console.log(`outside messages, ms until shown in each of ${TABS} tabs: ${outside.map((ms) => `[${ms.join(', ')}]`).join(' ')}; max ${max(outside.flat())} ms`);

    // Every tab posts at once; each message shows in every tab.
    const sentAt = Date.now();
    await Promise.all(tabs.map((tab, i) => send(tab, `from tab ${i}`)));
    const own: number[] = [];
    const everywhere: number[] = [];
    for (let i = 0; i < TABS; i++) {
      const ms = await arrivals(tabs, `from tab ${i}`, sentAt);
      own.push(ms[i]!);
      everywhere.push(max(ms));
    }
    console.log(`all ${TABS} tabs posting at once, ms until each tab showed its own message: [${own.join(', ')}]; until all tabs showed it: [${everywhere.join(', ')}]`);
    const expected = await serverMessages(room);
    expect(expected).toHaveLength(3 + TABS);
    for (const tab of tabs) expect(await shownMessages(tab)).toEqual(expected);
    await expectOneSync();

    // The leading tab closes; a message posted at once is not lost, nor any after it.
    const leaderAt = (await Promise.all(tabs.map(role))).indexOf('leader');
    const [leader] = tabs.splice(leaderAt, 1);
    const closedAt = Date.now();
    await leader!.close();
    const during = 'while the leading tab closed';
    const duringMs = await arrivals(tabs, during, await postOutside(zed, room, during));
    await expect.poll(async () => (await Promise.all(tabs.map(role))).filter((r) => r === 'leader').length, WAIT).toBe(1);
    // The closing tab's cut requests are not the new leader's: no tab says "reconnecting".
    for (const tab of tabs) await tab.locator('#status[data-state="live"]').waitFor(WAIT);
    const ledAt = max(await Promise.all(tabs.map((tab) => tab.evaluate<number>('window.ledAt ?? 0'))));
    const after: number[][] = [];
    for (let i = 1; i <= 3; i++) {
      const text = `after the handover ${i}`;
      after.push(await arrivals(tabs, text, await postOutside(zed, room, text)));
    }
    console.log(`handover: a new leader ${ledAt - closedAt} ms after the leading tab closed; the message posted then shown in the ${tabs.length} tabs after [${duringMs.join(', ')}] ms`);
    console.log(`after the handover, ms until shown in each tab: ${after.map((ms) => `[${ms.join(', ')}]`).join(' ')}; max ${max(after.flat())} ms`);

    const all = await serverMessages(room);
    expect(all).toHaveLength(3 + TABS + 1 + 3);
    for (const tab of tabs) expect(await shownMessages(tab)).toEqual(all);
    await expectOneSync();
  }, TEST_TIMEOUT);

  it('stay live when the leading tab reloads', async () => {
    const room = newRoom();
    const first = await openChat('ann', room);
    const tabs = [first, await openTab(first.context(), room), await openTab(first.context(), room)];
    const leader = tabs[(await Promise.all(tabs.map(role))).indexOf('leader')]!;
    // Its requests are cut as it unloads: that is not the sync failing, and no tab may say so.
    await leader.reload();
    await leader.locator('#status[data-state="live"]').waitFor(WAIT);
    await expect.poll(async () => (await Promise.all(tabs.map(role))).sort(), WAIT).toEqual(['follower', 'follower', 'leader']);
    for (const tab of tabs) await tab.locator('#status[data-state="live"]').waitFor({ ...WAIT, timeout: 5000 });
    await postOutside(await tokenFor('zed'), room, 'after the reload');
    for (const tab of tabs) await tab.locator('#messages .msg', { hasText: 'after the reload' }).waitFor(WAIT);
    await expectOneSync();
  }, TEST_TIMEOUT);

  it('replace a hung leading tab, which follows once it is back', async () => {
    const room = newRoom();
    const first = await openChat('ann', room);
    const tabs = [first, await openTab(first.context(), room), await openTab(first.context(), room)];
    await expect.poll(async () => (await Promise.all(tabs.map(role))).sort(), WAIT).toEqual(['follower', 'follower', 'leader']);
    await expectOneSync();
    for (const tab of tabs) await watchArrivals(tab);
    const leaderAt = (await Promise.all(tabs.map(role))).indexOf('leader');
    const leader = tabs[leaderAt]!;
    const others = tabs.filter((tab) => tab !== leader);

    // Busy for HUNG_MS (each tab has a process of its own): no beats, no answers, its lock kept.
    const hung = leader.evaluate((ms) => { const end = Date.now() + ms; while (Date.now() < end); }, HUNG_MS);
    const zed = await tokenFor('zed');
    const text = 'while the leader hung';
    const ms = await arrivals(others, text, await postOutside(zed, room, text));
    console.log(`hung leader: the message posted then shown in the other tabs after [${ms.join(', ')}] ms`);
    expect((await Promise.all(others.map(role))).sort()).toEqual(['follower', 'leader']);
    const using = await transport(others[0]!);
    console.log(`hung leader: the tabs use ${using === 'stream' ? 'a stream' : 'the sync poll'}`);
    if (using === 'poll') {
      // The hung tab's held sync was superseded by the new leader's, under the same client id.
      await expectOneSync();
    } else {
      // A stream has no client id to supersede: the hung tab's lasts until it wakes.
      expect(using).toBe('stream');
      await expect.poll(held, WAIT).toEqual([2, 2]);
    }

    await hung;
    await expect.poll(() => role(leader), WAIT).toBe('follower');
    for (const tab of tabs) await tab.locator('#status[data-state="live"]').waitFor(WAIT);
    await postOutside(zed, room, 'after it woke');
    for (const tab of tabs) await tab.locator('#messages .msg', { hasText: 'after it woke' }).waitFor(WAIT);
    const all = await serverMessages(room);
    for (const tab of tabs) expect(await shownMessages(tab)).toEqual(all);
    await expectOneSync();
  }, TEST_TIMEOUT);

  it('move together to the new user when one of them picks a new name, still with one sync', async () => {
    const room = newRoom();
    const first = await openChat('ann', room);
    const second = await openTab(first.context(), room);
    const before = await first.locator('#my-id').textContent();
    await first.locator('#change').click();
    await first.locator('#name').fill('anna');
    await first.locator('#join').click();
    await expect.poll(() => second.locator('#my-id').textContent(), WAIT).not.toBe(before);
    await expect.poll(async () => [await role(first), await role(second)].sort(), WAIT).toEqual(['follower', 'leader']);
    await send(second, 'from the second tab, as anna');
    await first.locator('#messages .msg.mine', { hasText: 'from the second tab, as anna' }).waitFor(WAIT);
    await expectOneSync();
  }, TEST_TIMEOUT);

  it('each sync for themselves where Web Locks are missing, without superseding each other', async () => {
    const room = newRoom();
    const page = await chat.newPage();
    await page.context().addInitScript(`Object.defineProperty(Navigator.prototype, 'locks', { value: undefined, configurable: true })`);
    await page.goto(`${chat.server().baseUrl}/`);
    await page.locator('#name').fill('ann');
    await page.locator('#room').fill(room);
    await page.locator('#join').click();
    await page.locator('#status[data-state="live"]').waitFor(WAIT);
    const second = await openTab(page.context(), room);
    expect([await role(page), await role(second)]).toEqual(['alone', 'alone']);
    await expect.poll(held, WAIT).toEqual([2, 2]);

    await postOutside(await tokenFor('zed'), room, 'to both tabs');
    await send(second, 'from the second tab');
    for (const tab of [page, second]) {
      await tab.locator('#messages .msg', { hasText: 'from the second tab' }).waitFor(WAIT);
      expect(await shownMessages(tab)).toEqual(await serverMessages(room));
    }
    await expect.poll(held, WAIT).toEqual([2, 2]);
  }, TEST_TIMEOUT);
});

describe('the room list and the room shown', () => {
  it('count unread messages per room, and show who is online and who is typing (screenshots in /tmp/shots)', async () => {
    mkdirSync(SHOTS, { recursive: true });
    // Names only this test uses, so that the screenshots read well.
    const [lobby, x] = ['lobby', 'design'];
    // Ann (desktop) and Carol (phone) have been to x, and are back in the lobby.
    const ann = await openChat('ann', x);
    await goToRoom(ann, lobby);
    const carol = await openChat('carol', x, PHONE);
    await goToRoom(carol, lobby);

    // Bob posts in x: unread there for both, not for the lobby they look at.
    const bob = await openChat('bob', x);
    await send(bob, 'New mock-ups are up.');
    await send(bob, 'Comments welcome by Friday.');
    for (const page of [ann, carol]) {
      // Attached: on the phone the list is in the closed drawer.
      await page.locator(`#public-list a[href="#${x}"] .unread`, { hasText: '2 unread' }).waitFor({ ...WAIT, state: 'attached' });
      expect(await page.locator(`#public-list a[href="#${lobby}"] .unread`).count()).toBe(0);
    }

    // Bob types in the lobby: the others see it, with everyone online.
    await send(ann, 'Morning! Standup in five?');
    await send(carol, 'On my way.');
    await goToRoom(bob, lobby);
    await bob.locator('#messages .msg', { hasText: 'On my way.' }).waitFor(WAIT);
    await bob.locator('#text').fill('Running late, start wi');
    for (const [page, others] of [[ann, ['bob', 'carol']], [carol, ['ann', 'bob']]] as const) {
      await page.locator('#typing', { hasText: 'bob is typing…' }).waitFor(WAIT);
      await page.locator('#online', { hasText: '3 online:' }).waitFor(WAIT);
      const names = (await page.locator('#online').textContent())!.replace('3 online: ', '').split(', ');
      expect(names.at(-1)).toBe('you');
      expect(names.slice(0, -1).sort()).toEqual(others);
    }
    expect(await bob.locator('#typing').textContent()).toBe(''); // not about oneself

    await ann.screenshot({ path: `${SHOTS}/desktop-typing-unread.png` });
    // On the phone the list is in the drawer: its button says how many in all.
    expect(await carol.locator('#drawer-toggle .unread').textContent()).toBe('2 unread');
    await carol.screenshot({ path: `${SHOTS}/phone-typing.png` });
    await carol.locator('#drawer-toggle').click();
    await carol.locator('#drawer').waitFor(WAIT);
    await carol.screenshot({ path: `${SHOTS}/phone-drawer-unread.png` });
    await carol.keyboard.press('Escape');

    // Two typing at once; then the box emptied, and a post, each end it.
    await carol.locator('#text').fill('Sure, go ahe');
    await ann.locator('#typing', { hasText: /^(bob and carol|carol and bob) are typing…$/ }).waitFor(WAIT);
    await bob.locator('#text').fill('');
    await ann.locator('#typing', { hasText: /^carol is typing…$/ }).waitFor(WAIT);
    await carol.locator('#text').press('Enter');
    await ann.locator('#messages .msg', { hasText: 'Sure, go ahe' }).waitFor(WAIT);
    await expect.poll(() => ann.locator('#typing').textContent(), WAIT).toBe('');

    // Opening x shows its messages at once and clears its count.
    await ann.locator(`#public-list a[href="#${x}"]`).click();
    await ann.locator('#messages .msg', { hasText: 'Comments welcome by Friday.' }).waitFor(WAIT);
    expect(await ann.locator(`#public-list a[href="#${x}"] .unread`).count()).toBe(0);
    // One's own messages in a room not shown are not unread: ann posts in x from a second tab.
    const annLobby = await openTab(ann.context(), lobby);
    await goToRoom(ann, lobby);
    await send(annLobby, 'ann in the lobby tab');
    await ann.locator('#messages .msg', { hasText: 'ann in the lobby tab' }).waitFor(WAIT);
    await goToRoom(annLobby, x);
    await send(annLobby, 'ann in x, from her other tab');
    await annLobby.locator('#messages .msg', { hasText: 'ann in x, from her other tab' }).waitFor(WAIT);
    await send(bob, 'bob again, in the lobby'); // something after it, so the sync has surely relayed it
    await ann.locator('#messages .msg', { hasText: 'bob again, in the lobby' }).waitFor(WAIT);
    expect(await ann.locator(`#public-list a[href="#${x}"] .unread`).count()).toBe(0);
  }, TEST_TIMEOUT);
});
