/**
 * Agents and references from command-line specs, for `colloquy eval` and `colloquy compare`.
 *
 *   base                      the env's base model (the student simulator / default KL prior)
 *   model:DIR                 any language-model checkpoint, sampled at temperature 1
 *   imitator:DIR              the single imitator of an ensemble folder (or a checkpoint folder)
 *   demonstrator:DIR          the demonstrator D
 *   conservative:DIR          the conservative baseline over an ensemble folder (help from D)
 *   checkpoint:DIR            an RL run folder (agents/rl: config.json + checkpoint/; the policy acts
 *                             as in training), or any LM checkpoint folder (sampled as a model)
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { BadConfig } from '../../core/errors.ts';
import type { DialogTokenizer } from '../../env/students.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { isCheckpoint, loadCheckpoint } from '../../models/checkpoint.ts';
import { ConservativeAgent, ModelHelper, type HelpEvent, type HelpMode } from '../imitation/conservative.ts';
import { isEnsemble, loadEnsemble, type EnsembleFile } from '../imitation/imitators.ts';
import { ModelAgent, type EvalAgent } from './agents.ts';
import { loadRlAgent, readRunPolicy } from './rl-agent.ts';
import { weightsSha256 } from '../rl/policy-file.ts';
import { runRewardFile } from '../rl/reward-stats.ts';

export interface LoadedAgent {
  agent: EvalAgent;
  dispose(): void;
  /**
   * An RL run's saved reward statistics (checkpoint/reward.json: its reward config with the z-score
   * statistics frozen), for an evaluation that scores the run as it was scored in training (pass it
   * as the env's `reward` kwarg); absent when the run's reward has no z-scored term.
   */
  rewardFile?: string;
}

export interface AgentContext {
  /** The env's base model folder. */
  baseDir: string;
  /** D, for the conservative agent's help (and `demonstrator` without a folder). */
  demonstrator?: TransformerLM | null;
  tokenizer: DialogTokenizer;
  helpMode?: HelpMode;
  /** Override the ensemble's α. */
  alpha?: number;
  temperature?: number;
  /** The env's token budget (RL policies read the time left). */
  maxTokens?: number;
  onHelp?: (e: HelpEvent) => void;
}

const cache = new Map<string, Promise<TransformerLM>>();

/** Load a checkpoint once per process (models are read-only here). */
export function loadModel(dir: string): Promise<TransformerLM> {
  const key = path.resolve(dir);
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      if (await isEnsemble(key)) {
        const file = JSON.parse(await readFile(path.join(key, 'ensemble.json'), 'utf8')) as EnsembleFile;
        return (await loadCheckpoint(path.join(key, file.members[file.single]!.dir))).model;
      }
      if (await isCheckpoint(key)) return (await loadCheckpoint(key)).model;
      const inner = path.join(key, 'checkpoint');
      if (await isCheckpoint(inner)) return (await loadCheckpoint(inner)).model;
      throw new BadConfig(`no model checkpoint at ${key}`);
    })();
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

export function agentLabel(spec: string): string {
  const [kind, arg] = splitSpec(spec);
  return arg ? `${kind}:${path.basename(arg)}` : kind;
}

function splitSpec(spec: string): [string, string | null] {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, null] : [spec.slice(0, i), spec.slice(i + 1)];
}

export async function loadAgent(spec: string, ctx: AgentContext, name?: string): Promise<LoadedAgent> {
  const [kind, arg] = splitSpec(spec);
  const label = name ?? agentLabel(spec);
  const t = { temperature: ctx.temperature ?? 1 };
  const need = () => { if (!arg) throw new BadConfig(`agent '${spec}': give a folder (${kind}:DIR)`); return arg; };
  switch (kind) {
    case 'base':
      return { agent: new ModelAgent(await loadModel(arg ?? ctx.baseDir), name ?? 'base', { ...t, kind: 'base' }), dispose: () => {} };
    case 'model':
    case 'imitator':
      return { agent: new ModelAgent(await loadModel(need()), label, { ...t, kind }), dispose: () => {} };
    case 'demonstrator': {
      const m = arg ? await loadModel(arg) : ctx.demonstrator;
      if (!m) throw new BadConfig('agent demonstrator: give demonstrator:DIR or --demonstrator DIR');
      return { agent: new ModelAgent(m, name ?? 'demonstrator', { ...t, kind: 'demonstrator' }), dispose: () => {} };
    }
    case 'checkpoint': {
      const dir = path.resolve(need());
      // An RL run folder (agents/rl): its policy as it acted in training (kl-budget's mixture with
      // the reference it was trained against, its target horizon, accounting and budget; see
      // agents/rl/policy-file.ts), on the base it was trained on (checked by its weights' hash).
      const cfgFile = path.join(dir, 'config.json');
      if (existsSync(cfgFile) && existsSync(path.join(dir, 'checkpoint'))) {
        const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as { algo?: string; meta?: { baseModel?: string } };
        if (cfg.algo === 'ppo-kl' || cfg.algo === 'kl-budget') {
          const pf = await readRunPolicy(dir);
          const baseDir = pf.baseModel || cfg.meta?.baseModel || ctx.baseDir;
          const sha = pf.baseModelSha256 ? weightsSha256(baseDir) : null;
          if (pf.baseModelSha256 && sha !== pf.baseModelSha256) {
            throw new BadConfig(`agent '${spec}': its base model ${baseDir} is not the one it was trained on (weights.bin sha256 ${sha ?? 'missing'}, trained on ${pf.baseModelSha256})`);
          }
          const base = await loadModel(baseDir);
          const agent = await loadRlAgent(dir, base, { name: label, maxTokens: ctx.maxTokens ?? 256 });
          const rewardFile = runRewardFile(dir);
          return { agent, dispose: () => agent.dispose(), ...(rewardFile ? { rewardFile } : {}) };
        }
      }
      return { agent: new ModelAgent(await loadModel(dir), label, { ...t, kind: 'rl' }), dispose: () => {} };
    }
    case 'conservative': {
      const dir = need();
      if (!existsSync(path.join(dir, 'ensemble.json'))) throw new BadConfig(`agent '${spec}': ${dir} is not an ensemble folder (no ensemble.json)`);
      if (!ctx.demonstrator) throw new BadConfig('the conservative agent needs the demonstrator as its helper (--demonstrator DIR)');
      const ens = await loadEnsemble(dir, ctx.alpha !== undefined ? { alpha: ctx.alpha } : undefined);
      const agent = new ConservativeAgent({
        models: ens.models, members: ens.file.plausible, helper: new ModelHelper(ctx.demonstrator), helpMode: ctx.helpMode ?? 'turn',
        turnEnd: [ctx.tokenizer.special.student, ctx.tokenizer.special.endOfText], onHelp: ctx.onHelp,
        ...(name ? { name } : {}),
      });
      return { agent, dispose: () => ens.dispose() };
    }
    default:
      throw new BadConfig(`unknown agent '${spec}' (base, model:DIR, imitator:DIR, demonstrator:DIR, conservative:DIR, checkpoint:DIR)`);
  }
}
