// The hold a sync asks for. 25 s normally; when something on the path (a
// proxy's idle timeout) cuts syncs at about the same elapsed time T twice,
// hold max(5, T - 5) instead, and after a while try the full hold again.

const FULL = 25;
const RETRY_FULL_AFTER = 20;

/** Tracks early cuts and picks each sync's `timeout` (seconds). */
export class Holds {
  private hold = FULL;
  private lastCut: number | undefined;
  private quietSyncs = 0;

  constructor(private readonly verbose: (text: string) => void) {}

  /** The `timeout` for the next sync. */
  current(): number {
    return this.hold;
  }

  /** A sync held `elapsed` seconds was cut (network error, 502, 504). */
  cut(elapsed: number): void {
    const previous = this.lastCut;
    this.lastCut = elapsed;
    this.quietSyncs = 0;
    if (previous !== undefined && Math.abs(previous - elapsed) <= Math.max(2, 0.2 * elapsed)) {
      const hold = Math.max(5, Math.floor(Math.min(previous, elapsed) - 5));
      if (hold < this.hold) {
        this.hold = hold;
        this.verbose(`syncs are cut after about ${Math.round(elapsed)} s; holding ${hold} s from now on`);
      }
    } else {
      this.verbose(`a sync was cut after ${elapsed.toFixed(1)} s; syncing again`);
    }
  }

  /** A sync answered after `elapsed` seconds; `empty` when its hold ran out. */
  answered(elapsed: number, empty: boolean): void {
    if (!empty || this.hold === FULL || elapsed < this.hold - 1) return;
    if (++this.quietSyncs >= RETRY_FULL_AFTER) {
      this.quietSyncs = 0;
      this.lastCut = undefined;
      this.hold = FULL;
      this.verbose(`trying the full ${FULL} s hold again`);
    }
  }
}
