/**
 * The chat lobby: pairs people on the chat page with dialogs whose student is `human`
 * (env/human.ts), relays the teacher's reply to them as it streams, and hands their replies back
 * to the env. It is the `HumanLobby` the chat plugin installs; the WebSocket side lives in
 * server/plugins/chat.ts and talks to it through `Person`.
 *
 * - A dialog that starts opens a *seat*. A seat whose reset options name a reservation
 *   (`{humanSeat: id}`, used by hosted agents) goes to that person; otherwise it goes to the
 *   person waiting longest, or waits for the next person who opens the page.
 * - A person gets a resume token. When their connection drops, the seat keeps going (the teacher's
 *   reply keeps streaming into the seat's log); a new connection that presents the token within
 *   `resumeWindowMs` gets the whole conversation back and carries on. Messages the page sent but
 *   saw no acknowledgment for are re-sent by the page with the same id; the lobby never takes one
 *   twice.
 * - A person's message is acknowledged (`ack`) only once the recorder has committed it with its
 *   exchange (see server/storage/recorder.ts), or at once when nothing records.
 * - The person never sees rewards: nothing here carries them.
 *
 * Page → server frames: `{type:'hello', resume?, agent?}`, `{type:'join', agent?}`,
 * `{type:'say', id, text}`, `{type:'end'}`, `{type:'ping'}`.
 * Server → page frames: `welcome`, `lobby`, `paired`, `state`, `teacher-typing`, `teacher-delta`,
 * `teacher-end`, `your-turn`, `ack`, `nack`, `ended`, `error`, `pong` (see `Out` below).
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { ColloquyError } from '../../core/errors.ts';
import type { HumanAck, HumanAnswer, HumanLobby, HumanSeat, ReplyRequest, SeatRequest, StoredTurn } from '../../env/human.ts';
import { TURN_STUDENT, TURN_TEACHER } from '../../core/markers.ts';

export interface LobbyOptions {
  /** How long the env waits for a person's reply (also: for a person to join a dialog that needs one). */
  replyTimeoutMs: number;
  /** How long a person whose connection dropped keeps their place. */
  resumeWindowMs: number;
  /** Most people connected or waiting at once. */
  maxPeople: number;
  /** Longest message a person may send, in characters. */
  maxMessageChars: number;
  /** Whether a recorder acknowledges messages (storage.record != 'none'). */
  recording: boolean;
  log: Logger;
}

/** A line of the conversation as the page shows it. */
export interface ChatLine {
  role: 'teacher' | 'student';
  text: string;
  /** From the opening prompt (context the person did not write). */
  context?: boolean;
  /** The page's id of a person's message. */
  id?: string;
  /** Acknowledged (on disk) — the page marks unacknowledged messages as sending. */
  acked?: boolean;
}

export type EndedBy = 'you' | 'teacher' | 'limit' | 'timeout' | 'closed' | 'error';

export type Out =
  | { type: 'welcome'; token: string; resumed: boolean }
  | { type: 'lobby'; waitingPeople: number }
  | { type: 'paired'; dialog: string; agent: string | null }
  | { type: 'state'; phase: 'lobby' | 'chat' | 'ended' | 'idle'; dialog: string | null; agent: string | null; lines: ChatLine[]; teacherPartial: string; yourTurn: boolean; msLeft: number | null; maxChars: number; ended: { by: EndedBy; message: string } | null }
  | { type: 'teacher-typing' }
  | { type: 'teacher-delta'; text: string }
  | { type: 'teacher-end'; text: string }
  | { type: 'your-turn'; msLeft: number }
  | { type: 'ack'; id: string; turn: number | null }
  | { type: 'nack'; id: string; code: string; message: string }
  | { type: 'ended'; by: EndedBy; message: string }
  | { type: 'error'; code: string; message: string }
  | { type: 'pong' };

/** The transport of one person (a WebSocket in the plugin, an array in tests). */
export interface PersonLink {
  send(msg: Out): void;
  close(code?: number, reason?: string): void;
}

const END_MESSAGES: Record<EndedBy, string> = {
  you: 'You ended the conversation. Thank you!',
  teacher: 'The teacher ended the conversation. Thank you!',
  limit: 'The conversation reached its length limit. Thank you!',
  timeout: 'The conversation ended because no reply came in time.',
  closed: 'The conversation was closed.',
  error: 'The conversation could not continue.',
};

function endedBy(reason: string | null): EndedBy {
  switch (reason) {
    case 'student': return 'you';
    case 'teacher': return 'teacher';
    case 'token-limit': case 'time-limit': return 'limit';
    case 'student-timeout': return 'timeout';
    case 'error': return 'error';
    default: return 'closed';
  }
}

/** The prompt's turns (shown as context) and the teacher's partial first utterance. */
export function parsePrompt(prompt: string): { lines: ChatLine[]; teacherStart: string } {
  const re = new RegExp(`(${escape(TURN_STUDENT)}|${escape(TURN_TEACHER)})`);
  const parts = prompt.split(re);
  const lines: ChatLine[] = [];
  let teacherStart = '';
  // parts: [header, marker, text, marker, text, ...]
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const role = parts[i] === TURN_STUDENT ? 'student' : 'teacher';
    const text = parts[i + 1]!;
    const last = i + 2 >= parts.length;
    if (last && role === 'teacher') { teacherStart = text.replace(/^ /, ''); break; }
    lines.push({ role, text: text.trim(), context: true });
  }
  return { lines, teacherStart };
}

function escape(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

interface Pending {
  req: ReplyRequest;
  resolve: (a: HumanAnswer) => void;
  timer: NodeJS.Timeout | null;
  deadline: number;
}

export class Seat implements HumanSeat {
  readonly id = randomUUID();
  readonly createdAt = Date.now();
  readonly lines: ChatLine[];
  /** The teacher's utterance being written. */
  teacherPartial: string;
  person: Person | null = null;
  pending: Pending | null = null;
  /** The person pressed "end conversation". */
  left = false;
  /** The person is gone (their connection dropped and was not resumed). */
  gone = false;
  ended: { by: EndedBy; message: string } | null = null;
  private typing = false;

  constructor(private readonly lobby: Lobby, prompt: string, readonly agent: string | null, readonly reservation: string | null) {
    const p = parsePrompt(prompt);
    this.lines = p.lines;
    this.teacherPartial = p.teacherStart;
  }

  get turns(): number { return this.lines.filter(l => !l.context).length; }

  private send(msg: Out): void { this.person?.send(msg); }

  teacherDelta(text: string): void {
    if (this.ended) return;
    if (!this.typing) { this.typing = true; this.send({ type: 'teacher-typing' }); }
    // A turn's text starts after "Teacher:" with a space, which the page does not show.
    if (this.teacherPartial === '') text = text.replace(/^ /, '');
    if (!text) return;
    this.teacherPartial += text;
    this.send({ type: 'teacher-delta', text });
  }

  awaitReply(req: ReplyRequest): Promise<HumanAnswer> {
    // The person pressed "end conversation" while the teacher was writing: they leave now.
    if (this.left) return Promise.resolve({ kind: 'left' });
    if (this.ended) return Promise.resolve({ kind: 'timeout', reason: 'the chat was closed' });
    const text = req.teacherUtterance.replace(/^ /, '');
    this.lines.push({ role: 'teacher', text });
    this.teacherPartial = '';
    this.typing = false;
    this.send({ type: 'teacher-end', text });
    if (this.gone) return Promise.resolve({ kind: 'timeout', reason: 'the person left the page' });
    return new Promise<HumanAnswer>(resolve => {
      this.pending = { req, resolve, timer: null, deadline: 0 };
      this.armTimer();
    });
  }

  /** (Re)start the reply clock: at the request, and again when a person arrives to answer it. */
  armTimer(): void {
    const p = this.pending;
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    const ms = this.lobby.opts.replyTimeoutMs;
    p.deadline = Date.now() + ms;
    p.timer = setTimeout(() => {
      this.resolvePending({ kind: 'timeout', reason: this.person ? `no reply within ${Math.round(ms / 1000)} s` : `no person joined within ${Math.round(ms / 1000)} s` });
    }, ms);
    p.timer.unref?.();
    if (this.person) this.send({ type: 'your-turn', msLeft: ms });
  }

  resolvePending(a: HumanAnswer): boolean {
    const p = this.pending;
    if (!p) return false;
    this.pending = null;
    if (p.timer) clearTimeout(p.timer);
    p.resolve(a);
    return true;
  }

  msLeft(): number | null { return this.pending ? Math.max(0, this.pending.deadline - Date.now()) : null; }

  end(e: { reason: string | null; terminated: boolean; truncated: boolean }): void {
    if (this.ended) return;
    if (this.teacherPartial.trim() && !this.left) this.lines.push({ role: 'teacher', text: this.teacherPartial });
    this.teacherPartial = '';
    const by = this.left ? 'you' : e.reason === 'server' ? 'closed' : endedBy(e.reason);
    this.ended = { by, message: e.reason === 'server' ? 'The server is shutting down; the conversation was closed.' : END_MESSAGES[by] };
    this.resolvePending({ kind: 'timeout', reason: 'the chat was closed' });
    if (!this.left) this.send({ type: 'ended', ...this.ended });
    this.lobby.seatEnded(this);
  }

  /** A person's message for the pending reply. */
  say(person: Person, id: string, text: string): void {
    const dup = this.lines.find(l => l.id === id && l.role === 'student');
    if (dup) { if (dup.acked) person.send({ type: 'ack', id, turn: null }); return; }
    const nack = (code: string, message: string) => person.send({ type: 'nack', id, code, message });
    if (this.ended || this.left) return nack('ENDED', 'the conversation has ended');
    const p = this.pending;
    if (!p) return nack('NOT_YOUR_TURN', 'please wait for the teacher to finish');
    if (text.trim() === '') return nack('EMPTY', 'the message is empty');
    if (text.length > this.lobby.opts.maxMessageChars) return nack('TOO_LONG', `the message is too long (at most ${this.lobby.opts.maxMessageChars} characters)`);
    const need = p.req.countTokens(text);
    if (need > p.req.maxTokens) return nack('TOO_LONG', 'the message is too long for what is left of this conversation; please shorten it');
    const line: ChatLine = { role: 'student', text, id, acked: false };
    this.lines.push(line);
    let settled = false;
    const ack: HumanAck = {
      ack: (turn: StoredTurn) => {
        if (settled) return;
        settled = true;
        line.acked = true;
        this.person?.send({ type: 'ack', id, turn: turn.index });
      },
      fail: (err: unknown) => {
        if (settled) return;
        settled = true;
        this.lines.splice(this.lines.indexOf(line), 1);
        this.lobby.opts.log.error({ err: { message: (err as Error)?.message }, seat: this.id }, 'a person\'s message could not be stored');
        this.person?.send({ type: 'nack', id, code: 'NOT_SAVED', message: 'your message could not be saved' });
      },
    };
    this.resolvePending({ kind: 'reply', text, ack });
  }

  /** The person pressed "end conversation". */
  leave(): void {
    if (this.ended || this.left) return;
    this.left = true;
    this.ended = { by: 'you', message: END_MESSAGES.you };
    this.person?.send({ type: 'ended', ...this.ended });
    this.resolvePending({ kind: 'left' });
  }

  snapshot(): Out & { type: 'state' } {
    return {
      type: 'state', phase: this.ended ? 'ended' : 'chat', dialog: this.id, agent: this.agent,
      lines: this.lines.map(l => ({ ...l })), teacherPartial: this.teacherPartial,
      yourTurn: this.pending !== null && !this.ended, msLeft: this.msLeft(), maxChars: this.lobby.opts.maxMessageChars, ended: this.ended,
    };
  }
}

export class Person {
  readonly id = randomUUID();
  readonly token = randomBytes(24).toString('base64url');
  link: PersonLink | null = null;
  seat: Seat | null = null;
  waiting = false;
  detachedAt: number | null = null;
  /** Set while a hosted agent is being started for this person. */
  reservation: string | null = null;
  constructor(link: PersonLink) { this.link = link; }
  send(msg: Out): void { this.link?.send(msg); }
  tokenMatches(t: string): boolean {
    const a = Buffer.from(this.token), b = Buffer.from(t);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

export interface LobbySnapshot {
  waitingPeople: number;
  waitingDialogs: number;
  seats: { id: string; agent: string | null; person: 'connected' | 'disconnected' | 'none'; turns: number; phase: 'teacher' | 'student' | 'ended' | 'waiting'; ageSeconds: number }[];
}

export class Lobby implements HumanLobby {
  private readonly people = new Map<string, Person>();
  private readonly waitingPeople: Person[] = [];
  private readonly waitingSeats: Seat[] = [];
  private readonly seats = new Set<Seat>();
  private readonly reservations = new Map<string, Person>();
  private reaper: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(readonly opts: LobbyOptions) {}

  get recording(): boolean { return this.opts.recording; }
  get size(): number { return this.people.size; }

  start(): void {
    if (this.reaper) return;
    this.reaper = setInterval(() => this.reap(), Math.max(50, Math.min(5000, Math.floor(this.opts.resumeWindowMs / 4))));
    this.reaper.unref();
  }

  // ---- the env's side ----

  open(req: SeatRequest): HumanSeat {
    if (this.closing) throw new ColloquyError('CLOSED', 'the server is shutting down');
    const reservation = typeof req.options?.humanSeat === 'string' ? req.options.humanSeat : null;
    const agent = typeof req.options?.agent === 'string' ? req.options.agent : null;
    const seat = new Seat(this, req.prompt, agent, reservation);
    this.seats.add(seat);
    if (reservation !== null) {
      const person = this.reservations.get(reservation);
      this.reservations.delete(reservation);
      if (person) person.reservation = null;
      if (person && this.people.has(person.token)) { this.pair(seat, person); return seat; }
      // Nobody holds the reservation any more: the seat ends at its first reply (no person).
      seat.gone = true;
      return seat;
    }
    const person = this.waitingPeople.shift();
    if (person) this.pair(seat, person); else this.waitingSeats.push(seat);
    return seat;
  }

  seatEnded(seat: Seat): void {
    this.seats.delete(seat);
    const i = this.waitingSeats.indexOf(seat);
    if (i >= 0) this.waitingSeats.splice(i, 1);
  }

  private pair(seat: Seat, person: Person): void {
    person.waiting = false;
    person.seat = seat;
    seat.person = person;
    person.send({ type: 'paired', dialog: seat.id, agent: seat.agent });
    person.send(seat.snapshot());
    this.opts.log.info({ seat: seat.id, person: person.id, agent: seat.agent }, 'person paired with a dialog');
    if (seat.pending) seat.armTimer();
  }

  // ---- the people's side ----

  /** A new connection's first frame. Returns the person (new or resumed). */
  hello(link: PersonLink, resume: string | null): Person {
    if (resume) {
      const p = this.people.get(resume);
      if (p && p.tokenMatches(resume)) {
        if (p.link && p.link !== link) p.link.close(4000, 'resumed elsewhere');
        p.link = link;
        p.detachedAt = null;
        link.send({ type: 'welcome', token: p.token, resumed: true });
        link.send(p.seat ? p.seat.snapshot() : this.idleState(p));
        this.opts.log.info({ person: p.id }, 'person resumed');
        return p;
      }
    }
    if (this.people.size >= this.opts.maxPeople) throw new ColloquyError('CAPACITY', 'the chat is full right now; please try again later');
    if (this.closing) throw new ColloquyError('CLOSED', 'the server is shutting down');
    const p = new Person(link);
    this.people.set(p.token, p);
    link.send({ type: 'welcome', token: p.token, resumed: false });
    link.send(this.idleState(p));
    return p;
  }

  private idleState(p: Person): Out & { type: 'state' } {
    return { type: 'state', phase: p.waiting ? 'lobby' : 'idle', dialog: null, agent: null, lines: [], teacherPartial: '', yourTurn: false, msLeft: null, maxChars: this.opts.maxMessageChars, ended: null };
  }

  /** Wait for (or take) a dialog that needs a person. */
  join(p: Person): void {
    if (p.seat && !p.seat.ended) return;
    p.seat = null;
    const seat = this.waitingSeats.shift();
    if (seat) { this.pair(seat, p); return; }
    if (!p.waiting) { p.waiting = true; this.waitingPeople.push(p); }
    p.send({ type: 'lobby', waitingPeople: this.waitingPeople.length });
  }

  /** Reserve the next seat opened with `{humanSeat: id}` for this person (hosted agents). */
  reserve(p: Person): string {
    if (p.seat && !p.seat.ended) throw new ColloquyError('BAD_REQUEST', 'you are already in a conversation');
    this.unwait(p);
    p.seat = null;
    const id = randomUUID();
    p.reservation = id;
    this.reservations.set(id, p);
    return id;
  }

  /** Give up a reservation (the hosted agent could not start). */
  unreserve(p: Person, id: string): void {
    this.reservations.delete(id);
    if (p.reservation === id) p.reservation = null;
  }

  say(p: Person, id: string, text: string): void {
    if (!p.seat) { p.send({ type: 'nack', id, code: 'NO_CONVERSATION', message: 'you are not in a conversation' }); return; }
    p.seat.say(p, id, text);
  }

  leave(p: Person): void {
    this.unwait(p);
    p.seat?.leave();
  }

  /** The person's connection dropped: keep their place for the resume window. */
  detach(p: Person, link: PersonLink): void {
    if (p.link !== link) return;
    p.link = null;
    p.detachedAt = Date.now();
  }

  private unwait(p: Person): void {
    const i = this.waitingPeople.indexOf(p);
    if (i >= 0) this.waitingPeople.splice(i, 1);
    p.waiting = false;
  }

  /** Forget people gone for longer than the resume window; their open dialogs lose their student. */
  reap(now = Date.now()): void {
    for (const p of this.people.values()) {
      if (p.detachedAt === null || now - p.detachedAt < this.opts.resumeWindowMs) continue;
      this.people.delete(p.token);
      this.unwait(p);
      if (p.reservation) this.reservations.delete(p.reservation);
      const seat = p.seat;
      if (seat && !seat.ended) {
        seat.gone = true;
        seat.person = null;
        seat.resolvePending({ kind: 'timeout', reason: 'the person left the page' });
      }
      this.opts.log.info({ person: p.id }, 'person gone (not resumed within the resume window)');
    }
  }

  snapshot(): LobbySnapshot {
    const now = Date.now();
    return {
      waitingPeople: this.waitingPeople.length,
      waitingDialogs: this.waitingSeats.length,
      seats: [...this.seats].map(s => ({
        id: s.id, agent: s.agent, turns: s.turns,
        person: s.person ? (s.person.link ? 'connected' : 'disconnected') : 'none',
        phase: s.ended ? 'ended' : !s.person ? 'waiting' : s.pending ? 'student' : 'teacher',
        ageSeconds: Math.round((now - s.createdAt) / 1000),
      })),
    };
  }

  /** Server shutdown: end every seat (pending replies resolve at once) and refuse new ones. */
  shutdown(): void {
    this.closing = true;
    if (this.reaper) { clearInterval(this.reaper); this.reaper = null; }
    for (const s of [...this.seats]) s.end({ reason: 'server', terminated: false, truncated: true });
    for (const p of this.people.values()) p.link?.close(1001, 'server shutting down');
  }
}
