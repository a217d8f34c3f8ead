// The load generator: runs one scenario against one server and prints its
// result as one JSON line. A process of its own, so that its CPU and the
// server's are measured apart. Started by bench/run.ts.
import { Connection } from './http-client.js';
import { expectStatus, inBatches, procCpuSeconds, procRssBytes, quantile, sleep, until } from './measure.js';

export type Scenario = 'fanout' | 'throughput' | 'idle';

export interface Job {
  /** 'chat' for this project's server and the bare reference (same protocol), 'faye' for Bayeux. */
  protocol: 'chat' | 'faye';
  host: string;
  port: number;
  serverPid: number;
  scenario: Scenario;
  /** Pollers, each on a connection of its own. */
  clients: number;
  /** fanout: broadcasts sent. */
  messages: number;
  /** throughput: length of the measured window. */
  seconds: number;
  /** idle: seconds each poll is held (the chat timeout parameter; Faye's is set on its server). */
  hold: number;
  /** chat: each poller signs in (a guest session of its own) and sends its token with every poll. */
  signedIn: boolean;
}

export interface Result {
  /** Per delivery, POST sent to answer parsed (fanout), in ms. */
  latency?: { p50: number; p90: number; p99: number; max: number; samples: number };
  deliveriesPerSecond?: number;
  /** Poll answers per second: deliveries/s over this is how many messages an answer carries. */
  answersPerSecond?: number;
  postsPerSecond?: number;
  /** Server RSS growth from before the clients connected to all polls parked, per poll (idle). */
  rssPerPoll?: number;
  /** idle: polls answered before their hold, or more than a second after it. */
  early?: number;
  late?: number;
  maxLateMs?: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  errors: number;
  /** Cores used during the measured part. */
  serverCpu: number;
  generatorCpu: number;
}

interface Cursor {
  epoch?: string;
  last?: number;
  clientId?: string;
  /** The poller's Authorization header line, when signed in. */
  auth?: string;
}

/** How a poller joins, polls and a publisher posts, per protocol. Messages carry their index k. */
interface Protocol {
  join(conn: Connection): Promise<Cursor>;
  /** Resolves to the k of every message in the answer, and moves the cursor on. */
  poll(conn: Connection, cursor: Cursor, hold: number): Promise<number[]>;
  publish(conn: Connection, publisher: Cursor, k: number): Promise<void>;
}

const ROOM = '/api/rooms/bench/messages';

/** This project's protocol; signed in, every poller has a user and token of its own, as on the page. */
const chat = (signedIn: boolean): Protocol => ({
  async join(conn) {
    let auth = '';
    if (signedIn) {
      const session = await conn.request('POST', '/api/sessions', '{"name":"bench"}');
      expectStatus(session, 201);
      auth = `Authorization: Bearer ${(JSON.parse(session.body) as { token: string }).token}\r\n`;
    }
    const res = await conn.request('GET', ROOM, undefined, auth);
    expectStatus(res, 200);
    const body = JSON.parse(res.body) as { epoch: string; last: number };
    return { epoch: body.epoch, last: body.last, auth };
  },
  async poll(conn, cursor, hold) {
    const res = await conn.request('GET', `${ROOM}?after=${cursor.last}&epoch=${cursor.epoch}&timeout=${hold}&limit=1000`, undefined, cursor.auth);
    expectStatus(res, 200);
    const body = JSON.parse(res.body) as { last: number; reset?: true; messages: { text: string }[] };
    if (body.reset) throw new Error('unexpected reset');
    cursor.last = body.last;
    return body.messages.map((m) => Number(m.text));
  },
  async publish(conn, _publisher, k) {
    expectStatus(await conn.request('POST', ROOM, `{"author":"bench","text":"${k}"}`), 201);
  },
});

const FAYE = '/faye';
const faye: Protocol = {
  async join(conn) {
    const hs = await conn.request('POST', FAYE, '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]');
    expectStatus(hs, 200);
    const clientId = (JSON.parse(hs.body) as { clientId: string }[])[0]!.clientId;
    const sub = await conn.request('POST', FAYE, `[{"channel":"/meta/subscribe","clientId":"${clientId}","subscription":"/bench"}]`);
    expectStatus(sub, 200);
    if (!(JSON.parse(sub.body) as { successful: boolean }[])[0]!.successful) throw new Error(`subscribe failed: ${sub.body}`);
    return { clientId };
  },
  async poll(conn, cursor) {
    const res = await conn.request('POST', FAYE, `[{"channel":"/meta/connect","clientId":"${cursor.clientId}","connectionType":"long-polling"}]`);
    expectStatus(res, 200);
    const ks: number[] = [];
    for (const item of JSON.parse(res.body) as { channel: string; successful?: boolean; data?: { k: number } }[]) {
      if (item.channel === '/bench') ks.push(item.data!.k);
      else if (item.channel === '/meta/connect' && !item.successful) throw new Error(`connect failed: ${res.body}`);
    }
    return ks;
  },
  async publish(conn, publisher, k) {
    expectStatus(await conn.request('POST', FAYE, `[{"channel":"/bench","clientId":"${publisher.clientId}","data":{"k":${k}}}]`), 200);
  },
};

interface Poller {
  conn: Connection;
  cursor: Cursor;
  /** The next k this poller should see. */
  next: number;
  /** Ks skipped over, in case they still come (out of order). */
  missing: Set<number>;
}

async function run(job: Job): Promise<Result> {
  const protocol = job.protocol === 'faye' ? faye : chat(job.signedIn);
  const rssBefore = procRssBytes(job.serverPid);
  const indexes = Array.from({ length: job.clients }, (_, i) => i);
  const conns = await inBatches(indexes, 500, () => Connection.open(job.host, job.port));
  const cursors = await inBatches(conns, 500, (conn) => protocol.join(conn));
  const pollers: Poller[] = conns.map((conn, i) => ({ conn, cursor: cursors[i]!, next: 1, missing: new Set() }));

  const sentAt: number[] = [];
  const receivedBy: number[] = [];
  const latencies: number[] = [];
  let counting = false;
  let delivered = 0;
  let answers = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let errors = 0;
  let inFlight = 0;
  let stopped = false;

  const record = (p: Poller, ks: number[], at: number): void => {
    if (counting) answers++;
    for (const k of ks) {
      if (k === p.next) p.next++;
      else if (k > p.next) {
        for (let j = p.next; j < k; j++) p.missing.add(j);
        p.next = k + 1;
      } else if (p.missing.delete(k)) outOfOrder++;
      else duplicated++;
      receivedBy[k] = (receivedBy[k] ?? 0) + 1;
      if (counting) {
        delivered++;
        if (job.scenario === 'fanout') latencies.push(at - sentAt[k]!);
      }
    }
  };

  const answeredAt: number[] = [];
  const polledAt: number[] = [];
  const loop = async (p: Poller, i: number): Promise<void> => {
    while (!stopped) {
      inFlight++;
      polledAt[i] = performance.now();
      try {
        const ks = await protocol.poll(p.conn, p.cursor, job.hold);
        answeredAt[i] = performance.now();
        record(p, ks, answeredAt[i]);
      } catch {
        errors++;
        await sleep(100);
      } finally {
        inFlight--;
      }
      if (job.scenario === 'idle') return;
    }
  };

  const publisherConn = await Connection.open(job.host, job.port);
  const publisher = job.protocol === 'faye' ? await protocol.join(publisherConn) : {};
  const publish = async (k: number): Promise<void> => {
    sentAt[k] = performance.now();
    try {
      await protocol.publish(publisherConn, publisher, k);
    } catch {
      errors++;
    }
  };

  pollers.forEach((p, i) => void loop(p, i));
  await until(() => inFlight === job.clients, 60_000);
  // Polls sent are not yet polls parked: give the server time to take them in.
  await sleep(500 + job.clients / 10);

  const cpu0 = procCpuSeconds(job.serverPid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const result: Partial<Result> = {};
  let lastK = 0;

  if (job.scenario === 'fanout') {
    counting = true;
    for (let k = 1; k <= job.messages; k++) {
      lastK = k;
      await publish(k);
      await until(() => (receivedBy[k] ?? 0) >= job.clients, 10_000);
      const took = performance.now() - sentAt[k]!;
      // Each broadcast alone: every poller back and parked before the next.
      await until(() => inFlight === job.clients, 10_000);
      await sleep(Math.max(50, took));
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
  } else if (job.scenario === 'throughput') {
    counting = true;
    const end = t0 + job.seconds * 1000;
    while (performance.now() < end) await publish(++lastK);
    counting = false;
    const elapsed = (performance.now() - t0) / 1000;
    result.deliveriesPerSecond = delivered / elapsed;
    result.answersPerSecond = answers / elapsed;
    result.postsPerSecond = lastK / elapsed;
  } else {
    result.rssPerPoll = (procRssBytes(job.serverPid) - rssBefore) / job.clients;
    await until(() => inFlight === 0, job.hold * 1000 + 15_000);
    const holdMs = job.hold * 1000;
    const elapsed = pollers.map((_, i) => (answeredAt[i] ?? Infinity) - polledAt[i]!);
    result.early = elapsed.filter((ms) => ms < holdMs - 50).length;
    result.late = elapsed.filter((ms) => ms > holdMs + 1000).length;
    result.maxLateMs = Math.max(0, ...elapsed.map((ms) => ms - holdMs));
  }

  const seconds = (performance.now() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  const serverCpu = (procCpuSeconds(job.serverPid) - cpu0) / seconds;
  // Everything posted must reach everyone: wait for stragglers before counting what never came.
  await until(() => pollers.every((p) => p.next > lastK), 10_000);
  stopped = true;
  const lost = pollers.reduce((n, p) => n + p.missing.size + Math.max(0, lastK - (p.next - 1)), 0);
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

const job = JSON.parse(process.argv[2]!) as Job;
console.log(JSON.stringify(await run(job)));
process.exit(0);
