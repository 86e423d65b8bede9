/**
 * Fetch a model checkpoint served by a Colloquy server (`GET /v1/models/:name`), so that a remote
 * agent computes KL to exactly the base policy the environment uses. Every file's SHA-256 is
 * checked; files land under temporary names and are renamed when all are verified. An existing
 * local copy with the same hashes is reused without downloading.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ColloquyError } from '../core/errors.ts';

export interface FetchModelOptions { token?: string | null; name?: string }

interface Listing { name: string; files: { name: string; bytes: number; sha256: string }[] }

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** `httpUrl`: the server's base URL (http://host:port); a ws:// URL is accepted and converted. */
export async function fetchModel(httpUrl: string, destDir: string, opts: FetchModelOptions = {}): Promise<{ dir: string; downloaded: number; reused: number }> {
  const base = httpUrl.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/v1\/env\/?$/, '').replace(/\/$/, '');
  const name = opts.name ?? 'base';
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const res = await fetch(`${base}/v1/models/${encodeURIComponent(name)}`, { headers });
  if (!res.ok) throw new ColloquyError(res.status === 401 ? 'UNAUTHORIZED' : 'NOT_FOUND', `cannot list model '${name}' at ${base}: HTTP ${res.status}`);
  const listing = await res.json() as Listing;
  await mkdir(destDir, { recursive: true });
  let downloaded = 0, reused = 0;
  const staged: [string, string][] = [];
  for (const f of listing.files) {
    const target = path.join(destDir, f.name);
    try {
      if (sha(await readFile(target)) === f.sha256) { reused++; continue; }
    } catch { /* not there */ }
    const r = await fetch(`${base}/v1/models/${encodeURIComponent(name)}/files/${encodeURIComponent(f.name)}`, { headers });
    if (!r.ok) throw new ColloquyError('NOT_FOUND', `cannot fetch ${f.name} of model '${name}': HTTP ${r.status}`);
    const bytes = new Uint8Array(await r.arrayBuffer());
    if (bytes.length !== f.bytes || sha(bytes) !== f.sha256) throw new ColloquyError('INTERNAL', `${f.name} of model '${name}' failed its SHA-256 check`);
    const tmp = `${target}.part`;
    await writeFile(tmp, bytes);
    staged.push([tmp, target]);
    downloaded++;
  }
  for (const [tmp, target] of staged) await rename(tmp, target);
  return { dir: destDir, downloaded, reused };
}
