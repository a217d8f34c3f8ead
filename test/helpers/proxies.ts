// Real proxies in front of the chat server: nginx and squid instances of the
// tests' own, each on a free loopback port with a configuration generated into a
// temporary directory that also holds its pid file, logs, caches and temp files;
// and a GET sent through a forward proxy. Debian's packages: nginx-light, squid.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, readdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM_PATH } from './browser.js';
import { freePort } from './processes.js';

export const BINARIES = {
  nginx: { path: '/usr/sbin/nginx', package: 'nginx-light' },
  squid: { path: '/usr/sbin/squid', package: 'squid' },
  chromium: { path: CHROMIUM_PATH, package: 'chromium' },
} as const;
export type Binary = keyof typeof BINARIES;

/**
 * Why a suite needing `needs` cannot run here, or '' when it can. With CI set a
 * missing binary is an error, not a skip (.ci/run installs them); elsewhere the
 * reason is printed loudly, and the caller skips.
 */
export function missingBinaries(suite: string, needs: readonly Binary[]): string {
  const missing = needs.filter((name) => {
    try {
      accessSync(BINARIES[name].path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return '';
  const reason = missing.map((name) => `no ${BINARIES[name].path} (Debian package ${BINARIES[name].package})`).join(', ');
  if (process.env.CI) throw new Error(`CI must run ${suite}, but there is ${reason}`);
  console.warn(`\n*** Skipping ${suite}: there is ${reason}.\n*** Install it to run them; with CI=true this is an error.\n`);
  return reason;
}

export interface ProxyProcess {
  readonly port: number;
  /** http://127.0.0.1:<port>, no trailing slash. */
  readonly url: string;
  /** The temporary directory holding its configuration, pid file, logs and caches. */
  readonly dir: string;
  /** A file of `dir` (a log), or '' while it does not exist. */
  read(name: string): Promise<string>;
  /** Stops it (TERM, then KILL if it lingers) and removes `dir`. */
  stop(): Promise<void>;
}

/** Resolves when `port` on loopback accepts a connection; rejects if the process ends first or after 20 s. */
async function acceptsConnections(port: number, ended: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (ended()) throw new Error(`exited before listening on ${port}:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`not listening on ${port} after 20 s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs `binary args` in its own process group, waits until `port` accepts
 * connections, and returns the handle that stops it and removes `dir`.
 */
async function launch(name: string, binary: string, args: readonly string[], port: number, dir: string): Promise<ProxyProcess> {
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  // 'error' without 'exit' when it could not be started at all.
  const ended = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => ((text += `\n${String(err)}`), resolve()));
  });
  let hasEnded = false;
  void ended.then(() => (hasEnded = true));
  const read = async (file: string) => readFile(join(dir, file), 'utf8').catch(() => '');
  const stop = async (): Promise<void> => {
    if (!hasEnded) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        // Its whole group, so that no worker outlives a master that would not stop.
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 10_000);
      await ended;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await acceptsConnections(port, () => hasEnded, () => text);
  } catch (err) {
    const logs = await Promise.all(['error.log', 'cache.log'].map(read));
    await stop();
    throw new Error(`${name}: ${(err as Error).message}\n${logs.join('\n')}`);
  }
  return { port, url: `http://127.0.0.1:${port}`, dir, read, stop };
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Run as root, nginx's workers run as nobody and must reach their cache and files in here.
  chmodSync(dir, 0o755);
  return dir;
}

export interface NginxConfig {
  /** Directives of the `server` block, after its `listen`. */
  server: string;
  /** More directives at `http` level (proxy_cache_path, log_format…). */
  http?: string;
}

/**
 * An nginx of its own: `configure(dir)` gives the server block (and any http
 * directives) using paths in `dir`. Its access log is `access.log` in `dir`,
 * one line per request: `<request uri> <upstream cache status> <status>`.
 */
export async function startNginx(configure: (dir: string) => NginxConfig): Promise<ProxyProcess> {
  const dir = await tempDir('proxy-nginx-');
  const port = await freePort();
  const { server, http = '' } = configure(dir);
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  types { text/html html; text/css css; application/javascript js; application/json json; }
  default_type application/octet-stream;
  log_format uri_cache '$request_uri $upstream_cache_status $status';
  access_log ${dir}/access.log uri_cache;
  client_body_temp_path ${dir}/client_body_temp;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
${http}
  server {
    listen 127.0.0.1:${port};
${server}
  }
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  return launch('nginx', BINARIES.nginx.path, ['-p', `${dir}/`, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], port, dir);
}

/** The user squid switches to when started as root (it refuses to run as root). */
function squidUser(): { name: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const uid = spawnSync('id', ['-u', 'proxy'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'proxy'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('squid started as root needs the user "proxy" (created by Debian\'s base-passwd)');
  return { name: 'proxy', uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

/**
 * A squid of its own, listening on loopback, with a memory cache only (no
 * cache_dir, so no `squid -z`). `directives` come after the ones that keep
 * everything in the temporary directory and let loopback clients in; they are
 * where refresh_pattern and the like go.
 */
export async function startSquid(directives: string): Promise<ProxyProcess> {
  const dir = await tempDir('proxy-squid-');
  const port = await freePort();
  const user = squidUser();
  const conf = `
http_port 127.0.0.1:${port}
visible_hostname squid-test
${user ? `cache_effective_user ${user.name}` : ''}
pid_filename ${dir}/squid.pid
cache_log ${dir}/cache.log
access_log stdio:${dir}/access.log squid
cache_store_log none
coredump_dir ${dir}
netdb_filename none
pinger_enable off
shutdown_lifetime 0 seconds
# localhost is one of squid's predefined ACLs.
http_access allow localhost
http_access deny all
cache_mem 16 MB
${directives}
`;
  await writeFile(join(dir, 'squid.conf'), conf);
  if (user) chownTree(dir, user.uid, user.gid);
  const parse = spawnSync(BINARIES.squid.path, ['-k', 'parse', '-f', join(dir, 'squid.conf')], { encoding: 'utf8' });
  if (parse.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`squid refused its configuration:\n${parse.stderr}${parse.stdout}`);
  }
  return launch('squid', BINARIES.squid.path, ['-N', '-f', join(dir, 'squid.conf')], port, dir);
}

export interface ProxiedAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET of absolute `url` sent to the forward proxy on `proxyPort`, as a browser configured with it sends it. */
export function getThroughProxy(proxyPort: number, url: string, headers: Record<string, string> = {}): Promise<ProxiedAnswer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, method: 'GET', path: target.href, headers: { host: target.host, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from the proxy within 30 s for ${url}`)));
    req.on('error', reject);
    req.end();
  });
}
