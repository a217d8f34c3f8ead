// `npm run new-epoch`: starts a new epoch in the store the server is
// configured with, so that every client resets at its next poll. For
// operators, with every server on the store stopped, after restoring a
// backup or anything else that may hand seqs out again.
//
// Takes the server's flags and environment variables, so that it reaches
// the same store; the settings that do not name the store are accepted and
// ignored. Prints one line. Exit code 0 when done; 2, with one line on
// stderr, for a configuration error or a store that cannot be opened or
// changed (such as a SQLite file that a running server holds).
import { existsSync } from 'node:fs';
import { nanoid } from 'nanoid';
import { EXIT_CONFIG, commandConfig } from './config.js';
import { StoreOpenError, StoreUnavailableError } from './core/store.js';
import { createLog } from './log.js';
import { openStore, storeName } from './stores/open.js';

const HELP = `Usage: npm run new-epoch -- [--flag value ...]

Starts a new epoch in the configured store: every client resets at its next
poll. Stop every server on the store first. It reads the same flags and
environment variables as the server (npm start -- --help); those naming the
store matter: --store, --sqlite-path, --redis-url, --redis-cluster,
--redis-prefix.`;

function fail(message: string): never {
  console.error(message);
  process.exit(EXIT_CONFIG);
}

async function main(): Promise<void> {
  const config = commandConfig(HELP);
  if (!config) return;
  if (config.store === 'memory') fail('the memory store keeps nothing between processes: every server start has a new epoch already');
  // Opening would create an empty database, and a mistyped path would then seem to have worked.
  if (config.store === 'sqlite' && !existsSync(config.sqlitePath)) fail(`no SQLite database at ${config.sqlitePath} (see --sqlite-path)`);

  let store;
  try {
    store = await openStore(config, createLog(config.logFormat, config.logLevel));
  } catch (err) {
    if (!(err instanceof StoreOpenError)) throw err;
    fail(`cannot open the message store: ${err.message}; stop every server on it before starting a new epoch`);
  }

  let line;
  let code = 0;
  try {
    // A room nobody posts to (a random name) has no messages, so it reports the store's epoch.
    const old = (await store.info(`new-epoch-${nanoid(12)}`)).epoch;
    const epoch = await store.newEpoch();
    line = `new epoch ${epoch} in ${storeName(config)} (was ${old}): every client will reset at its next poll`;
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    line = `cannot start a new epoch in ${storeName(config)}: ${err.message}; run this again`;
    code = EXIT_CONFIG;
  }
  await store.close();
  if (code === 0) console.log(line);
  else console.error(line);
  process.exit(code);
}

await main();
