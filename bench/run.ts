// The benchmark: this project's server against a bare node:http long-poll
// server and Faye, side by side, in turns, on loopback.
//
//   npm run bench                 fanout, throughput and idle at the sizes, 3 rounds
//   npm run bench -- --quick      one small round of each, to try it out
//   npm run bench -- --scenarios fanout --clients 5000 --rounds 5
//
// Each run starts a fresh server process and a generator process
// (bench/generator.ts); the servers take turns within a round, in a
// different order each round. Prints medians and the project's ratios to each
// reference, and writes every run to bench/results.json. Figures, not verdicts.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { parseArgs } from 'node:util';
import { startProcess, type ServerProcess } from '../test/helpers/processes.js';
import type { Job, Result, Scenario } from './generator.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    scenarios: { type: 'string', default: 'fanout,throughput,idle' },
    clients: { type: 'string' },
    servers: { type: 'string', default: 'chat,chat-unsliced,chat-signed-in,bare,faye' },
    messages: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '5' },
    hold: { type: 'string', default: '5' },
    out: { type: 'string', default: 'bench/results.json' },
  },
});

const SERVER_NAMES = ['chat', 'chat-unsliced', 'chat-signed-in', 'bare', 'faye'] as const;
type ServerName = (typeof SERVER_NAMES)[number];
/**
 * This project's server: as configured by default with anonymous pollers, with its wake-ups
 * unsliced, and with every poller signed in (a token of its own on every poll); the others are
 * references.
 */
const OURS: ServerName[] = ['chat', 'chat-unsliced', 'chat-signed-in'];
const SERVERS = values.servers.split(',') as ServerName[];
for (const name of SERVERS) {
  if (!SERVER_NAMES.includes(name)) {
    console.error(`--servers: unknown server "${name}"; choose from ${SERVER_NAMES.join(', ')}`);
    process.exit(2);
  }
}
const SCENARIOS = values.scenarios.split(',') as Scenario[];
const ROUNDS = Number(values.rounds ?? (values.quick ? 1 : 3));
const HOLD = Number(values.hold);
const CLIENTS: Record<Scenario, number[]> = values.clients
  ? { fanout: values.clients.split(',').map(Number), throughput: values.clients.split(',').map(Number), idle: values.clients.split(',').map(Number) }
  : values.quick
    ? { fanout: [500], throughput: [500], idle: [500] }
    : { fanout: [1000, 5000, 10_000], throughput: [1000, 10_000], idle: [10_000] };

/** How each server is started, from built JavaScript as users run it; all listen on a free loopback port and keep everything in memory. */
const CHAT_ARGS = [
  '--host', '127.0.0.1', '--port', '0', '--store', 'memory', '--retention', '100000',
  '--poll-capacity', '50000', '--post-rate', '0', '--drain-timeout', '0', '--anonymous-posts',
];
const START: Record<ServerName, () => Promise<ServerProcess>> = {
  chat: () => startProcess('dist/main.js', CHAT_ARGS),
  'chat-unsliced': () => startProcess('dist/main.js', [...CHAT_ARGS, '--wake-slice', '0']),
  'chat-signed-in': () => startProcess('dist/main.js', CHAT_ARGS),
  bare: () => startProcess('dist-bench/servers/bare.js', ['--port', '0']),
  faye: () => startProcess('dist-bench/servers/faye.js', ['--port', '0', '--timeout', String(HOLD)]),
};

/** With no messages the wake slice changes nothing, so idle leaves out the unsliced server. */
function ranIn(scenario: Scenario, server: ServerName): boolean {
  return !(scenario === 'idle' && server === 'chat-unsliced');
}

function generate(job: Job): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist-bench/generator.js', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`generator exited ${code}: ${out}`));
      else resolve(JSON.parse(line) as Result);
    });
  });
}

interface Run {
  scenario: Scenario;
  clients: number;
  server: ServerName;
  round: number;
  result: Result;
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

function report(runs: Run[]): void {
  for (const scenario of SCENARIOS) {
    for (const clients of CLIENTS[scenario]) {
      const of = (server: ServerName) => runs.filter((r) => r.scenario === scenario && r.clients === clients && r.server === server).map((r) => r.result);
      const m = (server: ServerName, pick: (r: Result) => number | undefined) => median(of(server).map((r) => pick(r) ?? NaN));
      const correctness = (server: ServerName) =>
        `${sum(of(server).map((r) => r.lost))}/${sum(of(server).map((r) => r.duplicated))}/${sum(of(server).map((r) => r.outOfOrder))}/${sum(of(server).map((r) => r.errors))}`;
      const cpu = (server: ServerName) => [fixed(m(server, (r) => r.serverCpu), 2), fixed(m(server, (r) => r.generatorCpu), 2)];
      const servers = SERVERS.filter((s) => ranIn(scenario, s));
      const ratios = (what: string, pick: (r: Result) => number | undefined) => {
        for (const ours of OURS.filter((s) => servers.includes(s))) {
          const vs = servers.filter((s) => !OURS.includes(s)).map((other) => `${fixed(m(ours, pick) / m(other, pick), 2)}x ${other}`);
          if (vs.length > 0) console.log(`  ${ours} ${what}: ${vs.join(', ')}`);
        }
        if (servers.includes('chat') && servers.includes('chat-signed-in')) {
          console.log(`  signed-in poll against anonymous, ${what}: ${fixed(m('chat-signed-in', pick) / m('chat', pick), 2)}x (server CPU ${fixed(m('chat-signed-in', (r) => r.serverCpu) / m('chat', (r) => r.serverCpu), 2)}x)`);
        }
      };

      if (scenario === 'fanout') {
        const rows = servers.map((s) => [s, ...['p50', 'p90', 'p99', 'max'].map((q) => fixed(m(s, (r) => r.latency?.[q as 'p50']), 1)), correctness(s), ...cpu(s)]);
        table(`fanout, C=${clients}: ms from POST sent to answer parsed, per delivery; median of ${ROUNDS}`, ['server', 'p50', 'p90', 'p99', 'max', 'lost/dup/ooo/err', 'server CPU', 'gen CPU'], rows);
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
        const proc = await START[server]();
        try {
          const url = new URL(proc.url);
          const result = await generate({
            protocol: server === 'faye' ? 'faye' : 'chat',
            host: url.hostname,
            port: Number(url.port),
            serverPid: proc.child.pid!,
            scenario,
            clients,
            messages: Number(values.messages),
            seconds: Number(values.seconds),
            hold: HOLD,
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
