// readBody: a POST with a body it accepts costs no error object (an error's
// stack trace is a measurable share of a busy server's time).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { readBody } from '../../src/http/body.js';

const built = vi.hoisted(() => ({ count: 0 }));

vi.mock('../../src/core/errors.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/core/errors.js')>();
  class CountedChatError extends actual.ChatError {
    constructor(...args: ConstructorParameters<typeof actual.ChatError>) {
      super(...args);
      built.count++;
    }
  }
  return { ...actual, ChatError: CountedChatError };
});

function post(contentType: string, body: string): IncomingMessage {
  const req = new PassThrough();
  req.end(body);
  const headers = { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) };
  const headersDistinct = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]]));
  return Object.assign(req, { headers, headersDistinct }) as unknown as IncomingMessage;
}

const res = {} as ServerResponse;

beforeEach(() => {
  built.count = 0;
});

describe('readBody', () => {
  it('builds no error for a body it accepts', async () => {
    expect(await readBody(post('application/json', '{"text":"hi"}'), res, 1000)).toEqual({ text: 'hi' });
    expect(await readBody(post('application/x-www-form-urlencoded; charset=UTF-8', 'text=hi'), res, 1000)).toEqual({ text: 'hi' });
    expect(built.count).toBe(0);
  });

  it('refuses another type with unsupported_media_type', async () => {
    await expect(readBody(post('text/plain', 'hi'), res, 1000)).rejects.toMatchObject({ code: 'unsupported_media_type' });
    await expect(readBody(post('application/json; charset=latin1', '{}'), res, 1000)).rejects.toMatchObject({ code: 'unsupported_media_type' });
    expect(built.count).toBe(2);
  });
});
