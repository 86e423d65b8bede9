/**
 * Training curves for the dashboard: every `RUN/metrics.jsonl` under the runs folder (one JSON
 * object per line, as the trainers write them: `{"update": 12, "env/reward_mean": 0.61,
 * "objective/kl": 1.9, ...}`). Files are read incrementally (only the bytes appended since the
 * last read), so a long run costs nothing to poll; each series is thinned to at most `maxPoints`
 * points (every other point is dropped when it grows past twice that).
 */
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { METRICS as M, UPDATE_KEY } from '../../agents/metrics.ts';

/**
 * Keys plotted as "reward" and "KL", first present wins: the trainers' own (agents/metrics.ts),
 * then the names other tools write (CleanRL's episodic return, TRL's KL mean).
 */
export const REWARD_KEYS = [M.rewardMean, 'charts/episodic_return', 'eval/reward_mean', 'charts/reward_mean'] as const;
export const KL_KEYS = [M.kl, M.approxKl, 'objective/kl_mean'] as const;
/** The x of a line: the trainers' `update`; `step` is what batch-kl wrote before it logged `update`. */
const STEP_KEYS = [UPDATE_KEY, 'step', 'global_step', 'charts/global_step', 'iteration'] as const;

export interface Series { key: string; points: [number, number][] }

export interface RunSummary {
  name: string;
  /** Last modification of metrics.jsonl (ISO). */
  updatedAt: string;
  /** Written to in the last `liveWindowMs`. */
  live: boolean;
  lines: number;
  reward: Series | null;
  kl: Series | null;
  /** The last value of every numeric key. */
  last: Record<string, number>;
}

interface FileState {
  offset: number;
  partial: string;
  lines: number;
  mtimeMs: number;
  series: Map<string, [number, number][]>;
  stride: Map<string, number>;
  seen: Map<string, number>;
  last: Record<string, number>;
}

export class RunsReader {
  private readonly files = new Map<string, FileState>();

  constructor(readonly dir: string, readonly maxPoints = 400, readonly liveWindowMs = 120_000) {}

  /** Every run with a metrics.jsonl, most recently updated first. */
  read(now = Date.now()): RunSummary[] {
    if (!existsSync(this.dir)) return [];
    const out: RunSummary[] = [];
    let entries: string[];
    try { entries = readdirSync(this.dir); } catch { return []; }
    for (const name of entries) {
      const file = path.join(this.dir, name, 'metrics.jsonl');
      let st;
      try { st = statSync(file); } catch { continue; }
      const s = this.update(file, st.size, st.mtimeMs);
      out.push({
        name, updatedAt: new Date(st.mtimeMs).toISOString(), live: now - st.mtimeMs < this.liveWindowMs, lines: s.lines,
        reward: pick(s, REWARD_KEYS), kl: pick(s, KL_KEYS), last: { ...s.last },
      });
    }
    return out.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  }

  private update(file: string, size: number, mtimeMs: number): FileState {
    let s = this.files.get(file);
    if (!s || size < s.offset) {
      s = { offset: 0, partial: '', lines: 0, mtimeMs: 0, series: new Map(), stride: new Map(), seen: new Map(), last: {} };
      this.files.set(file, s);
    }
    s.mtimeMs = mtimeMs;
    if (size === s.offset) return s;
    const fd = openSync(file, 'r');
    try {
      const want = Math.min(size - s.offset, 64 * 1024 * 1024);
      const buf = Buffer.alloc(want);
      const n = readSync(fd, buf, 0, want, s.offset);
      s.offset += n;
      const text = s.partial + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      s.partial = lines.pop() ?? '';
      for (const line of lines) this.ingest(s, line);
    } finally {
      closeSync(fd);
    }
    return s;
  }

  private ingest(s: FileState, line: string): void {
    if (!line.trim()) return;
    let rec: unknown;
    try { rec = JSON.parse(line); } catch { return; }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return;
    const r = rec as Record<string, unknown>;
    const stepKey = STEP_KEYS.find(k => typeof r[k] === 'number');
    const step = stepKey ? (r[stepKey] as number) : s.lines;
    s.lines++;
    for (const [k, v] of Object.entries(r)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      s.last[k] = v;
      if (!(REWARD_KEYS as readonly string[]).includes(k) && !(KL_KEYS as readonly string[]).includes(k)) continue;
      // Keep every stride-th point; when a series doubles past maxPoints, drop every other point.
      const seen = (s.seen.get(k) ?? 0) + 1;
      s.seen.set(k, seen);
      const stride = s.stride.get(k) ?? 1;
      if ((seen - 1) % stride !== 0) continue;
      let pts = s.series.get(k);
      if (!pts) { pts = []; s.series.set(k, pts); }
      pts.push([step, v]);
      if (pts.length > 2 * this.maxPoints) {
        s.series.set(k, pts.filter((_, i) => i % 2 === 0));
        s.stride.set(k, stride * 2);
      }
    }
  }
}

function pick(s: FileState, keys: readonly string[]): Series | null {
  for (const k of keys) {
    const pts = s.series.get(k);
    if (pts && pts.length) return { key: k, points: pts.slice() };
  }
  return null;
}
