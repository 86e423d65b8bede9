/**
 * Durable storage of dialogs, turns, rewards and episodes in SQLite (better-sqlite3, WAL).
 *
 * The rule this module serves: *what a person says is written before it is acknowledged*. Every
 * write method is synchronous and returns only after SQLite has committed; with the default
 * `synchronous: 'FULL'` the commit has also been fsynced to the WAL, so an acknowledged turn
 * survives a process kill *and* a power loss. (`'NORMAL'` survives a process kill but may lose the
 * last commits on power loss; `bench/storage.ts` measures both.) A caller therefore writes, and
 * only then replies:
 *
 *   const turn = store.appendTurn(dialogId, { role: 'student', text });   // on disk now
 *   ws.send(JSON.stringify({ ok: true, turn: turn.id }));                   // then acknowledge
 *
 * Text is stored exactly as given — SQL-looking strings, NUL characters, megabytes — with one
 * documented exception: a lone UTF-16 surrogate (which no UTF-8 database or JSON file can hold)
 * is replaced by U+FFFD, the way `String#toWellFormed` does, before it is written.
 *
 * Errors: an unknown dialog is NOT_FOUND; a turn or reward for an ended dialog, or ending it twice,
 * is CLOSED; a duplicate id/index or a bad value is BAD_REQUEST (all `ColloquyError`). Anything
 * else (disk full, I/O error) is rethrown as is — and nothing may be acknowledged then.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { ColloquyError } from '../../core/errors.ts';
import { LATEST_VERSION, MIGRATIONS, appliedMigrations, migrate, schemaVersion, verifyApplied } from './migrations.ts';
import { DATA_DIR } from '../../core/paths.ts';

export type StudentKind = 'human' | 'simulated' | 'scripted';
export type TurnRole = 'teacher' | 'student' | 'system';
export type EndReason = 'terminated' | 'truncated' | 'abandoned';
export type Synchronous = 'FULL' | 'NORMAL';
/** A JSON object (what `JSON.stringify` keeps of it is what is stored). */
export type Metadata = Record<string, unknown>;
/** A time given to the store: a Date, an ISO 8601 string or epoch milliseconds. */
export type TimeInput = Date | string | number;

export const STUDENT_KINDS: readonly StudentKind[] = ['human', 'simulated', 'scripted'];
export const TURN_ROLES: readonly TurnRole[] = ['teacher', 'student', 'system'];
export const END_REASONS: readonly EndReason[] = ['terminated', 'truncated', 'abandoned'];

/** The project's default database file: `<project root>/data/colloquy.db`. */
export const DEFAULT_DB_PATH = path.join(DATA_DIR, 'colloquy.db');

export interface StartDialogInput {
  /** Default: a random UUID. */
  id?: string;
  env: string;
  agentId?: string | null;
  agentName?: string | null;
  student: StudentKind;
  sessionId?: string | null;
  seed?: number | null;
  metadata?: Metadata;
  /** Default: now. */
  createdAt?: TimeInput;
}

export interface DialogRecord {
  id: string;
  env: string;
  agentId: string | null;
  agentName: string | null;
  student: StudentKind;
  sessionId: string | null;
  seed: number | null;
  createdAt: string;
  endedAt: string | null;
  endReason: EndReason | null;
  endDetail: string | null;
  metadata: Metadata;
}

export interface AppendTurnInput {
  role: TurnRole;
  text: string;
  tokenCount?: number | null;
  metadata?: Metadata;
  /** Default: now. */
  createdAt?: TimeInput;
  /**
   * Default: the next index of the dialog (0 for the first turn). Indexes are contiguous: when
   * given, it must be that next index, which makes a retried write safe (a second write of the same
   * index fails with BAD_REQUEST instead of duplicating the turn).
   */
  index?: number;
}

export interface TurnRecord {
  /** Global, increasing id (the one to acknowledge). */
  id: number;
  dialogId: string;
  /** 0-based position in the dialog. */
  index: number;
  role: TurnRole;
  text: string;
  tokenCount: number | null;
  createdAt: string;
  metadata: Metadata;
}

export interface RewardInput {
  total: number;
  components?: Record<string, number>;
  createdAt?: TimeInput;
}

export interface RewardRecord {
  dialogId: string;
  /** Index of the turn the reward scores (usually the student's reply). */
  turn: number;
  total: number;
  components: Record<string, number>;
  createdAt: string;
}

export interface EpisodeInput {
  env: string;
  sessionId?: string | null;
  seed?: number | null;
  return: number;
  length: number;
  terminated: boolean;
  truncated: boolean;
  /** The dialog this episode played out, when it was stored. */
  dialogId?: string | null;
  agentName?: string | null;
  metadata?: Metadata;
  createdAt?: TimeInput;
}

export interface EpisodeRecord {
  id: number;
  env: string;
  sessionId: string | null;
  seed: number | null;
  return: number;
  length: number;
  terminated: boolean;
  truncated: boolean;
  dialogId: string | null;
  agentName: string | null;
  createdAt: string;
  metadata: Metadata;
}

export interface DialogWithTurns extends DialogRecord {
  turns: TurnRecord[];
  rewards: RewardRecord[];
}

export interface DialogFilter {
  /** created_at >= since (inclusive). */
  since?: TimeInput;
  /** created_at < until (exclusive). */
  until?: TimeInput;
  env?: string;
  /** Matches the agent's name or its id. */
  agent?: string;
  /** Only dialogs that have ended (any reason). */
  endedOnly?: boolean;
  limit?: number;
  /** By creation time (then id). Default 'asc'. */
  order?: 'asc' | 'desc';
}

export interface EpisodeFilter {
  since?: TimeInput;
  until?: TimeInput;
  env?: string;
  sessionId?: string;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface StoreOptions {
  /** 'FULL' (default): a commit is fsynced before it returns. 'NORMAL': durable against a process kill only. */
  synchronous?: Synchronous;
  /** Open an existing database read-only (no migration; it must be at the latest version). */
  readonly?: boolean;
  /** How long a write waits for another process's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** The clock (tests). */
  now?: () => Date;
}

export interface StoreStats { dialogs: number; openDialogs: number; turns: number; rewards: number; episodes: number }

export interface Store {
  /** The file (or ':memory:'). */
  readonly file: string;
  readonly readonly: boolean;
  readonly schemaVersion: number;
  /** 'wal' for a file database, 'memory' for ':memory:'. */
  readonly journalMode: string;
  readonly synchronous: Synchronous;

  startDialog(input: StartDialogInput): DialogRecord;
  /** Append a turn; on return it is committed (and, with FULL, on disk). */
  appendTurn(dialogId: string, input: AppendTurnInput): TurnRecord;
  recordReward(dialogId: string, turnIndex: number, reward: RewardInput): RewardRecord;
  endDialog(dialogId: string, reason: EndReason, detail?: string | null, at?: TimeInput): DialogRecord;
  /** End every open dialog created before `before` (default: all) as 'abandoned'; returns how many. For a server's start-up. */
  abandonOpenDialogs(detail: string, before?: TimeInput): number;
  /** Delete a dialog with its turns and rewards (e.g. consent withdrawn); episodes keep a null dialog id. */
  deleteDialog(dialogId: string): boolean;
  recordEpisode(input: EpisodeInput): EpisodeRecord;

  getDialog(id: string): DialogWithTurns | undefined;
  listDialogs(filter?: DialogFilter): DialogRecord[];
  /** The `n` most recently created dialogs, newest first, with turns and rewards. */
  recentDialogs(n?: number): DialogWithTurns[];
  countDialogs(filter?: Omit<DialogFilter, 'limit' | 'order'>): number;
  /**
   * Dialogs matching `filter` with their turns and rewards, oldest first, read page by page
   * (keyset on created_at, id) so that memory stays bounded whatever the database's size. Each
   * page is its own read; the connection is free between pages (the iterator may be held across
   * awaits while the same store keeps writing).
   */
  iterateDialogs(filter?: Omit<DialogFilter, 'order' | 'limit'>, pageSize?: number): IterableIterator<DialogWithTurns>;
  getTurns(dialogId: string): TurnRecord[];
  getRewards(dialogId: string): RewardRecord[];
  listEpisodes(filter?: EpisodeFilter): EpisodeRecord[];
  stats(): StoreStats;

  /** Run `fn` in one transaction (e.g. a turn and its reward together); nested calls join it. */
  transaction<T>(fn: () => T): T;
  /** The underlying connection, for ad-hoc SQL (read-only use recommended). */
  readonly db: Db;
  close(): void;
}

// ---------------------------------------------------------------------------------------------
// Validation and conversion helpers

function bad(message: string): ColloquyError { return new ColloquyError('BAD_REQUEST', message); }

/** An ISO 8601 UTC string with milliseconds, from any accepted time input. */
export function toIso(t: TimeInput, what = 'time'): string {
  const d = t instanceof Date ? t : new Date(t);
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw bad(`${what} is not a valid date: ${String(t)}`);
  if (ms < 0 || ms > 253402300799999) throw bad(`${what} is out of range (years 1970..9999): ${String(t)}`);
  return d.toISOString();
}

// A UTF-16 surrogate without its pair. (String#toWellFormed replaces them the same way from
// Node 20, but is not in TypeScript's ES2022 lib.)
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Text as it will be stored: lone surrogates replaced by U+FFFD, everything else unchanged. */
export function storedText(s: string): string {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw bad(`${what} must be a string`);
  return storedText(value);
}
function optText(value: unknown, what: string): string | null {
  return value === undefined || value === null ? null : text(value, what);
}
function optInt(value: unknown, what: string, min = -Number.MAX_SAFE_INTEGER): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw bad(`${what} must be an integer >= ${min}`);
  return value;
}
function finite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`${what} must be a finite number`);
  return value;
}
function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw bad(`${what} must be one of ${allowed.join(', ')}`);
  return value as T;
}
function json(value: Metadata | undefined, what: string): string {
  if (value === undefined) return '{}';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`${what} must be a JSON object`);
  let s: string;
  try { s = JSON.stringify(value); } catch (err) { throw bad(`${what} is not serialisable to JSON: ${(err as Error).message}`); }
  return s;
}
function components(value: Record<string, number> | undefined): string {
  if (value === undefined) return '{}';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('reward components must be an object of numbers');
  for (const [k, v] of Object.entries(value)) finite(v, `reward component '${k}'`);
  return JSON.stringify(value);
}

interface DialogRow {
  id: string; env: string; agent_id: string | null; agent_name: string | null; student: StudentKind;
  session_id: string | null; seed: number | null; created_at: string; ended_at: string | null;
  end_reason: EndReason | null; end_detail: string | null; metadata: string;
}
interface TurnRow { id: number; dialog_id: string; idx: number; role: TurnRole; text: string; token_count: number | null; created_at: string; metadata: string }
interface RewardRow { dialog_id: string; turn_idx: number; total: number; components: string; created_at: string }
interface EpisodeRow {
  id: number; env: string; session_id: string | null; seed: number | null; return: number; length: number;
  terminated: number; truncated: number; dialog_id: string | null; agent_name: string | null; created_at: string; metadata: string;
}

const dialogFromRow = (r: DialogRow): DialogRecord => ({
  id: r.id, env: r.env, agentId: r.agent_id, agentName: r.agent_name, student: r.student, sessionId: r.session_id,
  seed: r.seed, createdAt: r.created_at, endedAt: r.ended_at, endReason: r.end_reason, endDetail: r.end_detail,
  metadata: JSON.parse(r.metadata) as Metadata,
});
const turnFromRow = (r: TurnRow): TurnRecord => ({
  id: r.id, dialogId: r.dialog_id, index: r.idx, role: r.role, text: r.text, tokenCount: r.token_count,
  createdAt: r.created_at, metadata: JSON.parse(r.metadata) as Metadata,
});
const rewardFromRow = (r: RewardRow): RewardRecord => ({
  dialogId: r.dialog_id, turn: r.turn_idx, total: r.total, components: JSON.parse(r.components) as Record<string, number>, createdAt: r.created_at,
});
const episodeFromRow = (r: EpisodeRow): EpisodeRecord => ({
  id: r.id, env: r.env, sessionId: r.session_id, seed: r.seed, return: r.return, length: r.length,
  terminated: r.terminated === 1, truncated: r.truncated === 1, dialogId: r.dialog_id, agentName: r.agent_name,
  createdAt: r.created_at, metadata: JSON.parse(r.metadata) as Metadata,
});

/** Map constraint failures to coded errors; leave everything else (I/O, disk full) alone. */
function mapSqliteError(err: unknown, context: string): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  switch (err.code) {
    case 'SQLITE_CONSTRAINT_FOREIGNKEY': return new ColloquyError('NOT_FOUND', `${context}: no such dialog or turn`);
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
    case 'SQLITE_CONSTRAINT_UNIQUE': return new ColloquyError('BAD_REQUEST', `${context}: already exists`);
    case 'SQLITE_CONSTRAINT_TRIGGER': return new ColloquyError('CLOSED', `${context}: ${err.message}`);
    case 'SQLITE_CONSTRAINT_CHECK':
    case 'SQLITE_CONSTRAINT_NOTNULL': return new ColloquyError('BAD_REQUEST', `${context}: ${err.message}`);
    default: return err;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Open (creating and migrating when needed) the store at `file`, or an in-memory one for
 * ':memory:'. The parent directory is created. Pragmas: WAL, synchronous FULL (or NORMAL),
 * foreign keys on, busy timeout.
 */
export function openStore(file: string, opts: StoreOptions = {}): Store {
  const synchronous = opts.synchronous ?? 'FULL';
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new ColloquyError('BAD_CONFIG', `synchronous must be FULL or NORMAL, not ${String(synchronous)}`);
  const readonly = opts.readonly ?? false;
  const memory = file === ':memory:';
  const now = opts.now ?? (() => new Date());
  const busy = opts.busyTimeoutMs ?? 5000;

  if (readonly && memory) throw new ColloquyError('BAD_CONFIG', 'a read-only store needs a file');
  if (readonly && !existsSync(file)) throw new ColloquyError('NOT_FOUND', `no database at ${file}`);
  if (!readonly && !memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });

  const db = new Database(file, { readonly, fileMustExist: readonly, timeout: busy });
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busy))}`);
    let journalMode: string;
    if (readonly) {
      journalMode = String(db.pragma('journal_mode', { simple: true }));
    } else {
      journalMode = String(db.pragma('journal_mode = WAL', { simple: true }));
      if (!memory && journalMode !== 'wal') throw new ColloquyError('BAD_CONFIG', `cannot put ${file} in WAL mode (got '${journalMode}'); is it on a network filesystem?`);
    }
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('foreign_keys = ON');
    if (readonly) {
      const applied = appliedMigrations(db);
      verifyApplied(applied, MIGRATIONS);
      const v = schemaVersion(db);
      if (v !== LATEST_VERSION) throw new ColloquyError('BAD_CONFIG', `database ${file} is at schema version ${v}, not ${LATEST_VERSION}; open it once read-write (e.g. start the server) to migrate it`);
    } else {
      migrate(db, MIGRATIONS, { now });
    }
    return new SqliteStore(db, file, readonly, journalMode, synchronous, now);
  } catch (err) {
    db.close();
    throw err;
  }
}

class SqliteStore implements Store {
  readonly schemaVersion: number;
  private readonly s: {
    insertDialog: Statement; getDialog: Statement; endDialog: Statement; abandon: Statement; deleteDialog: Statement;
    insertTurn: Statement; insertTurnAt: Statement; nextIndex: Statement; turns: Statement;
    insertReward: Statement; rewards: Statement; insertEpisode: Statement; stats: Statement;
  };

  constructor(
    readonly db: Db, readonly file: string, readonly readonly: boolean, readonly journalMode: string,
    readonly synchronous: Synchronous, private readonly now: () => Date,
  ) {
    this.schemaVersion = schemaVersion(db);
    // All statements are prepared once, here (a read-only connection prepares the writes too;
    // writable() refuses before they run).
    const prep = (sql: string): Statement => db.prepare(sql);
    this.s = {
      insertDialog: prep(`INSERT INTO dialogs (id, env, agent_id, agent_name, student, session_id, seed, created_at, metadata)
        VALUES (@id, @env, @agent_id, @agent_name, @student, @session_id, @seed, @created_at, @metadata) RETURNING *`),
      getDialog: prep('SELECT * FROM dialogs WHERE id = ?'),
      endDialog: prep(`UPDATE dialogs SET ended_at = @ended_at, end_reason = @end_reason, end_detail = @end_detail
        WHERE id = @id AND ended_at IS NULL RETURNING *`),
      abandon: prep(`UPDATE dialogs SET ended_at = @ended_at, end_reason = 'abandoned', end_detail = @end_detail
        WHERE ended_at IS NULL AND (@before IS NULL OR created_at < @before)`),
      deleteDialog: prep('DELETE FROM dialogs WHERE id = ?'),
      // The next index and the insert in one statement: atomic even with several writers.
      insertTurn: prep(`INSERT INTO turns (dialog_id, idx, role, text, token_count, created_at, metadata)
        SELECT @dialog_id, COALESCE(MAX(idx) + 1, 0), @role, @text, @token_count, @created_at, @metadata
        FROM turns WHERE dialog_id = @dialog_id RETURNING *`),
      insertTurnAt: prep(`INSERT INTO turns (dialog_id, idx, role, text, token_count, created_at, metadata)
        SELECT @dialog_id, @idx, @role, @text, @token_count, @created_at, @metadata
        WHERE (SELECT COALESCE(MAX(idx) + 1, 0) FROM turns WHERE dialog_id = @dialog_id) = @idx RETURNING *`),
      nextIndex: prep('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM turns WHERE dialog_id = ?'),
      turns: prep('SELECT * FROM turns WHERE dialog_id = ? ORDER BY idx'),
      insertReward: prep(`INSERT INTO rewards (dialog_id, turn_idx, total, components, created_at)
        VALUES (@dialog_id, @turn_idx, @total, @components, @created_at) RETURNING *`),
      rewards: prep('SELECT * FROM rewards WHERE dialog_id = ? ORDER BY turn_idx'),
      insertEpisode: prep(`INSERT INTO episodes (env, session_id, seed, return, length, terminated, truncated, dialog_id, agent_name, created_at, metadata)
        VALUES (@env, @session_id, @seed, @return, @length, @terminated, @truncated, @dialog_id, @agent_name, @created_at, @metadata) RETURNING *`),
      stats: prep(`SELECT (SELECT COUNT(*) FROM dialogs) AS dialogs, (SELECT COUNT(*) FROM dialogs WHERE ended_at IS NULL) AS openDialogs,
        (SELECT COUNT(*) FROM turns) AS turns, (SELECT COUNT(*) FROM rewards) AS rewards, (SELECT COUNT(*) FROM episodes) AS episodes`),
    };
  }

  private nowIso(t: TimeInput | undefined, what: string): string {
    return t === undefined ? this.now().toISOString() : toIso(t, what);
  }
  private writable(): void {
    if (this.readonly) throw new ColloquyError('BAD_REQUEST', 'store is read-only');
    if (!this.db.open) throw new ColloquyError('CLOSED', 'store is closed');
  }

  startDialog(input: StartDialogInput): DialogRecord {
    this.writable();
    const row = {
      id: input.id === undefined ? randomUUID() : text(input.id, 'dialog id'),
      env: text(input.env, 'env'),
      agent_id: optText(input.agentId, 'agentId'),
      agent_name: optText(input.agentName, 'agentName'),
      student: oneOf(input.student, STUDENT_KINDS, 'student'),
      session_id: optText(input.sessionId, 'sessionId'),
      seed: optInt(input.seed, 'seed'),
      created_at: this.nowIso(input.createdAt, 'createdAt'),
      metadata: json(input.metadata, 'metadata'),
    };
    if (row.id === '') throw bad('dialog id must not be empty');
    try {
      return dialogFromRow(this.s.insertDialog.get(row) as DialogRow);
    } catch (err) { throw mapSqliteError(err, `dialog '${row.id}'`); }
  }

  appendTurn(dialogId: string, input: AppendTurnInput): TurnRecord {
    this.writable();
    const row = {
      dialog_id: text(dialogId, 'dialog id'),
      role: oneOf(input.role, TURN_ROLES, 'role'),
      text: text(input.text, 'text'),
      token_count: optInt(input.tokenCount, 'tokenCount', 0),
      created_at: this.nowIso(input.createdAt, 'createdAt'),
      metadata: json(input.metadata, 'metadata'),
    };
    try {
      if (input.index === undefined) return turnFromRow(this.s.insertTurn.get(row) as TurnRow);
      const idx = optInt(input.index, 'index', 0);
      const inserted = this.s.insertTurnAt.get({ ...row, idx }) as TurnRow | undefined;
      if (inserted) return turnFromRow(inserted);
    } catch (err) {
      throw mapSqliteError(err, input.index === undefined ? `turn of dialog '${row.dialog_id}'` : `turn ${input.index} of dialog '${row.dialog_id}'`);
    }
    // Explicit index that is not the next one.
    if (this.s.getDialog.get(row.dialog_id) === undefined) throw new ColloquyError('NOT_FOUND', `no dialog '${row.dialog_id}'`);
    const next = (this.s.nextIndex.get(row.dialog_id) as { n: number }).n;
    throw new ColloquyError('BAD_REQUEST', input.index! < next
      ? `turn ${input.index} of dialog '${row.dialog_id}' already exists`
      : `turn ${input.index} of dialog '${row.dialog_id}' would leave a gap: the next index is ${next}`);
  }

  recordReward(dialogId: string, turnIndex: number, reward: RewardInput): RewardRecord {
    this.writable();
    const row = {
      dialog_id: text(dialogId, 'dialog id'),
      turn_idx: optInt(turnIndex, 'turn index', 0),
      total: finite(reward.total, 'reward total'),
      components: components(reward.components),
      created_at: this.nowIso(reward.createdAt, 'createdAt'),
    };
    if (row.turn_idx === null) throw bad('turn index is required');
    try {
      return rewardFromRow(this.s.insertReward.get(row) as RewardRow);
    } catch (err) { throw mapSqliteError(err, `reward for turn ${turnIndex} of dialog '${row.dialog_id}'`); }
  }

  endDialog(dialogId: string, reason: EndReason, detail: string | null = null, at?: TimeInput): DialogRecord {
    this.writable();
    const params = {
      id: text(dialogId, 'dialog id'),
      end_reason: oneOf(reason, END_REASONS, 'end reason'),
      end_detail: optText(detail, 'detail'),
      ended_at: this.nowIso(at, 'endedAt'),
    };
    const row = this.s.endDialog.get(params) as DialogRow | undefined;
    if (row) return dialogFromRow(row);
    if (this.s.getDialog.get(params.id) === undefined) throw new ColloquyError('NOT_FOUND', `no dialog '${params.id}'`);
    throw new ColloquyError('CLOSED', `dialog '${params.id}' has already ended`);
  }

  abandonOpenDialogs(detail: string, before?: TimeInput): number {
    this.writable();
    const when = this.now().toISOString();
    const cutoff = before === undefined ? null : toIso(before, 'before');
    return this.s.abandon.run({ ended_at: when, end_detail: text(detail, 'detail'), before: cutoff }).changes;
  }

  deleteDialog(dialogId: string): boolean {
    this.writable();
    return this.s.deleteDialog.run(text(dialogId, 'dialog id')).changes > 0;
  }

  recordEpisode(input: EpisodeInput): EpisodeRecord {
    this.writable();
    if (typeof input.terminated !== 'boolean' || typeof input.truncated !== 'boolean') throw bad('terminated and truncated must be booleans');
    const row = {
      env: text(input.env, 'env'),
      session_id: optText(input.sessionId, 'sessionId'),
      seed: optInt(input.seed, 'seed'),
      return: finite(input.return, 'return'),
      length: optInt(input.length, 'length', 0),
      terminated: input.terminated ? 1 : 0,
      truncated: input.truncated ? 1 : 0,
      dialog_id: optText(input.dialogId, 'dialogId'),
      agent_name: optText(input.agentName, 'agentName'),
      created_at: this.nowIso(input.createdAt, 'createdAt'),
      metadata: json(input.metadata, 'metadata'),
    };
    if (row.length === null) throw bad('length is required');
    try {
      return episodeFromRow(this.s.insertEpisode.get(row) as EpisodeRow);
    } catch (err) { throw mapSqliteError(err, 'episode'); }
  }

  getTurns(dialogId: string): TurnRecord[] {
    return (this.s.turns.all(dialogId) as TurnRow[]).map(turnFromRow);
  }
  getRewards(dialogId: string): RewardRecord[] {
    return (this.s.rewards.all(dialogId) as RewardRow[]).map(rewardFromRow);
  }

  getDialog(id: string): DialogWithTurns | undefined {
    // One read transaction, so that turns and rewards are of the same moment as the dialog.
    return this.db.transaction(() => {
      const row = this.s.getDialog.get(id) as DialogRow | undefined;
      return row ? this.withTurns(dialogFromRow(row)) : undefined;
    })();
  }

  private withTurns(d: DialogRecord): DialogWithTurns {
    return { ...d, turns: this.getTurns(d.id), rewards: this.getRewards(d.id) };
  }

  /** WHERE clause and parameters of a dialog filter (statements are cached by better-sqlite3's caller, see below). */
  private where(filter: Omit<DialogFilter, 'limit' | 'order'>): { sql: string; params: Record<string, string> } {
    const parts: string[] = [];
    const params: Record<string, string> = {};
    if (filter.since !== undefined) { parts.push('created_at >= @since'); params.since = toIso(filter.since, 'since'); }
    if (filter.until !== undefined) { parts.push('created_at < @until'); params.until = toIso(filter.until, 'until'); }
    if (filter.env !== undefined) { parts.push('env = @env'); params.env = text(filter.env, 'env'); }
    if (filter.agent !== undefined) { parts.push('(agent_name = @agent OR agent_id = @agent)'); params.agent = text(filter.agent, 'agent'); }
    if (filter.endedOnly) parts.push('ended_at IS NOT NULL');
    return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
  }

  private readonly cache = new Map<string, Statement>();
  private stmt(sql: string): Statement {
    let s = this.cache.get(sql);
    if (!s) { s = this.db.prepare(sql); this.cache.set(sql, s); }
    return s;
  }

  listDialogs(filter: DialogFilter = {}): DialogRecord[] {
    const { sql, params } = this.where(filter);
    const dir = filter.order === 'desc' ? 'DESC' : 'ASC';
    const limit = optInt(filter.limit, 'limit', 0);
    const q = `SELECT * FROM dialogs ${sql} ORDER BY created_at ${dir}, id ${dir}${limit === null ? '' : ' LIMIT @limit'}`;
    const rows = this.stmt(q).all(limit === null ? params : { ...params, limit }) as DialogRow[];
    return rows.map(dialogFromRow);
  }

  countDialogs(filter: Omit<DialogFilter, 'limit' | 'order'> = {}): number {
    const { sql, params } = this.where(filter);
    return (this.stmt(`SELECT COUNT(*) AS n FROM dialogs ${sql}`).get(params) as { n: number }).n;
  }

  recentDialogs(n = 20): DialogWithTurns[] {
    return this.db.transaction(() => this.listDialogs({ limit: n, order: 'desc' }).map(d => this.withTurns(d)))();
  }

  *iterateDialogs(filter: Omit<DialogFilter, 'order' | 'limit'> = {}, pageSize = 256): IterableIterator<DialogWithTurns> {
    const size = optInt(pageSize, 'pageSize', 1)!;
    const { sql, params } = this.where(filter);
    const first = this.stmt(`SELECT * FROM dialogs ${sql} ORDER BY created_at, id LIMIT @limit`);
    const next = this.stmt(`SELECT * FROM dialogs ${sql ? `${sql} AND` : 'WHERE'} (created_at, id) > (@after_created, @after_id) ORDER BY created_at, id LIMIT @limit`);
    let cursor: { created: string; id: string } | null = null;
    for (;;) {
      // A page and its turns/rewards are read in one read transaction (a consistent page).
      const page: DialogWithTurns[] = this.db.transaction(() => {
        const c = cursor;
        const rows = (c === null
          ? first.all({ ...params, limit: size })
          : next.all({ ...params, limit: size, after_created: c.created, after_id: c.id })) as DialogRow[];
        return rows.map(r => this.withTurns(dialogFromRow(r)));
      })();
      for (const d of page) yield d;
      if (page.length < size) return;
      const last = page[page.length - 1]!;
      cursor = { created: last.createdAt, id: last.id };
    }
  }

  listEpisodes(filter: EpisodeFilter = {}): EpisodeRecord[] {
    const parts: string[] = [];
    const params: Record<string, string | number> = {};
    if (filter.since !== undefined) { parts.push('created_at >= @since'); params.since = toIso(filter.since, 'since'); }
    if (filter.until !== undefined) { parts.push('created_at < @until'); params.until = toIso(filter.until, 'until'); }
    if (filter.env !== undefined) { parts.push('env = @env'); params.env = text(filter.env, 'env'); }
    if (filter.sessionId !== undefined) { parts.push('session_id = @session'); params.session = text(filter.sessionId, 'sessionId'); }
    const limit = optInt(filter.limit, 'limit', 0);
    if (limit !== null) params.limit = limit;
    const dir = filter.order === 'desc' ? 'DESC' : 'ASC';
    const q = `SELECT * FROM episodes ${parts.length ? `WHERE ${parts.join(' AND ')}` : ''} ORDER BY created_at ${dir}, id ${dir}${limit === null ? '' : ' LIMIT @limit'}`;
    return (this.stmt(q).all(params) as EpisodeRow[]).map(episodeFromRow);
  }

  stats(): StoreStats {
    return this.s.stats.get() as StoreStats;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
