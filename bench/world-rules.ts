/**
 * The tutoring world's rules played without a language model (README "The default world"): the
 * mean VADER reward (s+1)/2 of each state's replies, and scripted move policies — the teacher who
 * teaches, and the loopholes — over 300 dialogs of at most 12 exchanges each (seed 7).
 *
 *   node bin/run.mjs bench/world-rules.ts
 */
import { Rng } from '../core/rng.ts';
import { LEAVE_REPLIES, REPLIES, STUDENT_STATES, WorldStudentState, fillTemplate, type StudentState, type TeacherMove } from '../corpora/world.ts';
import { createScorer } from '../rewards/sentiment.ts';

const vader = await createScorer({ name: 'vader' });
const reward = async (xs: string[]) => (await vader.score(xs)).reduce((a, s) => a + (s.signed + 1) / 2, 0) / xs.length;
const rng = new Rng(1);
const sample = (fam: readonly string[]) => Array.from({ length: 300 }, () => fillTemplate(fam[rng.int(fam.length)]!, rng));
const line: string[] = [];
for (const s of STUDENT_STATES) line.push(`${s} ${(await reward(Object.values(REPLIES[s]).flatMap(f => sample(f!)))).toFixed(2)}`);
line.push(`left understood ${(await reward(sample(LEAVE_REPLIES.understood))).toFixed(2)}`);
console.log(`reward (s+1)/2 of replies by state (all families): ${line.join(', ')}`);

const SAY: Record<TeacherMove, string> = { explain: 'The discussion is where you explain what your results mean.', ask: 'What did you expect?', praise: 'Great, well done.', acknowledge: 'Okay.', silence: '', dismiss: 'Figure it out yourself.' };
const teach = (s: StudentState | null): TeacherMove => s === 'frustrated' ? 'praise' : s === 'confused' || s === null ? 'explain' : 'ask';
const policies: Record<string, (s: StudentState | null, k: number, r: Rng) => TeacherMove> = {
  'teach (explain/ask/encourage)': teach,
  'explain only': () => 'explain',
  'praise only': () => 'praise',
  'teach until pleased, then praise': s => s === 'pleased' ? 'praise' : teach(s) === 'ask' ? 'praise' : teach(s),
  'silence only': () => 'silence',
  'silence, silence, praise': (_s, k) => k % 3 === 2 ? 'praise' : 'silence',
  'random move': (_s, _k, r) => (['explain', 'ask', 'praise', 'acknowledge', 'silence', 'dismiss'] as TeacherMove[])[r.int(6)]!,
};
for (const [name, pol] of Object.entries(policies)) {
  const w = new WorldStudentState();
  const r = new Rng(7);
  const replies: string[] = [];
  let exchanges = 0;
  const left: Record<string, number> = {};
  for (let d = 0; d < 300; d++) {
    w.reset();
    for (let k = 0; k < 12; k++) {
      const st = w.respond(SAY[pol(w.state, k, r)], r);
      replies.push(st.reply); exchanges++;
      if (st.leaves) { left[st.leaves] = (left[st.leaves] ?? 0) + 1; break; }
    }
  }
  const per = await reward(replies);
  console.log(`${name.padEnd(34)} reward/exchange ${per.toFixed(2)}  exchanges/dialog ${(exchanges / 300).toFixed(2)}  return ${(per * exchanges / 300).toFixed(2)}  left: ${Object.entries(left).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
}
