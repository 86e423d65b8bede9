/**
 * The README's figures for "RL agents with KL control": ppo-kl and kl-budget with their shipped
 * configs on the default env (TeacherStudent-v0: the world student, the base model in
 * data/models/base), each trained by the README's command with `--steps` for every seed, then the
 * base policy and every run evaluated by one `colloquy eval` on the same dialogs (env seeds
 * SEED…SEED+N−1). Prints, per algorithm, each seed's mean and the mean over seeds with a 95%
 * interval from a two-stage bootstrap (seeds, then each drawn seed's dialogs); the base policy's
 * interval is over dialogs. Turn shares are per-dialog means over dialogs with a completed teacher
 * turn: `empty` (no word) and `short` (≤ 4 content tokens).
 *
 *   node bin/run.mjs bench/rl-seeds.ts [--steps 40000] [--seeds 1,2,3] [--episodes 200] [--seed 1000] [--out runs/rl-seeds]
 *
 * A run whose checkpoint says it stopped by its step budget is reused; so is a finished eval.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bootstrapOverSeeds, type SeedGroup } from '../agents/eval/stats.ts';
import { slug } from '../agents/eval/run.ts';
import type { DialogRow } from '../agents/eval/evaluate.ts';
import type { Interval } from '../agents/eval/stats.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '40000' },
    seeds: { type: 'string', default: '1,2,3' },
    episodes: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1000' },
    out: { type: 'string', default: 'runs/rl-seeds' },
  },
});
const steps = Number(values.steps), episodes = Number(values.episodes), evalSeed = Number(values.seed);
const seeds = values.seeds!.split(',').map(Number);
const out = path.resolve(values.out!);
const ALGOS = ['ppo-kl', 'kl-budget'] as const;

function colloquy(args: string[]): void {
  console.log(`$ colloquy ${args.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'colloquy.mjs'), ...args], { stdio: ['ignore', 'inherit', 'inherit'], cwd: PROJECT_ROOT });
  if (r.status !== 0) { console.error(`colloquy ${args[0]} failed (exit ${r.status})`); process.exit(1); }
  console.log(`  (${((Date.now() - t0) / 60000).toFixed(1)} min)`);
}

const runDir = (algo: string, s: number) => path.join(out, `${algo}-s${s}`);
for (const algo of ALGOS) {
  for (const s of seeds) {
    const dir = runDir(algo, s);
    const trainer = path.join(dir, 'checkpoint', 'trainer.json');
    if (existsSync(trainer) && (JSON.parse(readFileSync(trainer, 'utf8')) as { stoppedBy?: string }).stoppedBy === 'budget') continue;
    colloquy(['train', '--algo', algo, '--local', '--steps', String(steps), '--seed', String(s), '--out', dir]);
  }
}

const evalDir = path.join(out, `eval-${episodes}-${evalSeed}`);
const specs = ['base', ...ALGOS.flatMap(a => seeds.map(s => `checkpoint:${runDir(a, s)}`))];
const summaryFile = path.join(evalDir, 'summary.json');
const done = existsSync(summaryFile) && (JSON.parse(readFileSync(summaryFile, 'utf8')) as { summaries: unknown[] }).summaries.length === specs.length;
if (!done) colloquy(['eval', ...specs.flatMap(a => ['--agent', a]), '--episodes', String(episodes), '--seed', String(evalSeed), '--out', evalDir]);

const summaries = (JSON.parse(readFileSync(summaryFile, 'utf8')) as { summaries: { agent: string }[] }).summaries;
const rowsOf = (i: number): DialogRow[] => readFileSync(path.join(evalDir, `${slug(summaries[i]!.agent)}.jsonl`), 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as DialogRow);

type Measure = { name: string; digits: number; num: (r: DialogRow) => number; den: (r: DialogRow) => number };
const MEASURES: Measure[] = [
  { name: 'return', digits: 2, num: r => r.reward, den: () => 1 },
  { name: 'KL/episode to base', digits: 1, num: r => r.kl.base ?? NaN, den: () => 1 },
  { name: 'KL/token to base', digits: 3, num: r => r.kl.base ?? NaN, den: r => r.scoredTokens },
  { name: 'empty share (no word)', digits: 2, num: r => r.emptyShare, den: () => 1 },
  { name: 'short share (≤ 4 tokens)', digits: 2, num: r => r.shortShare, den: () => 1 },
  { name: 'exchanges', digits: 2, num: r => r.exchanges, den: () => 1 },
  { name: 'teacher tokens/turn', digits: 1, num: r => r.teacherTurnTokens.reduce((a, b) => a + b, 0), den: r => r.teacherTurnTokens.length },
  { name: 'reply sentiment', digits: 2, num: r => r.sentiment, den: () => 1 },
];
const group = (rows: DialogRow[], m: Measure): SeedGroup => ({ num: rows.map(m.num), den: rows.map(m.den) });
const fmt = (iv: Interval, d: number) => `${iv.mean.toFixed(d)} [${iv.lo.toFixed(d)}, ${iv.hi.toFixed(d)}]`;
/** Σ num / Σ den over finite pairs: a seed's statistic (ratio measures pool dialogs, as bootstrapOverSeeds does). */
const pooled = (g: SeedGroup) => {
  let a = 0, b = 0;
  g.num.forEach((x, i) => { const y = g.den[i]!; if (Number.isFinite(x) && Number.isFinite(y)) { a += x; b += y; } });
  return a / b;
};

console.log(`\nTeacherStudent-v0 defaults, ${episodes} dialogs (env seeds ${evalSeed}…${evalSeed + episodes - 1}); RL: --steps ${steps}, seeds ${seeds.join(', ')}`);
console.log(`| agent | ${MEASURES.map(m => m.name).join(' | ')} |`);
console.log(`|---|${MEASURES.map(() => '---').join('|')}|`);
const base = rowsOf(0);
// One group: the bootstrap over dialogs of Σ num / Σ den.
console.log(`| base policy | ${MEASURES.map(m => fmt(bootstrapOverSeeds([group(base, m)]), m.digits)).join(' | ')} |`);
ALGOS.forEach((algo, a) => {
  const perSeed = seeds.map((_, k) => rowsOf(1 + a * seeds.length + k));
  const cells = MEASURES.map(m => {
    const groups = perSeed.map(rows => group(rows, m));
    return `${fmt(bootstrapOverSeeds(groups), m.digits)} (${groups.map(g => pooled(g).toFixed(m.digits)).join(' / ')})`;
  });
  console.log(`| ${algo} | ${cells.join(' | ')} |`);
});
