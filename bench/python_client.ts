/**
 * The TypeScript side of bench/python_client.py: env-steps/s of Echo-v0 through agents/client.ts
 * against a running server, with bench/protocol.ts's workload (reset seed 1, actions i % 16, one
 * request in flight, 300 ms warm-up), one run per case; prints `[{numEnvs, obs, steps, seconds}]`.
 *
 *   node bin/run.mjs bench/python_client.ts --url ws://127.0.0.1:PORT/v1/env --cases 1:json,64:json,64:f64 --seconds 1
 */
import { parseArgs } from 'node:util';
import { timeEchoSteps } from './echo-steps.ts';
import type { ObsEncoding } from '../protocol/v1.ts';

const { values } = parseArgs({ options: { url: { type: 'string' }, cases: { type: 'string', default: '1:json,64:json,64:f64' }, seconds: { type: 'string', default: '1' } } });
if (!values.url) throw new Error('--url is required');
const seconds = Number(values.seconds);
const out: { numEnvs: number; obs: ObsEncoding; steps: number; seconds: number }[] = [];
for (const c of values.cases!.split(',')) {
  const [n, enc] = c.split(':');
  const numEnvs = Number(n), obs = (enc ?? 'json') as ObsEncoding;
  const { env, steps, seconds: elapsed } = await timeEchoSteps(values.url!, numEnvs, obs, seconds);
  out.push({ numEnvs, obs, steps, seconds: elapsed });
  await env.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
