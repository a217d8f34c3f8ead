// Store throughput and cross-instance wake-up latency, measured from a
// separate process against real server processes on loopback.
//
//   npm run bench:stores [-- --seconds 5 --rounds 3 --posters 64 --wakeups 300]
//
// Prints figures, never a verdict. Needs Redis at TEST_REDIS_URL (default
// redis://127.0.0.1:6379) for the Redis rows; its keys are deleted afterwards.
// For the Redis Cluster rows it starts a cluster of its own (3 masters, 3
// replicas, with redis-server and redis-cli), and removes it afterwards.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nanoid } from 'nanoid';
import { MemoryStore } from '../src/core/memory-store.js';
import type { Store } from '../src/core/store.js';
import { RedisStore } from '../src/stores/redis-store.js';
import { SqliteStore } from '../src/stores/sqlite-store.js';
import { startServerProcess, type ServerProcess } from '../test/helpers/processes.js';
import { clusterBinariesMissing, startRedisCluster, type RedisClusterProcess } from '../test/helpers/redis-cluster.js';
import { deleteKeys, probeRedis } from '../test/helpers/redis.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    posters: { type: 'string', default: '64' },
    wakeups: { type: 'string', default: '300' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const POSTERS = Number(values.posters);
const WAKEUPS = Number(values.wakeups);
const ROOMS = 16;
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bench-${nanoid(6)}:`;
const dir = mkdtempSync(join(tmpdir(), 'chat-bench-'));

let cluster: RedisClusterProcess | undefined;

const STORES: Record<string, () => string[]> = {
  memory: () => ['--store', 'memory'],
  sqlite: () => ['--store', 'sqlite', '--sqlite-path', join(dir, 'bench.db')],
  redis: () => ['--store', 'redis', '--redis-url', redisUrl, '--redis-prefix', prefix],
  cluster: () => ['--store', 'redis', '--redis-cluster', '--redis-url', cluster!.url, '--redis-prefix', prefix],
};

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

// node:http with keep-alive rather than fetch: the generator must not be the slower side.
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function send(method: 'GET' | 'POST', url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function post(url: string, room: string, text: string): Promise<number> {
  return (await send('POST', `${url}/api/rooms/${room}/messages`, JSON.stringify({ author: 'bench', text }))).status;
}

const getJson = async <T>(url: string): Promise<T> => JSON.parse((await send('GET', url)).text) as T;

interface Throughput {
  postsPerSecond: number;
  serverCpu: number;
  generatorCpu: number;
  failed: number;
}

/** POSTERS closed-loop posters over ROOMS rooms for SECONDS: accepted posts per second. */
async function throughput(server: ServerProcess): Promise<Throughput> {
  const deadline = performance.now() + SECONDS * 1000;
  const serverCpu = cpuSeconds(server.child.pid!);
  const generatorCpu = process.cpuUsage();
  const started = performance.now();
  let accepted = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: POSTERS }, async (_, p) => {
      for (let i = 0; performance.now() < deadline; i++) {
        if ((await post(server.url, `room-${(p + i) % ROOMS}`, `poster ${p} message ${i}`)) === 201) accepted++;
        else failed++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const gen = process.cpuUsage(generatorCpu);
  return {
    postsPerSecond: accepted / elapsed,
    serverCpu: (cpuSeconds(server.child.pid!) - serverCpu) / elapsed,
    generatorCpu: (gen.user + gen.system) / 1e6 / elapsed,
    failed,
  };
}

/** The store alone, in this process: POSTERS concurrent callers of append for SECONDS. */
async function appendsPerSecond(store: Store): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  let appended = 0;
  await Promise.all(
    Array.from({ length: POSTERS }, async (_, p) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await store.append(`room-${(p + i) % ROOMS}`, { author: 'bench', text: `caller ${p} message ${i}` }, Date.now());
        appended++;
      }
    }),
  );
  return appended / ((performance.now() - started) / 1000);
}

/**
 * Presence writes alone, the same way: each caller renews the online entries
 * of users of its own (setOnline with a time 60 s ahead), as every held poll
 * of a signed-in user does every few polls.
 */
async function presenceWritesPerSecond(store: Store): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  let written = 0;
  await Promise.all(
    Array.from({ length: POSTERS }, async (_, p) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const now = Date.now();
        await store.setOnline(`room-${(p + i) % ROOMS}`, { id: `u${p}-${i % 100}`, name: 'bench' }, now + 60_000, now);
        written++;
      }
    }),
  );
  return written / ((performance.now() - started) / 1000);
}

const OPEN: Record<string, () => Promise<Store>> = {
  memory: async () => new MemoryStore({ retention: 1000, maxRooms: 1000 }),
  sqlite: async () => SqliteStore.open({ path: join(dir, 'direct.db'), retention: 1000, retentionAgeMs: 0 }),
  redis: () => RedisStore.open({ url: redisUrl, prefix: `${prefix}direct:`, retention: 1000 }),
  cluster: () => RedisStore.open({ url: cluster!.url, cluster: true, prefix: `${prefix}direct:`, retention: 1000 }),
};

/** Post on `from`, with a poll parked on `to`: milliseconds from sending the POST to the poll's answer. */
async function wakeups(from: ServerProcess, to: ServerProcess): Promise<number[]> {
  const room = `wake-${nanoid(6)}`;
  const join = await getJson<{ epoch: string; last: number }>(`${to.url}/api/rooms/${room}/messages`);
  let last = join.last;
  const latencies: number[] = [];
  for (let i = 0; i < WAKEUPS; i++) {
    const held = getJson<{ last: number }>(`${to.url}/api/rooms/${room}/messages?after=${last}&epoch=${join.epoch}&timeout=10`).then(
      (body) => ({ at: performance.now(), last: body.last }),
    );
    // The poll must be parked before the post, or this would time a read, not a wake-up.
    while (!/^chat_parked_polls 1$/m.test((await send('GET', `${to.url}/metrics`)).text)) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const sent = performance.now();
    await post(from.url, room, `wake ${i}`);
    const answer = await held;
    if (answer.last !== last + 1) throw new Error(`wake-up ${i} answered last=${answer.last}, expected ${last + 1}`);
    last = answer.last;
    latencies.push(answer.at - sent);
  }
  return latencies.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const stores = ['memory', 'sqlite'];
  const noRedis = await probeRedis(redisUrl);
  if (noRedis) console.log(`${noRedis}: Redis rows skipped`);
  else stores.push('redis');
  const noCluster = clusterBinariesMissing();
  if (noCluster) console.log(`${noCluster}: Redis Cluster rows skipped`);
  else {
    cluster = await startRedisCluster();
    stores.push('cluster');
  }
  console.log(`posts/s: ${POSTERS} closed-loop posters, ${ROOMS} rooms, ${SECONDS} s a run, ${ROUNDS} rounds, stores in turn; median (min–max)`);

  const results = new Map<string, Throughput[]>(stores.map((s) => [s, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of stores) {
      const server = await startServerProcess(STORES[name]!());
      try {
        results.get(name)!.push(await throughput(server));
      } finally {
        await server.kill();
      }
    }
  }
  console.log('store    posts/s                 server CPU  generator CPU  failed');
  for (const [name, runs] of results) {
    const rates = runs.map((r) => r.postsPerSecond);
    const range = `${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))}`;
    console.log(
      `${name.padEnd(8)} ${String(Math.round(median(rates))).padStart(6)} (${range})`.padEnd(33) +
        `${median(runs.map((r) => r.serverCpu)).toFixed(2).padStart(10)}  ${median(runs.map((r) => r.generatorCpu)).toFixed(2).padStart(13)}  ${runs.reduce((n, r) => n + r.failed, 0)}`,
    );
  }

  console.log(`\nthe store alone, in the generator's process: ${POSTERS} concurrent callers, ${SECONDS} s, median of ${ROUNDS}`);
  for (const name of stores) {
    const appends = [];
    const presence = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const store = await OPEN[name]!();
      try {
        appends.push(await appendsPerSecond(store));
        presence.push(await presenceWritesPerSecond(store));
      } finally {
        await store.close();
      }
    }
    console.log(`${name.padEnd(8)} ${String(Math.round(median(appends))).padStart(7)} appends/s  ${String(Math.round(median(presence))).padStart(7)} presence writes/s`);
  }

  const pairs: [string, string[], boolean][] = [['memory, one instance', STORES.memory!(), false]];
  if (stores.includes('redis')) {
    pairs.push(['redis, one instance', STORES.redis!(), false], ['redis, post on A, poll on B', STORES.redis!(), true]);
  }
  if (stores.includes('cluster')) pairs.push(['cluster, post on A, poll on B', STORES.cluster!(), true]);
  console.log(`\nwake-up latency, POST sent to poll answer received, ${WAKEUPS} sequential wake-ups (ms)`);
  console.log('setup                            p50     p90     p99     max');
  for (const [label, args, twoInstances] of pairs) {
    const a = await startServerProcess(args);
    const b = twoInstances ? await startServerProcess(args) : a;
    try {
      const l = await wakeups(a, b);
      console.log(
        `${label.padEnd(30)} ${[0.5, 0.9, 0.99].map((q) => quantile(l, q).toFixed(2).padStart(6)).join('  ')}  ${l[l.length - 1]!.toFixed(2).padStart(6)}`,
      );
    } finally {
      await Promise.all([a.kill(), twoInstances ? b.kill() : undefined]);
    }
  }
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
  await cluster?.stop();
  if (!(await probeRedis(redisUrl))) await deleteKeys(redisUrl, prefix);
}
