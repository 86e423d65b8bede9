/**
 * A person in the student's seat: the `human` student of the dialog envs
 * (`make('TeacherStudent-v0', { student: 'human' })`).
 *
 * The env does not know about browsers. It talks to a *lobby* (server/chat/lobby.ts) that comes in
 * the context of whoever made the env (`humanLobby`, env/context.ts: a server puts its chat lobby
 * there); without one, the env's first reset fails with BAD_CONFIG. Per episode the student opens a
 * *seat* in the lobby, which pairs it with a person on the chat page (or keeps it waiting until one
 * comes):
 *
 *   reset                    → lobby.open({prompt, options})      the dialog waits for / meets a person
 *   every agent token        → seat.teacherDelta(text)            the person sees the reply stream in
 *   the teacher's turn ends  → seat.awaitReply(...)               the step waits for the person
 *     the person replies     → tokens = encodeOrdinary(text) + `\n\nTeacher:` (a person cannot forge
 *                              turn markers: their text never becomes a special token)
 *     "end conversation"     → `<|endoftext|>`: the student left (terminated, as for a model student)
 *     no reply in time       → `timedOut`: the env truncates with info.truncatedBy = 'student-timeout'
 *                              and info.humanTimeout = why (no person joined, the person vanished…)
 *   the episode ends         → seat.end(...)                      the person is told, never the reward
 *
 * Acknowledging the person: their message is acknowledged only once it is on disk. The reply
 * carries an acknowledgment handle under the symbol key `HUMAN_ACK` of its step's `info` (symbol
 * keys never leave the process: JSON drops them); the server's recorder
 * (server/storage/recorder.ts) calls it after the exchange is committed to SQLite. When the lobby
 * says nothing records (`lobby.recording === false`) the student acknowledges at once.
 */
import { BpeTokenizer, TokenStreamDecoder } from '../models/tokenizer.ts';
import { ColloquyError } from '../core/errors.ts';
import { loadDialogTokenizer } from './dialog-model.ts';
import type { Student, StudentReply, StudentRequest } from './students.ts';

/** Where a stored turn landed (what the person's acknowledgment carries). */
export interface StoredTurn { dialogId: string | null; index: number | null }

/** Acknowledge (or refuse) a person's message once its fate is known. Calls after the first are ignored. */
export interface HumanAck {
  ack(turn: StoredTurn): void;
  fail(err: unknown): void;
}

/** The key of a step info's acknowledgment handle (see the header). */
export const HUMAN_ACK: unique symbol = Symbol('colloquy.humanAck');

export type HumanAnswer =
  | { kind: 'reply'; text: string; ack: HumanAck }
  | { kind: 'left'; ack?: HumanAck }
  | { kind: 'timeout'; reason: string };

export interface ReplyRequest {
  /** The teacher's whole utterance (what the person answers). */
  teacherUtterance: string;
  turnIndex: number;
  /** Most tokens the reply may have, the closing turn marker included. */
  maxTokens: number;
  /** Tokens a text would take as a reply (marker included), to refuse one that does not fit. */
  countTokens(text: string): number;
}

/** The env's side of one episode's chat. */
export interface HumanSeat {
  /** Text the agent just added to the teacher's turn. */
  teacherDelta(text: string): void;
  /** The teacher's turn is over: resolve with the person's answer (never rejects). */
  awaitReply(req: ReplyRequest): Promise<HumanAnswer>;
  /** The episode is over or the env closed (`reason`: info.endedBy / truncatedBy, or 'closed'). */
  end(e: { reason: string | null; terminated: boolean; truncated: boolean }): void;
}

export interface SeatRequest {
  /** The opening transcript (prompt) as text; the teacher's turn continues at its end. */
  prompt: string;
  /** The reset's options (e.g. `{humanSeat: id}` to meet one reserved person). */
  options?: Record<string, unknown>;
}

export interface HumanLobby {
  /** Open the seat of a new episode. May throw a coded error (e.g. CAPACITY). */
  open(req: SeatRequest): HumanSeat;
  /** Whether a recorder acknowledges people's messages (after writing them); false: acknowledge at once. */
  readonly recording: boolean;
}

function requireLobby(lobby: HumanLobby | null): HumanLobby {
  if (!lobby) {
    throw new ColloquyError('BAD_CONFIG',
      'student "human" needs a chat lobby: run the env on a Colloquy server with the chat page enabled (colloquy serve; people join at /chat)',
      { need: 'human-lobby' });
  }
  return lobby;
}

export class HumanStudent implements Student {
  readonly kind = 'human' as const;
  readonly deterministic = false;
  private readonly tokenizer: BpeTokenizer;
  private seat: HumanSeat | null = null;
  private decoder: TokenStreamDecoder;
  private closed = false;

  constructor(modelDir: string, private readonly lobby: HumanLobby | null) {
    requireLobby(lobby);
    this.tokenizer = loadDialogTokenizer(modelDir);
    this.decoder = new TokenStreamDecoder(this.tokenizer, { skipSpecial: true });
  }

  onEpisodeStart(start: { context: number[]; options?: Record<string, unknown> }): void {
    this.seat?.end({ reason: 'reset', terminated: false, truncated: true });
    this.seat = null;
    this.decoder = new TokenStreamDecoder(this.tokenizer, { skipSpecial: true });
    this.seat = requireLobby(this.lobby).open({ prompt: this.tokenizer.decode(start.context), options: start.options });
  }

  onTeacherTokens(ids: number[]): void {
    if (!this.seat) return;
    const sp = this.tokenizer.special;
    let text = '';
    for (const id of ids) if (id !== sp.student && id !== sp.teacher) text += this.decoder.push(id);
    if (text) this.seat.teacherDelta(text);
  }

  async reply(req: StudentRequest): Promise<StudentReply> {
    const seat = this.seat;
    if (!seat) return { tokens: [], timedOut: true, detail: { humanTimeout: 'no chat seat (the env was not reset)' } };
    const rest = this.decoder.flush();
    if (rest) seat.teacherDelta(rest);
    const sp = this.tokenizer.special;
    const answer = await seat.awaitReply({
      teacherUtterance: req.teacherUtterance, turnIndex: req.turnIndex, maxTokens: req.maxTokens,
      countTokens: text => this.tokenizer.encodeOrdinary(text).length + 1,
    });
    const recording = this.lobby?.recording ?? false;
    const withAck = (ack: HumanAck | undefined): Record<string | symbol, unknown> => {
      if (!ack) return {};
      if (!recording) { ack.ack({ dialogId: null, index: null }); return {}; }
      return { [HUMAN_ACK]: ack };
    };
    switch (answer.kind) {
      case 'timeout':
        return { tokens: [], timedOut: true, detail: { humanTimeout: answer.reason } };
      case 'left':
        return { tokens: [sp.endOfText], detail: { humanLeft: true, ...withAck(answer.ack) } as Record<string, unknown> };
      case 'reply': {
        const ids = this.tokenizer.encodeOrdinary(answer.text);
        return { tokens: [...ids, sp.teacher], detail: withAck(answer.ack) as Record<string, unknown> };
      }
    }
  }

  onEpisodeEnd(end: { terminated: boolean; truncated: boolean; reason: string | null }): void {
    this.seat?.end(end);
    this.seat = null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.seat?.end({ reason: 'closed', terminated: false, truncated: true });
    this.seat = null;
  }
}
