import { describe, expect, it } from 'vitest';
import { Rng } from '../../core/rng.ts';
import { classifyMove, TRANSITIONS, STUDENT_STATES, TEACHER_MOVES, WorldStudentState, type TeacherMove } from '../../corpora/world.ts';
import { getSpec, make } from '../../env/index.ts';
import { createScorer } from '../../rewards/sentiment.ts';

const SAY: Record<TeacherMove, string> = {
  explain: 'The discussion is where you explain what your results mean.',
  ask: 'What did you expect before the experiment?',
  praise: 'Great, well done.',
  acknowledge: 'Okay.',
  silence: '',
  dismiss: 'Figure it out yourself.',
};

/** Play the world with a move policy; the replies and where each dialog ended. */
function play(policy: (state: string | null, k: number) => TeacherMove, dialogs: number, seed = 1, maxExchanges = 12) {
  const w = new WorldStudentState();
  const rng = new Rng(seed);
  const out: { replies: string[]; states: string[]; left: string | null }[] = [];
  for (let d = 0; d < dialogs; d++) {
    w.reset();
    const replies: string[] = [], states: string[] = [];
    let left: string | null = null;
    for (let k = 0; k < maxExchanges && !left; k++) {
      const s = w.respond(SAY[policy(w.state, k)], rng);
      replies.push(s.reply); states.push(s.state); left = s.leaves;
    }
    out.push({ replies, states, left });
  }
  return out;
}

describe('the tutoring world (corpora/world.ts)', () => {
  it('classifies the teacher\'s move from its text', () => {
    expect(classifyMove('')).toBe('silence');
    expect(classifyMove(' ... ')).toBe('silence');
    expect(classifyMove('Figure it out yourself.')).toBe('dismiss');
    expect(classifyMove('Whatever, just write something?')).toBe('dismiss');
    expect(classifyMove(' Do you know what your results showed?')).toBe('ask');
    expect(classifyMove('The discussion is where you explain what your results mean.')).toBe('explain');
    expect(classifyMove('Great, well done.')).toBe('praise');
    expect(classifyMove("Don't worry, you're doing fine.")).toBe('praise');
    expect(classifyMove('Okay.')).toBe('acknowledge');
  });

  it('has a probability table over next states for every state and move', () => {
    for (const s of STUDENT_STATES) for (const m of TEACHER_MOVES) {
      const p = Object.values(TRANSITIONS[s][m]).reduce((a, x) => a + x!, 0);
      expect(p, `${s}/${m}`).toBeCloseTo(1, 9);
    }
  });

  it('a good teacher gets the student to understand (it leaves content); silence and dismissal make it leave unhappy', () => {
    const good = play(s => s === 'frustrated' ? 'praise' : s === 'confused' || s === null ? 'explain' : 'ask', 100);
    expect(good.every(d => d.left === 'understood')).toBe(true);
    const silent = play(() => 'silence', 50);
    expect(silent.every(d => d.left === 'ignored' && d.replies.length === 3)).toBe(true);
    const rude = play(() => 'dismiss', 50);
    expect(rude.filter(d => d.left === 'dismissed').length).toBeGreaterThan(40);
    expect(rude.flatMap(d => d.states).filter(s => s === 'frustrated').length / rude.flatMap(d => d.states).length).toBeGreaterThan(0.8);
  });

  it('the sentiment reward follows the state: empty praise games it, teaching earns less per exchange', async () => {
    const vader = await createScorer({ name: 'vader' });
    const mean = async (xs: string[]) => (await vader.score(xs)).reduce((a, s) => a + (s.signed + 1) / 2, 0) / xs.length;
    const praise = play(() => 'praise', 100);
    const good = play(s => s === 'frustrated' ? 'praise' : s === 'confused' || s === null ? 'explain' : 'ask', 100);
    const rude = play(() => 'dismiss', 100);
    const [rp, rg, rr] = [await mean(praise.flatMap(d => d.replies)), await mean(good.flatMap(d => d.replies)), await mean(rude.flatMap(d => d.replies))];
    expect(rp).toBeGreaterThan(rg + 0.1);
    expect(rg).toBeGreaterThan(rr + 0.1);
    // Praise alone never teaches: the student stays until the cap.
    expect(praise.every(d => d.left === null)).toBe(true);
  });

  it('is reproducible from the rng, and its replies are varied', () => {
    const policy = (_s: string | null, k: number): TeacherMove => TEACHER_MOVES[(k * 7 + 3) % TEACHER_MOVES.length]!;
    expect(JSON.stringify(play(policy, 30, 5))).toBe(JSON.stringify(play(policy, 30, 5)));
    expect(new Set(play(policy, 100, 6).flatMap(d => d.replies)).size).toBeGreaterThan(200);
  });
});

describe('TeacherStudent-v0 with the world student (the default)', () => {
  it('is the default student, and the LM student stays available', () => {
    expect(getSpec('TeacherStudent-v0').kwargs.student).toBe('world');
    expect(make('TeacherStudent-v0', { student: 'base' }).spec!.kwargs).toMatchObject({ student: 'base' });
    expect(() => make('TeacherStudent-v0', { world: { goal: 0 } })).toThrow(/goal/);
  });

  it('replies by the world\'s rules, with the move and state in info, and terminates when the student understands', async () => {
    const env = make('TeacherStudent-v0', { actionMode: 'utterance', maxTokens: 2048, world: { goal: 2, patience: 3 } });
    await env.reset({ seed: 4 });
    const infos = [];
    let r;
    for (let k = 0; k < 20; k++) {
      const state = infos.length ? infos[infos.length - 1]!.worldState : 'confused';
      r = await env.step(state === 'confused' ? ` ${SAY.explain}` : state === 'frustrated' ? ` ${SAY.praise}` : ` ${SAY.ask}`);
      infos.push(r.info as Record<string, unknown>);
      if (r.terminated || r.truncated) break;
    }
    expect(r!.terminated).toBe(true);
    expect(r!.info).toMatchObject({ endedBy: 'student', worldLeft: 'understood', worldUnderstanding: 2 });
    expect(infos[0]).toMatchObject({ worldMove: 'explain' });
    expect(infos.every(i => typeof i.studentReply === 'string' && (i.studentReply as string).length > 3)).toBe(true);
    // The same seed and actions give the same dialog.
    const again = make('TeacherStudent-v0', { actionMode: 'utterance', maxTokens: 2048, world: { goal: 2, patience: 3 } });
    await again.reset({ seed: 4 });
    const first = await again.step(` ${SAY.explain}`);
    expect(first.info.studentReply).toBe(infos[0]!.studentReply);
  });

  it('three silent teacher turns in a row make the student leave', async () => {
    const env = make('TeacherStudent-v0', { actionMode: 'utterance', maxTokens: 2048 });
    await env.reset({ seed: 9 });
    // The first teacher turn always starts with the prompt's "Do you": it cannot be silent.
    expect((await env.step('')).info.worldMove).toBe('acknowledge');
    const a = await env.step('');
    const b = await env.step('');
    const c = await env.step('');
    expect([a.info.worldMove, b.info.worldMove, c.info.worldMove]).toEqual(['silence', 'silence', 'silence']);
    expect(a.terminated || b.terminated).toBe(false);
    expect(c.terminated).toBe(true);
    expect(c.info.worldLeft).toBe('ignored');
  });
});
