import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('uses the defaults with nothing set', () => {
    expect(loadConfig([], {})).toEqual(DEFAULTS);
    expect(DEFAULTS).toMatchObject({ port: 3000, defaultTimeout: 25, maxTimeout: 60, retention: 1000, capacity: 10_000 });
  });

  it('reads the environment, and a flag wins over it', () => {
    const config = loadConfig(['--port', '4000', '--cors-origins=https://a.example,https://b.example'], {
      PORT: '5000',
      HOST: '127.0.0.1',
      BODY_LIMIT: '16kb',
      POLL_TIMEOUT: '2.5',
    });
    expect(config).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      bodyLimit: 16 * 1024,
      defaultTimeout: 2.5,
      corsOrigins: ['https://a.example', 'https://b.example'],
    });
  });

  it('chooses the store: SQLite under ./data by default, Redis by URL and prefix, and an age limit for SQLite', () => {
    expect(DEFAULTS).toMatchObject({ store: 'sqlite', sqlitePath: 'data/chat.db', retentionAge: 0, redisUrl: 'redis://127.0.0.1:6379', redisPrefix: 'chat:' });
    expect(loadConfig(['--retention-age', '12h'], {})).toMatchObject({ store: 'sqlite', retentionAge: 12 * 3600 });
    expect(loadConfig([], { RETENTION_AGE: '30d', SQLITE_PATH: '/var/lib/chat/chat.db' })).toMatchObject({ retentionAge: 30 * 86_400, sqlitePath: '/var/lib/chat/chat.db' });
    expect(loadConfig(['--retention-age=90'], {}).retentionAge).toBe(90);
    expect(loadConfig(['--store', 'redis'], { REDIS_URL: 'rediss://u:p@cache:6380/2', REDIS_PREFIX: 'prod:chat:' })).toMatchObject({
      store: 'redis',
      redisUrl: 'rediss://u:p@cache:6380/2',
      redisPrefix: 'prod:chat:',
    });
  });

  it('reaches a Redis Cluster through one or more seed nodes, acknowledging posts a replica has', () => {
    expect(DEFAULTS).toMatchObject({ redisCluster: false, redisAckReplicas: 1 });
    expect(loadConfig(['--store', 'redis', '--redis-cluster', '--redis-url', 'redis://a:7000, rediss://u:p@b:7001'], {})).toMatchObject({
      redisCluster: true,
      redisUrl: 'redis://a:7000,rediss://u:p@b:7001',
      redisAckReplicas: 1,
    });
    expect(loadConfig([], { REDIS_CLUSTER: 'on', REDIS_ACK_REPLICAS: '0' })).toMatchObject({ redisCluster: true, redisAckReplicas: 0 });
  });

  it('signs users in: guest sessions on, anonymous posts off, tokens for 24 h, unless told otherwise', () => {
    expect(DEFAULTS).toMatchObject({ guestSessions: true, anonymousPosts: false, requireAuthToRead: false, sessionLifetime: 86_400, authSecret: '', authPublicKey: '' });
    // A switch alone turns it on; a value after it is taken when it is one.
    expect(loadConfig(['--anonymous-posts'], {}).anonymousPosts).toBe(true);
    expect(loadConfig(['--anonymous-posts', '--port', '1'], {})).toMatchObject({ anonymousPosts: true, port: 1 });
    expect(loadConfig(['--anonymous-posts', 'off'], {}).anonymousPosts).toBe(false);
    expect(loadConfig(['--require-auth-to-read=on', '--guest-sessions', 'off'], {})).toMatchObject({ requireAuthToRead: true, guestSessions: false });
    expect(loadConfig([], { ANONYMOUS_POSTS: 'true', GUEST_SESSIONS: 'no', SESSION_LIFETIME: '7d' })).toMatchObject({ anonymousPosts: true, guestSessions: false, sessionLifetime: 7 * 86_400 });
    expect(() => loadConfig(['--guest-sessions', 'maybe'], {})).toThrow(/--guest-sessions must be on or off/);
    expect(() => loadConfig(['--session-lifetime', '10'], {})).toThrow(/60 seconds to 365 days/);
  });

  it('refuses a short token secret without echoing it', () => {
    expect(loadConfig([], { AUTH_SECRET: 'x'.repeat(32) }).authSecret).toBe('x'.repeat(32));
    let message = '';
    try {
      loadConfig(['--auth-secret', 'hunter2-is-short'], {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/--auth-secret must be at least 32 bytes/);
    expect(message).not.toContain('hunter2');
  });

  it('answers woken polls 500 at a time unless told otherwise', () => {
    expect(DEFAULTS.wakeSlice).toBe(500);
    expect(loadConfig(['--wake-slice', '0'], {}).wakeSlice).toBe(0);
    expect(loadConfig([], { WAKE_SLICE: '2000' }).wakeSlice).toBe(2000);
  });

  it('lowers the default hold with --poll-timeout-max, the remedy for a proxy that cuts polls sooner', () => {
    expect(loadConfig(['--poll-timeout-max', '8'], {})).toMatchObject({ defaultTimeout: 8, maxTimeout: 8 });
    expect(loadConfig([], { POLL_TIMEOUT_MAX: '20' })).toMatchObject({ defaultTimeout: 20, maxTimeout: 20 });
    expect(loadConfig(['--poll-timeout-max', '8', '--poll-timeout', '5'], {})).toMatchObject({ defaultTimeout: 5, maxTimeout: 8 });
    expect(loadConfig(['--poll-timeout-max', '90'], {})).toMatchObject({ defaultTimeout: 25, maxTimeout: 90 });
  });

  it('logs JSON lines, or readable ones in a terminal, at info level unless told otherwise', () => {
    expect(DEFAULTS).toMatchObject({ logFormat: 'auto', logLevel: 'info' });
    expect(loadConfig(['--log-format', 'json', '--log-level', 'warn'], {})).toMatchObject({ logFormat: 'json', logLevel: 'warn' });
    expect(loadConfig([], { LOG_FORMAT: 'pretty', LOG_LEVEL: 'silent' })).toMatchObject({ logFormat: 'pretty', logLevel: 'silent' });
  });

  it('checks --trust-proxy as Express will use it', () => {
    expect(loadConfig(['--trust-proxy', 'loopback, 10.0.0.0/8'], {}).trustProxy).toBe('loopback, 10.0.0.0/8');
    expect(loadConfig([], { TRUST_PROXY: '2' }).trustProxy).toBe(2);
  });

  it.each([
    [['--trust-proxy', 'maybe'], {}, /^--trust-proxy must be true, false, a number of hops, or comma-separated addresses.*; got "maybe"$/],
    [['--cors-origins', 'http://a.example/'], {}, /^--cors-origins must be a comma-separated list of origins \(scheme, host and port, no path\).*"http:\/\/a\.example\/" is not one; got "http:\/\/a\.example\/"$/],
    [['--log-format', 'xml'], {}, /^--log-format must be one of auto, json, pretty; got "xml"$/],
    [[], { LOG_LEVEL: 'debug' }, /^LOG_LEVEL must be one of error, warn, info, silent; got "debug"$/],
    [['--poll-timeout-max', '8', '--poll-timeout', '10'], {}, /--poll-timeout \(10\) must not exceed --poll-timeout-max \(8\)/],
    [['--wake-slice', '-1'], {}, /--wake-slice must be a whole number from 0/],
    [['--port', 'eighty'], {}, /--port must be a whole number from 0 to 65535; got "eighty"/],
    [['--store', 'postgres'], {}, /^--store must be one of memory, sqlite, redis; got "postgres"$/],
    [['--redis-url', 'http://cache:6379'], {}, /^--redis-url must start with redis:\/\/ or rediss:\/\//],
    [[], { REDIS_URL: 'localhost' }, /^REDIS_URL must be a URL/],
    [['--redis-prefix', 'chat:{x}:'], {}, /^--redis-prefix must be 1 to 64 letters/],
    [['--redis-url', 'redis://a:7000,redis://b:7001'], {}, /^--redis-url names several servers, which only a Redis Cluster has; add --redis-cluster/],
    [['--redis-cluster', '--redis-url', 'redis://a:7000,b:7001'], {}, /^--redis-url must start with redis:\/\/ or rediss:\/\/ \(each URL, when several\)/],
    [['--redis-ack-replicas', '2'], {}, /^--redis-ack-replicas applies to a Redis Cluster only/],
    [['--redis-url', 'redis://:hunter2@cache:6379/abc'], {}, /^--redis-url may end in a database number only, such as \/0; got "redis:\/\/:\*\*\*@cache:6379\/abc"$/],
    [['--redis-cluster', '--redis-url', 'redis://u:hunter2@a:7000,http://:hunter2@b:1,'], {}, /^--redis-url must start with redis:\/\/ or rediss:\/\/.*; got "redis:\/\/u:\*\*\*@a:7000,http:\/\/:\*\*\*@b:1,"$/],
    [[], { REDIS_URL: 'redis://:hunter2@cache:99999' }, /^REDIS_URL must be a URL.*; got "redis:\/\/:\*\*\*@cache:99999"$/],
    [['--retention-age', 'a week'], {}, /^--retention-age must be a duration such as/],
    [['--store', 'redis', '--retention-age', '1d'], {}, /^--retention-age applies to the sqlite store only; the redis store keeps messages by count/],
    [[], { PORT: '70000' }, /^PORT must be/],
    [[], { RETENTION: '0' }, /^RETENTION must be/],
    [[], { POLL_TIMEOUT: '90' }, /--poll-timeout \(90\) must not exceed --poll-timeout-max \(60\)/],
    [[], { BODY_LIMIT: 'lots' }, /^BODY_LIMIT must be a size/],
    [[], { CORS_ORIGINS: 'chat.example.com' }, /^CORS_ORIGINS must be a comma-separated list/],
    [['--nope', '1'], {}, /unknown flag --nope/],
    [['--port'], {}, /--port needs a value/],
    [['--port', '1', '--port', '2'], {}, /--port is given twice/],
    [['stray'], {}, /unexpected argument "stray"/],
  ])('stops on %j %j with one clear line', (argv, env, message) => {
    let error: unknown;
    try {
      loadConfig(argv, env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });
});
