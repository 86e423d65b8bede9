import { describe, expect, it } from 'vitest';
import { COHEN_PROMPT } from '../../env/teacher-student.ts';
import { checkEnv, make, makeVec, type StepResult } from '../../env/index.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogModel, loadDialogTokenizer } from '../../env/dialog-model.ts';
import { createScorer } from '../../rewards/sentiment.ts';
import { itWithData } from '../helpers/data.ts';

const tok = () => loadDialogTokenizer(defaultModelDir());
type Obs = { tokens: number[]; length: number[]; timeLeft: number[] };
const transcriptOf = (o: unknown) => { const x = o as Obs; return tok().decode(x.tokens.slice(0, x.length[0])); };

const scripted = {
  rules: [{ contains: 'great job', reply: ' Thank you so much, I love this, it is wonderful!' }],
  default: ' This is terrible and I hate it.',
};

async function say(env: ReturnType<typeof make>, text: string): Promise<StepResult[]> {
  const out: StepResult[] = [];
  for (const id of tok().encode(text)) out.push(await env.step(id));
  out.push(await env.step(tok().special.student));
  return out;
}

describe('TeacherStudent-v0', () => {
  it('passes checkEnv with the default world student, the base-model student and a scripted one', async () => {
    await checkEnv(() => make('TeacherStudent-v0'), { seed: 3, maxSteps: 40 });
    await checkEnv(() => make('TeacherStudent-v0', { student: 'base' }), { seed: 3, maxSteps: 40 });
    await checkEnv(() => make('TeacherStudent-v0', { student: 'scripted', scripted }), { seed: 3, maxSteps: 40 });
  });

  it('starts from the prompt of Cohen et al. with the agent mid-utterance after "Teacher: Do you"', async () => {
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted });
    const r = await env.reset({ seed: 1 });
    expect(transcriptOf(r.observation)).toBe(COHEN_PROMPT);
    expect(COHEN_PROMPT.endsWith('\n\nTeacher: Do you')).toBe(true);
    const o = r.observation as Obs;
    expect(o.tokens).toHaveLength(256);
    expect(o.timeLeft[0]).toBeCloseTo(1 - o.length[0]! / 256, 6);
    expect(env.actionSpace.toJSON()).toEqual({ type: 'Discrete', n: tok().vocabSize, start: 0 });
  });

  it('rewards the student reply with (s+1)/2 on the step that completes it, 0 otherwise', async () => {
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted });
    await env.reset({ seed: 1 });
    const steps = await say(env, ' like it? great job');
    const last = steps[steps.length - 1]!;
    expect(steps.slice(0, -1).every(s => s.reward === 0 && !s.terminated && !s.truncated)).toBe(true);
    const [vader] = await (await createScorer({ name: 'vader' })).score([scripted.rules[0]!.reply.trim()]);
    expect(last.reward).toBeCloseTo((vader!.signed + 1) / 2, 6);
    expect(last.reward).toBeGreaterThan(0.8);
    expect(last.info.studentReply).toBe(scripted.rules[0]!.reply);
    expect(last.info.teacherUtterance).toBe(' Do you like it? great job');
    expect(last.info.rewardComponents).toMatchObject({ sentiment: expect.any(Number) });
    expect(last.info.turn).toBe(1);
    expect(transcriptOf(last.observation)).toBe(`${COHEN_PROMPT} like it? great job\n\nStudent:${scripted.rules[0]!.reply}\n\nTeacher:`);
    // The next exchange: an unhappy reply, rewarded below 0.5.
    const next = await say(env, ' Fine.');
    expect(next[next.length - 1]!.reward).toBeLessThan(0.3);
    expect(next[next.length - 1]!.info.teacherUtterance).toBe(' Fine.');
  });

  it('truncates at maxTokens, prompt included, and never merges it with terminated', async () => {
    const promptLen = tok().encode(COHEN_PROMPT).length;
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted, maxTokens: promptLen + 5 });
    await env.reset({ seed: 1 });
    const a = tok().encode(' a')[0]!;
    const rs: StepResult[] = [];
    for (let i = 0; i < 5; i++) rs.push(await env.step(a));
    expect(rs.map(r => r.truncated)).toEqual([false, false, false, false, true]);
    expect(rs.every(r => !r.terminated)).toBe(true);
    expect(rs[4]!.info.truncatedBy).toBe('token-limit');
    expect((rs[4]!.observation as Obs).timeLeft[0]).toBe(0);
    await expect(env.step(a)).rejects.toMatchObject({ code: 'RESET_NEEDED' });
  });

  it('terminates when the student leaves (reply still rewarded) or the teacher ends the dialog', async () => {
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted: { ...scripted, leaveAfter: 2 } });
    await env.reset({ seed: 1 });
    const first = await say(env, ' great job');
    expect(first[first.length - 1]!.terminated).toBe(false);
    const second = await say(env, ' great job');
    const end = second[second.length - 1]!;
    expect(end.terminated).toBe(true);
    expect(end.truncated).toBe(false);
    expect(end.info.endedBy).toBe('student');
    expect(end.reward).toBeGreaterThan(0.8);
    await env.reset({ seed: 2 });
    const bye = await env.step(tok().special.endOfText);
    expect(bye).toMatchObject({ reward: 0, terminated: true, truncated: false });
    expect(bye.info.endedBy).toBe('teacher');
  });

  it('utterance mode takes one teacher utterance per step', async () => {
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted, actionMode: 'utterance' });
    const r = await env.reset({ seed: 4 });
    expect((r.observation as { text: string }).text).toBe(COHEN_PROMPT);
    const s = await env.step(' want an example? You did a great job so far.');
    expect(s.reward).toBeGreaterThan(0.8);
    expect(s.info.studentReply).toBe(scripted.rules[0]!.reply);
    expect((s.observation as { text: string }).text.endsWith('\n\nTeacher:')).toBe(true);
    await expect(env.step(42 as never)).rejects.toMatchObject({ code: 'INVALID_ACTION' });
  });

  it('the base-model student is reproducible by seed, alone and in a vector env', async () => {
    const run = async () => {
      const env = make('TeacherStudent-v0', { student: 'base', maxStudentTokens: 12 });
      await env.reset({ seed: 11 });
      const steps = await say(env, ' know what a discussion is?');
      return steps[steps.length - 1]!;
    };
    const a = await run(), b = await run();
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(typeof a.info.studentReply).toBe('string');

    const v = makeVec('TeacherStudent-v0', { numEnvs: 3, kwargs: { student: 'base', maxStudentTokens: 12 } });
    await v.reset({ seed: 11 });
    // Count the student's sampling calls and their batch sizes.
    const sampler = (await loadDialogModel(defaultModelDir())).sampler;
    const original = sampler.sampleBatch;
    const batches: number[] = [];
    sampler.sampleBatch = (contexts, opts) => { batches.push(contexts.length); return original.call(sampler, contexts, opts); };
    let last;
    try {
      for (const id of [...tok().encode(' know what a discussion is?'), tok().special.student]) last = await v.step([id, id, id]);
    } finally {
      sampler.sampleBatch = original;
    }
    // The three replies were sampled in one batched call...
    expect(batches).toEqual([3]);
    // ...and sub-env 0 has seed 11, like the single env: the same reply although sampled in a batch of 3.
    expect(last!.infos[0]!.studentReply).toBe(a.info.studentReply);
    expect(last!.rewards[0]).toBe(a.reward);
    await v.close();
  });

  it('puts the base policy\'s next-token log-probabilities in info on request', async () => {
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted, baseLogProbs: true });
    const r = await env.reset({ seed: 1 });
    const lp = r.info.baseLogProbs as number[];
    expect(lp).toHaveLength(tok().vocabSize);
    const total = lp.reduce((s, x) => s + Math.exp(x), 0);
    expect(total).toBeCloseTo(1, 3);
    const s = await env.step(tok().encode(' a')[0]!);
    expect((s.info.baseLogProbs as number[])).toHaveLength(tok().vocabSize);
  });

  itWithData('opens with a MathDial problem when asked', ['mathdial/test.jsonl'], async () => {
    const env = make('TeacherStudent-v0', { student: 'scripted', scripted, prompt: 'mathdial', maxTokens: 1024 });
    const r1 = await env.reset({ seed: 5 });
    const r2 = await env.reset({ seed: 5 });
    expect(transcriptOf(r1.observation)).toMatch(/^The following is a conversation between a math teacher[\s\S]*Problem: [\s\S]*Student's solution: [\s\S]*\n\nTeacher:$/);
    expect(r1.info.mathdialId).toBe(r2.info.mathdialId);
  });

  it('rejects bad kwargs with a coded error', () => {
    expect(() => make('TeacherStudent-v0', { student: 'scripted' })).toThrow(/scripted rules/);
    expect(() => make('TeacherStudent-v0', { maxTokens: 2 })).toThrow(/maxTokens/);
    expect(() => make('TeacherStudent-v0', { model: '/nonexistent/model' })).toThrow(/no model/);
    expect(() => make('TeacherStudent-v0', { actionMode: 'sentence' })).toThrow(/actionMode/);
  });
});
