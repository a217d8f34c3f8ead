import { afterAnswer, tailAnswer, timeoutAnswer, type Outcome, type PollAnswer } from './answer.js';
import { RecentAnswers } from './recent-answers.js';
import type { DeliverSync, SyncRequest, SyncResult, SyncRoom } from './sync.js';
import { ChatError } from './errors.js';
import { PRESENCE_LIST_LIMIT, presenceView, type OnlineTracker, type PresenceView } from './presence.js';
import { RoomPresence } from './room-presence.js';
import { isMember, roomNotFound } from './rooms.js';
import type { Store } from './store.js';
import { StreamCursors, type DeliverStream, type StreamRequest } from './stream.js';
import type { User } from './types.js';

/** A long poll: wait for messages after `after` in `room`. */
export interface PollRequest {
  room: string;
  after: number;
  /** The epoch the client's cursor belongs to; absent trusts `after` as is. */
  epoch?: string;
  limit: number;
  /** How long to hold the poll when nothing is new; 0 answers at once. */
  timeoutMs: number;
  /**
   * The user whose stored membership of the (private) room the poll rests
   * on: checked once the room's change signal is active, and again after
   * every change signal while the poll is held, so that a member removed on
   * any instance has the poll ended with `not_found` at once.
   */
  member?: string;
  /** The signed-in caller: online in the room while the poll is held (protocol "Presence and typing"). */
  user?: User;
}

/**
 * Comes with an answer given in the middle of a sliced wake-up (see
 * PollHubOptions.wakeSlice), while the rest of the poll's group is still to be
 * answered. `whenDone` runs `resume` once the whole group has its answer: a
 * transport may hold off reading the client's next request until then, so
 * that the re-polls of the clients answered first do not slow the answers to
 * the rest.
 */
export interface WakeProgress {
  whenDone(resume: () => void): void;
}

/** Receives a poll's answer, or the error that ended it; called at most once. */
export type Deliver = (result: PollAnswer | Error, progress?: WakeProgress) => void;

/** Counts what the hub does, for metrics; every method is optional to implement cheaply. */
export interface HubObserver {
  /** `count` polls were answered with `outcome`. */
  answered(outcome: Outcome, count: number): void;
  /** A wake-up signal took `seconds` to turn into answers for a group of polls. */
  woke(seconds: number): void;
  /** A sync on `rooms` rooms started. */
  synced(rooms: number): void;
}

export interface PollHubOptions {
  /** Polls held (or being read for) at once; past it a new poll is refused. */
  capacity: number;
  /** Seconds a refused client is told to wait. */
  retryAfter: number;
  observer?: HubObserver;
  /**
   * Answers a woken group this many polls at a time, letting the event loop
   * in between (default DEFAULT_WAKE_SLICE); 0 answers a group all at once.
   * See wake().
   */
  wakeSlice?: number;
  /** Keeps the online entries of the users whose polls are held; without it no one is shown online. */
  online?: OnlineTracker;
  /** The clock presence is read at (ms since the epoch). */
  now?: () => number;
}

/** Polls answered at a time in a wake-up unless told otherwise: large enough that most groups go out at once. */
export const DEFAULT_WAKE_SLICE = 500;

/** A started poll, as its caller sees it. */
export interface Poll {
  /** The client went away: forget the poll at once. Harmless after the answer. */
  cancel(): void;
}

/**
 * Answers kept per room between change signals. The herd that comes back
 * after a wake-up stands at one or two cursors; the cap keeps a client that
 * asks for many different cursors from filling memory with copies.
 */
export const CACHED_ANSWERS_PER_ROOM = 8;

/**
 * How long after a sync starts a presence-only report may answer it
 * (protocol: "The server may hold such presence-only answers up to 1 s"),
 * whether the lists changed while it was held or had changed already when
 * it came (an outdated `state`). A sync starts when the client has just been
 * answered, so however busy the room a client gets at most about one
 * presence-only answer a second; a change after a quiet spell goes out at
 * once. Only a room whose lists the client has never had (no `state`) is
 * answered at once.
 */
export const PRESENCE_FOLD_MS = 1000;

/** What an answered poll's caller holds: nothing is left to cancel. */
const ANSWERED: Poll = { cancel() {} };

/** Polls with the same cursor get the same answer. */
function cursorKey(after: number, limit: number, epoch: string | undefined): string {
  return `${after}:${limit}:${epoch ?? ''}`;
}

/** Parked polls of one room that share a cursor, and so share one answer. */
interface Group {
  readonly key: string;
  readonly after: number;
  readonly epoch: string | undefined;
  readonly limit: number;
  readonly waiters: Set<Waiter>;
  /** Built on first use: every poll of the group that times out gets the same bytes. */
  timeout: PollAnswer | undefined;
}

interface Waiter extends Poll {
  readonly entry: RoomEntry;
  readonly deliver: Deliver;
  done: boolean;
  group: Group | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The store's epoch when the poll parked, for its timeout answer. */
  epoch: string;
  /** PollRequest.member, once checked. */
  member: string | undefined;
  /** The sync this poll is one room of: the sync holds the capacity, the count of parked polls and the timer. */
  sync: Sync | undefined;
  /** For a part: the presence state the client sent (see SyncRoom.state); undefined for a plain poll too. */
  state: string | undefined;
  /** Ends the user's online hold on the room (OnlineTracker.hold); `gone` when they may no longer read it. */
  release: ((gone?: boolean) => void) | undefined;
}

/** A sync (a poll on several rooms) in the hub: a part parked in each room with a cursor, answered once. */
interface Sync extends Poll {
  readonly deliver: DeliverSync;
  readonly parts: Waiter[];
  /** What the rooms have to report so far. */
  readonly found: SyncResult;
  readonly startedAt: number;
  /** Until every room has been read once: answers are collected, not sent. */
  starting: boolean;
  /** Something was found that goes out at once (not a presence-only report the client already had a state for). */
  urgent: boolean;
  parked: boolean;
  done: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Answers a presence-only report once PRESENCE_FOLD_MS has passed since the start. */
  foldTimer: NodeJS.Timeout | undefined;
  /** One answer of a stream, whose slot against the capacity the stream holds for its whole life. */
  readonly inStream: boolean;
}

/** A room with polls in flight; exists only while it has some. */
interface RoomEntry {
  readonly room: string;
  readonly groups: Map<string, Group>;
  /** Polls started and not yet answered or cancelled. */
  users: number;
  /** Parked polls resting on stored membership (PollRequest.member). */
  readonly gated: Set<Waiter>;
  /** Parked parts of syncs, which watch the room's presence too. */
  readonly watchers: Set<Waiter>;
  /** Made when a sync first watches the room. */
  presence: RoomPresence | undefined;
  /** Change signals received; a poll compares it across its first read. */
  signals: number;
  /** When the first signal not yet flushed arrived (for the wake-up latency). */
  signaledAt: number;
  /** Resolves when the store's change signal for the room is active. */
  readonly ready: Promise<void>;
  /** True once the store's change signal is active, for as long as the entry lives. */
  live: boolean;
  /**
   * Answers with messages read since the last change signal, by cursor: the
   * herd of polls that come back at one cursor after a wake-up shares one
   * read and one serialization. Used only with stores that signal
   * synchronously (Store.readAfterNow), for which no signal can be late.
   */
  readonly answers: Map<string, PollAnswer>;
  unsubscribe: (() => void) | undefined;
  released: boolean;
  scheduled: boolean;
  flushing: boolean;
  flushAgain: boolean;
}

/**
 * Where polls are parked, woken and answered.
 *
 * A poll reads the store once; if nothing is new it parks in its room, in the
 * group of polls at the same cursor. The store's change signal marks the room
 * and schedules one flush for the next turn of the event loop, so messages
 * posted in the same tick go out in one answer. The flush reads the store once
 * per group and hands the same answer (serialized once) to all of its polls
 * (a large group a slice at a time, reading again if the room changed in
 * between).
 * A poll leaves its group the moment it is answered, times out or is
 * cancelled, taking its timer with it; a room with no polls is forgotten and
 * its change signal stopped.
 *
 * Presence and typing are one more thing a room can change: the store
 * signals a change of the lists like a message, the flush reads them once
 * for the room (one serialization, PresenceView) and answers every part of a
 * sync whose state differs; entries that end without a signal (expiry) are
 * read again when they end.
 */
export class PollHub {
  private readonly rooms = new Map<string, RoomEntry>();
  private readonly recentAnswers = new RecentAnswers();
  private active = 0;
  private parkedCount = 0;
  private parkedSyncs = 0;
  private openStreams = 0;
  private closing = false;

  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: PollHubOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Polls currently held waiting for a message. */
  get parked(): number {
    return this.parkedCount;
  }

  /** Syncs currently held (counted in `parked` too). */
  get syncsHeld(): number {
    return this.parkedSyncs;
  }

  /** Streams open; one waiting for news is counted in `parked` too. */
  get streamsOpen(): number {
    return this.openStreams;
  }

  /**
   * Starts a poll. `deliver` is called exactly once with its answer (or the
   * error that ended it), unless `cancel` is called first.
   * Throws `over_capacity` or `shutting_down` synchronously.
   */
  poll(request: PollRequest, deliver: Deliver): Poll {
    this.admit();
    if (this.store.readAfterNow && request.member === undefined) {
      const now = this.pollNow(request, deliver);
      if (now) return now;
    }
    this.active++;
    const entry = this.acquire(request.room);
    const waiter: Waiter = this.waiter(entry, deliver, '');
    this.start(waiter, request).catch((err: unknown) => this.fail(waiter, err));
    return waiter;
  }

  /**
   * Starts a sync: a poll on several rooms (protocol "One poll for many
   * rooms"), answered once, as soon as any room has something to report
   * (SyncResult), or with nothing when `timeoutMs` passes. A room without a
   * cursor is a join, always reported; a room `denied` is reported as
   * not_found. Each room with a cursor is a part parked there like a poll,
   * woken by the room's change signal like every poll of the room; the sync
   * counts as one poll against the capacity and in `parked`. Throws
   * `over_capacity` or `shutting_down` synchronously.
   */
  pollRooms(request: SyncRequest, deliver: DeliverSync): Poll {
    this.admit();
    this.active++;
    this.options.observer?.synced(request.rooms.length);
    return this.openSync(request, deliver, false);
  }

  /**
   * Starts a stream (protocol "Streams"): a sync answered many times. Each
   * answer is a batch of events, one per room with news, whose ids carry
   * every room's cursor (StreamCursors); the next sync starts from those
   * cursors once the transport calls `next`. A stream counts as one poll
   * against the capacity for its whole life, and in `parked` while it
   * waits. It ends with 'end' after `maxAgeMs`, at shutdown (after the
   * events pending then), or when no room is left to follow; with the error
   * when the store fails. Throws `over_capacity` or `shutting_down`
   * synchronously.
   */
  stream(request: StreamRequest, deliver: DeliverStream): Poll {
    this.admit();
    this.active++;
    this.openStreams++;
    const cursors = new StreamCursors(request.rooms);
    const endsAt = this.now() + request.maxAgeMs;
    let current: Poll | undefined;
    let done = false;
    const finish = (result?: 'end' | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(ageTimer);
      current?.cancel();
      this.active--;
      this.openStreams--;
      if (result) deliver(result, () => {});
    };
    const ageTimer = setTimeout(() => finish('end'), request.maxAgeMs);
    const next = (): void => {
      if (done) return;
      const left = endsAt - this.now();
      if (left <= 0 || this.closing || cursors.size === 0) return finish('end');
      const sync = { rooms: cursors.syncRooms(), limit: request.limit, timeoutMs: left, user: request.user };
      current = this.openSync(sync, (result, progress) => {
        current = undefined;
        if (done) return;
        if (result instanceof Error) return finish(result);
        // Nothing: the hub is closing; next() ends it.
        if (result.size === 0) return next();
        // In a sliced wake-up, the next sync waits for the rest of the group's
        // answers, as a re-poll does (WakeProgress), besides the transport.
        let waits = progress ? 2 : 1;
        const ready = (): void => {
          if (--waits === 0) next();
        };
        progress?.whenDone(ready);
        deliver(cursors.apply(result), ready);
      }, true);
    };
    next();
    return { cancel: () => finish() };
  }

  /** Throws `shutting_down` or `over_capacity` when a new poll, sync or stream may not start. */
  private admit(): void {
    if (this.closing) throw new ChatError('shutting_down', 'server is shutting down', this.options.retryAfter);
    if (this.active >= this.options.capacity) {
      throw new ChatError('over_capacity', 'too many polls in progress; retry later', this.options.retryAfter);
    }
  }

  /** A sync in the hub, its slot against the capacity already taken (by itself, or by the stream it is one answer of). */
  private openSync(request: SyncRequest, deliver: DeliverSync, inStream: boolean): Poll {
    const sync: Sync = {
      deliver,
      parts: [],
      found: new Map(),
      startedAt: this.now(),
      starting: true,
      urgent: false,
      parked: false,
      done: false,
      timer: undefined,
      foldTimer: undefined,
      inStream,
      cancel: () => this.endSync(sync),
    };
    this.startSync(sync, request).catch((err: unknown) => this.endSync(sync, err instanceof Error ? err : new Error(String(err))));
    return sync;
  }

  private async startSync(sync: Sync, request: SyncRequest): Promise<void> {
    await Promise.all(request.rooms.map((cursor) => this.startPart(sync, cursor, request)));
    if (sync.done) return;
    sync.starting = false;
    if (sync.urgent || request.timeoutMs === 0 || this.closing) return this.endSync(sync, sync.found);
    sync.parked = true;
    this.parkedCount++;
    // A stream's age is its own timer's: one timer a stream rather than one an event.
    if (!sync.inStream) {
      this.parkedSyncs++;
      sync.timer = setTimeout(() => this.endSync(sync, sync.found), request.timeoutMs);
    }
    if (sync.found.size > 0) this.foldPresence(sync);
  }

  /** Answers a sync whose news is presence only once it is PRESENCE_FOLD_MS old. */
  private foldPresence(sync: Sync): void {
    const wait = sync.startedAt + PRESENCE_FOLD_MS - this.now();
    if (wait <= 0) return this.endSync(sync, sync.found);
    sync.foldTimer ??= setTimeout(() => this.endSync(sync, sync.found), wait);
  }

  private async startPart(sync: Sync, cursor: SyncRoom, request: SyncRequest): Promise<void> {
    const { room, after, member, state } = cursor;
    if (cursor.denied) {
      sync.found.set(room, { answer: roomNotFound(), presence: undefined });
      sync.urgent = true;
      return;
    }
    if (after === undefined) return this.joinPart(sync, cursor, request);
    if (sync.done) return;
    const part = this.waiter(this.acquire(room), (result, progress) => this.partAnswered(sync, part, result, progress), '');
    part.sync = sync;
    part.state = state;
    sync.parts.push(part);
    // Parts have no timer of their own (the sync has), so any hold will do that is not 0.
    const poll: PollRequest = { room, after, epoch: cursor.epoch, limit: request.limit, timeoutMs: 1, member, user: request.user };
    await this.start(part, poll, request.timeoutMs).catch((err: unknown) => this.fail(part, err));
  }

  /** A room joined by a sync: its tail and presence, reported at once. */
  private async joinPart(sync: Sync, cursor: SyncRoom, request: SyncRequest): Promise<void> {
    const { room, member, state } = cursor;
    sync.urgent = true;
    if (member !== undefined && !isMember(await this.store.readRoom(room), member)) {
      sync.found.set(room, { answer: roomNotFound(), presence: undefined });
      return;
    }
    if (request.user) this.options.online?.hold(room, request.user, 0)();
    const [tail, snapshot] = await Promise.all([this.store.readTail(room, request.limit), this.store.readPresence(room, this.now(), PRESENCE_LIST_LIMIT)]);
    const presence = presenceView(snapshot);
    sync.found.set(room, { answer: tailAnswer(room, tail, false), presence: presence.state === state ? undefined : presence });
  }

  /** A part's answer: reported at once once the sync is parked, collected while it starts. */
  private partAnswered(sync: Sync, part: Waiter, result: PollAnswer | Error, progress: WakeProgress | undefined): void {
    if (sync.done) return;
    const { room } = part.entry;
    sync.urgent = true;
    if (result instanceof ChatError && result.code === 'not_found') sync.found.set(room, { answer: result, presence: undefined });
    else if (result instanceof Error) return this.endSync(sync, result);
    // Only a hub closing answers a part as timed out: the sync ends as if its own timeout fired.
    else if (result.outcome === 'timeout') return this.endSync(sync, sync.found);
    else sync.found.set(room, { answer: result, presence: this.changedPresence(part) });
    if (!sync.starting) this.endSync(sync, sync.found, progress);
  }

  /** The room's presence as last read, when it differs from what the part's client has. */
  private changedPresence(part: Waiter): PresenceView | undefined {
    const presence = part.entry.presence?.view;
    return part.sync && presence && presence.state !== part.state ? presence : undefined;
  }

  /**
   * A parked part's room has presence lists the client lacks: reported with
   * the cursor's timeout answer once the sync is PRESENCE_FOLD_MS old (at
   * once when the client has no lists at all), unless a message answers it
   * sooner.
   */
  private presenceChanged(part: Waiter, presence: PresenceView): void {
    const sync = part.sync!;
    const group = part.group;
    if (sync.done || !group) return;
    const { room } = part.entry;
    const found = sync.found.get(room);
    if (found?.answer instanceof ChatError) return;
    if (found && found.answer.outcome !== 'timeout') {
      found.presence = presence;
      return;
    }
    group.timeout ??= timeoutAnswer(room, part.epoch, group.after);
    sync.found.set(room, { answer: group.timeout, presence });
    if (part.state === undefined) sync.urgent = true;
    if (sync.starting) return;
    if (sync.urgent) return this.endSync(sync, sync.found);
    this.foldPresence(sync);
  }

  /** Ends a sync, unparking every part, and delivers `result` when given (none when cancelled). */
  private endSync(sync: Sync, result?: SyncResult | Error, progress?: WakeProgress): void {
    if (sync.done) return;
    sync.done = true;
    clearTimeout(sync.timer);
    clearTimeout(sync.foldTimer);
    if (sync.parked) {
      this.parkedCount--;
      if (!sync.inStream) this.parkedSyncs--;
    }
    if (!sync.inStream) this.active--;
    for (const part of sync.parts) this.settle(part);
    if (result) sync.deliver(result, progress);
  }

  /**
   * The way of stores that answer at once: the poll is answered, or parked,
   * before this returns, with no promise in between. Undefined sends it the
   * general way (a read that needs I/O, or a reset, which is rare).
   */
  private pollNow(request: PollRequest, deliver: Deliver): Poll | undefined {
    const { room, after, limit, epoch: cursorEpoch } = request;
    const existing = this.rooms.get(room);
    const entry = existing?.live ? existing : undefined;
    const key = cursorKey(after, limit, cursorEpoch);
    let answer = entry?.answers.get(key);
    let epoch: string;
    if (answer) {
      epoch = answer.body.epoch;
    } else {
      let slice;
      try {
        slice = this.store.readAfterNow!(room, after, limit);
      } catch (err) {
        deliver(err instanceof Error ? err : new Error(String(err)));
        return ANSWERED;
      }
      if (!slice || (cursorEpoch !== undefined && cursorEpoch !== slice.epoch) || after > slice.head) return undefined;
      answer = this.recentAnswers.get(room, after, limit, slice);
      if (!answer) {
        answer = afterAnswer(room, after, slice);
        if (answer) this.recentAnswers.set(room, after, limit, slice, answer);
      }
      if (answer && entry && entry.answers.size < CACHED_ANSWERS_PER_ROOM) entry.answers.set(key, answer);
      epoch = slice.epoch;
    }
    if (!answer && (request.timeoutMs === 0 || this.closing)) answer = timeoutAnswer(room, epoch, after);
    if (answer) {
      if (request.user) this.options.online?.hold(room, request.user, 0)();
      this.options.observer?.answered(answer.outcome, 1);
      deliver(answer);
      return ANSWERED;
    }
    this.active++;
    // The store's subscription is active at once, so parking right after the read leaves no gap.
    const waiter = this.waiter(this.acquire(room), deliver, epoch);
    if (request.user) waiter.release = this.options.online?.hold(room, request.user, request.timeoutMs);
    this.park(waiter, request);
    return waiter;
  }

  /** A poll in the hub, with every field it will ever have, so that all waiters share one object shape. */
  private waiter(entry: RoomEntry, deliver: Deliver, epoch: string): Waiter {
    const waiter: Waiter = {
      entry,
      deliver,
      done: false,
      group: undefined,
      timer: undefined,
      epoch,
      member: undefined,
      sync: undefined,
      state: undefined,
      release: undefined,
      cancel: () => this.settle(waiter),
    };
    return waiter;
  }

  /** `holdMs`: how long the poll may be held, for the user's online time (a part's own timeout is not its hold). */
  private async start(waiter: Waiter, request: PollRequest, holdMs = request.timeoutMs): Promise<void> {
    const { entry } = waiter;
    await entry.ready;
    if (waiter.done) return;
    const signalsBefore = entry.signals;
    if (request.member !== undefined) {
      if (!isMember(await this.store.readRoom(request.room), request.member)) return this.fail(waiter, roomNotFound());
      if (waiter.done) return;
      waiter.member = request.member;
    }
    // Only once the membership is known: a user is never shown in a private room they may not read.
    if (request.user) waiter.release = this.options.online?.hold(request.room, request.user, holdMs);
    const presence = waiter.sync ? await this.presenceOf(entry).read(entry.signals) : undefined;
    if (waiter.done) return;
    const { answer, epoch } = await this.resolve(request.room, request.after, request.epoch, request.limit);
    if (waiter.done) return;
    if (answer) return this.answer(waiter, answer);
    waiter.epoch = epoch;
    if (request.timeoutMs === 0 || this.closing) {
      return this.answer(waiter, timeoutAnswer(request.room, epoch, request.after));
    }
    this.park(waiter, request);
    if (presence && presence.state !== waiter.state) this.presenceChanged(waiter, presence);
    // A signal that arrived while the store was being read found this poll not
    // yet parked; the read may have missed what it announced.
    if (entry.signals !== signalsBefore) this.schedule(entry);
  }

  /** Reads what a cursor should get now: an answer, or nothing yet (with the store's epoch). */
  private async resolve(
    room: string,
    after: number,
    epoch: string | undefined,
    limit: number,
  ): Promise<{ answer?: PollAnswer; epoch: string }> {
    const slice = this.store.readAfterNow?.(room, after, limit) ?? (await this.store.readAfter(room, after, limit));
    if ((epoch !== undefined && epoch !== slice.epoch) || after > slice.head) {
      const tail = await this.store.readTail(room, limit);
      return { answer: tailAnswer(room, tail, true), epoch: tail.epoch };
    }
    return { answer: afterAnswer(room, after, slice), epoch: slice.epoch };
  }

  private park(waiter: Waiter, request: PollRequest): void {
    const { groups } = waiter.entry;
    const key = cursorKey(request.after, request.limit, request.epoch);
    let group = groups.get(key);
    if (!group) {
      group = { key, after: request.after, epoch: request.epoch, limit: request.limit, waiters: new Set(), timeout: undefined };
      groups.set(key, group);
    }
    group.waiters.add(waiter);
    waiter.group = group;
    if (waiter.member !== undefined) waiter.entry.gated.add(waiter);
    if (waiter.sync) {
      waiter.entry.watchers.add(waiter);
      return;
    }
    waiter.timer = setTimeout(() => this.expire(waiter), request.timeoutMs);
    this.parkedCount++;
  }

  private expire(waiter: Waiter): void {
    const group = waiter.group;
    if (!group) return;
    group.timeout ??= timeoutAnswer(waiter.entry.room, waiter.epoch, group.after);
    this.answer(waiter, group.timeout);
  }

  /**
   * Ends a poll's life in the hub: unparks it and releases its room. False if
   * it had already ended. `gone`: the user may no longer read the room.
   */
  private settle(waiter: Waiter, gone = false): boolean {
    if (waiter.done) return false;
    waiter.done = true;
    if (!waiter.sync) this.active--;
    waiter.release?.(gone);
    const group = waiter.group;
    if (group) {
      clearTimeout(waiter.timer);
      group.waiters.delete(waiter);
      if (group.waiters.size === 0) waiter.entry.groups.delete(group.key);
      waiter.entry.gated.delete(waiter);
      waiter.entry.watchers.delete(waiter);
      waiter.group = undefined;
      if (!waiter.sync) this.parkedCount--;
    }
    this.release(waiter.entry);
    return true;
  }

  private answer(waiter: Waiter, answer: PollAnswer): void {
    if (!this.settle(waiter)) return;
    this.options.observer?.answered(answer.outcome, 1);
    waiter.deliver(answer);
  }

  private fail(waiter: Waiter, err: unknown): void {
    const gone = err instanceof ChatError && err.code === 'not_found';
    if (this.settle(waiter, gone)) waiter.deliver(err instanceof Error ? err : new Error(String(err)));
  }

  private acquire(room: string): RoomEntry {
    const existing = this.rooms.get(room);
    if (existing) {
      existing.users++;
      return existing;
    }
    const entry: RoomEntry = {
      room,
      groups: new Map(),
      gated: new Set(),
      watchers: new Set(),
      presence: undefined,
      users: 1,
      signals: 0,
      signaledAt: 0,
      released: false,
      scheduled: false,
      flushing: false,
      flushAgain: false,
      // A store that answers at once has its subscriptions active at once, too.
      live: this.store.readAfterNow !== undefined,
      answers: new Map(),
      unsubscribe: undefined,
      ready: this.store
        .subscribe(room, () => this.signal(entry))
        .then((unsubscribe) => {
          if (entry.released) return unsubscribe();
          entry.unsubscribe = unsubscribe;
          entry.live = true;
        }),
    };
    // A failed subscription fails the polls waiting on it; the next poll of
    // the room must try again rather than inherit the failure.
    entry.ready.catch(() => {
      if (this.rooms.get(room) === entry) this.rooms.delete(room);
      entry.released = true;
    });
    this.rooms.set(room, entry);
    return entry;
  }

  private release(entry: RoomEntry): void {
    if (--entry.users > 0 || entry.released) return;
    entry.released = true;
    entry.presence?.stop();
    if (this.rooms.get(entry.room) === entry) this.rooms.delete(entry.room);
    entry.unsubscribe?.();
  }

  /** The room's presence, as syncs watching it see it; an entry that ends is one more change of the room. */
  private presenceOf(entry: RoomEntry): RoomPresence {
    return (entry.presence ??= new RoomPresence(this.store, entry.room, this.now, () => {
      if (entry.watchers.size > 0) this.signal(entry);
    }));
  }

  private signal(entry: RoomEntry): void {
    entry.signals++;
    entry.answers.clear();
    if (entry.groups.size > 0) this.schedule(entry);
  }

  private schedule(entry: RoomEntry): void {
    if (entry.scheduled) return;
    entry.scheduled = true;
    entry.signaledAt = performance.now();
    setImmediate(() => void this.flush(entry));
  }

  /**
   * Reads once for every group of the room and answers those with news. All
   * groups, not only those behind the signalled head: after a room starts
   * again (new epoch) the head can be below a parked cursor, which must then
   * get its reset. In the usual case every group is behind anyway.
   */
  private async flush(entry: RoomEntry): Promise<void> {
    entry.scheduled = false;
    if (entry.flushing) {
      entry.flushAgain = true;
      return;
    }
    entry.flushing = true;
    try {
      do {
        entry.flushAgain = false;
        const since = entry.signaledAt;
        if (entry.gated.size > 0) await this.checkMembers(entry);
        const presence = entry.watchers.size > 0 ? await this.readWatched(entry) : undefined;
        await Promise.all([...entry.groups.values()].map((group) => this.wake(entry, group, since)));
        // Parts that messages did not answer: their lists alone, if changed.
        if (presence) for (const part of entry.watchers) if (part.state !== presence.state) this.presenceChanged(part, presence);
      } while (entry.flushAgain);
    } finally {
      entry.flushing = false;
    }
  }

  /** The presence for a flush; a failed read ends the parts watching it with the error. */
  private async readWatched(entry: RoomEntry): Promise<PresenceView | undefined> {
    try {
      return await this.presenceOf(entry).read(entry.signals);
    } catch (err) {
      for (const part of entry.watchers) this.fail(part, err);
      return undefined;
    }
  }

  /**
   * Ends the polls of users no longer members of the room with `not_found`:
   * the signal may have been a change of members. One read of the room's
   * record, only for rooms with such polls.
   */
  private async checkMembers(entry: RoomEntry): Promise<void> {
    let record;
    try {
      record = await this.store.readRoom(entry.room);
    } catch (err) {
      for (const waiter of entry.gated) this.fail(waiter, err);
      return;
    }
    for (const waiter of entry.gated) {
      if (!isMember(record, waiter.member!)) this.fail(waiter, roomNotFound());
    }
  }

  /**
   * Answers a group: one no larger than the wake slice at once, a larger one
   * a slice at a time with the event loop let in between. A post that lands
   * meanwhile reaches the rest of the group in the same answer, so a busy
   * room with many listeners needs fewer requests per message. A lone
   * message pays little for it as long as the transport holds back the
   * re-polls of the clients answered first (WakeProgress); otherwise they are
   * read between the slices and delay the last ones.
   */
  private async wake(entry: RoomEntry, group: Group, since: number): Promise<void> {
    let answer = await this.groupAnswer(entry, group);
    if (!answer || group.waiters.size === 0) return;
    const slice = (this.options.wakeSlice ?? DEFAULT_WAKE_SLICE) || Infinity;
    const resumes: (() => void)[] = [];
    const progress: WakeProgress | undefined = group.waiters.size > slice ? { whenDone: (resume) => resumes.push(resume) } : undefined;
    let signals = entry.signals;
    let answered = 0;
    try {
      for (const waiter of group.waiters) {
        if (this.settle(waiter)) waiter.deliver(answer, progress);
        if (++answered < slice || group.waiters.size === 0) continue;
        this.options.observer?.answered(answer.outcome, answered);
        answered = 0;
        await new Promise((resolve) => setImmediate(resolve));
        if (entry.signals === signals) continue;
        signals = entry.signals;
        answer = await this.groupAnswer(entry, group);
        // The read failed (and failed the rest), or the signal brought this cursor nothing new (the rest stays parked).
        if (!answer) return;
      }
    } finally {
      for (const resume of resumes) resume();
    }
    this.options.observer?.answered(answer.outcome, answered);
    this.options.observer?.woke((performance.now() - since) / 1000);
  }

  /** Reads a group's answer; a failed read ends every poll of the group with the error. */
  private async groupAnswer(entry: RoomEntry, group: Group): Promise<PollAnswer | undefined> {
    try {
      return (await this.resolve(entry.room, group.after, group.epoch, group.limit)).answer;
    } catch (err) {
      for (const waiter of group.waiters) this.fail(waiter, err);
      return undefined;
    }
  }

  /**
   * Stops taking polls and answers every parked one at once as if its timeout
   * fired, so that clients reconnect elsewhere. Returns how many were answered.
   */
  close(): number {
    this.closing = true;
    let answered = 0;
    for (const entry of [...this.rooms.values()]) {
      for (const group of [...entry.groups.values()]) {
        for (const waiter of group.waiters) {
          this.expire(waiter);
          answered++;
        }
      }
    }
    return answered;
  }
}
