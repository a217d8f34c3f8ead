// How a client of the sync scenarios signs in, follows several rooms with one
// held request, and how a publisher posts to one room, per protocol: this
// project's POST /api/sync (also spoken by the bare reference) and Faye's
// /meta/connect with one channel per room.
import type { Connection } from './http-client.js';
import { expectStatus } from './measure.js';

/** One room a client follows, with its cursor and what it has seen of the room's numbered messages. */
export interface Followed {
  room: string;
  after?: number;
  epoch?: string;
  /** The room's presence state last received; sent back so that only changes are reported. */
  state?: string;
  /** The next k this client should see in the room. */
  next: number;
  /** Ks skipped over, in case they still come (out of order). */
  missing: Set<number>;
}

/** A client of the sync scenarios: its rooms and who it is to the server. */
export interface SyncClient {
  conn: Connection;
  rooms: Followed[];
  /** Authorization header line (CRLF-terminated) when signed in, else ''. */
  auth: string;
  /** The sync protocol's `client` id; Faye's clientId. */
  id: string;
  /** The sync protocol's `seq`, one more for each sync. */
  seq: number;
  /** The room's `onlineCount` in the last answer that carried the lists (presence scenario: one room). */
  onlineCount?: number;
}

/** What one answer brought. */
export interface SyncAnswer {
  /** The k of every message, by index in SyncClient.rooms. */
  ks: number[][];
  /** Rooms reported with presence lists and no message. */
  presenceOnly: number;
  /** No room reported: the hold ran out. */
  empty: boolean;
}

export interface SyncProtocol {
  /** Signs the client in (chat: a guest session of its own, as the page does) and subscribes it (Faye); a publisher has no rooms. */
  join(client: SyncClient): Promise<void>;
  /** One held request for every room of the client; moves its cursors on. `hold` in seconds. */
  sync(client: SyncClient, hold: number): Promise<SyncAnswer>;
  /** Posts message number `k` of `room`; `publisher` was made by join() on a connection of its own. */
  publish(publisher: SyncClient, room: string, k: number): Promise<void>;
}

interface RoomEntry {
  epoch?: string;
  messages?: { text: string }[];
  last?: number;
  reset?: true;
  state?: string;
  onlineCount?: number;
  error?: { code: string };
}

/** This project's sync, spoken by the chat server and the bare-sync reference alike. */
export const chatSync: SyncProtocol = {
  async join(client) {
    // A publisher follows no room and posts anonymously.
    if (client.rooms.length === 0) return;
    const session = await client.conn.request('POST', '/api/sessions', `{"name":"u${client.id}"}`);
    expectStatus(session, 201);
    client.auth = `Authorization: Bearer ${(JSON.parse(session.body) as { token: string }).token}\r\n`;
  },
  async sync(client, hold) {
    const cursors = client.rooms.map(({ room, after, epoch, state }) =>
      `${JSON.stringify(room)}:${JSON.stringify(after === undefined ? {} : { after, epoch, state })}`,
    );
    const body = `{"rooms":{${cursors.join(',')}},"timeout":${hold},"limit":1000,"client":"${client.id}","seq":${++client.seq}}`;
    const res = await client.conn.request('POST', '/api/sync', body, client.auth);
    expectStatus(res, 200);
    const answer = JSON.parse(res.body) as { rooms: Record<string, RoomEntry>; superseded?: true };
    if (answer.superseded) throw new Error('superseded');
    const result: SyncAnswer = { ks: client.rooms.map(() => []), presenceOnly: 0, empty: true };
    client.rooms.forEach((followed, i) => {
      const entry = answer.rooms[followed.room];
      if (!entry) return;
      result.empty = false;
      if (entry.error) throw new Error(`${followed.room}: ${entry.error.code}`);
      if (entry.reset && followed.after !== undefined) throw new Error('unexpected reset');
      followed.after = entry.last;
      followed.epoch = entry.epoch;
      if (entry.state !== undefined) {
        followed.state = entry.state;
        client.onlineCount = entry.onlineCount;
      }
      result.ks[i] = entry.messages!.map((m) => Number(m.text));
      if (result.ks[i]!.length === 0 && entry.state !== undefined) result.presenceOnly++;
    });
    return result;
  },
  async publish(publisher, room, k) {
    expectStatus(await publisher.conn.request('POST', `/api/rooms/${room}/messages`, `{"author":"bench","text":"${k}"}`), 201);
  },
};

const FAYE = '/faye';

/** Faye: a handshake, one subscription per room, then /meta/connect held until a message or Faye's timeout. */
export const fayeSync: SyncProtocol = {
  async join(client) {
    const hs = await client.conn.request('POST', FAYE, '[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]');
    expectStatus(hs, 200);
    client.id = (JSON.parse(hs.body) as { clientId: string }[])[0]!.clientId;
    if (client.rooms.length === 0) return;
    const subscriptions = client.rooms.map(({ room }) => `{"channel":"/meta/subscribe","clientId":"${client.id}","subscription":"/${room}"}`);
    const sub = await client.conn.request('POST', FAYE, `[${subscriptions.join(',')}]`);
    expectStatus(sub, 200);
    for (const reply of JSON.parse(sub.body) as { successful: boolean }[]) if (!reply.successful) throw new Error(`subscribe failed: ${sub.body}`);
  },
  async sync(client) {
    const res = await client.conn.request('POST', FAYE, `[{"channel":"/meta/connect","clientId":"${client.id}","connectionType":"long-polling"}]`);
    expectStatus(res, 200);
    const result: SyncAnswer = { ks: client.rooms.map(() => []), presenceOnly: 0, empty: true };
    for (const item of JSON.parse(res.body) as { channel: string; successful?: boolean; data?: { k: number } }[]) {
      if (item.channel === '/meta/connect') {
        if (!item.successful) throw new Error(`connect failed: ${res.body}`);
        continue;
      }
      const i = client.rooms.findIndex(({ room }) => item.channel === `/${room}`);
      if (i < 0) throw new Error(`message on a channel not subscribed to: ${item.channel}`);
      result.ks[i]!.push(item.data!.k);
      result.empty = false;
    }
    return result;
  },
  async publish(publisher, room, k) {
    expectStatus(await publisher.conn.request('POST', FAYE, `[{"channel":"/${room}","clientId":"${publisher.id}","data":{"k":${k}}}]`), 200);
  },
};
