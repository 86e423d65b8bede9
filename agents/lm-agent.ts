/**
 * A teacher that samples its tokens from a language-model checkpoint: the base model, an RL
 * checkpoint, or a batch-kl policy (all are LM checkpoints; see agents/batch-kl.ts for why the
 * Ψ-policy is one). The server's hosted agents play with it (server/chat/hosted.ts); it works on
 * any token-mode dialog env whose observation is `{tokens, length}`.
 *
 *   const teacher = new LmTeacher(model, tokenizer, { temperature: 0.8, maxUtteranceTokens: 40 });
 *   teacher.begin(obs);                       // a new dialog
 *   for (;;) { const a = teacher.act(); const r = await env.step(a); ...; teacher.observe(r.observation); }
 *
 * The KV-cached session is brought up to date with the observation after each step (the student's
 * reply included), so each token costs one incremental forward pass. Tokens that make no sense for
 * a teacher are never sampled: `<|pad|>`, the `\n\nTeacher:` marker, and (unless `allowEnd`)
 * `<|endoftext|>`. After `maxUtteranceTokens` tokens the teacher ends its turn with `\n\nStudent:`
 * (a base model may otherwise ramble until the token limit).
 */
import type { TransformerLM } from '../models/lm.ts';
import type { LMSession } from '../models/sampler.ts';
import { sampleToken } from '../models/sampler.ts';
import type { DialogTokenizer } from '../env/students.ts';
import { Rng } from '../core/rng.ts';

export interface LmTeacherOptions {
  /** Sampling temperature (1 = the model's own distribution). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** End the teacher's turn after this many tokens of it. */
  maxUtteranceTokens?: number;
  /** May the teacher end the dialog (`<|endoftext|>`)? Default false: the person ends it. */
  allowEnd?: boolean;
  seed?: number;
}

type TokenObs = { tokens: number[]; length: number[] };

export class LmTeacher {
  private session: LMSession | null = null;
  private readonly rng: Rng;
  private turnTokens = 0;
  private readonly banned: number[];

  constructor(readonly model: TransformerLM, private readonly tokenizer: DialogTokenizer, private readonly opts: LmTeacherOptions = {}) {
    this.rng = new Rng(opts.seed ?? 1);
    const sp = tokenizer.special;
    this.banned = [sp.pad, sp.teacher, ...(opts.allowEnd ? [] : [sp.endOfText])];
  }

  /** A new dialog from its first observation. */
  begin(obs: unknown): void {
    this.session?.dispose();
    this.session = this.model.startSession([transcript(obs)]);
    this.turnTokens = 0;
  }

  /** The next token of the teacher's turn. */
  act(): number {
    const s = this.session;
    if (!s) throw new Error('LmTeacher.act() before begin()');
    const sp = this.tokenizer.special;
    const max = this.opts.maxUtteranceTokens ?? 48;
    if (this.turnTokens >= max) { this.turnTokens = 0; return sp.student; }
    const lp = Float32Array.from(s.nextLogProbs([0])[0]!);
    for (const b of this.banned) lp[b] = -Infinity;
    const a = sampleToken(lp, { temperature: this.opts.temperature ?? 1, topK: this.opts.topK ?? 0, rng: this.rng });
    this.turnTokens = a === sp.student ? 0 : this.turnTokens + 1;
    return a;
  }

  /** Catch up with the env's transcript after a step (the action, and a reply when one came). */
  observe(obs: unknown): void {
    const s = this.session;
    if (!s) return;
    const want = transcript(obs);
    const have = s.tokens(0);
    let same = have.length <= want.length;
    for (let i = 0; same && i < have.length; i++) if (have[i] !== want[i]) same = false;
    if (same) { if (want.length > have.length) s.extend(0, want.slice(have.length)); } else s.resetRow(0, want);
  }

  dispose(): void {
    this.session?.dispose();
    this.session = null;
  }
}

function transcript(obs: unknown): number[] {
  const o = obs as TokenObs;
  if (!o || !Array.isArray(o.tokens) || !Array.isArray(o.length)) throw new Error('LmTeacher needs a token-mode observation {tokens, length}');
  return o.tokens.slice(0, o.length[0]!);
}
