import { describe, expect, it } from 'vitest';
import { afterAnswer, type PollAnswer } from '../../src/core/answer.js';
import { RecentAnswers } from '../../src/core/recent-answers.js';
import type { Message, Slice } from '../../src/core/types.js';

const message = (seq: number, text = `m${seq}`): Message => ({ seq, id: `id${seq}`, room: 'r', author: 'ann', text, ts: seq });

/** A room holding seqs oldest..head, read after `after`. */
function slice(after: number, head: number, { oldest = 1, epoch = 'e1', text }: { oldest?: number; epoch?: string; text?: string } = {}): Slice {
  const messages: Message[] = [];
  for (let seq = Math.max(after + 1, oldest); seq <= head; seq++) messages.push(message(seq, text));
  return { epoch, head, oldest, messages };
}

const answer = (s: Slice, after: number): PollAnswer => afterAnswer('r', after, s)!;

describe('RecentAnswers', () => {
  it('gives a kept answer back while the room is in the same state, and drops it when head, oldest or epoch moves', () => {
    const recent = new RecentAnswers();
    const at = slice(0, 2);
    const kept = answer(at, 0);
    recent.set('r', 0, 100, at, kept);
    expect(recent.get('r', 0, 100, slice(0, 2))).toBe(kept);
    expect(recent.get('r', 0, 50, slice(0, 2))).toBeUndefined();
    expect(recent.get('r', 1, 100, slice(1, 2))).toBeUndefined();
    expect(recent.get('r2', 0, 100, slice(0, 2))).toBeUndefined();
    expect(recent.get('r', 0, 100, slice(0, 3))).toBeUndefined();
    expect(recent.get('r', 0, 100, slice(0, 2, { oldest: 2 }))).toBeUndefined();
    expect(recent.get('r', 0, 100, slice(0, 2, { epoch: 'e2' }))).toBeUndefined();
  });

  it('forgets a room\'s older answers once it is seen in a newer state', () => {
    const recent = new RecentAnswers();
    recent.set('r', 0, 100, slice(0, 2), answer(slice(0, 2), 0));
    const newer = slice(1, 3);
    recent.set('r', 1, 100, newer, answer(newer, 1));
    // Back at the first state (a replayed read): the old answer must not come back as current.
    expect(recent.get('r', 0, 100, slice(0, 2))).toBeUndefined();
    expect(recent.get('r', 1, 100, slice(1, 3))).toBeDefined();
  });

  it('keeps a few cursors per room, a bounded number of rooms, and no answer too large to share', () => {
    const recent = new RecentAnswers();
    for (let after = 0; after < 10; after++) recent.set('r', after, 100, slice(after, 20), answer(slice(after, 20), after));
    const kept = Array.from({ length: 10 }, (_, after) => recent.get('r', after, 100, slice(after, 20)) !== undefined);
    expect(kept.filter(Boolean).length).toBe(4);

    for (let i = 0; i < 1000; i++) recent.set(`room${i}`, 0, 100, slice(0, 1), answer(slice(0, 1), 0));
    expect(recent.get('room0', 0, 100, slice(0, 1))).toBeUndefined();
    expect(recent.get('room999', 0, 100, slice(0, 1))).toBeDefined();

    const huge = slice(0, 100, { text: 'x'.repeat(4000) });
    recent.set('big', 0, 100, huge, answer(huge, 0));
    expect(recent.get('big', 0, 100, huge)).toBeUndefined();
  });
});
