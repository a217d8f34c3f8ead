import type { Caller } from './access.js';
import { beforeAnswer, tailAnswer, type PollAnswer } from './answer.js';
import { ChatError } from './errors.js';
import { PollHub, type Deliver, type HubObserver, type Poll, type PollRequest, type WakeProgress } from './poll-hub.js';
import { OnlineTracker, TYPING_MS } from './presence.js';
import { PrivateRooms, roomNotFound } from './rooms.js';
import { StoreUnavailableError, type Store } from './store.js';
import type { DeliverStream } from './stream.js';
import { SyncClients, type SyncClient } from './sync-clients.js';
import type { SyncResult, SyncRoom } from './sync.js';
import type { AppendResult, RoomState, User } from './types.js';
import { checkDraft, checkRoom, isPrivateRoom } from './validate.js';

export interface ChatOptions {
  /** Longest message text, in code points. */
  maxTextLength: number;
  /** Polls held at once before new ones are refused. */
  capacity: number;
  /** Seconds a client refused for capacity or shutdown is told to wait. */
  retryAfter: number;
  observer?: ChatObserver;
  /** Polls answered at a time when a room's group is woken (default 500); 0: all at once (PollHubOptions.wakeSlice). */
  wakeSlice?: number;
  /** The clock for message timestamps; tests may fix it. */
  now?: () => number;
  /** Posting without a token is allowed, with `author` from the body (v1); otherwise it is `unauthenticated`. */
  anonymousPosts: boolean;
  /** Reading public rooms needs a token too. */
  requireAuthToRead: boolean;
  /** Keys the names of direct-message rooms (PrivateRooms). */
  directKey: Uint8Array;
  /** How long a user stays online in a room after their last poll of it ended (protocol "Presence and typing"). */
  onlineWindowMs: number;
  /** Where failed presence writes are reported (they are retried by the user's next poll). */
  onPresenceError?: (err: unknown) => void;
}

export interface ChatObserver extends HubObserver {
  /** A message was stored (not counting duplicates). */
  accepted(): void;
  /** A poll or sync was given up by its client (its connection closed) after being held `seconds`. */
  abandoned(seconds: number): void;
}

/**
 * How long an append the store refused (StoreUnavailableError.refused) keeps
 * the service unhealthy, unless an append succeeds meanwhile: a store can
 * pass its own write probe and still refuse messages (a disk with room for a
 * small write and none for a message), and the health check must say so;
 * long enough for a load balancer polling every few seconds to see it, short
 * enough that an instance taken out of rotation, which then gets no posts to
 * prove itself, is tried again soon. A store out of reach is the probe's to
 * see, and healthy again as soon as it is back.
 */
const FAILED_APPEND_MS = 30_000;

/**
 * The chat service with no transport in it: what any front end (HTTP long
 * poll today, others later) calls to post, read and wait for messages.
 */
export class Chat {
  private readonly hub: PollHub;
  /** Private rooms and direct messages: records and who may change them. */
  readonly rooms: PrivateRooms;
  private readonly syncClients = new SyncClients();
  private readonly online: OnlineTracker;
  private closing = false;
  private readonly now: () => number;
  /** The last append the store refused, until one succeeds or it is FAILED_APPEND_MS old. */
  private failedAppend?: { at: number; error: StoreUnavailableError };

  constructor(
    private readonly store: Store,
    private readonly options: ChatOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.online = new OnlineTracker(store, { windowMs: options.onlineWindowMs, onError: options.onPresenceError, now: this.now });
    this.hub = new PollHub(store, {
      capacity: options.capacity,
      retryAfter: options.retryAfter,
      observer: options.observer,
      wakeSlice: options.wakeSlice,
      online: this.online,
      now: this.now,
    });
    this.rooms = new PrivateRooms(store, options.directKey);
  }

  /** Polls currently held waiting for a message. */
  get parked(): number {
    return this.hub.parked;
  }

  /** A transport says a poll or sync was given up by its client after `seconds` held (ChatObserver.abandoned). */
  abandoned(seconds: number): void {
    this.options.observer?.abandoned(seconds);
  }

  /** Syncs currently held (POST /api/sync), counted in `parked` too. */
  get syncsHeld(): number {
    return this.hub.syncsHeld;
  }

  /** Signed-in users with a poll held here now or within the online window. */
  get usersOnline(): number {
    return this.online.usersOnline;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Throws `shutting_down` once shutdown has begun. */
  assertOpen(): void {
    if (this.closing) throw new ChatError('shutting_down', 'server is shutting down', this.options.retryAfter);
  }

  /**
   * Validates and stores a message; a known `clientMsgId` returns the
   * original. A caller is the author (protocol "Identity"); without one
   * posting is `unauthenticated` unless anonymous posts are allowed. A
   * private room the caller may not use is `not_found`.
   */
  async post(room: string, body: unknown, caller: Caller | undefined): Promise<AppendResult> {
    this.assertOpen();
    checkRoom(room);
    if (isPrivateRoom(room)) await this.rooms.admit(room, caller);
    else if (!caller && !this.options.anonymousPosts) {
      throw new ChatError('unauthenticated', 'sign in to post: send a token (Authorization: Bearer); POST /api/sessions gives a guest one');
    }
    const draft = checkDraft(body, this.options.maxTextLength, caller);
    const now = this.now();
    // A post ends its author's typing; sent first, so that readers get both in one answer.
    const typingEnded = caller ? this.store.setTyping(room, userOf(caller), 0, now).catch((err: unknown) => this.options.onPresenceError?.(err)) : undefined;
    let result;
    try {
      result = await this.store.append(room, draft, now);
    } catch (err) {
      if (err instanceof StoreUnavailableError && err.refused) this.failedAppend = { at: performance.now(), error: err };
      throw err;
    } finally {
      await typingEnded;
    }
    this.failedAppend = undefined;
    if (!result.duplicate) this.options.observer?.accepted();
    return result;
  }

  /**
   * Says that `caller` is typing in `room` (for TYPING_MS unless repeated) or
   * has stopped, as `body` `{ "typing": true|false }` says (protocol
   * "Presence and typing"; a form's "true"/"false" too). Needs a signed-in
   * caller who may read the room: `unauthenticated`, `not_found` for a
   * private room they may not read, `invalid_body` for another body.
   */
  async typing(room: string, body: unknown, caller: Caller | undefined): Promise<void> {
    this.assertOpen();
    checkRoom(room);
    if (!caller) throw new ChatError('unauthenticated', 'sign in to type: send a token (Authorization: Bearer)');
    const value = (body as { typing?: unknown } | undefined)?.typing;
    const typing = value === true || value === 'true' ? true : value === false || value === 'false' ? false : undefined;
    if (typing === undefined) throw new ChatError('invalid_body', 'body must be {"typing": true} or {"typing": false}');
    await this.admitReader(room, caller);
    const now = this.now();
    await this.store.setTyping(room, userOf(caller), typing ? now + TYPING_MS : 0, now);
  }

  /**
   * Throws unless `caller` may read `room`: `unauthenticated` when reading
   * needs a token and there is none, `not_found` for a private room the
   * caller is not a member of.
   */
  private async admitReader(room: string, caller: Caller | undefined): Promise<void> {
    checkRoom(room);
    this.checkSignedIn(caller);
    if (isPrivateRoom(room)) await this.rooms.admit(room, caller);
  }

  private checkSignedIn(caller: Caller | undefined): void {
    if (!caller && this.options.requireAuthToRead) {
      throw new ChatError('unauthenticated', 'this server needs a token to read: send Authorization: Bearer');
    }
  }

  /** The room's newest messages and the cursor to poll from: how a client joins. */
  async join(room: string, limit: number, caller: Caller | undefined): Promise<PollAnswer> {
    this.assertOpen();
    await this.admitReader(room, caller);
    const answer = tailAnswer(room, await this.store.readTail(room, limit), false);
    this.options.observer?.answered(answer.outcome, 1);
    return answer;
  }

  /** History just before seq `before`; a cursor from another epoch gets the reset tail instead. */
  async page(room: string, before: number, limit: number, epoch: string | undefined, caller: Caller | undefined): Promise<PollAnswer> {
    this.assertOpen();
    await this.admitReader(room, caller);
    const slice = await this.store.readBefore(room, before, limit);
    const answer =
      epoch !== undefined && epoch !== slice.epoch
        ? tailAnswer(room, await this.store.readTail(room, limit), true)
        : beforeAnswer(room, slice);
    this.options.observer?.answered(answer.outcome, 1);
    return answer;
  }

  /**
   * Starts a sync, a long poll on several rooms (protocol "One poll for many
   * rooms"); see PollHub.pollRooms. Access is judged per room: a private
   * room the caller may not read is answered not_found, alone. With a
   * `client`, a new sync of the same client and user ends the one held
   * (delivered 'superseded'), and one with a `seq` below the latest seen is
   * delivered 'superseded' at once.
   */
  sync(
    request: { rooms: readonly Omit<SyncRoom, 'member' | 'denied'>[]; limit: number; timeoutMs: number },
    caller: Caller | undefined,
    client: SyncClient | undefined,
    deliver: (result: SyncResult | 'superseded' | Error, progress?: WakeProgress) => void,
  ): Poll {
    this.assertOpen();
    this.checkSignedIn(caller);
    const rooms = this.readable(request.rooms, caller);
    return this.syncClients.start(client && { ...client, user: caller?.id }, deliver, (end) =>
      this.hub.pollRooms({ rooms, limit: request.limit, timeoutMs: request.timeoutMs, user: caller && userOf(caller) }, end),
    );
  }

  /**
   * Starts a stream, a sync answered many times (protocol "Streams"); see
   * PollHub.stream. Access is judged per room as for a sync: a private room
   * the caller may not read gets one not_found event and is followed no more.
   */
  stream(
    request: { rooms: readonly Omit<SyncRoom, 'member' | 'denied' | 'state'>[]; limit: number; maxAgeMs: number },
    caller: Caller | undefined,
    deliver: DeliverStream,
  ): Poll {
    this.assertOpen();
    this.checkSignedIn(caller);
    return this.hub.stream({ rooms: this.readable(request.rooms, caller), limit: request.limit, maxAgeMs: request.maxAgeMs, user: caller && userOf(caller) }, deliver);
  }

  /** Streams open now. */
  get streamsOpen(): number {
    return this.hub.streamsOpen;
  }

  /** The cursors as the hub takes them: a private room rests on the caller's stored membership, or is denied to a caller without a token. */
  private readable(rooms: readonly Omit<SyncRoom, 'member' | 'denied'>[], caller: Caller | undefined): SyncRoom[] {
    return rooms.map((cursor): SyncRoom => {
      checkRoom(cursor.room);
      if (!isPrivateRoom(cursor.room) || caller?.rooms?.has(cursor.room)) return cursor;
      return caller ? { ...cursor, member: caller.id } : { ...cursor, denied: true };
    });
  }

  /**
   * Starts a long poll; see PollHub.poll. A poll on a private room that
   * rests on stored membership is checked by the hub, which also ends it
   * when the caller stops being a member.
   */
  poll(request: Omit<PollRequest, 'member'>, caller: Caller | undefined, deliver: Deliver): Poll {
    this.assertOpen();
    const { room } = request;
    checkRoom(room);
    this.checkSignedIn(caller);
    const user = caller && userOf(caller);
    if (!isPrivateRoom(room) || caller?.rooms?.has(room)) return this.hub.poll(user ? { ...request, user } : request, deliver);
    if (!caller) throw roomNotFound();
    return this.hub.poll({ ...request, member: caller.id, user }, deliver);
  }

  async info(room: string, caller: Caller | undefined): Promise<{ room: string } & RoomState> {
    this.assertOpen();
    await this.admitReader(room, caller);
    const { epoch, head, oldest } = await this.store.info(room);
    return { room, epoch, head, oldest };
  }

  /**
   * Resolves when the store can serve reads and take messages: its own probe
   * succeeds and it has not refused a post in the last FAILED_APPEND_MS
   * without taking one since. Rejects with the StoreUnavailableError that
   * says why otherwise.
   */
  async ping(): Promise<void> {
    const failed = this.failedAppend;
    if (failed && performance.now() - failed.at < FAILED_APPEND_MS) throw failed.error;
    await this.store.ping();
  }

  /**
   * Refuses new work and answers every parked poll at once. Returns how many
   * polls were answered. The store stays open for the caller to close.
   */
  shutdown(): number {
    this.closing = true;
    this.online.close();
    return this.hub.close();
  }
}

const userOf = (caller: Caller): User => ({ id: caller.id, name: caller.name });
