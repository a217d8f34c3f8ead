// A stream that is dropped again and again keeps its promise: 1,000 messages
// posted over 3 rooms while the reader disconnects 20 times at random moments
// (in the middle of events too) and comes back with the last event id (the
// header, or lastEventId= as polyfills send it), and the server ends each
// stream after 1 s on its own besides: every message arrives once, in order.
import { describe, expect, it } from 'vitest';
import { openStream, type SseStream } from '../helpers/sse.js';
import { newRoom, post, useServer, type Message } from './util.js';

const server = useServer({ streamMaxAge: 1, retention: 1000 });

const MESSAGES = 1000;
const RECONNECTS = 20;

interface Entry {
  room: string;
  messages: Message[];
  last: number;
  reset?: true;
  gap?: true;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a stream resumed with Last-Event-ID', () => {
  it(`delivers ${MESSAGES} messages over 3 rooms exactly once and in order across ${RECONNECTS} random reconnects`, async () => {
    const rooms = [newRoom('resume-a'), newRoom('resume-b'), newRoom('resume-c')];
    const received = new Map<string, Message[]>(rooms.map((room) => [room, []]));
    const flags: string[] = [];

    // Posts in small bursts with pauses, so that reconnects fall before, between and during batches.
    const posting = (async () => {
      for (let i = 0; i < MESSAGES; i += 5) {
        await Promise.all(
          [0, 1, 2, 3, 4].map(async (k) => {
            const room = rooms[(i + k) % 3]!;
            const res = await post(server.base, room, { author: 'poster', text: `m${i + k}` });
            expect(res.status).toBe(201);
          }),
        );
        if (i % 25 === 0) await sleep(Math.random() * 300);
      }
    })();

    let lastEventId = '';
    let stream: SseStream | undefined;
    let read = 0;
    let connections = 0;
    let dropped = 0;
    const take = (): void => {
      for (; read < stream!.events.length; read++) {
        const { event, data } = stream!.events[read]!;
        if (event !== 'room') continue;
        const entry = JSON.parse(data) as Entry;
        if (entry.reset || entry.gap) flags.push(`${entry.room}: ${entry.reset ? 'reset' : 'gap'}`);
        received.get(entry.room)!.push(...entry.messages);
      }
    };
    const connect = async (): Promise<void> => {
      read = 0;
      connections++;
      // Half the time as a polyfill would: in the query, where no header can be set.
      const viaQuery = lastEventId !== '' && connections % 2 === 0;
      const query = viaQuery ? `&lastEventId=${encodeURIComponent(lastEventId)}` : '';
      stream = await openStream(server.base, `/api/stream?rooms=${rooms.join(',')}${query}`, lastEventId && !viaQuery ? { 'Last-Event-ID': lastEventId } : {});
      expect(stream.status, stream.text).toBe(200);
    };
    const total = (): number => [...received.values()].reduce((n, list) => n + list.length, 0);

    await connect();
    const dropsAt = Array.from({ length: RECONNECTS }, () => Math.random()).sort();
    let posted = false;
    void posting.then(() => (posted = true));
    const started = performance.now();
    while (!posted || total() < MESSAGES) {
      await Promise.race([stream!.next(() => true, read, 200).catch(() => undefined), stream!.ended]);
      take();
      lastEventId = stream!.lastEventId || lastEventId;
      const due = dropped < RECONNECTS && (posted || total() >= dropsAt[dropped]! * MESSAGES);
      let over = false;
      await Promise.race([stream!.ended.then(() => (over = true)), sleep(0)]);
      if (due) {
        // Cut at once, maybe in the middle of an event that has not fully arrived.
        stream!.close();
        dropped++;
        await connect();
      } else if (over) {
        await connect();
      }
      if (performance.now() - started > 60_000) break;
    }
    await posting;

    expect(dropped).toBe(RECONNECTS);
    expect(flags).toEqual([]);
    for (const room of rooms) {
      const seqs = received.get(room)!.map((m) => m.seq);
      const expected = Array.from({ length: seqs.length }, (_, i) => i + 1);
      expect(seqs, `${room}: every seq once, in order`).toEqual(expected);
    }
    expect(total()).toBe(MESSAGES);
    const texts = new Set([...received.values()].flat().map((m) => m.text));
    expect(texts.size).toBe(MESSAGES);
    console.log(`stream resume: ${MESSAGES} messages over 3 rooms, ${connections} connections (${dropped} dropped by the client at random, ${connections - 1 - dropped} ended by the server after 1 s), ${total()} received, 0 repeated, 0 lost`);
    stream!.close();
  }, 90_000);
});
