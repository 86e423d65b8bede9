/**
 * `colloquy compare --config configs/experiments/mightnt-vs-kl.json`: train and evaluate the
 * "mightn't do" imitation baseline and the KL-controlled RL agents, then write results.json and
 * report.html (see agents/eval/experiment.ts and agents/report/).
 */
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { resolveDataDir } from '../corpora/readers.ts';
import { loadExperimentConfig } from '../configs/experiments/schema.ts';
import type { ExperimentResults } from '../agents/eval/experiment.ts';
import { fmtInterval } from '../agents/eval/summary.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

const USAGE = `usage: colloquy compare --config FILE [options]

Trains the demonstrator D, samples its dialogs, trains the imitator ensemble, trains ppo-kl and
kl-budget against the single imitator and against the conservative reference (every KL setting
and seed), evaluates every agent on the same dialogs, and writes results.json and report.html
(figures as inline SVG; opens offline). Stages whose settings did not change are reused.

options:
  --config FILE      experiment config (configs/experiments/*.json; schema: configs/experiments/schema.ts)
  --out DIR          output folder (default: the config's "out")
  --set PATH=JSON    override a config value, e.g. --set eval.episodes=8 --set rl.seeds=[1] (repeatable)
  --fresh            redo every stage
  --report-only      re-render report.html from the output folder's results.json
  --data-dir DIR     data folder (default $COLLOQUY_DATA_DIR or ../shared/data)
  --backend NAME     ${BACKENDS.join(', ')} (default: the config's, else auto)
  -h, --help         this help`;

/** `a.b.c=JSON` → {a: {b: {c: value}}} (a bare word is a string). */
export function parseSet(items: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new BadConfig(`--set expects PATH=VALUE, got '${item}'`);
    const keys = item.slice(0, eq).split('.');
    const raw = item.slice(eq + 1);
    let value: unknown;
    try { value = JSON.parse(raw); } catch { value = raw; }
    let o = out;
    keys.slice(0, -1).forEach(k => { if (typeof o[k] !== 'object' || o[k] === null) o[k] = {}; o = o[k] as Record<string, unknown>; });
    o[keys[keys.length - 1]!] = value;
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' }, out: { type: 'string' }, set: { type: 'string', multiple: true }, fresh: { type: 'boolean' },
      'report-only': { type: 'boolean' }, 'data-dir': { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) { console.log(USAGE); return 0; }
  const { renderReport } = await import('../agents/report/report.ts');
  if (values['report-only']) {
    const dir = path.resolve(values.out ?? (values.config ? loadExperimentConfig(path.resolve(values.config), parseSet(values.set ?? [])).out : '.'));
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as ExperimentResults;
    writeFileSync(path.join(dir, 'report.html'), await renderReport(results));
    console.log(`compare: wrote ${path.join(dir, 'report.html')}`);
    return 0;
  }
  if (!values.config) { console.error(`colloquy compare: --config is required\n\n${USAGE}`); return 2; }
  const config = loadExperimentConfig(path.resolve(values.config), parseSet(values.set ?? []));
  const backend = (values.backend ?? config.backend) as BackendChoice;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new BadConfig(`backend must be one of ${BACKENDS.join(', ')}`);
  const info = await initBackend(backend);
  console.log(`compare: TensorFlow.js backend ${info.name} (${info.tfBackend}${info.features.length ? ', ' + info.features.join(', ') : ''})`);
  const { runExperiment } = await import('../agents/eval/experiment.ts');
  const t0 = Date.now();
  const { results, out } = await runExperiment({
    config, out: values.out ? path.resolve(values.out) : undefined, dataDir: resolveDataDir(values['data-dir']), fresh: values.fresh === true,
    log: line => console.log(line),
  });
  const html = await renderReport(results);
  writeFileSync(path.join(out, 'report.html'), html);
  console.log('');
  printTable(results, line => console.log(line));
  console.log(`\ncompare: done in ${((Date.now() - t0) / 60000).toFixed(1)} min; ${path.relative(PROJECT_ROOT, path.join(out, 'report.html'))}, ${path.relative(PROJECT_ROOT, path.join(out, 'results.json'))}`);
  return 0;
}

/** The headline table: reward, KL to the imitator and to D (per episode), empty-turn share, help rate. */
export function printTable(r: ExperimentResults, print: (line: string) => void): void {
  const header = ['agent', 'reward', 'KL/ep imitator', 'KL/ep D', 'empty share', 'help rate'];
  const rows = r.agents.map(a => [
    a.name, fmtInterval(a.summary.reward), fmtInterval(a.summary.klPerEpisode.imitator!, 2), fmtInterval(a.summary.klPerEpisode.demonstrator!, 2),
    fmtInterval(a.summary.emptyTurnShare, 2), fmtInterval(a.summary.helpRate, 3),
  ]);
  const w = header.map((h, i) => Math.max(h.length, ...rows.map(x => x[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ');
  print(fmt(header));
  for (const x of rows) print(fmt(x));
}
