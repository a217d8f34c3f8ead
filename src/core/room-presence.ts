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

  /** `expired` is called when an entry read ends (ms clock `now`). */
  constructor(
    private readonly store: Store,
    private readonly room: string,
    private readonly now: () => number,
    private readonly expired: () => void,
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
      this.view = view?.state === fresh.state && view.nextExpiry === fresh.nextExpiry ? view : fresh;
      this.viewSignals = signals;
      this.reading = undefined;
      this.arm(fresh.nextExpiry);
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
      this.expired();
    }, Math.max(EXPIRY_READ_MIN_MS, nextExpiry - this.now()));
  }
}
