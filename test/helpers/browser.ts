// Debian's Chromium, driven by playwright-core, as every browser test launches it.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Config } from '../../src/config.js';
import { startTestServer, type TestServer } from './server.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Viewports the browser tests use: a desktop window and a phone. */
export const DESKTOP = { width: 900, height: 700 };
export const PHONE = { width: 390, height: 800 };
/** Where browser tests leave their screenshots, for a person to look at. */
export const SHOTS = '/tmp/shots';

/**
 * Launches headless Chromium. Without the background-networking flag it
 * tries to reach Google's services at start, which this closed network
 * refuses. With `proxy`, loopback goes through it too (Chromium sends
 * loopback straight to the server unless told not to).
 */
export function launchChromium(proxy?: string): Promise<Browser> {
  const args = ['--no-sandbox', '--disable-gpu', '--disable-background-networking'];
  if (proxy === undefined) return chromium.launch({ executablePath: CHROMIUM_PATH, args });
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...args, '--proxy-bypass-list=<-loopback>'], proxy: { server: proxy } });
}

/** What a browser test file gets from useBrowserChat. */
export interface BrowserChat {
  /** The chat server, once started. */
  server(): TestServer;
  /** A page in a fresh browser profile (its own storage: its own guest), not loaded yet. */
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  /** Closes the test's browser profiles now (before stopping a server of its own, say). */
  closePages(): Promise<void>;
}

/**
 * For one test file: a chat server with `config` and Chromium, started before
 * its tests and closed after them; the browser profiles of each test closed
 * after it (pages left polling would slow the next one down), and the test
 * failed by any uncaught error in a page.
 */
export function useBrowserChat(config: Partial<Config>, startTimeoutMs: number): BrowserChat {
  let srv: TestServer | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  beforeAll(async () => {
    srv = await startTestServer(config);
    browser = await launchChromium();
  }, startTimeoutMs);
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });
  const closePages = async (): Promise<void> => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  };
  afterEach(async () => {
    await closePages();
    expect(pageErrors.splice(0)).toEqual([]);
  });
  return {
    server: () => srv!,
    closePages,
    async newPage(viewport = DESKTOP) {
      const context = await browser!.newContext({ viewport });
      contexts.push(context);
      context.on('weberror', (err) => void pageErrors.push(String(err.error())));
      return context.newPage();
    },
  };
}

/** Loads the page from `baseUrl` in `page` and joins `room` through its form as `name`; resolves once it is live. */
export async function joinThroughForm(page: Page, baseUrl: string, name: string, room: string, timeout: number): Promise<Page> {
  await page.goto(`${baseUrl}/`);
  await page.locator('#name').fill(name);
  await page.locator('#room').fill(room);
  await page.locator('#join').click();
  await page.locator('#status[data-state="live"]').waitFor({ timeout });
  return page;
}
