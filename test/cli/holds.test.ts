// The hold chosen after syncs cut early by something on the path: twice at
// about the same time T gives max(5, T - 5); a single cut or cuts at very
// different times change nothing; long quiet runs try the full hold again.
import { describe, expect, it } from 'vitest';
import { Holds } from '../../src/cli/holds.js';

describe('Holds', () => {
  it('holds 25 s until two cuts at about the same time', () => {
    const holds = new Holds(() => {});
    expect(holds.current()).toBe(25);
    holds.cut(20.2);
    expect(holds.current()).toBe(25);
    holds.cut(20.4);
    expect(holds.current()).toBe(15);
  });

  it('never asks for less than 5 s', () => {
    const holds = new Holds(() => {});
    holds.cut(6);
    holds.cut(6.1);
    expect(holds.current()).toBe(5);
  });

  it('ignores cuts at unrelated times', () => {
    const holds = new Holds(() => {});
    holds.cut(4);
    holds.cut(19);
    expect(holds.current()).toBe(25);
  });

  it('tries the full hold again after many syncs that ran their whole shorter hold', () => {
    const holds = new Holds(() => {});
    holds.cut(20);
    holds.cut(20);
    for (let i = 0; i < 19; i++) holds.answered(15, true);
    expect(holds.current()).toBe(15);
    holds.answered(15, true);
    expect(holds.current()).toBe(25);
  });
});
