// Debian's Chromium, driven by playwright-core, as every browser test launches it.
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

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
