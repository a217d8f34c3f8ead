/**
 * Settings from command-line flags and environment variables (a flag wins),
 * each checked at start-up so that a wrong value stops the server with one
 * clear line instead of surfacing later.
 */

import { compile as compileTrust } from 'proxy-addr';
import { DEFAULT_WAKE_SLICE } from './core/poll-hub.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';

export type StoreKind = 'memory' | 'sqlite' | 'redis';
export const STORE_KINDS: readonly StoreKind[] = ['memory', 'sqlite', 'redis'];

export interface Config {
  host: string;
  port: number;
  /** Seconds a poll is held when the client names no timeout. */
  defaultTimeout: number;
  /** Longest hold in seconds; longer requests are clamped to it. */
  maxTimeout: number;
  /** Where messages live. */
  store: StoreKind;
  /** The SQLite store's database file. */
  sqlitePath: string;
  /** The Redis store's server, or with `redisCluster` one or more comma-separated seed nodes of a Redis Cluster. */
  redisUrl: string;
  /** `redisUrl` names nodes of a Redis Cluster. */
  redisCluster: boolean;
  /** Redis Cluster: replicas that must have a post before it is acknowledged (0: its master alone). */
  redisAckReplicas: number;
  /** Starts every Redis key and channel of this deployment. */
  redisPrefix: string;
  /** Messages kept per room. */
  retention: number;
  /** Seconds a message is kept by the SQLite store; 0 keeps by count only. */
  retentionAge: number;
  /** Rooms kept by the in-memory store. */
  maxRooms: number;
  maxTextLength: number;
  /** Bytes. */
  bodyLimit: number;
  corsOrigins: string[];
  /** Polls held at once. */
  capacity: number;
  /** Rooms one sync may name. */
  syncMaxRooms: number;
  /** Seconds a user stays online in a room after their last poll of it ended. */
  onlineWindow: number;
  /** Seconds a stream lives before the server ends it (the client reconnects). */
  streamMaxAge: number;
  /** Seconds of silence on a stream before the server sends a comment. */
  streamHeartbeat: number;
  /** Seconds a stream may wait for its client to read what was sent before it is cut. */
  streamStall: number;
  /** Polls answered at a time when a room's parked polls are woken; 0: all at once. */
  wakeSlice: number;
  /** Seconds an idle keep-alive connection stays open. */
  keepAliveTimeout: number;
  /** Seconds between answering parked polls at shutdown and exiting. */
  drainTimeout: number;
  /** Messages per second per client address; 0 turns the limit off. */
  postRate: number;
  postBurst: number;
  trustProxy: boolean | number | string;
  /** One JSON line per event, or readable lines; `auto`: readable in a terminal. */
  logFormat: LogFormat;
  /** Least severe events logged. */
  logLevel: LogLevel;
  /** The deployment's token secret; '' to generate one and keep it in the store. */
  authSecret: string;
  /** A file of an application's public keys (PEM or JWKS); '' for none. */
  authPublicKey: string;
  /** Seconds a guest session's token lasts. */
  sessionLifetime: number;
  /** Posting without a token, with `author` from the body (v1). */
  anonymousPosts: boolean;
  /** Reading public rooms needs a token. */
  requireAuthToRead: boolean;
  /** `POST /api/sessions` gives guest sessions. */
  guestSessions: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Exit code for a configuration or start-up error, as most Unix tools use for usage errors. */
export const EXIT_CONFIG = 2;

interface Setting<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  default: Config[K];
  /** The default as a user would write it, where that is not simply its text. */
  shown?: string;
  /** A value never echoed back (in an error about it); a secret. */
  secret?: boolean;
  /** How the value is echoed back in an error about it, when not as given (a URL's password masked). */
  echo?(raw: string): string;
  /** A switch: the flag alone turns it on. */
  switch?: boolean;
  help: string;
  parse(raw: string): Config[K];
}

function number(min: number, max: number, { integer = false, unit = '' } = {}) {
  const pattern = integer ? /^[0-9]+$/ : /^[0-9]+(\.[0-9]+)?$/;
  const what = `${integer ? 'a whole number' : 'a number'}${unit ? ` of ${unit}` : ''} from ${min} to ${max}`;
  return (raw: string): number => {
    const value = pattern.test(raw.trim()) ? Number(raw) : NaN;
    if (!(value >= min && value <= max)) throw new ConfigError(`must be ${what}`);
    return value;
  };
}

const SIZE = /^([0-9]+)\s*(b|kb|mb)?$/i;
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };

function bytes(min: number, max: number) {
  return (raw: string): number => {
    const m = SIZE.exec(raw.trim());
    const value = m ? Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]! : NaN;
    if (!(value >= min && value <= max)) throw new ConfigError(`must be a size from ${min} bytes to ${max / 1024} kb, such as 64kb`);
    return value;
  };
}

function origins(raw: string): string[] {
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const origin of list) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`must be a comma-separated list of origins (scheme, host and port, no path) such as https://chat.example.com, or *; "${origin}" is not one`);
    }
  }
  return list;
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string): T => {
    const value = raw.trim() as T;
    if (!values.includes(value)) throw new ConfigError(`must be one of ${values.join(', ')}`);
    return value;
  };
}

function filePath(raw: string): string {
  if (raw.trim() === '' || raw.includes('\0')) throw new ConfigError('must be a file path');
  return raw;
}

const DURATION = /^([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)?$/i;
const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

function duration(raw: string): number {
  const m = DURATION.exec(raw.trim());
  const value = m ? Number(m[1]) * SECONDS[(m[2] ?? 's').toLowerCase()]! : NaN;
  if (!(value >= 0 && value <= 100 * 365 * 86_400)) throw new ConfigError('must be a duration such as 3600, 90m, 12h or 30d (0: no age limit)');
  return value;
}

const ON = ['true', 'on', 'yes', '1'];
const OFF = ['false', 'off', 'no', '0'];

function onOff(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (ON.includes(value)) return true;
  if (OFF.includes(value)) return false;
  throw new ConfigError('must be on or off (or true / false)');
}

/** RFC 7518 §3.2: an HS256 key has at least as many bits as the hash, 256. */
const MIN_SECRET_BYTES = 32;

function authSecret(raw: string): string {
  if (Buffer.byteLength(raw) < MIN_SECRET_BYTES) {
    throw new ConfigError(`must be at least ${MIN_SECRET_BYTES} bytes (for example: openssl rand -base64 32)`);
  }
  return raw;
}

function lifetime(raw: string): number {
  const value = duration(raw);
  if (value < 60 || value > 365 * 86_400) throw new ConfigError('must be a duration from 60 seconds to 365 days, such as 24h or 7d');
  return value;
}

/** The comma-separated URLs of a `--redis-url`, as given (trimmed). */
function redisUrls(raw: string): string[] {
  return raw.split(',').map((part) => part.trim());
}

function redisUrl(raw: string): string {
  for (const part of redisUrls(raw)) {
    let url;
    try {
      url = new URL(part);
    } catch {
      throw new ConfigError('must be a URL such as redis://127.0.0.1:6379 or rediss://user:password@host:6380/0 (with --redis-cluster, one or more, comma-separated)');
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError('must start with redis:// or rediss:// (each URL, when several)');
    if (!/^\/?[0-9]*$/.test(url.pathname)) throw new ConfigError('may end in a database number only, such as /0');
  }
  return redisUrls(raw).join(',');
}

/** The URLs with every password masked, also in parts that are not URLs at all. */
function withoutPasswords(raw: string): string {
  return raw.replace(/(\/\/[^/@:,]*:)[^/@,]*@/g, '$1***@');
}

function redisPrefix(raw: string): string {
  // No braces: the room is the key's hash tag, and must be the first {…} in it.
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(raw)) throw new ConfigError('must be 1 to 64 letters, digits or : . _ -');
  return raw;
}

function trustProxy(raw: string): boolean | number | string {
  const value = raw.trim();
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^[0-9]+$/.test(value)) return Number(value);
  const what = 'must be true, false, a number of hops, or comma-separated addresses, subnets or loopback, linklocal, uniquelocal';
  // What Express does with the value at start-up, checked here so that a typo is named as a setting, not as a failure to listen.
  try {
    compileTrust(value.split(',').map((part) => part.trim()));
  } catch {
    throw new ConfigError(what);
  }
  return value;
}

const SETTINGS: { [K in keyof Config]: Setting<K> }[keyof Config][] = [
  { key: 'port', flag: 'port', env: 'PORT', default: 3000, help: 'TCP port to listen on (0 picks a free one)', parse: number(0, 65535, { integer: true }) },
  { key: 'host', flag: 'host', env: 'HOST', default: '0.0.0.0', help: 'address to listen on', parse: (raw) => {
    if (!/^[A-Za-z0-9.:_-]+$/.test(raw)) throw new ConfigError('must be a host name or IP address');
    return raw;
  } },
  { key: 'defaultTimeout', flag: 'poll-timeout', env: 'POLL_TIMEOUT', default: 25, help: 'seconds a poll is held when the client names no timeout (at most --poll-timeout-max)', parse: number(0, 3600, { unit: 'seconds' }) },
  { key: 'maxTimeout', flag: 'poll-timeout-max', env: 'POLL_TIMEOUT_MAX', default: 60, help: 'longest hold in seconds; longer requests are clamped', parse: number(0, 3600, { unit: 'seconds' }) },
  { key: 'capacity', flag: 'poll-capacity', env: 'POLL_CAPACITY', default: 10_000, help: 'polls held at once; past it new polls get 503', parse: number(1, 10_000_000, { integer: true }) },
  { key: 'onlineWindow', flag: 'online-window', env: 'ONLINE_WINDOW', default: 30, help: 'seconds a signed-in user stays online in a room after their last poll of it ended', parse: number(1, 3600, { unit: 'seconds' }) },
  { key: 'syncMaxRooms', flag: 'sync-max-rooms', env: 'SYNC_MAX_ROOMS', default: 100, help: 'rooms one sync (POST /api/sync) may follow; past it the sync is 400 too_many_rooms', parse: number(1, 10_000, { integer: true }) },
  { key: 'streamMaxAge', flag: 'stream-max-age', env: 'STREAM_MAX_AGE', default: 300, help: 'seconds a stream (GET /api/stream) lives before the server ends it and the client reconnects', parse: number(0.1, 86_400, { unit: 'seconds' }) },
  { key: 'streamHeartbeat', flag: 'stream-heartbeat', env: 'STREAM_HEARTBEAT', default: 15, help: 'seconds of silence on a stream before the server sends a comment; below the idle timeout of any proxy on the way', parse: number(0.1, 3600, { unit: 'seconds' }) },
  { key: 'streamStall', flag: 'stream-stall', env: 'STREAM_STALL', default: 30, help: 'seconds a stream may wait for its client to read what was sent (one batch of events is kept meanwhile) before it is cut', parse: number(0.1, 3600, { unit: 'seconds' }) },
  { key: 'wakeSlice', flag: 'wake-slice', env: 'WAKE_SLICE', default: DEFAULT_WAKE_SLICE, help: 'answer a room\'s woken polls this many at a time, batching posts that arrive meanwhile (0: all at once)', parse: number(0, 10_000_000, { integer: true }) },
  { key: 'store', flag: 'store', env: 'STORE', default: 'sqlite', help: 'where messages live: sqlite (a file, kept across restarts), redis (shared by several instances) or memory (lost on restart)', parse: oneOf(STORE_KINDS) },
  { key: 'sqlitePath', flag: 'sqlite-path', env: 'SQLITE_PATH', default: 'data/chat.db', help: 'the SQLite database file (its directory is created)', parse: filePath },
  { key: 'redisUrl', flag: 'redis-url', env: 'REDIS_URL', default: 'redis://127.0.0.1:6379', help: 'the Redis server, as redis:// or rediss:// with credentials if any; with --redis-cluster, one or more nodes, comma-separated', parse: redisUrl, echo: withoutPasswords },
  { key: 'redisCluster', flag: 'redis-cluster', env: 'REDIS_CLUSTER', default: false, shown: 'off', switch: true, help: 'Redis is a Redis Cluster: --redis-url names one or more of its nodes, comma-separated (on or off)', parse: onOff },
  { key: 'redisAckReplicas', flag: 'redis-ack-replicas', env: 'REDIS_ACK_REPLICAS', default: 1, help: 'Redis Cluster: replicas that must have a post before it is answered 201 (0: its master alone)', parse: number(0, 16, { integer: true }) },
  { key: 'redisPrefix', flag: 'redis-prefix', env: 'REDIS_PREFIX', default: 'chat:', help: 'starts every Redis key and channel name of this deployment', parse: redisPrefix },
  { key: 'retention', flag: 'retention', env: 'RETENTION', default: 1000, help: 'messages kept per room', parse: number(1, 10_000_000, { integer: true }) },
  { key: 'retentionAge', flag: 'retention-age', env: 'RETENTION_AGE', default: 0, help: 'sqlite store: drop messages older than this (seconds, or 90m, 12h, 30d; 0: no age limit); a room keeps its newest', parse: duration },
  { key: 'maxRooms', flag: 'max-rooms', env: 'MAX_ROOMS', default: 1000, help: 'memory store: rooms kept; past it the least recently posted-to room is forgotten', parse: number(1, 10_000_000, { integer: true }) },
  { key: 'maxTextLength', flag: 'max-text-length', env: 'MAX_TEXT_LENGTH', default: 4000, help: 'longest message text, in characters (code points)', parse: number(1, 100_000, { integer: true }) },
  { key: 'bodyLimit', flag: 'body-limit', env: 'BODY_LIMIT', default: 64 * 1024, shown: '64kb', help: 'largest request body (b, kb or mb, at most 1mb)', parse: bytes(1024, 1024 * 1024) },
  { key: 'corsOrigins', flag: 'cors-origins', env: 'CORS_ORIGINS', default: [], shown: 'none', help: 'comma-separated origins allowed to call the API from other sites, or *', parse: origins },
  { key: 'keepAliveTimeout', flag: 'keep-alive-timeout', env: 'KEEP_ALIVE_TIMEOUT', default: 65, help: 'seconds an idle keep-alive connection stays open; above your load balancer\'s idle timeout', parse: number(1, 3600, { unit: 'seconds' }) },
  { key: 'drainTimeout', flag: 'drain-timeout', env: 'DRAIN_TIMEOUT', default: 2, help: 'seconds of answering 503 after shutdown starts, before exiting', parse: number(0, 60, { unit: 'seconds' }) },
  { key: 'postRate', flag: 'post-rate', env: 'POST_RATE', default: 20, help: 'messages per second per client address (0: no limit)', parse: number(0, 1_000_000, { unit: 'messages per second' }) },
  { key: 'postBurst', flag: 'post-burst', env: 'POST_BURST', default: 40, help: 'messages a quiet client may send at once', parse: number(1, 1_000_000, { integer: true }) },
  { key: 'logFormat', flag: 'log-format', env: 'LOG_FORMAT', default: 'auto', help: 'json (one JSON line per event), pretty (readable lines) or auto (pretty in a terminal, else json)', parse: oneOf(LOG_FORMATS) },
  { key: 'logLevel', flag: 'log-level', env: 'LOG_LEVEL', default: 'info', help: 'least severe events logged: info, warn, error or silent', parse: oneOf(LOG_LEVELS) },
  { key: 'anonymousPosts', flag: 'anonymous-posts', env: 'ANONYMOUS_POSTS', default: false, shown: 'off', switch: true, help: 'allow posting without a token, with "author" from the body as in protocol v1 (on or off)', parse: onOff },
  { key: 'requireAuthToRead', flag: 'require-auth-to-read', env: 'REQUIRE_AUTH_TO_READ', default: false, shown: 'off', switch: true, help: 'reading public rooms needs a token too (on or off)', parse: onOff },
  { key: 'guestSessions', flag: 'guest-sessions', env: 'GUEST_SESSIONS', default: true, shown: 'on', help: 'POST /api/sessions gives a token to anyone who picks a name (on or off); off when your application mints every token', parse: onOff },
  { key: 'sessionLifetime', flag: 'session-lifetime', env: 'SESSION_LIFETIME', default: 86_400, shown: '24h', help: 'how long a token this server issues lasts (seconds, or 90m, 12h, 7d)', parse: lifetime },
  { key: 'authSecret', flag: 'auth-secret', env: 'AUTH_SECRET', default: '', shown: 'generated once and kept in the store', secret: true, help: 'the key signing this server\'s tokens (HS256), at least 32 bytes; give every instance the same', parse: authSecret },
  { key: 'authPublicKey', flag: 'auth-public-key', env: 'AUTH_PUBLIC_KEY', default: '', shown: 'none', help: 'a file of your application\'s public keys (PEM, or a JWKS), to accept the tokens it mints (RS256, ES256, EdDSA)', parse: filePath },
  { key: 'trustProxy', flag: 'trust-proxy', env: 'TRUST_PROXY', default: false, help: 'which proxies\' X-Forwarded-For to believe: false, true, a hop count, or addresses', parse: trustProxy },
];

export const DEFAULTS: Config = Object.fromEntries(SETTINGS.map((s) => [s.key, s.default])) as unknown as Config;

export function usage(): string {
  const rows = SETTINGS.map((s) => `  --${s.flag.padEnd(20)} ${s.env.padEnd(20)} ${s.help} (default: ${s.shown ?? String(s.default)})`);
  return ['Usage: npm start -- [--flag value ...]', '', '  flag                   environment          meaning', ...rows, '  --help                                      print this and exit'].join('\n');
}

/** Reads the configuration; throws ConfigError with one line saying what is wrong. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new ConfigError(`unexpected argument "${arg}" (see --help)`);
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    const setting = SETTINGS.find((s) => s.flag === name);
    if (!setting) throw new ConfigError(`unknown flag --${name} (see --help)`);
    if (flags.has(name)) throw new ConfigError(`--${name} is given twice`);
    // A switch alone is on; a value after it (on, off…) is taken only when it looks like one.
    const next = argv[i + 1];
    const bare = setting.switch && inline === undefined && (next === undefined || next.startsWith('--') || ![...ON, ...OFF].includes(next.toLowerCase()));
    const value = bare ? 'true' : (inline ?? argv[++i]);
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    flags.set(name, value);
  }

  const config = { ...DEFAULTS } as Record<keyof Config, unknown>;
  const given = new Set<keyof Config>();
  for (const setting of SETTINGS) {
    const fromFlag = flags.get(setting.flag);
    const raw = fromFlag ?? env[setting.env];
    if (raw === undefined || (fromFlag === undefined && raw === '')) continue;
    try {
      config[setting.key] = setting.parse(raw);
    } catch (err) {
      const source = fromFlag !== undefined ? `--${setting.flag}` : setting.env;
      throw new ConfigError(`${source} ${(err as Error).message}${setting.secret ? '' : `; got "${setting.echo?.(raw) ?? raw}"`}`);
    }
    given.add(setting.key);
  }
  const result = config as unknown as Config;
  if (result.defaultTimeout > result.maxTimeout) {
    // Lowering the longest hold (below a proxy's cut-off) lowers the default with it; only two explicit settings can disagree.
    if (!given.has('defaultTimeout')) result.defaultTimeout = result.maxTimeout;
    else throw new ConfigError(`--poll-timeout (${result.defaultTimeout}) must not exceed --poll-timeout-max (${result.maxTimeout})`);
  }
  if (result.retentionAge > 0 && result.store !== 'sqlite') {
    throw new ConfigError(`--retention-age applies to the sqlite store only; the ${result.store} store keeps messages by count (--retention)`);
  }
  if (result.redisUrl.includes(',') && !result.redisCluster) {
    throw new ConfigError('--redis-url names several servers, which only a Redis Cluster has; add --redis-cluster, or name one server');
  }
  if (given.has('redisAckReplicas') && !result.redisCluster) {
    throw new ConfigError('--redis-ack-replicas applies to a Redis Cluster only (--redis-cluster)');
  }
  return result;
}

/**
 * The configuration of a command run from the shell (the server,
 * `npm run new-epoch`), from its arguments and the environment. With
 * `--help` it prints `help` and returns undefined; a wrong setting prints
 * its one line on standard error and exits with EXIT_CONFIG.
 */
export function commandConfig(help: string): Config | undefined {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    return undefined;
  }
  try {
    return loadConfig(argv, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`config error: ${err.message}`);
    process.exit(EXIT_CONFIG);
  }
}
