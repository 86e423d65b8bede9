import { describe, expect, it } from 'vitest';
import { Box, Dict, Discrete, MultiDiscrete, Rng, Text, Tuple, spaceFromJSON, type Space } from '../../env/index.ts';

const spaces: [string, Space][] = [
  ['Discrete', new Discrete(5, 2)],
  ['MultiDiscrete', new MultiDiscrete([2, 3])],
  ['Box', new Box(-1, 1, [2, 3])],
  ['Box unbounded', new Box(-Infinity, Infinity, [4], 'float64')],
  ['Box int', new Box(0, 9, [3], 'int32')],
  ['Text', new Text(12, 1)],
  ['Dict', new Dict({ tokens: new Box(0, 100, [4], 'int32'), timeLeft: new Box(0, 1, [1]), text: new Text(50) })],
  ['Tuple', new Tuple([new Discrete(2), new Text(3)])],
];

describe('spaces', () => {
  it.each(spaces)('%s: samples are members, JSON round trips, sampling is seeded', (_name, space) => {
    const rng = new Rng(3);
    for (let i = 0; i < 50; i++) expect(space.contains(space.sample(rng))).toBe(true);
    const json = JSON.parse(JSON.stringify(space.toJSON()));
    const back = spaceFromJSON(json);
    expect(back.toJSON()).toEqual(space.toJSON());
    expect(JSON.stringify(space.sample(new Rng(9)))).toBe(JSON.stringify(back.sample(new Rng(9))));
  });

  it('rejects non-members with a reason', () => {
    const d = new Discrete(3);
    expect(d.contains(3)).toBe(false);
    expect(d.contains(1.5)).toBe(false);
    expect(d.contains('1')).toBe(false);
    expect(d.explain(7)).toMatch(/not in/);
    const b = new Box(0, 1, [2]);
    expect(b.contains([0.5, 2])).toBe(false);
    expect(b.contains([0.5])).toBe(false);
    expect(b.contains([0.5, Number.NaN])).toBe(false);
    const t = new Text(3, 0, 'ab');
    expect(t.contains('abc')).toBe(false);
    expect(t.contains('abab')).toBe(false);
    expect(t.contains('ab')).toBe(true);
    const dict = new Dict({ a: new Discrete(2) });
    expect(dict.explain({ a: 5 })).toMatch(/^a:/);
    expect(dict.explain({ a: 1, b: 2 })).toMatch(/unexpected keys b/);
    expect(dict.contains({ a: 1 })).toBe(true);
  });

  it('rejects impossible spaces', () => {
    expect(() => new Discrete(0)).toThrow(/positive/);
    expect(() => new Box(1, 0, [1])).toThrow(/low/);
    expect(() => new Box([0, 0], 1, [3])).toThrow(/values/);
    expect(() => new Text(2, 3)).toThrow(/minLength/);
    expect(() => spaceFromJSON({ type: 'Nope' } as never)).toThrow(/unknown space/);
  });

  it('infinite bounds survive JSON', () => {
    // float64: any finite value is inside infinite bounds after the round trip.
    const b = new Box(-Infinity, Infinity, [1], 'float64');
    const back = spaceFromJSON(JSON.parse(JSON.stringify(b.toJSON()))) as Box;
    expect(back.contains([1e300])).toBe(true);
    // float32 (the default dtype) holds values up to ~3.4e38; 1e300 is not a float32 value.
    const b32 = spaceFromJSON(JSON.parse(JSON.stringify(new Box(-Infinity, Infinity, [1]).toJSON()))) as Box;
    expect(b32.contains([Math.fround(3e38)])).toBe(true);
    expect(b32.contains([1e300])).toBe(false);
  });
});

describe('Rng', () => {
  it('is deterministic per seed and roughly uniform', () => {
    const a = new Rng(1), b = new Rng(1), c = new Rng(2);
    const xs = Array.from({ length: 1000 }, () => a.random());
    expect(Array.from({ length: 1000 }, () => b.random())).toEqual(xs);
    expect(c.random()).not.toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(xs.every(x => x >= 0 && x < 1)).toBe(true);
  });
  it('categorical follows the weights', () => {
    const rng = new Rng(5);
    const counts = [0, 0, 0];
    for (let i = 0; i < 6000; i++) counts[rng.categorical([1, 0, 2])]!++;
    expect(counts[1]).toBe(0);
    expect(counts[2]! / counts[0]!).toBeGreaterThan(1.7);
    expect(counts[2]! / counts[0]!).toBeLessThan(2.3);
  });
});
