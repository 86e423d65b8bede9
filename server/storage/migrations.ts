/**
 * Schema migrations for the dialog store.
 *
 * Each migration is a numbered block of SQL, applied once, in order, inside one IMMEDIATE
 * transaction at open: a database is either at its old version or at the new one, never half way,
 * and two processes opening the same file at once serialise on the write lock (the second sees the
 * first one's work and applies nothing). `schema_migrations` records what was applied, when, and a
 * checksum of the SQL: a shipped migration is never edited (add a new one instead), and a database
 * whose recorded checksum differs from the code's is refused rather than silently trusted.
 *
 * A database written by a newer Colloquy (a version this code does not know) is refused too: the
 * code cannot know what the newer columns mean.
 */
import { createHash } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { ColloquyError } from '../../core/errors.ts';

export interface Migration {
  /** 1, 2, 3, ... without gaps. */
  readonly version: number;
  /** A short description, stored beside the version. */
  readonly name: string;
  /** The SQL, run with `db.exec` inside the migration's transaction. */
  readonly sql: string;
}

/**
 * The history of the schema. Timestamps are ISO 8601 UTC strings with milliseconds
 * (`2024-05-01T12:00:00.000Z`, what `Date#toISOString` writes), so that they sort and compare as
 * text and read well in the sqlite3 shell. JSON columns hold a JSON object (checked).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'dialogs, turns, rewards',
    sql: `
CREATE TABLE dialogs (
  id          TEXT PRIMARY KEY,
  env         TEXT NOT NULL,                 -- env id, e.g. TeacherStudent-v0
  agent_id    TEXT,                          -- checkpoint / run id of the teacher agent
  agent_name  TEXT,                          -- its human-readable name
  student     TEXT NOT NULL CHECK (student IN ('human', 'simulated', 'scripted')),
  session_id  TEXT,                          -- the /v1/env session (or chat session)
  seed        INTEGER,
  created_at  TEXT NOT NULL,
  ended_at    TEXT,
  end_reason  TEXT CHECK (end_reason IN ('terminated', 'truncated', 'abandoned')),
  end_detail  TEXT,                          -- e.g. 'human timeout after 120 s', 'token limit'
  metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
  CHECK ((ended_at IS NULL) = (end_reason IS NULL))
) STRICT;
CREATE INDEX dialogs_by_created ON dialogs (created_at, id);
CREATE INDEX dialogs_by_env ON dialogs (env, created_at);
CREATE INDEX dialogs_by_agent_name ON dialogs (agent_name, created_at);
CREATE INDEX dialogs_by_agent_id ON dialogs (agent_id, created_at);

CREATE TABLE turns (
  id          INTEGER PRIMARY KEY,           -- global, increasing: the id acknowledged to writers
  dialog_id   TEXT NOT NULL REFERENCES dialogs (id) ON DELETE CASCADE,
  idx         INTEGER NOT NULL CHECK (idx >= 0),  -- position in the dialog, 0-based
  role        TEXT NOT NULL CHECK (role IN ('teacher', 'student', 'system')),
  text        TEXT NOT NULL,
  token_count INTEGER CHECK (token_count IS NULL OR token_count >= 0),
  created_at  TEXT NOT NULL,
  metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
  UNIQUE (dialog_id, idx)
) STRICT;

-- A dialog that has ended takes no more turns (the env's "step after done" rule, kept by the data).
CREATE TRIGGER turns_only_while_open BEFORE INSERT ON turns
WHEN (SELECT ended_at FROM dialogs WHERE id = NEW.dialog_id) IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'dialog has ended');
END;

CREATE TABLE rewards (
  dialog_id   TEXT NOT NULL,
  turn_idx    INTEGER NOT NULL,              -- the turn (usually the student's reply) it scores
  total       REAL NOT NULL,
  components  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(components) AND json_type(components) = 'object'),
  created_at  TEXT NOT NULL,
  PRIMARY KEY (dialog_id, turn_idx),
  FOREIGN KEY (dialog_id, turn_idx) REFERENCES turns (dialog_id, idx) ON DELETE CASCADE
) STRICT;
`,
  },
  {
    version: 2,
    name: 'episodes',
    sql: `
CREATE TABLE episodes (
  id          INTEGER PRIMARY KEY,
  env         TEXT NOT NULL,
  session_id  TEXT,
  seed        INTEGER,
  return      REAL NOT NULL,
  length      INTEGER NOT NULL CHECK (length >= 0),
  terminated  INTEGER NOT NULL CHECK (terminated IN (0, 1)),
  truncated   INTEGER NOT NULL CHECK (truncated IN (0, 1)),
  dialog_id   TEXT REFERENCES dialogs (id) ON DELETE SET NULL,
  agent_name  TEXT,
  created_at  TEXT NOT NULL,
  metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object')
) STRICT;
CREATE INDEX episodes_by_created ON episodes (created_at);
CREATE INDEX episodes_by_env ON episodes (env, created_at);
CREATE INDEX episodes_by_session ON episodes (session_id);
CREATE INDEX episodes_by_dialog ON episodes (dialog_id);
`,
  },
  {
    version: 3,
    name: 'judging',
    sql: `
-- Pairs of transcripts of the same prompt from two agents, shown to people on /judge with the
-- agents' names hidden and the sides randomised per judge (server/storage/judging.ts).
CREATE TABLE judge_pairs (
  id           TEXT PRIMARY KEY,
  study        TEXT NOT NULL,
  prompt_key   TEXT NOT NULL,                -- what makes the two comparable, e.g. 'seed:1234'
  agent_a      TEXT NOT NULL,
  agent_b      TEXT NOT NULL,
  prompt       TEXT,                         -- shown above both transcripts (null: none)
  transcript_a TEXT NOT NULL CHECK (json_valid(transcript_a) AND json_type(transcript_a) = 'array'),
  transcript_b TEXT NOT NULL CHECK (json_valid(transcript_b) AND json_type(transcript_b) = 'array'),
  questions    TEXT NOT NULL CHECK (json_valid(questions) AND json_type(questions) = 'array'),
  source       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(source) AND json_type(source) = 'object'),
  created_at   TEXT NOT NULL,
  CHECK (agent_a <> agent_b),
  UNIQUE (study, agent_a, agent_b, prompt_key)
) STRICT;
CREATE INDEX judge_pairs_by_study ON judge_pairs (study, id);

CREATE TABLE judgements (
  id          INTEGER PRIMARY KEY,
  pair_id     TEXT NOT NULL REFERENCES judge_pairs (id) ON DELETE CASCADE,
  judge       TEXT NOT NULL,                 -- an anonymous id the judge's browser keeps
  question    TEXT NOT NULL,
  choice      TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie')),
  shown_left  TEXT NOT NULL CHECK (shown_left IN ('a', 'b')),
  reason      TEXT,
  created_at  TEXT NOT NULL,
  UNIQUE (pair_id, judge, question)
) STRICT;
CREATE INDEX judgements_by_judge ON judgements (judge, pair_id);
`,
  },
];

/** The version a database has after all of `MIGRATIONS`. */
export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex').slice(0, 16);
}

interface AppliedRow { version: number; name: string; checksum: string; applied_at: string }

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  checksum    TEXT NOT NULL,
  applied_at  TEXT NOT NULL
) STRICT`;

function hasMigrationsTable(db: Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get() !== undefined;
}

/** The migrations recorded in the database (empty for a new file), in order. */
export function appliedMigrations(db: Database): AppliedRow[] {
  if (!hasMigrationsTable(db)) return [];
  return db.prepare('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version').all() as AppliedRow[];
}

/** The database's schema version (0 for a new file). */
export function schemaVersion(db: Database): number {
  const rows = appliedMigrations(db);
  return rows.length ? rows[rows.length - 1]!.version : 0;
}

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new ColloquyError('INTERNAL', `migration list out of order: #${i} has version ${m.version}`);
  });
}

/** Compare what the database recorded with the code's list; throw on a newer or edited schema. */
export function verifyApplied(applied: readonly AppliedRow[], migrations: readonly Migration[]): void {
  const known = migrations.length;
  for (const row of applied) {
    const m = migrations[row.version - 1];
    if (!m) {
      throw new ColloquyError('BAD_CONFIG', `database schema is version ${applied[applied.length - 1]!.version}, newer than this Colloquy knows (${known}); upgrade Colloquy to open it`);
    }
    if (row.checksum !== checksum(m.sql)) {
      throw new ColloquyError('BAD_CONFIG', `migration ${row.version} ('${row.name}') recorded in the database differs from the code's (checksum ${row.checksum} vs ${checksum(m.sql)}); shipped migrations must not be edited`);
    }
  }
}

export interface MigrateResult { from: number; to: number; applied: number[] }

/**
 * Bring `db` up to `to` (default: the last of `migrations`). Idempotent: a database already there
 * is left untouched. All pending migrations run in one IMMEDIATE transaction; if one fails,
 * nothing is applied and the error is rethrown.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS, opts: { to?: number; now?: () => Date } = {}): MigrateResult {
  checkList(migrations);
  const target = opts.to ?? migrations.length;
  if (target < 0 || target > migrations.length) throw new ColloquyError('INTERNAL', `no migration ${target}`);
  const now = opts.now ?? (() => new Date());
  const run = db.transaction((): MigrateResult => {
    db.exec(CREATE_TABLE);
    const applied = appliedMigrations(db);
    verifyApplied(applied, migrations);
    const from = applied.length ? applied[applied.length - 1]!.version : 0;
    const done: number[] = [];
    const record = db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
    for (const m of migrations.slice(from, target)) {
      db.exec(m.sql);
      record.run(m.version, m.name, checksum(m.sql), now().toISOString());
      done.push(m.version);
    }
    return { from, to: Math.max(from, target), applied: done };
  });
  // Foreign-key checks cannot be toggled inside a transaction; migrations that rebuild a table
  // would need them off. None does yet; when one does, switch them off here and run
  // `PRAGMA foreign_key_check` before committing.
  return run.immediate();
}
