import { LRUCache } from 'lru-cache';
import type { Poll, WakeProgress } from './poll-hub.js';
import type { DeliverSync, SyncResult } from './sync.js';

/** Who holds a sync: a browser's or program's id and the number of its sync (protocol "One poll for many rooms"). */
export interface SyncClient {
  /** `^[A-Za-z0-9_-]{1,64}$`, chosen by the client. */
  id: string;
  /** Grows with each of the client's syncs. */
  seq: number;
}

/**
 * Clients remembered, with the newest seq each has sent, so that a sync
 * arriving late (below that seq) is refused. Bounded: a client forgotten
 * past it only loses that check for a late sync, which the next sync fixes.
 */
const CLIENTS_KEPT = 100_000;

interface Known {
  seq: number;
  /** Ends the client's held sync as superseded; undefined when none is held. */
  supersede: (() => void) | undefined;
}

/**
 * The supersede rule of syncs: one browser (client id, with the same user)
 * holds at most one sync, however many tabs ask.
 */
export class SyncClients {
  private readonly known = new LRUCache<string, Known>({ max: CLIENTS_KEPT });

  /**
   * Starts a sync through `start` for `client`, ending the client's held
   * one first; delivers 'superseded' at once instead when `client.seq` is
   * below the newest seen. Without a client, just starts it.
   */
  start(
    client: { id: string; seq: number; user: string | undefined } | undefined,
    deliver: (result: SyncResult | 'superseded' | Error, progress?: WakeProgress) => void,
    start: (deliver: DeliverSync) => Poll,
  ): Poll {
    if (!client) return start(deliver);
    const key = `${client.user ?? ''}\u0000${client.id}`;
    const known = this.known.get(key);
    if (known && client.seq < known.seq) {
      deliver('superseded');
      return { cancel() {} };
    }
    known?.supersede?.();
    const entry: Known = { seq: client.seq, supersede: undefined };
    this.known.set(key, entry);
    // Ended (answered, superseded or cancelled): nothing held any more for this client.
    const done = (): void => {
      entry.supersede = undefined;
    };
    const poll = start((result, progress) => {
      done();
      deliver(result, progress);
    });
    entry.supersede = () => {
      done();
      poll.cancel();
      deliver('superseded');
    };
    return {
      cancel() {
        done();
        poll.cancel();
      },
    };
  }
}
