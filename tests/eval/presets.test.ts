// Issue 13: every experiment preset under configs/experiments/ — the paper presets included, which
// no test runs — resolves to settings the runners accept: its own schema, the env's kwargs, and the
// agent settings each RL run would be built from (the shipped agent config merged with the preset's,
// as agents/eval/{experiment,silence,online-offline}.ts merge them). A misspelt key or a value out of
// range in a preset fails here instead of hours into a run on a bigger machine.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadExperimentConfig } from '../../configs/experiments/schema.ts';
import { loadSilenceStudy } from '../../configs/experiments/silence-schema.ts';
import { loadOnlineOfflineStudy } from '../../configs/experiments/online-offline-schema.ts';
import { resolveKlBudgetConfig, resolvePpoKlConfig } from '../../configs/agents/schema.ts';
import { resolveBatchKlConfig } from '../../configs/agents/batch-kl.ts';
import { TrainConfigSchema, LMArchSchema } from '../../configs/models/schema.ts';
import { TeacherStudentKwargs } from '../../env/teacher-student.ts';
import { validateConfig } from '../../core/config.ts';
import { deepMergeAll } from '../../agents/eval/stages.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

const dir = path.join(PROJECT_ROOT, 'configs', 'experiments');
const presets = readdirSync(dir).filter(f => f.endsWith('.json')).sort();
const shipped = (algo: string) => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'configs', 'agents', `${algo}.json`), 'utf8')) as Record<string, unknown>;
const study = (f: string) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { study?: string }).study;

describe('experiment presets', () => {
  it('has a small and a paper preset for each of studies 1–3', () => {
    for (const p of ['silence.json', 'silence-paper.json', 'mightnt-bound.json', 'mightnt-bound-paper.json', 'online-offline.json', 'online-offline-paper.json']) expect(presets).toContain(p);
  });

  for (const f of presets) {
    it(`${f} resolves, with every RL run's agent settings`, () => {
      const file = path.join(dir, f);
      const kind = study(f);
      let runs = 0;
      if (kind === 'silence') {
        const c = loadSilenceStudy(file);
        validateConfig(TeacherStudentKwargs, c.env.kwargs, `${f} env.kwargs`);
        for (const B of c.budgets) for (const T of c.episodeTokens) {
          resolveKlBudgetConfig(deepMergeAll(deepMergeAll(shipped('kl-budget'), c.klBudget), { seed: c.seeds[0], numEnvs: c.numEnvs, budget: B, env: { id: c.env.id, kwargs: { ...c.env.kwargs, maxTokens: T } } }));
          runs++;
        }
      } else if (kind === 'online-offline') {
        const c = loadOnlineOfflineStudy(file);
        validateConfig(TeacherStudentKwargs, c.env.kwargs, `${f} env.kwargs`);
        const online = { seed: c.seeds[0], numEnvs: c.numEnvs, env: { id: c.env.id, kwargs: { ...c.env.kwargs, maxTokens: c.episodeTokens } } };
        resolvePpoKlConfig(deepMergeAll(deepMergeAll(shipped('ppo-kl'), c.ppoKl), online));
        resolveKlBudgetConfig(deepMergeAll(deepMergeAll(shipped('kl-budget'), c.klBudget), online));
        resolveBatchKlConfig({ ...c.batchKl, seed: c.seeds[0], data: 'logged.jsonl', base: c.base, out: 'out' });
        runs += 3;
      } else {
        expect(kind, `${f}: unknown study`).toBeUndefined();
        const c = loadExperimentConfig(file);
        validateConfig(TeacherStudentKwargs, c.env.kwargs, `${f} env.kwargs`);
        validateConfig(TrainConfigSchema, c.demonstrator.train, `${f} demonstrator.train`);
        validateConfig(TrainConfigSchema, c.imitators.train, `${f} imitators.train`);
        validateConfig(LMArchSchema, { vocabSize: 1000, ...c.imitators.model }, `${f} imitators.model`);
        const env = { id: c.env.id, kwargs: c.env.kwargs };
        for (const beta of c.rl.ppoKl.betas) {
          resolvePpoKlConfig(deepMergeAll(c.rl.ppoKl.config, { seed: c.rl.seeds[0], numEnvs: c.rl.numEnvs, env, kl: { ...((c.rl.ppoKl.config.kl as object | undefined) ?? {}), beta } }));
          runs++;
        }
        for (const budget of c.rl.klBudget.budgets) {
          resolveKlBudgetConfig(deepMergeAll(c.rl.klBudget.config, { seed: c.rl.seeds[0], numEnvs: c.rl.numEnvs, env, budget }));
          runs++;
        }
        expect(c.rl.seeds.length).toBeGreaterThanOrEqual(3);
      }
      expect(runs).toBeGreaterThan(0);
    });
  }

  it('rejects a preset whose agent settings are misspelt', () => {
    const c = loadExperimentConfig(path.join(dir, 'mightnt-bound-paper.json'));
    expect(() => resolveKlBudgetConfig(deepMergeAll(c.rl.klBudget.config, { learningRateActer: 1e-4, seed: 1, numEnvs: 1, env: { id: c.env.id, kwargs: c.env.kwargs }, budget: 5 }))).toThrow(/learningRateActer/);
  });
});
