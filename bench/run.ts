// The benchmark: this project's server against a bare node:http long-poll
// server and Faye, and its streams against a bare node:http SSE server, side
// by side, in turns, on loopback.
//
//   npm run bench                 fanout, throughput and idle, of polls and of streams; syncs and presence; at the sizes, 3 rounds
//   npm run bench -- --quick      one small round of each, to try it out
//   npm run bench -- --scenarios fanout --clients 5000 --rounds 5
//   npm run bench -- --scenarios stream-fanout --clients 200 --rounds 1
//   npm run bench -- --scenarios sync,idle-sync,presence --clients 200 --rounds 1
//
// Each run starts a fresh server process and a generator process
// (bench/generator.ts, bench/stream-generator.ts for streams,
// bench/sync-generator.ts and bench/presence-generator.ts for syncs); the
// servers take turns within a round, in a different order each round.
// Prints medians and the project's ratios to each reference, and writes
// every run to bench/results.json. Figures, not verdicts.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { parseArgs } from 'node:util';
import { startProcess, type ServerProcess } from '../test/helpers/processes.js';
import type { Job, Result, Scenario } from './generator.js';
import type { StreamJob, StreamResult, StreamScenario } from './stream-generator.js';
import type { SyncJob, SyncResult, SyncScenario } from './sync-job.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    scenarios: { type: 'string', default: 'fanout,throughput,idle,stream-fanout,stream-throughput,idle-stream,sync,idle-sync,presence' },
    clients: { type: 'string' },
    servers: { type: 'string', default: 'chat,chat-unsliced,chat-signed-in,bare,faye,bare-sse,chat-poll,bare-sync' },
    messages: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '5' },
    hold: { type: 'string', default: '5' },
    out: { type: 'string', default: 'bench/results.json' },
  },
});

const SERVER_NAMES = ['chat', 'chat-unsliced', 'chat-signed-in', 'bare', 'faye', 'bare-sse', 'chat-poll', 'bare-sync'] as const;
type ServerName = (typeof SERVER_NAMES)[number];
/**
 * This project's server: as configured by default with anonymous pollers, with its wake-ups
 * unsliced, with every poller signed in (a token of its own on every poll), and long-polled in a
 * stream scenario (`chat-poll`, the stream's own long-poll baseline); the others are references.
 */
const OURS: ServerName[] = ['chat', 'chat-unsliced', 'chat-signed-in', 'chat-poll'];
const SERVERS = values.servers.split(',') as ServerName[];
for (const name of SERVERS) {
  if (!SERVER_NAMES.includes(name)) {
    console.error(`--servers: unknown server "${name}"; choose from ${SERVER_NAMES.join(', ')}`);
    process.exit(2);
  }
}
type AnyScenario = Scenario | StreamScenario | SyncScenario;
const STREAM_SCENARIOS: readonly AnyScenario[] = ['stream-fanout', 'stream-throughput', 'idle-stream'];
const isStream = (scenario: AnyScenario): scenario is StreamScenario => STREAM_SCENARIOS.includes(scenario);
const SYNC_SCENARIOS: readonly AnyScenario[] = ['sync', 'idle-sync', 'presence'];
const isSync = (scenario: AnyScenario): scenario is SyncScenario => SYNC_SCENARIOS.includes(scenario);
const SCENARIOS = values.scenarios.split(',') as AnyScenario[];
const ROUNDS = Number(values.rounds ?? (values.quick ? 1 : 3));
const HOLD = Number(values.hold);
const SIZES: Record<AnyScenario, number[]> = values.quick
  ? { fanout: [500], throughput: [500], idle: [500], 'stream-fanout': [500], 'stream-throughput': [500], 'idle-stream': [500], sync: [200], 'idle-sync': [500], presence: [500] }
  : {
      fanout: [1000, 5000, 10_000],
      throughput: [1000, 10_000],
      idle: [10_000],
      'stream-fanout': [1000, 10_000],
      'stream-throughput': [1000, 10_000],
      'idle-stream': [10_000],
      sync: [2000],
      'idle-sync': [10_000],
      presence: [5000],
    };
const CLIENTS: Record<AnyScenario, number[]> = values.clients
  ? (Object.fromEntries(Object.keys(SIZES).map((scenario) => [scenario, values.clients!.split(',').map(Number)])) as Record<AnyScenario, number[]>)
  : SIZES;
/** presence runs 10 s unless --seconds says otherwise. */
const PRESENCE_SECONDS = process.argv.some((arg) => arg === '--seconds' || arg.startsWith('--seconds=')) ? Number(values.seconds) : 10;
/**
 * The presence scenario's online window (seconds, the servers' --online-window): shorter than the
 * default 30 s so that users who leave during the run drop out of the lists during the run, at the
 * rate they leave, as they do in a steady state with any window.
 */
const ONLINE_WINDOW = 3;

/**
 * A sync scenario's job: 50 rooms, each client following 5 (about 200 followers a room at C=2,000)
 * with 5 closed-loop publishers; presence: one room, 50 clients a second arriving or leaving, each
 * sync held up to 25 s as the page asks.
 */
function syncJob(scenario: SyncScenario, server: ServerName, target: { host: string; port: number; serverPid: number; clients: number }): SyncJob {
  const presence = scenario === 'presence';
  return {
    ...target,
    protocol: server === 'faye' ? 'faye' : 'chat',
    scenario,
    rooms: presence ? 1 : 50,
    roomsPerClient: presence ? 1 : 5,
    publishers: 5,
    seconds: presence ? PRESENCE_SECONDS : Number(values.seconds),
    hold: presence ? 25 : HOLD,
    churn: 50,
    onlineWindow: ONLINE_WINDOW,
  };
}

/** How each server is started, from built JavaScript as users run it; all listen on a free loopback port and keep everything in memory. */
const CHAT_ARGS = [
  '--host', '127.0.0.1', '--port', '0', '--store', 'memory', '--retention', '100000',
  '--poll-capacity', '50000', '--post-rate', '0', '--drain-timeout', '0', '--anonymous-posts',
];
/**
 * The server ends a stream after --stream-max-age (300 s by default), and a stream ended within
 * a run counts as failed: kept at its default unless a long --hold or --seconds would reach it.
 * The heartbeat stays at its default (15 s).
 */
const LONGEST_RUN = Math.max(HOLD, Number(values.seconds)) + 120;
const STREAM_ARGS = LONGEST_RUN > 300 ? ['--stream-max-age', String(LONGEST_RUN)] : [];
/** `extra`: more options for `chat` and `bare-sync` (the presence scenario's online window). */
const START: Record<ServerName, (extra: string[]) => Promise<ServerProcess>> = {
  chat: (extra) => startProcess('dist/main.js', [...CHAT_ARGS, ...STREAM_ARGS, ...extra]),
  'chat-unsliced': () => startProcess('dist/main.js', [...CHAT_ARGS, '--wake-slice', '0']),
  'chat-signed-in': () => startProcess('dist/main.js', CHAT_ARGS),
  bare: () => startProcess('dist-bench/servers/bare.js', ['--port', '0']),
  faye: () => startProcess('dist-bench/servers/faye.js', ['--port', '0', '--timeout', String(HOLD)]),
  'bare-sse': () => startProcess('dist-bench/servers/bare-sse.js', ['--port', '0']),
  'chat-poll': () => startProcess('dist/main.js', CHAT_ARGS),
  'bare-sync': (extra) => startProcess('dist-bench/servers/bare-sync.js', ['--port', '0', ...extra]),
};

/**
 * The long-poll servers run the long-poll scenarios (with no messages the wake slice changes
 * nothing, so idle leaves out the unsliced server); `chat` and `bare-sse` run the stream ones,
 * and `chat-poll` runs stream-throughput as the long-poll figure streams are held against.
 */
function ranIn(scenario: AnyScenario, server: ServerName): boolean {
  // Syncs: chat (its clients signed in, as on the page) against bare-sync, and Faye where it has the same shape (no presence).
  if (isSync(scenario)) return server === 'chat' || server === 'bare-sync' || (scenario === 'sync' && server === 'faye');
  if (server === 'bare-sync') return false;
  if (isStream(scenario)) return server === 'chat' || server === 'bare-sse' || (scenario === 'stream-throughput' && server === 'chat-poll');
  if (server === 'bare-sse' || server === 'chat-poll') return false;
  return !(scenario === 'idle' && server === 'chat-unsliced');
}

/** Runs a generator process (`script`: the long-poll one, or the stream one for a StreamJob, or a sync one for a SyncJob) and reads its Result line. */
function generate(job: Job | StreamJob | SyncJob, script = 'dist-bench/generator.js'): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`generator exited ${code}: ${out}`));
      else resolve(JSON.parse(line) as StreamResult);
    });
  });
}

interface Run {
  scenario: AnyScenario;
  clients: number;
  server: ServerName;
  round: number;
  result: StreamResult;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const fixed = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const thousands = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');

function table(title: string, head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  console.log(`\n${title}`);
  console.log(head.map((h, i) => h.padStart(widths[i]!)).join('  '));
  for (const row of rows) console.log(row.map((c, i) => c.padStart(widths[i]!)).join('  '));
}

/** What report() works out for one scenario and size, handed to reportSync. */
interface Measures {
  of: (server: ServerName) => Result[];
  /** The median over the rounds of what `pick` reads from a server's results. */
  m: (server: ServerName, pick: (r: SyncResult) => number | undefined) => number;
  correctness: (server: ServerName) => string;
  cpu: (server: ServerName) => string[];
  ratios: (what: string, pick: (r: SyncResult) => number | undefined) => void;
}

/** The tables of the sync scenarios. */
function reportSync(scenario: SyncScenario, clients: number, servers: ServerName[], { of, m, correctness, cpu, ratios }: Measures): void {
  if (scenario === 'sync') {
    const rows = servers.map((s) => [
      s,
      thousands(m(s, (r) => r.deliveriesPerSecond)),
      thousands(m(s, (r) => r.answersPerSecond)),
      fixed(m(s, (r) => r.deliveriesPerSecond! / r.answersPerSecond!), 2),
      thousands(m(s, (r) => r.postsPerSecond)),
      correctness(s),
      ...cpu(s),
    ]);
    table(
      `sync, C=${clients}: each client one held sync on 5 of 50 rooms, 5 closed-loop publishers, ${values.seconds} s; median of ${ROUNDS}`,
      ['server', 'deliveries/s', 'answers/s', 'msgs/answer', 'posts/s', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'],
      rows,
    );
    ratios('deliveries/s', (r) => r.deliveriesPerSecond);
  } else if (scenario === 'idle-sync') {
    const rows = servers.map((s) => [
      s,
      fixed(m(s, (r) => r.rssPerPoll) / 1024, 2),
      `${sum(of(s).map((r) => r.early ?? 0))}/${sum(of(s).map((r) => r.late ?? 0))}`,
      fixed(m(s, (r) => r.maxLateMs), 0),
      correctness(s),
      ...cpu(s),
    ]);
    table(`idle-sync, C=${clients}: signed-in syncs on 5 of 50 rooms held ${HOLD} s, no messages; median of ${ROUNDS}`, ['server', 'RSS KiB/sync', 'early/late', 'max late ms', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
    ratios('RSS per held sync', (r) => r.rssPerPoll);
  } else {
    const rows = servers.map((s) => [
      s,
      fixed(m(s, (r) => r.answersPerClientSecond), 2),
      fixed(m(s, (r) => r.maxAnswersPerClientSecond), 2),
      `${sum(of(s).map((r) => (r as SyncResult).countWrong ?? 0))}/${sum(of(s).map((r) => (r as SyncResult).onlineAtEnd ?? 0))}`,
      correctness(s),
      ...cpu(s),
    ]);
    table(
      `presence, C=${clients}: one room, 50 users a second arriving or leaving (closing their connection), online window ${ONLINE_WINDOW} s, ${PRESENCE_SECONDS} s; median of ${ROUNDS}`,
      ['server', 'answers/client/s', 'max', 'wrong count/clients', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'],
      rows,
    );
    console.log('  wrong count: clients whose last onlineCount was not the true count once the churn stopped and presence settled; summed over the rounds');
    ratios('server CPU', (r) => r.serverCpu);
  }
}

function report(runs: Run[]): void {
  for (const scenario of SCENARIOS) {
    for (const clients of CLIENTS[scenario]) {
      const of = (server: ServerName) => runs.filter((r) => r.scenario === scenario && r.clients === clients && r.server === server).map((r) => r.result);
      const m = (server: ServerName, pick: (r: StreamResult) => number | undefined) => median(of(server).map((r) => pick(r) ?? NaN));
      const correctness = (server: ServerName) =>
        `${sum(of(server).map((r) => r.lost))}/${sum(of(server).map((r) => r.duplicated))}/${sum(of(server).map((r) => r.outOfOrder))}/${sum(of(server).map((r) => r.errors))}`;
      const cpu = (server: ServerName) => [fixed(m(server, (r) => r.serverCpu), 2), fixed(m(server, (r) => r.generatorCpu), 2)];
      const servers = SERVERS.filter((s) => ranIn(scenario, s));
      const ratios = (what: string, pick: (r: StreamResult) => number | undefined) => {
        for (const ours of OURS.filter((s) => servers.includes(s))) {
          const vs = servers.filter((s) => !OURS.includes(s)).map((other) => `${fixed(m(ours, pick) / m(other, pick), 2)}x ${other}`);
          if (vs.length > 0) console.log(`  ${ours} ${what}: ${vs.join(', ')}`);
        }
        if (servers.includes('chat') && servers.includes('chat-signed-in')) {
          console.log(`  signed-in poll against anonymous, ${what}: ${fixed(m('chat-signed-in', pick) / m('chat', pick), 2)}x (server CPU ${fixed(m('chat-signed-in', (r) => r.serverCpu) / m('chat', (r) => r.serverCpu), 2)}x)`);
        }
      };

      if (scenario === 'fanout' || scenario === 'stream-fanout') {
        const rows = servers.map((s) => [s, ...['p50', 'p90', 'p99', 'max'].map((q) => fixed(m(s, (r) => r.latency?.[q as 'p50']), 1)), correctness(s), ...cpu(s)]);
        table(`${scenario}, C=${clients}: ms from POST sent to ${scenario === 'fanout' ? 'answer' : 'event'} parsed, per delivery; median of ${ROUNDS}`, ['server', 'p50', 'p90', 'p99', 'max', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
        ratios('p99', (r) => r.latency?.p99);
      } else if (scenario === 'throughput') {
        const rows = servers.map((s) => [
          s,
          thousands(m(s, (r) => r.deliveriesPerSecond)),
          thousands(m(s, (r) => r.postsPerSecond)),
          fixed(m(s, (r) => r.deliveriesPerSecond! / r.answersPerSecond!), 2),
          correctness(s),
          ...cpu(s),
        ]);
        table(`throughput, C=${clients}: closed-loop publisher, ${values.seconds} s; median of ${ROUNDS}`, ['server', 'deliveries/s', 'posts/s', 'msgs/answer', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
        ratios('deliveries/s', (r) => r.deliveriesPerSecond);
      } else if (scenario === 'stream-throughput') {
        const rows = servers.map((s) => [
          s,
          thousands(m(s, (r) => r.deliveriesPerSecond)),
          // chat-poll's events are its poll answers.
          thousands(m(s, (r) => r.eventsPerSecond ?? r.answersPerSecond)),
          thousands(m(s, (r) => r.postsPerSecond)),
          fixed(m(s, (r) => r.deliveriesPerSecond! / (r.eventsPerSecond ?? r.answersPerSecond)!), 2),
          correctness(s),
          ...cpu(s),
        ]);
        table(`stream-throughput, C=${clients}: closed-loop publisher, ${values.seconds} s; chat-poll: the same server long-polled; median of ${ROUNDS}`, ['server', 'deliveries/s', 'events/s', 'posts/s', 'msgs/event', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
        ratios('deliveries/s', (r) => r.deliveriesPerSecond);
        if (servers.includes('chat') && servers.includes('chat-poll')) {
          console.log(`  stream against long poll (chat / chat-poll), deliveries/s: ${fixed(m('chat', (r) => r.deliveriesPerSecond) / m('chat-poll', (r) => r.deliveriesPerSecond), 2)}x`);
        }
      } else if (scenario === 'idle-stream') {
        const rows = servers.map((s) => [
          s,
          fixed(m(s, (r) => r.rssPerStream) / 1024, 2),
          fixed(m(s, (r) => r.rssPerStreamAfterHold) / 1024, 2),
          fixed(m(s, (r) => r.heartbeats), 2),
          correctness(s),
          ...cpu(s),
        ]);
        table(`idle-stream, C=${clients}: streams held ${HOLD} s, no messages; median of ${ROUNDS}`, ['server', 'RSS KiB/stream', 'after hold', 'heartbeats/stream', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
        ratios('RSS per stream', (r) => r.rssPerStream);
      } else if (isSync(scenario)) {
        reportSync(scenario, clients, servers, { of, m: (s, pick) => m(s, (r) => pick(r as SyncResult)), correctness, cpu, ratios: (what, pick) => ratios(what, (r) => pick(r as SyncResult)) });
      } else {
        const rows = servers.map((s) => [
          s,
          fixed(m(s, (r) => r.rssPerPoll) / 1024, 2),
          `${sum(of(s).map((r) => r.early ?? 0))}/${sum(of(s).map((r) => r.late ?? 0))}`,
          fixed(m(s, (r) => r.maxLateMs), 0),
          correctness(s),
          ...cpu(s),
        ]);
        table(`idle, C=${clients}: polls held ${HOLD} s, no messages; median of ${ROUNDS}`, ['server', 'RSS KiB/poll', 'early/late', 'max late ms', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
        ratios('RSS per poll', (r) => r.rssPerPoll);
      }
    }
  }
}

for (const project of ['tsconfig.build.json', 'tsconfig.bench.json']) {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', project], { stdio: 'inherit' });
}

const runs: Run[] = [];
const started = new Date();
for (const scenario of SCENARIOS) {
  for (const clients of CLIENTS[scenario]) {
    for (let round = 1; round <= ROUNDS; round++) {
      // A different server goes first each round, so that drift in the machine's speed spreads over all of them.
      const servers = SERVERS.filter((s) => ranIn(scenario, s));
      const order = servers.map((_, i) => servers[(i + round - 1) % servers.length]!);
      for (const server of order) {
        const proc = await START[server](scenario === 'presence' ? ['--online-window', String(ONLINE_WINDOW)] : []);
        try {
          const url = new URL(proc.url);
          const target = { host: url.hostname, port: Number(url.port), serverPid: proc.child.pid!, clients, messages: Number(values.messages), seconds: Number(values.seconds), hold: HOLD };
          const result = isSync(scenario)
            ? await generate(syncJob(scenario, server, target), `dist-bench/${scenario === 'presence' ? 'presence' : 'sync'}-generator.js`)
            : isStream(scenario) && server !== 'chat-poll'
              ? await generate({ ...target, scenario }, 'dist-bench/stream-generator.js')
              : await generate({
                  ...target,
                  protocol: server === 'faye' ? 'faye' : 'chat',
                  // chat-poll: the long poll's throughput, run within stream-throughput.
                  scenario: isStream(scenario) ? 'throughput' : scenario,
                  signedIn: server === 'chat-signed-in',
                });
          runs.push({ scenario, clients, server, round, result });
          process.stderr.write(`${scenario} C=${clients} round ${round} ${server}: done\n`);
        } finally {
          await proc.kill('SIGKILL');
        }
      }
    }
  }
}

console.log(`\n${started.toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; Linux ${release()}; Node ${process.version}`);
console.log('lost/dup/ooo/err: messages lost, duplicated, out of order, and failed requests, summed over the rounds; all must be 0');
report(runs);
writeFileSync(
  values.out,
  `${JSON.stringify({ date: started.toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), node: process.version }, runs }, null, 1)}\n`,
);
console.log(`\nevery run: ${values.out}`);
