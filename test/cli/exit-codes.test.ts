// The CLI's exit codes, each caused for real: a usage error (2), a private
// room the user is not in (3), a refused token (4) and a server that is not
// listening (5, for send after its retries).
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { buildCli, cliEnv, runCli, type Built } from './helpers.js';

let srv: TestServer;
let cli: Built;

beforeAll(async () => {
  cli = await buildCli();
  srv = await startTestServer();
}, 60_000);

afterAll(async () => {
  await srv?.close();
  await cli?.cleanup();
});

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

describe('chat exit codes', () => {
  const state = () => join(cli.dir, 'state.json');

  it('--help prints the usage and the exit codes, exit 0', async () => {
    const run = await runCli(cli.main, ['--help'], cliEnv(cli.dir));
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Exit codes:');
  });

  it('an unknown command is a usage error: 2', async () => {
    const run = await runCli(cli.main, ['--server', srv.baseUrl, 'frobnicate'], cliEnv(cli.dir));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "frobnicate"');
  });

  it('an unknown option is a usage error: 2', async () => {
    const run = await runCli(cli.main, ['--bogus', 'rooms'], cliEnv(cli.dir));
    expect(run.code).toBe(2);
  });

  it('no token, no name and no saved session: says how to sign in, 2', async () => {
    const run = await runCli(cli.main, ['--server', srv.baseUrl, '--state', join(cli.dir, 'empty.json'), 'send', 'lobby', 'hi'], cliEnv(cli.dir));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--name NAME');
  });

  it('tail of a private room the user is not in reports not_found and exits 3', async () => {
    const owner = (await (
      await fetch(`${srv.baseUrl}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"owner"}' })
    ).json()) as { token: string };
    const created = await fetch(`${srv.baseUrl}/api/rooms`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.token}` }, body: '{}' });
    const { room } = (await created.json()) as { room: string };
    const run = await runCli(cli.main, ['--server', srv.baseUrl, '--state', state(), '--name', 'eve', 'tail', room], cliEnv(cli.dir));
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`[${room}] not_found`);
    expect(run.stdout).toBe('');
  });

  it('a bad token is an auth failure: 4', async () => {
    const run = await runCli(cli.main, ['--server', srv.baseUrl, '--state', state(), '--token', 'not-a-jwt', 'send', 'lobby', 'hi'], cliEnv(cli.dir));
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('invalid_token');
  });

  it('a bad CHAT_TOKEN for tail is an auth failure too: 4', async () => {
    const run = await runCli(cli.main, ['--server', srv.baseUrl, '--state', state(), 'tail', 'lobby'], cliEnv(cli.dir, { CHAT_TOKEN: 'not-a-jwt' }));
    expect(run.code).toBe(4);
  });

  it('a server not listening: send gives up after its retries, 5', async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const run = await runCli(cli.main, ['--server', server, '--state', state(), '--token', 'x', '--verbose', 'send', 'lobby', 'hi'], cliEnv(cli.dir));
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('after 5 tries');
    expect(run.stderr.match(/retrying/g)).toHaveLength(4);
  });

  it('a proxy answering 407 with its own page: one line naming the proxy status, 5', async () => {
    // A stand-in for a proxy that wants credentials: it answers every request 407 with HTML.
    const proxy = createHttpServer((_req, res) => {
      res.writeHead(407, { 'content-type': 'text/html', 'proxy-authenticate': 'Basic realm="corp"' }).end('<html>auth needed</html>');
    });
    await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
    try {
      const { port } = proxy.address() as { port: number };
      const env = cliEnv(cli.dir, { HTTP_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: '' });
      const run = await runCli(cli.main, ['--server', srv.baseUrl, '--state', state(), '--token', 'x', 'send', 'lobby', 'hi'], env);
      expect(run.code).toBe(5);
      expect(run.stderr).toBe('chat: the proxy refused the request (407 Proxy Authentication Required); check HTTP_PROXY credentials\n');
    } finally {
      await new Promise((done) => proxy.close(done));
    }
  });
});
