// Who the CLI speaks as: a --token, a new guest session for --name, or the
// guest session saved in the state file; and the refresh of a guest token
// the server calls invalid (POST /api/sessions/refresh). Kept apart from the
// commands so that each of them gets a token the same way.
import type { Options } from './args.js';
import { CliError, EXIT } from './errors.js';
import { refusal, request } from './http.js';
import { loadState, serverState, updateState, type Session } from './state.js';

export interface Auth {
  token: string;
  /** True for a guest session this CLI may refresh and save. */
  guest: boolean;
}

function save(options: Options, session: Session): void {
  updateState(options.stateFile, (state) => {
    serverState(state, options.server).session = session;
  });
}

/** The token to use; signs in as a guest for --name. Throws a usage error when there is none. */
export async function signIn(options: Options): Promise<Auth> {
  if (options.token) return { token: options.token, guest: false };
  if (options.name !== undefined) {
    const answer = await request(options.server, 'POST', '/api/sessions', { body: { name: options.name } });
    if (answer.status !== 201) throw refusal(answer);
    save(options, { token: answer.body.token, expiresAt: answer.body.expiresAt, name: options.name });
    return { token: answer.body.token, guest: true };
  }
  const saved = serverState(loadState(options.stateFile), options.server).session;
  if (saved && saved.expiresAt > Date.now()) return { token: saved.token, guest: true };
  throw new CliError(
    EXIT.usage,
    `not signed in to ${options.server}${saved ? ' (the saved session has expired)' : ''}: give --name NAME for a guest session, or --token TOKEN (or CHAT_TOKEN)`,
  );
}

/**
 * After a 401 invalid_token: a new token for a guest session (saved), or an
 * auth failure (exit 4) for a given token or a refresh that fails.
 */
export async function refresh(options: Options, auth: Auth, why: string): Promise<Auth> {
  if (!auth.guest) throw new CliError(EXIT.auth, why);
  const answer = await request(options.server, 'POST', '/api/sessions/refresh', { token: auth.token });
  if (answer.status !== 201) throw new CliError(EXIT.auth, `${why}; the refresh failed too`);
  save(options, { token: answer.body.token, expiresAt: answer.body.expiresAt, name: answer.body.user?.name });
  return { token: answer.body.token, guest: true };
}
