import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../cli/train.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';
import { buildToyModel, toyKwargs } from './toy.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

let srv: TestServer;
let dir: string;
const outs: string[] = [];
const tmpOut = (name: string) => { const p = path.join(os.tmpdir(), `colloquy-train-cli-${name}-${process.pid}`); rmSync(p, { recursive: true, force: true }); outs.push(p); return p; };

beforeAll(async () => {
  dir = await buildToyModel();
  // The server's base model is the toy model: wire kwargs name no folder (a server takes model ids, not paths).
  srv = await startTestServer({}, { modelDir: dir });
});
afterAll(async () => {
  await srv.close();
  for (const o of outs) rmSync(o, { recursive: true, force: true });
});

const metrics = (out: string) => readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, number>);

describe('colloquy train', () => {
  it('prints its help', async () => {
    let text = '';
    const log = console.log;
    console.log = (s: string) => { text += s; };
    try { expect(await run(['--help'])).toBe(0); } finally { console.log = log; }
    expect(text).toMatch(/--algo/);
    expect(text).toMatch(/--server/);
  });

  it('trains ppo-kl over WebSocket against a server', async () => {
    const out = tmpOut('ws');
    const { model: _, ...wire } = toyKwargs(dir);
    void _;
    const code = await run(['--algo', 'ppo-kl', '--server', srv.wsUrl, '--model', dir, '--kwargs', JSON.stringify(wire),
      '--steps', '96', '--num-envs', '4', '--set', 'minibatches=2', '--out', out, '--no-progress', '--backend', 'auto']);
    expect(code).toBe(0);
    const m = metrics(out);
    // --steps is the budget: it stops after the update that reaches 96 env steps (4 envs).
    expect(m.length).toBeGreaterThanOrEqual(2);
    expect(m[m.length - 1]!['charts/env_steps']).toBeGreaterThanOrEqual(96);
    expect(m[m.length - 2]!['charts/env_steps']).toBeLessThan(96);
    expect(m[1]!['charts/episodes']).toBeGreaterThanOrEqual(8);
    expect(existsSync(path.join(out, 'checkpoint', 'model.json'))).toBe(true);
    const svg = readFileSync(path.join(out, 'learning-curves.svg'), 'utf8');
    expect(svg).toMatch(/<svg[\s\S]*env\/reward_mean[\s\S]*aria-roledescription="line mark"/);
    // The point of update 2 on the reward panel, as vega labels it (12 significant digits, a typographic minus).
    expect(svg).toContain(`update: 2; value: ${String(Number(m[1]!['env/reward_mean']!.toPrecision(12))).replace('-', '\u2212')}`);
    const log = console.log;
    let table = '';
    console.log = (t: string) => { table += `${t}\n`; };
    try { expect(await run(['--curves', out])).toBe(0); } finally { console.log = log; }
    expect(table.split('\n')[0]).toMatch(/update.*return.*kl_exact.*empty_share/);
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { algo: string; meta: { server: string } };
    expect(cfg.algo).toBe('ppo-kl');
    expect(cfg.meta.server).toBe(srv.wsUrl);
  });

  it('trains kl-budget in process, and ppo-kl in the utterance action mode', async () => {
    const a = tmpOut('budget');
    expect(await run(['--algo', 'kl-budget', '--local', '--model', dir, '--kwargs', JSON.stringify(toyKwargs(dir)),
      '--updates', '2', '--minutes', '0', '--num-envs', '4', '--out', a, '--no-progress'])).toBe(0);
    expect(metrics(a)).toHaveLength(2);
    const b = tmpOut('utterance');
    expect(await run(['--algo', 'ppo-kl', '--model', dir, '--kwargs', JSON.stringify({ ...toyKwargs(dir), actionMode: 'utterance' }),
      '--updates', '2', '--minutes', '0', '--num-envs', '4', '--set', 'minibatches=2', '--set', 'maxUtteranceTokens=6', '--out', b, '--no-progress'])).toBe(0);
    const m = metrics(b);
    expect(m).toHaveLength(2);
    expect(m[1]!['env/turns_mean']).toBeGreaterThan(1);
  });

  it('refuses bad flags with a coded error', async () => {
    await expect(run(['--algo', 'ppo'])).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(run(['--algo', 'ppo-kl', '--server', srv.wsUrl, '--local'])).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    // --set paths and values are checked against the algo's schema (kl-budget has no kl.beta), naming the item.
    await expect(run(['--algo', 'ppo-kl', '--set', 'minibatchez=2'])).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/--set minibatchez: no config field/) });
    await expect(run(['--algo', 'kl-budget', '--set', 'kl.beta=0.1'])).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/--set kl\.beta: no config field 'kl'/) });
    await expect(run(['--algo', 'ppo-kl', '--num-envs', 'many'])).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/--num-envs must be an integer, got 'many'/) });
    await expect(run(['--algo', 'ppo-kl', '--kwargs', '[1]'])).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/--kwargs must be/) });
  });

  it('takes the algo from a --config file that names it', async () => {
    // configs/agents/kl-budget.json without --algo: validated as kl-budget (its fields), not as ppo-kl.
    const out = tmpOut('config-algo');
    expect(await run(['--config', path.join(PROJECT_ROOT, 'configs', 'agents', 'kl-budget.json'), '--local', '--model', dir, '--kwargs', JSON.stringify(toyKwargs(dir)),
      '--updates', '1', '--minutes', '0', '--num-envs', '2', '--out', out, '--no-progress'])).toBe(0);
    expect((JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as { algo: string }).algo).toBe('kl-budget');
  });
});
