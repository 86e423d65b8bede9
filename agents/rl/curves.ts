/**
 * Learning curves of a run folder: the metrics.jsonl lines as a text table and as a small-multiples
 * SVG (one panel per metric, update on x), written beside the metrics. The SVG is a Vega-Lite spec
 * rendered by the report's renderer (agents/report/figures.ts), in Node, with its data inline.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as vl from 'vega-lite';
import { CONFIG, renderSvg } from '../report/figures.ts';
import { METRICS as M, UPDATE_KEY } from '../metrics.ts';

export const CURVE_KEYS = [
  M.rewardMean, M.replyRewardMean, M.klExact, M.emptyTeacherTurnShare, M.shortTeacherTurnShare,
  M.turnsMean, M.teacherTurnTokens, M.studentTurnTokens, M.policyEntropy,
] as const;

export type MetricLine = Record<string, number | string | null>;

export function readMetrics(runDir: string): MetricLine[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map(l => JSON.parse(l) as MetricLine);
}

/** A fixed-width table of the curves (one row per update). */
export function curveTable(lines: readonly MetricLine[], keys: readonly string[] = CURVE_KEYS): string {
  const names: Record<string, string> = {
    [M.rewardMean]: 'return', [M.replyRewardMean]: 'reply_reward', [M.klExact]: 'kl_exact', [M.emptyTeacherTurnShare]: 'empty_share', [M.shortTeacherTurnShare]: 'short_share',
    [M.turnsMean]: 'turns', [M.teacherTurnTokens]: 'teacher_tok', [M.studentTurnTokens]: 'student_tok', [M.policyEntropy]: 'entropy',
  };
  const short = keys.map(k => names[k] ?? k.split('/').pop()!.slice(0, 12));
  const head = ['update', ...short].map(h => h.padStart(13)).join('');
  const rows = lines.map(l => [String(l[UPDATE_KEY]), ...keys.map(k => (typeof l[k] === 'number' ? (l[k] as number).toFixed(3) : '-'))].map(v => v.padStart(13)).join(''));
  return [head, ...rows].join('\n');
}

/**
 * Small multiples as a Vega-Lite spec: one 200×110 panel per metric (update on x, its own y
 * scale), four to a row. A metric with no finite value keeps its (empty) panel.
 */
export function curveSpec(lines: readonly MetricLine[], keys: readonly string[] = CURVE_KEYS, title = ''): vl.TopLevelSpec {
  const values: { update: number; metric: string; value: number }[] = [];
  for (const l of lines) {
    for (const k of keys) {
      const v = l[k];
      if (typeof v === 'number' && Number.isFinite(v)) values.push({ update: Number(l[UPDATE_KEY]), metric: k, value: v });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    ...(title ? { title } : {}),
    data: { values },
    columns: 4,
    concat: keys.map(k => ({
      title: { text: k, fontSize: 11 },
      width: 200, height: 110,
      transform: [{ filter: { field: 'metric', equal: k } }],
      mark: { type: 'line', point: { size: 14, color: '#1f77b4' }, strokeWidth: 1.5, color: '#1f77b4' },
      encoding: {
        x: { field: 'update', type: 'quantitative', title: 'update', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~g' } },
      },
    })),
    resolve: { scale: { x: 'independent', y: 'independent' } },
  } as vl.TopLevelSpec;
}

/** The small multiples rendered to SVG (vega, in Node). */
export function curveSvg(lines: readonly MetricLine[], keys: readonly string[] = CURVE_KEYS, title = ''): Promise<string> {
  return renderSvg(curveSpec(lines, keys, title));
}

/** Write `learning-curves.svg` into the run folder; returns the table. */
export async function writeCurves(runDir: string): Promise<string> {
  const lines = readMetrics(runDir);
  writeFileSync(path.join(runDir, 'learning-curves.svg'), `${await curveSvg(lines, CURVE_KEYS, path.basename(runDir))}\n`);
  return curveTable(lines);
}
