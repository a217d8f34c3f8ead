import { ChatError } from './errors.js';
import type { Draft, User } from './types.js';

const ROOM = /^[A-Za-z0-9_-]{1,64}$/;
/** A user id (protocol "Identity"): the same alphabet as room names. */
export const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Private rooms (protocol "Private rooms"): only their members may use them; `p_` alone too. */
const PRIVATE_ROOM = /^(?:p|dm)_[A-Za-z0-9_-]{0,61}$/;
const CLIENT_MSG_ID = /^[A-Za-z0-9_-]{1,64}$/;
// C0 and C1 controls and DEL: an author is a single line of visible text.
const AUTHOR_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]/;
// Text may hold newlines and tabs; a CR is accepted only as part of CRLF,
// because HTML forms submit a textarea's line breaks as CRLF.
const TEXT_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]|\r(?!\n)/;
const ONLY_WHITESPACE = /^\s*$/u;

export const MAX_AUTHOR_LENGTH = 64;

export function checkRoom(room: string): string {
  if (!ROOM.test(room)) {
    throw new ChatError('invalid_room', 'room must be 1-64 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  return room;
}

/** True for a valid room name of a private room (`p_…` or `dm_…`). */
export function isPrivateRoom(room: string): boolean {
  return PRIVATE_ROOM.test(room);
}

/** Counts Unicode code points, as the protocol's lengths do, stopping early past `max`. */
function codePointsExceed(s: string, max: number): boolean {
  if (s.length <= max) return false;
  if (s.length > max * 2) return true;
  let n = 0;
  for (const _ of s) if (++n > max) return true;
  return false;
}

/**
 * What is wrong with a display name (a message's author, a user's name), as
 * the end of a sentence starting with the field's name; undefined when
 * nothing is.
 */
export function authorProblem(name: string): string | undefined {
  if (name.length === 0 || codePointsExceed(name, MAX_AUTHOR_LENGTH)) return `must be 1-${MAX_AUTHOR_LENGTH} characters`;
  if (AUTHOR_FORBIDDEN.test(name) || !name.isWellFormed()) return 'must not contain control characters';
  return undefined;
}

/**
 * Turns a parsed request body (JSON or form) into a Draft, or throws the
 * error a client needs to fix it. With a signed-in `sender` the author is
 * theirs and the body's `author` is ignored (protocol "Identity"); without
 * one the body must name it (anonymous posting, v1).
 */
export function checkDraft(body: unknown, maxTextLength: number, sender?: User): Draft {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ChatError('invalid_body', sender ? 'body must be an object with "text"' : 'body must be an object with "text" and "author"');
  }
  const { text, clientMsgId } = body as Record<string, unknown>;
  const author = sender ? sender.name : (body as Record<string, unknown>).author;

  if (typeof author !== 'string') {
    throw new ChatError('invalid_author', author === undefined ? '"author" is required' : '"author" must be a string');
  }
  const problem = sender ? undefined : authorProblem(author);
  if (problem) throw new ChatError('invalid_author', `"author" ${problem}`);

  if (typeof text !== 'string') {
    throw new ChatError('invalid_text', text === undefined ? '"text" is required' : '"text" must be a string');
  }
  if (codePointsExceed(text, maxTextLength)) {
    throw new ChatError('invalid_text', `"text" must be at most ${maxTextLength} characters`);
  }
  if (ONLY_WHITESPACE.test(text)) {
    throw new ChatError('invalid_text', '"text" must not be empty or only whitespace');
  }
  if (TEXT_FORBIDDEN.test(text)) {
    throw new ChatError('invalid_text', '"text" must not contain control characters other than newline and tab');
  }
  if (!text.isWellFormed()) {
    throw new ChatError('invalid_text', '"text" must be valid Unicode (no lone surrogates)');
  }

  const draft: Draft = sender ? { author, authorId: sender.id, text } : { author, text };
  if (clientMsgId === undefined) return draft;
  if (typeof clientMsgId !== 'string' || !CLIENT_MSG_ID.test(clientMsgId)) {
    throw new ChatError('invalid_client_msg_id', '"clientMsgId" must be 1-64 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  draft.clientMsgId = clientMsgId;
  return draft;
}
