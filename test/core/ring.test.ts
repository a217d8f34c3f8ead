// Ring: a bounded FIFO whose memory follows what it holds, not its capacity.
import { describe, expect, it } from 'vitest';
import { Ring } from '../../src/core/ring.js';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('Ring', () => {
  it('keeps the newest items up to its capacity, dropping and returning the oldest', () => {
    const ring = new Ring<number>(3);
    expect(ring.push(1)).toBeUndefined();
    expect(ring.push(2)).toBeUndefined();
    expect(ring.push(3)).toBeUndefined();
    expect(ring.slice(0, 3)).toEqual([1, 2, 3]);
    expect(ring.push(4)).toBe(1);
    expect(ring.push(5)).toBe(2);
    expect(ring.size).toBe(3);
    expect(ring.slice(0, 3)).toEqual([3, 4, 5]);
    expect(ring.slice(1, 10)).toEqual([4, 5]);
    expect(ring.slice(-2, 1)).toEqual([3]);
    expect(ring.slice(2, 2)).toEqual([]);
  });

  it('keeps order while it grows, once full, and after wrapping many times', () => {
    const ring = new Ring<number>(1000);
    for (let i = 0; i < 700; i++) ring.push(i);
    expect(ring.slice(0, 1000)).toEqual(range(0, 700));
    const dropped: (number | undefined)[] = [];
    for (let i = 700; i < 3500; i++) dropped.push(ring.push(i));
    expect(ring.size).toBe(1000);
    expect(dropped.slice(0, 300)).toEqual(Array(300).fill(undefined));
    expect(dropped.slice(300)).toEqual(range(0, 2500));
    expect(ring.slice(0, 1000)).toEqual(range(2500, 3500));
    expect(ring.slice(990, 1000)).toEqual(range(3490, 3500));
  });

  it('holds an array the size of its items, not of its capacity', () => {
    const ring = new Ring<number>(100_000);
    for (let i = 0; i < 3; i++) ring.push(i);
    expect(ring['items'].length).toBeLessThan(100);
    expect(ring.slice(0, 3)).toEqual([0, 1, 2]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Ring(0)).toThrow(RangeError);
    expect(() => new Ring(1.5)).toThrow(RangeError);
  });
});
