/** A fixed-capacity FIFO: pushing onto a full ring drops its oldest item. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Appends `item`; returns the item dropped to make room, if any. */
  push(item: T): T | undefined {
    const end = (this.start + this.count) % this.capacity;
    if (this.count < this.capacity) {
      this.items[end] = item;
      this.count++;
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
    for (let i = Math.max(0, from); i < Math.min(to, this.count); i++) {
      out.push(this.items[(this.start + i) % this.capacity] as T);
    }
    return out;
  }
}
