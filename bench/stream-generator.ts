// The stream load generator: runs one stream scenario against one server
// (this project's GET /api/stream, or the bare SSE reference) and prints its
// result as one JSON line, as bench/generator.ts does for long polls. A
// process of its own, so that its CPU and the server's are measured apart.
// Started by bench/run.ts.
import type { Result } from './generator.js';
import { Connection, EventStream } from './http-client.js';
import { expectStatus, inBatches, procCpuSeconds, procRssBytes, quantile, sleep, until } from './measure.js';

export type StreamScenario = 'stream-fanout' | 'stream-throughput' | 'idle-stream';

export interface StreamJob {
  host: string;
  port: number;
  serverPid: number;
  scenario: StreamScenario;
  /** Streams, each on a connection of its own, all on one room. */
  clients: number;
  /** stream-fanout: broadcasts sent. */
  messages: number;
  /** stream-throughput: length of the measured window, in seconds. */
  seconds: number;
  /** idle-stream: how long the streams are held with nothing posted, in seconds. */
  hold: number;
}

/**
 * A stream scenario's figures: Result's where they mean the same (latency,
 * deliveries/s, posts/s, the counts of what went wrong; `errors` counts
 * streams that could not be opened and streams that ended before the run
 * was over), and what only streams have.
 */
export interface StreamResult extends Result {
  /** stream-throughput: events per second; deliveries/s over this is how many messages an event carries. */
  eventsPerSecond?: number;
  /** idle-stream: server RSS growth from before the clients connected to every stream open (first event received), per stream, in bytes. */
  rssPerStream?: number;
  /** idle-stream: the same growth at the end of the hold, per stream, in bytes. */
  rssPerStreamAfterHold?: number;
  /** idle-stream: comments (heartbeats) received per stream during the hold. */
  heartbeats?: number;
}

/** One stream's state; messages carry their index k in their text. */
interface Client {
  /** The next k this stream should see. */
  next: number;
  /** Ks skipped over, in case they still come (out of order). */
  missing: Set<number>;
  joined: boolean;
  ended: boolean;
}

const ROOM = '/api/rooms/bench/messages';
const STREAM = '/api/stream?rooms=bench';

async function run(job: StreamJob): Promise<StreamResult> {
  const rssBefore = procRssBytes(job.serverPid);
  const sentAt: number[] = [];
  const receivedBy: number[] = [];
  const latencies: number[] = [];
  let counting = false;
  let stopping = false;
  let delivered = 0;
  let events = 0;
  let heartbeats = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let errors = 0;

  /** Counts a failure; the first of a run is told on stderr, since the counts alone do not say why. */
  const fail = (why: string): void => {
    if (errors++ === 0) process.stderr.write(`${job.scenario} C=${job.clients}: ${why}\n`);
  };

  const record = (c: Client, ks: number[], at: number): void => {
    if (counting) events++;
    for (const k of ks) {
      if (k === c.next) c.next++;
      else if (k > c.next) {
        for (let j = c.next; j < k; j++) c.missing.add(j);
        c.next = k + 1;
      } else if (c.missing.delete(k)) outOfOrder++;
      else duplicated++;
      receivedBy[k] = (receivedBy[k] ?? 0) + 1;
      if (counting) {
        delivered++;
        if (job.scenario === 'stream-fanout') latencies.push(at - sentAt[k]!);
      }
    }
  };

  const clients: Client[] = Array.from({ length: job.clients }, () => ({ next: 1, missing: new Set(), joined: false, ended: false }));
  const open = (c: Client): Promise<EventStream | undefined> =>
    EventStream.open(job.host, job.port, STREAM, {
      event(event) {
        const at = performance.now();
        const body = JSON.parse(event.data) as { messages?: { text: string }[]; last?: number };
        c.joined = true;
        // An event of a room the stream may not read, or of a failing store, has no messages: a failure, not news.
        if (!body.messages) return fail(`event without messages: ${event.data.slice(0, 200)}`);
        // The id is what a reconnecting client resumes from: it must name the cursor the data moved to.
        if (!event.id.startsWith(`bench:${body.last}:`)) fail(`event id ${event.id} does not name the cursor of its data (last ${body.last})`);
        record(c, body.messages.map((m) => Number(m.text)), at);
      },
      comment() {
        if (c.joined) heartbeats++;
      },
      end(error) {
        c.ended = true;
        if (!stopping) fail(`stream ended: ${error?.message ?? 'by the server'}`);
      },
    }).catch((error: Error) => {
      fail(`stream not opened: ${error.message}`);
      c.ended = true;
      return undefined;
    });
  await inBatches(clients, 500, open);
  // Every stream reports its room at once: the first event says the stream is open.
  await until(() => clients.every((c) => c.joined || c.ended), 60_000 + job.clients * 10);
  // Let the server finish with the openings (their last writes, their garbage) before anything is measured.
  await sleep(500);

  const publisher = await Connection.open(job.host, job.port);
  const publish = async (k: number): Promise<void> => {
    sentAt[k] = performance.now();
    try {
      expectStatus(await publisher.request('POST', ROOM, `{"author":"bench","text":"${k}"}`), 201);
    } catch (error) {
      fail(`post failed: ${(error as Error).message}`);
    }
  };

  const cpu0 = procCpuSeconds(job.serverPid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const result: Partial<StreamResult> = {};
  let lastK = 0;

  if (job.scenario === 'stream-fanout') {
    counting = true;
    for (let k = 1; k <= job.messages; k++) {
      lastK = k;
      await publish(k);
      await until(() => (receivedBy[k] ?? 0) >= job.clients, 10_000);
      // Each broadcast alone: the server done with the last one before the next.
      await sleep(Math.max(50, performance.now() - sentAt[k]!));
    }
    counting = false;
    latencies.sort((a, b) => a - b);
    result.latency = {
      p50: quantile(latencies, 0.5),
      p90: quantile(latencies, 0.9),
      p99: quantile(latencies, 0.99),
      max: latencies[latencies.length - 1] ?? NaN,
      samples: latencies.length,
    };
  } else if (job.scenario === 'stream-throughput') {
    counting = true;
    const end = t0 + job.seconds * 1000;
    while (performance.now() < end) await publish(++lastK);
    counting = false;
    const elapsed = (performance.now() - t0) / 1000;
    result.deliveriesPerSecond = delivered / elapsed;
    result.eventsPerSecond = events / elapsed;
    result.postsPerSecond = lastK / elapsed;
  } else {
    result.rssPerStream = (procRssBytes(job.serverPid) - rssBefore) / job.clients;
    heartbeats = 0;
    await sleep(job.hold * 1000);
    result.rssPerStreamAfterHold = (procRssBytes(job.serverPid) - rssBefore) / job.clients;
    result.heartbeats = heartbeats / job.clients;
  }

  const seconds = (performance.now() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  const serverCpu = (procCpuSeconds(job.serverPid) - cpu0) / seconds;
  // Everything posted must reach every stream still open: a backlog written faster than it is read may take a while.
  await until(() => clients.every((c) => c.ended || c.next > lastK), 30_000);
  stopping = true;
  const lost = clients.reduce((n, c) => n + c.missing.size + Math.max(0, lastK - (c.next - 1)), 0);
  return {
    ...result,
    lost,
    duplicated,
    outOfOrder,
    errors,
    serverCpu,
    generatorCpu: (gen.user + gen.system) / 1e6 / seconds,
  };
}

const job = JSON.parse(process.argv[2]!) as StreamJob;
console.log(JSON.stringify(await run(job)));
process.exit(0);
