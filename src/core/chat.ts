import { beforeAnswer, tailAnswer, type PollAnswer } from './answer.js';
import { ChatError } from './errors.js';
import { PollHub, type Deliver, type HubObserver, type Poll, type PollRequest } from './poll-hub.js';
import type { Store } from './store.js';
import type { AppendResult, RoomState } from './types.js';
import { checkDraft, checkRoom } from './validate.js';

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
}

export interface ChatObserver extends HubObserver {
  /** A message was stored (not counting duplicates). */
  accepted(): void;
}

/**
 * The chat service with no transport in it: what any front end (HTTP long
 * poll today, others later) calls to post, read and wait for messages.
 */
export class Chat {
  private readonly hub: PollHub;
  private closing = false;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: ChatOptions,
  ) {
    this.hub = new PollHub(store, {
      capacity: options.capacity,
      retryAfter: options.retryAfter,
      observer: options.observer,
      wakeSlice: options.wakeSlice,
    });
    this.now = options.now ?? Date.now;
  }

  /** Polls currently held waiting for a message. */
  get parked(): number {
    return this.hub.parked;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Throws `shutting_down` once shutdown has begun. */
  assertOpen(): void {
    if (this.closing) throw new ChatError('shutting_down', 'server is shutting down', this.options.retryAfter);
  }

  /** Validates and stores a message; a known `clientMsgId` returns the original. */
  async post(room: string, body: unknown): Promise<AppendResult> {
    this.assertOpen();
    checkRoom(room);
    const draft = checkDraft(body, this.options.maxTextLength);
    const result = await this.store.append(room, draft, this.now());
    if (!result.duplicate) this.options.observer?.accepted();
    return result;
  }

  /** The room's newest messages and the cursor to poll from: how a client joins. */
  async join(room: string, limit: number): Promise<PollAnswer> {
    this.assertOpen();
    checkRoom(room);
    const answer = tailAnswer(room, await this.store.readTail(room, limit), false);
    this.options.observer?.answered(answer.outcome, 1);
    return answer;
  }

  /** History just before seq `before`; a cursor from another epoch gets the reset tail instead. */
  async page(room: string, before: number, limit: number, epoch?: string): Promise<PollAnswer> {
    this.assertOpen();
    checkRoom(room);
    const slice = await this.store.readBefore(room, before, limit);
    const answer =
      epoch !== undefined && epoch !== slice.epoch
        ? tailAnswer(room, await this.store.readTail(room, limit), true)
        : beforeAnswer(room, slice);
    this.options.observer?.answered(answer.outcome, 1);
    return answer;
  }

  /** Starts a long poll; see PollHub.poll. */
  poll(request: PollRequest, deliver: Deliver): Poll {
    this.assertOpen();
    checkRoom(request.room);
    return this.hub.poll(request, deliver);
  }

  async info(room: string): Promise<{ room: string } & RoomState> {
    this.assertOpen();
    checkRoom(room);
    const { epoch, head, oldest } = await this.store.info(room);
    return { room, epoch, head, oldest };
  }

  /** Resolves when the store answers; rejects otherwise. */
  ping(): Promise<void> {
    return this.store.ping();
  }

  /**
   * Refuses new work and answers every parked poll at once. Returns how many
   * polls were answered. The store stays open for the caller to close.
   */
  shutdown(): number {
    this.closing = true;
    return this.hub.close();
  }
}
