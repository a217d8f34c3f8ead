// The page's identity and private rooms in a real browser against a real server
// with the real default (posting needs a token): direct messages between two
// people and hidden from a third, two people with the same name told apart, a
// private room created, joined by invitation, left and removed from, the guest
// session refreshed and replaced once expired, and screenshots of the layout
// (/tmp/shots) on a desktop and a phone.
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Page } from 'playwright-core';
import { DESKTOP, PHONE, SHOTS, joinThroughForm, useBrowserChat } from './helpers/browser.js';
import { startTestServer } from './helpers/server.js';

// Generous, because a loaded machine can be slow; every wait ends as soon as its condition holds.
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 90_000;

const chat = useBrowserChat({ anonymousPosts: false }, TEST_TIMEOUT);

let roomCounter = 0;
const newRoom = () => `room-${process.pid}-${Date.now()}-${++roomCounter}`;

/** A page in a fresh browser profile (its own localStorage: its own guest), not loaded yet. */
const newPage = (viewport = DESKTOP): Promise<Page> => chat.newPage(viewport);

/** A fresh browser profile signed in as `name`, following the public room `room`. */
async function openChat(name: string, room: string, { page, baseUrl = chat.server().baseUrl }: { page?: Page; baseUrl?: string } = {}): Promise<Page> {
  return joinThroughForm(page ?? (await newPage()), baseUrl, name, room, WAIT.timeout);
}

async function send(page: Page, text: string): Promise<void> {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
  await expect.poll(() => page.locator('#text').inputValue(), WAIT).toBe('');
}

/** The one shown message containing `snippet`, once it has arrived. */
async function shown(page: Page, snippet: string) {
  const msg = page.locator('#messages .msg', { hasText: snippet });
  await msg.waitFor(WAIT);
  return msg;
}

/** Goes to `room` as a link would: through the hash. */
const goToRoom = (page: Page, room: string) => page.evaluate(`location.hash = ${JSON.stringify(room)}`);
const myId = async (page: Page) => (await page.locator('#my-id').textContent())!;
const currentRoom = (page: Page) => page.evaluate<string>('decodeURIComponent(location.hash.slice(1))');
/** The rooms in the drawer's lists, as their links point: `#room`. */
const listed = (page: Page) => page.locator('#drawer nav a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
const ownTexts = (page: Page) => page.locator('#messages .msg.mine .text').allTextContents();

async function waitGone(page: Page): Promise<void> {
  await page.locator('.room-notice', { hasText: 'not found (or you are not a member)' }).waitFor(WAIT);
  expect(await page.locator('#status').getAttribute('data-state')).toBe('gone');
  expect(await page.locator('#text').isDisabled()).toBe(true);
}

describe('direct messages', () => {
  it('lets two people write to each other both ways, and a third can neither list nor open it', async () => {
    const lobby = newRoom();
    const alice = await openChat('alice', lobby);
    const bob = await openChat('bob', lobby);
    await send(bob, 'hi, I am bob');

    // The small control on the author's avatar starts a direct message.
    const atAlice = await shown(alice, 'hi, I am bob');
    await atAlice.locator('button.avatar').click();
    await expect.poll(() => currentRoom(alice), WAIT).toMatch(/^dm_/);
    const dm = await currentRoom(alice);
    await alice.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await alice.locator('#room-title').textContent()).toBe('Direct message with bob');
    expect(await alice.evaluate('document.activeElement?.id')).toBe('text');
    expect(await listed(alice)).toContain(`#${dm}`);
    await send(alice, 'just between us');

    // Bob was added to it: after a reload it is in his list, named after alice.
    await bob.reload();
    await bob.locator(`#dm-list a[href="#${dm}"]`, { hasText: 'alice' }).waitFor(WAIT);
    await bob.locator(`#dm-list a[href="#${dm}"]`).click();
    await bob.locator('#status[data-state="live"]').waitFor(WAIT);
    await shown(bob, 'just between us');
    await send(bob, 'agreed, alice');
    await shown(alice, 'agreed, alice');
    expect(await ownTexts(alice)).toEqual(['just between us']);
    expect(await ownTexts(bob)).toEqual(['agreed, alice']);

    // The same two people get the same room again: bob's click on alice's avatar lands there too.
    await bob.locator(`#public-list a[href="#${lobby}"]`).click();
    await bob.locator('#status[data-state="live"]').waitFor(WAIT);
    await shown(bob, 'hi, I am bob');
    await alice.locator(`#public-list a[href="#${lobby}"]`).click();
    await alice.locator('#status[data-state="live"]').waitFor(WAIT);
    await send(alice, 'back in the lobby');
    await (await shown(bob, 'back in the lobby')).locator('button.avatar').click();
    await expect.poll(() => currentRoom(bob), WAIT).toBe(dm);
    await shown(bob, 'just between us');

    // Carol is in the lobby too, but the DM is not hers: not in her list, and its link shows "not found".
    const carol = await openChat('carol', lobby);
    await shown(carol, 'back in the lobby');
    expect(await listed(carol)).not.toContain(`#${dm}`);
    // Her requests about the room: its own routes, and syncs or streams naming it.
    const asks: string[] = [];
    const streamNames = (url: URL) => url.pathname.endsWith('/api/stream') && (url.searchParams.get('rooms') ?? '').split(',').some((r) => r.split(':')[0] === dm);
    carol.on('request', (req) => {
      if (req.url().includes(`/rooms/${dm}/`) || (req.url().endsWith('/api/sync') && req.postData()?.includes(`"${dm}"`)) || streamNames(new URL(req.url()))) asks.push(req.url());
    });
    await goToRoom(carol, dm);
    await waitGone(carol);
    expect(asks.length).toBeGreaterThan(0);
    // No one can invite her into a direct message: the notice says whose it is instead.
    expect(await carol.locator('.room-notice').textContent()).toContain('only its two people can open it');
    expect(await carol.locator('#messages .msg').count()).toBe(0);
    // Said once and left at that: no "reconnecting", no syncs asking for it again.
    const asked = asks.length;
    await carol.waitForTimeout(2000);
    expect(await carol.locator('#status').getAttribute('data-state')).toBe('gone');
    expect(asks.length).toBe(asked);
    // Opened from the link in a new tab, the same.
    const again = await carol.context().newPage();
    await again.goto(`${chat.server().baseUrl}/#${dm}`);
    await waitGone(again);
    expect(await listed(again)).not.toContain(`#${dm}`);
  }, TEST_TIMEOUT);
});

describe('people with the same name', () => {
  it('look different, and each sees only their own messages as own', async () => {
    const room = newRoom();
    const first = await openChat('ann', room);
    const second = await openChat('ann', room);
    const ids = [await myId(first), await myId(second)];
    expect(ids[0]).not.toBe(ids[1]);
    await send(first, 'ann number one');
    await shown(first, 'ann number one');
    await send(second, 'ann number two');

    for (const [page, own, other] of [[first, 'ann number one', 'ann number two'], [second, 'ann number two', 'ann number one']] as const) {
      await shown(page, other);
      expect(await ownTexts(page)).toEqual([own]);
      const looks = await page.locator('#messages .msg').evaluateAll((msgs) => msgs.map((msg) => {
        const avatar = msg.querySelector('.avatar')!;
        return {
          author: msg.querySelector('.author')!.textContent,
          authorTitle: msg.querySelector('.author')!.getAttribute('title'),
          avatarTitle: avatar.getAttribute('title'),
          hue: avatar.getAttribute('style'),
          background: avatar.ownerDocument.defaultView!.getComputedStyle(avatar).backgroundColor,
          initials: avatar.textContent,
          tag: msg.querySelector('.uid')?.textContent ?? '',
        };
      }));
      const [a, b] = looks as [typeof looks[0], typeof looks[0]];
      expect(looks.map((l) => l.author)).toEqual(['ann', 'ann']);
      // The id on hover, and a short id tag in sight: never alike for two people.
      for (const [i, look] of looks.entries()) {
        expect(look.authorTitle).toContain(ids[i]);
        expect(look.avatarTitle).toContain(ids[i]);
        expect(look.tag).toHaveLength(4);
        expect(ids[i]!.endsWith(look.tag)).toBe(true);
      }
      expect(a.tag).not.toBe(b.tag);
      // The colour comes from the id (--hue); two ids can share one of 360 hues, but then not their tag.
      if (a.hue !== b.hue) expect(a.background).not.toBe(b.background);
      expect(a.initials).toBe('A');
    }
  }, TEST_TIMEOUT);
});

describe('private rooms', () => {
  it('are created, joined by invitation, kept in the list across reloads, left, and removed from', async () => {
    const lobby = newRoom();
    const olga = await openChat('olga', lobby);
    const gus = await openChat('gus', lobby);
    const gusId = await myId(gus);

    await olga.locator('#new-title').fill('Plans');
    await olga.locator('#create').click();
    await expect.poll(() => currentRoom(olga), WAIT).toMatch(/^p_/);
    const room = await currentRoom(olga);
    await olga.locator('#status[data-state="live"]').waitFor(WAIT);
    expect(await olga.locator('#room-title').textContent()).toBe('Plans');
    expect(await olga.evaluate('document.activeElement?.id')).toBe('text');
    await olga.locator(`#private-list a[href="#${room}"]`, { hasText: 'Plans' }).waitFor(WAIT);

    // Before the invitation the link shows "not found" to gus.
    await goToRoom(gus, room);
    await waitGone(gus);

    // Invited by id; the room panel shows the new member.
    await olga.locator('#room-menu').click();
    expect(await olga.locator('#room-menu').getAttribute('aria-expanded')).toBe('true');
    await olga.locator('#invite-id').fill(gusId);
    await olga.locator('#invite-name').fill('gus');
    await olga.locator('#invite').click();
    await olga.locator('#members .member', { hasText: 'gus' }).waitFor(WAIT);
    expect(await olga.locator('#panel-status').textContent()).toContain('Invited');
    // The invite link is the page's address and the room's name: no token.
    await olga.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await olga.locator('#copy-link').click();
    await olga.locator('#copy-link', { hasText: 'Copied' }).waitFor(WAIT);
    expect(await olga.evaluate<string>('navigator.clipboard.readText()')).toBe(`${chat.server().baseUrl}/#${room}`);

    // After a reload gus has it in his list, and in it.
    await gus.reload();
    await gus.locator(`#private-list a[href="#${room}"]`, { hasText: 'Plans' }).waitFor(WAIT);
    await gus.locator('#status[data-state="live"]').waitFor(WAIT);
    await send(olga, 'welcome, gus');
    await shown(gus, 'welcome, gus');
    await send(gus, 'thanks, olga');
    await shown(olga, 'thanks, olga');

    // Gus leaves (asked once more): the room leaves his list, now and after a reload.
    await gus.locator('#room-menu').click();
    await gus.locator('#leave').click();
    await gus.locator('#leave', { hasText: 'Yes, leave' }).click();
    await expect.poll(() => currentRoom(gus), WAIT).toBe('');
    await expect.poll(() => gus.evaluate('document.activeElement?.id'), WAIT).toBe('room');
    // The title is user text: isolated (U+2068 … U+2069) in the sentence around it.
    await gus.locator('#notice-text', { hasText: 'You left \u2068Plans\u2069.' }).waitFor(WAIT);
    expect(await listed(gus)).not.toContain(`#${room}`);
    await gus.reload();
    await gus.locator(`#public-list a[href="#${lobby}"]`).waitFor(WAIT);
    expect(await listed(gus)).not.toContain(`#${room}`);
    await goToRoom(gus, room);
    await waitGone(gus);

    // Invited again while looking at "not found": "Try again" takes him in.
    await olga.locator('#invite-id').fill(gusId);
    await olga.locator('#invite').click();
    // Without a name the server names him by his id.
    await olga.locator('#members .member', { hasText: gusId }).waitFor(WAIT);
    await gus.locator('.room-notice button', { hasText: 'Try again' }).click();
    await gus.locator('#status[data-state="live"]').waitFor(WAIT);
    await shown(gus, 'thanks, olga');

    // The owner removes him: his held sync ends, and he sees "not found".
    const remove = olga.locator('#members .member', { hasText: gusId }).locator('button.remove');
    await remove.waitFor(WAIT);
    await remove.click();
    await expect.poll(() => olga.locator('#members .member').count(), WAIT).toBe(1);
    await waitGone(gus);

    // The owner leaves too: gone from her list.
    await olga.locator('#leave').click();
    await olga.locator('#leave').click();
    await expect.poll(() => currentRoom(olga), WAIT).toBe('');
    expect(await listed(olga)).not.toContain(`#${room}`);
  }, TEST_TIMEOUT);
});

describe('the guest session', () => {
  it('is refreshed before it expires (same id), and replaced, with a word, once it has', async () => {
    // Tokens that last 6 s: refreshed after 3.
    const short = await startTestServer({ anonymousPosts: false, sessionLifetime: 6 });
    try {
      const page = await openChat('tim', newRoom(), { baseUrl: short.baseUrl });
      const saved = () => page.evaluate<{ token: string; user: { id: string } }>('JSON.parse(localStorage.getItem("chat.session"))');
      const first = await saved();
      await expect.poll(async () => (await saved()).token, { timeout: 15_000 }).not.toBe(first.token);
      expect((await saved()).user.id).toBe(first.user.id);
      await send(page, 'still me');
      expect(await (await shown(page, 'still me')).getAttribute('class')).toContain('mine');

      // Closed until the token is past its time, then opened again: a new guest, and told so.
      const context = page.context();
      const before = await saved();
      await page.close();
      await new Promise((resolve) => setTimeout(resolve, 7000));
      const later = await context.newPage();
      await later.goto(`${short.baseUrl}/`);
      await later.locator('#notice-text', { hasText: 'new guest' }).waitFor(WAIT);
      const after = (await later.locator('#my-id').textContent())!;
      expect(after).not.toBe(before.user.id);
      expect(await later.locator('#notice-text').textContent()).toContain(after);
    } finally {
      await chat.closePages();
      await short.close();
    }
  }, TEST_TIMEOUT);
});

describe('layout', () => {
  it('shows two people and a direct message on a desktop and on a phone (screenshots in /tmp/shots)', async () => {
    mkdirSync(SHOTS, { recursive: true });
    const lobby = 'lobby'; // only this test uses it
    const alice = await openChat('alice', lobby);
    const bob = await openChat('Bob Builder', lobby, { page: await newPage(PHONE) });
    await send(alice, 'Morning! Anyone up for lunch?');
    await send(bob, 'Sure, alice. Noon?');
    await (await shown(alice, 'Noon?')).locator('button.avatar').click();
    await alice.locator('#status[data-state="live"]').waitFor(WAIT);
    await send(alice, 'Noon works. The usual place?');
    await alice.locator('#new-title').fill('Lunch club');
    await alice.locator('#create').click();
    await expect.poll(() => currentRoom(alice), WAIT).toMatch(/^p_/);
    await alice.locator('#dm-list a').click();
    await alice.locator('#status[data-state="live"]').waitFor(WAIT);
    await shown(alice, 'The usual place?');

    await bob.reload();
    await bob.locator('#drawer-toggle').click();
    await bob.locator('#dm-list a', { hasText: 'alice' }).click();
    await bob.locator('#status[data-state="live"]').waitFor(WAIT);
    await shown(bob, 'The usual place?');
    await send(bob, 'Yes, see you there 🍜');
    await shown(alice, 'see you there');

    const noOverflow = async (page: Page, width: number) =>
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(width);
    await alice.screenshot({ path: `${SHOTS}/desktop-dm.png` });
    await noOverflow(alice, DESKTOP.width);
    await alice.locator('#room-menu').click();
    await alice.screenshot({ path: `${SHOTS}/desktop-dm-panel.png` });
    await alice.locator(`#public-list a[href="#${lobby}"]`).click();
    await shown(alice, 'Noon?');
    await alice.screenshot({ path: `${SHOTS}/desktop-lobby.png` });

    await bob.screenshot({ path: `${SHOTS}/phone-dm.png` });
    await noOverflow(bob, PHONE.width);
    await bob.locator('#drawer-toggle').click();
    await bob.locator('#drawer').waitFor(WAIT);
    expect(await bob.locator('#drawer-toggle').getAttribute('aria-expanded')).toBe('true');
    await bob.screenshot({ path: `${SHOTS}/phone-drawer.png` });
    await noOverflow(bob, PHONE.width);
    await bob.keyboard.press('Escape');
    await bob.locator('#drawer').waitFor({ ...WAIT, state: 'hidden' });
    expect(await bob.evaluate('document.activeElement?.id')).toBe('drawer-toggle');
    await bob.locator('#room-menu').click();
    await bob.screenshot({ path: `${SHOTS}/phone-dm-panel.png` });
    await noOverflow(bob, PHONE.width);

    // Someone else with the DM's link, on a phone: "not found".
    const dm = await currentRoom(bob);
    const carol = await openChat('carol', lobby, { page: await newPage(PHONE) });
    await goToRoom(carol, dm);
    await waitGone(carol);
    await carol.screenshot({ path: `${SHOTS}/phone-not-found.png` });
    await noOverflow(carol, PHONE.width);
    // And a first visit on a desktop: no name yet.
    const fresh = await newPage();
    await fresh.goto(`${chat.server().baseUrl}/`);
    await fresh.screenshot({ path: `${SHOTS}/desktop-first-visit.png` });
  }, TEST_TIMEOUT);
});
