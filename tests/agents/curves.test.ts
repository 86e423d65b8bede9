import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CURVE_KEYS, curveSvg, curveTable, writeCurves, type MetricLine } from '../../agents/rl/curves.ts';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// Values exact in binary and in vega's labels (12 significant digits).
const LINES: MetricLine[] = Array.from({ length: 6 }, (_, i) => ({
  update: i + 1,
  'env/reward_mean': 0.25 * i,
  'objective/kl_exact': 3 - 0.5 * i,
  'env/empty_teacher_turn_share': i % 2 ? 0.5 : 0.125,
  'policy/entropy': i < 3 ? null : 2,          // a series that starts late
  'env/turns_mean': 'n/a',                     // not a number: no points
}));

/** The (update, value) pairs of every drawn point, from the marks' accessible labels. */
const points = (svg: string) => [...svg.matchAll(/aria-label="update: (\d+); value: ([^"]+)" role="graphics-symbol" aria-roledescription="point"/g)].map(m => `${m[1]}:${m[2]}`).sort();
/** The number of vertices of each line mark's path, in drawing order. */
const lineVertices = (svg: string) => [...svg.matchAll(/aria-roledescription="line mark" d="M([^"]*)"/g)].map(m => m[1]!.split('L').length);

describe('learning curves', () => {
  it('draws one panel per metric and every finite value of each series as a point on its line', async () => {
    const svg = await curveSvg(LINES, CURVE_KEYS, 'run-x');
    expect(svg.startsWith('<svg')).toBe(true);
    const titles = [...svg.matchAll(/aria-label="Title text '([^']+)'"/g)].map(m => m[1]);
    expect(titles).toEqual([...CURVE_KEYS, 'run-x']); // vega draws the figure's title last
    const expected: string[] = [];
    for (const l of LINES) {
      for (const k of CURVE_KEYS) if (typeof l[k] === 'number') expected.push(`${l.update}:${l[k]}`);
    }
    expect(points(svg)).toEqual(expected.sort());
    // One line per series with data, through all its points: reward, KL, empty share (6 updates), entropy (3).
    expect(lineVertices(svg)).toEqual([6, 6, 6, 3]);
    expect(svg).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // self-contained: nothing to fetch
  });

  it('writes learning-curves.svg beside metrics.jsonl and returns the same table as before', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-curves-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'metrics.jsonl'), LINES.map(l => JSON.stringify(l)).join('\n') + '\n');
    const table = await writeCurves(dir);
    expect(table).toBe(curveTable(LINES));
    expect(table.split('\n')[0]).toMatch(/^\s+update\s+return\s+reply_reward\s+kl_exact\s+empty_share/);
    expect(table.split('\n')[2]).toBe(['2', '0.250', '-', '2.500', '0.500', '-', '-', '-', '-', '-'].map(v => v.padStart(13)).join(''));
    const svg = readFileSync(path.join(dir, 'learning-curves.svg'), 'utf8');
    expect(svg).toContain(`Title text '${path.basename(dir)}'`);
    expect(points(svg)).toEqual(points(await curveSvg(LINES, CURVE_KEYS, path.basename(dir))));
  });
});
