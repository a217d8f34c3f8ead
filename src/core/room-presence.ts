import { PRESENCE_LIST_LIMIT, presenceView, type PresenceView } from './presence.js';
import type { Store } from './store.js';

/** The least time between reads that expiries cause, so that entries ending one after another fold into one read. */
const EXPIRY_READ_MIN_MS = 100;

/**
 * A room's presence lists as the poll hub sees them while syncs watch the
 * room: the last read, valid until the room's next change signal or the end
 * of its earliest entry; a read in flight, shared by every caller meanwhile;
 * and the timer that fires when the earliest entry ends, which no signal
 * announces.
 *
 * Syncs parked with the last read's state learn of a change only through the
 * room: by a signal, or by the owner's `changed` callback for a change no
 * signal announced. That callback comes from the timer, or from a read that
 * finds the lists changed under the same signal (an entry ended before the
 * timer fired, and that read clears the timer).
 */
export class RoomPresence {
  /** The lists as last read, serialized once for every sync that gets them. */
  view: PresenceView | undefined;
  /** The room's signal count when the read that gave `view` started. */
  private viewSignals = -1;
  private reading: Promise<PresenceView> | undefined;
  private readingSignals = -1;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  /**
   * `changed` is called when the lists may have changed with no signal to say
   * so: an entry read has ended (ms clock `now`), or a read found them changed.
   */
  constructor(
    private readonly store: Store,
    private readonly room: string,
    private readonly now: () => number,
    private readonly changed: () => void,
  ) {}

  /**
   * The lists as of the room's change signal number `signals`: the last read
   * when it started after that signal and no entry of it has ended since,
   * else a new read (or the one in flight for the same signal).
   */
  read(signals: number): Promise<PresenceView> {
    const { view } = this;
    const now = this.now();
    if (view && this.viewSignals === signals && (view.nextExpiry === undefined || view.nextExpiry > now)) return Promise.resolve(view);
    if (this.reading && this.readingSignals === signals) return this.reading;
    const reading = this.store.readPresence(this.room, now, PRESENCE_LIST_LIMIT).then((snapshot) => {
      const fresh = presenceView(snapshot);
      // An older read finishing late must not replace what a newer one found.
      if (this.readingSignals !== signals) return this.view ?? fresh;
      const cached = this.view;
      const unsignalled = cached !== undefined && this.viewSignals === signals && cached.state !== fresh.state;
      this.view = cached?.state === fresh.state && cached.nextExpiry === fresh.nextExpiry ? cached : fresh;
      this.viewSignals = signals;
      this.reading = undefined;
      this.arm(fresh.nextExpiry);
      if (unsignalled && !this.stopped) this.changed();
      return this.view;
    });
    this.reading = reading;
    this.readingSignals = signals;
    reading.catch(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    return reading;
  }

  /** The room is no longer watched: no more timers. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private arm(nextExpiry: number | undefined): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (nextExpiry === undefined || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.changed();
    }, Math.max(EXPIRY_READ_MIN_MS, nextExpiry - this.now()));
  }
}
