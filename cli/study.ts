/**
 * `colloquy study --config configs/experiments/silence.json`: one of the papers' studies from one
 * command (issue 13). Today: `silence` (Cohen, Hutter, Bengio & Russell 2024: kl-budget agents at
 * several budgets and episode lengths, several seeds each, against the base policy; see
 * agents/eval/silence.ts). Writes results.json and report.html; finished stages are reused. The
 * mightn't-do studies run with `colloquy compare` (configs/experiments/mightnt-*.json).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend, type BackendChoice } from '../models/backend.ts';
import { SilenceStudySchema, loadSilenceStudy } from '../configs/experiments/silence-schema.ts';
import type { SilenceResults } from '../agents/eval/silence.ts';
import { fmtInterval } from '../agents/eval/summary.ts';
import { PROJECT_ROOT } from '../core/paths.ts';
import { helpText, parseCommandLine, UsageError, type CommandSpec } from './args.ts';
import { COMPARE_COMMAND } from './compare.ts';

export const STUDY_COMMAND: CommandSpec = {
  command: 'colloquy study',
  usage: '--config FILE [options]',
  summary: 'Runs a study config (configs/experiments/silence*.json: "silence under a KL budget", Cohen et al. 2024): trains kl-budget at every budget × episode length × seed, evaluates each beside the base policy on the same fixed-seed dialogs, tests the paper\'s claims with intervals over seeds, and writes results.json and report.html. Finished stages are reused; an interrupted study resumes. The config is read first; --set and the flags override it.',
  schema: SilenceStudySchema,
  set: 'seeds=[1] --set eval.episodes=16',
  // compare's flags (config, out, fresh, report-only, backend); a study reads no corpus.
  flags: COMPARE_COMMAND.flags.filter(f => f.name !== 'data-dir'),
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(STUDY_COMMAND, argv);
  if (cl.help) { console.log(helpText(STUDY_COMMAND)); return 0; }
  const values = cl.values as { config?: string; out?: string; fresh?: boolean; 'report-only'?: boolean };
  if (!values.config) throw new UsageError('--config FILE is required (see colloquy study --help)');
  const config = loadSilenceStudy(path.resolve(values.config), cl.overrides());
  const { renderSilenceReport } = await import('../agents/report/silence-report.ts');
  const outDir = path.resolve(PROJECT_ROOT, values.out ?? config.out);
  if (values['report-only']) {
    const results = JSON.parse(readFileSync(path.join(outDir, 'results.json'), 'utf8')) as SilenceResults;
    writeFileSync(path.join(outDir, 'report.html'), await renderSilenceReport(results));
    console.log(`study: wrote ${path.join(outDir, 'report.html')}`);
    return 0;
  }
  const info = await initBackend(config.backend as BackendChoice);
  console.log(`study: TensorFlow.js backend ${info.name} (${info.tfBackend})`);
  const { runSilenceStudy } = await import('../agents/eval/silence.ts');
  const t0 = Date.now();
  const { results, out } = await runSilenceStudy({ config, out: outDir, fresh: values.fresh === true, log: line => console.log(line) });
  writeFileSync(path.join(out, 'report.html'), await renderSilenceReport(results));
  console.log('');
  for (const x of results.claims) {
    console.log(`${x.verdict.padEnd(12)} ${x.claim}: ${x.comparison}: ${fmtInterval(x.a, 3)} vs ${typeof x.b === 'number' ? x.b : fmtInterval(x.b, 3)}`);
  }
  console.log(`\nstudy: done in ${((Date.now() - t0) / 60000).toFixed(1)} min; ${path.relative(PROJECT_ROOT, path.join(out, 'report.html'))}, ${path.relative(PROJECT_ROOT, path.join(out, 'results.json'))}`);
  return 0;
}
