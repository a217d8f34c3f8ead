// `chat tail ROOM...`: one POST /api/sync loop for every room followed.
// Each room's cursor is saved right after its messages are printed, so a
// restart with the same state file resumes exactly where the last run
// stopped. Network errors and 5xx are retried with backoff; a sync the path
// cuts early (an idle timeout on a proxy) is not a failure but a sign to hold
// shorter (see holds.ts).
import type { Options } from './args.js';
import { CliError, EXIT } from './errors.js';
import { Holds } from './holds.js';
import { backoffMs, NetworkError, pause, refusal, request, TransientError } from './http.js';
import { notice, printMessage, type Message } from './output.js';
import { refresh, signIn } from './session.js';
import { loadState, serverState, updateState, type Cursor } from './state.js';

interface RoomCursor {
  after?: number;
  epoch?: string;
  state?: string;
}

/** Runs `chat tail` until SIGINT/SIGTERM (exit 0) or no room is left (exit 3). */
export async function tail(options: Options): Promise<number> {
  const names = [...new Set(options.positionals)];
  if (names.length === 0) throw new CliError(EXIT.usage, 'usage: chat tail ROOM...');
  let auth = await signIn(options);
  const stored = loadState(options.stateFile);
  const saved = serverState(stored, options.server).cursors;
  const rooms = new Map<string, RoomCursor>(names.map((room) => [room, { ...saved[room] }]));
  // Written at once so that the client id is the same on every run.
  updateState(options.stateFile, (state) => void (state.client = stored.client));

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const verbose = (text: string): void => void (options.verbose && notice(text));
  const holds = new Holds(verbose);
  let seq = Date.now();
  let failures = 0;
  let refreshed = false;
  try {
    while (!stop.signal.aborted) {
      const timeout = holds.current();
      const started = Date.now();
      let answer;
      try {
        answer = await request(options.server, 'POST', '/api/sync', {
          token: auth.token,
          signal: stop.signal,
          body: { rooms: Object.fromEntries(rooms), timeout, client: stored.client, seq: ++seq },
        });
      } catch (err) {
        if (stop.signal.aborted) break;
        if (!(err instanceof NetworkError || err instanceof TransientError)) throw err;
        const elapsed = (Date.now() - started) / 1000;
        const cutStatus = err instanceof NetworkError || err.status === 502 || err.status === 504;
        if (cutStatus && elapsed >= 3) {
          holds.cut(elapsed);
          continue;
        }
        verbose(`sync failed (${err.message}); retrying`);
        await pause(backoffMs(failures++, err instanceof TransientError ? err.retryAfterMs : undefined), stop.signal);
        continue;
      }
      if (answer.status === 401 && answer.body?.error?.code === 'invalid_token') {
        // One refresh; a fresh token refused again is an auth failure, not a loop.
        if (refreshed) throw new CliError(EXIT.auth, 'the refreshed token was refused too (invalid_token)');
        auth = await refresh(options, auth, 'the token was refused (invalid_token)');
        refreshed = true;
        continue;
      }
      if (answer.status !== 200) throw refusal(answer);
      failures = 0;
      refreshed = false;
      holds.answered((Date.now() - started) / 1000, Object.keys(answer.body.rooms ?? {}).length === 0);
      if (answer.body.superseded) {
        throw new CliError(EXIT.refused, 'another tail using the same state file took over this one');
      }
      // An entry with `more: true` needs no special case: the loop syncs again at once.
      for (const [room, entry] of Object.entries<any>(answer.body.rooms ?? {})) {
        const cursor = rooms.get(room);
        if (!cursor) continue;
        if (entry.error) {
          notice(`[${room}] ${entry.error.code}: ${entry.error.message ?? ''} — no longer following it`.replace(':  —', ' —'));
          rooms.delete(room);
          continue;
        }
        if (entry.reset) notice(`[${room}] the room was reset (a new epoch or a cursor beyond its head); showing it from here`);
        else if (entry.gap) notice(`[${room}] some messages were missed: they are no longer kept`);
        for (const message of entry.messages as Message[]) printMessage(options, room, message);
        cursor.after = entry.last;
        cursor.epoch = entry.epoch;
        if (typeof entry.state === 'string') cursor.state = entry.state;
        saveCursor(options, room, { after: entry.last, epoch: entry.epoch });
      }
      if (rooms.size === 0) throw new CliError(EXIT.notFound, 'no room left to follow');
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return EXIT.ok;
}

function saveCursor(options: Options, room: string, cursor: Cursor): void {
  updateState(options.stateFile, (state) => {
    serverState(state, options.server).cursors[room] = cursor;
  });
}
