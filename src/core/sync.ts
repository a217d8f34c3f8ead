import type { PollAnswer } from './answer.js';
import type { ChatError } from './errors.js';

/** One room of a sync, as the hub takes it (protocol "One poll for many rooms"). */
export interface SyncRoom {
  room: string;
  /** The cursor's last seq seen; absent joins the room (its tail, always reported). */
  after?: number;
  /** The cursor's epoch; absent trusts `after` as is. */
  epoch?: string;
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
}

/**
 * What a sync is answered with: every room that has something to report, with
 * its v1 answer, or the not_found error that closes it to the caller. Empty
 * when the hold ran out.
 */
export type SyncResult = Map<string, PollAnswer | ChatError>;

/** Receives a sync's result, or the error that ended it (the store failing); called at most once. */
export type DeliverSync = (result: SyncResult | Error) => void;
