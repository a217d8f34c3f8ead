import { Cluster } from 'ioredis';
import { StoreUnavailableError, type ChangeListener } from '../core/store.js';
import type { RedisClient } from './redis-connect.js';

interface Channel {
  readonly listeners: Set<ChangeListener>;
  /** Resolves once the channel is subscribed on the current connection; rejects while it is down. */
  ready: Promise<void>;
  linger?: NodeJS.Timeout;
}

function down(): Promise<void> {
  const failed = Promise.reject(new StoreUnavailableError('the Redis connection for change signals is down'));
  failed.catch(() => {});
  return failed;
}

/**
 * Change signals from Redis shard channels, one per room, on a connection of
 * their own.
 *
 * A channel stays subscribed for `lingerMs` after its last listener leaves,
 * because a woken client polls again at once: its next poll then finds the
 * subscription active and costs no round trip.
 *
 * No signal is lost to a dropped connection: when it drops, every listener is
 * called (its poll reads the store, which fails while Redis is away, so the
 * poll is answered rather than left waiting for a signal that cannot come);
 * when it is back, every channel is subscribed again and then every listener
 * is called, to cover what was published meanwhile.
 *
 * On a Redis Cluster the client (with `shardedSubscribers`) keeps one
 * subscribed connection per master and subscribes each channel on the
 * master of its slot. When one of them is lost (its master failed), every
 * listener is called, as for a dropped connection; the client then reads
 * the slot map again and subscribes every channel again on the master that
 * took over, and once it has sent those subscriptions, every listener is
 * called again. Until a replica has taken over, the client tries the lost
 * master again and again, each attempt a loss and a new start; so these
 * calls come at most once every CLUSTER_NOTIFY_MS, the last one after the
 * last of those events.
 */
/** Channels kept subscribed without listeners, at most: polls on ever new rooms must not grow this without bound. */
const MAX_LINGERING = 10_000;
/** Redis Cluster: least time between two calls of every listener after subscriber connections were lost or restored. */
const CLUSTER_NOTIFY_MS = 500;

export class RedisSignals {
  private readonly channels = new Map<string, Channel>();
  private lingering = 0;
  private notifyTimer?: NodeJS.Timeout;
  private notifiedAt = 0;

  constructor(
    private readonly conn: RedisClient,
    private readonly lingerMs: number,
  ) {
    conn.on('smessage', (channel: string) => this.notify(channel));
    conn.on('close', () => {
      for (const entry of this.channels.values()) entry.ready = down();
      this.notifyAll();
    });
    if (conn instanceof Cluster) {
      // The cluster client subscribes its channels again by itself, so only the listeners are left to call:
      // after it sent the subscriptions to the masters it found ('subscribersReady'), and after the cluster
      // came back whole ('ready'), which needs no new subscriptions when the subscribed connections outlived it.
      const back = (): void => {
        for (const entry of this.channels.values()) entry.ready = Promise.resolve();
        this.notifyAllSoon();
      };
      conn.on('-node', () => this.notifyAllSoon());
      conn.on('subscribersReady', back);
      conn.on('ready', back);
    } else {
      conn.on('ready', () => void this.resubscribe());
    }
  }

  /** Calls `listener` after every publish on `channel` once subscribed; resolves to the function that stops it. */
  async subscribe(channel: string, listener: ChangeListener): Promise<() => void> {
    let entry = this.channels.get(channel);
    if (!entry) this.channels.set(channel, (entry = { listeners: new Set(), ready: this.send(channel) }));
    this.stopLinger(entry);
    entry.listeners.add(listener);
    try {
      await entry.ready;
    } catch (err) {
      // Not lingering: the next subscribe must try again, not meet this failure.
      entry.listeners.delete(listener);
      this.forget(channel, entry);
      throw err;
    }
    const subscribed = entry;
    return () => this.remove(channel, subscribed, listener);
  }

  private send(channel: string): Promise<void> {
    return this.conn.ssubscribe(channel).then(
      () => undefined,
      (err: unknown) => {
        throw new StoreUnavailableError(`Redis: cannot subscribe to change signals: ${(err as Error).message}`, { cause: err });
      },
    );
  }

  private remove(channel: string, entry: Channel, listener: ChangeListener): void {
    entry.listeners.delete(listener);
    if (entry.listeners.size > 0 || entry.linger) return;
    if (this.lingering >= MAX_LINGERING) return this.forget(channel, entry);
    this.lingering++;
    entry.linger = setTimeout(() => this.forget(channel, entry), this.lingerMs).unref();
  }

  private stopLinger(entry: Channel): void {
    if (!entry.linger) return;
    clearTimeout(entry.linger);
    entry.linger = undefined;
    this.lingering--;
  }

  private forget(channel: string, entry: Channel): void {
    this.stopLinger(entry);
    if (this.channels.get(channel) !== entry || entry.listeners.size > 0) return;
    this.channels.delete(channel);
    // Sent before any later subscribe to the same channel, on the same connection, so it cannot undo one.
    this.conn.sunsubscribe(channel).catch(() => {});
  }

  private notify(channel: string): void {
    const entry = this.channels.get(channel);
    if (entry) for (const listener of entry.listeners) listener();
  }

  private notifyAll(): void {
    for (const entry of this.channels.values()) for (const listener of entry.listeners) listener();
  }

  /** notifyAll, at once or as soon as CLUSTER_NOTIFY_MS has passed since the last time; calls meanwhile share it. */
  private notifyAllSoon(): void {
    if (this.notifyTimer) return;
    const wait = Math.max(0, this.notifiedAt + CLUSTER_NOTIFY_MS - Date.now());
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      this.notifiedAt = Date.now();
      this.notifyAll();
    }, wait).unref();
  }

  private async resubscribe(): Promise<void> {
    const entries = [...this.channels];
    for (const [channel, entry] of entries) entry.ready = this.send(channel);
    const results = await Promise.allSettled(entries.map(([, entry]) => entry.ready));
    // A failure here means the connection dropped again; its next 'ready' tries again.
    if (results.every((r) => r.status === 'fulfilled')) this.notifyAll();
  }

  close(): void {
    clearTimeout(this.notifyTimer);
    for (const entry of this.channels.values()) this.stopLinger(entry);
    this.channels.clear();
  }
}
