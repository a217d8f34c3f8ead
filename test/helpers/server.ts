import { DEFAULTS, type Config } from '../../src/config.js';
import type { Store } from '../../src/core/store.js';
import { startServer, type RunningServer } from '../../src/server.js';

export interface TestServer extends RunningServer {
  /** Base URL such as http://127.0.0.1:40123, no trailing slash. */
  readonly baseUrl: string;
  /** Stops at once (no drain), closing every connection. */
  close(): Promise<void>;
}

/**
 * A real server listening on a free loopback port, with the defaults a user
 * gets except the in-memory store, no drain, no posting limit, anonymous
 * posts allowed (protocol v1, which most tests speak) and quiet logs
 * (collected in `logs`).
 */
export async function startTestServer(
  overrides: Partial<Config> = {},
  parts: { store?: Store } = {},
): Promise<TestServer & { logs: string[] }> {
  const logs: string[] = [];
  const collect = (fields: object, message: string): void => void logs.push(`${message} ${JSON.stringify(fields)}`);
  const config: Config = { ...DEFAULTS, store: 'memory', host: '127.0.0.1', port: 0, drainTimeout: 0, postRate: 0, anonymousPosts: true, ...overrides };
  const running = await startServer(config, {
    ...parts,
    processMetrics: false,
    log: { info: collect, warn: collect, error: collect },
  });
  return { ...running, baseUrl: running.url, close: () => running.shutdown(), logs };
}
