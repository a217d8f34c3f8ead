// What bench/run.ts hands the sync scenarios' generators, what they print
// back, and what both generators count the same way.
import type { Result } from './generator.js';
import type { Followed, SyncAnswer, SyncClient } from './sync-protocol.js';

/**
 * sync: clients each following some rooms with one held sync, publishers posting;
 * idle-sync: the same syncs held with no messages, for memory;
 * presence: one room, many signed-in clients, some arriving and leaving.
 */
export type SyncScenario = 'sync' | 'idle-sync' | 'presence';

export interface SyncJob {
  /** 'chat' for this project's server and the bare-sync reference (same protocol), 'faye' for Bayeux. */
  protocol: 'chat' | 'faye';
  host: string;
  port: number;
  serverPid: number;
  scenario: SyncScenario;
  /** Clients at the start, each on a connection of its own. */
  clients: number;
  /** Rooms in all (sync, idle-sync); presence uses one. */
  rooms: number;
  /** Rooms each client follows, spread so that every room has as many followers. */
  roomsPerClient: number;
  /** sync: closed-loop publishers, each on a connection of its own and owning every publishers-th room. */
  publishers: number;
  /** sync, presence: length of the measured window. */
  seconds: number;
  /** Seconds each sync is held when nothing comes (the sync's timeout; Faye's is set on its server). */
  hold: number;
  /** presence: clients arriving or leaving per second, in turns. */
  churn: number;
  /** presence: seconds the server keeps a user online after their last sync ended (its --online-window). */
  onlineWindow: number;
}

export interface SyncResult extends Result {
  /** presence: answers per client per second over the churn, mean over the clients present throughout. */
  answersPerClientSecond?: number;
  /** presence: the same, for the client answered most often. */
  maxAnswersPerClientSecond?: number;
  /** presence: clients whose last `onlineCount` was not the true count once the churn stopped and presence settled. */
  countWrong?: number;
  /** presence: online at the end, as the generator counts them. */
  onlineAtEnd?: number;
}

/**
 * The rooms client `i` follows: `perClient` rooms `d` apart starting at
 * `i mod rooms`, with `d` prime to `rooms` and changing every `rooms`
 * clients, so that every room has the same number of followers and the
 * followers of one room do not all follow the same others.
 */
export function roomsOf(i: number, rooms: number, perClient: number): string[] {
  const strides = Array.from({ length: rooms }, (_, d) => d).filter((d) => d > 0 && gcd(d, rooms) === 1);
  const d = strides[Math.floor(i / rooms) % strides.length] ?? 1;
  return Array.from({ length: Math.min(perClient, rooms) }, (_, j) => `r${(i + j * d) % rooms}`);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** A client with cursors not yet set (its first sync joins every room). */
export function newClient(conn: SyncClient['conn'], id: string, rooms: string[]): SyncClient {
  return { conn, rooms: rooms.map((room) => ({ room, next: 1, missing: new Set() })), auth: '', id, seq: 0 };
}

/** Lost, duplicated and out-of-order messages over every (client, room), as Tally.see counts them. */
export class Tally {
  duplicated = 0;
  outOfOrder = 0;
  /** Messages counted while `counting`. */
  delivered = 0;

  /** Checks an answer's ks against what each room's cursor should see next. */
  see(client: SyncClient, answer: SyncAnswer, counting: boolean): void {
    answer.ks.forEach((ks, i) => {
      const followed = client.rooms[i]!;
      for (const k of ks) this.one(followed, k);
      if (counting) this.delivered += ks.length;
    });
  }

  /** Never seen, or skipped and never seen later: every room must have reached `lastK(room)`. */
  static lost(clients: readonly SyncClient[], lastK: (room: string) => number): number {
    let lost = 0;
    for (const client of clients) {
      for (const f of client.rooms) lost += f.missing.size + Math.max(0, lastK(f.room) - (f.next - 1));
    }
    return lost;
  }

  private one(f: Followed, k: number): void {
    if (k === f.next) f.next++;
    else if (k > f.next) {
      for (let j = f.next; j < k; j++) f.missing.add(j);
      f.next = k + 1;
    } else if (f.missing.delete(k)) this.outOfOrder++;
    else this.duplicated++;
  }
}
