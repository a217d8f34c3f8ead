// `chat send` and `chat tail` against a real server: every message printed
// exactly once, in order, across a tail stopped with Ctrl-C and restarted on
// the same state file; --json lines parse.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { buildCli, cliEnv, runCli, startCli, type Built } from './helpers.js';

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

let counter = 0;
const newRoom = () => `cli-${process.pid}-${++counter}`;

describe('chat send and chat tail', () => {
  it('compiles main.js with its shebang', async () => {
    expect((await readFile(cli.main, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('prints every message exactly once, in order, across a restart (--json)', async () => {
    const room = newRoom();
    const state = join(cli.dir, `${room}.json`);
    const env = cliEnv(cli.dir);
    const args = ['--server', srv.baseUrl, '--state', state];
    const send = async (text: string) => {
      const run = await runCli(cli.main, [...args, ...(text === 'm1' ? ['--name', 'ann'] : []), 'send', room, text], env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      return run.stdout;
    };
    expect(await send('m1')).toBe(`[${room}] #1 ann: m1\n`);
    await send('m2');
    await send('m3');

    const first = startCli(cli.main, [...args, '--json', 'tail', room], env);
    await first.waitForLines(3);
    await send('m4');
    await send('m5');
    await first.waitForLines(5);
    expect(await first.interrupt()).toBe(0);

    await send('m6');
    await send('m7');
    const second = startCli(cli.main, [...args, '--json', 'tail', room], env);
    await second.waitForLines(2);
    await send('m8');
    await second.waitForLines(3);
    expect(await second.interrupt()).toBe(0);

    const printed = [...first.lines, ...second.lines].map((line) => JSON.parse(line));
    expect(printed.map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
    expect(printed.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(printed.every((m) => m.room === room && m.author === 'ann' && typeof m.authorId === 'string')).toBe(true);
    expect(first.stderr() + second.stderr()).toBe('');
  });

  it('follows several rooms in one tail, as [room] author: text', async () => {
    const [a, b] = [newRoom(), newRoom()];
    const state = join(cli.dir, `${a}.json`);
    const env = cliEnv(cli.dir);
    const args = ['--server', srv.baseUrl, '--state', state];
    expect((await runCli(cli.main, [...args, '--name', 'bob', 'send', a, 'hello', 'a'], env)).code).toBe(0);
    const tail = startCli(cli.main, [...args, 'tail', a, b], env);
    await tail.waitForLines(1);
    expect((await runCli(cli.main, [...args, 'send', b, 'hello b'], env)).code).toBe(0);
    await tail.waitForLines(2);
    expect(await tail.interrupt()).toBe(0);
    expect(tail.lines).toEqual([`[${a}] bob: hello a`, `[${b}] bob: hello b`]);
  });

  it('lists private rooms with chat rooms', async () => {
    const state = join(cli.dir, 'rooms.json');
    const env = cliEnv(cli.dir);
    const session = await fetch(`${srv.baseUrl}/api/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"cat"}' });
    const { token } = (await session.json()) as { token: string };
    const created = await fetch(`${srv.baseUrl}/api/rooms`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{"title":"plans"}' });
    const { room } = (await created.json()) as { room: string };
    const args = ['--server', srv.baseUrl, '--state', state, '--token', token];
    const text = await runCli(cli.main, [...args, 'rooms'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(`${room}\tplans\t1 member\n`);
    const json = await runCli(cli.main, [...args, '--json', 'rooms'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ room, title: 'plans', memberCount: 1 });
  });

  it('a saved cursor from another epoch: a reset notice on stderr, then the room from its tail', async () => {
    const room = newRoom();
    const state = join(cli.dir, `${room}.json`);
    const env = cliEnv(cli.dir);
    const args = ['--server', srv.baseUrl, '--state', state];
    expect((await runCli(cli.main, [...args, '--name', 'dan', 'send', room, 'only'], env)).code).toBe(0);
    const saved = JSON.parse(await readFile(state, 'utf8'));
    saved.servers[srv.baseUrl].cursors = { [room]: { after: 40, epoch: 'another-epoch' } };
    await writeFile(state, JSON.stringify(saved));
    const tail = startCli(cli.main, [...args, 'tail', room], env);
    await tail.waitForLines(1);
    expect(await tail.interrupt()).toBe(0);
    expect(tail.lines).toEqual([`[${room}] dan: only`]);
    expect(tail.stderr()).toContain(`[${room}] the room was reset`);
    const after = JSON.parse(await readFile(state, 'utf8'));
    expect(after.servers[srv.baseUrl].cursors[room]).toMatchObject({ after: 1 });
  });
});
