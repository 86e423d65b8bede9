/**
 * Export of stored dialogs as JSONL in the chat-messages format, one dialog per line:
 *
 *   {"messages":[{"role":"assistant","speaker":"teacher","content":"Do you ...","createdAt":"…"},
 *                {"role":"user","speaker":"student","content":"I guess","createdAt":"…"}],
 *    "id":"…","dialogId":"…","env":"TeacherStudent-v0","agent":"ppo-kl20","agentId":"…","student":"human",
 *    "sessionId":"…","seed":42,"createdAt":"…","endedAt":"…","endReason":"terminated","endDetail":null,
 *    "rewards":[{"turn":1,"total":0.73,"components":{"sentiment":0.73}}],"metadata":{…}}
 *
 * Roles: the agent is the *teacher* and speaks as the chat format's `assistant`; the student (the
 * person or the simulator) is the `user`; a `system` turn stays `system`. Each message also keeps
 * the original role as `speaker`, its time as `createdAt`, and `tokenCount` / `metadata` when set.
 * `rewards[].turn` is an index into `messages` (every stored turn is exported, in order).
 * `agent` is the agent's name, or its id when it has no name. `id` repeats `dialogId` because it is
 * the key the chat-JSONL loader (`loadChatJsonl` in corpora/readers.ts) reads as the dialog id;
 * that loader keeps teacher/student turns and folds `system` messages into `meta.system` (so
 * there, unlike in `messages`, indexes skip system turns). Timestamps are ISO 8601 UTC.
 *
 * The lines are plain `JSON.stringify` output, except that U+2028 and U+2029 are escaped (some
 * line readers split on them). Dialogs are read page by page and written with back-pressure, so an
 * export of any size runs in bounded memory.
 */
import type { Writable } from 'node:stream';
import type { DialogFilter, DialogWithTurns, EndReason, Metadata, Store, StudentKind, TurnRole } from './db.ts';

export type ChatRole = 'assistant' | 'user' | 'system';

/** How a stored turn's role appears in the chat format. */
export const CHAT_ROLE: Readonly<Record<TurnRole, ChatRole>> = { teacher: 'assistant', student: 'user', system: 'system' };

export interface ChatMessage {
  role: ChatRole;
  speaker: TurnRole;
  content: string;
  createdAt: string;
  tokenCount?: number;
  metadata?: Metadata;
}

export interface ChatRecord {
  messages: ChatMessage[];
  /** = dialogId; the key the chat-JSONL loader (corpora/readers.ts) takes as the dialog's id. */
  id: string;
  dialogId: string;
  env: string;
  agent: string | null;
  agentId: string | null;
  student: StudentKind;
  sessionId: string | null;
  seed: number | null;
  createdAt: string;
  endedAt: string | null;
  endReason: EndReason | null;
  endDetail: string | null;
  rewards: { turn: number; total: number; components: Record<string, number> }[];
  metadata: Metadata;
}

export type ExportFilter = Omit<DialogFilter, 'limit' | 'order'>;

export interface ExportSummary { dialogs: number; turns: number; rewards: number; bytes: number }

/** One stored dialog as a chat-format record. */
export function toChatRecord(d: DialogWithTurns): ChatRecord {
  return {
    messages: d.turns.map(t => {
      const m: ChatMessage = { role: CHAT_ROLE[t.role], speaker: t.role, content: t.text, createdAt: t.createdAt };
      if (t.tokenCount !== null) m.tokenCount = t.tokenCount;
      if (Object.keys(t.metadata).length > 0) m.metadata = t.metadata;
      return m;
    }),
    id: d.id,
    dialogId: d.id,
    env: d.env,
    agent: d.agentName ?? d.agentId,
    agentId: d.agentId,
    student: d.student,
    sessionId: d.sessionId,
    seed: d.seed,
    createdAt: d.createdAt,
    endedAt: d.endedAt,
    endReason: d.endReason,
    endDetail: d.endDetail,
    rewards: d.rewards.map(r => ({ turn: r.turn, total: r.total, components: r.components })),
    metadata: d.metadata,
  };
}

/** A record as one JSONL line (with its newline). */
export function toJsonLine(record: ChatRecord): string {
  return JSON.stringify(record).replace(/[\u2028\u2029]/g, c => (c === '\u2028' ? '\\u2028' : '\\u2029')) + '\n';
}

/**
 * Write every dialog matching `filter` (oldest first) to `out`, one line each; resolves when the
 * last line has been handed to the stream (the caller ends/closes it). Rejects if the stream
 * errors. `onDialog` is called after each dialog (progress).
 */
export async function exportJsonl(
  store: Store, out: Writable, filter: ExportFilter = {},
  opts: { pageSize?: number; onDialog?: (summary: ExportSummary) => void } = {},
): Promise<ExportSummary> {
  const summary: ExportSummary = { dialogs: 0, turns: 0, rewards: 0, bytes: 0 };
  let failure: Error | null = null;
  const onError = (err: Error): void => { failure = err; };
  out.on('error', onError);
  try {
    for (const d of store.iterateDialogs(filter, opts.pageSize)) {
      if (failure) throw failure;
      const line = toJsonLine(toChatRecord(d));
      summary.dialogs += 1;
      summary.turns += d.turns.length;
      summary.rewards += d.rewards.length;
      summary.bytes += Buffer.byteLength(line);
      if (!out.write(line)) {
        await drained(out);
      }
      opts.onDialog?.(summary);
    }
    if (failure) throw failure;
    return summary;
  } finally {
    out.off('error', onError);
  }
}

/** Wait for `out` to drain; reject if it errors or closes first (instead of waiting forever). */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', onDrain); out.off('error', onErr); out.off('close', onClose);
      if (err) reject(err); else resolve();
    };
    const onDrain = (): void => done();
    const onErr = (e: Error): void => done(e);
    const onClose = (): void => done(new Error('output stream closed before the export finished'));
    out.on('drain', onDrain); out.on('error', onErr); out.on('close', onClose);
  });
}
