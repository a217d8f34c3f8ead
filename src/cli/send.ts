// `chat send ROOM TEXT`: one message, posted with a random clientMsgId that
// every retry reuses, so a retry after a lost answer returns the stored
// message instead of posting it twice.
import { randomUUID } from 'node:crypto';
import type { Options } from './args.js';
import { CliError, EXIT } from './errors.js';
import { backoffMs, NetworkError, pause, refusal, request, TransientError } from './http.js';
import { printMessage } from './output.js';
import { refresh, signIn } from './session.js';

const ATTEMPTS = 5;

/** Runs `chat send`; resolves with the exit code. */
export async function send(options: Options): Promise<number> {
  const [room, ...words] = options.positionals;
  if (!room || words.length === 0) throw new CliError(EXIT.usage, 'usage: chat send ROOM TEXT');
  const text = words.join(' ');
  let auth = await signIn(options);
  const clientMsgId = randomUUID();
  let refreshed = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await request(options.server, 'POST', `/api/rooms/${encodeURIComponent(room)}/messages`, {
        token: auth.token,
        body: { text, clientMsgId },
      });
      if (answer.status === 401 && answer.body?.error?.code === 'invalid_token' && !refreshed) {
        auth = await refresh(options, auth, 'the token was refused (invalid_token)');
        refreshed = true;
        attempt--;
        continue;
      }
      if (answer.status !== 201 && answer.status !== 200) throw refusal(answer);
      printMessage(options, room, answer.body.message, true);
      return EXIT.ok;
    } catch (err) {
      if (!(err instanceof NetworkError || err instanceof TransientError)) throw err;
      if (attempt + 1 >= ATTEMPTS) {
        throw new CliError(EXIT.unreachable, `could not reach ${options.server} after ${ATTEMPTS} tries (${err.message})`);
      }
      if (options.verbose) process.stderr.write(`chat: ${err.message}; retrying\n`);
      await pause(backoffMs(attempt, err instanceof TransientError ? err.retryAfterMs : undefined));
    }
  }
}
