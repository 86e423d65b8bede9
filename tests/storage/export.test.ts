import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadChatJsonl } from '../../corpora/readers.ts';
import { openStore, type Store } from '../../server/storage/db.ts';
import { exportJsonl, toChatRecord, type ChatRecord } from '../../server/storage/export.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A writable that collects what it is given, slowly (highWaterMark 1 byte: back-pressure on every line). */
class SlowSink extends Writable {
  chunks: string[] = [];
  drains = 0;
  constructor() { super({ highWaterMark: 1, decodeStrings: false }); this.on('drain', () => { this.drains++; }); }
  override _write(chunk: string | Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(String(chunk));
    setImmediate(cb);
  }
  text(): string { return this.chunks.join(''); }
}

function lines(text: string): ChatRecord[] {
  expect(text.endsWith('\n') || text === '').toBe(true);
  return text.split('\n').filter(Boolean).map(l => JSON.parse(l) as ChatRecord);
}

/** Fill a store with a small, varied set of dialogs. */
function fill(store: Store): void {
  const a = store.startDialog({ id: 'a', env: 'TeacherStudent-v0', agentName: 'ppo-kl20', agentId: 'run-1', student: 'human', sessionId: 's1', seed: 7, createdAt: '2024-05-01T10:00:00Z', metadata: { consent: 'v1' } });
  store.appendTurn(a.id, { role: 'system', text: 'The following contains private conversations…', createdAt: '2024-05-01T10:00:00Z' });
  store.appendTurn(a.id, { role: 'teacher', text: 'Do you know what the discussion is for?', tokenCount: 11, createdAt: '2024-05-01T10:00:01Z' });
  store.appendTurn(a.id, { role: 'student', text: 'Not really, sorry!', metadata: { typingMs: 2100 }, createdAt: '2024-05-01T10:00:05Z' });
  store.recordReward(a.id, 2, { total: 0.31, components: { sentiment: 0.21, question: 0.1 }, createdAt: '2024-05-01T10:00:05Z' });
  store.appendTurn(a.id, { role: 'teacher', text: 'It explains what your results mean.', createdAt: '2024-05-01T10:00:07Z' });
  store.appendTurn(a.id, { role: 'student', text: 'Oh, that makes sense, thanks!', createdAt: '2024-05-01T10:00:12Z' });
  store.recordReward(a.id, 4, { total: 0.88, components: { sentiment: 0.88 }, createdAt: '2024-05-01T10:00:12Z' });
  store.endDialog(a.id, 'terminated', 'end conversation button', '2024-05-01T10:00:20Z');

  const b = store.startDialog({ id: 'b', env: 'TeacherStudent-v0', agentName: 'imitation', student: 'simulated', createdAt: '2024-05-02T10:00:00Z' });
  store.appendTurn(b.id, { role: 'teacher', text: '', createdAt: '2024-05-02T10:00:01Z' });
  store.endDialog(b.id, 'truncated', 'token limit 256', '2024-05-02T10:00:02Z');

  const c = store.startDialog({ id: 'c', env: 'Echo-v0', agentId: 'ppo-kl20', student: 'scripted', createdAt: '2024-05-03T10:00:00Z' });
  store.appendTurn(c.id, { role: 'teacher', text: 'ping', createdAt: '2024-05-03T10:00:01Z' });
  // c stays open (in progress)
}

describe('exportJsonl', () => {
  let store: Store;
  beforeEach(() => { store = openStore(':memory:'); fill(store); });
  afterEach(() => store.close());

  it('writes one chat-format line per dialog with roles, rewards and metadata', async () => {
    const sink = new SlowSink();
    const summary = await exportJsonl(store, sink);
    expect(summary).toMatchObject({ dialogs: 3, turns: 7, rewards: 2 });
    expect(summary.bytes).toBe(Buffer.byteLength(sink.text()));
    const recs = lines(sink.text());
    expect(recs.map(r => r.dialogId)).toEqual(['a', 'b', 'c']);
    expect(recs[0]).toEqual({
      messages: [
        { role: 'system', speaker: 'system', content: 'The following contains private conversations…', createdAt: '2024-05-01T10:00:00.000Z' },
        { role: 'assistant', speaker: 'teacher', content: 'Do you know what the discussion is for?', createdAt: '2024-05-01T10:00:01.000Z', tokenCount: 11 },
        { role: 'user', speaker: 'student', content: 'Not really, sorry!', createdAt: '2024-05-01T10:00:05.000Z', metadata: { typingMs: 2100 } },
        { role: 'assistant', speaker: 'teacher', content: 'It explains what your results mean.', createdAt: '2024-05-01T10:00:07.000Z' },
        { role: 'user', speaker: 'student', content: 'Oh, that makes sense, thanks!', createdAt: '2024-05-01T10:00:12.000Z' },
      ],
      id: 'a', dialogId: 'a', env: 'TeacherStudent-v0', agent: 'ppo-kl20', agentId: 'run-1', student: 'human', sessionId: 's1', seed: 7,
      createdAt: '2024-05-01T10:00:00.000Z', endedAt: '2024-05-01T10:00:20.000Z', endReason: 'terminated', endDetail: 'end conversation button',
      rewards: [{ turn: 2, total: 0.31, components: { sentiment: 0.21, question: 0.1 } }, { turn: 4, total: 0.88, components: { sentiment: 0.88 } }],
      metadata: { consent: 'v1' },
    });
    // rewards[].turn indexes messages, and scores a student's reply.
    for (const r of recs[0]!.rewards) expect(recs[0]!.messages[r.turn]!.speaker).toBe('student');
    expect(recs[1]).toMatchObject({ agent: 'imitation', agentId: null, endReason: 'truncated', endDetail: 'token limit 256', rewards: [], messages: [{ role: 'assistant', content: '' }] });
    expect(recs[2]).toMatchObject({ agent: 'ppo-kl20', student: 'scripted', endedAt: null, endReason: null });
    expect(sink.drains).toBeGreaterThan(0); // it waited for the slow stream
  });

  it('filters by date, env, agent and ended-only', async () => {
    const ids = async (f: Parameters<typeof exportJsonl>[2]): Promise<string[]> => {
      const sink = new SlowSink();
      await exportJsonl(store, sink, f);
      return lines(sink.text()).map(r => r.dialogId);
    };
    expect(await ids({ since: '2024-05-02' })).toEqual(['b', 'c']);
    expect(await ids({ until: '2024-05-02T10:00:00Z' })).toEqual(['a']);
    expect(await ids({ since: '2024-05-01T12:00:00Z', until: '2024-05-03' })).toEqual(['b']);
    expect(await ids({ env: 'Echo-v0' })).toEqual(['c']);
    expect(await ids({ agent: 'ppo-kl20' })).toEqual(['a', 'c']);
    expect(await ids({ agent: 'ppo-kl20', env: 'TeacherStudent-v0' })).toEqual(['a']);
    expect(await ids({ endedOnly: true })).toEqual(['a', 'b']);
    expect(await ids({ agent: 'nobody' })).toEqual([]);
  });

  it('keeps hostile text exact through JSON, one dialog per physical line', async () => {
    const d = store.startDialog({ id: 'h\n"x"', env: 'E-v0', student: 'human', createdAt: '2024-06-01T00:00:00Z' });
    const texts = ['line\nbreak\r\n', 'a\u2028b\u2029c', 'nul\u0000', '"}\n{"messages":[]}', "'; DROP TABLE turns; --", '😀\ufeff'];
    for (const text of texts) store.appendTurn(d.id, { role: 'student', text });
    const sink = new SlowSink();
    await exportJsonl(store, sink, { since: '2024-06-01' });
    const raw = sink.text();
    expect(raw.split('\n')).toHaveLength(2); // one line + the final newline
    expect(raw).not.toMatch(/[\u2028\u2029]/);
    expect(lines(raw)[0]!.messages.map(m => m.content)).toEqual(texts);
  });

  it('streams many dialogs across pages in order', async () => {
    const big = openStore(':memory:');
    for (let i = 0; i < 120; i++) {
      const d = big.startDialog({ id: `d${String(i).padStart(3, '0')}`, env: 'E-v0', student: 'simulated', createdAt: Date.UTC(2024, 0, 1, 0, Math.floor(i / 7)) });
      for (let k = 0; k < 3; k++) big.appendTurn(d.id, { role: k % 2 ? 'student' : 'teacher', text: `${i}:${k}` });
    }
    const sink = new SlowSink();
    const seen: number[] = [];
    const summary = await exportJsonl(big, sink, {}, { pageSize: 16, onDialog: s => seen.push(s.dialogs) });
    expect(summary).toMatchObject({ dialogs: 120, turns: 360 });
    expect(seen).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    const recs = lines(sink.text());
    expect(recs.map(r => r.dialogId)).toEqual(Array.from({ length: 120 }, (_, i) => `d${String(i).padStart(3, '0')}`));
    expect(recs[119]!.messages.map(m => m.content)).toEqual(['119:0', '119:1', '119:2']);
    big.close();
  });

  it('rejects when the output stream fails', async () => {
    const broken = new Writable({ highWaterMark: 1, write(_c, _e, cb) { cb(new Error('disk full')); } });
    await expect(exportJsonl(store, broken)).rejects.toThrow(/disk full|closed/);
  });

  it('is readable by the chat-JSONL corpus loader', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-export-'));
    try {
      const file = path.join(dir, 'chats.jsonl');
      const { createWriteStream } = await import('node:fs');
      const out = createWriteStream(file);
      await exportJsonl(store, out);
      await new Promise<void>(resolve => out.end(resolve));
      const dialogs = loadChatJsonl(file);
      expect(dialogs.map(d => d.id)).toEqual(['a', 'b', 'c']);
      expect(dialogs[0]!.turns).toEqual([
        { role: 'teacher', text: 'Do you know what the discussion is for?' },
        { role: 'student', text: 'Not really, sorry!' },
        { role: 'teacher', text: 'It explains what your results mean.' },
        { role: 'student', text: 'Oh, that makes sense, thanks!' },
      ]);
      expect(dialogs[0]!.meta).toMatchObject({ system: 'The following contains private conversations…' });
      // Same turns as the record built directly from the store.
      const direct = toChatRecord(store.getDialog('b')!);
      expect(dialogs[1]!.turns).toEqual(direct.messages.map(m => ({ role: m.speaker, text: m.content })));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('colloquy export (CLI)', () => {
  let dir: string;
  let db: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-cli-export-'));
    db = path.join(dir, 'c.db');
    const s = openStore(db);
    fill(s);
    s.close();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/colloquy.mjs'), 'export', ...args], { cwd: dir, encoding: 'utf8' });

  it('exports to a file with filters, to stdout, and explains its flags', () => {
    const r = cli('--db', db, '--out', 'out.jsonl', '--since', '2024-05-01T12:00:00Z', '--env', 'TeacherStudent-v0');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/exported 1 dialogs \(1 turns, 0 rewards/);
    expect(lines(readFileSync(path.join(dir, 'out.jsonl'), 'utf8')).map(x => x.dialogId)).toEqual(['b']);
    expect(readdirSync(dir).filter(f => f.includes('partial'))).toEqual([]); // temp file renamed away

    const all = cli('--db', db, '--out', '-', '--agent', 'ppo-kl20');
    expect(all.status, all.stderr).toBe(0);
    expect(lines(all.stdout).map(x => x.dialogId)).toEqual(['a', 'c']);

    const help = cli('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--since ISO/);
    expect(help.stdout).toMatch(/"assistant"/);
  });

  it('fails clearly on a missing database, a bad date, a missing --out or an unknown flag', async () => {
    // In-process through the dispatcher (as bin/colloquy.mjs runs it), capturing stderr.
    const { main } = await import('../../cli/index.ts');
    const inProcess = async (...args: string[]): Promise<{ status: number; stderr: string }> => {
      const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
      try {
        const status = await main(['export', ...args]);
        return { status, stderr: spy.mock.calls.map(c => c.join(' ')).join('\n') };
      } finally { spy.mockRestore(); }
    };
    const missing = await inProcess('--db', path.join(dir, 'nope.db'), '--out', '-');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/NOT_FOUND: no database at/);
    expect(existsSync(path.join(dir, 'nope.db'))).toBe(false); // not created by accident

    const badDate = await inProcess('--db', db, '--out', '-', '--since', 'last tuesday');
    expect(badDate.status).toBe(2);
    expect(badDate.stderr).toMatch(/--since must be an ISO 8601 date/);

    expect((await inProcess('--db', db)).stderr).toMatch(/--out FILE .* is required/);
    const unknown = await inProcess('--db', db, '--out', '-', '--format', 'csv');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--format'/);
  });
});
