#!/usr/bin/env node
// Entry point of the `chat` command: parses the options, runs one command
// and turns its outcome into an exit code. The only place that prints an
// error and exits, so every command just returns or throws a CliError.
import { parseOptions, USAGE } from './args.js';
import { CliError, EXIT } from './errors.js';
import { NetworkError, TransientError } from './http.js';
import { rooms } from './rooms.js';
import { send } from './send.js';
import { tail } from './tail.js';

const COMMANDS: Record<string, (options: ReturnType<typeof parseOptions>) => Promise<number>> = { tail, send, rooms };

/** Runs the CLI for `argv`; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const options = parseOptions(argv, process.env);
    if (options.help) {
      process.stdout.write(USAGE);
      return EXIT.ok;
    }
    const command = COMMANDS[options.command];
    if (!command) {
      throw new CliError(EXIT.usage, options.command ? `unknown command "${options.command}" (try --help)` : 'no command given (try --help)');
    }
    return await command(options);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`chat: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof NetworkError || err instanceof TransientError) {
      process.stderr.write(`chat: could not reach ${describeServer(argv)} (${err.message})\n`);
      return EXIT.unreachable;
    }
    process.stderr.write(`chat: ${(err as Error).message}\n`);
    return EXIT.refused;
  }
}

function describeServer(argv: string[]): string {
  try {
    return parseOptions(argv, process.env).server;
  } catch {
    return 'the server';
  }
}

process.exitCode = await main(process.argv.slice(2));
