/**
 * One list of metric keys (agents/metrics.ts): every key in one namespace style, and the trainers
 * and their readers name no metric key of their own (a key typed twice can drift apart: one side
 * renamed, a curve silently empty).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { METRICS, METRIC_KEYS, METRIC_NAMESPACES, UPDATE_KEY } from '../../agents/metrics.ts';
import { CURVE_KEYS } from '../../agents/rl/curves.ts';
import { KL_KEYS, REWARD_KEYS } from '../../server/dashboard/runs.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

describe('metric keys', () => {
  it('are unique and all in one namespace style: env/ objective/ policy/ losses/ charts/, snake_case', () => {
    expect(new Set(METRIC_KEYS).size).toBe(METRIC_KEYS.length);
    const re = new RegExp(`^(${METRIC_NAMESPACES.join('|')})/[a-z][a-z0-9_]*$`);
    for (const k of METRIC_KEYS) expect(k).toMatch(re);
    expect(UPDATE_KEY).toBe('update');
  });

  it('the curves and the dashboard plot keys of the list', () => {
    for (const k of CURVE_KEYS) expect(METRIC_KEYS).toContain(k);
    expect(REWARD_KEYS[0]).toBe(METRICS.rewardMean);
    expect(KL_KEYS[0]).toBe(METRICS.kl);
  });

  it('the trainers and their readers take every key from the list (no key spelled out in them)', () => {
    const files = [
      ...readdirSync(path.join(PROJECT_ROOT, 'agents', 'rl')).filter(f => f.endsWith('.ts')).map(f => path.join('agents', 'rl', f)),
      'agents/batch-kl.ts', 'agents/eval/experiment.ts', 'cli/train.ts', 'cli/train-batch-kl.ts', 'bench/train.ts',
    ];
    // A quoted 'namespace/name' in any namespace a metric used or uses (old ones included).
    const literal = /['"`](env|objective|policy|losses?|charts|time|dialog|kl_budget|val)\/[a-z][a-z0-9_]*['"`]/g;
    for (const f of files) {
      // Comments may name keys (they explain them); code may not.
      const code = readFileSync(path.join(PROJECT_ROOT, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
      const hits = code.match(literal) ?? [];
      expect(hits, f).toEqual([]);
    }
  });
});
