import { KeyFileError } from './auth/keys.js';
import { EXIT_CONFIG, commandConfig, usage } from './config.js';
import { StoreOpenError } from './core/store.js';
import { startServer } from './server.js';
import { describeStore } from './stores/open.js';

/** Past the drain, how long shutdown may take before the process gives up on it. */
const SHUTDOWN_GRACE_MS = 5000;

async function main(): Promise<void> {
  const config = commandConfig(usage());
  if (!config) return;

  let running;
  try {
    running = await startServer(config);
  } catch (err) {
    if (err instanceof KeyFileError) {
      console.error(`cannot use the public key file ${config.authPublicKey}: ${err.message}`);
      process.exit(EXIT_CONFIG);
    }
    if (err instanceof StoreOpenError) {
      console.error(`cannot open the message store: ${err.message}`);
      process.exit(EXIT_CONFIG);
    }
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : String(err);
    console.error(`cannot listen on ${config.host}:${config.port}: ${reason}`);
    process.exit(EXIT_CONFIG);
  }
  const { log } = running;
  // A wildcard address is not somewhere a browser can go; name the local host instead.
  const url = running.url.replace(/\/\/(0\.0\.0\.0|\[::\])/, '//localhost');
  log.info({ url: running.url, store: config.store }, `chat server listening on ${running.url}: open ${url}/ in a browser; ${describeStore(config)}`);

  const stop = (signal: string): void => {
    if (process.exitCode !== undefined) {
      log.warn({ signal }, `${signal} again: exiting now`);
      process.exit(1);
    }
    process.exitCode = 0;
    log.info({ signal }, `${signal} received`);
    setTimeout(() => {
      log.error({}, 'shutdown took too long: exiting');
      process.exit(1);
    }, config.drainTimeout * 1000 + SHUTDOWN_GRACE_MS).unref();
    running.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

await main();
