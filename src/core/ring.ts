/**
 * A fixed-capacity FIFO: pushing onto a full ring drops its oldest item.
 *
 * Its array grows with what it holds rather than being allocated at the
 * capacity up front: a store keeps one ring per room, and most rooms hold far
 * fewer messages than the retention allows. Until the ring is full nothing is
 * dropped, so its items lie in order from index 0 and growing is a plain
 * push; once full, it wraps around a start index.
 */
export class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
  }

  get size(): number {
    return this.items.length;
  }

  /** Appends `item`; returns the item dropped to make room, if any. */
  push(item: T): T | undefined {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return undefined;
    }
    const dropped = this.items[this.start];
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.capacity;
    return dropped;
  }

  /** Items from index `from` (0 = oldest) up to, not including, `to`. */
  slice(from: number, to: number): T[] {
    const out: T[] = [];
    for (let i = Math.max(0, from); i < Math.min(to, this.items.length); i++) {
      out.push(this.items[(this.start + i) % this.capacity] as T);
    }
    return out;
  }
}
