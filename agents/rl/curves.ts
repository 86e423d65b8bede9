/**
 * Learning curves of a run folder: the metrics.jsonl lines as a text table and as a small-multiples
 * SVG (one panel per metric, update on x), written beside the metrics (no plotting dependency).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const CURVE_KEYS = [
  'env/reward_mean', 'env/reply_reward_mean', 'objective/kl_exact', 'dialog/empty_teacher_turn_share',
  'env/turns_mean', 'dialog/teacher_turn_tokens', 'dialog/student_turn_tokens', 'policy/entropy',
] as const;

export type MetricLine = Record<string, number | string | null>;

export function readMetrics(runDir: string): MetricLine[] {
  return readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map(l => JSON.parse(l) as MetricLine);
}

/** A fixed-width table of the curves (one row per update). */
export function curveTable(lines: readonly MetricLine[], keys: readonly string[] = CURVE_KEYS): string {
  const names: Record<string, string> = {
    'env/reward_mean': 'return', 'env/reply_reward_mean': 'reply_reward', 'objective/kl_exact': 'kl_exact', 'dialog/empty_teacher_turn_share': 'empty_share',
    'env/turns_mean': 'turns', 'dialog/teacher_turn_tokens': 'teacher_tok', 'dialog/student_turn_tokens': 'student_tok', 'policy/entropy': 'entropy',
  };
  const short = keys.map(k => names[k] ?? k.split('/').pop()!.slice(0, 12));
  const head = ['update', ...short].map(h => h.padStart(13)).join('');
  const rows = lines.map(l => [String(l.update), ...keys.map(k => (typeof l[k] === 'number' ? (l[k] as number).toFixed(3) : '-'))].map(v => v.padStart(13)).join(''));
  return [head, ...rows].join('\n');
}

/** Small multiples: one 240×150 panel per metric. */
export function curveSvg(lines: readonly MetricLine[], keys: readonly string[] = CURVE_KEYS, title = ''): string {
  const W = 240, H = 150, pad = 34, cols = 4;
  const rowsN = Math.ceil(keys.length / cols);
  const width = cols * W, height = rowsN * H + 24;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
    `<rect width="100%" height="100%" fill="white"/>`, `<text x="6" y="14" font-size="12">${esc(title)}</text>`];
  keys.forEach((k, i) => {
    const ox = (i % cols) * W, oy = 24 + Math.floor(i / cols) * H;
    const pts = lines.map(l => [Number(l.update), l[k]] as const).filter((p): p is readonly [number, number] => typeof p[1] === 'number' && Number.isFinite(p[1]));
    parts.push(`<text x="${ox + pad}" y="${oy + 12}">${esc(k)}</text>`);
    if (!pts.length) return;
    const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const sx = (x: number) => ox + pad + (x - x0) / (x1 - x0) * (W - pad - 10);
    const sy = (y: number) => oy + H - 20 - (y - y0) / (y1 - y0) * (H - 40);
    parts.push(`<rect x="${ox + pad}" y="${oy + 20}" width="${W - pad - 10}" height="${H - 40}" fill="none" stroke="#ccc"/>`);
    parts.push(`<text x="${ox + 2}" y="${sy(y1) + 3}">${y1.toPrecision(3)}</text><text x="${ox + 2}" y="${sy(y0) + 3}">${y0.toPrecision(3)}</text>`);
    parts.push(`<text x="${sx(x0)}" y="${oy + H - 6}">${x0}</text><text x="${sx(x1) - 12}" y="${oy + H - 6}">${x1}</text>`);
    parts.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ')}"/>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Write `learning-curves.svg` into the run folder; returns the table. */
export function writeCurves(runDir: string): string {
  const lines = readMetrics(runDir);
  writeFileSync(path.join(runDir, 'learning-curves.svg'), curveSvg(lines, CURVE_KEYS, path.basename(runDir)) + '\n');
  return curveTable(lines);
}
