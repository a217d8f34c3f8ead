// `chat rooms`: the caller's private rooms and direct messages, from
// GET /api/rooms (which needs a token).
import type { Options } from './args.js';
import { EXIT } from './errors.js';
import { refusal, request } from './http.js';
import { refresh, signIn } from './session.js';

interface RoomEntry {
  room: string;
  title?: string | null;
  memberCount: number;
}

/** Runs `chat rooms`; resolves with the exit code. */
export async function rooms(options: Options): Promise<number> {
  let auth = await signIn(options);
  let answer = await request(options.server, 'GET', '/api/rooms', { token: auth.token });
  if (answer.status === 401 && answer.body?.error?.code === 'invalid_token') {
    auth = await refresh(options, auth, 'the token was refused (invalid_token)');
    answer = await request(options.server, 'GET', '/api/rooms', { token: auth.token });
  }
  if (answer.status !== 200) throw refusal(answer);
  for (const entry of answer.body.rooms as RoomEntry[]) {
    if (options.json) process.stdout.write(JSON.stringify(entry) + '\n');
    else process.stdout.write(`${entry.room}\t${entry.title ?? ''}\t${entry.memberCount} member${entry.memberCount === 1 ? '' : 's'}\n`);
  }
  return EXIT.ok;
}
