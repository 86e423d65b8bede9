/**
 * Kill test for live chats: `colloquy serve` (a real server process, hosted agents playing the
 * teacher) is killed with SIGKILL in the middle of several conversations, at a random point, and
 * restarted on the same database. Every turn that was acknowledged to anyone must be there:
 * each person's message that got its `ack`, and each teacher turn the person received whole
 * (`teacher-end`, sent only after the recorder committed it). On restart the dialogs the dead
 * server left open are marked `abandoned`. Two rounds; the figures are printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../core/rng.ts';
import { openStore } from '../../server/storage/db.ts';
import { PersonClient } from './helpers.ts';
import { PROJECT_ROOT, defaultModelDir } from '../../core/paths.ts';

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-chat-kill-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Start `colloquy serve --config FILE`; resolves with the child and its port once it listens. */
function serve(config: string): Promise<{ child: ChildProcess; port: number; out: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/colloquy.mjs'), 'serve', '--config', config], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server did not start:\n${out}`)); }, 60_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), out: () => out }); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', code => { clearTimeout(timer); reject(new Error(`server exited (${code}) before listening:\n${out}`)); });
  });
}

interface Acked { person: number; student: string[]; teacher: string[] }

describe('kill test: the server SIGKILLed mid-conversation', () => {
  it('keeps every acknowledged turn of every conversation across two kills', async () => {
    const db = path.join(tmp, 'chat.db');
    const config = path.join(tmp, 'server.json');
    writeFileSync(config, JSON.stringify({
      port: 0, logLevel: 'info',
      baseModel: { dir: defaultModelDir(), pretrainIfMissing: false },
      storage: { db, record: 'all', synchronous: 'FULL' },
      chat: { hostedAgents: [{ name: 'k', maxUtteranceTokens: 4, temperature: 1, kwargs: { maxTokens: 4000, maxStudentTokens: 64 } }] },
    }));
    const rng = new Rng(2024);
    const report: string[] = [];
    const PEOPLE = 4;
    let previousOpen = 0;

    for (let round = 0; round < 2; round++) {
      const srv = await serve(config);
      const exited = new Promise<NodeJS.Signals | null>(ok => srv.child.once('exit', (_c, sig) => ok(sig)));
      // The dialogs the previous kill left open were marked abandoned at this start-up.
      const acked: Acked[] = [];
      const killAfter = 10 + rng.int(20);   // acknowledged person messages, over all conversations
      const delayMs = rng.int(15);
      let total = 0;
      let killing: Promise<void> | null = null;
      const kill = () => (killing ??= new Promise<void>(ok => setTimeout(() => { srv.child.kill('SIGKILL'); ok(); }, delayMs)));
      const talk = async (i: number) => {
        const a: Acked = { person: i, student: [], teacher: [] };
        acked.push(a);
        const p = await PersonClient.connect(`ws://127.0.0.1:${srv.port}/chat/ws`);
        p.ws.on('error', () => {});
        p.ws.on('message', (data: Buffer) => {
          const m = JSON.parse(data.toString()) as { type: string; text?: string; id?: string };
          if (m.type === 'teacher-end') a.teacher.push(m.text!);
          if (m.type === 'ack') a.student.push(m.id!);
        });
        p.send({ type: 'hello' });
        p.send({ type: 'join', agent: 'k' });
        for (let k = 0; !killing; k++) {
          const from = p.frames.length;
          try { await p.waitFor('your-turn', () => true, 20_000, from); } catch { break; }
          const text = `r${round} p${i} message ${k} ${'x'.repeat(rng.int(20))}`;
          p.send({ type: 'say', id: text, text });
          try { await p.waitFor('ack', m => m.id === text, 20_000); } catch { break; }
          if (++total >= killAfter) kill();
        }
      };
      await Promise.race([Promise.all(Array.from({ length: PEOPLE }, (_, i) => talk(i))), exited]);
      await killing;
      expect(await exited).toBe('SIGKILL');

      // Restart on the same database (as an operator would), then read it.
      const next = await serve(config);
      const abandonedAtStart = /"abandoned":(\d+)/.exec(next.out())?.[1];
      next.child.kill('SIGKILL');
      await new Promise(ok => next.child.once('exit', ok));
      const store = openStore(db, { readonly: true });
      try {
        expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
        let ackedStudent = 0, ackedTeacher = 0, foundStudent = 0, foundTeacher = 0, missing = 0;
        for (const a of acked) {
          if (!a.student.length) continue;
          const d = store.listDialogs({}).map(x => store.getDialog(x.id)!).find(x => x.turns.some(t => t.text === a.student[0]));
          expect(d, `person ${a.person}'s dialog`).toBeDefined();
          const students = d!.turns.filter(t => t.role === 'student').map(t => t.text);
          const teachers = d!.turns.filter(t => t.role === 'teacher').map(t => t.text.replace(/^ /, ''));
          // Every acknowledged message, in order, at the start of the stored ones (at most one more: written, ack lost in the kill).
          expect(students.slice(0, a.student.length)).toEqual(a.student);
          expect(students.length - a.student.length, `person ${a.person}: stored student turns beyond the acknowledged ones`).toBeLessThanOrEqual(1);
          expect(teachers.slice(0, a.teacher.length)).toEqual(a.teacher);
          // Likewise at most one teacher turn committed whose teacher-end did not arrive: the next one
          // needs the person's reply, sent only after the previous teacher-end came.
          expect(teachers.length - a.teacher.length, `person ${a.person}: stored teacher turns beyond the ones received whole`).toBeLessThanOrEqual(1);
          missing += a.student.filter((x, k) => students[k] !== x).length + a.teacher.filter((x, k) => teachers[k] !== x).length;
          expect(d!.endReason).toBe('abandoned');
          ackedStudent += a.student.length; ackedTeacher += a.teacher.length;
          foundStudent += students.length; foundTeacher += teachers.length;
        }
        expect(Number(abandonedAtStart)).toBe(acked.filter(a => a.student.length).length);
        expect(store.stats().openDialogs).toBe(0);
        report.push(`round ${round}: SIGKILL ${delayMs} ms after ${killAfter} acknowledged messages (${PEOPLE} conversations with hosted agents); ` +
          `acknowledged ${ackedStudent} person turns + ${ackedTeacher} teacher turns; found ${foundStudent} + ${foundTeacher} ` +
          `(${foundStudent - ackedStudent + foundTeacher - ackedTeacher} written but not yet acknowledged), ${missing} missing; ${abandonedAtStart} dialogs marked abandoned at restart`);
        previousOpen = Number(abandonedAtStart);
      } finally {
        store.close();
      }
    }
    expect(previousOpen).toBeGreaterThan(0);
    console.log(`chat kill test (synchronous=FULL):\n  ${report.join('\n  ')}`);
  }, 90_000);
});
