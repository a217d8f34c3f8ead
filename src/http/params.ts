import { parse as parseQuery } from 'node:querystring';
import { ChatError } from '../core/errors.js';

export interface PollParams {
  after?: number;
  before?: number;
  epoch?: string;
  limit: number;
  timeoutMs: number;
}

export interface PollLimits {
  /** Seconds a poll is held when the client names no timeout. */
  defaultTimeout: number;
  /** Longest hold in seconds; longer requests are clamped to it. */
  maxTimeout: number;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
export const MAX_EPOCH_LENGTH = 128;

// Leading zeros are still decimal digits; past 32 of them the value cannot be safe anyway.
const DIGITS = /^[0-9]{1,32}$/;
const SECONDS = /^(?=\.?[0-9])[0-9]{0,9}(\.[0-9]{0,9})?$/;

function bad(message: string): ChatError {
  return new ChatError('invalid_parameter', message);
}

/** The poll's own query parameters, each as node:querystring decodes it: a string, or an array when repeated. */
export interface PollQuery {
  after: unknown;
  before: unknown;
  limit: unknown;
  epoch: unknown;
  timeout: unknown;
}

type Name = keyof PollQuery;

/**
 * Reads the poll's parameters from the query string (the part after `?`)
 * into an object of one fixed shape, which the checks below read without the
 * cost of generic property lookups. Every parameter is read, however many
 * there are (the URL's length bounds them): node:querystring's default, as
 * Express's, stops at 1,000 and would silently drop a repeated `after` or
 * the `after` itself behind a thousand cache busters.
 */
export function pollQueryOf(search: string): PollQuery {
  const query = parseQuery(search, '&', '=', { maxKeys: 0 });
  return { after: query.after, before: query.before, limit: query.limit, epoch: query.epoch, timeout: query.timeout };
}

/** The query string of a request target, '' when it has none. */
export function searchOf(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? '' : url.slice(at + 1);
}

/** One value of a query parameter; absent is undefined, repeated is an error. */
function single(query: PollQuery, name: Name): string | undefined {
  const value = query[name];
  if (value === undefined || typeof value === 'string') return value;
  throw bad(`"${name}" must be given once`);
}

function integer(query: PollQuery, name: Name, min: number, max: number): number | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  const value = DIGITS.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) throw bad(`"${name}" must be a whole number from ${min} to ${max}`);
  return value;
}

/**
 * Reads the long poll's query: decimal digits only for numbers, each known
 * parameter at most once; unknown parameters (cache busters) are ignored.
 */
export function pollParams(query: PollQuery, limits: PollLimits): PollParams {
  const after = integer(query, 'after', 0, Number.MAX_SAFE_INTEGER);
  const before = integer(query, 'before', 0, Number.MAX_SAFE_INTEGER);
  if (after !== undefined && before !== undefined) throw bad('"after" and "before" cannot be used together');
  const limit = integer(query, 'limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT;

  const epoch = single(query, 'epoch');
  if (epoch !== undefined && (epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH)) {
    throw bad(`"epoch" must be 1-${MAX_EPOCH_LENGTH} characters, as received from the server`);
  }

  const rawTimeout = single(query, 'timeout');
  let timeout = limits.defaultTimeout;
  if (rawTimeout !== undefined) {
    if (!SECONDS.test(rawTimeout)) throw bad('"timeout" must be a number of seconds such as 25 or 0.5');
    timeout = Math.min(Number(rawTimeout), limits.maxTimeout);
  }
  return { after, before, epoch, limit, timeoutMs: Math.round(timeout * 1000) };
}
