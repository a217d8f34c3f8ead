// All HTTP of the CLI: undici's fetch with an EnvHttpProxyAgent (so
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY apply), JSON in and out, and the
// classification of answers the commands act on: the server's JSON error,
// a proxy that refused or answered with its own page, a network failure.
// Also the retry waits (backoff with jitter, Retry-After).
import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { EnvHttpProxyAgent, fetch } from 'undici';
import { CliError, EXIT } from './errors.js';

// proxyTunnel false: plain http:// requests go to an HTTP proxy in forward
// form (`POST http://host/path`), as curl sends them, rather than through a
// CONNECT tunnel, which many proxies allow only to port 443. https:// targets
// are always tunnelled.
const dispatcher = new EnvHttpProxyAgent({ proxyTunnel: false });

export interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON body (null for an empty body). */
  body: any;
}

/** The request could not be sent or its answer not read (connection refused, reset, cut). */
export class NetworkError extends Error {}

/** A 5xx (or a proxy's 502/504 page) worth retrying; `retryAfterMs` from Retry-After. */
export class TransientError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** One request; resolves with a JSON answer of any status, throws NetworkError, TransientError or CliError. */
export async function request(
  server: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; signal?: AbortSignal } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let res;
  let text: string;
  try {
    res = await fetch(server + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
      dispatcher,
    });
    text = await res.text();
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    // undici's own words for a proxy's refusal: a CONNECT (for an https://
    // server) answered other than 200, or a forwarded request answered 407.
    const tunnel = /Proxy response \((\d+)\)|Proxy Authentication Required \((407)\)/.exec(cause?.message ?? '');
    if (tunnel) {
      const status = Number(tunnel[1] ?? tunnel[2]);
      const variable = server.startsWith('https:') ? 'HTTPS_PROXY' : 'HTTP_PROXY';
      throw new CliError(EXIT.unreachable, `the proxy refused the request (${status} ${STATUS_CODES[status] ?? ''}); check ${variable}${status === 407 ? ' credentials' : ' and NO_PROXY'}`);
    }
    throw new NetworkError(cause?.message || cause?.code || (err as Error).message);
  }
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  const isJson = (res.headers.get('content-type') ?? '').includes('json');
  let body: any = null;
  if (isJson && text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  const label = `${res.status} ${res.statusText || STATUS_CODES[res.status] || ''}`.trim();
  if (res.status === 407) {
    throw new CliError(EXIT.unreachable, `the proxy refused the request (${label}); check HTTP_PROXY credentials`);
  }
  if (body === undefined || (!isJson && text !== '') || (!isJson && res.status >= 300)) {
    // Not our server's JSON: a proxy, a load balancer or something else answered.
    if (res.status >= 500) throw new TransientError(res.status, `${label} (not from the chat server)`, retryAfterMs);
    if (res.status === 403) throw new CliError(EXIT.unreachable, `the proxy refused the request (${label}); check HTTP_PROXY and NO_PROXY`);
    throw new CliError(EXIT.unreachable, `unexpected non-JSON answer (${label}) from the server or a proxy on the way`);
  }
  if (res.status >= 500 || res.status === 429) {
    throw new TransientError(res.status, errorText({ status: res.status, headers: res.headers, body }), retryAfterMs);
  }
  return { status: res.status, headers: res.headers, body };
}

/** "code: message" of a server's JSON error answer. */
export function errorText(answer: Answer): string {
  const error = answer.body?.error;
  return error ? `${error.code}: ${error.message}` : `HTTP ${answer.status}`;
}

/** Turns a non-2xx JSON answer into the CliError with its exit code. */
export function refusal(answer: Answer): CliError {
  const code = answer.status === 401 || answer.status === 403 ? EXIT.auth : answer.status === 404 ? EXIT.notFound : EXIT.refused;
  return new CliError(code, errorText(answer));
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The base of the retry backoff: CHAT_CLI_RETRY_BASE_MS (default 500 ms). */
export function retryBaseMs(): number {
  const value = Number(process.env.CHAT_CLI_RETRY_BASE_MS);
  return Number.isFinite(value) && value >= 0 ? value : 500;
}

/** How long to wait before retry number `attempt` (0-based): exponential, capped at 30 s, with jitter; Retry-After wins. */
export function backoffMs(attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const ceiling = Math.min(30_000, retryBaseMs() * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Sleeps `ms`, ending early (without throwing) when `signal` aborts. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}
