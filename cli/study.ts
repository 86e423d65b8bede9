/**
 * `colloquy study --config configs/experiments/silence.json`: one of the papers' studies from one
 * command (issue 13). Today: `silence` (Cohen, Hutter, Bengio & Russell 2024: kl-budget agents at
 * several budgets and episode lengths, several seeds each, against the base policy; see
 * agents/eval/silence.ts), and `online-offline` (Tang et al. 2024 with a gold reward, Gao et al.
 * 2023: ppo-kl and kl-budget against batch-kl at matched KL; agents/eval/online-offline.ts), by the
 * config's "study". Writes results.json and report.html; finished stages are reused. The
 * mightn't-do studies run with `colloquy compare` (configs/experiments/mightnt-*.json).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend, type BackendChoice } from '../models/backend.ts';
import { SilenceStudySchema, loadSilenceStudy } from '../configs/experiments/silence-schema.ts';
import { fmtInterval } from '../agents/eval/summary.ts';
import type { Interval } from '../agents/eval/stats.ts';
import { PROJECT_ROOT } from '../core/paths.ts';
import { helpText, parseCommandLine, UsageError, type CommandSpec } from './args.ts';
import { COMPARE_COMMAND } from './compare.ts';
import type { StudyJudgeConfig } from '../configs/experiments/study-schema.ts';

export const STUDY_COMMAND: CommandSpec = {
  command: 'colloquy study',
  usage: '--config FILE [options]',
  summary: 'Runs a study config, by its "study": configs/experiments/silence*.json ("silence under a KL budget", Cohen et al. 2024: kl-budget at every budget × episode length × seed, evaluated beside the base policy on the same fixed-seed dialogs) or configs/experiments/online-offline*.json (online against offline at matched KL, Tang et al. 2024, with a gold reward, Gao et al. 2023: ppo-kl, kl-budget and batch-kl on logged base-policy dialogs, checkpoints along training evaluated for proxy reward, gold reward and KL); tests the paper\'s claims with intervals over seeds and writes results.json and report.html. Finished stages are reused; an interrupted study resumes. The config is read first; --set and the flags override it (the schema below is the silence study\'s; configs/experiments/online-offline-schema.ts has the other).',
  schema: SilenceStudySchema,
  set: 'seeds=[1] --set eval.episodes=16',
  // compare's flags (config, out, fresh, report-only, backend); a study reads no corpus.
  flags: COMPARE_COMMAND.flags.filter(f => f.name !== 'data-dir'),
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(STUDY_COMMAND, argv);
  if (cl.help) { console.log(helpText(STUDY_COMMAND)); return 0; }
  const values = cl.values as StudyFlags;
  if (!values.config) throw new UsageError('--config FILE is required (see colloquy study --help)');
  const file = path.resolve(values.config);
  if (studyOf(file) === 'online-offline') {
    const { loadOnlineOfflineStudy } = await import('../configs/experiments/online-offline-schema.ts');
    const { renderOnlineOfflineReport, claimSummary } = await import('../agents/report/online-offline-report.ts');
    return runStudy(loadOnlineOfflineStudy(file, cl.overrides()), values, renderOnlineOfflineReport,
      async o => (await import('../agents/eval/online-offline.ts')).runOnlineOfflineStudy(o), claimSummary);
  }
  const { renderSilenceReport } = await import('../agents/report/silence-report.ts');
  return runStudy(loadSilenceStudy(file, cl.overrides()), values, renderSilenceReport,
    async o => (await import('../agents/eval/silence.ts')).runSilenceStudy(o), () => []);
}

interface StudyFlags { config?: string; out?: string; fresh?: boolean; 'report-only'?: boolean }
type Claimed = { claims: { verdict: string; claim: string; comparison: string; a: Interval; b: Interval | number }[] };

/** The `colloquy study` steps every study shares: backend, stages, report.html, the claims printed (or, with --report-only, the report redrawn). */
async function runStudy<R extends Claimed, C extends { out: string; backend: string; judge?: StudyJudgeConfig } = { out: string; backend: string; judge?: StudyJudgeConfig }>(
  config: C, values: StudyFlags, render: (r: R) => Promise<string>,
  runner: (o: { config: C; out: string; fresh: boolean; log: (line: string) => void }) => Promise<{ results: R; out: string }>,
  summary: (r: R) => string[]): Promise<number> {
  const outDir = path.resolve(PROJECT_ROOT, values.out ?? config.out);
  if (values['report-only']) {
    const results = JSON.parse(readFileSync(path.join(outDir, 'results.json'), 'utf8')) as R;
    writeFileSync(path.join(outDir, 'report.html'), await withJudging(config, outDir, await render(results), line => console.log(line)));
    console.log(`study: wrote ${path.join(outDir, 'report.html')}`);
    return 0;
  }
  const info = await initBackend(config.backend as BackendChoice);
  console.log(`study: TensorFlow.js backend ${info.name} (${info.tfBackend})`);
  const t0 = Date.now();
  const { results, out } = await runner({ config, out: outDir, fresh: values.fresh === true, log: line => console.log(line) });
  writeFileSync(path.join(out, 'report.html'), await withJudging(config, out, await render(results), line => console.log(line)));
  console.log('');
  for (const x of results.claims) {
    console.log(`${x.verdict.padEnd(12)} ${x.claim}: ${x.comparison}: ${fmtInterval(x.a, 3)} vs ${typeof x.b === 'number' ? x.b : fmtInterval(x.b, 3)}`);
  }
  for (const line of summary(results)) console.log(line);
  console.log(`\nstudy: done in ${((Date.now() - t0) / 60000).toFixed(1)} min; ${path.relative(PROJECT_ROOT, path.join(out, 'report.html'))}, ${path.relative(PROJECT_ROOT, path.join(out, 'results.json'))}`);
  return 0;
}

/**
 * With a "judge" block: add its agent pairs for /judge (none twice), write what people judged so far
 * to judging.json and add the "People as judges" section to the report.
 */
async function withJudging(config: { judge?: StudyJudgeConfig }, out: string, html: string, log: (line: string) => void): Promise<string> {
  if (!config.judge) return html;
  const { judgeStudy } = await import('./judge.ts');
  const { withJudgeSection } = await import('../agents/report/judge-section.ts');
  const j = judgeStudy(config.judge, out, log);
  writeFileSync(path.join(out, 'judging.json'), `${JSON.stringify(j, null, 2)}\n`);
  log(`study: ${j.judgements} judgements so far of ${j.pairs} pairs on /judge?study=${j.study}`);
  return withJudgeSection(html, j);
}

/** The config's "study" field (null when unreadable: the schema's loader then says why). */
function studyOf(file: string): string | null {
  try { return String((JSON.parse(readFileSync(file, 'utf8')) as { study?: unknown }).study); } catch { return null; }
}
