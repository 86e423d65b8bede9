/**
 * Students for the dialog envs. A student writes the student's turn given the transcript so far
 * (token ids) and returns its reply tokens, ending with the turn marker `\n\nTeacher:` when it hands
 * the turn back, `<|endoftext|>` when it leaves, or neither when it was cut at `maxTokens`.
 *
 * - `LmStudent`: samples from a language model (default: the base model at temperature 0.05, as in
 *   Cohen et al. 2024), batched across all dialogs that need a reply in the same tick.
 * - `ScriptedStudent`: fixed rules for tests and examples (reply by keyword in the teacher's turn).
 * A human student (the chat page) plugs in behind the same interface.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Batcher } from './batcher.ts';
import { Rng } from '../core/rng.ts';

export interface DialogTokenizer {
  readonly vocabSize: number;
  readonly special: { readonly endOfText: number; readonly pad: number; readonly student: number; readonly teacher: number };
  encode(text: string): number[];
  decode(ids: number[]): string;
}

export interface StudentRequest {
  /** The transcript so far, ending with the `\n\nStudent:` marker. */
  context: number[];
  /** Most tokens this reply may have. */
  maxTokens: number;
  /** Seed for this reply's sampling (drawn from the dialog's own random stream). */
  seed: number;
  /** The teacher's utterance this reply answers, as text. */
  teacherUtterance: string;
  /** 0-based index of this exchange in the episode. */
  turnIndex: number;
}

export interface StudentReply {
  tokens: number[];
  /** Set when the reply was cut by the env (e.g. a human timed out). */
  timedOut?: boolean;
  /** Free-form detail for info (e.g. which rule of a scripted student fired). */
  detail?: Record<string, unknown>;
}

export interface Student {
  readonly kind: 'model' | 'scripted' | 'human';
  /** Whether the same seed gives the same reply. */
  readonly deterministic: boolean;
  reply(req: StudentRequest): Promise<StudentReply>;
  close?(): Promise<void>;
  /** A new episode starts from this opening transcript (`options`: the reset's options). A human student opens its chat seat here. */
  onEpisodeStart?(start: { context: number[]; options?: Record<string, unknown> }): void | Promise<void>;
  /** The agent (teacher) emitted these tokens, as it emits them (token mode: one per step), for streaming to a person. */
  onTeacherTokens?(ids: number[]): void;
  /** The episode ended (`reason`: info.endedBy or info.truncatedBy). */
  onEpisodeEnd?(end: { terminated: boolean; truncated: boolean; reason: string | null }): void;
}

/** Next-token log-probabilities for a batch of contexts, with incremental decoding. */
export interface TokenSampler {
  /**
   * Sample continuations of each context until a stop token (included in the result) or
   * `maxTokens[i]` tokens, at the given temperature, with one random stream per row.
   */
  sampleBatch(contexts: number[][], opts: { maxTokens: number[]; temperature: number; stopTokens: number[]; rngs: Rng[] }): Promise<number[][]>;
}

export class LmStudent implements Student {
  readonly kind = 'model' as const;
  readonly deterministic = true;
  private readonly batcher: Batcher<StudentRequest, StudentReply>;

  constructor(sampler: TokenSampler, tokenizer: DialogTokenizer, readonly temperature = 0.05) {
    const stop = [tokenizer.special.teacher, tokenizer.special.endOfText];
    this.batcher = new Batcher(async reqs => {
      const out = await sampler.sampleBatch(reqs.map(r => r.context), {
        maxTokens: reqs.map(r => r.maxTokens), temperature: this.temperature, stopTokens: stop, rngs: reqs.map(r => new Rng(r.seed)),
      });
      return out.map(tokens => ({ tokens }));
    });
  }

  reply(req: StudentRequest): Promise<StudentReply> {
    return this.batcher.request(req);
  }
}

export const ScriptedRules = Type.Object({
  rules: Type.Array(Type.Object({
    contains: Type.String({ description: 'case-insensitive substring of the teacher utterance' }),
    reply: Type.String(),
  }, { additionalProperties: false }), { default: [], description: 'first matching rule wins' }),
  default: Type.String({ default: ' I see.', description: 'reply when no rule matches' }),
  leaveAfter: Type.Integer({ minimum: 0, default: 0, description: 'leave (end of text) after this many replies; 0 = never' }),
}, { additionalProperties: false });
export type ScriptedRules = Static<typeof ScriptedRules>;

/** A student that answers by rules: deterministic, instant, for tests and examples. */
export class ScriptedStudent implements Student {
  readonly kind = 'scripted' as const;
  readonly deterministic = true;

  constructor(private readonly tokenizer: DialogTokenizer, private readonly rules: ScriptedRules) {}

  async reply(req: StudentRequest): Promise<StudentReply> {
    const said = req.teacherUtterance.toLowerCase();
    const idx = this.rules.rules.findIndex(r => said.includes(r.contains.toLowerCase()));
    const text = idx >= 0 ? this.rules.rules[idx]!.reply : this.rules.default;
    const leaving = this.rules.leaveAfter > 0 && req.turnIndex + 1 >= this.rules.leaveAfter;
    const end = leaving ? this.tokenizer.special.endOfText : this.tokenizer.special.teacher;
    const tokens = [...this.tokenizer.encode(text), end].slice(0, req.maxTokens);
    return { tokens, detail: { rule: idx } };
  }
}
