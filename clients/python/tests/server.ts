/**
 * A Colloquy server for the Python tests: `node bin/run.mjs clients/python/tests/server.ts [CONFIG_JSON]`.
 *
 * Builds the tests' tiny base model (tests/helpers/tiny-model.ts) in $COLLOQUY_BASE_MODEL (or a
 * temporary folder), starts the real server (cli/serve.ts startServer) on an ephemeral port with
 * the config overrides given as JSON, prints one line `{"url", "wsUrl", "modelDir"}` on stdout, and
 * runs until stdin closes or SIGTERM/SIGINT (then shuts down gracefully). Dialogs are recorded in
 * memory (COLLOQUY_DB=:memory:) unless the caller names a database.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../models/backend.ts';
import { buildTinyModel } from '../../../tests/helpers/tiny-model.ts';
import { resolveServerConfig } from '../../../configs/server.ts';
import { startServer } from '../../../cli/serve.ts';
import { createLogger } from '../../../server/log.ts';

process.env.COLLOQUY_DB ??= ':memory:';
const overrides = process.argv[2] ? JSON.parse(process.argv[2]) as Record<string, unknown> : {};
await initBackend('auto');
const ownModel = !process.env.COLLOQUY_BASE_MODEL;
const modelDir = path.resolve(process.env.COLLOQUY_BASE_MODEL ?? path.join(os.tmpdir(), `colloquy-pytest-base-${process.pid}`));
await buildTinyModel({ dir: modelDir });
process.env.COLLOQUY_BASE_MODEL = modelDir;
const config = resolveServerConfig({ logLevel: 'silent', ...overrides, host: '127.0.0.1', port: 0 });
const server = await startServer(config, { modelDir, logger: createLogger({ level: (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? config.logLevel }) });
process.stdout.write(`${JSON.stringify({ url: server.url, wsUrl: server.wsUrl, modelDir })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  if (ownModel) rmSync(modelDir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', () => { void stop(); });
process.on('SIGINT', () => { void stop(); });
// The test process holds our stdin: when it goes away (even killed), so do we.
process.stdin.on('end', () => { void stop(); });
process.stdin.on('close', () => { void stop(); });
process.stdin.resume();
