/**
 * Two servers in one process, each with its own base model and chat lobby: nothing an env needs is
 * process-wide (env/context.ts), so each server's envs, /v1/models/base, recorder and human
 * students use that server's own. With a process-wide default model dir or lobby, the second
 * server would take over the first one's.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectVectorEnv, type RemoteVectorEnv } from '../../agents/client.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { COHEN_PROMPT } from '../../env/teacher-student.ts';
import type { BpeTokenizer } from '../../models/tokenizer.ts';
import { buildTinyModel, tinyModelDir } from '../helpers/tiny-model.ts';
import { PersonClient } from '../chat/helpers.ts';
import { startTestServer, type TestServer } from './helpers.ts';

let dirA: string, dirB: string;
let tokA: BpeTokenizer, tokB: BpeTokenizer;
let a: TestServer, b: TestServer;
const envs: RemoteVectorEnv[] = [];

beforeAll(async () => {
  dirA = defaultModelDir();
  // A second base model with another vocabulary, so that using the wrong one shows.
  dirB = await buildTinyModel({ dir: tinyModelDir('colloquy-two-servers'), vocabSize: 420, seed: 7 });
  tokA = loadDialogTokenizer(dirA);
  tokB = loadDialogTokenizer(dirB);
  expect(tokB.vocabSize).not.toBe(tokA.vocabSize);
  // A first, then B: a process-wide setting would be B's for both.
  a = await startTestServer({}, { modelDir: dirA });
  b = await startTestServer({}, { modelDir: dirB });
});

// Each test's remote envs are closed after it (before a test closes a server under them).
afterEach(async () => { for (const e of envs.splice(0)) await e.close().catch(() => {}); });

let bClosed = false;
afterAll(async () => {
  await a?.close();
  if (!bClosed) await b?.close();
  if (dirB) rmSync(dirB, { recursive: true, force: true });
});

async function connect(srv: TestServer, kwargs: Record<string, unknown>): Promise<RemoteVectorEnv> {
  const e = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 1, kwargs });
  envs.push(e);
  return e;
}

async function person(srv: TestServer): Promise<PersonClient> {
  const p = await PersonClient.connect(`${srv.url.replace(/^http/, 'ws')}/chat/ws`);
  p.send({ type: 'hello' });
  await p.waitFor('welcome');
  p.send({ type: 'join' });
  return p;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const scripted = { student: 'scripted', scripted: { rules: [], default: ' Thanks, that helps a lot!' } };

describe('two servers in one process', () => {
  it('each makes its dialog envs on its own base model (REST, protocol) and serves it as /v1/models/base', async () => {
    for (const [srv, tok, dir] of [[a, tokA, dirA], [b, tokB, dirB]] as const) {
      const listing = await (await fetch(`${srv.url}/v1/envs/TeacherStudent-v0`)).json() as { actionSpace: { n: number }; spec: { dialog?: unknown } };
      expect(listing.actionSpace.n).toBe(tok.vocabSize);
      expect(listing.spec.dialog).toMatchObject({ actionMode: 'token', student: 'simulated', model: null });
      const env = await connect(srv, scripted);
      expect(env.singleActionSpace.toJSON()).toMatchObject({ type: 'Discrete', n: tok.vocabSize });
      const r = await env.reset({ seed: 1 });
      const o = r.observations[0] as { tokens: number[]; length: number[] };
      expect(tok.decode(o.tokens.slice(0, o.length[0]))).toBe(COHEN_PROMPT);
      const base = await (await fetch(`${srv.url}/v1/models/base`)).json() as { files: { name: string; sha256: string }[] };
      expect(base.files.find(f => f.name === 'tokenizer.json')!.sha256).toBe(sha256(path.join(dir, 'tokenizer.json')));
      expect(base.files.find(f => f.name === 'weights.bin')!.sha256).toBe(sha256(path.join(dir, 'weights.bin')));
    }
  });

  it('each records its dialogs in its own store, read with its own tokenizer', async () => {
    const env = await connect(b, scripted);
    await env.reset({ seed: 2, options: { agent: 'two-servers' } });
    for (const id of tokB.encode(' can you see this?')) await env.step([id]);
    const s = await env.step([tokB.special.student]);
    expect(s.infos[0]!.studentReply).toBe(' Thanks, that helps a lot!');
    const [d] = b.app.store.listDialogs({ agent: 'two-servers' });
    expect(d).toBeDefined();
    const got = b.app.store.getDialog(d!.id)!;
    expect(got.metadata.prompt).toBe(COHEN_PROMPT);
    expect(got.turns.map(t => [t.role, t.text])).toEqual([['teacher', ' Do you can you see this?'], ['student', ' Thanks, that helps a lot!']]);
    expect(a.app.store.listDialogs({ agent: 'two-servers' })).toEqual([]);
  });

  it('pairs a human-student dialog with a person on its own server\'s chat page only, also after the other server closes', async () => {
    const onB = await person(b);
    await onB.waitFor('lobby');            // waits in B's lobby
    const env = await connect(a, { student: 'human', maxTokens: 600 });
    await env.reset({ seed: 3 });          // opens a seat in A's lobby
    const onA = await person(a);
    await onA.waitFor('paired');
    expect(onB.frames.some(f => f.type === 'paired')).toBe(false);
    onA.close();
    onB.close();

    for (const e of envs.splice(0)) await e.close();
    await b.close();
    bClosed = true;
    const env2 = await connect(a, { student: 'human', maxTokens: 600 });
    await env2.reset({ seed: 4 });
    const again = await person(a);
    await again.waitFor('paired');
    again.close();
  });
});
