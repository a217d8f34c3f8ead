/** A chat message as stored and as sent on the wire. */
export interface Message {
  /** 1 for a room's first message, then +1 for each: no gaps, no reuse. */
  seq: number;
  /** Server-generated unique id. */
  id: string;
  room: string;
  author: string;
  /** The signed-in sender's user id (protocol "Identity"); absent on anonymous posts. */
  authorId?: string;
  text: string;
  /** Server time of acceptance, ms since the Unix epoch. */
  ts: number;
  /** Echoed when the sender supplied one. */
  clientMsgId?: string;
}

/** What a sender supplies; already validated when it reaches a store. */
export interface Draft {
  author: string;
  /** Set when the sender is signed in; stored and returned with the message. */
  authorId?: string;
  text: string;
  clientMsgId?: string;
}

export interface AppendResult {
  message: Message;
  /** True when `clientMsgId` matched an earlier message, which is returned instead. */
  duplicate: boolean;
}

/** A room's position, all read at one instant. */
export interface RoomState {
  /** Names the lifetime of the room's sequence; see Store.epoch semantics. */
  epoch: string;
  /** Newest seq, 0 when the room has no messages. */
  head: number;
  /** Oldest retained seq, 0 when none is retained. */
  oldest: number;
}

/** Messages read from a room, with the room's state at the same instant. */
export interface Slice extends RoomState {
  /** Oldest first. */
  messages: Message[];
}

/**
 * A person (protocol "Identity"): `id` (`^[A-Za-z0-9_-]{1,64}$`) identifies
 * them; `name` is a display name with the rules of a message's author, and
 * two users may share one.
 */
export interface User {
  id: string;
  name: string;
}

/**
 * A private room (`p_…` or `dm_…`, protocol "Private rooms") as stored: its
 * owner is also a member; `members` are in the order they joined, owner
 * first while the owner stays.
 */
export interface RoomRecord {
  room: string;
  /** What the members call the room; '' when none was given. */
  title: string;
  owner: User;
  members: User[];
}

/**
 * Who is online and typing in a room at one instant (protocol "Presence and
 * typing"). Lists are ordered by user id (code unit order) and cut at the
 * limit the reader asked for.
 */
export interface PresenceSnapshot {
  online: User[];
  /** Users online in all, also past the limit. */
  onlineCount: number;
  typing: User[];
  /**
   * The earliest time (ms since the epoch) at which an entry read here
   * ends, or undefined when none was read: until then the lists change only
   * with a change signal.
   */
  nextExpiry: number | undefined;
}
