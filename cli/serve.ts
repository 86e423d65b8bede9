/**
 * `colloquy serve`: run the environment server (WebSocket /v1/env, REST) until SIGTERM/SIGINT, then
 * shut down gracefully (stop accepting, finish in-flight replies, close sessions) and exit 0.
 */
import path from 'node:path';
import { statSync } from 'node:fs';
import type { BackendChoice } from '../models/backend.ts';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { DEFAULT_SERVER_CONFIG_FILE, ServerConfigSchema, loadServerConfig, type ServerConfig } from '../configs/server.ts';
import { BadConfig } from '../core/errors.ts';
import { resolveDataDir } from '../corpora/readers.ts';
import { buildApp } from '../server/app.ts';
import { createLogger } from '../server/log.ts';
import { WS_PATH } from '../protocol/v1.ts';
import { helpText, parseCommandLine, type CommandLine, type CommandSpec } from './args.ts';

/** The command line: flags of config fields take their check and help from ServerConfigSchema. */
export const SERVE_COMMAND: CommandSpec = {
  command: 'colloquy serve',
  summary: `Run the Colloquy environment server: protocol v1 over WebSocket at ${WS_PATH}, REST at /v1/envs, /health, /metrics. Stops gracefully on SIGTERM/SIGINT. The config file (every field is described in configs/server.ts) is read first; --set and the flags override it.`,
  schema: ServerConfigSchema,
  defaults: () => loadServerConfig(DEFAULT_SERVER_CONFIG_FILE),
  set: 'limits.maxSessions=64',
  flags: [
    { name: 'host', field: 'host', metavar: 'H' },
    { name: 'port', field: 'port' },
    { name: 'config', type: 'string', metavar: 'FILE', describe: 'JSON config file (default configs/server.json)' },
    { name: 'token', field: 'token', metavar: 'T', note: 'also $COLLOQUY_TOKEN' },
    { name: 'log-level', field: 'logLevel', metavar: 'LEVEL' },
    { name: 'log-pretty', field: 'logPretty' },
  ],
};

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

/** Config from the file named by --config (or the default file), with --set and the flags on top. */
export function configFromFlags(cl: CommandLine): ServerConfig {
  const overrides = cl.overrides();
  const token = cl.values.token ?? process.env.COLLOQUY_TOKEN;
  if (typeof token === 'string' && token !== '') overrides.token = token;
  const config = loadServerConfig((cl.values.config as string | undefined) ?? DEFAULT_SERVER_CONFIG_FILE, overrides);
  // A data dir named but not there fails here, in one line, not inside the first-start pretraining.
  if (config.dataDir !== null) {
    const dir = path.resolve(config.dataDir);
    if (!isDir(dir)) throw new BadConfig(`data dir ${dir} does not exist (dataDir of the server config)`);
  } else resolveDataDir();
  return config;
}

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
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
  const cl = parseCommandLine(SERVE_COMMAND, argv);
  if (cl.help) { console.log(helpText(SERVE_COMMAND)); return 0; }
  const config = configFromFlags(cl);
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
