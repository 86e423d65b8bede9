/**
 * batch-kl: offline KL-control Q-learning from logged chats — "Way Off-Policy" (Jaques et al.
 * 2019), Ψ-learning of Sequence Tutor (Jaques et al. 2017) — at the token level, to the base model.
 * One file, top to bottom: config → data (logged transcripts → token transitions) → models →
 * training loop → checkpoint.
 *
 * The MDP (the same as TeacherStudent-v0's, read from logs):
 *   state s_t   the transcript before token t (prompt + turns; a person's text is encoded with
 *               `encodeOrdinary`, so it never becomes a turn marker)
 *   action a_t  one token of a teacher turn, the closing `\n\nStudent:` marker included
 *               (`<|endoftext|>` when the teacher ended the dialog)
 *   reward      the utterance's reward (the reward logged for the student's reply to it, `total`
 *               or one component), normalised by this run's statistics of the logged utterance
 *               rewards (`rewardNorm`: z-score by default, or centre; computed once from the data,
 *               frozen, saved in config.json and the checkpoint's metadata), then (r − rewardOffset)
 *               ·rewardScale; on *every* token of the utterance (`rewardOn: "every-token"`, Way
 *               Off-Policy) or on its last token only. Un-centred (≈ 0.5 per token with VADER) a
 *               reward on every token pays the agent to never hand the turn back.
 *   discount    1 between tokens of one utterance, γ from an utterance's last token to the first
 *               token of the next teacher turn (γ per turn); 0 after the end of a terminated dialog;
 *               a truncated dialog bootstraps from the state after its last student reply
 *
 * Ψ-learning with a KL penalty to the base policy p (coefficient c):
 *   Ψ*(s, a) = r(s, a)/c + log p(a|s) + γ · log Σ_a' exp Ψ*(s', a'),     π(a|s) = exp(Ψ(s,a) − V(s))
 * whose fixed point maximises E[Σ r/c] − KL(π‖p) per step. The network is a copy of the base
 * language model; its logits z_θ give "Q-values as logits with the base log-prior":
 *   Ψ_θ(s, a) = z_θ(s, a) − log Σ_a' exp z_0(s, a')          (z_0: the frozen base's logits)
 * so that at the start Ψ_θ(s, ·) = log p(·|s) exactly (the policy is the prior, V = 0), and the
 * policy softmax(Ψ_θ(s, ·)) = softmax(z_θ(s, ·)): **the Ψ-policy is the trained network read as a
 * language model**. That is why the result is saved as an ordinary LM checkpoint (model.json +
 * weights.bin + tokenizer.json): sampling it at temperature 1 samples π exactly, and `colloquy
 * eval`, the hosted agents and any LM tool run it unchanged.
 *
 * Target (Way Off-Policy's pessimism for actions the logs never took): a target network θ⁻
 * (Polyak averaging, τ) is run with M dropout masks; each sample m gives a scalar target and the
 * target is their minimum (as Jaques et al.'s code: per sample r + γ·LSE, then min over samples):
 *   y_t = min_m [ r_t/c + κ_t + γ_t · log Σ_a' exp Ψ_θ⁻^(m)(s_{t+1}, a') ]
 *       = r_t/c + κ_t + γ_t · min_m log Σ_a' exp Ψ_θ⁻^(m)(s_{t+1}, a')          (γ_t ≥ 0)
 * (not log Σ_a' exp min_m Ψ^(m)(s', a'), the minimum per action: with V = 4000 tokens, M = 5,
 * N(0, 1) logits and logit noise σ = 0.3 that lowers every token's target by 0.37 nats below the
 * samples' mean soft value, against 0.01 — a per-token tax that favours short turns;
 * tests/agents/batch-kl-target.test.ts prints both).
 * κ_t is the KL control (`klTerm`): `prior` (default) κ = log p(a_t|s_t), Ψ-learning's prior term,
 * whose fixed point maximises E[Σ r/c] − KL(π‖p); `log-ratio` κ = log p(a_t|s_t) − log π_θ(a_t|s_t),
 * Way Off-Policy's KL-control reward c·(log p − log q) in units of c (π_θ: the current network's
 * policy, no gradient through it), which also charges the policy's own log-probability.
 * Loss: Huber(Ψ_θ(s_t, a_t) − y_t), averaged over the tokens of a minibatch of transcript windows.
 *
 * Long transcripts are read through the same sliding windows as the sampler (`windowStart`), so a
 * state's Q-values are computed on exactly the context the policy will see when it acts.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BatchKlConfig } from '../configs/agents/batch-kl.ts';
import { BadConfig } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { TransformerLM } from '../models/lm.ts';
import { loadCheckpoint, saveCheckpoint } from '../models/checkpoint.ts';
import { BpeTokenizer } from '../models/tokenizer.ts';
import { readF32, selectRows, windowStart } from '../models/lm-ops.ts';
import { clipGradients } from '../models/pretrain.ts';
import { backendInfo } from '../models/backend.ts';
import { TURN_TEACHER } from '../core/markers.ts';
import { METRICS as M, UPDATE_KEY } from './metrics.ts';

// ------------------------------------------------------------------------------------------------
// Config

// The schema lives with the other configs (configs/agents/batch-kl.ts); re-exported for callers of this module.
export { BatchKlConfigSchema, resolveBatchKlConfig, type BatchKlConfig } from '../configs/agents/batch-kl.ts';

// ------------------------------------------------------------------------------------------------
// Data: logged chats → token transitions

/** A logged dialog as batch-kl reads it. */
export interface LoggedDialog {
  id: string;
  prompt: string | null;
  turns: { role: 'teacher' | 'student'; text: string }[];
  /** Reward of each turn index (the student replies'), when logged. */
  rewards: Map<number, number>;
  /** The dialog really ended (students left / teacher ended): no bootstrap after it. */
  terminated: boolean;
  /** The teacher ended it (its last turn is followed by `<|endoftext|>`). */
  endedByTeacher: boolean;
}

interface ChatJson {
  id?: unknown; dialogId?: unknown;
  messages?: { role?: unknown; speaker?: unknown; content?: unknown }[];
  rewards?: { turn?: unknown; total?: unknown; components?: Record<string, unknown> }[];
  metadata?: { prompt?: unknown };
  endReason?: unknown; endDetail?: unknown;
}

const ROLES: Record<string, 'teacher' | 'student'> = { assistant: 'teacher', teacher: 'teacher', user: 'student', student: 'student' };

/** Read logged dialogs from an export (or chat-JSONL with `rewards`). */
export function readLoggedDialogs(file: string, rewardKey = 'total'): LoggedDialog[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) { throw new BadConfig(`batch-kl: cannot read ${file}: ${(err as Error).message}`); }
  const out: LoggedDialog[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let r: ChatJson;
    try { r = JSON.parse(line) as ChatJson; } catch { throw new BadConfig(`batch-kl: ${file}:${i + 1} is not JSON`); }
    if (!Array.isArray(r.messages)) throw new BadConfig(`batch-kl: ${file}:${i + 1}: expected {"messages": [...]}`);
    // Indexes in `rewards[].turn` count every message (system ones too); keep the mapping.
    const turns: LoggedDialog['turns'] = [];
    const indexOf = new Map<number, number>();
    r.messages.forEach((m, k) => {
      const role = ROLES[String(m.speaker ?? m.role)];
      if (!role || typeof m.content !== 'string') return;
      indexOf.set(k, turns.length);
      turns.push({ role, text: m.content });
    });
    const rewards = new Map<number, number>();
    for (const rw of r.rewards ?? []) {
      const k = indexOf.get(Number(rw.turn));
      const v = rewardKey === 'total' ? rw.total : rw.components?.[rewardKey];
      if (k !== undefined && typeof v === 'number' && Number.isFinite(v)) rewards.set(k, v);
    }
    out.push({
      id: String(r.dialogId ?? r.id ?? `line-${i + 1}`),
      prompt: typeof r.metadata?.prompt === 'string' ? r.metadata.prompt : null,
      turns, rewards,
      terminated: r.endReason === 'terminated',
      endedByTeacher: r.endReason === 'terminated' && r.endDetail === 'teacher',
    });
  });
  return out;
}

/** One action token: where its state is read, and where its next state is. */
export interface Transition {
  /** Position of the action token in the dialog's token sequence (state = tokens[0:pos]). */
  pos: number;
  action: number;
  reward: number;
  /** Discount to the next state: 1 inside an utterance, γ across a turn, 0 when terminal. */
  discount: number;
  /** The next state's prefix length (its Ψ is read at row nextPos − 1), or −1 when terminal. */
  nextPos: number;
}

export interface EncodedDialog { id: string; tokens: number[]; transitions: Transition[] }

/** The token sequence of a logged dialog and its transitions (see the header for the MDP). */
/** A run's frozen statistics of the logged utterance rewards (`rewardNorm`). */
export interface RewardNorm { mode: 'zscore' | 'center' | 'none'; mean: number; std: number; count: number }

/**
 * The statistics of the rewards logged for teacher utterances (one value per utterance, whatever
 * its length) over a run's data; `apply` maps a logged reward by them.
 */
export function rewardNorm(dialogs: readonly LoggedDialog[], mode: RewardNorm['mode']): RewardNorm {
  const xs: number[] = [];
  for (const d of dialogs) d.turns.forEach((t, k) => { if (t.role === 'teacher' && d.rewards.has(k + 1)) xs.push(d.rewards.get(k + 1)!); });
  const n = xs.length, mean = n ? xs.reduce((a, b) => a + b, 0) / n : 0;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mode, mean, std, count: n };
}

export function applyRewardNorm(r: number, norm: RewardNorm): number {
  if (norm.mode === 'none') return r;
  if (norm.mode === 'center') return r - norm.mean;
  return norm.std > 1e-8 ? (r - norm.mean) / norm.std : r - norm.mean;
}

const NO_NORM: RewardNorm = { mode: 'none', mean: 0, std: 1, count: 0 };

export function encodeDialog(d: LoggedDialog, tok: BpeTokenizer, cfg: Pick<BatchKlConfig, 'gamma' | 'rewardOffset' | 'rewardScale' | 'rewardOn' | 'prompt'>, norm: RewardNorm = NO_NORM): EncodedDialog {
  const sp = tok.special;
  const tokens: number[] = [];
  const prompt = d.prompt ?? cfg.prompt;
  let partialTeacher = '';
  if (prompt) {
    // The prompt may end inside the teacher's first turn ("…\n\nTeacher: Do you"): the logged
    // utterance then starts with that text, so the transcript is cut after the marker.
    const at = prompt.lastIndexOf(TURN_TEACHER);
    const head = at >= 0 ? prompt.slice(0, at + TURN_TEACHER.length) : prompt;
    partialTeacher = at >= 0 ? prompt.slice(at + TURN_TEACHER.length) : '';
    tokens.push(...tok.encode(head));
  }
  const marker = { teacher: sp.teacher, student: sp.student };
  const utterances: { positions: number[]; turn: number }[] = [];
  d.turns.forEach((t, k) => {
    if (tokens[tokens.length - 1] !== marker[t.role]) {
      if (t.role === 'student' && utterances.length && utterances[utterances.length - 1]!.turn === k - 1) {
        // The marker that ends a teacher turn is the teacher's last action.
        utterances[utterances.length - 1]!.positions.push(tokens.length);
      }
      tokens.push(marker[t.role]);
    }
    let text = t.text;
    if (t.role === 'teacher' && k === 0 && partialTeacher && !text.startsWith(partialTeacher) && tokens.length && tokens[tokens.length - 1] === sp.teacher) text = partialTeacher + text;
    const ids = tok.encodeOrdinary(text);
    if (t.role === 'teacher') utterances.push({ positions: ids.map((_, j) => tokens.length + j), turn: k });
    tokens.push(...ids);
  });
  const last = d.turns[d.turns.length - 1];
  if (last?.role === 'teacher' && d.endedByTeacher) { utterances[utterances.length - 1]!.positions.push(tokens.length); tokens.push(sp.endOfText); }
  // A truncated dialog whose last turn is the student's: bootstrap from the next teacher state.
  let bootstrapPos = -1;
  if (!d.terminated && last?.role === 'student') { tokens.push(sp.teacher); bootstrapPos = tokens.length; }
  else if (!d.terminated && last?.role === 'teacher') bootstrapPos = tokens.length;

  const transitions: Transition[] = [];
  utterances.forEach((u, ui) => {
    if (!u.positions.length) return;
    const r0 = d.rewards.get(u.turn + 1);
    const r = r0 === undefined ? 0 : (applyRewardNorm(r0, norm) - cfg.rewardOffset) * cfg.rewardScale;
    const next = utterances[ui + 1];
    const nextStart = next && next.positions.length ? next.positions[0]! : -1;
    u.positions.forEach((pos, j) => {
      const lastToken = j === u.positions.length - 1;
      const reward = cfg.rewardOn === 'every-token' || lastToken ? r : 0;
      let discount = 1, nextPos = pos + 1;
      if (lastToken) {
        if (tokens[pos] === sp.endOfText) { discount = 0; nextPos = -1; }
        else if (tokens[pos] === sp.student) {
          if (nextStart >= 0) { discount = cfg.gamma; nextPos = nextStart; }
          else if (bootstrapPos >= 0) { discount = cfg.gamma; nextPos = bootstrapPos; }
          else { discount = 0; nextPos = -1; }
        } else if (bootstrapPos >= 0) { discount = 1; nextPos = pos + 1; } // cut mid-utterance
        else { discount = 0; nextPos = -1; }
      }
      transitions.push({ pos, action: tokens[pos]!, reward, discount, nextPos });
    });
  });
  return { id: d.id, tokens, transitions };
}

/**
 * Windows of transcripts the networks read: each state (prefix length p) is read through the
 * window starting at windowStart(p, C); states sharing a window are read in one pass.
 */
interface Window { ids: Int32Array; start: number; dialog: number }
/** A state: which window and row its Ψ(s, ·) is read at. */
interface StateRef { win: number; row: number }

export interface Dataset {
  windows: Window[];
  /** Transitions with their state and next state resolved to windows. */
  items: { t: Transition; s: StateRef; next: StateRef | null; dialog: number }[];
  /** Items whose state is in each window. */
  byWindow: number[][];
  stats: { dialogs: number; tokens: number; transitions: number; windows: number; rewardMean: number };
}

export function buildDataset(dialogs: EncodedDialog[], contextLength: number): Dataset {
  const windows: Window[] = [];
  const items: Dataset['items'] = [];
  let tokens = 0, rsum = 0;
  dialogs.forEach((d, di) => {
    tokens += d.tokens.length;
    // Every needed prefix length, grouped by its window start.
    const need = new Set<number>();
    for (const t of d.transitions) { need.add(t.pos); if (t.nextPos > 0) need.add(t.nextPos); }
    const byStart = new Map<number, number>();
    for (const p of [...need].sort((a, b) => a - b)) {
      const w = windowStart(p, contextLength);
      byStart.set(w, Math.max(byStart.get(w) ?? 0, p));
    }
    const winOf = new Map<number, number>();
    for (const [w, end] of byStart) {
      winOf.set(w, windows.length);
      windows.push({ ids: Int32Array.from(d.tokens.slice(w, end)), start: w, dialog: di });
    }
    const ref = (p: number): StateRef => { const w = windowStart(p, contextLength); return { win: winOf.get(w)!, row: p - 1 - w }; };
    for (const t of d.transitions) {
      items.push({ t, s: ref(t.pos), next: t.nextPos > 0 ? ref(t.nextPos) : null, dialog: di });
      rsum += t.reward;
    }
  });
  const byWindow: number[][] = windows.map(() => []);
  items.forEach((it, i) => byWindow[it.s.win]!.push(i));
  return { windows, items, byWindow, stats: { dialogs: dialogs.length, tokens, transitions: items.length, windows: windows.length, rewardMean: items.length ? rsum / items.length : 0 } };
}

// ------------------------------------------------------------------------------------------------
// Network pieces

/** Left-pad windows into one batch; `rowOf(w, r)` is the flat row of window w's row r. */
function packWindows(windows: Window[]): { ids: Int32Array; starts: Int32Array; B: number; T: number; rowOf: (k: number, r: number) => number } {
  const B = windows.length;
  const T = Math.max(...windows.map(w => w.ids.length));
  const ids = new Int32Array(B * T), starts = new Int32Array(B);
  windows.forEach((w, b) => { starts[b] = T - w.ids.length; ids.set(w.ids, b * T + starts[b]!); });
  return { ids, starts, B, T, rowOf: (k, r) => k * T + starts[k]! + r };
}

/** Logits rows [n·V] of `model` at flat rows of a packed batch (optionally with dropout). */
function logitsAt(model: TransformerLM, pack: ReturnType<typeof packWindows>, rows: Int32Array, dropoutSeed?: number): Float32Array {
  let out: Float32Array | null = null;
  tf.tidy(() => {
    const h = model.hidden(pack.ids, pack.B, pack.T, { starts: pack.starts.some(s => s > 0) ? pack.starts : null, ...(dropoutSeed === undefined ? {} : { dropoutSeed }) });
    out = Float32Array.from(readF32(tf.matMul(selectRows(h, rows), tf.transpose(model.outputMatrix()))));
  });
  return out!;
}

function logSumExp(x: Float32Array, o: number, V: number): number {
  let m = -Infinity;
  for (let j = 0; j < V; j++) if (x[o + j]! > m) m = x[o + j]!;
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(x[o + j]! - m);
  return m + Math.log(s);
}

/**
 * The base model's log-partition at every state and log p(a|s) of every action (frozen: computed
 * once). Returns per item: lse0(s), log p(a|s), lse0(s') (0 when terminal).
 */
function basePrecompute(base: TransformerLM, ds: Dataset, chunk = 16): { lse: Float32Array; logp: Float32Array; nextLse: Float32Array } {
  const V = base.config.vocabSize;
  // lse0 for every (window, row) needed.
  const needed = new Map<number, Set<number>>();
  const add = (s: StateRef) => { let m = needed.get(s.win); if (!m) { m = new Set(); needed.set(s.win, m); } m.add(s.row); };
  for (const it of ds.items) { add(it.s); if (it.next) add(it.next); }
  const lseOf = new Map<string, number>();
  const logpOf = new Map<number, number>();
  const wins = [...needed.keys()];
  for (let i = 0; i < wins.length; i += chunk) {
    const group = wins.slice(i, i + chunk);
    const pack = packWindows(group.map(w => ds.windows[w]!));
    const rows: number[] = [], keys: [number, number][] = [];
    group.forEach((w, k) => { for (const r of needed.get(w)!) { rows.push(pack.rowOf(k, r)); keys.push([w, r]); } });
    const z = logitsAt(base, pack, Int32Array.from(rows));
    keys.forEach(([w, r], q) => lseOf.set(`${w}:${r}`, logSumExp(z, q * V, V)));
    // log p(a|s) of the items whose state is here.
    const at = new Map(keys.map(([w, r], q) => [`${w}:${r}`, q]));
    for (const w of group) for (const idx of ds.byWindow[w]!) {
      const it = ds.items[idx]!;
      const q = at.get(`${w}:${it.s.row}`)!;
      logpOf.set(idx, z[q * V + it.t.action]! - lseOf.get(`${w}:${it.s.row}`)!);
    }
  }
  const n = ds.items.length;
  const lse = new Float32Array(n), logp = new Float32Array(n), nextLse = new Float32Array(n);
  ds.items.forEach((it, i) => {
    lse[i] = lseOf.get(`${it.s.win}:${it.s.row}`)!;
    logp[i] = logpOf.get(i)!;
    nextLse[i] = it.next ? lseOf.get(`${it.next.win}:${it.next.row}`)! : 0;
  });
  return { lse, logp, nextLse };
}

/**
 * Jaques et al.'s pessimism over M dropout samples of the target network: for each of `n` rows,
 * min_m log Σ_a exp z_m(row, a) — the minimum of the samples' scalar soft values (rows of V logits).
 */
export function pessimisticSoftValue(samples: readonly Float32Array[], n: number, V: number): Float64Array {
  const out = new Float64Array(n).fill(Infinity);
  for (const z of samples) for (let q = 0; q < n; q++) out[q] = Math.min(out[q]!, logSumExp(z, q * V, V));
  return out;
}

/** The TD target of one token (see the header): r/c + κ + γ·V(s'), κ by `klTerm`. */
export function tdTarget(x: { reward: number; klCoef: number; logPrior: number; logPolicy: number; discount: number; nextValue: number }, klTerm: BatchKlConfig['klTerm']): number {
  const kappa = klTerm === 'log-ratio' ? x.logPrior - x.logPolicy : x.logPrior;
  return x.reward / x.klCoef + kappa + x.discount * x.nextValue;
}

// ------------------------------------------------------------------------------------------------
// Training

export interface BatchKlMetrics {
  /** The gradient step (the `update` of the RL trainers' lines). */
  [UPDATE_KEY]: number;
  [M.tdLoss]: number;
  [M.qMean]: number;
  [M.qTargetMean]: number;
  /** KL(π‖p) at the minibatch's logged states (dropout off), the exact sum over the vocabulary. */
  [M.kl]: number;
  [M.policyEntropy]: number;
  [M.elapsedSeconds]: number;
}

export interface BatchKlResult { out: string; checkpoint: string; steps: number; seconds: number; stats: Dataset['stats']; last: BatchKlMetrics | null }

export interface TrainBatchKlOptions {
  /** A metrics line (also written to metrics.jsonl). */
  onMetrics?: (m: BatchKlMetrics) => void;
  log?: (line: string) => void;
  /** Default base model folder when the config has none. */
  defaultBase?: string;
}

export async function trainBatchKl(config: BatchKlConfig, opts: TrainBatchKlOptions = {}): Promise<BatchKlResult> {
  const cfg = config;
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const baseDir = cfg.base ?? opts.defaultBase ?? process.env.COLLOQUY_BASE_MODEL ?? path.resolve('data', 'models', 'base');
  const out = path.resolve(cfg.out ?? path.join('runs', `batch-kl-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'config.json'), JSON.stringify({ algo: 'batch-kl', ...cfg, base: baseDir }, null, 2) + '\n');
  const metricsFile = path.join(out, 'metrics.jsonl');
  await writeFile(metricsFile, '');

  // ---- the base model (frozen prior) and the tokenizer
  const loaded = await loadCheckpoint(baseDir);
  const base = loaded.model;
  if (!loaded.tokenizer) throw new BadConfig(`batch-kl: the base checkpoint ${baseDir} has no tokenizer.json`);
  const tok = BpeTokenizer.fromJSON(loaded.tokenizer as never);
  const C = base.config.contextLength, V = base.config.vocabSize;

  // ---- data
  let logged = readLoggedDialogs(cfg.data, cfg.rewardKey);
  if (cfg.maxDialogs > 0) logged = logged.slice(0, cfg.maxDialogs);
  // The run's reward statistics: computed once from its data, frozen, saved with it.
  const norm = rewardNorm(logged, cfg.rewardNorm);
  await writeFile(path.join(out, 'config.json'), JSON.stringify({ algo: 'batch-kl', ...cfg, base: baseDir, rewardStats: norm }, null, 2) + '\n');
  const encoded = logged.map(d => encodeDialog(d, tok, cfg, norm)).filter(d => d.transitions.length > 0);
  if (!encoded.length) throw new BadConfig(`batch-kl: no teacher turns in ${cfg.data}`);
  const ds = buildDataset(encoded, C);
  log(`batch-kl: ${ds.stats.dialogs} dialogs, ${ds.stats.transitions} teacher tokens, ${ds.stats.windows} windows, utterance reward mean ${norm.mean.toFixed(3)} s.d. ${norm.std.toFixed(3)} (${norm.count}; ${norm.mode}), mean token reward after it ${ds.stats.rewardMean.toFixed(3)} (base ${baseDir})`);
  const pre = basePrecompute(base, ds);

  // ---- the Q-network (a copy of the base with dropout) and its target network
  const online = TransformerLM.fromWeights({ ...base.config, dropout: cfg.dropout }, base.weightValues());
  const target = online.clone();
  const optimizer = tf.train.adam(cfg.learningRate);
  const rng = new Rng(cfg.seed);
  let last: BatchKlMetrics | null = null;
  const usable = ds.byWindow.map((ix, w) => (ix.length ? w : -1)).filter(w => w >= 0);
  const save = (dir: string, step: number) => saveCheckpoint(online, dir, {
    tokenizer: loaded.tokenizer,
    trainConfig: { algo: 'batch-kl', ...cfg, base: baseDir },
    metadata: {
      backend: backendInfo() ? { name: backendInfo()!.name, tfBackend: backendInfo()!.tfBackend, features: backendInfo()!.features } : null,
      algo: 'batch-kl', base: baseDir, data: cfg.data, step, trainSeconds: (Date.now() - t0) / 1000,
      numParams: online.numParams, dataset: ds.stats, rewardStats: norm,
      sampling: 'softmax of the logits at temperature 1 is the Ψ-policy π(a|s) ∝ exp Ψ(s,a) (see agents/batch-kl.ts)',
    },
  });

  try {
    for (let step = 1; step <= cfg.steps; step++) {
      // A minibatch of windows; the transitions whose state lies in them.
      const wins: number[] = [];
      for (let i = 0; i < Math.min(cfg.batchWindows, usable.length); i++) wins.push(usable[rng.int(usable.length)]!);
      const pack = packWindows(wins.map(w => ds.windows[w]!));
      const idx: number[] = [], rows: number[] = [];
      wins.forEach((w, k) => { for (const i of ds.byWindow[w]!) { idx.push(i); rows.push(pack.rowOf(k, ds.items[i]!.s.row)); } });
      const n = idx.length;

      // Targets: min over M dropout samples of the target network at the next states.
      const nextItems = idx.map(i => ds.items[i]!.next);
      const nextWins = [...new Set(nextItems.filter((s): s is StateRef => s !== null).map(s => s.win))];
      const y = new Float32Array(n);
      const vNext = new Float32Array(n);
      if (nextWins.length) {
        const npack = packWindows(nextWins.map(w => ds.windows[w]!));
        const where = new Map(nextWins.map((w, k) => [w, k]));
        const nrows: number[] = [], slot = new Int32Array(n).fill(-1);
        nextItems.forEach((s, q) => { if (s) { slot[q] = nrows.length; nrows.push(npack.rowOf(where.get(s.win)!, s.row)); } });
        const samples: Float32Array[] = [];
        for (let m = 0; m < cfg.targetSamples; m++) samples.push(logitsAt(target, npack, Int32Array.from(nrows), cfg.dropout > 0 ? rng.seed() : undefined));
        // Each sample's scalar value at s', then the minimum over samples (lse0(s') is the same in all).
        const soft = pessimisticSoftValue(samples, nrows.length, V);
        for (let q = 0; q < n; q++) if (slot[q]! >= 0) vNext[q] = soft[slot[q]!]! - pre.nextLse[idx[q]!]!;
      }
      // log π_θ(a|s) of the current network (no dropout, no gradient), for the log-ratio KL term.
      const logPolicy = new Float32Array(n);
      if (cfg.klTerm === 'log-ratio') {
        const z = logitsAt(online, pack, Int32Array.from(rows));
        for (let q = 0; q < n; q++) logPolicy[q] = z[q * V + ds.items[idx[q]!]!.t.action]! - logSumExp(z, q * V, V);
      }
      let ysum = 0;
      for (let q = 0; q < n; q++) {
        const it = ds.items[idx[q]!]!;
        y[q] = tdTarget({ reward: it.t.reward, klCoef: cfg.klCoef, logPrior: pre.logp[idx[q]!]!, logPolicy: logPolicy[q]!, discount: it.t.discount, nextValue: vNext[q]! }, cfg.klTerm);
        ysum += y[q]!;
      }

      // The TD step on Ψ_θ(s, a) = z_θ(s, a) − lse0(s).
      const actions = Int32Array.from(idx.map(i => ds.items[i]!.t.action));
      const lse0 = Float32Array.from(idx.map(i => pre.lse[i]!));
      const dropoutSeed = cfg.dropout > 0 ? rng.seed() : undefined;
      let qMean = 0;
      const { value, grads } = tf.variableGrads(() => {
        const h = online.hidden(pack.ids, pack.B, pack.T, { starts: pack.starts.some(s => s > 0) ? pack.starts : null, ...(dropoutSeed === undefined ? {} : { dropoutSeed }) });
        const hs = selectRows(h, Int32Array.from(rows));
        const ea = selectRows(online.outputMatrix(), actions);
        const psi = tf.sub(tf.sum(tf.mul(hs, ea), 1), tf.tensor1d(lse0));
        qMean = tf.tidy(() => tf.mean(psi).dataSync()[0]!);
        return tf.losses.huberLoss(tf.tensor1d(y), psi, undefined, cfg.huberDelta) as tf.Scalar;
      }, online.variables);
      clipGradients(grads, cfg.gradClip);
      optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
      const loss = value.dataSync()[0]!;
      value.dispose();
      tf.dispose(Object.values(grads));
      if (!Number.isFinite(loss)) throw new Error(`batch-kl: loss is ${loss} at step ${step}; lower the learning rate or raise klCoef`);

      // Polyak update of the target network.
      tf.tidy(() => {
        for (const [name, v] of target.params) v.assign(tf.add(tf.mul(online.param(name), cfg.tau), tf.mul(v, 1 - cfg.tau)));
      });

      if (step % cfg.logEvery === 0 || step === cfg.steps) {
        const { kl, entropy } = klToBase(online, base, pack, Int32Array.from(rows), V);
        last = {
          [UPDATE_KEY]: step, [M.tdLoss]: loss, [M.qMean]: qMean, [M.qTargetMean]: ysum / Math.max(1, n),
          [M.kl]: kl, [M.policyEntropy]: entropy, [M.elapsedSeconds]: (Date.now() - t0) / 1000,
        };
        await appendFile(metricsFile, JSON.stringify(last) + '\n');
        opts.onMetrics?.(last);
      }
      // Points along training (checkpointEvery): the policy after this step, as checkpoint-STEP/.
      if (cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0) await save(path.join(out, `checkpoint-${step}`), step);
    }

    // ---- the result: the Q-network, read as a language model, is the Ψ-policy.
    const checkpoint = path.join(out, 'checkpoint');
    await save(checkpoint, cfg.steps);
    return { out, checkpoint, steps: cfg.steps, seconds: (Date.now() - t0) / 1000, stats: ds.stats, last };
  } finally {
    optimizer.dispose();
    online.dispose();
    target.dispose();
    base.dispose();
  }
}

/** Mean KL(π_θ‖p) and entropy of π_θ at some states (no dropout). */
function klToBase(online: TransformerLM, base: TransformerLM, pack: ReturnType<typeof packWindows>, rows: Int32Array, V: number): { kl: number; entropy: number } {
  const zq = logitsAt(online, pack, rows), zp = logitsAt(base, pack, rows);
  let kl = 0, ent = 0;
  const n = rows.length;
  for (let i = 0; i < n; i++) {
    const o = i * V;
    const lq = logSumExp(zq, o, V), lp = logSumExp(zp, o, V);
    for (let j = 0; j < V; j++) {
      const a = zq[o + j]! - lq;
      const q = Math.exp(a);
      kl += q * (a - (zp[o + j]! - lp));
      ent -= q * a;
    }
  }
  return { kl: kl / Math.max(1, n), entropy: ent / Math.max(1, n) };
}

