/** The timed Echo-v0 step loop that bench/protocol.ts and bench/python_client.ts both measure. */
import { connectVectorEnv } from '../agents/client.ts';
import type { ObsEncoding } from '../protocol/v1.ts';

/** Connect, reset, warm up for 300 ms, then step for `seconds`; the env is left open for the caller. */
export async function timeEchoSteps(url: string, numEnvs: number, obsEncoding: ObsEncoding, seconds: number) {
  const env = await connectVectorEnv<number[], number>(url, { env: 'Echo-v0', numEnvs, obsEncoding });
  await env.reset({ seed: 1 });
  const actions = Array.from({ length: numEnvs }, (_, i) => i % 16);
  const warm = performance.now();
  while (performance.now() - warm < 300) await env.step(actions);
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) { await env.step(actions); steps++; }
  return { env, actions, steps, seconds: (performance.now() - t0) / 1000 };
}
