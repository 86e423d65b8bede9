import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectVectorEnv } from '../../agents/client.ts';
import { Rng, makeVec, type VectorEnv } from '../../env/index.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

/** A seeded "agent" that ends its turn with probability 0.25, so that the student speaks often. */
async function rollout(env: VectorEnv, seed: number, steps: number): Promise<string[]> {
  const tok = loadDialogTokenizer(defaultModelDir());
  const rng = new Rng(seed);
  const out = [JSON.stringify(await env.reset({ seed }))];
  for (let t = 0; t < steps; t++) {
    const actions = Array.from({ length: env.numEnvs }, () => (rng.random() < 0.25 ? tok.special.student : 4 + rng.int(tok.vocabSize - 4)));
    out.push(JSON.stringify(await env.step(actions)));
  }
  return out;
}

describe('TeacherStudent-v0 over the wire', () => {
  it('gives the same trajectories, bit for bit, as the env in process', async () => {
    const kwargs = { maxStudentTokens: 6, maxTokens: 160 };
    const remote = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 3, kwargs });
    expect(remote.singleActionSpace.toJSON()).toMatchObject({ type: 'Discrete' });
    const a = await rollout(remote, 5, 60);
    const b = await rollout(makeVec('TeacherStudent-v0', { numEnvs: 3, kwargs }), 5, 60);
    expect(a).toEqual(b);
    // Student turns happened and some episodes ended (autoreset included in the comparison).
    const steps = a.slice(1).map(s => JSON.parse(s) as { infos: { studentReply?: string }[]; truncated: boolean[] });
    expect(steps.some(s => s.infos.some(i => typeof i.studentReply === 'string'))).toBe(true);
    expect(steps.some(s => s.truncated.some(Boolean))).toBe(true);
    await remote.close();
  });
});
