/**
 * The dialog capability: what an env that declares `spec.dialog` (env/core.ts `DialogSpec`)
 * promises about its infos, typed once for the env that writes them (env/teacher-student.ts) and
 * the code that reads them (the server's recorder, server/storage/recorder.ts).
 *
 * Reading goes through `dialogStepInfo` / `dialogResetInfo`, which keep only the fields that have
 * the declared types: an info is plain data that may have crossed other code, and a recorder must
 * never store a number as a reply.
 */
import type { DialogSpec, EnvSpec, Info } from './core.ts';
import { HUMAN_ACK, type HumanAck } from './human.ts';

/** The spec's dialog capability, or null when the env has none. */
export function dialogSpecOf(spec: EnvSpec | null | undefined): DialogSpec | null {
  return spec?.dialog ?? null;
}

/** The info of a dialog env's reset. */
export interface DialogResetInfo {
  /** Exchanges so far (0). */
  turn?: number;
  tokensLeft?: number;
  promptTokens?: number;
  /** The kind of opening transcript ('cohen', 'mathdial', 'custom'). */
  prompt?: string;
  /** The MathDial problem the prompt came from. */
  mathdialId?: string | number;
}

/** The info of a dialog env's step (other keys may be present; these have these types). */
export interface DialogInfo {
  /** Exchanges completed so far. */
  turn?: number;
  tokensLeft?: number;
  /** The teacher's whole utterance: on a completed exchange, and on a teacher turn that ended or was cut. */
  teacherUtterance?: string;
  /** The student's reply of a completed exchange (without its closing turn marker). */
  studentReply?: string;
  /** The reward's components for that reply (raw signals; `name:z` for z-scored terms). */
  rewardComponents?: Record<string, number>;
  /** The gold reward of that reply (kwargs.goldReward): a second scorer the agent is measured by but never rewarded with. */
  goldReward?: number;
  /** A student reply cut by the token limit or a timeout (not rewarded). */
  partialReply?: string;
  /** Who ended the dialog (the step is terminated). */
  endedBy?: string;
  /** What cut the episode (truncated): 'token-limit', 'student-timeout', 'time-limit'. */
  truncatedBy?: string;
  /** The person in the student's seat ended the conversation with this step. */
  humanLeft?: boolean;
  /** Why a person's reply did not come (with truncatedBy 'student-timeout'). */
  humanTimeout?: string;
  /** Acknowledge the person's message once it is stored (symbol key: never leaves the process; env/human.ts). */
  [HUMAN_ACK]?: HumanAck;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function numbers(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[k] = x;
  return out;
}

/** The dialog fields of a step's info, each only when it has its declared type. */
export function dialogStepInfo(info: Info): DialogInfo {
  const out: DialogInfo = {};
  if (typeof info.turn === 'number') out.turn = info.turn;
  if (typeof info.tokensLeft === 'number') out.tokensLeft = info.tokensLeft;
  if (typeof info.goldReward === 'number') out.goldReward = info.goldReward;
  const fields = ['teacherUtterance', 'studentReply', 'partialReply', 'endedBy', 'truncatedBy', 'humanTimeout'] as const;
  for (const k of fields) { const v = str(info[k]); if (v !== undefined) out[k] = v; }
  const components = numbers(info.rewardComponents);
  if (components) out.rewardComponents = components;
  if (info.humanLeft === true) out.humanLeft = true;
  const ack = (info as Record<symbol, unknown>)[HUMAN_ACK] as HumanAck | undefined;
  if (ack && typeof ack.ack === 'function' && typeof ack.fail === 'function') out[HUMAN_ACK] = ack;
  return out;
}

/** The dialog fields of a reset's info. */
export function dialogResetInfo(info: Info): DialogResetInfo {
  const out: DialogResetInfo = {};
  if (typeof info.turn === 'number') out.turn = info.turn;
  if (typeof info.tokensLeft === 'number') out.tokensLeft = info.tokensLeft;
  if (typeof info.promptTokens === 'number') out.promptTokens = info.promptTokens;
  const prompt = str(info.prompt);
  if (prompt !== undefined) out.prompt = prompt;
  if (typeof info.mathdialId === 'string' || typeof info.mathdialId === 'number') out.mathdialId = info.mathdialId;
  return out;
}
