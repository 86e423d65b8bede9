/**
 * The Hugging Face export of the served models (models/hf.ts), beside their raw checkpoint files
 * (server/plugins/models.ts): a remote Python agent loads the env's exact base policy with
 * `AutoModelForCausalLM.from_pretrained` (the Python client's `colloquy.hf.fetch_hf_model` downloads
 * and checks these files).
 *
 *   GET /v1/models/:name/hf           {name, format: "hf-gpt2", files: [{name, bytes, sha256}]}
 *   GET /v1/models/:name/hf/:file     the bytes of one file (config.json, model.safetensors, …)
 *
 * The export is built on first request and kept in memory while the checkpoint's model.json and
 * weights.bin stay the same (size and mtime), so a retrained base is exported afresh.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { ColloquyError } from '../core/errors.ts';
import { isCheckpoint } from '../models/checkpoint.ts';
import { HF_FILES, hfExportOf, type HfFile } from '../models/hf.ts';

interface Built { key: string; files: Map<HfFile, { bytes: Buffer; sha256: string }> }

async function versionKey(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const f of ['model.json', 'weights.bin', 'tokenizer.json']) {
    try { const s = await stat(path.join(dir, f)); parts.push(`${f}:${s.size}:${s.mtimeMs}`); } catch { parts.push(`${f}:-`); }
  }
  return parts.join('|');
}

async function modelsExportPlugin(app: FastifyInstance, opts: { models?: Record<string, string> }): Promise<void> {
  const dirs = (): Record<string, string> => ({ base: app.envContext.modelDir, ...(opts.models ?? {}) });
  const cache = new Map<string, Promise<Built>>();

  async function exportOf(name: string): Promise<Built | null> {
    const dir = Object.hasOwn(dirs(), name) ? dirs()[name]! : null;
    if (!dir || !(await isCheckpoint(dir))) return null;
    const key = await versionKey(dir);
    let p = cache.get(name);
    if (p && (await p.catch(() => null))?.key !== key) p = undefined;
    if (!p) {
      p = hfExportOf(dir).then(files => ({
        key, files: new Map([...files].map(([f, bytes]) => [f, { bytes, sha256: createHash('sha256').update(bytes).digest('hex') }])),
      }));
      cache.set(name, p);
      p.catch(() => { if (cache.get(name) === p) cache.delete(name); });
    }
    return p;
  }

  const fail = (err: unknown) => {
    const e = err instanceof ColloquyError ? err.toJSON() : { code: 'INTERNAL', message: 'the export failed' };
    return { ok: false, error: e };
  };
  const notFound = (message: string) => ({ ok: false, error: { code: 'NOT_FOUND', message } });

  app.get<{ Params: { name: string } }>('/v1/models/:name/hf', async (req, reply) => {
    const { name } = req.params;
    let built: Built | null;
    try { built = await exportOf(name); } catch (err) { return reply.code(err instanceof ColloquyError ? 422 : 500).send(fail(err)); }
    if (!built) return reply.code(404).send(notFound(`no model '${name}' (is the base model trained yet?)`));
    return { name, format: 'hf-gpt2', files: HF_FILES.map(f => ({ name: f, bytes: built.files.get(f)!.bytes.length, sha256: built.files.get(f)!.sha256 })) };
  });

  app.get<{ Params: { name: string; file: string } }>('/v1/models/:name/hf/:file', async (req, reply) => {
    const { name, file } = req.params;
    if (!(HF_FILES as readonly string[]).includes(file)) return reply.code(404).send(notFound(`'${file}' is not a file of the Hugging Face export (one of ${HF_FILES.join(', ')})`));
    let built: Built | null;
    try { built = await exportOf(name); } catch (err) { return reply.code(err instanceof ColloquyError ? 422 : 500).send(fail(err)); }
    if (!built) return reply.code(404).send(notFound(`no model '${name}'`));
    const f = built.files.get(file as HfFile)!;
    reply.header('content-type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    reply.header('x-sha256', f.sha256);
    return reply.send(f.bytes);
  });
}

export default fp(modelsExportPlugin, { name: 'colloquy-models-export', fastify: '5.x', decorators: { fastify: ['envContext'] } });
