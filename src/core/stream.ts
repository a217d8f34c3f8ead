import { ChatError } from './errors.js';
import type { RoomReport, SyncResult, SyncRoom } from './sync.js';
import type { User } from './types.js';
import { checkRoom } from './validate.js';

/** A stream as the hub takes it (protocol "Streams"): a sync answered many times. */
export interface StreamRequest {
  /** Each room once, with the cursor to resume from (absent `after`: join, the tail first). */
  rooms: readonly SyncRoom[];
  /** Messages per room per event at most. */
  limit: number;
  /** How long the stream lives before it ends on its own (the client reconnects), in ms. */
  maxAgeMs: number;
  /** The signed-in caller: online in the stream's rooms while it lasts. */
  user?: User;
}

/**
 * One room's news on a stream: the room's report, as a sync would have it,
 * and the stream's event id after it, naming the cursor of every room of the
 * stream (StreamCursors.id).
 */
export interface StreamEvent {
  room: string;
  report: RoomReport;
  id: string;
}

/**
 * Receives a stream's events, a batch at a time (one batch per wake-up, in
 * order), or 'end' when it ends on its own (its age, shutdown, no room left
 * to follow), or the error that ended it (the store failing). After a batch
 * the stream waits until `next` is called: a transport calls it once the
 * batch is on its way, so that a client that does not read holds back one
 * batch at most, never a growing backlog.
 */
export type DeliverStream = (result: StreamEvent[] | 'end' | Error, next: () => void) => void;

/**
 * The longest event id accepted, in characters. 100 rooms of 64-character
 * names with their cursors come to about 10,000; a browser sends the id back
 * in a header, within Node's 16 KiB for a request head.
 */
export const MAX_EVENT_ID_LENGTH = 12_000;

const DIGITS = /^[0-9]{1,16}$/;

/** One cursor of a list: `name[:after[:epoch]]`, where only `after` of at most 2^53-1 is accepted. */
export interface ListedCursor {
  room: string;
  after?: number;
  epoch?: string;
}

/**
 * Reads a list of cursors, `name[:after[:epoch]]` separated by commas: the
 * stream's `rooms` parameter and its event ids have this one form. `what`
 * names the list in errors. Throws `invalid_room` or `invalid_parameter`
 * for anything else, a name given twice included.
 */
export function parseCursorList(text: string, what: string, maxEpochLength: number): ListedCursor[] {
  const seen = new Set<string>();
  return text.split(',').map((item) => {
    const [room = '', after, ...rest] = item.split(':');
    checkRoom(room);
    if (seen.has(room)) throw new ChatError('invalid_parameter', `${what} names room "${room}" twice`);
    seen.add(room);
    if (after === undefined) return { room };
    const value = DIGITS.test(after) ? Number(after) : NaN;
    if (!Number.isSafeInteger(value)) throw new ChatError('invalid_parameter', `${what}: the seq after "${room}:" must be decimal digits, at most 2^53-1`);
    if (rest.length === 0) return { room, after: value };
    // Epochs handed out by this server never hold ':' or ','; one that does was not handed out.
    const epoch = rest.join(':');
    if (epoch.length === 0 || epoch.length > maxEpochLength) throw new ChatError('invalid_parameter', `${what}: the epoch of "${room}" must be one an answer gave`);
    return { room, after: value, epoch };
  });
}

/**
 * The cursors of a stream's rooms, moved on by every event, so that each
 * event's id resumes every room exactly after what the client has been sent
 * (protocol "Streams": "resumes every room exactly where it was"). A room
 * reported not_found is no longer followed and leaves the id. The presence
 * state each room was last sent travels with its cursor, so that lists go
 * out again only when they change; it is not in the id, so a resumed stream
 * starts with every room's lists.
 */
export class StreamCursors {
  private readonly rooms: Map<string, SyncRoom>;

  constructor(rooms: readonly SyncRoom[]) {
    this.rooms = new Map(rooms.map((cursor) => [cursor.room, { ...cursor }]));
  }

  /** Rooms still followed. */
  get size(): number {
    return this.rooms.size;
  }

  /** The cursors to wait on next. */
  syncRooms(): SyncRoom[] {
    return [...this.rooms.values()];
  }

  /** Moves the cursors on by a sync's result: one event for each room it reports, in its order. */
  apply(result: SyncResult): StreamEvent[] {
    const events: StreamEvent[] = [];
    for (const [room, report] of result) {
      const cursor = this.rooms.get(room);
      if (!cursor) continue;
      const { answer, presence } = report;
      if (answer instanceof ChatError) {
        this.rooms.delete(room);
      } else {
        cursor.after = answer.body.last;
        cursor.epoch = answer.body.epoch;
        if (presence) cursor.state = presence.state;
      }
      events.push({ room, report, id: this.id() });
    }
    return events;
  }

  /** `room:after:epoch` of every room with a cursor, comma-separated: what parseCursorList reads back. */
  id(): string {
    let id = '';
    for (const { room, after, epoch } of this.rooms.values()) {
      if (after === undefined) continue;
      id += `${id ? ',' : ''}${room}:${after}${epoch === undefined ? '' : `:${epoch}`}`;
    }
    return id;
  }
}
