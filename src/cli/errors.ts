// Exit codes and the one error type the CLI throws: every failure the user
// can meet ends as a CliError carrying its exit code and a one-line message,
// so main.ts is the only place that prints errors and exits.

/** Exit codes, as documented in --help and the README. */
export const EXIT = {
  ok: 0,
  refused: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  unreachable: 5,
} as const;

/** A failure with the exit code it maps to; `message` is printed after "chat: ". */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}
