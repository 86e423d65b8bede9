/**
 * Evaluating several agents in a row (used by `colloquy eval` and `colloquy compare`): open the
 * env (in process or on a server), load each agent, run `evaluate`, write its rows (JSONL, CSV) and
 * help-request log, and summarise.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { VectorEnv } from '../../env/core.ts';
import { makeVec } from '../../env/index.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { connectVectorEnv } from '../client.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { evaluate, type DialogRow, type EvalReference } from './evaluate.ts';
import { summarize, rowsToCsv, fmtInterval, type EvalSummary } from './summary.ts';
import { loadAgent, type AgentContext } from './load.ts';
import type { EvalAgent } from './agents.ts';

export interface OpenEnvOptions {
  env: string;
  kwargs: Record<string, unknown>;
  numEnvs: number;
  /** ws://host:port/v1/env, or undefined for in process. */
  server?: string;
  token?: string;
}

/** A token-mode vector env with autoreset disabled, local or remote. */
export async function openVecEnv(o: OpenEnvOptions): Promise<VectorEnv> {
  const kwargs = { ...o.kwargs, actionMode: 'token' };
  if (o.server) return connectVectorEnv(o.server, { env: o.env, kwargs, numEnvs: o.numEnvs, autoresetMode: 'disabled', ...(o.token ? { token: o.token } : {}) });
  return makeVec(o.env, { numEnvs: o.numEnvs, kwargs, autoresetMode: 'disabled' });
}

export interface AgentRun {
  /** An agent spec (`base`, `conservative:DIR`, … see load.ts) or a ready agent. */
  spec?: string;
  agent?: EvalAgent;
  /** Display name (default from the spec / the agent). */
  name?: string;
  /** Extra fields copied into the summary's `meta` (algorithm, reference, β, seed…). */
  meta?: Record<string, unknown>;
}

export interface AgentResult {
  name: string;
  rows: DialogRow[];
  /** `rewardConfig`: the reward file the agent was scored with (its run's frozen statistics), else null (the env's kwargs). */
  summary: EvalSummary & { meta?: Record<string, unknown>; seconds: number; rewardConfig: string | null };
}

export interface EvalAgentsOptions {
  runs: AgentRun[];
  references: EvalReference[];
  baseDir: string;
  demonstrator: TransformerLM | null;
  episodes: number;
  seed: number;
  /**
   * Opens the env one agent runs on. `reward`: the reward config (a path) the agent is to be scored
   * with — an RL run's saved, frozen statistics (checkpoint/reward.json) — to pass as the env's
   * `reward` kwarg; undefined: the env's own.
   */
  openEnv: (reward?: string) => Promise<VectorEnv>;
  /** Score an RL run with its saved reward statistics when it has them (default true). */
  runReward?: boolean;
  agentContext?: Partial<AgentContext>;
  /** Folder for `<agent>.jsonl`, `<agent>.csv`, `<agent>.help.jsonl` (none: nothing written). */
  out?: string;
  transcripts?: boolean;
  /** N of the `short` turn measure (default 4). */
  shortTurnTokens?: number;
  /** Largest n of the repeated n-gram counts (default 4). */
  ngramMax?: number;
  log?: (line: string) => void;
}

export function slug(name: string): string {
  return name.replace(/β/g, 'beta').replace(/[^A-Za-z0-9._=-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 100) || 'agent';
}

export async function evalAgents(o: EvalAgentsOptions): Promise<AgentResult[]> {
  const tokenizer = loadDialogTokenizer(o.baseDir);
  const log = o.log ?? (() => {});
  const results: AgentResult[] = [];
  if (o.out) mkdirSync(o.out, { recursive: true });
  for (const run of o.runs) {
    const t0 = Date.now();
    let helpFile: string | null = null;
    const loaded = run.agent
      ? { agent: run.agent, dispose: () => {} }
      : await loadAgent(run.spec!, {
        baseDir: o.baseDir, demonstrator: o.demonstrator, tokenizer, ...o.agentContext,
      }, run.name);
    const name = run.name ?? loaded.agent.name;
    if (o.out) { helpFile = path.join(o.out, `${slug(name)}.help.jsonl`); writeFileSync(helpFile, ''); }
    // A run trained on a z-scored reward is scored with the statistics it was trained with, frozen:
    // its rewards then depend on nothing else the env has scored (issue 12, item 4).
    const rewardConfig = (o.runReward ?? true) && 'rewardFile' in loaded && loaded.rewardFile ? loaded.rewardFile : null;
    if (rewardConfig) log(`eval: ${name} is scored with its run's frozen reward statistics (${rewardConfig})`);
    const env = await o.openEnv(rewardConfig ?? undefined);
    let rows: DialogRow[];
    try {
      log(`eval: ${name} on ${o.episodes} dialogs (seed ${o.seed}, ${env.numEnvs} at once)`);
      rows = await evaluate({
        env, agent: loaded.agent, episodes: o.episodes, seed: o.seed, tokenizer, references: o.references,
        transcripts: o.transcripts ?? true, log, ...(o.shortTurnTokens !== undefined ? { shortTurnTokens: o.shortTurnTokens } : {}),
        ...(o.ngramMax !== undefined ? { ngramMax: o.ngramMax } : {}),
        onHelp: helpFile ? e => appendFileSync(helpFile!, JSON.stringify(e) + '\n') : undefined,
      });
    } finally {
      await env.close();
      loaded.dispose();
    }
    for (const r of rows) r.agent = name;
    const summary = { ...summarize(rows), agent: name, seconds: (Date.now() - t0) / 1000, rewardConfig, ...(run.meta ? { meta: run.meta } : {}) };
    if (o.out) {
      writeFileSync(path.join(o.out, `${slug(name)}.jsonl`), rows.map(r => JSON.stringify(r)).join('\n') + '\n');
      writeFileSync(path.join(o.out, `${slug(name)}.csv`), rowsToCsv(rows));
    }
    log(`eval: ${name}: reward ${fmtInterval(summary.reward)}, ${o.references.map(r => `KL/token to ${r.name} ${fmtInterval(summary.klPerToken[r.name]!)}`).join(', ')}, ` +
      `empty turns ${fmtInterval(summary.emptyTurnShare, 2)}, short turns (≤ ${summary.shortTurnTokens} tokens) ${fmtInterval(summary.shortTurnShare, 2)}, help rate ${fmtInterval(summary.helpRate)} (${summary.seconds.toFixed(0)} s)`);
    results.push({ name, rows, summary });
  }
  return results;
}

/**
 * A plain-text table of summaries (one line per agent). Turn shares are per-dialog means over the
 * dialogs with a completed teacher turn: `empty` (no word before the marker) and `short ≤N`.
 */
export function printSummaryTable(summaries: readonly EvalSummary[], refs: readonly string[], print: (line: string) => void): void {
  const n = summaries[0]?.shortTurnTokens ?? 4;
  const header = ['agent', 'reward', ...refs.map(r => `KL/tok ${r}`), 'empty share', `short share (≤${n} tok)`, 'rep. 2-gram rate', 'help rate', 'teacher tok/turn', 'ppl D', 'sentiment'];
  const none = { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  const lines = summaries.map(s => [
    s.agent, fmtInterval(s.reward), ...refs.map(r => fmtInterval(s.klPerToken[r] ?? none)),
    fmtInterval(s.emptyTurnShare, 2), fmtInterval(s.shortTurnShare, 2), fmtInterval(s.repeatedNgramRate['2'] ?? none, 2), fmtInterval(s.helpRate), fmtInterval(s.teacherTurnTokens, 1),
    s.perplexity.demonstrator ? fmtInterval(s.perplexity.demonstrator, 1) : '–', fmtInterval(s.studentSentiment, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map(l => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  print(fmt(header));
  for (const l of lines) print(fmt(l));
}
