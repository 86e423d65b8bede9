/**
 * The recorder stores the dialogs of any env that declares the dialog capability (`spec.dialog`),
 * whatever its id or class, and nothing of an env that does not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectVectorEnv } from '../../agents/client.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { TURN_STUDENT, TURN_TEACHER } from '../../core/markers.ts';
import type { Env, EnvSpec, ResetResult, StepResult } from '../../env/core.ts';
import type { DialogInfo } from '../../env/dialog.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { makeVec, register, unregister } from '../../env/registry.ts';
import { Dict, Text } from '../../env/spaces.ts';
import { COHEN_PROMPT, TeacherStudentEnv, TeacherStudentKwargs, teacherStudentDialogSpec } from '../../env/teacher-student.ts';
import { resolveServerConfig } from '../../configs/server.ts';
import { openStore } from '../../server/storage/db.ts';
import { recordDialogs } from '../../server/storage/recorder.ts';
import { shouldRecord } from '../../server/plugins/storage.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';

const PARROT_PROMPT = `The student repeats what the teacher says.${TURN_STUDENT} Hello.${TURN_TEACHER}`;

/** A dialog env that is not TeacherStudent: utterance actions, the student repeats the teacher, two exchanges. */
class ParrotEnv implements Env<{ text: string }, string> {
  readonly observationSpace = new Dict({ text: new Text(100_000) });
  readonly actionSpace = new Text(2000);
  spec: EnvSpec | null = null;
  private text = '';
  private turn = 0;
  async reset(): Promise<ResetResult<{ text: string }>> {
    this.text = PARROT_PROMPT;
    this.turn = 0;
    return { observation: { text: this.text }, info: { turn: 0, prompt: 'custom' } };
  }
  async step(said: string): Promise<StepResult<{ text: string }>> {
    const reply = ` ${said.trim()}?`;
    this.text += `${said}${TURN_STUDENT}${reply}${TURN_TEACHER}`;
    this.turn++;
    const done = this.turn >= 2;
    const info: DialogInfo = { turn: this.turn, teacherUtterance: said, studentReply: reply, rewardComponents: { echo: 1 }, ...(done ? { endedBy: 'student' } : {}) };
    return { observation: { text: this.text }, reward: 1, terminated: done, truncated: false, info: info as Record<string, unknown> };
  }
  async close(): Promise<void> {}
}

const tsKwargs = TeacherStudentKwargs;
const ids = ['Tutoring-v0', 'Parrot-v0', 'Undeclared-v0'];
let srv: TestServer;

beforeAll(async () => {
  // TeacherStudent under another id, with the dialog capability declared.
  register({
    id: 'Tutoring-v0', kwargsSchema: tsKwargs, maxEpisodeSteps: null, description: 'TeacherStudent under another name',
    entryPoint: (kw, ctx) => new TeacherStudentEnv(kw as TeacherStudentKwargs, ctx),
    dialog: kw => teacherStudentDialogSpec(kw as TeacherStudentKwargs),
  });
  register({
    id: 'Parrot-v0', maxEpisodeSteps: 10, description: 'a parrot student',
    entryPoint: () => new ParrotEnv(),
    dialog: () => ({ actionMode: 'utterance', student: 'scripted', maxTokens: 4096, model: null, reward: 'echo', prompt: 'custom' }),
  });
  // The same env as Tutoring-v0 without the declaration: not a dialog env to the recorder.
  register({
    id: 'Undeclared-v0', kwargsSchema: tsKwargs, maxEpisodeSteps: null, description: 'TeacherStudent without spec.dialog',
    entryPoint: (kw, ctx) => new TeacherStudentEnv(kw as TeacherStudentKwargs, ctx),
  });
  srv = await startTestServer({ storage: { record: 'all' } });
});

afterAll(async () => {
  await srv?.close();
  for (const id of ids) unregister(id);
});

const scripted = { student: 'scripted', scripted: { rules: [], default: ' I see, thanks.' } };

describe('recording dialog-capable envs', () => {
  it('decides by the spec, not by the id', () => {
    const config = resolveServerConfig({ storage: { record: 'all' } });
    const human = resolveServerConfig({ storage: { record: 'human' } });
    const spec = (id: string, kwargs = {}) => makeVec(id, { kwargs }).spec;
    expect(shouldRecord(config, spec('Tutoring-v0', scripted))).toBe(true);
    expect(shouldRecord(config, spec('Parrot-v0'))).toBe(true);
    expect(shouldRecord(config, spec('Undeclared-v0', scripted))).toBe(false);
    expect(shouldRecord(config, spec('Echo-v0'))).toBe(false);
    expect(shouldRecord(human, spec('Tutoring-v0', scripted))).toBe(false);
    expect(shouldRecord(human, spec('Tutoring-v0', { student: 'human' }))).toBe(true);
    expect(() => recordDialogs(makeVec('Echo-v0'), { store: srv.app.store, modelDir: defaultModelDir() })).toThrow(/dialog capability/);
  });

  it('records a TeacherStudent env registered under another id, like TeacherStudent-v0', async () => {
    const tok = loadDialogTokenizer(defaultModelDir());
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Tutoring-v0', numEnvs: 1, kwargs: scripted });
    try {
      await env.reset({ seed: 5, options: { agent: 'tutor' } });
      for (const id of tok.encode(' what did you find?')) await env.step([id]);
      const s = await env.step([tok.special.student]);
      expect(s.infos[0]!.studentReply).toBe(' I see, thanks.');
    } finally {
      await env.close();
    }
    const [d] = srv.app.store.listDialogs({ env: 'Tutoring-v0' });
    expect(d).toMatchObject({ env: 'Tutoring-v0', student: 'scripted', agentName: 'tutor', seed: 5 });
    const got = srv.app.store.getDialog(d!.id)!;
    expect(got.metadata).toMatchObject({ prompt: COHEN_PROMPT, promptKind: 'cohen', kwargs: { actionMode: 'token', reward: 'cohen', maxTokens: 256, model: null, prompt: 'cohen' } });
    expect(got.turns.map(t => [t.role, t.text])).toEqual([['teacher', ' Do you what did you find?'], ['student', ' I see, thanks.']]);
    expect(got.rewards).toHaveLength(1);
    expect(got.rewards[0]!.components).toMatchObject({ sentiment: expect.any(Number) });
  });

  it('records a dialog env of its own kind (utterance actions, text transcripts) to its end', async () => {
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Parrot-v0', numEnvs: 1, autoresetMode: 'disabled' });
    try {
      await env.reset({ seed: 1 });
      await env.step([' Fine']);
      const last = await env.step([' Good']);
      expect(last.terminated[0]).toBe(true);
    } finally {
      await env.close();
    }
    const [d] = srv.app.store.listDialogs({ env: 'Parrot-v0' });
    const got = srv.app.store.getDialog(d!.id)!;
    expect(got).toMatchObject({ student: 'scripted', endReason: 'terminated', endDetail: 'student' });
    expect(got.metadata).toMatchObject({ prompt: PARROT_PROMPT, promptKind: 'custom' });
    expect(got.turns.map(t => [t.role, t.text, t.metadata])).toEqual([
      ['teacher', ' Fine', {}], ['student', ' Fine?', {}], ['teacher', ' Good', {}], ['student', ' Good?', { left: true }],
    ]);
    expect(got.rewards.map(r => [r.turn, r.total, r.components])).toEqual([[1, 1, { echo: 1 }], [3, 1, { echo: 1 }]]);
  });

  it('records nothing of an env without the capability, even one that writes dialog infos', async () => {
    const before = srv.app.store.stats().dialogs;
    const tok = loadDialogTokenizer(defaultModelDir());
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Undeclared-v0', numEnvs: 1, kwargs: scripted });
    try {
      await env.reset({ seed: 5 });
      const s = await env.step([tok.special.student]);
      expect(typeof s.infos[0]!.studentReply).toBe('string');
    } finally {
      await env.close();
    }
    expect(srv.app.store.listDialogs({ env: 'Undeclared-v0' })).toEqual([]);
    expect(srv.app.store.stats().dialogs).toBe(before);
  });

  it('records with a store and a model folder alone (no server)', async () => {
    const store = openStore(':memory:');
    try {
      const vec = recordDialogs(makeVec('Parrot-v0', { autoresetMode: 'disabled' }), { store, modelDir: defaultModelDir() });
      await vec.reset({ seed: 3 });
      await vec.step([' One']);
      await vec.close();
      const [d] = store.listDialogs({ env: 'Parrot-v0' });
      expect(store.getDialog(d!.id)!.turns.map(t => t.text)).toEqual([' One', ' One?']);
      expect(store.getDialog(d!.id)!.endReason).toBe('abandoned');
    } finally {
      store.close();
    }
  });
});
