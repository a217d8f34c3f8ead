// The README's remedy for a proxy that cuts polls sooner than the hold ("Deploying
// behind a proxy or load balancer"), through a real nginx whose proxy_read_timeout
// is 3 s: the default hold (25 s) is cut with nginx's 504, and a server started
// with nothing but `--poll-timeout-max 2` answers every poll, long or not, before
// nginx gives up, and still delivers a message to a held poll.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/processes.js';
import { missingBinaries, startNginx, type ProxyProcess } from '../helpers/proxies.js';

const skip = missingBinaries('the nginx read-timeout tests (test/proxies/nginx-timeout.test.ts)', ['nginx']);

interface PollBody {
  room: string;
  epoch: string;
  messages: { seq: number; text: string }[];
  last: number;
  more: boolean;
}

let remedied: ServerProcess | undefined; // --poll-timeout-max 2, nothing else about holds
let plain: ServerProcess | undefined; // the default hold, 25 s
let nginx: ProxyProcess | undefined;

let roomCounter = 0;
const newRoom = () => `nginx-timeout-${process.pid}-${++roomCounter}`;

beforeAll(async () => {
  if (skip) return;
  [remedied, plain] = await Promise.all([
    startServerProcess(['--store', 'memory', '--poll-timeout-max', '2']),
    startServerProcess(['--store', 'memory']),
  ]);
  // As the README configures nginx, but cutting upstream reads after 3 s.
  nginx = await startNginx(() => ({
    server: `
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 3s;
    location /default-hold/ { proxy_pass ${plain!.url}/; }
    location / { proxy_pass ${remedied!.url}; }`,
  }));
});

afterAll(async () => {
  await nginx?.stop();
  await Promise.all([remedied?.kill(), plain?.kill()]);
});

/** A GET through nginx; `json` is the parsed body when it parses. */
async function get(path: string): Promise<{ status: number; type: string; text: string; json: unknown }> {
  const res = await fetch(`${nginx!.url}${path}`);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json };
}

async function post(room: string, text: string): Promise<number> {
  const res = await fetch(`${nginx!.url}/api/rooms/${room}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'zed', text }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { message: { seq: number } }).message.seq;
}

/** A metric of the remedied server, read from it directly. */
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${remedied!.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

/** Resolves true once the remedied server holds a poll, false if `pending` settles first. */
async function parked(pending: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void pending.then(
    () => (settled = true),
    () => (settled = true),
  );
  const deadline = Date.now() + 20_000;
  while (!settled) {
    if ((await metric('chat_parked_polls')) >= 1) return true;
    if (Date.now() > deadline) throw new Error('the poll was never held');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/** Expects a complete poll answer with nothing new, at cursor `last`. */
function expectEmptyAnswer(res: Awaited<ReturnType<typeof get>>, room: string, epoch: string, last: number): void {
  expect(res.status, res.text).toBe(200);
  expect(res.type).toMatch(/^application\/json/);
  expect(res.json).toEqual({ room, epoch, messages: [], last, more: false });
}

describe.skipIf(skip)('polls behind an nginx with proxy_read_timeout 3s', () => {
  it('without the remedy, a poll held for the default 25 s is cut by nginx with a 504', async () => {
    const res = await get(`/default-hold/api/rooms/${newRoom()}/messages?after=0`);
    expect(res.status).toBe(504);
    expect(res.json).toBeUndefined();
    expect(res.text).toContain('504 Gateway Time-out');
  });

  it('with --poll-timeout-max 2 alone, polls with and without a timeout come back as complete empty answers', async () => {
    const room = newRoom();
    await post(room, 'the room is not empty');
    const join = (await get(`/api/rooms/${room}/messages`)).json as PollBody;
    expect(join.last).toBe(1);
    const timeouts = await metric('chat_poll_answers_total{outcome="timeout"}');

    const [unnamed, long] = await Promise.all([
      get(`/api/rooms/${room}/messages?after=${join.last}&epoch=${join.epoch}`),
      get(`/api/rooms/${room}/messages?after=${join.last}&epoch=${join.epoch}&timeout=25`),
    ]);
    expectEmptyAnswer(unnamed, room, join.epoch, 1);
    expectEmptyAnswer(long, room, join.epoch, 1);
    // Both were held until their hold ran out, not answered at once.
    expect(await metric('chat_poll_answers_total{outcome="timeout"}')).toBe(timeouts + 2);
  });

  it('with --poll-timeout-max 2, a message posted while a poll is held reaches it through nginx', async () => {
    const room = newRoom();
    const join = (await get(`/api/rooms/${room}/messages`)).json as PollBody;
    let last = join.last;
    let delivered: PollBody | undefined;
    // On a slow machine the 2 s hold may end before the post lands; then the client
    // does what a client does (polls again, collecting the message) and we try again.
    for (let attempt = 1; attempt <= 5 && !delivered; attempt++) {
      const text = `to a held poll, attempt ${attempt}`;
      const pending = get(`/api/rooms/${room}/messages?after=${last}&epoch=${join.epoch}&timeout=25`);
      const held = await parked(pending);
      if (held) await post(room, text);
      const res = await pending;
      expect(res.status, res.text).toBe(200);
      const body = res.json as PollBody;
      if (held && body.messages.some((m) => m.text === text)) {
        delivered = body;
        break;
      }
      last = body.last;
      if (held) {
        const missed = (await get(`/api/rooms/${room}/messages?after=${last}&epoch=${join.epoch}&timeout=0`)).json as PollBody;
        expect(missed.messages.map((m) => m.text)).toEqual([text]);
        last = missed.last;
      }
    }
    expect(delivered).toBeDefined();
    expect(delivered!.messages).toHaveLength(1);
    expect(delivered!.last).toBe(delivered!.messages[0]!.seq);
  });
});
