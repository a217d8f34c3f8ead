// The state file: the guest session and each room's cursor, per server URL,
// plus this installation's sync client id. It is what lets `chat tail` resume
// after a restart without repeating or skipping a message. Every save re-reads
// the file and writes a temporary file that is renamed over it, so a crash
// never leaves half a file and a `chat send` running beside a `chat tail`
// does not undo the other's changes.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Cursor {
  after: number;
  epoch: string;
}

export interface Session {
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
  name?: string;
}

export interface ServerState {
  session?: Session;
  cursors: Record<string, Cursor>;
}

export interface State {
  /** The sync `client` id of this state file. */
  client: string;
  servers: Record<string, ServerState>;
}

/** Reads the state file; a missing file is an empty state with a fresh client id. */
export function loadState(file: string): State {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the state file ${file}: ${(err as Error).message}`);
  }
  const state = (raw && typeof raw === 'object' ? raw : {}) as Partial<State>;
  return {
    client: typeof state.client === 'string' ? state.client : `cli_${randomBytes(9).toString('base64url')}`,
    servers: state.servers && typeof state.servers === 'object' ? state.servers : {},
  };
}

/** The part of `state` for `server`, created when absent. */
export function serverState(state: State, server: string): ServerState {
  const entry = (state.servers[server] ??= { cursors: {} });
  entry.cursors ??= {};
  return entry;
}

/**
 * Re-reads the file, applies `change` to it and writes it atomically
 * (temporary file, then rename). Returns the state written.
 */
export function updateState(file: string, change: (state: State) => void): State {
  const state = loadState(file);
  change(state);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  renameSync(temp, file);
  return state;
}
