/**
 * Issue 14, items 1–3, over a real socket: a client names rewards, models and checkpoints by id,
 * never reads a server file through env kwargs (no contents, no absolute paths, one answer for a
 * missing and an existing path), cannot stall or kill the process with a device file, and cannot
 * make the server build a reply larger than `limits.maxReplyBytes`.
 */
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawClient, startTestServer, type RawClient, type TestServer } from './helpers.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { scrubPaths } from '../../server/resources.ts';

const TS = 'TeacherStudent-v0';
const tmp = realpathSync(mkdtempSync(path.join(tmpdir(), 'colloquy-kwargs-')));
const secretJson = path.join(tmp, 'secret.json');
writeFileSync(secretJson, JSON.stringify({ apiKeyOfTheServer: 'hunter2', otherSecretField: 1 }));
const allowed = path.join(tmp, 'allowed');
mkdirSync(allowed);
writeFileSync(path.join(allowed, 'mine.json'), JSON.stringify({ name: 'mine', terms: [{ signal: 'question', weight: 1 }] }));
symlinkSync(secretJson, path.join(allowed, 'escape.json'));

/** Everything a reply could leak: the file's contents or keys, and any absolute path of the server. */
function expectNoLeak(message: string): void {
  for (const s of ['root:', 'apiKeyOfTheServer', 'otherSecretField', 'hunter2', tmp, PROJECT_ROOT, '/etc', '/dev']) expect(message).not.toContain(s);
}

describe('kwargs name files by id only (items 1, 2)', () => {
  let srv: TestServer; let c: RawClient;
  beforeAll(async () => { srv = await startTestServer(); c = await rawClient(srv.wsUrl); });
  afterAll(async () => { c.close(); await srv.close(); });

  const make = (kwargs: Record<string, unknown>) => c.call({ op: 'make', env: TS, kwargs });

  it('a reward path answers one coded error whatever the file, quoting nothing', async () => {
    const replies = [];
    for (const reward of ['/etc/passwd', secretJson, '/no/such/file.json', path.join(tmp, 'missing.json'), '../../../../etc/passwd', 'configs/rewards/cohen.json']) {
      const r = await make({ reward });
      expect(r.ok, reward).toBe(false);
      expect(r.error!.code).toBe('BAD_CONFIG');
      expectNoLeak(r.error!.message);
      replies.push(r.error!.message);
    }
    // A missing and an existing path read exactly the same.
    expect(new Set(replies).size).toBe(1);
    expect(replies[0]).toContain('cohen');
  });

  it('kwargs.goldReward is checked as kwargs.reward is: ids taken, paths refused', async () => {
    for (const goldReward of ['/etc/passwd', secretJson, '../../../../etc/passwd']) {
      const r = await make({ goldReward });
      expect(r.ok, goldReward).toBe(false);
      expect(r.error).toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/^kwargs\.goldReward: no reward \(a path\)/) });
      expectNoLeak(r.error!.message);
    }
    expect((await make({ goldReward: 'cohen' })).ok).toBe(true);
  });

  it('model and student checkpoint paths are refused; ids are taken', async () => {
    const msgs = [];
    for (const kwargs of [{ model: '/etc' }, { model: tmp }, { model: '/no/such/dir' }, { student: { checkpoint: '/etc' } }, { student: { checkpoint: tmp } }]) {
      const r = await make(kwargs);
      expect(r.ok, JSON.stringify(kwargs)).toBe(false);
      expect(r.error!.code).toBe('BAD_CONFIG');
      expectNoLeak(r.error!.message);
      msgs.push(r.error!.message.replace(/^kwargs\.[a-z.]+: /, ''));
    }
    expect(new Set(msgs).size).toBe(1);
    const ok = await make({ model: 'base', student: { checkpoint: 'base' }, reward: 'cohen' });
    expect(ok.ok, JSON.stringify(ok.error)).toBe(true);
    // The spec shows the ids the client sent, not the server's folders.
    expect(ok.result.spec.kwargs.model).toBe('base');
    expect(JSON.stringify(ok.result)).not.toContain(PROJECT_ROOT);
  });

  it('kwargs.reward "/dev/zero" is refused at once; the server and other clients carry on', async () => {
    const other = await rawClient(srv.wsUrl);
    const t0 = performance.now();
    const r = await make({ reward: '/dev/zero' });
    expect(r.error?.code).toBe('BAD_CONFIG');
    const pong = await other.call({ op: 'ping' }, 2000);
    expect(pong.ok).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
    other.close();
  });
});

describe('an operator may allow a root for reward paths', () => {
  let srv: TestServer; let c: RawClient;
  beforeAll(async () => {
    srv = await startTestServer({ remoteFiles: { rewardRoots: [allowed], checkpointRoots: [allowed] } });
    c = await rawClient(srv.wsUrl);
  });
  afterAll(async () => { c.close(); await srv.close(); });

  it('a .json file under the root is taken; a symlink out of it, a device or a folder is not', async () => {
    const ok = await c.call({ op: 'make', env: TS, kwargs: { reward: path.join(allowed, 'mine.json') } });
    expect(ok.ok, JSON.stringify(ok.error)).toBe(true);
    for (const reward of [path.join(allowed, 'escape.json'), '/dev/zero', allowed, path.join(allowed, '..', 'secret.json')]) {
      const r = await c.call({ op: 'make', env: TS, kwargs: { reward } });
      expect(r.error?.code, reward).toBe('BAD_CONFIG');
      expectNoLeak(r.error!.message);
    }
  });
});

describe('reply size (item 3)', () => {
  let srv: TestServer;
  beforeAll(async () => { srv = await startTestServer({ limits: { maxEnvsPerSession: 1024 } }); });
  afterAll(async () => { await srv.close(); });

  it('make refuses numEnvs x obsSize above the reply limit; a neighbour is not stalled', async () => {
    const c = await rawClient(srv.wsUrl);
    const other = await rawClient(srv.wsUrl);
    const t0 = performance.now();
    const r = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 1024, kwargs: { obsSize: 65536 } });
    expect(r.ok).toBe(false);
    expect(r.error!.code).toBe('CAPACITY');
    expect(r.error!.message).toMatch(/MiB/);
    expect((await other.call({ op: 'ping' }, 2000)).ok).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
    // A session of the same observation with fewer envs fits and works.
    const small = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2, kwargs: { obsSize: 65536 } });
    expect(small.ok).toBe(true);
    expect((await c.call({ op: 'reset', session: small.result.session, seed: 1 })).ok).toBe(true);
    c.close(); other.close();
  });

  it('a reply that still comes out above the limit is PAYLOAD_TOO_LARGE, and the session needs a reset', async () => {
    const s2 = await startTestServer({ limits: { maxReplyBytes: 4096 } });
    try {
      const c = await rawClient(s2.wsUrl);
      // 8 x (2 + 300 x 10 + ...) bytes estimated: refused at make.
      expect((await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 8, kwargs: { obsSize: 300 } })).error?.code).toBe('CAPACITY');
      // A text observation counts its minimum length (0) at make; this prompt makes the reset reply larger.
      const m = await c.call({ op: 'make', env: TS, kwargs: { actionMode: 'utterance', maxTokens: 8192, prompt: { text: `Student: ${'so '.repeat(1500)}\n\nTeacher:` } } });
      expect(m.ok, JSON.stringify(m.error)).toBe(true);
      const r = await c.call({ op: 'reset', session: m.result.session, seed: 3 });
      expect(r.error?.code).toBe('PAYLOAD_TOO_LARGE');
      // (its state reply, which carries the long prompt in spec.kwargs, would be too large as well)
      const st = await c.call({ op: 'step', session: m.result.session, actions: [' hi'] });
      expect(st.error?.code).toBe('RESET_NEEDED');
      c.close();
    } finally { await s2.close(); }
  });
});

describe('scrubPaths', () => {
  it('cuts absolute paths to their last segment and keeps the rest', () => {
    expect(scrubPaths(`no model at ${PROJECT_ROOT}/data/models/x (missing tokenizer.json)`)).toBe('no model at data/models/x (missing tokenizer.json)');
    expect(scrubPaths("reward config '/srv/secret/a.json' is bad")).toBe("reward config '…/a.json' is bad");
    expect(scrubPaths('expected 2 actions (one per sub-env), ws://h:1/v1/env')).toBe('expected 2 actions (one per sub-env), ws://h:1/v1/env');
  });
});
