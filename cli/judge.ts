/**
 * People as judges, from the command line (the page is `/judge` on a running server):
 *
 *   colloquy judge-add --study S --a EVAL/A.jsonl --b EVAL/B.jsonl [--pairs 50] [--questions better,complex] [--db F]
 *   colloquy judge-export [--study S] [--out judgements.jsonl] [--summary summary.json] [--db F]
 *
 * `judge-add` pairs the dialogs of two agents' evaluation rows (`colloquy eval --out DIR
 * --transcripts` writes DIR/<agent>.jsonl) by env seed — same prompt, same student randomness —
 * and stores them as pairs of study S for `/judge`. `judge-export` writes every judgement as a
 * JSONL line with the agents named (the page never shows them), and prints per question each
 * agent's win rate against each other with a 95% bootstrap interval over pairs (Bradley–Terry
 * strengths with more than two agents), and the share of choices that went to the left side.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { DEFAULT_DB_PATH, openStore } from '../server/storage/db.ts';
import { DEFAULT_QUESTIONS, JudgeStore, type JudgeQuestion } from '../server/storage/judging.ts';
import { pairPrompt, pairRowsBySeed, rowTurns, summariseJudgements, type QuestionSummary, type RowForJudging } from '../agents/judging.ts';
import { helpText, parseCommandLine, type CommandSpec } from './args.ts';
import type { StudyJudging } from '../agents/report/judge-section.ts';
import type { StudyJudgeConfig } from '../configs/experiments/study-schema.ts';

const DB_FLAG = { name: 'db', type: 'string', metavar: 'FILE', describe: `the database (default: ${path.relative(process.cwd(), DEFAULT_DB_PATH) || DEFAULT_DB_PATH}; a running server's $COLLOQUY_DB)` } as const;

export const JUDGE_ADD_COMMAND: CommandSpec = {
  command: 'colloquy judge-add',
  usage: '--study NAME --a ROWS.jsonl --b ROWS.jsonl [options]',
  summary: `Add pairs of transcripts for people to judge on /judge: the dialogs of two agents' evaluation rows
(colloquy eval --out DIR writes DIR/<agent>.jsonl) with the same env seed. Questions: ${DEFAULT_QUESTIONS.map(q => `${q.id} ("${q.text}")`).join(', ')}.`,
  flags: [
    DB_FLAG,
    { name: 'study', type: 'string', metavar: 'NAME', describe: 'the study the pairs belong to (letters, digits, . _ -)' },
    { name: 'a', type: 'string', metavar: 'FILE', describe: "one agent's evaluation rows (JSONL)" },
    { name: 'b', type: 'string', metavar: 'FILE', describe: "the other agent's evaluation rows (JSONL)" },
    { name: 'pairs', type: 'string', metavar: 'N', describe: 'at most this many pairs (default: every seed both have)' },
    { name: 'questions', type: 'string', metavar: 'IDS', describe: `comma-separated question ids out of ${DEFAULT_QUESTIONS.map(q => q.id).join(', ')} (default: all)` },
  ],
};

export const JUDGE_EXPORT_COMMAND: CommandSpec = {
  command: 'colloquy judge-export',
  usage: '[--study NAME] [--out FILE.jsonl] [--summary FILE.json]',
  summary: `Write people's judgements as JSONL, one judgement per line, with the agents named:
{"study","pair","promptKey","question","judge","choice": agent | "tie","agentA","agentB","shownLeft": agent,"reason","createdAt"},
and print per question each agent's win rate (ties half) with a 95% bootstrap interval over pairs.`,
  flags: [
    DB_FLAG,
    { name: 'study', type: 'string', metavar: 'NAME', describe: 'only this study' },
    { name: 'out', type: 'string', metavar: 'FILE', describe: 'the JSONL file (- for stdout; default: none, the summary only)' },
    { name: 'summary', type: 'string', metavar: 'FILE', describe: 'also write the summary as JSON' },
  ],
};

function readRows(file: string): RowForJudging[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { throw new BadConfig(`cannot read ${file}`); }
  return text.split('\n').filter(l => l.trim()).map((l, i) => {
    let r: Partial<RowForJudging>;
    try { r = JSON.parse(l) as Partial<RowForJudging>; } catch { throw new BadConfig(`${file}:${i + 1} is not JSON`); }
    if (typeof r.agent !== 'string' || typeof r.envSeed !== 'number' || !Array.isArray(r.teacherTexts) || !Array.isArray(r.studentTexts)) {
      throw new BadConfig(`${file}:${i + 1} is not an evaluation row (agent, envSeed, teacherTexts, studentTexts)`);
    }
    return r as RowForJudging;
  });
}

function questionsFlag(ids: string | undefined): JudgeQuestion[] {
  if (ids === undefined) return [...DEFAULT_QUESTIONS];
  return ids.split(',').map(s => s.trim()).filter(Boolean).map(id => {
    const q = DEFAULT_QUESTIONS.find(x => x.id === id);
    if (!q) throw new BadConfig(`unknown question '${id}' (one of ${DEFAULT_QUESTIONS.map(x => x.id).join(', ')})`);
    return q;
  });
}

/**
 * Pair two agents' evaluation rows by env seed (at most `max` pairs, in seed order) and store them
 * as pairs of `study` (judge-add, and `colloquy study` with a "judge" block). Pairs already there
 * are not added twice.
 */
export function addRowPairs(store: JudgeStore, o: { study: string; fileA: string; fileB: string; max: number; questions: readonly JudgeQuestion[] }): { added: number; matched: number; agentA: string; agentB: string } {
  const a = readRows(o.fileA), b = readRows(o.fileB);
  const agentA = a[0]?.agent, agentB = b[0]?.agent;
  if (!agentA || !agentB) throw new BadConfig('both row files need at least one dialog');
  if (agentA === agentB) throw new BadConfig(`both files are of agent '${agentA}'`);
  const matched = pairRowsBySeed(a, b, o.max);
  if (!matched.length) throw new BadConfig(`no env seed is in both files (${o.fileA}, ${o.fileB}): evaluate both agents with the same --seed`);
  const added = store.addPairs(matched.map(m => ({
    study: o.study, promptKey: `seed:${m.seed}`, agentA, agentB, prompt: pairPrompt(m.a, m.b), transcriptA: rowTurns(m.a), transcriptB: rowTurns(m.b), questions: [...o.questions],
    source: { a: path.basename(o.fileA), b: path.basename(o.fileB), seed: m.seed },
  })));
  return { added: added.length, matched: matched.length, agentA, agentB };
}

/**
 * A study config's "judge" block (configs/experiments/study-schema.ts StudyJudge): add its agent
 * pairs from the rows files in the study's output folder (each path must stay inside it), then
 * read back what people have judged so far, for the report.
 */
export function judgeStudy(j: StudyJudgeConfig, outDir: string, log: (line: string) => void): StudyJudging {
  const questions = questionsFlag(j.questions.join(','));
  const inside = (rel: string) => {
    const f = path.resolve(outDir, rel);
    if (path.relative(outDir, f).startsWith('..') || path.isAbsolute(path.relative(outDir, f))) throw new BadConfig(`judge.pairs: '${rel}' is outside the study's folder ${outDir}`);
    return f;
  };
  const files = j.pairs.map(p => ({ a: inside(p.a), b: inside(p.b) }));
  const store = openStore(j.db ?? process.env.COLLOQUY_DB ?? DEFAULT_DB_PATH);
  try {
    const js = new JudgeStore(store.db);
    for (const f of files) {
      const r = addRowPairs(js, { study: j.study, fileA: f.a, fileB: f.b, max: j.count, questions });
      log(`judge: ${r.agentA} vs ${r.agentB}: ${r.added} pairs added to study '${j.study}' (${r.matched - r.added} were there already)`);
    }
    const judged = js.judgements(j.study);
    const pairs = js.studies().find(s => s.study === j.study)?.pairs ?? 0;
    return { study: j.study, pairs, judgements: judged.length, questions: summariseJudgements(judged) };
  } finally {
    store.close();
  }
}

export async function runAdd(argv: string[]): Promise<number> {
  const cl = parseCommandLine(JUDGE_ADD_COMMAND, argv);
  if (cl.help) { console.log(helpText(JUDGE_ADD_COMMAND)); return 0; }
  const v = cl.values as { db?: string; study?: string; a?: string; b?: string; pairs?: string; questions?: string };
  if (!v.study || !v.a || !v.b) throw new BadConfig('--study, --a and --b are required; see colloquy judge-add --help');
  const max = v.pairs === undefined ? Infinity : Number(v.pairs);
  if (!(Number.isInteger(max) && max > 0) && max !== Infinity) throw new BadConfig('--pairs must be a positive integer');
  const questions = questionsFlag(v.questions);
  const store = openStore(v.db ?? process.env.COLLOQUY_DB ?? DEFAULT_DB_PATH);
  try {
    const r = addRowPairs(new JudgeStore(store.db), { study: v.study, fileA: v.a, fileB: v.b, max, questions });
    console.error(`judge-add: ${r.added} pairs added to study '${v.study}' (${r.matched - r.added} were there already): ${r.agentA} vs ${r.agentB}, questions ${questions.map(q => q.id).join(', ')}`);
    return 0;
  } finally {
    store.close();
  }
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');

/** The summary as lines of text. */
export function formatSummary(s: readonly QuestionSummary[]): string[] {
  const out: string[] = [];
  for (const q of s) {
    out.push(`${q.question}: ${q.judgements} judgements, ${q.ties} ties; left side chosen ${pct(q.leftShare.mean)} [${pct(q.leftShare.lo)}, ${pct(q.leftShare.hi)}] of non-ties`);
    for (const p of q.pairwise) {
      out.push(`  ${p.agent} vs ${p.opponent}: win rate ${pct(p.winRate.mean)} [95% ${pct(p.winRate.lo)}, ${pct(p.winRate.hi)}] over ${p.pairs} pairs (${p.wins} wins, ${p.losses} losses, ${p.ties} ties)`);
    }
    for (const b of q.bradleyTerry ?? []) out.push(`  Bradley–Terry ${b.agent}: ${b.strength.mean.toFixed(3)} [${b.strength.lo.toFixed(3)}, ${b.strength.hi.toFixed(3)}]`);
  }
  return out;
}

export async function runExport(argv: string[]): Promise<number> {
  const cl = parseCommandLine(JUDGE_EXPORT_COMMAND, argv);
  if (cl.help) { console.log(helpText(JUDGE_EXPORT_COMMAND)); return 0; }
  const v = cl.values as { db?: string; study?: string; out?: string; summary?: string };
  const store = openStore(v.db ?? process.env.COLLOQUY_DB ?? DEFAULT_DB_PATH, { readonly: true });
  try {
    const js = new JudgeStore(store.db).judgements(v.study);
    if (v.out) {
      const lines = js.map(j => JSON.stringify({
        study: j.study, pair: j.pairId, promptKey: j.promptKey, question: j.question, judge: j.judge,
        choice: j.choice === 'tie' ? 'tie' : j.choice === 'a' ? j.agentA : j.agentB, agentA: j.agentA, agentB: j.agentB,
        shownLeft: j.shownLeft === 'a' ? j.agentA : j.agentB, reason: j.reason, createdAt: j.createdAt,
      }));
      const text = lines.length ? `${lines.join('\n')}\n` : '';
      if (v.out === '-') process.stdout.write(text); else writeFileSync(v.out, text);
    }
    const summary = summariseJudgements(js);
    if (v.summary) writeFileSync(v.summary, `${JSON.stringify({ study: v.study ?? null, judgements: js.length, questions: summary }, null, 2)}\n`);
    console.error(`judge-export: ${js.length} judgements${v.study ? ` of study '${v.study}'` : ''}`);
    for (const l of formatSummary(summary)) console.error(l);
    return 0;
  } finally {
    store.close();
  }
}


