// The CLI behind a real nginx, the reverse proxy the README recommends. With
// nginx's default buffering, two users chatting through it see every message
// once and in order. With an nginx that cuts every request held longer than
// 10 s (proxy_read_timeout 10s) while the CLI asks for 25 s holds, `chat tail`
// takes two cuts at about 10 s, then holds 5 s and is cut no more, never
// treating a cut as a failure; messages posted around the cuts show exactly
// once and in order.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingBinaries, startNginx, type ProxyProcess } from '../helpers/proxies.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { post as postMessage } from '../http/util.js';
import { buildCli, cliEnv, runCli, startCli, type Built } from './helpers.js';

const skip = missingBinaries('the CLI-behind-nginx tests (test/cli/nginx.test.ts)', ['nginx']);

const CUT_S = 10;
const FULL_HOLD_S = 25;
const ADAPTED_HOLD_S = CUT_S - 5;

let srv: TestServer | undefined;
let cli: Built | undefined;
let buffering: ProxyProcess | undefined; // the README's nginx, buffering left at its default
let cutting: ProxyProcess | undefined; // the same, but proxy_read_timeout 10s

beforeAll(async () => {
  if (skip) return;
  cli = await buildCli();
  srv = await startTestServer();
  buffering = await startNginx(() => ({
    server: `
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location / { proxy_pass ${srv!.baseUrl}; }`,
  }));
  // Each sync's line carries its body, so the log alone tells which hold a
  // cut sync had asked for, without trusting what the CLI says of itself.
  cutting = await startNginx((dir) => ({
    http: `  log_format syncs escape=json '$msec $request_method $request_uri $status $request_time $request_body';`,
    server: `
    access_log ${dir}/syncs.log syncs;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout ${CUT_S}s;
    location / { proxy_pass ${srv!.baseUrl}; }`,
  }));
}, 60_000);

afterAll(async () => {
  await buffering?.stop();
  await cutting?.stop();
  await srv?.close();
  await cli?.cleanup();
});

interface SyncLine {
  status: number;
  seconds: number;
  /** The `timeout` the sync asked for. */
  hold: number;
}

/** The syncs of the cutting nginx's log, in the order they ended. */
async function loggedSyncs(): Promise<SyncLine[]> {
  const log = await cutting!.read('syncs.log');
  return log
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[1] === 'POST' && fields[2] === '/api/sync')
    .map((fields) => ({
      status: Number(fields[3]),
      seconds: Number(fields[4]),
      hold: Number(/timeout\\?":(\d+)/.exec(fields.slice(5).join(' '))?.[1] ?? NaN),
    }));
}

/** A sync nginx gave up on (504) or whose client went away (499) before an answer. */
const isCut = (sync: SyncLine): boolean => sync.status === 504 || sync.status === 499;

/** Resolves once the log shows `n` cut syncs; the bound catches a hang, it is not a speed check. */
async function cuts(n: number): Promise<void> {
  const deadline = Date.now() + 40_000;
  while ((await loggedSyncs()).filter(isCut).length < n) {
    if (Date.now() > deadline) throw new Error(`nginx never cut ${n} syncs:\n${await cutting!.read('syncs.log')}`);
    await sleep(25);
  }
}

describe.skipIf(skip)('chat behind nginx', () => {
  it('two users chat through nginx with its default buffering: every message once, in order', async () => {
    const room = `nginx-cli-${process.pid}`;
    const env = cliEnv(cli!.dir);
    const ann = ['--server', buffering!.url, '--state', join(cli!.dir, 'ann.json')];
    const bob = ['--server', buffering!.url, '--state', join(cli!.dir, 'bob.json')];
    const tail = startCli(cli!.main, [...ann, '--name', 'ann', '--json', 'tail', room], env);
    // Its first sync is answered at once (the room's tail and who is online);
    // once nginx has logged it, the next one is being held.
    const deadline = Date.now() + 20_000;
    while (!(await buffering!.read('access.log')).includes('/api/sync ')) {
      if (Date.now() > deadline || tail.child.exitCode !== null) throw new Error(`no sync through nginx:\n${tail.stderr()}`);
      await sleep(25);
    }

    const said: { author: string; text: string }[] = [];
    const send = async (who: 'ann' | 'bob', text: string, first = false) => {
      const run = await runCli(cli!.main, [...(who === 'ann' ? ann : bob), ...(first ? ['--name', who] : []), 'send', room, text], env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      said.push({ author: who, text });
    };
    await send('bob', 'hi ann', true);
    await send('bob', 'are you there?');
    // ann answers with the state file her tail is writing cursors to.
    await send('ann', 'hi bob, yes');
    await send('bob', 'good');
    await send('bob', 'bye');
    await tail.waitForLines(said.length);
    // Time for a stray repeat to show up before the tail is stopped.
    await sleep(500);
    // Read before stopping the tail: the sync it abandons then is logged as 499.
    const log = await buffering!.read('access.log');
    expect(await tail.interrupt()).toBe(0);

    const printed = tail.lines.map((line) => JSON.parse(line) as { author: string; text: string; room: string });
    expect(printed.map(({ author, text }) => ({ author, text }))).toEqual(said);
    expect(printed.every((m) => m.room === room)).toBe(true);
    expect(tail.stderr()).toBe('');
    expect(log).toMatch(/^\/api\/sync - 200$/m);
    expect(log).toMatch(new RegExp(`^/api/rooms/${room}/messages - 201$`, 'm'));
    expect(log).not.toMatch(/ [45]\d\d$/m);
  });

  it(`tail behind an nginx cutting at ${CUT_S} s: two cuts, then ${ADAPTED_HOLD_S} s holds cut no more; nothing lost or repeated`, async () => {
    const room = `nginx-cli-cut-${process.pid}`;
    const sent: string[] = [];
    /** A message straight to the server, as another client would send it. */
    const post = async (text: string): Promise<void> => {
      const res = await postMessage(srv!.baseUrl, room, { author: 'zed', text });
      expect(res.status).toBe(201);
      sent.push(text);
    };

    await post('before the tail');
    const env = cliEnv(cli!.dir);
    const tail = startCli(cli!.main, ['--server', cutting!.url, '--state', join(cli!.dir, 'cut.json'), '--name', 'ann', '--json', '--verbose', 'tail', room], env);
    await tail.waitForLines(1);
    // The sync now held was sent as that line was printed: answer it shortly
    // before nginx would cut it.
    await sleep((CUT_S - 0.5) * 1000);
    await post('just before a cut');
    // Each lands while the CLI sends its next sync after a cut.
    await cuts(1);
    await post('right after cut 1');
    await cuts(2);
    await post('right after cut 2');
    // Two cuts at about 10 s should be enough; a third is tolerated. The log
    // shows a shorter hold once such a sync has ended.
    const deadline = Date.now() + 40_000;
    while (!(await loggedSyncs()).some((s) => s.hold < CUT_S)) {
      if (Date.now() > deadline) throw new Error(`the CLI never asked for less than ${CUT_S} s:\n${await cutting!.read('syncs.log')}\n${tail.stderr()}`);
      await sleep(25);
    }
    // Adapted: about 30 s of short holds, with messages at unrelated moments
    // and one quiet stretch long enough for a short hold, then a full hold
    // the path cuts, should the CLI go back to 25 s.
    for (const wait of [2_500, 16_500, 4_000]) {
      await sleep(wait);
      await post(`after adapting, ${sent.length}`);
    }
    await sleep(5_000);
    await post('last');
    await tail.waitForLines(sent.length);
    await sleep(500);
    // Read before stopping the tail: the sync it abandons then is logged as 499.
    const syncs = await loggedSyncs();
    expect(await tail.interrupt()).toBe(0);

    const received = tail.lines.map((line) => (JSON.parse(line) as { text: string }).text);
    const adaptedFrom = syncs.findIndex((s) => s.hold < CUT_S);
    const before = adaptedFrom === -1 ? syncs : syncs.slice(0, adaptedFrom);
    const after = adaptedFrom === -1 ? [] : syncs.slice(adaptedFrom);
    const cutBefore = before.filter(isCut);
    const cutAfter = after.filter(isCut);
    const lost = sent.filter((text) => !received.includes(text));
    const repeated = received.length - new Set(received).size;
    console.log(
      `chat tail behind nginx cutting at ${CUT_S} s: syncs cut before adapting: ${cutBefore.length} (after ${cutBefore.map((s) => s.seconds).join(', ')} s); ` +
        `syncs after adapting: ${after.length}, asking ${[...new Set(after.map((s) => s.hold))].join('/')} s, cut: ${cutAfter.length}; ` +
        `messages sent ${sent.length}, received ${received.length}, lost ${lost.length}, repeated ${repeated}`,
    );

    expect([...new Set(before.map((s) => s.hold))]).toEqual([FULL_HOLD_S]);
    expect(cutBefore.length).toBeGreaterThanOrEqual(2);
    expect(cutBefore.length).toBeLessThanOrEqual(3);
    expect([...new Set(cutBefore.map((s) => s.status))]).toEqual([504]);
    expect(cutAfter).toEqual([]);
    expect(after.length).toBeGreaterThan(3);
    expect([...new Set(after.map((s) => s.hold))]).toEqual([ADAPTED_HOLD_S]);
    expect(received).toEqual(sent);
    // A cut is neither an error nor a reason to back off: the only notices
    // (--verbose) are the cuts themselves and the shorter hold.
    const notices = tail.stderr().trim().split('\n');
    expect(notices).toContain(`chat: syncs are cut after about ${CUT_S} s; holding ${ADAPTED_HOLD_S} s from now on`);
    expect(notices.filter((line) => !/^chat: (a sync was cut after \d+\.\d s; syncing again|syncs are cut after about \d+ s; holding \d+ s from now on)$/.test(line))).toEqual([]);
  }, 120_000);
});
