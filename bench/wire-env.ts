/**
 * bench/wire-env: TeacherStudent-v0 served over the wire. A remote agent (the TypeScript client,
 * JSON frames, one request in flight) sends token actions for N dialogs; the server (a child
 * process, so client and server have a core each) samples the students with the base model and
 * scores the rewards. Prints env token-steps/s (N × vector steps per second) over the wire and,
 * in the same run, with the same vector env in this process (no wire), and the load average.
 *
 *   node bin/run.mjs bench/wire-env.ts [--num-envs 64] [--steps 300] [--rounds 2] [--model DIR] [--student base]
 *
 * `--student base` (the default): the base model samples the students, as in Cohen et al. and
 * bench/train.ts; `--student world` the default world's rule-based student.
 *
 * The agent says the same teacher turn over and over (" Can you walk me through how you got that
 * answer?" and the end of its turn, as bench/lm.ts does), so that every dialog gets a student
 * reply every 14 tokens; episodes end and reset as the env decides (autoreset 'same-step').
 * Rates are medians over rounds; each round first runs 40 warm-up steps.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { defaultModelDir } from '../core/paths.ts';

const { values } = parseArgs({
  options: {
    'num-envs': { type: 'string', default: '64' }, steps: { type: 'string', default: '300' }, rounds: { type: 'string', default: '2' },
    model: { type: 'string' }, student: { type: 'string', default: 'base' }, child: { type: 'boolean', default: false },
  },
});
const modelDir = path.resolve(values.model ?? defaultModelDir());
const load = () => loadavg().map(x => x.toFixed(2)).join(' ');

if (values.child) {
  const { buildApp } = await import('../server/app.ts');
  const { resolveServerConfig } = await import('../configs/server.ts');
  const app = buildApp(resolveServerConfig({ port: 0, logLevel: 'warn', storage: { db: ':memory:' }, chat: { enabled: false }, baseModel: { dir: modelDir } }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${JSON.stringify({ port: (app.server.address() as { port: number }).port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  const { initBackend } = await import('../models/backend.ts');
  await initBackend('auto');
  const { makeVec } = await import('../env/index.ts');
  const { connectVectorEnv } = await import('../agents/client.ts');
  const { loadDialogTokenizer } = await import('../env/dialog-model.ts');
  const N = Number(values['num-envs']), steps = Number(values.steps), rounds = Number(values.rounds);
  const tokenizer = loadDialogTokenizer(modelDir);
  const teacher = [...tokenizer.encode(' Can you walk me through how you got that answer?'), tokenizer.special.student];

  interface StepEnv { reset(o: { seed: number }): Promise<unknown>; step(a: number[]): Promise<{ terminated: boolean[]; truncated: boolean[] }>; close(): Promise<void> }
  const drive = async (envs: StepEnv): Promise<number> => {
    await envs.reset({ seed: 1 });
    const pos = new Array<number>(N).fill(0);
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = await envs.step(pos.map(p => teacher[p % teacher.length]!));
        for (let e = 0; e < N; e++) pos[e] = r.terminated[e] || r.truncated[e] ? 0 : pos[e]! + 1;
      }
    };
    await run(40);
    const t0 = performance.now();
    await run(steps);
    const sps = N * steps / ((performance.now() - t0) / 1000);
    await envs.close();
    return sps;
  };

  const here = path.dirname(fileURLToPath(import.meta.url));
  const child = spawn(process.execPath, [path.join(here, '..', 'bin', 'run.mjs'), path.join(here, 'wire-env.ts'), '--child', '--model', modelDir], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, COLLOQUY_BASE_MODEL: modelDir } });
  const line = await new Promise<string>(resolve => createInterface({ input: child.stdout! }).once('line', resolve));
  const { port } = JSON.parse(line) as { port: number };
  console.log(`bench/wire-env: TeacherStudent-v0 (student: ${values.student}), ${N} dialogs, ${steps} vector steps per run after 40 warm-up, ${rounds} rounds, base ${modelDir}, load average ${load()}`);
  const wire: number[] = [], local: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const remote = await connectVectorEnv(`ws://127.0.0.1:${port}/v1/env`, { env: 'TeacherStudent-v0', numEnvs: N, kwargs: { student: values.student }, autoresetMode: 'same-step' });
      wire.push(await drive(remote as unknown as StepEnv));
      local.push(await drive(makeVec('TeacherStudent-v0', { numEnvs: N, kwargs: { model: modelDir, student: values.student }, autoresetMode: 'same-step' }) as unknown as StepEnv));
      console.log(`  round ${r + 1}: over the wire ${wire[r]!.toFixed(0)} env token-steps/s, in process ${local[r]!.toFixed(0)} [load ${load()}]`);
    }
  } finally {
    child.stdin!.end();
  }
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
  console.log(`TeacherStudent-v0 @ ${N} dialogs: ${median(wire).toFixed(0)} env token-steps/s over the wire, ${median(local).toFixed(0)} in process (medians of ${rounds}) [load ${load()}]`);
}
