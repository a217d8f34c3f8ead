import type { PollAnswer } from './answer.js';
import type { ChatError } from './errors.js';
import type { PresenceView } from './presence.js';
import type { User } from './types.js';
import type { WakeProgress } from './poll-hub.js';

/** One room of a sync, as the hub takes it (protocol "One poll for many rooms"). */
export interface SyncRoom {
  room: string;
  /** The cursor's last seq seen; absent joins the room (its tail, always reported). */
  after?: number;
  /** The cursor's epoch; absent trusts `after` as is. */
  epoch?: string;
  /** The room's presence state the client last received; absent when it has none (the lists are then reported at once). */
  state?: string;
  /** The user whose stored membership of this private room the sync rests on (PollRequest.member). */
  member?: string;
  /** The caller may not read the room: reported as not_found at once. */
  denied?: boolean;
}

export interface SyncRequest {
  /** Each room once. */
  rooms: readonly SyncRoom[];
  /** Messages per room at most. */
  limit: number;
  /** How long to hold the sync when no room has anything; 0 answers at once. */
  timeoutMs: number;
  /** The signed-in caller: online in every room read while the sync is held (protocol "Presence and typing"). */
  user?: User;
}

/**
 * What one room of a sync reports: its v1 answer (a presence-only report
 * carries the cursor's timeout answer: no messages, `last` = the cursor),
 * or the not_found error that closes it to the caller; and the room's
 * presence lists when they differ from the state the client sent.
 */
export interface RoomReport {
  answer: PollAnswer | ChatError;
  presence: PresenceView | undefined;
}

/** What a sync is answered with: every room that has something to report. Empty when the hold ran out. */
export type SyncResult = Map<string, RoomReport>;

/**
 * Receives a sync's result, or the error that ended it (the store failing); called at most once.
 * `progress` comes with a result given in the middle of a sliced wake-up (see WakeProgress).
 */
export type DeliverSync = (result: SyncResult | Error, progress?: WakeProgress) => void;
