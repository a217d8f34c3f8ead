// The load generator of the presence scenario: one room, many signed-in
// clients each holding a sync on it and sending back the presence state they
// got, while clients arrive (sign in, start syncing) and leave (close their
// connection, as a closed tab does: the protocol has no explicit leave for
// presence; the user stays listed for the server's online window). Prints
// the result as one JSON line. Started by bench/run.ts.
import { Connection } from './http-client.js';
import { inBatches, procCpuSeconds, sleep, until } from './measure.js';
import { newClient, type SyncJob, type SyncResult } from './sync-job.js';
import { chatSync, type SyncClient } from './sync-protocol.js';

const ROOM = 'presence';
/** Quiet this long (no answer reporting anything) means every client has been told the last change. */
const SETTLED_MS = 1500;

interface Member {
  client: SyncClient;
  /** Answers received during the churn. */
  answers: number;
  /** Closed its connection: its sync ending is not a failure. */
  left: boolean;
}

async function run(job: SyncJob): Promise<SyncResult> {
  const members: Member[] = [];
  let counting = false;
  let errors = 0;
  let lastNews = performance.now();

  const loop = async (member: Member): Promise<void> => {
    while (!member.left) {
      try {
        const answer = await chatSync.sync(member.client, job.hold);
        if (!answer.empty) lastNews = performance.now();
        if (counting) member.answers++;
      } catch {
        if (member.left) return;
        errors++;
        await sleep(100);
      }
    }
  };
  const arrive = async (): Promise<Member> => {
    const client = newClient(await Connection.open(job.host, job.port), `c${members.length}`, [ROOM]);
    const member: Member = { client, answers: 0, left: false };
    members.push(member);
    await chatSync.join(client);
    void loop(member);
    return member;
  };

  await inBatches(Array.from({ length: job.clients }), 500, arrive);
  await until(() => performance.now() - lastNews > SETTLED_MS, 120_000);
  const initial = [...members];

  const cpu0 = procCpuSeconds(job.serverPid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  counting = true;
  // Leavers are taken from the clients there from the start, spread over them (at most every other one), so that the rest are there throughout.
  const step = Math.max(2, Math.floor(initial.length / Math.ceil((job.churn * job.seconds) / 2)));
  const leavers = initial.filter((_, i) => i % step === step - 1);
  const pending: Promise<unknown>[] = [];
  for (let n = 0; performance.now() - t0 < job.seconds * 1000; n++) {
    await sleep(Math.max(0, t0 + (n * 1000) / job.churn - performance.now()));
    if (n % 2 === 0) {
      pending.push(arrive().catch(() => errors++));
    } else {
      const leaver = leavers.shift();
      if (!leaver) continue;
      leaver.left = true;
      leaver.client.conn.close();
    }
  }
  await Promise.all(pending);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  const serverCpu = (procCpuSeconds(job.serverPid) - cpu0) / elapsed;
  const throughout = initial.filter((m) => !m.left);
  const rates = throughout.map((m) => m.answers / elapsed);

  // The last leaver is listed until the online window has passed; then the change is told within a second or so.
  await sleep(job.onlineWindow * 1000 + 1000);
  await until(() => performance.now() - lastNews > SETTLED_MS, 10_000);
  const online = members.filter((m) => !m.left);
  const countWrong = online.filter((m) => m.client.onlineCount !== online.length).length;
  for (const member of members) member.left = true;
  return {
    answersPerClientSecond: rates.reduce((a, b) => a + b, 0) / rates.length,
    maxAnswersPerClientSecond: Math.max(...rates),
    countWrong,
    onlineAtEnd: online.length,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    errors,
    serverCpu,
    generatorCpu: (gen.user + gen.system) / 1e6 / elapsed,
  };
}

const job = JSON.parse(process.argv[2]!) as SyncJob;
console.log(JSON.stringify(await run(job)));
process.exit(0);
