import type { ChangeListener } from './store.js';

/**
 * Change listeners by room, for stores whose appends all happen in this
 * process. A room's entry exists only while it has listeners.
 */
export class RoomListeners {
  private readonly rooms = new Map<string, Set<ChangeListener>>();

  /** Adds `listener` to `room`; returns the function that removes it. */
  add(room: string, listener: ChangeListener): () => void {
    let set = this.rooms.get(room);
    if (!set) this.rooms.set(room, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.rooms.get(room) === set) this.rooms.delete(room);
    };
  }

  notify(room: string): void {
    const set = this.rooms.get(room);
    if (set) for (const listener of set) listener();
  }

  clear(): void {
    this.rooms.clear();
  }
}
