/**
 * Serving the models a remote agent needs to compute KL to the same base policy the environment
 * uses: the exact checkpoint files (architecture, weights, tokenizer, metadata) with their SHA-256.
 *
 *   GET /v1/models                      every served model: name, files (name, bytes, sha256), metadata
 *   GET /v1/models/:name                one of them
 *   GET /v1/models/:name/files/:file    the raw bytes of one checkpoint file
 *
 * `base` is this app's dialog envs' base model (`app.envContext.modelDir`); more can be named in the config
 * (`models: {"demonstrator": "data/models/demo"}`). Agents fetch with `fetchModel` in
 * models/remote.ts, which checks every hash.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';

/** The files of a checkpoint folder that are served (nothing else in the folder is reachable). */
export const MODEL_FILES = ['model.json', 'weights.bin', 'tokenizer.json', 'tokenizer_config.json', 'config.json', 'metadata.json'] as const;

export interface ModelFileInfo { name: string; bytes: number; sha256: string }
export interface ModelListing { name: string; files: ModelFileInfo[]; metadata: Record<string, unknown> | null }

const hashCache = new Map<string, { key: string; sha256: string }>();

async function fileInfo(file: string): Promise<ModelFileInfo | null> {
  let st;
  try { st = await stat(file); } catch { return null; }
  if (!st.isFile()) return null;
  const key = `${st.size}:${st.mtimeMs}`;
  const cached = hashCache.get(file);
  if (cached && cached.key === key) return { name: path.basename(file), bytes: st.size, sha256: cached.sha256 };
  const sha256 = await new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', d => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
  hashCache.set(file, { key, sha256 });
  return { name: path.basename(file), bytes: st.size, sha256 };
}

async function modelsPlugin(app: FastifyInstance, opts: { models?: Record<string, string> }): Promise<void> {
  const base = app.envContext.modelDir;
  // A Map: a client-chosen name (`__proto__`, `constructor`, `toString`) is only ever a key.
  const models = new Map<string, string>([['base', base], ...Object.entries(opts.models ?? {})]);
  const dirOf = (name: string): string | undefined => models.get(name);
  const shown = (name: string) => (name.length > 64 ? `${name.slice(0, 64)}…` : name);

  async function listing(name: string): Promise<ModelListing | null> {
    const dir = dirOf(name);
    if (!dir) return null;
    const files: ModelFileInfo[] = [];
    for (const f of MODEL_FILES) {
      const info = await fileInfo(path.join(dir, f));
      if (info) files.push(info);
    }
    if (!files.some(f => f.name === 'model.json')) return null;
    let metadata: Record<string, unknown> | null = null;
    try { metadata = JSON.parse(await readFile(path.join(dir, 'metadata.json'), 'utf8')) as Record<string, unknown>; } catch { /* optional */ }
    return { name, files, metadata };
  }

  const notFound = (what: string) => ({ ok: false, error: { code: 'NOT_FOUND', message: what } });

  app.get('/v1/models', async () => {
    const listed: ModelListing[] = [];
    for (const name of models.keys()) {
      const l = await listing(name);
      if (l) listed.push(l);
    }
    return { models: listed };
  });

  app.get<{ Params: { name: string } }>('/v1/models/:name', async (req, reply) => {
    const l = await listing(req.params.name);
    return l ?? reply.code(404).send(notFound(`no model '${shown(req.params.name)}' (is the base model trained yet?)`));
  });

  app.get<{ Params: { name: string; file: string } }>('/v1/models/:name/files/:file', async (req, reply) => {
    const { name, file } = req.params;
    const dir = dirOf(name);
    if (!dir) return reply.code(404).send(notFound(`no model '${shown(name)}'`));
    if (!(MODEL_FILES as readonly string[]).includes(file)) return reply.code(404).send(notFound(`'${shown(file)}' is not a model file (one of ${MODEL_FILES.join(', ')})`));
    const full = path.join(dir, file);
    const info = await fileInfo(full);
    if (!info) return reply.code(404).send(notFound(`model '${name}' has no ${file}`));
    reply.header('content-type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    reply.header('content-length', String(info.bytes));
    reply.header('x-sha256', info.sha256);
    return reply.send(createReadStream(full));
  });
}

export default fp(modelsPlugin, { name: 'colloquy-models', fastify: '5.x', decorators: { fastify: ['envContext'] } });
