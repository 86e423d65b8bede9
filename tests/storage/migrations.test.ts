import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ColloquyError } from '../../core/errors.ts';
import { openStore } from '../../server/storage/db.ts';
import { LATEST_VERSION, MIGRATIONS, appliedMigrations, checksum, migrate, schemaVersion, type Migration } from '../../server/storage/migrations.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function errOf(fn: () => unknown): ColloquyError | Error | null {
  try { fn(); return null; } catch (e) { return e as Error; }
}

describe('schema migrations', () => {
  let dir: string;
  let file: string;
  beforeEach(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-mig-')); file = path.join(dir, 'c.db'); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('numbers the migrations 1..n', () => {
    expect(MIGRATIONS.map(m => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(LATEST_VERSION).toBe(MIGRATIONS.length);
  });

  it('creates a new database at the latest version and records every migration', () => {
    openStore(file).close();
    const db = new Database(file, { readonly: true });
    const rows = appliedMigrations(db);
    expect(rows.map(r => [r.version, r.name, r.checksum])).toEqual(MIGRATIONS.map(m => [m.version, m.name, checksum(m.sql)]));
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map(r => r.name);
    expect(tables).toEqual(['dialogs', 'episodes', 'judge_pairs', 'judgements', 'rewards', 'schema_migrations', 'turns']);
    db.close();
  });

  it('is idempotent: opening again applies nothing and keeps the data', () => {
    const s1 = openStore(file);
    const d = s1.startDialog({ env: 'E-v0', student: 'human' });
    s1.appendTurn(d.id, { role: 'student', text: 'hi' });
    s1.close();
    const s2 = openStore(file);
    expect(migrate(s2.db)).toEqual({ from: LATEST_VERSION, to: LATEST_VERSION, applied: [] });
    expect(s2.getDialog(d.id)!.turns).toHaveLength(1);
    expect(appliedMigrations(s2.db)).toHaveLength(MIGRATIONS.length);
    s2.close();
  });

  it('migrates a version-1 database with data to the latest version', () => {
    // A database as version 1 left it (no episodes table), filled with plain SQL.
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    expect(migrate(old, MIGRATIONS, { to: 1 })).toEqual({ from: 0, to: 1, applied: [1] });
    old.prepare(`INSERT INTO dialogs (id, env, agent_name, student, created_at, metadata) VALUES ('old-1', 'TeacherStudent-v0', 'ppo', 'human', '2024-01-01T00:00:00.000Z', '{"v":1}')`).run();
    old.prepare(`INSERT INTO turns (dialog_id, idx, role, text, created_at) VALUES ('old-1', 0, 'teacher', 'Do you', '2024-01-01T00:00:01.000Z'), ('old-1', 1, 'student', 'yes!', '2024-01-01T00:00:02.000Z')`).run();
    old.prepare(`INSERT INTO rewards (dialog_id, turn_idx, total, components, created_at) VALUES ('old-1', 1, 0.8, '{"sentiment":0.8}', '2024-01-01T00:00:02.000Z')`).run();
    expect(schemaVersion(old)).toBe(1);
    old.close();

    // A read-only open refuses an old schema with a clear message (it cannot migrate).
    const ro = errOf(() => openStore(file, { readonly: true }));
    expect(ro).toBeInstanceOf(ColloquyError);
    expect(ro!.message).toMatch(new RegExp(`schema version 1, not ${LATEST_VERSION}`));

    const store = openStore(file);
    expect(store.schemaVersion).toBe(LATEST_VERSION);
    expect(appliedMigrations(store.db).map(r => r.version)).toEqual(MIGRATIONS.map(m => m.version));
    const d = store.getDialog('old-1')!;
    expect(d).toMatchObject({ env: 'TeacherStudent-v0', agentName: 'ppo', student: 'human', metadata: { v: 1 } });
    expect(d.turns.map(t => t.text)).toEqual(['Do you', 'yes!']);
    expect(d.rewards).toEqual([{ dialogId: 'old-1', turn: 1, total: 0.8, components: { sentiment: 0.8 }, createdAt: '2024-01-01T00:00:02.000Z' }]);
    // The new table works and links to the old rows.
    const ep = store.recordEpisode({ env: 'TeacherStudent-v0', return: 0.8, length: 2, terminated: true, truncated: false, dialogId: 'old-1' });
    expect(store.listEpisodes()).toEqual([ep]);
    expect(store.appendTurn('old-1', { role: 'teacher', text: 'great' }).index).toBe(2);
    expect(store.db.pragma('foreign_key_check')).toEqual([]);
    expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
    store.close();
  });

  it('rolls back every pending migration when one fails', () => {
    const db = new Database(file);
    migrate(db, MIGRATIONS, { to: 1 });
    const broken: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE half_done (x INTEGER); SELECT * FROM no_such_table;' }];
    expect(() => migrate(db, broken)).toThrow(/no_such_table/);
    // Neither the shipped migrations after 1 nor the first half of the broken one stuck.
    expect(schemaVersion(db)).toBe(1);
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE name IN ('episodes', 'judgements', 'half_done')`).all()).toEqual([]);
    expect(migrate(db)).toMatchObject({ from: 1, applied: MIGRATIONS.slice(1).map(m => m.version) });
    db.close();
  });

  it('refuses a database from a newer Colloquy, or one whose applied migration was edited', () => {
    openStore(file).close();
    const db = new Database(file);
    db.prepare(`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (99, 'from the future', 'x', '2030-01-01T00:00:00.000Z')`).run();
    db.close();
    const newer = errOf(() => openStore(file));
    expect((newer as ColloquyError).code).toBe('BAD_CONFIG');
    expect(newer!.message).toMatch(/version 99, newer than this Colloquy knows/);

    const db2 = new Database(file);
    db2.prepare('DELETE FROM schema_migrations WHERE version = 99').run();
    db2.prepare(`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`).run();
    db2.close();
    const edited = errOf(() => openStore(file));
    expect((edited as ColloquyError).code).toBe('BAD_CONFIG');
    expect(edited!.message).toMatch(/migration 1 .* differs from the code's/);
  });

  it('lets several processes open (and migrate) a new file at the same moment', async () => {
    const script = path.join(ROOT, 'tests/storage/fixtures/opener.ts');
    const runOne = (): Promise<{ code: number | null; out: string; err: string }> => new Promise(resolve => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.mjs'), script, file], { cwd: ROOT });
      let out = '', err = '';
      child.stdout.on('data', b => { out += String(b); });
      child.stderr.on('data', b => { err += String(b); });
      child.on('close', code => resolve({ code, out, err }));
    });
    const results = await Promise.all([runOne(), runOne(), runOne(), runOne()]);
    for (const r of results) expect(r, r.err).toMatchObject({ code: 0, out: `${LATEST_VERSION}\n` });
    const s = openStore(file, { readonly: true });
    expect(appliedMigrations(s.db).map(r => r.version)).toEqual(MIGRATIONS.map(m => m.version));
    expect(s.stats()).toMatchObject({ dialogs: 4, turns: 4 });
    s.close();
  });
});
