/**
 * The default world's measures (README "The default world"), from the rows `colloquy eval` writes:
 * per agent, mean exchanges per dialog, distinct student replies per 100 dialogs, the return
 * (γ = 1) with its 95% bootstrap interval and spread, how dialogs ended, and the teacher's moves as
 * the world classifies them (corpora/world.ts).
 *
 *   colloquy eval --agent base --episodes 200 --seed 1000 --out runs/world-eval
 *   node bin/run.mjs bench/world.ts runs/world-eval/base.jsonl [more rows files]
 */
import { readFileSync } from 'node:fs';
import { bootstrapMean } from '../agents/eval/stats.ts';
import { classifyMove, TEACHER_MOVES } from '../corpora/world.ts';

interface Row { agent: string; reward: number; exchanges: number; endedBy: string; studentTexts: string[]; teacherTexts: string[] }

const files = process.argv.slice(2);
if (!files.length) { console.error('usage: node bin/run.mjs bench/world.ts ROWS.jsonl [ROWS.jsonl ...]'); process.exit(2); }
const f2 = (x: number) => x.toFixed(2);
for (const file of files) {
  const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as Row);
  const rewards = rows.map(r => r.reward);
  const mean = rewards.reduce((a, x) => a + x, 0) / rows.length;
  const sd = Math.sqrt(rewards.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, rows.length - 1));
  const ci = bootstrapMean(rewards);
  const ex = bootstrapMean(rows.map(r => r.exchanges));
  // Distinct replies in each block of 100 dialogs (a last partial block is scaled to 100).
  const perHundred: number[] = [];
  for (let i = 0; i < rows.length; i += 100) {
    const block = rows.slice(i, i + 100);
    perHundred.push(new Set(block.flatMap(r => r.studentTexts.map(t => t.trim()))).size * 100 / block.length);
  }
  const ended: Record<string, number> = {};
  for (const r of rows) ended[r.endedBy || 'running'] = (ended[r.endedBy || 'running'] ?? 0) + 1;
  const moves: Record<string, number> = Object.fromEntries(TEACHER_MOVES.map(m => [m, 0]));
  let turns = 0;
  for (const r of rows) for (const t of r.teacherTexts) { moves[classifyMove(t)]!++; turns++; }
  console.log(`${rows[0]?.agent ?? file} (${rows.length} dialogs, ${file})`);
  console.log(`  exchanges per dialog ${f2(ex.mean)} [${f2(ex.lo)}, ${f2(ex.hi)}]`);
  console.log(`  distinct student replies per 100 dialogs ${perHundred.map(x => x.toFixed(0)).join(', ')}`);
  console.log(`  return ${f2(mean)} [${f2(ci.lo)}, ${f2(ci.hi)}], sd ${f2(sd)}, min ${f2(Math.min(...rewards))}, max ${f2(Math.max(...rewards))}, ${new Set(rewards.map(x => x.toFixed(6))).size} distinct values`);
  console.log(`  ended by ${Object.entries(ended).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  teacher moves ${Object.entries(moves).map(([k, v]) => `${k} ${(100 * v / Math.max(1, turns)).toFixed(0)}%`).join(', ')}`);
}
