/** Texts every scorer must survive with a finite score in range (shared by the scorer tests). */
import { expect } from 'vitest';
import type { SentimentScore } from '../../rewards/types.ts';

export const BAD_INPUTS: string[] = [
  '',
  '   \n\t ',
  'x'.repeat(100_000),
  'This is wonderful. '.repeat(6000),
  'Das ist wirklich sehr schlecht und traurig.',
  '这部电影非常好看',
  'Это ужасно',
  '😀😀😀🎉',
  '\ud800\ud800 lone high surrogates \udc00 and a lone low one',
  'ab\ud83d',
  '\u0000\u0001\u0002',
  '!!!???...',
];

export function expectValidScores(scores: SentimentScore[], n: number): void {
  expect(scores).toHaveLength(n);
  for (const s of scores) {
    expect(Number.isFinite(s.score)).toBe(true);
    expect(Number.isFinite(s.signed)).toBe(true);
    expect(s.score).toBeGreaterThanOrEqual(0);
    expect(s.score).toBeLessThanOrEqual(1);
    expect(s.signed).toBeGreaterThanOrEqual(-1);
    expect(s.signed).toBeLessThanOrEqual(1);
  }
}
