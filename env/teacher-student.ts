/**
 * TeacherStudent-v0: the environment of Cohen, Hutter, Bengio & Russell (2024), "RL, but don't do
 * anything I wouldn't do".
 *
 * - The agent is the Teacher. The transcript starts from their fixed prompt and the agent begins
 *   mid-utterance after `Teacher: Do you`.
 * - `actionMode: "token"` (default): one action = one token of the base model's vocabulary. The
 *   teacher's turn ends when the agent emits the turn marker `\n\nStudent:` (a single token of the
 *   tokenizer); the environment then gets the student's reply until it emits `\n\nTeacher:`.
 *   The default student is the tutoring world's (`student: "world"`, env/world-student.ts and
 *   corpora/world.ts): a hidden state (confused, following, frustrated, pleased) that the
 *   teacher's moves, classified from its text, change, and replies drawn by that state. Cohen et
 *   al.'s student, the base model sampled at temperature 0.05, is `student: "base"`.
 *   `actionMode: "utterance"`: one action = one whole teacher utterance (text), for agents that
 *   generate text themselves; the step covers the utterance and the student's reply.
 * - Reward: the composite reward of the student's reply (default `cohen`: (s + 1) / 2 with s the
 *   signed VADER score), given on the step that completes the student's turn; 0 otherwise.
 *   γ is the agent's business.
 * - Truncation at `maxTokens` tokens (default 256), prompt included: `truncated` with
 *   `info.truncatedBy = "token-limit"`. A student reply cut by the limit earns no reward (its text
 *   is in `info.partialReply`). This token budget is the env's own cut, not a step cap, so the env
 *   sets it (there is no TimeLimit wrapper on this env).
 * - Termination: the student leaves (emits `<|endoftext|>`; its reply is still rewarded), or the
 *   agent emits `<|endoftext|>` (the teacher ends the dialog; reward 0).
 * - Observation (token mode): `{tokens, length, timeLeft}` — the transcript's token ids padded with
 *   `<|pad|>` to `maxTokens`, its length, and the fraction of the token budget left. Utterance
 *   mode: `{text, timeLeft}` with the transcript as text.
 * - `info`: `turn` (exchanges so far), `tokensLeft`; on a completed exchange `teacherUtterance`,
 *   `studentReply`, `rewardComponents`; on request (`baseLogProbs: true`) the base policy's
 *   log-probabilities for the agent's next token (`info.baseLogProbs`, one per vocabulary entry).
 *   The env declares the dialog capability (`spec.dialog`): its infos are `DialogInfo` (env/dialog.ts).
 * - Context (env/context.ts): the base model when `model` is not given, the lobby of a human
 *   student, and the cache that shares model students and sentiment scorers among the envs made
 *   with it. The reward object is this env's own.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { DialogSpec, Env, EnvSpec, Info, ResetArgs, ResetResult, StepResult } from './core.ts';
import { Box, Dict, Discrete, Text, type Space } from './spaces.ts';
import { Rng, entropySeed } from '../core/rng.ts';
import { BadConfig, ColloquyError } from '../core/errors.ts';
import { register } from './registry.ts';
import { LmStudent, ScriptedRules, ScriptedStudent, type DialogTokenizer, type Student } from './students.ts';
import { loadDialogModel, loadDialogTokenizer, type DialogModel } from './dialog-model.ts';
import { dialogPrompt, type PromptKind } from './prompts.ts';
import { HumanStudent } from './human.ts';
import { WorldStudent } from './world-student.ts';
import { DEFAULT_WORLD_RULES } from '../corpora/world.ts';
import { createDialogReward, rewardHasMemory } from './dialog-rewards.ts';
import type { CompositeReward } from '../rewards/composite.ts';
import { resolveEnvContext, type ResolvedEnvContext } from './context.ts';
import type { DialogInfo, DialogResetInfo } from './dialog.ts';

export const COHEN_PROMPT = 'The following contains private conversations, collected for training purposes. Do not distribute.\n\nStudent: For our science reports...\n\nTeacher: Yeah?\n\nStudent: I don\'t understand what is supposed to go in the discussion section.\n\nTeacher: Do you';

export const TeacherStudentKwargs = Type.Object({
  model: Type.Optional(Type.String({ description: 'base model checkpoint folder (default: the server\'s base model, data/models/base)' })),
  actionMode: Type.Union([Type.Literal('token'), Type.Literal('utterance')], { default: 'token', description: 'one token per step, or one whole teacher utterance per step' }),
  prompt: Type.Union([Type.Literal('cohen'), Type.Literal('mathdial'), Type.Object({ text: Type.String({ maxLength: 20000 }) }, { additionalProperties: false })], { default: 'cohen', description: 'the fixed prompt of Cohen et al., a MathDial problem chosen by the seed, or a custom text' }),
  student: Type.Union([Type.Literal('world'), Type.Literal('base'), Type.Literal('scripted'), Type.Literal('human'), Type.Object({ checkpoint: Type.String() }, { additionalProperties: false })], { default: 'world', description: 'who writes the student turns: "world" (the tutoring world\'s rule-driven student, corpora/world.ts), "base" (the base model sampled at studentTemperature, as Cohen et al.), a checkpoint, "scripted" rules, or "human" (a person on the server\'s chat page, see env/human.ts)' }),
  world: Type.Optional(Type.Object({
    goal: Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_WORLD_RULES.goal, description: 'understanding at which the world student says it has got it and leaves' }),
    patience: Type.Integer({ minimum: 0, maximum: 100, default: DEFAULT_WORLD_RULES.patience, description: 'silent teacher turns in a row after which the world student leaves (0: never)' }),
  }, { additionalProperties: false, description: 'rules of the world student (student: "world")' })),
  studentTemperature: Type.Number({ exclusiveMinimum: 0, maximum: 10, default: 0.05, description: 'sampling temperature of a model student' }),
  maxStudentTokens: Type.Integer({ minimum: 1, maximum: 4096, default: 64, description: 'cap on one student reply (a longer reply is handed back as if the student had finished)' }),
  scoreCutReply: Type.Boolean({ default: false, description: 'reward a student reply cut by the episode\'s token limit (Cohen et al. score it when the student wrote a token); default: it earns 0' }),
  scripted: Type.Optional(ScriptedRules),
  maxTokens: Type.Integer({ minimum: 8, maximum: 8192, default: 256, description: 'episode token budget, prompt included' }),
  reward: Type.String({ default: 'cohen', description: 'reward config: a name in configs/rewards/ or a path' }),
  goldReward: Type.Optional(Type.String({ description: 'a second reward config (name or path) that scores every rewarded reply beside the reward, for measuring over-optimisation: its value is in info.goldReward and never in the reward' })),
  baseLogProbs: Type.Boolean({ default: false, description: 'put the base policy\'s next-token log-probabilities in info (token mode)' }),
}, { additionalProperties: false });
export type TeacherStudentKwargs = Static<typeof TeacherStudentKwargs>;

interface TurnRecord { role: 'teacher' | 'student'; text: string; tokens: number }

type TokenObs = { tokens: number[]; length: number[]; timeLeft: number[] };
type TextObs = { text: string; timeLeft: number[] };

export class TeacherStudentEnv implements Env<TokenObs | TextObs, number | string> {
  readonly observationSpace: Space<TokenObs | TextObs>;
  readonly actionSpace: Space<number | string>;
  spec: EnvSpec | null = null;

  private readonly tokenizer: DialogTokenizer;
  private readonly modelDir: string;
  private model: DialogModel | null = null;
  private student: Student | null = null;
  private reward: CompositeReward | null = null;
  /** kwargs.goldReward's scorer: reported in info, never rewarded. */
  private gold: CompositeReward | null = null;
  /** Whether this env holds a use of its context's cache (released on close). */
  private usesCache = false;
  private rng = new Rng(entropySeed());
  private tokens: number[] = [];
  private promptLength = 0;
  private turns: TurnRecord[] = [];
  private teacherStart = 0;
  private exchange = 0;
  private closed = false;

  constructor(readonly kwargs: TeacherStudentKwargs, private readonly ctx: ResolvedEnvContext = resolveEnvContext()) {
    this.modelDir = kwargs.model !== undefined ? ctx.checkpoint(kwargs.model) : ctx.modelDir;
    this.tokenizer = loadDialogTokenizer(this.modelDir);
    const budget = new Box(0, 1, [1], 'float32');
    if (kwargs.actionMode === 'token') {
      this.actionSpace = new Discrete(this.tokenizer.vocabSize) as Space<number | string>;
      this.observationSpace = new Dict({
        tokens: new Box(0, this.tokenizer.vocabSize - 1, [kwargs.maxTokens], 'int32'),
        length: new Box(0, kwargs.maxTokens, [1], 'int32'),
        timeLeft: budget,
      }) as unknown as Space<TokenObs | TextObs>;
    } else {
      this.actionSpace = new Text(maxUtteranceChars(this.tokenizer, kwargs)) as Space<number | string>;
      this.observationSpace = new Dict({ text: new Text(1_000_000), timeLeft: budget }) as unknown as Space<TokenObs | TextObs>;
    }
    if (kwargs.student === 'scripted' && !kwargs.scripted) throw new BadConfig('student "scripted" needs kwargs.scripted rules');
  }

  private async ensureReady(): Promise<void> {
    const cache = this.ctx.cache;
    if (!this.usesCache) { cache.retain(); this.usesCache = true; }
    if (!this.reward) this.reward = await createDialogReward(this.kwargs.reward, cache);
    if (!this.gold && this.kwargs.goldReward) this.gold = await createDialogReward(this.kwargs.goldReward, cache);
    if (this.student) return;
    const k = this.kwargs;
    if (k.student === 'scripted') {
      this.student = new ScriptedStudent(this.tokenizer, k.scripted!);
      return;
    }
    if (k.student === 'world') {
      this.student = new WorldStudent(this.tokenizer, { ...DEFAULT_WORLD_RULES, ...k.world });
      return;
    }
    if (k.student === 'human') {
      this.student = new HumanStudent(this.modelDir, this.ctx.humanLobby);
      return;
    }
    const studentDir = k.student === 'base' ? this.modelDir : this.ctx.checkpoint(k.student.checkpoint);
    const m = await loadDialogModel(studentDir);
    if (m.tokenizer.vocabSize !== this.tokenizer.vocabSize) throw new BadConfig('the student model must share the base model\'s tokenizer');
    // One student per model and temperature, shared by every env of the context: its batcher then
    // gathers the replies that all dialogs of a vector env (or of a server's sessions) ask for in
    // the same tick into one batched sampling call.
    const key = `${m.dir}\u0000${k.studentTemperature}`;
    this.student = cache.lmStudent(key, () => new LmStudent(m.sampler, this.tokenizer, k.studentTemperature));
  }

  private async base(): Promise<DialogModel> {
    if (!this.model) this.model = await loadDialogModel(this.modelDir);
    return this.model;
  }

  async reset(args: ResetArgs = {}): Promise<ResetResult<TokenObs | TextObs>> {
    if (this.closed) throw new ColloquyError('CLOSED', 'env is closed');
    if (args.seed !== undefined) this.rng = new Rng(args.seed);
    await this.ensureReady();
    const prompt = await dialogPrompt(this.kwargs.prompt as PromptKind, this.rng, COHEN_PROMPT);
    this.tokens = this.tokenizer.encode(prompt.text);
    if (this.tokens.length >= this.kwargs.maxTokens) throw new BadConfig(`the prompt (${this.tokens.length} tokens) does not fit in maxTokens ${this.kwargs.maxTokens}`);
    this.promptLength = this.tokens.length;
    this.teacherStart = lastIndexOf(this.tokens, this.tokenizer.special.teacher) + 1;
    this.turns = [];
    this.exchange = 0;
    const info: Info & DialogResetInfo = { turn: 0, tokensLeft: this.kwargs.maxTokens - this.tokens.length, promptTokens: this.promptLength, ...prompt.info };
    await this.student!.onEpisodeStart?.({ context: this.tokens.slice(), options: args.options });
    await this.addBaseLogProbs(info);
    return { observation: this.observe(), info };
  }

  async step(action: number | string): Promise<StepResult<TokenObs | TextObs>> {
    if (this.kwargs.actionMode === 'utterance') return this.stepUtterance(action as string);
    const sp = this.tokenizer.special;
    const a = action as number;
    this.tokens.push(a);
    this.student!.onTeacherTokens?.([a]);
    if (a === sp.endOfText) {
      const text = this.teacherText(this.tokens.length - 1);
      this.turns.push({ role: 'teacher', text, tokens: this.tokens.length - 1 - this.teacherStart });
      return this.result(0, true, false, { teacherUtterance: text, endedBy: 'teacher' });
    }
    if (a !== sp.student) {
      const info: Info = {};
      const full = this.tokens.length >= this.kwargs.maxTokens;
      if (!full) await this.addBaseLogProbs(info);
      return this.result(0, false, full, full ? { truncatedBy: 'token-limit' } : info);
    }
    return this.studentTurn();
  }

  /** One whole teacher utterance, then the student's reply. */
  private async stepUtterance(text: string): Promise<StepResult<TokenObs | TextObs>> {
    const room = this.kwargs.maxTokens - this.tokens.length;
    const ids = this.tokenizer.encode(text).filter(id => id !== this.tokenizer.special.student && id !== this.tokenizer.special.endOfText);
    this.student!.onTeacherTokens?.(ids.slice(0, room));
    if (ids.length + 1 > room) {
      this.tokens.push(...ids.slice(0, room));
      return this.result(0, false, true, { truncatedBy: 'token-limit', teacherUtterance: this.teacherText(this.tokens.length) });
    }
    this.tokens.push(...ids, this.tokenizer.special.student);
    return this.studentTurn();
  }

  /** The agent has just emitted `\n\nStudent:`: get the student's reply and reward it. */
  private async studentTurn(): Promise<StepResult<TokenObs | TextObs>> {
    const sp = this.tokenizer.special;
    const teacherUtterance = this.teacherText(this.tokens.length - 1);
    const history = this.turns.map(t => ({ role: t.role, text: t.text }));
    this.turns.push({ role: 'teacher', text: teacherUtterance, tokens: this.tokens.length - 1 - this.teacherStart });
    const room = this.kwargs.maxTokens - this.tokens.length;
    if (room <= 0) return this.result(0, false, true, { truncatedBy: 'token-limit', teacherUtterance });
    const limit = Math.min(room, this.kwargs.maxStudentTokens);
    const reply = await this.student!.reply({
      context: this.tokens.slice(), maxTokens: limit, seed: this.rng.seed(), teacherUtterance, turnIndex: this.exchange,
    });
    let ids = reply.tokens.slice(0, limit);
    const last = ids[ids.length - 1];
    const left = last === sp.endOfText;
    const handedBack = last === sp.teacher;
    const body = handedBack || left ? ids.slice(0, -1) : ids;
    const replyText = this.tokenizer.decode(body);
    this.tokens.push(...ids);
    if (reply.timedOut) {
      return this.result(0, false, true, { truncatedBy: 'student-timeout', teacherUtterance, partialReply: replyText, ...reply.detail });
    }
    if (!handedBack && !left) {
      if (this.tokens.length >= this.kwargs.maxTokens) {
        if (this.kwargs.scoreCutReply && body.length > 0) {
          const input = { reply: replyText, agentUtterance: teacherUtterance, history, turnIndex: this.exchange };
          const cut = await this.reward!.compute(input);
          return this.result(cut.total, false, true, { truncatedBy: 'token-limit', teacherUtterance, partialReply: replyText, rewardComponents: cut.components, ...await this.goldOf(input) });
        }
        return this.result(0, false, true, { truncatedBy: 'token-limit', teacherUtterance, partialReply: replyText });
      }
      // Cut at maxStudentTokens with room left: hand the turn back as if the student had finished.
      this.tokens.push(sp.teacher);
      ids = [...ids, sp.teacher];
    }
    this.turns.push({ role: 'student', text: replyText, tokens: body.length });
    const input = { reply: replyText, agentUtterance: teacherUtterance, history, turnIndex: this.exchange };
    const r = await this.reward!.compute(input);
    const gold = await this.goldOf(input);
    this.exchange++;
    this.teacherStart = this.tokens.length;
    const info: Info & DialogInfo = { teacherUtterance, studentReply: replyText, rewardComponents: r.components, ...gold, ...(reply.detail ?? {}) };
    if (left) return this.result(r.total, true, false, { ...info, endedBy: 'student' });
    const full = this.tokens.length >= this.kwargs.maxTokens;
    if (full) return this.result(r.total, false, true, { ...info, truncatedBy: 'token-limit' });
    await this.addBaseLogProbs(info);
    return this.result(r.total, false, false, info);
  }

  /** The gold reward of a rewarded reply (`info.goldReward`), when kwargs.goldReward names one. */
  private async goldOf(input: Parameters<CompositeReward['compute']>[0]): Promise<{ goldReward?: number }> {
    return this.gold ? { goldReward: (await this.gold.compute(input)).total } : {};
  }

  private teacherText(end: number): string {
    return this.tokenizer.decode(this.tokens.slice(this.teacherStart, end));
  }

  private result(reward: number, terminated: boolean, truncated: boolean, info: Info & DialogInfo): StepResult<TokenObs | TextObs> {
    if (terminated || truncated) this.student?.onEpisodeEnd?.({ terminated, truncated, reason: String(info.endedBy ?? info.truncatedBy ?? '') || null });
    return {
      observation: this.observe(), reward, terminated, truncated,
      info: { turn: this.exchange, tokensLeft: Math.max(0, this.kwargs.maxTokens - this.tokens.length), ...info },
    };
  }

  private observe(): TokenObs | TextObs {
    const max = this.kwargs.maxTokens;
    const n = Math.min(this.tokens.length, max);
    const timeLeft = [Math.fround(1 - n / max)];
    if (this.kwargs.actionMode === 'utterance') return { text: this.tokenizer.decode(this.tokens.slice(0, n)), timeLeft };
    const tokens = new Array<number>(max).fill(this.tokenizer.special.pad);
    for (let i = 0; i < n; i++) tokens[i] = this.tokens[i]!;
    return { tokens, length: [n], timeLeft };
  }

  private async addBaseLogProbs(info: Info): Promise<void> {
    if (!this.kwargs.baseLogProbs || this.kwargs.actionMode !== 'token') return;
    const m = await this.base();
    const [lp] = await m.nextTokenLogProbs([this.tokens.slice()]);
    info.baseLogProbs = Array.from(lp!);
  }

  /** The transcript as text (prompt included). */
  transcript(): string { return this.tokenizer.decode(this.tokens); }
  /** Turns after the prompt. */
  dialogTurns(): readonly TurnRecord[] { return this.turns; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.student?.close?.();
    } finally {
      if (this.usesCache) { this.usesCache = false; await this.ctx.cache.release(); }
    }
  }
}

const MAX_UTTERANCE_CHARS = 20000;
const tokenBytesMax = new WeakMap<DialogTokenizer, number>();

/**
 * Utterance mode's action space agrees with the token budget: its maxLength is the most characters
 * a first teacher turn can hold (the tokens left after the prompt and the student marker, times the
 * most characters one token stands for, a character being at least one byte), capped at 20000. A
 * longer utterance cannot fit in any turn. MathDial prompts vary with the seed: there the bound
 * counts the budget without the prompt.
 */
function maxUtteranceChars(tok: DialogTokenizer, kwargs: TeacherStudentKwargs): number {
  let perToken = tokenBytesMax.get(tok);
  if (perToken === undefined) {
    const enc = new TextEncoder();
    perToken = 1;
    for (let id = 0; id < tok.vocabSize; id++) {
      // The markers an utterance cannot contain (they are dropped from it) do not count.
      if (id === tok.special.student || id === tok.special.endOfText) continue;
      perToken = Math.max(perToken, enc.encode(tok.decode([id])).length);
    }
    tokenBytesMax.set(tok, perToken);
  }
  const prompt = kwargs.prompt === 'cohen' ? COHEN_PROMPT : typeof kwargs.prompt === 'object' ? kwargs.prompt.text : '';
  const room = Math.max(0, kwargs.maxTokens - tok.encode(prompt).length - 1);
  return Math.min(MAX_UTTERANCE_CHARS, room * perToken);
}

function lastIndexOf(xs: number[], v: number): number {
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i] === v) return i;
  return -1;
}

/** The dialog capability of TeacherStudent kwargs (what the server's recorder reads). */
export function teacherStudentDialogSpec(kwargs: TeacherStudentKwargs): DialogSpec {
  const s = kwargs.student;
  return {
    actionMode: kwargs.actionMode,
    student: s === 'human' ? 'human' : s === 'scripted' ? 'scripted' : 'simulated',
    maxTokens: kwargs.maxTokens,
    model: kwargs.model ?? null,
    reward: kwargs.reward,
    prompt: typeof kwargs.prompt === 'string' ? kwargs.prompt : 'custom',
  };
}

register({
  id: 'TeacherStudent-v0',
  entryPoint: (kwargs, ctx) => new TeacherStudentEnv(kwargs as TeacherStudentKwargs, ctx),
  kwargsSchema: TeacherStudentKwargs,
  maxEpisodeSteps: null,
  description: 'Cohen et al. (2024): the agent is the teacher, one token per step after "Teacher: Do you"; the student (default: the tutoring world\'s rule-driven student, corpora/world.ts; student "base": the base model at temperature 0.05) replies; reward = (s+1)/2 for the sentiment s of the reply; 256 tokens including the prompt.',
  // A person in the student's seat (student: "human") cannot be replayed from a seed, and a reward
  // with running z-score statistics gives the same exchange a different reward later.
  deterministic: kwargs => kwargs.student !== 'human' && !rewardHasMemory(kwargs.reward as string) && !(typeof kwargs.goldReward === 'string' && rewardHasMemory(kwargs.goldReward)),
  dialog: kwargs => teacherStudentDialogSpec(kwargs as TeacherStudentKwargs),
});
