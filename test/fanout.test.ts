import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './helpers/server.js';

const POLLS = 5000;

/** Parks `count` raw polls on `room`, each on its own connection. */
function parkPolls(baseUrl: string, room: string, count: number) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const requests: http.ClientRequest[] = [];
  const bodies = Array.from({ length: count }, () => {
    return new Promise<string>((resolve, reject) => {
      const req = http.get(`${baseUrl}/api/rooms/${room}/messages?after=0&timeout=60`, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.on('error', reject);
      requests.push(req);
    });
  });
  return { requests, bodies, agent };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(condition()).toBe(true);
}

describe(`${POLLS} polls parked on one room`, () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
  });
  afterAll(() => srv.close());

  it('are all answered by one POST, with the same bytes', async () => {
    const { bodies, agent } = parkPolls(srv.baseUrl, 'crowd', POLLS);
    await until(() => srv.chat.parked === POLLS);

    const res = await fetch(`${srv.baseUrl}/api/rooms/crowd/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ author: 'announcer', text: 'hello, everyone' }),
    });
    expect(res.status).toBe(201);

    const answers = await Promise.all(bodies);
    expect(new Set(answers).size).toBe(1);
    const answer = JSON.parse(answers[0]!);
    expect(answer).toMatchObject({ room: 'crowd', last: 1, more: false });
    expect(answer.messages.map((m: { text: string }) => m.text)).toEqual(['hello, everyone']);
    expect(srv.chat.parked).toBe(0);
    agent.destroy();
  });

  it('leave nothing parked when their clients abort', async () => {
    const { requests, bodies, agent } = parkPolls(srv.baseUrl, 'leavers', POLLS);
    await until(() => srv.chat.parked === POLLS);
    for (const req of requests) req.destroy();
    await Promise.allSettled(bodies);
    await until(() => srv.chat.parked === 0);
    const metrics = await (await fetch(`${srv.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^chat_parked_polls 0$/m);
    agent.destroy();
  });
});
