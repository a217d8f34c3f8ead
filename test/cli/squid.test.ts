// The CLI through a real forward proxy (squid), chosen with HTTP_PROXY as a
// user would: send and tail work and squid's access log shows the requests;
// a squid that refuses every request makes send exit 5 naming the proxy's 403.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingBinaries, startSquid, type ProxyProcess } from '../helpers/proxies.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { buildCli, cliEnv, runCli, startCli, type Built } from './helpers.js';

const skip = missingBinaries('the CLI-through-squid tests (test/cli/squid.test.ts)', ['squid']);

let srv: TestServer | undefined;
let cli: Built | undefined;
let squid: ProxyProcess | undefined;
let denying: ProxyProcess | undefined;

beforeAll(async () => {
  if (skip) return;
  cli = await buildCli();
  srv = await startTestServer();
  squid = await startSquid('');
  // No cache, so every request is a miss, and no miss may go to the server: squid answers 403 itself.
  denying = await startSquid('miss_access deny all');
}, 60_000);

afterAll(async () => {
  await squid?.stop();
  await denying?.stop();
  await srv?.close();
  await cli?.cleanup();
});

/** Waits until squid's access log holds `text` (squid may write it a little after answering). */
async function logged(proxy: ProxyProcess, text: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const log = await proxy.read('access.log');
    if (log.includes(text) || Date.now() > deadline) return log;
    await new Promise((done) => setTimeout(done, 50));
  }
}

describe.skipIf(skip)('chat through squid', () => {
  it('sends and tails through the proxy named by HTTP_PROXY (NO_PROXY empty)', async () => {
    const room = `squid-cli-${process.pid}`;
    const env = cliEnv(cli!.dir, { HTTP_PROXY: squid!.url, NO_PROXY: '' });
    const args = ['--server', srv!.baseUrl, '--state', join(cli!.dir, 'squid.json')];
    const sent = await runCli(cli!.main, [...args, '--name', 'ann', 'send', room, 'via squid'], env);
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);
    const tail = startCli(cli!.main, [...args, 'tail', room], env);
    await tail.waitForLines(1);
    expect(await tail.interrupt()).toBe(0);
    expect(tail.lines).toEqual([`[${room}] ann: via squid`]);
    const log = await logged(squid!, '/api/sync');
    expect(log).toContain(`POST ${srv!.baseUrl}/api/sessions`);
    expect(log).toContain(`POST ${srv!.baseUrl}/api/rooms/${room}/messages`);
    expect(log).toContain(`POST ${srv!.baseUrl}/api/sync`);
  });

  it('a proxy that refuses the request: send exits 5 with a line naming the proxy status', async () => {
    const env = cliEnv(cli!.dir, { HTTP_PROXY: denying!.url, NO_PROXY: '' });
    const run = await runCli(cli!.main, ['--server', srv!.baseUrl, '--state', join(cli!.dir, 'deny.json'), '--token', 'x', 'send', 'lobby', 'hi'], env);
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/^chat: the proxy refused the request \(403 Forbidden\)/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(await logged(denying!, 'lobby')).toContain('/403 ');
  });
});
