// Command-line parsing for `chat`: turns argv and the environment into one
// plain options object, so that the commands never read process.argv or
// process.env themselves and a usage error is caught before any request.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CliError, EXIT } from './errors.js';

export interface Options {
  command: string;
  positionals: string[];
  /** Base URL without a trailing slash. */
  server: string;
  name?: string;
  token?: string;
  json: boolean;
  verbose: boolean;
  help: boolean;
  stateFile: string;
}

export const USAGE = `Usage: chat [options] <command> [arguments]

Commands:
  tail ROOM...        follow rooms (one POST /api/sync loop); Ctrl-C stops
  send ROOM TEXT      post a message
  rooms               list your private rooms and direct messages

Options:
  --server URL        the chat server (default $CHAT_SERVER or http://localhost:3000)
  --name NAME         sign in as a guest named NAME (the session is saved)
  --token TOKEN       use this token (default $CHAT_TOKEN)
  --state FILE        state file (default $XDG_STATE_HOME/chat-cli/state.json
                      or ~/.local/state/chat-cli/state.json)
  --json              one JSON object per line on stdout
  --verbose           say more on stderr (retries, shortened holds)
  --help              this text

Without --token or --name the session saved in the state file is used.
HTTP_PROXY, HTTPS_PROXY and NO_PROXY are honoured.

Exit codes:
  0 ok
  1 the server refused the request (4xx other than auth)
  2 usage error (or not signed in)
  3 room not found / nothing left to follow
  4 authentication failed (401/403)
  5 could not reach the server or the proxy (send: after 5 tries)
`;

/** The default state file: $XDG_STATE_HOME/chat-cli/state.json, else ~/.local/state/chat-cli/state.json. */
export function defaultStateFile(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'chat-cli', 'state.json');
}

/** Parses `argv` (without node and the script); throws a usage CliError on anything unknown. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        server: { type: 'string' },
        name: { type: 'string' },
        token: { type: 'string' },
        state: { type: 'string' },
        json: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new CliError(EXIT.usage, (err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command = '', ...rest] = positionals;
  const server = (values.server ?? env.CHAT_SERVER ?? 'http://localhost:3000').replace(/\/+$/, '');
  try {
    new URL(server);
  } catch {
    throw new CliError(EXIT.usage, `--server: not a URL: ${server}`);
  }
  if (values.name !== undefined && values.token !== undefined) throw new CliError(EXIT.usage, 'give --name or --token, not both');
  return {
    command,
    positionals: rest,
    server,
    name: values.name,
    token: values.token ?? (values.name === undefined ? env.CHAT_TOKEN || undefined : undefined),
    json: values.json,
    verbose: values.verbose,
    help: values.help,
    stateFile: values.state ?? defaultStateFile(env),
  };
}
