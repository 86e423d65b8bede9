/**
 * Records a seeded trajectory through the TypeScript client (agents/client.ts) and with the env in
 * process (env/registry.ts makeVec), for the Python tests' bit-for-bit comparison:
 * `node bin/run.mjs clients/python/tests/trajectory.ts < REQUEST.json` with the request
 * `{url, env, kwargs, numEnvs, autoresetMode, obsEncoding, seed, actions: [[...], ...]}`; prints
 * `{remote: [reset, step...], local: [reset, step...]}` as JSON (numbers as JS writes them:
 * shortest round-trip form, so Python reads the same float64 values).
 */
import { readFileSync } from 'node:fs';
import { connectVectorEnv } from '../../../agents/client.ts';
import { makeVec } from '../../../env/index.ts';
import { initBackend } from '../../../models/backend.ts';
import type { AutoresetMode, VectorEnv } from '../../../env/core.ts';

interface Req { url: string; env: string; kwargs?: Record<string, unknown>; numEnvs: number; autoresetMode?: AutoresetMode; obsEncoding?: 'json' | 'f64'; seed: number; actions: unknown[][] }
const req = JSON.parse(readFileSync(0, 'utf8')) as Req;
await initBackend('auto');

async function run(vec: VectorEnv): Promise<unknown[]> {
  const out: unknown[] = [await vec.reset({ seed: req.seed })];
  for (const a of req.actions) out.push(await vec.step(a));
  await vec.close();
  return out;
}

const remote = await run(await connectVectorEnv(req.url, { env: req.env, kwargs: req.kwargs, numEnvs: req.numEnvs, autoresetMode: req.autoresetMode, obsEncoding: req.obsEncoding }));
const local = await run(makeVec(req.env, { numEnvs: req.numEnvs, kwargs: req.kwargs, autoresetMode: req.autoresetMode }));
process.stdout.write(JSON.stringify({ remote, local }));
