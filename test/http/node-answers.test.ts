// Answers node:http would give by itself (to requests its parser refuses, to
// slow requests, to unknown expectations, to CONNECT, to a request without
// Host) and those of the page's static files are the protocol's JSON errors
// too, with the right status.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import type { TestServer } from './util.js';

let srv: TestServer;
let port: number;

beforeAll(async () => {
  // A short keep-alive makes the headers timeout (keep-alive + 1 s) short enough to wait for.
  srv = await startTestServer({ keepAliveTimeout: 1, corsOrigins: ['*'] });
  port = Number(new URL(srv.baseUrl).port);
});

afterAll(async () => {
  await srv?.close();
});

interface Exchange {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  /** The connection was closed by the server after the answer. */
  closed: boolean;
}

/** Writes `bytes` to a new connection and reads until the server closes it (or 20 s pass); parses the one answer. */
function exchange(bytes: string | Buffer): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    const timer = setTimeout(() => finish(false), 20_000);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const at = line.indexOf(':');
        headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      try {
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body), closed });
      } catch {
        reject(new Error(`not a JSON answer: ${JSON.stringify(text)}`));
      }
    };
    socket.on('end', () => finish(true));
  });
}

function expectJsonError(res: Exchange, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.connection).toBe('close');
  expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(res.body)));
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(res.closed).toBe(true);
}

describe('what the HTTP parser refuses, answered as JSON', () => {
  it('a 20 kB URL: 431 headers_too_large, with CORS for any origin', async () => {
    const res = await exchange(`GET /api/rooms/lobby/messages?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expectJsonError(res, 431, 'headers_too_large');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('a malformed request line: 400 bad_request', async () => {
    expectJsonError(await exchange('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n'), 400, 'bad_request');
  });

  it('a malformed header: 400 bad_request', async () => {
    expectJsonError(await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'), 400, 'bad_request');
  });

  it('Content-Length with Transfer-Encoding: 400 bad_request', async () => {
    const res = await exchange('POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expectJsonError(res, 400, 'bad_request');
  });

  it('headers that never end: 408 request_timeout', async () => {
    expectJsonError(await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\n'), 408, 'request_timeout');
  });

  it('an expectation other than 100-continue: 417 expectation_failed', async () => {
    const res = await exchange('POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: the-moon\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    expectJsonError(res, 417, 'expectation_failed');
  });

  it('CONNECT: 405 method_not_allowed with Allow', async () => {
    const res = await exchange('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expectJsonError(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe('GET, HEAD, POST');
  });
});

describe('what Node or Express would answer otherwise, answered as JSON', () => {
  it('an HTTP/1.1 request without Host: 400 bad_request, with CORS', async () => {
    const res = await exchange('GET /api/rooms/lobby HTTP/1.1\r\nOrigin: http://a.example\r\nConnection: close\r\n\r\n');
    expectJsonError(res, 400, 'bad_request');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('a transfer coding other than chunked: 501 not_implemented, nothing stored', async () => {
    const body = '{"author":"a","text":"x"}';
    const res = await exchange(
      `POST /api/rooms/te/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expectJsonError(res, 501, 'not_implemented');
    expect((await fetch(`${srv.baseUrl}/api/rooms/te`).then((r) => r.json())) as unknown).toMatchObject({ head: 0 });
  });

  it.each([
    ['a range past the end of a page file: 416 range_not_satisfiable', 'Range: bytes=999999-', 416, 'range_not_satisfiable'],
    ['a precondition that fails on a page file: 412 precondition_failed', 'If-Match: "nope"', 412, 'precondition_failed'],
  ])('%s, and no error logged', async (_name, header, status, code) => {
    const logged = srv.logs.length;
    const res = await exchange(`GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${header}\r\n\r\n`);
    expectJsonError(res, status, code);
    expect(srv.logs.slice(logged)).toEqual([]);
  });
});
