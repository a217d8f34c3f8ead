// The load generator of the sync and idle-sync scenarios: clients that each
// follow several rooms with one held request, re-syncing with the cursors
// they got, against one server; prints the result as one JSON line. A
// process of its own, so that its CPU and the server's are measured apart.
// Started by bench/run.ts.
import { Connection } from './http-client.js';
import { inBatches, procCpuSeconds, procRssBytes, sleep, until } from './measure.js';
import { newClient, roomsOf, Tally, type SyncJob, type SyncResult } from './sync-job.js';
import { chatSync, fayeSync, type SyncClient } from './sync-protocol.js';

/** Quiet this long (no answer reporting anything) means the joins' presence changes have all been told. */
const SETTLED_MS = 1500;

async function run(job: SyncJob): Promise<SyncResult> {
  const protocol = job.protocol === 'faye' ? fayeSync : chatSync;
  const rssBefore = procRssBytes(job.serverPid);
  const indexes = Array.from({ length: job.clients }, (_, i) => i);
  const clients = await inBatches(indexes, 500, async (_, i) => {
    const client = newClient(await Connection.open(job.host, job.port), `c${i}`, roomsOf(i, job.rooms, job.roomsPerClient));
    await protocol.join(client);
    return client;
  });

  const tally = new Tally();
  let counting = false;
  let answers = 0;
  let errors = 0;
  let inFlight = 0;
  let stopped = false;
  /** idle-sync: the sync each client holds when this is set (or sends next, if none) is its last. */
  let lastSync = false;
  let lastNews = performance.now();
  const polledAt: number[] = [];
  const answeredAt: number[] = [];

  const loop = async (client: SyncClient, i: number): Promise<void> => {
    while (!stopped) {
      inFlight++;
      polledAt[i] = performance.now();
      answeredAt[i] = NaN;
      try {
        const answer = await protocol.sync(client, job.hold);
        answeredAt[i] = performance.now();
        if (!answer.empty) lastNews = answeredAt[i];
        if (counting) answers++;
        tally.see(client, answer, counting);
      } catch {
        errors++;
        await sleep(100);
      } finally {
        inFlight--;
      }
      if (lastSync) return;
    }
  };
  clients.forEach((client, i) => void loop(client, i));
  await until(() => inFlight === job.clients, 60_000);
  // Every join changed the presence of its rooms: wait until every client has been told the last change.
  await until(() => performance.now() - lastNews > SETTLED_MS, 120_000);

  const lastK = new Map<string, number>();
  let posts = 0;
  const reached = (): boolean => clients.every((c) => c.rooms.every((f) => f.next > (lastK.get(f.room) ?? 0)));
  /** Posts the next message of `room`, numbered per room. */
  const post = async (publisher: SyncClient, room: string): Promise<void> => {
    const k = (lastK.get(room) ?? 0) + 1;
    lastK.set(room, k);
    try {
      await protocol.publish(publisher, room, k);
      posts++;
    } catch {
      errors++;
    }
  };
  const publishers = await Promise.all(
    Array.from({ length: job.scenario === 'sync' ? job.publishers : 0 }, async (_, p) => {
      const publisher = newClient(await Connection.open(job.host, job.port), `p${p}`, []);
      await protocol.join(publisher);
      return publisher;
    }),
  );
  /** The rooms publisher `p` posts to, in turn: every publishers-th, so that each room's messages come from one publisher, in order. */
  const own = (p: number): string[] => Array.from({ length: job.rooms }, (_, r) => r).filter((r) => r % job.publishers === p).map((r) => `r${r}`);
  // A room's first message makes the room (its store, for the chat server): a one-time cost, kept out of the measured window.
  for (const [p, publisher] of publishers.entries()) for (const room of own(p)) await post(publisher, room);
  await until(reached, 10_000);
  posts = 0;

  const cpu0 = procCpuSeconds(job.serverPid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const result: Partial<SyncResult> = {};

  if (job.scenario === 'sync') {
    counting = true;
    const end = t0 + job.seconds * 1000;
    await Promise.all(
      publishers.map(async (publisher, p) => {
        const rooms = own(p);
        for (let n = 0; performance.now() < end; n++) await post(publisher, rooms[n % rooms.length]!);
      }),
    );
    counting = false;
    const elapsed = (performance.now() - t0) / 1000;
    result.deliveriesPerSecond = tally.delivered / elapsed;
    result.answersPerSecond = answers / elapsed;
    result.postsPerSecond = posts / elapsed;
  } else {
    result.rssPerPoll = (procRssBytes(job.serverPid) - rssBefore) / job.clients;
    lastSync = true;
    await until(() => inFlight === 0, job.hold * 1000 + 15_000);
    const holdMs = job.hold * 1000;
    // A sync that failed or never came back counts as late.
    const elapsed = clients.map((_, i) => (Number.isNaN(answeredAt[i]) ? Infinity : answeredAt[i]! - polledAt[i]!));
    result.early = elapsed.filter((ms) => ms < holdMs - 50).length;
    result.late = elapsed.filter((ms) => ms > holdMs + 1000).length;
    result.maxLateMs = Math.max(0, ...elapsed.map((ms) => ms - holdMs));
  }

  const seconds = (performance.now() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  const serverCpu = (procCpuSeconds(job.serverPid) - cpu0) / seconds;
  // Everything posted must reach every follower: wait for stragglers before counting what never came.
  await until(reached, 10_000);
  stopped = true;
  return {
    ...result,
    lost: Tally.lost(clients, (room) => lastK.get(room) ?? 0),
    duplicated: tally.duplicated,
    outOfOrder: tally.outOfOrder,
    errors,
    serverCpu,
    generatorCpu: (gen.user + gen.system) / 1e6 / seconds,
  };
}

const job = JSON.parse(process.argv[2]!) as SyncJob;
console.log(JSON.stringify(await run(job)));
process.exit(0);
