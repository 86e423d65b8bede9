/**
 * The Colloquy server: a fastify app made of plugins, one concern each. Decorators are declared by
 * the plugin that owns them and registered before the plugins that use them (fastify-plugin checks
 * this at boot). A new feature is one more `app.register(...)` line below.
 *
 *   config      app.config                 the validated ServerConfig
 *   envContext  app.envContext             what this app's envs get (env/context.ts): base model folder,
 *                                          chat lobby, shared students and scorers (per app, never per process)
 *   metrics     app.metrics, GET /metrics   Prometheus registry (other plugins add metrics)
 *   auth        onRequest hook              optional bearer token (routes with config.public skip it)
 *   sessions    app.sessions                env sessions: capacity, resume window, idle reaping
 *   websocket   @fastify/websocket          transport, frame size cap, graceful drain hooks
 *   envProtocol GET /v1/env (WebSocket)     protocol v1
 *   rest        /v1/envs, /health
 *   openEnv     /openenv/<ENV_ID>/{ws,health,metadata,schema}  every env as an OpenEnv server (over protocol v1)
 *   models      /v1/models[/:name[/files/:file]]  the base checkpoint (and others) for remote KL
 *   modelsExport /v1/models/:name/hf[/:file]    the same models as Hugging Face GPT-2 folders (models/hf.ts)
 *   storage     app.store                  SQLite dialog store; records dialog sessions (before any ack)
 *   chatLobby   app.lobby                  pairs people with student:"human" dialogs (before websocket: ends seats first on close)
 *   chat        /chat, /chat/ws            the chat page; hosted agents
 *   dashboard   /dashboard                 live sessions, recent dialogs, training curves
 *   judge       /judge, /judge/api/*       people judge pairs of transcripts (blind, sides randomised)
 */
import path from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServerConfig } from '../configs/server.ts';
import '../env/index.ts';
import { EnvCache } from '../env/context.ts';
import type { HumanLobby } from '../env/human.ts';
import { defaultModelDir } from '../core/paths.ts';
import { createLogger } from './log.ts';
import metricsPlugin from './plugins/metrics.ts';
import authPlugin from './plugins/auth.ts';
import sessionsPlugin from './plugins/sessions.ts';
import websocketPlugin from './plugins/websocket.ts';
import envProtocolPlugin from './plugins/env-protocol.ts';
import restPlugin from './plugins/rest.ts';
import openEnvPlugin from './plugins/openenv.ts';
import modelsPlugin from './plugins/models.ts';
import modelsExportPlugin from './models-export.ts';
import storagePlugin from './plugins/storage.ts';
import chatLobbyPlugin from './plugins/chat-lobby.ts';
import chatPlugin from './plugins/chat.ts';
import dashboardPlugin from './plugins/dashboard.ts';
import judgePlugin from './plugins/judge.ts';

/**
 * The env context of one app: passed to every `make` / `makeVec` of its sessions, REST listing and
 * hosted agents (each takes a snapshot of it when it makes an env). The chat lobby plugin sets
 * `humanLobby`; the cache is disposed when the app closes.
 */
export interface AppEnvContext {
  readonly modelDir: string;
  humanLobby: HumanLobby | null;
  readonly cache: EnvCache;
}

declare module 'fastify' {
  interface FastifyInstance { config: ServerConfig; envContext: AppEnvContext }
}

export interface BuildAppOptions {
  /** A pino logger (default: one made from `config.logLevel` / `config.logPretty`). */
  logger?: Logger;
  /**
   * The base model folder of this app's dialog envs (kwargs without `model`), served as
   * /v1/models/base. Default: core/paths.ts `defaultModelDir()`. `colloquy serve` passes the
   * one it prepared from `config.baseModel` (cli/serve.ts `prepareModels`).
   */
  modelDir?: string;
}

export function buildApp(config: ServerConfig, opts: BuildAppOptions = {}): FastifyInstance {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, pretty: config.logPretty });
  const app = Fastify({
    loggerInstance: logger,
    // Requests are logged below without their query string (it may carry the token).
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  app.decorate('config', config);
  const envContext: AppEnvContext = { modelDir: path.resolve(opts.modelDir ?? defaultModelDir()), humanLobby: null, cache: new EnvCache() };
  app.decorate('envContext', envContext);
  // Added before the plugins, so it runs after theirs (onClose hooks run last-added first): every
  // session and hosted dialog is closed by then.
  app.addHook('onClose', async () => { await envContext.cache.dispose(); });

  app.addHook('onResponse', async (req, reply) => {
    const url = req.url.split('?')[0]!;
    const quiet = url === '/health' || url === '/metrics';
    const rec = { method: req.method, url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (quiet) req.log.debug(rec, 'request'); else req.log.info(rec, 'request');
  });

  app.register(metricsPlugin);
  app.register(authPlugin);
  app.register(sessionsPlugin);
  app.register(storagePlugin);
  app.register(chatLobbyPlugin);
  app.register(websocketPlugin);
  app.register(envProtocolPlugin);
  app.register(restPlugin);
  app.register(openEnvPlugin);
  app.register(modelsPlugin, { models: config.models });
  app.register(modelsExportPlugin, { models: config.models });
  app.register(chatPlugin);
  app.register(dashboardPlugin);
  app.register(judgePlugin);
  return app;
}
