import type { Message, Slice } from './types.js';

/** How a poll was answered, as counted in the metrics. */
export type Outcome = 'data' | 'timeout' | 'reset' | 'gap';

/** The JSON body of a poll, join or page answer (field order as in the protocol). */
export interface PollBody {
  room: string;
  epoch: string;
  messages: Message[];
  last: number;
  more: boolean;
  reset?: true;
  gap?: true;
}

/**
 * One answer, possibly shared by thousands of polls at the same cursor: it is
 * serialized once, on first use, and the same bytes go to every one of them.
 */
export class PollAnswer {
  private encoded?: Buffer;
  private encodedInSync?: Buffer;

  constructor(
    readonly body: PollBody,
    readonly outcome: Outcome,
  ) {}

  get bytes(): Buffer {
    return (this.encoded ??= Buffer.from(JSON.stringify(this.body)));
  }

  /**
   * The answer as one room of a sync answer, without `room` (protocol "One
   * poll for many rooms"): the same bytes with the leading `"room"` field cut
   * out, not a second serialization.
   */
  get bytesInSync(): Buffer {
    return (this.encodedInSync ??= Buffer.concat([OPEN_BRACE, this.bytes.subarray(Buffer.byteLength(`{"room":${JSON.stringify(this.body.room)},`))]));
  }
}

const OPEN_BRACE = Buffer.from('{');

/**
 * Every body has the same fields in the same order, so that the code handling
 * them sees one object shape; a flag that is off is undefined, which JSON
 * leaves out, as the protocol wants.
 */
function body(room: string, epoch: string, messages: Message[], last: number, more: boolean, reset?: true, gap?: true): PollBody {
  return { room, epoch, messages, last, more, reset, gap };
}

/** The room's newest messages: a join, or a reset when `reset` is set. */
export function tailAnswer(room: string, tail: Slice, reset: boolean): PollAnswer {
  return new PollAnswer(body(room, tail.epoch, tail.messages, tail.head, false, reset || undefined), reset ? 'reset' : 'data');
}

/**
 * What a cursor at `after` gets from a read after it, or undefined when
 * nothing is new and the poll should wait.
 */
export function afterAnswer(room: string, after: number, slice: Slice): PollAnswer | undefined {
  const { messages, head, epoch } = slice;
  const newest = messages[messages.length - 1];
  if (newest) {
    const gap = messages[0]!.seq > after + 1 || undefined;
    return new PollAnswer(body(room, epoch, messages, newest.seq, newest.seq < head, undefined, gap), gap ? 'gap' : 'data');
  }
  // Everything after the cursor has expired: jump to the head, or the client
  // would be told about the same gap again on every poll.
  if (after < head) return new PollAnswer(body(room, epoch, messages, head, false, undefined, true), 'gap');
  return undefined;
}

/** A page of history before a seq; `more` says whether older retained messages exist. */
export function beforeAnswer(room: string, slice: Slice): PollAnswer {
  const { messages, epoch, oldest } = slice;
  const first = messages[0];
  const last = messages[messages.length - 1]?.seq ?? 0;
  return new PollAnswer(body(room, epoch, messages, last, first !== undefined && first.seq > oldest), 'data');
}

/** A held poll that saw nothing new. */
export function timeoutAnswer(room: string, epoch: string, after: number): PollAnswer {
  return new PollAnswer(body(room, epoch, [], after, false), 'timeout');
}
