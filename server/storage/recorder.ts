/**
 * The one place where dialogs are written to the store: a vector-env wrapper the server stacks on
 * every recorded session (protocol sessions on /v1/env and the server's own hosted-agent chats) of
 * any env that declares the dialog capability (`spec.dialog`, env/core.ts `DialogSpec`), whatever
 * its id. It reads what the dialog env already reports — its transcript observations and the typed
 * `DialogInfo` of its steps (env/dialog.ts: `teacherUtterance`, `studentReply`,
 * `rewardComponents`, `endedBy` / `truncatedBy`, ...) — and writes, *before the step's result goes
 * back to anyone*:
 *
 *   reset                        startDialog (prompt text, kwargs, seed, agent) per sub-env
 *   an action that ends the      with a person in the student's seat: the teacher's turn, before
 *   teacher's turn               the env waits for them (the utterance they are reading is on
 *                                disk while they type); with a simulated student it goes with the
 *                                exchange, in the step's one transaction
 *   a completed exchange         the student's turn and its reward (total + components)
 *   the end of an episode        a partial turn if one was cut, endDialog, recordEpisode
 *
 * The writes of one vector step go in one transaction (one commit, one fsync with synchronous
 * FULL; two when a person's teacher turn is written ahead). bench/recorder.ts measures the cost. Only then are people's messages acknowledged (`HUMAN_ACK` in the info, env/human.ts) and
 * the step returned to the protocol, which replies to the agent. If the write fails, nothing is
 * acknowledged: the step fails (the agent gets an error; the person's message stays unacknowledged).
 *
 * A teacher turn is written when it is complete, not token by token: if the server dies in the
 * middle of an utterance, that partial utterance (never acknowledged as a turn) is lost, and the
 * dialog is marked `abandoned` at the next start-up.
 *
 * The agent's name (stored with the dialog, used by `colloquy export --agent`) comes from the reset
 * options: `reset({options: {agent: 'ppo-kl20', agentId: '…'}})`, or from the recorder's options.
 */
import type { Logger } from 'pino';
import { subEnvSeed, type Info, type VectorEnv, type VectorResetArgs, type VectorResetResult, type VectorStepResult, type AutoresetMode, type DialogSpec, type EnvSpec } from '../../env/core.ts';
import type { Space } from '../../env/spaces.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { dialogResetInfo, dialogSpecOf, dialogStepInfo } from '../../env/dialog.ts';
import type { BpeTokenizer } from '../../models/tokenizer.ts';
import { HUMAN_ACK, type HumanAck, type StoredTurn } from '../../env/human.ts';
import type { Metadata, Store } from './db.ts';
import { TURN_TEACHER } from '../../core/markers.ts';
import { BadConfig } from '../../core/errors.ts';

export interface RecorderOptions {
  store: Store;
  /**
   * The base model folder of the context the env was made with (the server's): the tokenizer of
   * the transcripts when the dialog spec names no model.
   */
  modelDir: string;
  /** The folder of a checkpoint the dialog spec names (a server maps its ids, server/resources.ts); default: the name is the folder. */
  checkpoint?: (name: string) => string;
  /** The protocol session id (read at each dialog start; the session exists by then). */
  sessionId?: () => string | null;
  /** Agent name / id when the reset options do not give one (e.g. a hosted agent). */
  agentName?: string | null;
  agentId?: string | null;
  /** Extra dialog metadata (e.g. `{hosted: true}`). */
  metadata?: Metadata;
  log?: Logger;
}

/** Whether sessions of an env with this spec are dialogs the recorder understands: those of any env that declares `spec.dialog`. */
export function isDialogSpec(spec: EnvSpec | null | undefined): boolean {
  return dialogSpecOf(spec) !== null;
}

type TokenObs = { tokens: number[]; length: number[] };
type TextObs = { text: string };
const isTokenObs = (o: unknown): o is TokenObs => typeof o === 'object' && o !== null && Array.isArray((o as TokenObs).tokens);

interface Slot {
  dialogId: string | null;
  seed: number | null;
  /** The sub-env's last observation (its transcript so far). */
  obs: unknown;
  /** The teacher's turn was written before the step (the action ended it). */
  teacherWritten: boolean;
  ret: number;
  steps: number;
  /** The episode ended on the last step (next-step autoreset resets it on the next one). */
  ended: boolean;
}

/** A write planned during a step, run in the step's transaction. */
type Write = () => void;

export class RecordingVectorEnv<O = unknown, A = unknown> implements VectorEnv<O, A> {
  private readonly slots: Slot[];
  private readonly tokenizer: BpeTokenizer;
  private readonly dialog: DialogSpec;
  private readonly envId: string;
  /** Write teacher turns before the step (a person reads them while the step waits). */
  private readonly writeAhead: boolean;
  private agentName: string | null;
  private agentId: string | null;
  private closed = false;

  constructor(readonly inner: VectorEnv<O, A>, private readonly opts: RecorderOptions) {
    const spec = inner.spec;
    const dialog = dialogSpecOf(spec);
    if (!spec || !dialog) throw new BadConfig(`env ${spec?.id ?? '(without a spec)'} does not declare the dialog capability (spec.dialog): there are no dialogs to record`);
    this.envId = spec.id;
    this.dialog = dialog;
    this.writeAhead = dialog.student === 'human';
    this.tokenizer = loadDialogTokenizer(dialog.model != null ? (opts.checkpoint ?? (n => n))(dialog.model) : opts.modelDir);
    this.agentName = opts.agentName ?? null;
    this.agentId = opts.agentId ?? null;
    this.slots = Array.from({ length: inner.numEnvs }, () => ({ dialogId: null, seed: null, obs: null, teacherWritten: false, ret: 0, steps: 0, ended: false }));
  }

  get numEnvs(): number { return this.inner.numEnvs; }
  get singleObservationSpace(): Space<O> { return this.inner.singleObservationSpace; }
  get singleActionSpace(): Space<A> { return this.inner.singleActionSpace; }
  get autoresetMode(): AutoresetMode { return this.inner.autoresetMode; }
  get spec(): EnvSpec | null { return this.inner.spec; }
  set spec(s: EnvSpec | null) { this.inner.spec = s; }

  async reset(args: VectorResetArgs = {}): Promise<VectorResetResult<O>> {
    const opt = args.options ?? {};
    if (typeof opt.agent === 'string') this.agentName = opt.agent.slice(0, 200);
    if (typeof opt.agentName === 'string') this.agentName = opt.agentName.slice(0, 200);
    if (typeof opt.agentId === 'string') this.agentId = opt.agentId.slice(0, 200);
    const r = await this.inner.reset(args);
    const mask = Array.isArray(opt.resetMask) ? opt.resetMask : null;
    const writes: Write[] = [];
    for (let i = 0; i < this.numEnvs; i++) {
      if (mask && !mask[i]) continue;
      const seed = subEnvSeed(args.seed, i, this.numEnvs) ?? null;
      this.closeOpen(i, writes, 'truncated', 'reset before the episode ended');
      this.startDialog(i, r.observations[i], r.infos[i]!, seed, writes);
    }
    this.commit(writes, []);
    return r;
  }

  async step(actions: A[]): Promise<VectorStepResult<O>> {
    // Before the env runs: write the teacher turns that these actions complete.
    const pre: Write[] = [];
    if (this.writeAhead && Array.isArray(actions) && actions.length === this.numEnvs) {
      for (let i = 0; i < this.numEnvs; i++) this.planTeacherTurn(i, actions[i], pre);
    }
    this.commit(pre, []);

    const r = await this.inner.step(actions);
    const writes: Write[] = [];
    const acks: { ack: HumanAck; turn: StoredTurn }[] = [];
    for (let i = 0; i < this.numEnvs; i++) {
      const info = r.infos[i]!;
      const slot = this.slots[i]!;
      if (info.autoreset === true) {
        // next-step autoreset: this sub-env was reset in this step (its old dialog ended last step).
        this.startDialog(i, r.observations[i], info, null, writes);
        continue;
      }
      const finalInfo = info.finalInfo as Info | undefined;
      const stepInfo = finalInfo ?? info;
      const stepObs = finalInfo ? info.finalObservation : r.observations[i];
      slot.steps += 1;
      slot.ret += r.rewards[i]!;
      this.planExchange(i, stepInfo, stepObs, r.rewards[i]!, r.terminated[i]!, r.truncated[i]!, writes, acks);
      slot.obs = stepObs;
      if (r.terminated[i] || r.truncated[i]) {
        slot.ended = true;
        if (finalInfo) this.startDialog(i, r.observations[i], info, null, writes); // same-step autoreset
      }
    }
    try {
      this.commit(writes, acks);
    } catch (err) {
      for (const a of acks) a.ack.fail(err);
      throw err;
    }
    return r;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const writes: Write[] = [];
    for (let i = 0; i < this.numEnvs; i++) this.closeOpen(i, writes, 'abandoned', 'session closed before the episode ended');
    try { this.commit(writes, []); } catch (err) { this.opts.log?.error({ err }, 'could not record the end of open dialogs'); }
    await this.inner.close();
  }

  // ---- planning writes ----

  private startDialog(i: number, obs: unknown, info: Info, seed: number | null, writes: Write[]): void {
    const slot = this.slots[i]!;
    Object.assign(slot, { dialogId: null, seed, obs, teacherWritten: false, ret: 0, steps: 0, ended: false });
    const k = this.dialog;
    const ri = dialogResetInfo(info);
    const metadata: Metadata = {
      prompt: this.transcript(obs),
      promptKind: ri.prompt ?? null,
      ...(ri.mathdialId !== undefined ? { mathdialId: ri.mathdialId } : {}),
      kwargs: { actionMode: k.actionMode, reward: k.reward, maxTokens: k.maxTokens, model: k.model, prompt: k.prompt },
      ...(this.opts.metadata ?? {}),
    };
    writes.push(() => {
      const d = this.opts.store.startDialog({
        env: this.envId, student: k.student, sessionId: this.opts.sessionId?.() ?? null, seed,
        agentName: this.agentName, agentId: this.agentId, metadata,
      });
      slot.dialogId = d.id;
    });
  }

  /** An action that ends the teacher's turn: write the turn now (the env will ask the student next). */
  private planTeacherTurn(i: number, action: unknown, writes: Write[]): void {
    const slot = this.slots[i]!;
    if (slot.ended || slot.teacherWritten || slot.obs === null) return;
    const sp = this.tokenizer.special;
    let text: string | null = null;
    if (isTokenObs(slot.obs)) {
      if (action !== sp.student) return;
      const { tokens, length } = slot.obs;
      const n = length[0]!;
      if (n + 1 > this.dialog.maxTokens) return; // the env truncates before the turn ends; written after the step
      text = this.tokenizer.decode(tokens.slice(teacherStart(tokens, n, sp.teacher), n));
    } else if (typeof action === 'string' && typeof (slot.obs as TextObs).text === 'string') {
      const ids = this.tokenizer.encode(action).filter(id => id !== sp.student && id !== sp.endOfText);
      const have = this.tokenizer.encode((slot.obs as TextObs).text).length;
      if (have + ids.length + 1 > this.dialog.maxTokens) return; // truncated: written after the step
      const t = (slot.obs as TextObs).text;
      const at = t.lastIndexOf(TURN_TEACHER);
      text = (at >= 0 ? t.slice(at + TURN_TEACHER.length) : '') + this.tokenizer.decode(ids);
    }
    if (text === null) return;
    const utterance = text;
    slot.teacherWritten = true;
    writes.push(() => {
      if (slot.dialogId === null) return;
      this.opts.store.appendTurn(slot.dialogId, { role: 'teacher', text: utterance, tokenCount: this.tokenizer.encode(utterance).length });
    });
  }

  private planExchange(i: number, info: Info, obs: unknown, reward: number, terminated: boolean, truncated: boolean, writes: Write[], acks: { ack: HumanAck; turn: StoredTurn }[]): void {
    const slot = this.slots[i]!;
    const store = this.opts.store;
    const di = dialogStepInfo(info);
    const ack = di[HUMAN_ACK];
    // The handle is this recorder's to call: it does not travel on with the step.
    if ((info as Record<symbol, unknown>)[HUMAN_ACK] !== undefined) delete (info as Record<symbol, unknown>)[HUMAN_ACK];
    const teacher = di.teacherUtterance ?? null;
    const reply = di.studentReply ?? null;
    const partial = di.partialReply ?? null;
    const ending = terminated || truncated;
    const reason = (di.endedBy ?? di.truncatedBy) || null;
    // A teacher turn cut by the token limit (token mode): its text is the transcript's tail.
    let cutTeacher: string | null = null;
    if (ending && teacher === null && !slot.teacherWritten && isTokenObs(obs)) {
      const n = obs.length[0]!;
      const sp = this.tokenizer.special;
      const start = teacherStart(obs.tokens, n, sp.teacher);
      const ids = obs.tokens.slice(start, n).filter(t => t !== sp.endOfText && t !== sp.student);
      if (ids.length) cutTeacher = this.tokenizer.decode(ids);
    }
    const writeTeacher = teacher !== null && !slot.teacherWritten;
    if (teacher !== null || reply !== null) slot.teacherWritten = false;
    if (!writeTeacher && reply === null && partial === null && cutTeacher === null && !ending && !ack) return;
    const ret = slot.ret, steps = slot.steps, seed = slot.seed;
    writes.push(() => {
      const id = slot.dialogId;
      if (id === null) return;
      if (writeTeacher) store.appendTurn(id, { role: 'teacher', text: teacher!, tokenCount: this.tokenizer.encode(teacher!).length });
      if (cutTeacher !== null) store.appendTurn(id, { role: 'teacher', text: cutTeacher, metadata: { partial: true, cutBy: reason } });
      if (reply !== null) {
        const meta: Metadata = di.humanLeft === true || di.endedBy === 'student' ? { left: true } : {};
        const turn = store.appendTurn(id, { role: 'student', text: reply, tokenCount: this.tokenizer.encodeOrdinary(reply).length, metadata: meta });
        const components = di.rewardComponents ?? {};
        store.recordReward(id, turn.index, { total: reward, components });
        if (ack) acks.push({ ack, turn: { dialogId: id, index: turn.index } });
      } else if (partial !== null && partial !== '') {
        store.appendTurn(id, { role: 'student', text: partial, metadata: { partial: true, cutBy: reason } });
      } else if (ack) {
        acks.push({ ack, turn: { dialogId: id, index: null } });
      }
      if (ending) {
        const detail = [reason, di.humanTimeout ?? null].filter(Boolean).join(': ') || null;
        store.endDialog(id, terminated ? 'terminated' : 'truncated', detail);
        store.recordEpisode({
          env: this.envId, sessionId: this.opts.sessionId?.() ?? null, seed, return: ret, length: steps,
          terminated, truncated, dialogId: id, agentName: this.agentName, metadata: reason ? { reason } : {},
        });
        slot.dialogId = null;
      }
    });
  }

  /** End the open dialog of sub-env i (a reset mid-episode, or the session closing). */
  private closeOpen(i: number, writes: Write[], reason: 'truncated' | 'abandoned', detail: string): void {
    const slot = this.slots[i]!;
    if (slot.ended) return;
    const ret = slot.ret, steps = slot.steps, seed = slot.seed;
    writes.push(() => {
      const id = slot.dialogId;
      if (id === null) return;
      this.opts.store.endDialog(id, reason, detail);
      if (steps > 0) {
        this.opts.store.recordEpisode({
          env: this.envId, sessionId: this.opts.sessionId?.() ?? null, seed, return: ret, length: steps,
          terminated: false, truncated: true, dialogId: id, agentName: this.agentName, metadata: { reason: detail },
        });
      }
      slot.dialogId = null;
    });
  }

  /** Run the planned writes in one transaction, then acknowledge people's messages. */
  private commit(writes: Write[], acks: { ack: HumanAck; turn: StoredTurn }[]): void {
    if (writes.length) this.opts.store.transaction(() => { for (const w of writes) w(); });
    for (const a of acks) a.ack.ack(a.turn);
  }

  private transcript(obs: unknown): string {
    if (isTokenObs(obs)) return this.tokenizer.decode(obs.tokens.slice(0, obs.length[0]!));
    if (typeof obs === 'object' && obs !== null && typeof (obs as TextObs).text === 'string') return (obs as TextObs).text;
    return '';
  }
}

/** Index of the first token of the teacher's current turn (after the last `\n\nTeacher:` marker). */
function teacherStart(tokens: number[], n: number, teacherMarker: number): number {
  for (let j = n - 1; j >= 0; j--) if (tokens[j] === teacherMarker) return j + 1;
  return 0;
}

/** Wrap a vector env so that its dialogs are recorded (see the header). */
export function recordDialogs<O, A>(vec: VectorEnv<O, A>, opts: RecorderOptions): RecordingVectorEnv<O, A> {
  return new RecordingVectorEnv(vec, opts);
}

