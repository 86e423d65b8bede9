/**
 * What recording costs an agent: TeacherStudent-v0 over /v1/env (token mode, scripted students,
 * N dialogs per session, an agent that ends its turn with probability 0.25) with the recorder off
 * (`storage.record: "none"`) and on (a file database, synchronous FULL and NORMAL), interleaved
 * round by round. Every exchange (teacher turn, student turn, reward) and every episode end is
 * written before the step's reply; the writes of one vector step share one transaction.
 *
 *   node bin/run.mjs bench/recorder.ts [--envs 16] [--steps 300] [--rounds 3] [--dir DIR]
 *
 * Needs a base model (data/models/base or $COLLOQUY_BASE_MODEL) for its tokenizer and prompt.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../models/backend.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';

const { values } = parseArgs({ options: { envs: { type: 'string', default: '16' }, steps: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, dir: { type: 'string' } } });
const numEnvs = Number(values.envs), steps = Number(values.steps), rounds = Number(values.rounds);
await initBackend('auto');
const { resolveServerConfig } = await import('../configs/server.ts');
const { buildApp } = await import('../server/app.ts');
const { createLogger } = await import('../server/log.ts');
const { connectVectorEnv } = await import('../agents/client.ts');
const { Rng } = await import('../env/index.ts');
const { loadDialogTokenizer } = await import('../env/dialog-model.ts');

const base = path.join(values.dir ?? path.join(PROJECT_ROOT, 'tmp'));
mkdirSync(base, { recursive: true });
const dir = mkdtempSync(path.join(base, 'bench-recorder-'));
const tok = loadDialogTokenizer(defaultModelDir());
type Mode = { name: string; record: 'none' | 'all'; synchronous: 'FULL' | 'NORMAL' };
const modes: Mode[] = [{ name: 'record none', record: 'none', synchronous: 'FULL' }, { name: 'record all, FULL', record: 'all', synchronous: 'FULL' }, { name: 'record all, NORMAL', record: 'all', synchronous: 'NORMAL' }];
const results = new Map<string, { sps: number[]; dialogs: number; turns: number }>();

async function once(mode: Mode, round: number): Promise<void> {
  const db = path.join(dir, `${mode.record}-${mode.synchronous}-${round}.db`);
  const config = resolveServerConfig({ logLevel: 'silent', port: 0, storage: { db, record: mode.record, synchronous: mode.synchronous } });
  const app = buildApp(config, { logger: createLogger({ level: 'silent' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const env = await connectVectorEnv(`ws://127.0.0.1:${port}/v1/env`, { env: 'TeacherStudent-v0', numEnvs, kwargs: { student: 'scripted', scripted: { rules: [{ contains: 'a', reply: ' Thanks, that helps a lot!' }], default: ' I see.' } } });
  const rng = new Rng(round + 1);
  await env.reset({ seed: round });
  const act = () => Array.from({ length: numEnvs }, () => (rng.random() < 0.25 ? tok.special.student : 4 + rng.int(tok.vocabSize - 4)));
  for (let i = 0; i < 20; i++) await env.step(act()); // warm up
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await env.step(act());
  const sps = (steps * numEnvs) / ((performance.now() - t0) / 1000);
  await env.close();
  const stats = app.store.stats();
  await app.close();
  const r = results.get(mode.name) ?? { sps: [], dialogs: 0, turns: 0 };
  r.sps.push(sps); r.dialogs += stats.dialogs; r.turns += stats.turns;
  results.set(mode.name, r);
}

try {
  for (let round = 0; round < rounds; round++) for (const m of modes) await once(m, round);
  console.log(`recorder bench: TeacherStudent-v0, ${numEnvs} dialogs per session, ${steps} vector steps per run, ${rounds} rounds, database in ${dir}`);
  for (const m of modes) {
    const r = results.get(m.name)!;
    const sorted = [...r.sps].sort((a, b) => a - b);
    console.log(`  ${m.name.padEnd(20)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} env steps/s (runs: ${r.sps.map(x => x.toFixed(0)).join(', ')}); recorded ${r.dialogs} dialogs, ${r.turns} turns`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
