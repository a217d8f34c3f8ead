// POST /api/rooms/:room/messages: JSON and form bodies, clientMsgId
// idempotency, text stored exactly as sent, and the length and control rules.
import { describe, expect, it } from 'vitest';
import {
  expectError,
  metricValue,
  metricsText,
  newRoom,
  poll,
  post,
  postForm,
  roomInfo,
  send,
  waitParked,
  useServer,
} from './util.js';

const server = useServer();

const MAX_TEXT = 4000; // the default maxTextLength

describe('a stored message', () => {
  it('is answered 201 with the whole message for a JSON body', async () => {
    const room = newRoom();
    const t0 = Date.now();
    const res = await post(server.base, room, { author: 'alice', text: 'hello' });
    const t1 = Date.now();
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(['message']);
    const m = res.body.message;
    expect(Object.keys(m).sort()).toEqual(['author', 'id', 'room', 'seq', 'text', 'ts']);
    expect(m).toMatchObject({ seq: 1, room, author: 'alice', text: 'hello' });
    expect(typeof m.id).toBe('string');
    expect(m.id).not.toBe('');
    expect(Number.isInteger(m.ts)).toBe(true);
    expect(m.ts).toBeGreaterThanOrEqual(t0);
    expect(m.ts).toBeLessThanOrEqual(t1);
  });

  it('is answered 201 for a form body, decoded exactly', async () => {
    const room = newRoom();
    const text = 'a+b = c & 100%\r\nnext line';
    const res = await postForm(server.base, room, { author: 'bob smith', text });
    expect(res.status).toBe(201);
    expect(res.body.message).toMatchObject({ seq: 1, room, author: 'bob smith', text });
    expect((await poll(server.base, room)).body.messages).toEqual([res.body.message]);
  });

  it('gets consecutive seqs and unique ids, in the room it was posted to', async () => {
    const room = newRoom();
    const a = await send(server.base, room, 'one');
    const b = await send(server.base, room, 'two');
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(a.id).not.toBe(b.id);
    expect((await roomInfo(server.base, room)).head).toBe(2);
  });

  it('treats room names as case-sensitive', async () => {
    const lower = newRoom('case');
    const upper = lower.toUpperCase();
    await send(server.base, lower, 'x');
    await send(server.base, lower, 'y');
    const m = await send(server.base, upper, 'z');
    expect(m.seq).toBe(1);
    expect(m.room).toBe(upper);
    expect((await roomInfo(server.base, lower)).head).toBe(2);
    expect((await roomInfo(server.base, upper)).head).toBe(1);
  });
});

describe('clientMsgId', () => {
  it('is echoed', async () => {
    const res = await post(server.base, newRoom(), { author: 'a', text: 'x', clientMsgId: 'abc_DEF-123' });
    expect(res.status).toBe(201);
    expect(res.body.message.clientMsgId).toBe('abc_DEF-123');
  });

  it('makes a repeat a duplicate: the original, nothing stored, nobody woken', async () => {
    const room = newRoom();
    const first = await post(server.base, room, { author: 'a', text: 'original', clientMsgId: 'retry-1' });
    expect(first.status).toBe(201);
    const accepted = metricValue(await metricsText(server.base), 'chat_messages_accepted_total');

    // A poll parked at the head must not be answered by the duplicate: it times out.
    const held = poll(server.base, room, { after: 1, timeout: 0.5 });
    await waitParked(server.base, 1);

    const again = await post(server.base, room, { author: 'a', text: 'changed text', clientMsgId: 'retry-1' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ message: first.body.message, duplicate: true });

    const answer = await held;
    expect(answer.status).toBe(200);
    expect(answer.body.messages).toEqual([]);
    expect(answer.body.last).toBe(1);

    expect((await roomInfo(server.base, room)).head).toBe(1);
    expect(metricValue(await metricsText(server.base), 'chat_messages_accepted_total')).toBe(accepted);
    expect((await poll(server.base, room)).body.messages).toEqual([first.body.message]);
  });

  it('is recognised across JSON and form bodies', async () => {
    const room = newRoom();
    const first = await post(server.base, room, { author: 'a', text: 'json', clientMsgId: 'both-ways' });
    const again = await postForm(server.base, room, { author: 'a', text: 'form', clientMsgId: 'both-ways' });
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.message).toEqual(first.body.message);
  });

  it('is per room', async () => {
    const a = await post(server.base, newRoom(), { author: 'a', text: 'x', clientMsgId: 'same-id' });
    const b = await post(server.base, newRoom(), { author: 'a', text: 'x', clientMsgId: 'same-id' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.duplicate).toBeUndefined();
  });
});

describe('text and author', () => {
  const samples = [
    'emoji 😀👍🏽👨‍👩‍👧‍👦 flags 🇫🇷',
    'CJK 漢字かなカナ 한국어',
    'combining e\u0301 a\u0308 (not normalised) vs \u00e9',
    'RTL שלום עליכם مرحبا بالعالم',
    'lines\nand\ttabs\n',
    '  leading and trailing spaces  ',
    '<b>not</b> &amp; escaped "quotes" \'single\' \\ backslash',
    'zero\u200bwidth and \u2028 line separator',
  ];

  it.each(samples)('round-trips %j exactly', async (text) => {
    const room = newRoom();
    const author = 'Zoë 🦊 עדי';
    const m = await send(server.base, room, text, { author });
    expect(m.text).toBe(text);
    expect(m.author).toBe(author);
    const join = await poll(server.base, room);
    expect(join.body.messages[0]!.text).toBe(text);
    expect(join.body.messages[0]!.author).toBe(author);
  });

  it('accepts text of exactly the maximum length in code points (astral counts 1)', async () => {
    const room = newRoom();
    const text = '😀'.repeat(MAX_TEXT);
    const m = await send(server.base, room, text);
    expect(m.text).toBe(text);
    expect((await send(server.base, room, 'a'.repeat(MAX_TEXT))).text).toHaveLength(MAX_TEXT);
  });

  it('refuses text one code point over the maximum', async () => {
    const room = newRoom();
    await send(server.base, room, 'keep');
    expectError(await post(server.base, room, { author: 'a', text: '😀'.repeat(MAX_TEXT + 1) }), 400, 'invalid_text');
    expectError(await post(server.base, room, { author: 'a', text: 'a'.repeat(MAX_TEXT + 1) }), 400, 'invalid_text');
    expect((await roomInfo(server.base, room)).head).toBe(1);
  });

  it('accepts an author of 64 code points and refuses 65', async () => {
    const room = newRoom();
    expect((await send(server.base, room, 'x', { author: '🦊'.repeat(64) })).author).toBe('🦊'.repeat(64));
    expectError(await post(server.base, room, { author: '🦊'.repeat(65), text: 'x' }), 400, 'invalid_author');
  });

  it('accepts CRLF and refuses a lone CR', async () => {
    const room = newRoom();
    expect((await send(server.base, room, 'one\r\ntwo\r\n')).text).toBe('one\r\ntwo\r\n');
    expectError(await post(server.base, room, { author: 'a', text: 'one\rtwo' }), 400, 'invalid_text');
    expectError(await post(server.base, room, { author: 'a', text: 'trailing\r' }), 400, 'invalid_text');
    expect((await roomInfo(server.base, room)).head).toBe(1);
  });
});
