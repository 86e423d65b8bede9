/**
 * Kill test: a writer process appends turns, rewards and dialog ends in a loop and prints each one
 * after the write returns; it is killed with SIGKILL mid-stream (three times, restarting on the same
 * database each time, as a crashing server would be). After each kill the database is reopened and
 * every acknowledged write must be there, exactly. (A process kill, not a power cut: the OS still
 * holds what SQLite wrote. Power-loss durability comes from synchronous=FULL, see bench/storage.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../core/rng.ts';
import { openStore } from '../../server/storage/db.ts';
import { textOf } from './fixtures/kill-text.ts';
import { runAndKill, tsCommand } from './kill-helper.ts';

describe('kill test: every acknowledged write survives SIGKILL', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-kill-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged turn, reward and end across three kills', async () => {
    const file = path.join(dir, 'kill.db');
    const rng = new Rng(7);
    const report: string[] = [];
    let totalAcked = 0, totalFound = 0;
    let openAtLastKill: string | null = null;

    for (let round = 0; round < 3; round++) {
      // Kill after a random number of acknowledged turns (300..900), i.e. somewhere mid-dialog.
      const killAfter = 300 + rng.int(600);
      const delayMs = rng.int(4);
      const { command, args } = tsCommand(path.join('tests', 'storage', 'fixtures', 'writer.ts'), [file, String(round)]);
      const run = await runAndKill({
        command, args,
        killWhen: lines => lines.filter(l => l.startsWith('turn ')).length >= killAfter,
        delayMs,
      });
      expect(run.signal, run.stderr).toBe('SIGKILL');

      const acked = run.lines.filter(l => l.startsWith('turn ')).map(l => {
        const [, id, dialogId, index] = l.split(' ');
        return { id: Number(id), dialogId: dialogId!, index: Number(index) };
      });
      const ackedRewards = run.lines.filter(l => l.startsWith('reward ')).map(l => l.split(' ').slice(1));
      const ackedEnds = new Set(run.lines.filter(l => l.startsWith('end ')).map(l => l.split(' ')[1]!));
      // The writer marks the dialog the previous kill left open as abandoned at start-up.
      expect(run.lines[0]).toBe(`abandoned ${openAtLastKill === null ? 0 : 1}`);

      const store = openStore(file); // recovery happens here (WAL replay)
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(store.db.pragma('foreign_key_check')).toEqual([]);
      const found = (store.db.prepare(`SELECT t.id, t.dialog_id AS dialogId, t.idx AS "index", t.text FROM turns t JOIN dialogs d ON d.id = t.dialog_id WHERE d.id LIKE ? ORDER BY t.id`)
        .all(`r${round}-%`) as { id: number; dialogId: string; index: number; text: string }[]);
      const byId = new Map(found.map(t => [t.id, t]));
      const missing = acked.filter(a => {
        const t = byId.get(a.id);
        return !t || t.dialogId !== a.dialogId || t.index !== a.index || t.text !== textOf(a.dialogId, a.index);
      });
      expect(missing, `acknowledged turns missing or altered after kill ${round}`).toEqual([]);
      for (const [dialogId, index] of ackedRewards) {
        expect(store.getRewards(dialogId!).some(r => r.turn === Number(index) && r.total === Number(index) / 100), `reward ${dialogId}#${index}`).toBe(true);
      }
      for (const dialogId of ackedEnds) expect(store.getDialog(dialogId)!.endReason).toBe('terminated');
      if (openAtLastKill !== null) expect(store.getDialog(openAtLastKill)).toMatchObject({ endReason: 'abandoned', endDetail: 'writer restarted' });
      // What is on disk beyond the acknowledgments: at most the write in flight when the kill landed
      // (the writer does one write at a time: a turn, a reward or an end, each printed once it returned).
      const extra = found.length - acked.length;
      expect(extra).toBeGreaterThanOrEqual(0);
      expect(extra, `turns on disk beyond the ${acked.length} acknowledged after kill ${round}`).toBeLessThanOrEqual(1);
      const count = (sql: string) => (store.db.prepare(sql).get(`r${round}-%`) as { n: number }).n;
      const extraRewards = count(`SELECT COUNT(*) AS n FROM rewards WHERE dialog_id LIKE ?`) - ackedRewards.length;
      const extraEnds = count(`SELECT COUNT(*) AS n FROM dialogs WHERE id LIKE ? AND end_reason = 'terminated'`) - ackedEnds.size;
      expect(extraRewards).toBeGreaterThanOrEqual(0);
      expect(extraEnds).toBeGreaterThanOrEqual(0);
      expect(extra + extraRewards + extraEnds, `writes on disk beyond the acknowledged ones after kill ${round} (turns ${extra}, rewards ${extraRewards}, ends ${extraEnds})`).toBeLessThanOrEqual(1);
      const open = store.listDialogs({}).filter(d => d.endedAt === null);
      expect(open.length).toBeLessThanOrEqual(1);
      openAtLastKill = open[0]?.id ?? null;
      store.close();

      totalAcked += acked.length; totalFound += found.length;
      report.push(`round ${round}: kill sent ${delayMs} ms after ${killAfter} acknowledged turns (${run.linesAtKill} lines read); acknowledged ${acked.length} turns, ${ackedRewards.length} rewards, ${ackedEnds.size} ends; found ${found.length} turns (${extra} written but not yet acknowledged; ${extraRewards} rewards, ${extraEnds} ends), ${missing.length} missing`);
    }
    console.log(`kill test (synchronous=FULL):\n  ${report.join('\n  ')}\n  total: acknowledged ${totalAcked}, found ${totalFound}, missing 0`);
  });
});
