/**
 * `colloquy compare --config configs/experiments/mightnt-vs-kl.json`: train and evaluate the
 * "mightn't do" imitation baseline and the KL-controlled RL agents, then write results.json and
 * report.html (see agents/eval/experiment.ts and agents/report/).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { resolveDataDir } from '../corpora/readers.ts';
import { ExperimentSchema, loadExperimentConfig } from '../configs/experiments/schema.ts';
import type { ExperimentResults } from '../agents/eval/experiment.ts';
import { fmtInterval } from '../agents/eval/summary.ts';
import { PROJECT_ROOT } from '../core/paths.ts';
import { helpText, parseCommandLine, parseSet as parseSetItems, UsageError, type CommandSpec } from './args.ts';

/** The command line: `--backend` and `--set` are checked against the experiment schema. */
export const COMPARE_COMMAND: CommandSpec = {
  command: 'colloquy compare',
  usage: '--config FILE [options]',
  summary: 'Trains the demonstrator D, samples its dialogs, trains the imitator ensemble, trains ppo-kl and kl-budget against the single imitator and against the conservative reference (every KL setting and seed), evaluates every agent on the same dialogs, and writes results.json and report.html (figures as inline SVG; opens offline). Stages whose settings did not change are reused. The experiment config (configs/experiments/*.json; fields: configs/experiments/schema.ts) is read first; --set and the flags override it.',
  schema: ExperimentSchema,
  set: 'eval.episodes=8 --set rl.seeds=[1]',
  flags: [
    { name: 'config', type: 'string', metavar: 'FILE', describe: 'experiment config (configs/experiments/*.json)' },
    { name: 'out', type: 'string', metavar: 'DIR', describe: 'output folder (default: the config\'s "out")' },
    { name: 'fresh', type: 'boolean', describe: 'redo every stage' },
    { name: 'report-only', type: 'boolean', describe: 're-render report.html from the output folder\'s results.json' },
    { name: 'data-dir', type: 'string', metavar: 'DIR', describe: 'data folder (default $COLLOQUY_DATA_DIR or ../shared/data)' },
    { name: 'backend', field: 'backend', metavar: 'NAME' },
  ],
};

/** `a.b.c=VALUE` items → {a: {b: {c: value}}} (VALUE: JSON when it parses, else the string); see cli/args.ts. */
export function parseSet(items: readonly string[]): Record<string, unknown> {
  return parseSetItems(items, ExperimentSchema);
}

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(COMPARE_COMMAND, argv);
  if (cl.help) { console.log(helpText(COMPARE_COMMAND)); return 0; }
  const values = cl.values as { config?: string; out?: string; fresh?: boolean; 'report-only'?: boolean; 'data-dir'?: string };
  const { renderReport } = await import('../agents/report/report.ts');
  if (values['report-only']) {
    const dir = path.resolve(values.out ?? (values.config ? loadExperimentConfig(path.resolve(values.config), cl.overrides()).out : '.'));
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as ExperimentResults;
    writeFileSync(path.join(dir, 'report.html'), await renderReport(results));
    console.log(`compare: wrote ${path.join(dir, 'report.html')}`);
    return 0;
  }
  if (!values.config) throw new UsageError('--config FILE is required (see colloquy compare --help)');
  const config = loadExperimentConfig(path.resolve(values.config), cl.overrides());
  const backend = config.backend as BackendChoice;
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

/**
 * The headline tables: per agent reward, KL to the imitator and to D (per episode), the two turn
 * measures (empty: no word before the marker; short: ≤ N content tokens; per-dialog means over
 * dialogs with a completed teacher turn) and the help rate; then per RL setting the mean over its
 * seeds with an interval over seeds (seeds resampled, then dialogs).
 */
export function printTable(r: ExperimentResults, print: (line: string) => void): void {
  const n = r.agents[0]?.summary.shortTurnTokens ?? 4;
  const table = (header: string[], rows: string[][]) => {
    const w = header.map((h, i) => Math.max(h.length, ...rows.map(x => x[i]!.length)));
    const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ');
    print(fmt(header));
    for (const x of rows) print(fmt(x));
  };
  const none = { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  table(['agent', 'reward', 'KL/ep imitator', 'KL/ep D', 'empty share (no word)', `short share (≤${n} tok)`, 'help rate'], r.agents.map(a => [
    a.name, fmtInterval(a.summary.reward), fmtInterval(a.summary.klPerEpisode.imitator ?? none, 2), fmtInterval(a.summary.klPerEpisode.demonstrator ?? none, 2),
    fmtInterval(a.summary.emptyTurnShare, 2), fmtInterval(a.summary.shortTurnShare ?? none, 2), fmtInterval(a.summary.helpRate, 3),
  ]));
  if (!(r.settings ?? []).length) return;
  print('');
  table(['setting (over seeds)', 'seeds', 'reward', 'KL/ep imitator', 'KL/ep D', 'empty share (no word)', `short share (≤${n} tok)`], r.settings.map(st => [
    st.name, st.seeds.join(','), fmtInterval(st.overSeeds.reward), fmtInterval(st.overSeeds.klPerEpisode.imitator ?? none, 2),
    fmtInterval(st.overSeeds.klPerEpisode.demonstrator ?? none, 2), fmtInterval(st.overSeeds.emptyTurnShare, 2), fmtInterval(st.overSeeds.shortTurnShare, 2),
  ]));
}
