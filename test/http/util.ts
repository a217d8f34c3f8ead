// Shared helpers of the HTTP tests: small request wrappers, a bounded condition wait and the parked-polls gauge.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Config } from '../../src/config.js';
import type { PollBody } from '../../src/core/answer.js';
import type { Message } from '../../src/core/types.js';
import { startTestServer } from '../helpers/server.js';

export type { Message, PollBody };

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

export interface PostBody {
  message: Message;
  duplicate?: true;
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export interface RoomInfo {
  room: string;
  epoch: string;
  head: number;
  oldest: number;
}

export interface Res<T> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else the text. */
  body: T;
  text: string;
}

/**
 * One server for a file's tests: started before them, closed after them.
 * Read `base` inside tests, once it is set.
 */
export function useServer(overrides: Partial<Config> = {}): { srv: TestServer; base: string } {
  const server = {} as { srv: TestServer; base: string };
  beforeAll(async () => {
    server.srv = await startTestServer(overrides);
    server.base = server.srv.baseUrl;
  });
  afterAll(async () => {
    await server.srv?.close();
  });
  return server;
}

let roomCounter = 0;
/** A room name no other test uses. */
export const newRoom = (prefix = 'room'): string => `${prefix}-${process.pid}-${++roomCounter}`;

/**
 * Waits until `cond` holds, checking every few milliseconds; fails after
 * `timeoutMs` (a bound against hangs, not a speed check).
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Any request, with a bound so that a wrongly held request fails the test instead of hanging it. */
export async function request<T = unknown>(baseUrl: string, path: string, init: RequestInit = {}): Promise<Res<T>> {
  const res = await fetch(baseUrl + path, { signal: AbortSignal.timeout(20_000), ...init });
  const text = await res.text();
  const isJson = text !== '' && (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, headers: res.headers, text, body: (isJson ? JSON.parse(text) : text) as T };
}

export type Query = Record<string, string | number | undefined>;

export function queryString(query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** GET /api/rooms/:room/messages with the given query (no `after`: a join). */
export function poll(baseUrl: string, room: string, query: Query = {}, init: RequestInit = {}): Promise<Res<PollBody>> {
  return request<PollBody>(baseUrl, `/api/rooms/${encodeURIComponent(room)}/messages${queryString(query)}`, init);
}

/** POST a JSON body to a room. */
export function post(baseUrl: string, room: string, body: unknown): Promise<Res<PostBody>> {
  return request<PostBody>(baseUrl, `/api/rooms/${encodeURIComponent(room)}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** POST a form body to a room. */
export function postForm(baseUrl: string, room: string, fields: Record<string, string>): Promise<Res<PostBody>> {
  return request<PostBody>(baseUrl, `/api/rooms/${encodeURIComponent(room)}/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
}

/** Posts `text` and returns the stored message; fails unless the answer is 201. */
export async function send(baseUrl: string, room: string, text: string, extra: Record<string, unknown> = {}): Promise<Message> {
  const res = await post(baseUrl, room, { author: 'tester', text, ...extra });
  expect(res.status, res.text).toBe(201);
  return res.body.message;
}

/** Posts `n` messages "m1".."mn" one after the other. */
export async function sendMany(baseUrl: string, room: string, n: number): Promise<Message[]> {
  const out: Message[] = [];
  for (let i = 1; i <= n; i++) out.push(await send(baseUrl, room, `m${i}`));
  return out;
}

export async function roomInfo(baseUrl: string, room: string): Promise<RoomInfo> {
  const res = await request<RoomInfo>(baseUrl, `/api/rooms/${encodeURIComponent(room)}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

export async function metricsText(baseUrl: string): Promise<string> {
  const res = await request<string>(baseUrl, '/metrics');
  expect(res.status).toBe(200);
  return res.text;
}

/** One sample of the Prometheus text, e.g. metricValue(text, 'chat_poll_answers_total', 'outcome="data"'). */
export function metricValue(text: string, name: string, labels?: string): number | undefined {
  const key = labels === undefined ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(key));
  return line === undefined ? undefined : Number(line.slice(key.length));
}

/** The `chat_parked_polls` gauge. */
export async function parkedPolls(baseUrl: string): Promise<number> {
  const value = metricValue(await metricsText(baseUrl), 'chat_parked_polls');
  if (value === undefined) throw new Error('chat_parked_polls missing from /metrics');
  return value;
}

export function waitParked(baseUrl: string, n: number): Promise<void> {
  return waitFor(async () => (await parkedPolls(baseUrl)) === n, `${n} parked poll(s)`);
}

/** A promise with a flag saying whether it has settled yet. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { promise, settled: () => settled };
}

/** The protocol's rule for answers that nothing may cache. */
export function expectNoCache(res: { headers: Headers }): void {
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('pragma')).toBe('no-cache');
  expect(res.headers.get('etag')).toBeNull();
  expect(res.headers.get('last-modified')).toBeNull();
}

/** Status, exact `{error:{code,message}}` shape and no-cache headers of an error answer. */
export function expectError(res: Res<unknown>, status: number, code?: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  const body = res.body as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toMatch(/^[a-z]+(_[a-z]+)*$/);
  if (code !== undefined) expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.trim()).not.toBe('');
  expectNoCache(res);
}

/** A positive whole number of seconds, as `Retry-After` must be. */
export function expectRetryAfter(value: string | null | undefined): void {
  expect(value).toMatch(/^[1-9][0-9]*$/);
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A request over node:http on a connection of its own (or of `agent`), for
 * what fetch hides: aborting the socket, Connection headers, slow bodies.
 * `response` is marked handled, so a request destroyed on purpose does not
 * leave an unhandled rejection; awaiting it still rejects.
 */
export function rawRequest(
  baseUrl: string,
  path: string,
  options: http.RequestOptions = {},
): { req: http.ClientRequest; response: Promise<RawResponse> } {
  const req = http.request(baseUrl + path, { agent: false, ...options });
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
  });
  response.catch(() => {});
  return { req, response };
}

/** A raw GET, sent at once. */
export function rawGet(baseUrl: string, path: string, options: http.RequestOptions = {}): { req: http.ClientRequest; response: Promise<RawResponse> } {
  const r = rawRequest(baseUrl, path, options);
  r.req.end();
  return r;
}

/** The whole numbers from `from` to `to`. */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The protocol's client loop: join, then poll from the cursor until `until` is seen. */
export async function follow(baseUrl: string, room: string, until: number, joined?: { epoch: string; last: number }): Promise<Message[]> {
  let cursor = joined;
  if (!cursor) {
    const join = await poll(baseUrl, room);
    expect(join.status).toBe(200);
    cursor = { epoch: join.body.epoch, last: join.body.last };
  }
  const seen: Message[] = [];
  while (cursor.last < until) {
    const r = await poll(baseUrl, room, { after: cursor.last, epoch: cursor.epoch, timeout: 5 });
    expect(r.status, r.text).toBe(200);
    expect(r.body.reset).toBeUndefined();
    expect(r.body.gap).toBeUndefined();
    seen.push(...r.body.messages);
    cursor = { epoch: r.body.epoch, last: r.body.last };
  }
  return seen;
}

export interface SessionBody {
  token: string;
  user: { id: string; name: string };
  expiresAt: number;
}

/** A guest session for `name`; fails unless the answer is 201. */
export async function signIn(baseUrl: string, name: string): Promise<SessionBody> {
  const res = await request<SessionBody>(baseUrl, '/api/sessions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** The header that carries a token. */
export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

/** POST a JSON body to `path` with a token (none when undefined). */
export function postAs<T = unknown>(baseUrl: string, path: string, token: string | undefined, body?: unknown): Promise<Res<T>> {
  const headers: Record<string, string> = token ? bearer(token) : {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return request<T>(baseUrl, path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** GET `path` with a token (none when undefined). */
export function getAs<T = unknown>(baseUrl: string, path: string, token: string | undefined): Promise<Res<T>> {
  return request<T>(baseUrl, path, { headers: token ? bearer(token) : {} });
}
