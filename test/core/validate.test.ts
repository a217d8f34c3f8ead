import { describe, expect, it } from 'vitest';
import { checkDraft, checkRoom } from '../../src/core/validate.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('checkRoom', () => {
  it('accepts the protocol alphabet up to 64 characters, case-sensitively as given', () => {
    expect(checkRoom('Lobby_2-x')).toBe('Lobby_2-x');
    expect(checkRoom('a'.repeat(64))).toHaveLength(64);
  });
  it.each(['', 'a b', 'a/b', 'é', 'a'.repeat(65), 'room.1'])('refuses %j', (room) => {
    expect(codeOf(() => checkRoom(room))).toBe('invalid_room');
  });
});

describe('checkDraft', () => {
  const ok = { author: 'ann', text: 'hi' };

  it('keeps text exactly as sent, newlines, tabs and CRLF included', () => {
    const text = '  two\n\tlines\r\nand more  ';
    expect(checkDraft({ ...ok, text }, 4000)).toEqual({ author: 'ann', text });
  });

  it('counts code points, not UTF-16 units', () => {
    expect(checkDraft({ ...ok, text: '👋'.repeat(10) }, 10).text).toHaveLength(20);
    expect(codeOf(() => checkDraft({ ...ok, text: '👋'.repeat(11) }, 10))).toBe('invalid_text');
    expect(checkDraft({ ...ok, author: '😀'.repeat(64) }, 10).author).toHaveLength(128);
    expect(codeOf(() => checkDraft({ ...ok, author: '😀'.repeat(65) }, 10))).toBe('invalid_author');
  });

  it.each([
    [{ author: 'ann' }, 'invalid_text'],
    [{ ...ok, text: 5 }, 'invalid_text'],
    [{ ...ok, text: '' }, 'invalid_text'],
    [{ ...ok, text: ' \n\t\u00a0\u3000' }, 'invalid_text'],
    [{ ...ok, text: 'bell\u0007' }, 'invalid_text'],
    [{ ...ok, text: 'lone\rcr' }, 'invalid_text'],
    [{ ...ok, text: 'half \ud800 pair' }, 'invalid_text'],
    [{ text: 'hi' }, 'invalid_author'],
    [{ ...ok, author: '' }, 'invalid_author'],
    [{ ...ok, author: 'a\nb' }, 'invalid_author'],
    [{ ...ok, author: 'c1\u0085' }, 'invalid_author'],
    [{ ...ok, author: ['ann'] }, 'invalid_author'],
    [{ ...ok, clientMsgId: null }, 'invalid_client_msg_id'],
    [{ ...ok, clientMsgId: 'has space' }, 'invalid_client_msg_id'],
    [{ ...ok, clientMsgId: 'x'.repeat(65) }, 'invalid_client_msg_id'],
    [null, 'invalid_body'],
    [['text'], 'invalid_body'],
    ['text=hi', 'invalid_body'],
  ])('refuses %j with %s', (body, code) => {
    expect(codeOf(() => checkDraft(body, 4000))).toBe(code);
  });

  it('passes a valid clientMsgId through', () => {
    expect(checkDraft({ ...ok, clientMsgId: 'abc-DEF_123' }, 4000).clientMsgId).toBe('abc-DEF_123');
  });
});
