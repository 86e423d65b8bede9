// Issue 12, items 1 and 2: the two measures of "saying nothing" (empty: no word before the marker;
// short: ≤ N content tokens), and dialogs without a completed teacher turn left out of the
// per-dialog mean of a share (with the pooled share beside it). A scripted teacher writes known
// turns through the real env and evaluate().
import { describe, expect, it } from 'vitest';
import { makeVec } from '../../env/index.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import type { AgentDecision, EvalAgent } from '../../agents/eval/agents.ts';
import { evaluate, type DialogRow } from '../../agents/eval/evaluate.ts';
import { summarize } from '../../agents/eval/summary.ts';
import { dialogMetrics } from '../../agents/rl/run.ts';
import type { Episode } from '../../agents/rl/rollout.ts';
import { METRICS as M } from '../../agents/metrics.ts';
import { isEmptyTurn, ngramRepetition, ngramWords, packF32, unpackF32 } from '../../agents/eval/turns.ts';

const tok = loadDialogTokenizer(defaultModelDir());
const kwargs = { maxTokens: 150, maxStudentTokens: 6 };

/** A teacher that plays, per env row, a fixed list of turns (token ids; the marker is added), cycling; `null`: never ends its turn. */
class ScriptedTeacher implements EvalAgent {
  readonly name = 'scripted';
  readonly kind = 'scripted';
  private pos: { turn: number; tok: number }[] = [];
  constructor(private readonly scripts: (number[][] | null)[]) {}
  begin(row: number): void { this.pos[row] = { turn: 0, tok: 0 }; }
  async act(rows: readonly number[]): Promise<AgentDecision[]> {
    const word = tok.encode(' the')[0]!;
    return rows.map(r => {
      const script = this.scripts[r];
      if (!script) return { action: word, logProbs: new Float32Array(0) };
      const p = this.pos[r]!;
      const turn = script[p.turn % script.length]!;
      if (p.tok < turn.length) return { action: turn[p.tok++]!, logProbs: new Float32Array(0) };
      p.turn++; p.tok = 0;
      return { action: tok.special.student, logProbs: new Float32Array(0) };
    });
  }
}

async function run(agent: EvalAgent, episodes: number, numEnvs: number, shortTurnTokens?: number): Promise<DialogRow[]> {
  const env = makeVec('TeacherStudent-v0', { numEnvs, kwargs, autoresetMode: 'disabled' });
  try {
    return await evaluate({ env, agent, episodes, seed: 7, tokenizer: tok, ...(shortTurnTokens !== undefined ? { shortTurnTokens } : {}) });
  } finally { await env.close(); }
}

describe('empty and short teacher turns (issue 12, item 1)', () => {
  const yes = tok.encode(' Yes.'), dots = tok.encode(' ...'), long = tok.encode(' I think we should look at the results again.');

  it('" Yes." is short, not empty; a turn without a word is both; the N of short is configurable', async () => {
    expect(yes.length).toBeLessThanOrEqual(4);
    expect(dots.length).toBeLessThanOrEqual(4);
    expect(long.length).toBeGreaterThan(4);
    const [row] = await run(new ScriptedTeacher([[yes, dots, long]]), 1, 1);
    const r = row!;
    expect(r.teacherTurns).toBeGreaterThanOrEqual(3);
    // Turns cycle yes, dots, long: count what each measure should see.
    const kinds = r.teacherTurnTokens.map((n, i) => ['yes', 'dots', 'long'][i % 3]!);
    expect(r.teacherTexts.slice(0, 3)).toEqual([' Yes.', ' ...', ' I think we should look at the results again.']);
    expect(r.emptyTurns).toBe(kinds.filter(k => k === 'dots').length);
    expect(r.shortTurns).toBe(kinds.filter(k => k !== 'long').length);
    expect(r.turnEmpty).toEqual(kinds.map(k => k === 'dots'));
    expect(r.emptyShare).toBeCloseTo(r.emptyTurns / r.teacherTurns, 12);
    expect(r.shortShare).toBeCloseTo(r.shortTurns / r.teacherTurns, 12);
    const s = summarize([r]);
    expect(s.shortTurnTokens).toBe(4);
    expect(s.emptyTurnSharePooled.mean).toBeLessThan(s.shortTurnSharePooled.mean);

    // N = 0: only turns without content tokens are short (none here); the empty count does not move.
    const [r0] = await run(new ScriptedTeacher([[yes, dots, long]]), 1, 1, 0);
    expect(r0!.shortTurns).toBe(0);
    expect(r0!.emptyTurns).toBe(r.emptyTurns);
    expect(r0!.shortTurnTokens).toBe(0);
  });

  it('the empty test is about words, not tokens', () => {
    expect(isEmptyTurn('')).toBe(true);
    expect(isEmptyTurn(' ... ?')).toBe(true);
    expect(isEmptyTurn(' OK?')).toBe(false);
    expect(isEmptyTurn(' 7')).toBe(false);
    expect(isEmptyTurn(' ¿Sí?')).toBe(false);
  });
});

describe('dialogs without a completed teacher turn (issue 12, item 2)', () => {
  it('have no share (NaN), are left out of the per-dialog mean, and the pooled share sits beside it', async () => {
    const dots = tok.encode(' ...');
    // Row 0 never ends its turn (truncated with no completed teacher turn); row 1 only says "...".
    const rows = await run(new ScriptedTeacher([null, [dots]]), 2, 2);
    expect(rows[0]!.teacherTurns).toBe(0);
    expect(rows[0]!.emptyShare).toBeNaN();
    expect(rows[0]!.shortShare).toBeNaN();
    expect(rows[1]!.teacherTurns).toBeGreaterThan(0);
    expect(rows[1]!.emptyShare).toBe(1);
    const s = summarize(rows);
    expect(s.emptyTurnShare.mean).toBe(1);
    expect(s.emptyTurnShare.n).toBe(1);
    expect(s.shortTurnShare.mean).toBe(1);
    expect(s.emptyTurnSharePooled.mean).toBe(1);
    expect(s.episodes).toBe(2);
    // Through JSON (rows files) the undefined share stays out.
    const back = rows.map(r => JSON.parse(JSON.stringify(r)) as DialogRow);
    expect(summarize(back).emptyTurnShare).toEqual(s.emptyTurnShare);
  });
});

describe('repetition as Cohen et al. count it, and packed per-token values', () => {
  it('numbers each n-gram by its appearance inside teacher turns', () => {
    expect(ngramWords("I don't know, I know 2 things.")).toEqual(['I', 'don', 'know', 'I', 'know', 'things']);
    const [one, two] = ngramRepetition(['you know you know', 'you know'], 2);
    // 1-grams: you know you know you know → 6 occurrences, 4 repeats; "you" and "know" repeat.
    expect(one).toEqual({ n: 1, occurrences: 6, repeats: 4, repeatedDistinct: 2 });
    // 2-grams inside turns only: (you know)(know you)(you know) | (you know) → 4 occurrences, 2 repeats.
    expect(two).toEqual({ n: 2, occurrences: 4, repeats: 2, repeatedDistinct: 1 });
    expect(() => ngramRepetition([], 0)).toThrow(/maxN/);
  });

  it('per-token KL is packed as float32 and unpacks to the same values', () => {
    const xs = [0, 0.125, 3.5, NaN, 1e-7];
    const back = unpackF32(packF32(xs));
    expect(back.slice(0, 3)).toEqual([0, 0.125, 3.5]);
    expect(back[3]).toBeNaN();
    expect(back[4]).toBeCloseTo(1e-7, 12);
    expect(() => unpackF32('AAA')).toThrow(/float32/);
  });
});

describe('training metrics count turns as eval does', () => {
  it('env/empty_teacher_turn_share is the no-word measure and env/short_teacher_turn_share the ≤ 4-token one', () => {
    const ex = (teacher: string, teacherTokens: number) => ({ teacher, student: ' ok', reward: 0, teacherTokens, studentTokens: 1 });
    // " Yes." and " OK?" are short, not empty (the old ≤ 4-token count called them empty); " ..." is both.
    const ep = { exchanges: [ex(' Yes.', 2), ex(' OK?', 2), ex(' ...', 1), ex(' Let us look at the second step together', 9)], kl: [0], return: 0, tokens: [], actions: [], terminated: false };
    const m = dialogMetrics([ep as unknown as Episode<unknown>]);
    expect(m[M.emptyTeacherTurnShare]).toBeCloseTo(1 / 4, 12);
    expect(m[M.shortTeacherTurnShare]).toBeCloseTo(3 / 4, 12);
  });
});
