import { describe, it, expect } from 'vitest';
import { discountedReturns, spreadReward, spreadTurnRewards, gae, tokenReturns, whiten } from '../../rewards/returns.ts';

const close = (a: ArrayLike<number>, b: number[], digits = 10) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(a[i]).toBeCloseTo(b[i]!, digits);
};

describe('discountedReturns', () => {
  it('discounts per step', () => {
    close(discountedReturns([1, 0, 2], 0.5), [1 + 0.5 * (0 + 0.5 * 2), 0.5 * 2, 2]);
  });
  it('gamma = 1 sums the rest (Cohen et al.)', () => {
    close(discountedReturns([0, 0.7, 0, 0.2], 1), [0.9, 0.9, 0.2, 0.2]);
  });
  it('bootstraps and stops at dones', () => {
    close(discountedReturns([1, 1], 0.9, { bootstrap: 10 }), [1 + 0.9 * (1 + 9), 1 + 9]);
    close(discountedReturns([1, 1, 1], 0.5, { dones: [0, 1, 0], bootstrap: 4 }), [1.5, 1, 3]);
  });
  it('rejects bad gamma and handles empty input', () => {
    expect(() => discountedReturns([1], 1.5)).toThrow(RangeError);
    expect(discountedReturns([], 0.9).length).toBe(0);
  });
});

describe('spreading utterance rewards over tokens', () => {
  it('last token or uniform', () => {
    close(spreadReward(3, 3, 'last'), [0, 0, 3]);
    close(spreadReward(3, 3, 'uniform'), [1, 1, 1]);
    expect(spreadReward(1, 0).length).toBe(0);
    expect(() => spreadReward(1, -1)).toThrow(RangeError);
  });
  it('concatenates turns and marks turn ends', () => {
    const { rewards, turnEnds } = spreadTurnRewards([1, 2], [2, 3], 'last');
    close(rewards, [0, 1, 0, 0, 2]);
    expect(Array.from(turnEnds)).toEqual([0, 1, 0, 0, 1]);
    const u = spreadTurnRewards([1, 3], [2, 3], 'uniform');
    close(u.rewards, [0.5, 0.5, 1, 1, 1]);
    // The sum of rewards is preserved either way.
    expect(u.rewards.reduce((a, b) => a + b, 0)).toBeCloseTo(4);
  });
  it('an empty turn hands its reward to the previous token', () => {
    const { rewards, turnEnds } = spreadTurnRewards([1, 5], [2, 0]);
    close(rewards, [0, 6]);
    expect(Array.from(turnEnds)).toEqual([0, 1]);
    expect(() => spreadTurnRewards([1], [0])).toThrow(RangeError);
  });
});

describe('gae with turn boundaries', () => {
  it('equals standard GAE when every token is a turn', () => {
    const rewards = [1, 0, 2, -1], values = [0.5, 0.2, 0.1, 0.3];
    const g = 0.9, l = 0.8;
    // Reference: textbook recursion.
    const adv: number[] = [];
    let a = 0, next = 0.4;
    for (let t = 3; t >= 0; t--) {
      const d = rewards[t]! + g * next - values[t]!;
      a = d + g * l * a;
      adv[t] = a;
      next = values[t]!;
    }
    const r = gae({ rewards, values, lastValue: 0.4, gamma: g, lambda: l });
    close(r.advantages, adv);
    close(r.returns, adv.map((x, i) => x + values[i]!));
  });
  it('applies gamma only at turn ends and lambda per token', () => {
    // Two turns of two tokens; reward at the end of each turn; V = 0.
    const r = gae({ rewards: [0, 1, 0, 1], values: [0, 0, 0, 0], turnEnds: [0, 1, 0, 1], gamma: 0.5, lambda: 1 });
    // Token 3: 1; token 2: 1 (no discount inside a turn); token 1: 1 + 0.5·1; token 0: 1.5.
    close(r.returns, [1.5, 1.5, 1, 1]);
    const l = gae({ rewards: [0, 1, 0, 1], values: [0, 0, 0, 0], turnEnds: [0, 1, 0, 1], gamma: 0.5, lambda: 0.5 });
    // With V = 0, δ = r; A_3 = 1, A_2 = 0 + 1·0.5·1 = 0.5, A_1 = 1 + 0.5·0.5·0.5 = 1.125, A_0 = 0.5·1.125.
    close(l.advantages, [0.5625, 1.125, 0.5, 1]);
  });
  it('lambda = 1 and V = 0 gives tokenReturns; lambda = 0 gives one-step TD errors', () => {
    const rewards = [0, 0, 1, 0, 2], turnEnds = [0, 0, 1, 0, 1];
    close(tokenReturns(rewards, turnEnds, 0.9), [1 + 0.9 * 2, 1 + 0.9 * 2, 1 + 0.9 * 2, 2, 2]);
    const values = [0.1, 0.2, 0.3, 0.4, 0.5];
    const r = gae({ rewards, values, turnEnds, gamma: 0.9, lambda: 0, lastValue: 0 });
    close(r.advantages, [0 + 0.2 - 0.1, 0 + 0.3 - 0.2, 1 + 0.9 * 0.4 - 0.3, 0 + 0.5 - 0.4, 2 - 0.5]);
  });
  it('does not flow across a terminated episode, bootstraps a truncated one', () => {
    const r = gae({ rewards: [1, 1], values: [0, 0], dones: [1, 0], lastValue: 5, gamma: 1, lambda: 1 });
    close(r.returns, [1, 6]);
  });
  it('checks lengths', () => {
    expect(() => gae({ rewards: [1, 2], values: [0], gamma: 1, lambda: 1 })).toThrow(RangeError);
    expect(() => gae({ rewards: [1], values: [0], gamma: 1, lambda: 2 })).toThrow(RangeError);
  });
});

describe('whiten', () => {
  it('gives mean 0 and std 1, zeros for constant input', () => {
    const w = whiten([1, 2, 3, 4]);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(0);
    expect(Math.sqrt(w.reduce((a, b) => a + b * b, 0) / 4)).toBeCloseTo(1);
    expect(Array.from(whiten([2, 2, 2]))).toEqual([0, 0, 0]);
  });
});
