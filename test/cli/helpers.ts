// Runs the real `chat` CLI as child processes. Each test file compiles the
// sources with tsconfig.build.json (as `npm run build` does) into a private
// temporary directory, so that files running in parallel never write the
// same dist/ at once; the compiled main.js is the one `npm run build` ships.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = resolve(import.meta.dirname, '../..');

export interface Built {
  /** Path of the compiled cli/main.js. */
  main: string;
  /** A fresh temporary directory for state files. */
  dir: string;
  cleanup(): Promise<void>;
}

/** Compiles src/ into a temporary directory; returns where main.js is. */
export async function buildCli(): Promise<Built> {
  const dir = await mkdtemp(join(tmpdir(), 'chat-cli-test-'));
  const out = join(dir, 'dist');
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out, '--declaration', 'false', '--sourceMap', 'false'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { main: join(out, 'cli/main.js'), dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The environment of a CLI run: no proxy, no saved session, short retry waits, plus `extra`. */
export function cliEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (/^(https?_proxy|no_proxy|all_proxy|chat_)/i.test(key)) delete env[key];
  return { ...env, XDG_STATE_HOME: join(dir, 'xdg'), CHAT_CLI_RETRY_BASE_MS: '5', ...extra };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end. */
export function runCli(main: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [main, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const bound = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', fail);
    child.on('close', (code) => (clearTimeout(bound), done({ code, stdout, stderr })));
  });
}

export interface Running {
  child: ChildProcess;
  /** stdout lines so far. */
  lines: string[];
  stderr(): string;
  /** Waits until at least `n` stdout lines arrived (a bound against hangs, not a speed check). */
  waitForLines(n: number): Promise<void>;
  /** Sends SIGINT and resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

/** Starts a long-running CLI (tail). */
export function startCli(main: string, args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [main, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  return {
    child,
    lines,
    stderr: () => stderr,
    async waitForLines(n) {
      const deadline = Date.now() + 20_000;
      while (lines.length < n) {
        if (child.exitCode !== null) throw new Error(`the CLI exited (${child.exitCode}) with ${lines.length} lines:\n${stderr}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} lines, have ${lines.length}:\n${lines.join('\n')}\n${stderr}`);
        await sleep(10);
      }
    },
    async interrupt() {
      if (child.exitCode === null) child.kill('SIGINT');
      return closed;
    },
  };
}
