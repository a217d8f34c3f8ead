import { pino, stdTimeFunctions } from 'pino';
import pretty from 'pino-pretty';

/**
 * Where the server reports what happens: one structured event per call,
 * `fields` (a plain object; an `err` field carries an Error with its stack)
 * and a one-line `message`. A pino logger fits, as does any object with
 * these three methods, so an application embedding the chat can pass its own.
 */
export interface Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A Log that drops everything. */
export const silentLog: Log = { info() {}, warn() {}, error() {} };

export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];
export type LogLevel = 'error' | 'warn' | 'info' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'silent'];

/**
 * The server's log on standard output: one JSON line per event (for log
 * collectors to filter), or, with `auto` in a terminal, one readable line.
 * Writes are synchronous, so that nothing is lost when the process exits.
 */
export function createLog(format: LogFormat, level: LogLevel): Log {
  const readable = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const options = { level, timestamp: stdTimeFunctions.isoTime };
  if (!readable) return pino(options);
  return pino(options, pretty({ sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}

/** Milliseconds between two lines about the same expected failure. */
const REPEAT_INTERVAL_MS = 10_000;

interface Seen {
  at: number;
  suppressed: number;
}

const seenByLog = new WeakMap<Log, Map<string, Seen>>();

/**
 * Reports an expected, repeating failure (a store that cannot take writes,
 * a failing health check) at most once every ten seconds per kind and log,
 * with how many were left out since the last line. A failure that every
 * request meets then costs the operator a line every ten seconds, not one
 * per request, and the line still names its latest cause. No stack: an
 * expected failure is not a bug. `kind` is one of a fixed few message
 * texts, which bounds what is remembered.
 */
export function warnRepeated(log: Log, kind: string, cause: unknown, now = Date.now()): void {
  let kinds = seenByLog.get(log);
  if (!kinds) seenByLog.set(log, (kinds = new Map()));
  const seen = kinds.get(kind);
  if (seen && now - seen.at < REPEAT_INTERVAL_MS) {
    seen.suppressed++;
    return;
  }
  const fields: Record<string, unknown> = { cause: cause instanceof Error ? cause.message : String(cause) };
  if (seen?.suppressed) fields.suppressed = seen.suppressed;
  kinds.set(kind, { at: now, suppressed: 0 });
  log.warn(fields, kind);
}
