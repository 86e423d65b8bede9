import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchModel } from '../../models/remote.ts';
import { loadCheckpoint } from '../../models/checkpoint.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { startTestServer, type TestServer } from './helpers.ts';

let srv: TestServer;
let tmp: string;
beforeAll(async () => { srv = await startTestServer(); tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-fetch-')); });
afterAll(async () => { await srv.close(); rmSync(tmp, { recursive: true, force: true }); });

describe('serving the base model', () => {
  it('lists the base checkpoint with hashes', async () => {
    const r = await fetch(`${srv.url}/v1/models`);
    expect(r.status).toBe(200);
    const { models } = await r.json() as { models: { name: string; files: { name: string; sha256: string }[] }[] };
    const base = models.find(m => m.name === 'base')!;
    expect(base.files.map(f => f.name)).toEqual(expect.arrayContaining(['model.json', 'weights.bin', 'tokenizer.json']));
    expect(base.files.every(f => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
  });

  it('a remote agent fetches the exact checkpoint the env uses and gets identical log-probs', async () => {
    const dest = path.join(tmp, 'base');
    const first = await fetchModel(srv.wsUrl, dest);
    expect(first.downloaded).toBeGreaterThanOrEqual(3);
    expect(readFileSync(path.join(dest, 'weights.bin')).equals(readFileSync(path.join(defaultModelDir(), 'weights.bin')))).toBe(true);
    const again = await fetchModel(srv.url, dest);
    expect(again).toMatchObject({ downloaded: 0, reused: first.downloaded });
    const [a, b] = await Promise.all([loadCheckpoint(defaultModelDir()), loadCheckpoint(dest)]);
    const ctx = [[5, 6, 7, 8, 9], [10, 11]];
    expect(b.model.nextTokenLogProbs(ctx)).toEqual(a.model.nextTokenLogProbs(ctx));
    a.model.dispose(); b.model.dispose();
  });

  it('serves only checkpoint files, with coded 404s', async () => {
    for (const url of ['/v1/models/nope', '/v1/models/base/files/package.json', '/v1/models/base/files/..%2F..%2Fpackage.json', '/v1/models/nope/files/model.json']) {
      const r = await fetch(`${srv.url}${url}`);
      expect(r.status, url).toBe(404);
      expect((await r.json() as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
    await expect(fetchModel(srv.url, path.join(tmp, 'x'), { name: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('needs the token when auth is on', async () => {
    const auth = await startTestServer({ token: 'sesame' });
    try {
      expect((await fetch(`${auth.url}/v1/models`)).status).toBe(401);
      await expect(fetchModel(auth.url, path.join(tmp, 'y'))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      const ok = await fetchModel(auth.url, path.join(tmp, 'y'), { token: 'sesame' });
      expect(ok.downloaded).toBeGreaterThan(0);
    } finally { await auth.close(); }
  });
});
