/**
 * `colloquy serve`: run the environment server (WebSocket /v1/env, REST) until SIGTERM/SIGINT, then
 * shut down gracefully (stop accepting, finish in-flight replies, close sessions) and exit 0.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendChoice } from '../models/backend.ts';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { DEFAULT_SERVER_CONFIG_FILE, loadServerConfig, type ServerConfig } from '../configs/server.ts';
import { buildApp } from '../server/app.ts';
import { createLogger } from '../server/log.ts';
import { WS_PATH } from '../protocol/v1.ts';

const HELP = `usage: colloquy serve [options]

Run the Colloquy environment server: protocol v1 over WebSocket at ${WS_PATH},
REST at /v1/envs, /health, /metrics. Stops gracefully on SIGTERM/SIGINT.

options:
  --host H          interface to listen on (default from the config: 127.0.0.1)
  --port N          TCP port (default from the config: 8787; 0 picks a free one)
  --config F        JSON config file (default configs/server.json; see configs/server.ts)
  --token T         require this bearer token (also COLLOQUY_TOKEN); /health stays open
  --log-level L     fatal|error|warn|info|debug|trace|silent
  --log-pretty      readable log lines instead of NDJSON
  -h, --help        show this help`;

export interface StartServerOptions {
  logger?: Logger;
  /**
   * Work to do after the app is built and before it listens (e.g. preparing a base model on the
   * first run, registering more plugins). Later features hook in here.
   */
  beforeListen?: (app: FastifyInstance, config: ServerConfig) => Promise<void>;
  /** The base model folder of the app's dialog envs (what `prepareModels` returns; default: core/paths.ts `defaultModelDir()`). */
  modelDir?: string;
}

export interface RunningServer {
  app: FastifyInstance;
  /** The http:// base URL it listens on. */
  url: string;
  /** The ws:// URL of the env protocol. */
  wsUrl: string;
  port: number;
  /** Graceful stop (idempotent). */
  close(): Promise<void>;
}

/** Build the app from a config, run the hooks, listen, and log the URL. */
export async function startServer(config: ServerConfig, opts: StartServerOptions = {}): Promise<RunningServer> {
  const app = buildApp(config, { logger: opts.logger, modelDir: opts.modelDir });
  if (opts.beforeListen) await opts.beforeListen(app, config);
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const wsUrl = `ws://${host}:${port}${WS_PATH}`;
  app.log.info({ url, ws: wsUrl, auth: config.token !== null }, `listening on ${url} (env protocol at ${wsUrl})`);
  let closing: Promise<void> | null = null;
  return { app, url, wsUrl, port, close: () => (closing ??= app.close()) };
}

/** Config from the file named by --config (or the default file), with flags on top. */
export function configFromFlags(values: { host?: string; port?: string; config?: string; token?: string; 'log-level'?: string; 'log-pretty'?: boolean }): ServerConfig {
  const overrides: Record<string, unknown> = {};
  if (values.host !== undefined) overrides.host = values.host;
  if (values.port !== undefined) overrides.port = /^\d+$/.test(values.port) ? Number(values.port) : values.port;
  const token = values.token ?? process.env.COLLOQUY_TOKEN;
  if (token !== undefined && token !== '') overrides.token = token;
  if (values['log-level'] !== undefined) overrides.logLevel = values['log-level'];
  if (values['log-pretty']) overrides.logPretty = true;
  return loadServerConfig(values.config ?? DEFAULT_SERVER_CONFIG_FILE, overrides);
}

/**
 * Choose the TensorFlow.js backend once, and make sure the base model exists (pretraining one on
 * the first run, in a child process, with progress). Returns its folder: the app's dialog envs use
 * it (`startServer(config, { modelDir })`; nothing process-wide is set).
 */
export async function prepareModels(config: ServerConfig, logger: Logger): Promise<string> {
  const { initBackend } = await import('../models/backend.ts');
  const { ensureBaseModel } = await import('../models/pretrain.ts');
  const { PROJECT_ROOT } = await import('../core/paths.ts');
  if (config.dataDir) process.env.COLLOQUY_DATA_DIR = path.resolve(config.dataDir);
  const backend = await initBackend(config.backend as BackendChoice);
  logger.info({ backend: backend.name, tfBackend: backend.tfBackend, features: backend.features, skipped: backend.skipped }, `TensorFlow.js backend: ${backend.name}`);
  const dir = path.resolve(PROJECT_ROOT, config.baseModel.dir);
  if (config.baseModel.pretrainIfMissing) {
    const r = await ensureBaseModel({
      dir, corpus: config.baseModel.corpus, minutes: config.baseModel.minutes, dataDir: config.dataDir,
      ...(config.baseModel.configFile ? { configFile: path.resolve(PROJECT_ROOT, config.baseModel.configFile) } : {}),
      log: line => logger.info(line),
    });
    if (r.created) logger.info({ dir }, 'base model ready');
  }
  logger.info({ baseModel: dir }, 'dialog envs use this base model');
  return dir;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' }, token: { type: 'string' },
      'log-level': { type: 'string' }, 'log-pretty': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) { console.log(HELP); return 0; }
  const config = configFromFlags(values);
  const logger = createLogger({ level: config.logLevel, pretty: config.logPretty });
  const modelDir = await prepareModels(config, logger);
  const server = await startServer(config, { logger, modelDir });

  return await new Promise<number>(resolve => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) { logger.warn({ signal }, 'second signal: exiting now'); process.exit(1); }
      logger.info({ signal }, 'shutting down');
      server.close().then(
        () => { logger.info('server stopped'); cleanup(); resolve(0); },
        err => { logger.error({ err }, 'shutdown failed'); cleanup(); resolve(1); },
      );
    };
    const cleanup = () => { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
