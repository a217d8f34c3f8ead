// Real processes the tests start and kill: chat servers (`src/main.ts` as a
// user runs it) and private redis-servers.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { probeRedis } from './redis.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Waits until the child has exited; the exit code, or the signal that ended it. */
function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr and stdout so far. */
  output(): string;
  /** Sends `signal` and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a TypeScript entry point of the project in a process of its own, collecting its output. */
function run(entry: string, args: readonly string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text };
}

/** Starts a server (any entry point that prints "listening on http://host:port") and waits until it listens. */
export async function startProcess(entry: string, args: readonly string[]): Promise<ServerProcess> {
  const { child, output } = run(entry, args);
  const deadline = Date.now() + 20_000;
  let url: string | undefined;
  while (!(url = /listening on (http:\/\/[0-9.]+:[0-9]+)/.exec(output())?.[1])) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${entry} did not start:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url,
    child,
    output,
    kill: (signal = 'SIGTERM') => {
      const done = exited(child);
      child.kill(signal);
      return done;
    },
  };
}

/**
 * Starts a chat server process on a free loopback port with `args`, and waits
 * until it says it listens. No drain, no posting limit and anonymous posts
 * allowed (protocol v1, which most tests speak) unless `args` say otherwise.
 */
export function startServerProcess(args: readonly string[]): Promise<ServerProcess> {
  const anonymous = args.includes('--anonymous-posts') ? [] : ['--anonymous-posts', 'on'];
  return startProcess('src/main.ts', ['--host', '127.0.0.1', '--port', '0', '--drain-timeout', '0', '--post-rate', '0', ...anonymous, ...args]);
}

/** Runs the server with `args` expecting it to refuse to start: its exit code and output. */
export async function failedStart(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const { child, output } = run('src/main.ts', ['--host', '127.0.0.1', '--port', '0', ...args]);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const { code } = await exited(child);
  clearTimeout(timer);
  return { code, output: output() };
}

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  /** Kills it at once, as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty (it keeps nothing on disk). */
  restart(): Promise<void>;
}

/** A redis-server of the test's own on a free port, keeping nothing on disk. */
export async function startRedisServer(extraArgs: readonly string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  let child: ChildProcess;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const refusal = await probeRedis(`redis://127.0.0.1:${port}`);
      // A password-protected server refuses us, which proves it is up.
      if (!refusal || /NOAUTH|WRONGPASS/.test(refusal)) return;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start: ${refusal}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: async () => {
      const done = exited(child);
      child.kill('SIGKILL');
      await done;
    },
    restart: start,
  };
}
