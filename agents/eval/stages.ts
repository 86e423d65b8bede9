/**
 * What the experiment runners (`colloquy compare`, `colloquy study`) share: stages that are reused
 * when their settings did not change (`stages.json` in the output folder), so that rerunning a
 * finished command takes seconds and an interrupted one resumes at the first unfinished stage;
 * and small JSON helpers.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { loadModel } from './load.ts';

export interface StageTiming { seconds: number; cpuSeconds: number; reused: boolean }

export class Stages {
  private readonly file: string;
  private readonly state: Record<string, string>;
  readonly timing: Record<string, StageTiming> = {};
  constructor(dir: string, private readonly fresh: boolean, private readonly who = 'compare') {
    this.file = path.join(dir, 'stages.json');
    this.state = existsSync(this.file) && !fresh ? JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string> : {};
  }
  /** Run `fn` unless the stage was done with the same settings and `done()` still holds. */
  async run<T>(name: string, settings: unknown, done: () => boolean, fn: () => Promise<T>, log: (l: string) => void): Promise<{ reused: boolean; value: T | null }> {
    const h = hash(settings);
    const t0 = Date.now(), c0 = process.cpuUsage();
    if (!this.fresh && this.state[name] === h && done()) {
      log(`${this.who}: ${name}: reusing (settings unchanged)`);
      this.timing[name] = { seconds: 0, cpuSeconds: 0, reused: true };
      return { reused: true, value: null };
    }
    delete this.state[name];
    this.save();
    const value = await fn();
    this.state[name] = h;
    this.save();
    const cpu = process.cpuUsage(c0);
    this.timing[name] = { seconds: (Date.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, reused: false };
    log(`${this.who}: ${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s (CPU ${this.timing[name]!.cpuSeconds.toFixed(0)} s, load average ${os.loadavg()[0]!.toFixed(1)})`);
    return { reused: false, value };
  }
  private save(): void { writeFileSync(this.file, JSON.stringify(this.state, null, 2) + '\n'); }
}

export function hash(x: unknown): string {
  return createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);
}

export function readJson(file: string): unknown {
  try { return JSON.parse(readFileSync(file, 'utf8')); } catch { return null; }
}

/** A checkpoint's metadata.json (or a demonstrator's demonstrator.json): what identifies a trained model. */
export function readMeta(dir: string): unknown {
  const f = dir.endsWith('.json') ? dir : path.join(dir, 'metadata.json');
  return readJson(f) ?? readJson(path.join(dir, 'demonstrator.json'));
}

/** JSON cannot hold NaN / ±Infinity: write null (a `JSON.stringify` replacer). */
export function jsonNumbers(_k: string, v: unknown): unknown { return typeof v === 'number' && !Number.isFinite(v) ? null : v; }

export function deepMergeAll(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = out[k];
    out[k] = av && typeof av === 'object' && !Array.isArray(av) && v && typeof v === 'object' && !Array.isArray(v)
      ? deepMergeAll(av as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** What a `colloquy study` runner starts from: its output folder and stages, the base model, its tokenizer and what identifies it. */
export async function openStudy(o: { out?: string; fresh?: boolean; log?: (line: string) => void }, c: { out: string; base: string }) {
  const out = path.resolve(PROJECT_ROOT, o.out ?? c.out);
  mkdirSync(out, { recursive: true });
  const baseDir = path.resolve(PROJECT_ROOT, c.base);
  return {
    out, baseDir, log: o.log ?? ((line: string) => console.log(line)),
    stages: new Stages(out, o.fresh ?? false, 'study'),
    base: await loadModel(baseDir), tokenizer: loadDialogTokenizer(baseDir),
    baseKey: { baseDir, meta: readMeta(baseDir) },
  };
}
